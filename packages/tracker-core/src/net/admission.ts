/**
 * Who gets a connection when the tracker is full (docs/protocol.md §1).
 *
 * Past `--max-connections`, a few more connections are admitted on
 * probation, kept for the other tracker and the operator: clients filling
 * every slot must not cut the replica's link, the primary's fencing probe
 * or `tracker-admin`. Each of those sends its first frame as soon as it
 * connects, and that frame is a `SYNC:` message or `status`. Anything else
 * on probation gets `ERR BUSY` and the connection is closed, so a client
 * past the limit is refused as before: at its first frame, or after
 * `PROBATION_MS` if it sends none.
 */

/** Connections admitted past `--max-connections` at most. */
export const RESERVED_CONNECTIONS = 4;
/** How long a connection on probation may take to send its first frame. */
export const PROBATION_MS = 500;
/** How long a connection on probation may take to become a tracker link; a probe or admin action is done well before. */
export const PROBATION_SETUP_MS = 10_000;

export type Admission = 'ordinary' | 'probation' | 'refused';

/** Counts the connections of each kind. */
export class ConnectionSlots {
  private ordinary = 0;
  private probation = 0;

  constructor(private readonly max: number) {}

  take(): Admission {
    if (this.ordinary < this.max) {
      this.ordinary++;
      return 'ordinary';
    }
    if (this.probation < RESERVED_CONNECTIONS) {
      this.probation++;
      return 'probation';
    }
    return 'refused';
  }

  release(kind: Exclude<Admission, 'refused'>): void {
    if (kind === 'ordinary') this.ordinary--;
    else this.probation--;
  }
}

const SYNC_PREFIX = /^sync:/i;
const STATUS = /^status(\r?\n)?$/i;

/** What a connection on probation may send: a tracker-link or admin message, or a `status` probe. */
export function probationAllows(payload: Buffer): 'sync' | 'status' | undefined {
  // Both are short ASCII: only the head is looked at, whatever the frame's size.
  const head = payload.subarray(0, 8).toString('latin1');
  if (SYNC_PREFIX.test(head)) return 'sync';
  if (payload.length <= 8 && STATUS.test(head)) return 'status';
  return undefined;
}

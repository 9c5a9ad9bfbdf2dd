/**
 * What a tracker tells whoever watches it (metrics), without depending on
 * any metrics library: tracker-core calls these hooks and answers
 * `Tracker.gauges()` / `Tracker.readiness()`; the CLI owns the Prometheus
 * registry and the HTTP listener. Every hook is optional and must be cheap
 * and must not throw (a throwing hook is logged and otherwise ignored).
 */
export interface TrackerObserver {
  /**
   * A client request was answered. `command` is the command name in lower
   * case (`unknown` for a name that is no command, `invalid` for a request
   * that could not be parsed, `sync` for a tracker-link handshake message);
   * `result` is `OK` or the error code of the `ERR` answer; `seconds` runs
   * from dispatch to the answer being ready (scrypt, commit and semi-sync
   * acknowledgement included).
   */
  onRequest?(command: string, result: string, seconds: number): void;
  /**
   * A snapshot crossed the `SYNC:` link: `sent` on the primary, `installed`
   * on the replica. Called by the snapshot code (see `Tracker.snapshotTransferred`).
   */
  onSnapshot?(direction: SnapshotDirection): void;
}

export type SnapshotDirection = 'sent' | 'installed';

/** Point-in-time numbers of one tracker, read at scrape time (cheap: a few COUNT queries). */
export interface TrackerGauges {
  role: 'primary' | 'replica';
  epoch: number;
  /** Last change applied (the log head, committed or about to be). */
  seq: number;
  /** Open client and tracker-link connections. */
  connections: number;
  users: number;
  groups: number;
  /** Sessions not yet expired. */
  liveSessions: number;
  /** Shares held by live sessions. */
  shares: number;
  /** Changes in the log that the state file on disk does not hold yet. */
  stateFileLag: number;
  /** The last commit (log or state file) found no room on the disk: writes are being refused. */
  diskFull: boolean;
  /** Bytes of events held for peers that are not reading them (all connections). */
  eventBacklogBytes: number;
  /** Password hashes (sign-ups, logins) waiting for a slot: a burst of them shows here. */
  passwordHashesWaiting: number;
  /** Primary only: the replica link, its acknowledged seq, and committed − acknowledged. */
  replicaConnected?: boolean;
  replicaSeq?: number;
  replicaLag?: number;
  /** Primary only: semi-sync suspended (no caught-up replica). */
  degraded?: boolean;
  /** Primary only: committed changes not yet sent to the replica, and writers waiting for its acknowledgement. */
  syncUnsent?: number;
  syncWaiting?: number;
  /** Replica only: the link to the primary is streaming. */
  primaryConnected?: boolean;
}

/** `/readyz`: can this tracker serve clients with a consistent state? */
export interface Readiness {
  ready: boolean;
  /** Why not (or `serving`). */
  reason: string;
}

/** `OK` or the code of an `ERR <CODE> …` answer payload. */
export function resultCode(payload: string): string {
  if (!payload.startsWith('ERR ')) return 'OK';
  const end = payload.indexOf(' ', 4);
  const code = payload.slice(4, end < 0 ? undefined : end);
  return /^[A-Z_]{1,32}$/.test(code) ? code : 'ERR';
}

/**
 * The command name of a request payload, for a metrics label: its first
 * word in lower case when it is a known command, else `unknown` (or
 * `invalid` for an empty payload). A request id (`@<client>:<n>`, which
 * tracker-client puts before every command) is passed over. Bounded: the
 * label set is the command table plus two.
 */
export function commandLabel(payload: Buffer, known: ReadonlySet<string>): string {
  let word = nextWord(payload, 0);
  if (word.end > word.start && payload[word.start] === 0x40 /* @ */) word = nextWord(payload, word.end);
  if (word.end === word.start) return 'invalid';
  const name = payload.toString('latin1', word.start, word.end).toLowerCase();
  return known.has(name) ? name : 'unknown';
}

/** The word of `payload` from `from` on: blanks skipped, at most 40 bytes looked at. */
function nextWord(payload: Buffer, from: number): { start: number; end: number } {
  let start = from;
  while (start < payload.length && (payload[start] === 0x20 || payload[start] === 0x09)) start++;
  let end = start;
  const limit = Math.min(payload.length, start + 40);
  while (end < limit) {
    const b = payload[end] as number;
    if (b === 0x20 || b === 0x09 || b === 0x0a || b === 0x0d) break;
    end++;
  }
  return { start, end };
}

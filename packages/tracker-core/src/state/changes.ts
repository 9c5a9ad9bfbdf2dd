/**
 * A Change is one replicated state transition. It carries every value the
 * primary chose — ids, times, hashes — so that `apply` is a pure function of
 * (state, change) and the replica ends in exactly the primary's state.
 * Session ids travel as decimal strings: JSON numbers lose precision past 2^53.
 */
export type ChangeBody =
  | { type: 'user_created'; user: string; salt: string; hash: string; params: string; at: number }
  | { type: 'session_opened'; session: string; user: string; at: number; expires: number }
  | { type: 'session_closed'; session: string }
  | { type: 'sessions_touched'; sessions: Array<[session: string, expires: number]> }
  | { type: 'sessions_expired'; sessions: string[]; at: number }
  | { type: 'group_created'; group: string; owner: string; at: number }
  | { type: 'join_requested'; group: string; user: string; at: number }
  | { type: 'request_accepted'; group: string; user: string; at: number }
  | { type: 'request_rejected'; group: string; user: string }
  | { type: 'member_left'; group: string; user: string }
  | {
      type: 'file_shared';
      group: string;
      file: string;
      size: number;
      sha256: string;
      piece_size: number;
      /** Comma-separated piece hashes, or `-` for an empty file. */
      hashes: string;
      session: string;
      user: string;
      peer: string;
      at: number;
    }
  | { type: 'share_stopped'; session: string; group: string; file: string };

export type ChangeType = ChangeBody['type'];

export interface Change {
  seq: number;
  epoch: number;
  body: ChangeBody;
}

/** The canonical text of a change: what the log stores, what is hashed and shipped. */
export function encodeChange(change: Change): string {
  return JSON.stringify({ seq: change.seq, epoch: change.epoch, ...change.body });
}

export function decodeChange(text: string): Change {
  const { seq, epoch, ...body } = JSON.parse(text) as { seq: number; epoch: number } & ChangeBody;
  if (!Number.isInteger(seq) || !Number.isInteger(epoch) || typeof body.type !== 'string') {
    throw new Error(`malformed change: ${text.slice(0, 120)}`);
  }
  return { seq, epoch, body: body as ChangeBody };
}

/**
 * A Change is one replicated state transition. It carries every value the
 * primary chose — ids, times, hashes — so that `apply` is a pure function of
 * (state, change) and the replica ends in exactly the primary's state.
 * Session ids travel as decimal strings: JSON numbers lose precision past 2^53.
 */
export type ChangeBody =
  | { type: 'user_created'; user: string; salt: string; hash: string; params: string; at: number }
  | {
      type: 'session_opened';
      session: string;
      user: string;
      at: number;
      expires: number;
      /**
       * The user's sessions this login ends, as `session_closed` would, to stay within
       * --max-sessions-per-user. Chosen by the primary's handler, never by `apply`: the
       * replica and a replay must end the same ones. Absent when none (the text of an
       * ordinary login stays what it was).
       */
      evicted?: string[];
    }
  | { type: 'session_closed'; session: string }
  | { type: 'sessions_touched'; sessions: Array<[session: string, expires: number]> }
  | { type: 'sessions_expired'; sessions: string[]; at: number }
  /** A replica became the primary: a new history starts with this change, whose own epoch is the new one. */
  | { type: 'promoted'; history: string; at: number }
  /** Request records older than `before` are dropped: their clients are long gone. */
  | { type: 'requests_forgotten'; before: number }
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

/**
 * The answer to a client's write, remembered with the change it made so that
 * a retry of the same request (same client id and number, e.g. after a
 * failover) is answered with it instead of running twice. Replicated like
 * everything else, so the other tracker can answer the retry too.
 */
export interface RequestRecord {
  /** The client's id: 16 lowercase hex digits. */
  client: string;
  /** The client's request number. */
  n: number;
  /** A digest of the command line, so that a number reused for another request is refused. */
  digest: string;
  /** The answer's payload and session field (decimal). */
  answer: string;
  session: string;
  at: number;
}

export interface Change {
  seq: number;
  epoch: number;
  body: ChangeBody;
  req?: RequestRecord;
}

/** The canonical text of a change: what the log stores, what is hashed and shipped. */
export function encodeChange(change: Change): string {
  // The same text as JSON.stringify({ seq, epoch, ...body, req }), spliced instead of copied into a new
  // object: seq and epoch are integers, and a body has neither of those keys nor req (it starts with type).
  const body = JSON.stringify(change.body);
  const head = `{"seq":${change.seq},"epoch":${change.epoch},${body.slice(1)}`;
  if (change.req === undefined) return head;
  return `${head.slice(0, -1)},"req":${JSON.stringify(change.req)}}`;
}

export function decodeChange(text: string): Change {
  const { seq, epoch, req, ...body } = JSON.parse(text) as { seq: number; epoch: number; req?: RequestRecord } & ChangeBody;
  if (!Number.isInteger(seq) || !Number.isInteger(epoch) || typeof body.type !== 'string') {
    throw new Error(`malformed change: ${text.slice(0, 120)}`);
  }
  return req === undefined ? { seq, epoch, body: body as ChangeBody } : { seq, epoch, body: body as ChangeBody, req };
}

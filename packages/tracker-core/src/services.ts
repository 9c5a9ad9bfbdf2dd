import type { Logger } from 'pino';
import type { Clock, Entropy } from './clock.js';
import type { HashSlots } from './auth/hash-slots.js';
import type { FailureWindow } from './limits/rate-limit.js';
import type { SessionHub } from './net/session-hub.js';
import type { TrackerOptions } from './options.js';
import type { ChangeLog } from './state/change-log.js';
import type { StateStore } from './store/store.js';

/** Everything a handler may use, passed in once: no module-level state. */
export interface Services {
  options: TrackerOptions;
  logger: Logger;
  /** The state (in memory): every handler reads it; only the change log writes it. */
  store: StateStore;
  log: ChangeLog;
  clock: Clock;
  entropy: Entropy;
  hub: SessionHub;
  /** Failed logins, keyed `user:<name>` and `conn:<id>`. */
  loginFailures: FailureWindow;
  /** Every password hash runs through it, so that hashing never crowds the log's sync out of the thread pool. */
  hashSlots: HashSlots;
  /** Rendered answers that only change with state; dropped on every relevant change. */
  cache: AnswerCache;
  /** On a replica: has the primary run a write, answering once its change is applied here. */
  forward?: (session: bigint, payload: Buffer, origin: string) => Promise<Reply>;
  /** On a replica: asks the primary to extend a session's expiry (activity here counts too). */
  touch?: (sessionKey: string, expires: number) => void;
  /** Writes with a request id that are running now: a retry waits for the first attempt. */
  inFlight: InFlightRequests;
  /** `key=value` fields of `status` that only the tracker knows (replication, connections). */
  statusFields(): Record<string, string | number>;
}

/** Caches answers that are expensive to render and change rarely (list_groups). */
export class AnswerCache {
  private readonly answers = new Map<string, string>();

  get(key: string, render: () => string): string {
    let answer = this.answers.get(key);
    if (answer === undefined) {
      answer = render();
      this.answers.set(key, answer);
    }
    return answer;
  }

  clear(): void {
    if (this.answers.size > 0) this.answers.clear();
  }
}

/** The per-request view a handler gets. */
export interface RequestContext {
  services: Services;
  /** The client connection that asked (`Request.origin`). */
  origin: string;
  /** The frame's session when it is live, with its user. */
  session: { id: bigint; key: string; user: string } | undefined;
  /** The client's request id (`@<client>:<n>`), when it named one. */
  requestId?: RequestId;
}

/** A client's name for one request: its id, the request's number, a digest of the frame's session and command line. */
export interface RequestId {
  client: string;
  n: number;
  digest: string;
}

/**
 * The answer of a command whose effect is decided only after an await: the
 * connection runs nothing else of this peer's until `reply` settles.
 */
export class OrderedReply {
  constructor(readonly reply: Promise<Reply>) {}
}

/** What dispatch gives back for one request. */
export type Outcome = Reply | Promise<Reply> | OrderedReply;

export interface Reply {
  payload: string;
  /** The session field of the response when it is not the request's own (login, logout). */
  session?: bigint;
}

/**
 * The writes with a request id that have started and not yet answered, so
 * that a retry racing its first attempt (a client that failed over to a new
 * connection of the same tracker) waits for that attempt's answer.
 */
export class InFlightRequests {
  private readonly running = new Map<string, { n: number; digest: string; reply: Promise<Reply> }>();

  start(id: RequestId, reply: Promise<Reply>): void {
    this.running.set(id.client, { n: id.n, digest: id.digest, reply });
    const done = (): void => {
      if (this.running.get(id.client)?.reply === reply) this.running.delete(id.client);
    };
    reply.then(done, done);
  }

  /** The attempt running under this id's client and number, whatever its digest. */
  find(id: RequestId): { digest: string; reply: Promise<Reply> } | undefined {
    const entry = this.running.get(id.client);
    return entry && entry.n === id.n ? entry : undefined;
  }
}

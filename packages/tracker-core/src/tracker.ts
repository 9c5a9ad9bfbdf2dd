import { randomBytes } from 'node:crypto';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { encodeFrame, err } from '@tracker-cluster/protocol';
import { SyncServer } from './sync/primary-link.js';
import { ReplicaLink } from './sync/replica-link.js';
import type { Clock, Entropy } from './clock.js';
import { cryptoEntropy, systemClock } from './clock.js';
import { dispatch, touchGranularity } from './handlers/dispatch.js';
import { FailureWindow } from './limits/rate-limit.js';
import { Connection } from './net/connection.js';
import { SessionHub } from './net/session-hub.js';
import type { TrackerOptions } from './options.js';
import type { Services } from './services.js';
import { AnswerCache, InFlightRequests, OrderedReply } from './services.js';
import type { Change } from './state/changes.js';
import { ChangeLog } from './state/change-log.js';
import type { ChangeLogHooks } from './state/change-log.js';
import { LogStore } from './store/log-store.js';
import { Store, StoreOpenError } from './store/store.js';

export interface TrackerDeps {
  clock?: Clock;
  entropy?: Entropy;
  /**
   * Called once if the tracker can no longer store changes (its state file
   * can be neither written nor rebuilt from the log). The tracker has
   * already stopped taking connections; the owner of the process should end
   * it, so that clients move to the other tracker.
   */
  onFatal?: (error: unknown) => void;
}

/** Changes after which a cached `list_groups` answer is stale. */
const GROUP_LIST_CHANGES: ReadonlySet<Change['body']['type']> = new Set(['group_created', 'request_accepted', 'member_left']);
/** Sessions purged per change, so that one purge never becomes a huge transaction. */
const PURGE_BATCH = 1000;

/**
 * One tracker: the store, the change log, and the connections. It never
 * opens a listening socket; the CLI hands it each accepted stream.
 */
export class Tracker {
  readonly options: TrackerOptions;
  private readonly logger: Logger;
  private readonly store: Store;
  private readonly logStore: LogStore;
  private readonly log: ChangeLog;
  private readonly services: Services;
  private readonly connections = new Set<Connection>();
  private readonly purgeTimer: NodeJS.Timeout;
  /** The primary's end of the SYNC: link. */
  private readonly sync: SyncServer | undefined;
  /** The replica's link to its primary. */
  private readonly replicaLink: ReplicaLink | undefined;
  private nextConnectionId = 1;
  private closing = false;

  private constructor(options: TrackerOptions, logger: Logger, deps: TrackerDeps) {
    this.options = options;
    this.logger = logger;
    // The log is the durable record (synchronous as configured); the state
    // file is rebuilt from it after a crash, so it does without fsync per commit.
    this.store = Store.open(options.dbPath, 'NORMAL');
    try {
      this.logStore = LogStore.open(logPathFor(options.dbPath), options.dbSynchronous);
    } catch (error) {
      this.store.close();
      throw error;
    }
    initMeta(this.store);
    const cache = new AnswerCache();
    const hub = new SessionHub();
    const clock = deps.clock ?? systemClock;
    this.log = openChangeLog(this.store, this.logStore, logger.child({ component: 'change-log' }), {
      onApplied: (change) => {
        if (GROUP_LIST_CHANGES.has(change.body.type)) cache.clear();
      },
      onRollback: () => cache.clear(),
      afterCommit: (batch) => this.sync?.onCommitted((batch.changes[batch.changes.length - 1] as Change).seq),
      onDurable: (batch) => hub.deliver(batch.events, this.store, clock.now()),
      onFatal: (error) => {
        this.closing = true;
        for (const connection of this.connections) void connection.shutdown();
        deps.onFatal?.(error);
      },
    });
    this.services = {
      options,
      logger,
      store: this.store,
      log: this.log,
      clock,
      entropy: deps.entropy ?? cryptoEntropy,
      hub,
      loginFailures: new FailureWindow(options.maxLoginFailures, options.loginWindowMs),
      cache,
      inFlight: new InFlightRequests(),
      statusFields: () => this.statusFields(),
    };
    this.purgeTimer = setInterval(() => this.purgeExpired(), options.sessionPurgeIntervalMs);
    this.purgeTimer.unref();
    const syncDeps = { secret: options.secret, store: this.store, log: this.log, logger };
    if (options.role === 'primary') {
      this.sync = new SyncServer({
        ...syncDeps,
        logStore: this.logStore,
        syncMode: options.syncMode,
        syncTimeoutMs: options.syncTimeoutMs,
        // No session hub callback: the link must not become a session's event connection.
        // The replica's clock is not trusted past ours: an expiry is at most our now + TTL.
        runTouch: (key, expires) => {
          const row = this.store.session(key);
          const now = this.services.clock.now();
          const capped = Math.min(expires, now + options.sessionTtlMs);
          if (row && row.expires_at > now && capped - row.expires_at >= touchGranularity(options.sessionTtlMs)) {
            this.log.append({ type: 'sessions_touched', sessions: [[key, capped]] });
          }
        },
        runForwarded: async (session, payload, connectionId) => {
          const outcome = dispatch(this.services, { connectionId, session, payload });
          return outcome instanceof OrderedReply ? outcome.reply : outcome;
        },
      });
    } else if (options.peer) {
      const link = new ReplicaLink({ ...syncDeps, primary: options.peer });
      this.replicaLink = link;
      this.services.forward = (session, payload) => link.forward(session, payload);
      this.services.touch = (key, expires) => link.touch(key, expires, touchGranularity(options.sessionTtlMs));
      link.start();
    }
  }

  /** Opens the database (throws StoreOpenError) and readies the tracker. */
  static open(options: TrackerOptions, logger: Logger, deps: TrackerDeps = {}): Tracker {
    return new Tracker(options, logger, deps);
  }

  get connectionCount(): number {
    return this.connections.size;
  }

  handleConnection(stream: Duplex, remote = 'unknown'): void {
    if (this.closing || this.connections.size >= this.options.maxConnections) {
      const why = this.closing ? 'tracker is shutting down' : `too many connections (max ${this.options.maxConnections})`;
      this.logger.warn({ remote }, `refusing connection: ${why}`);
      stream.on('error', () => undefined);
      stream.end(encodeFrame(0n, err('BUSY', why)));
      setTimeout(() => stream.destroy(), 1000).unref();
      return;
    }
    const id = this.nextConnectionId++;
    const logger = this.logger.child({ conn: id, remote });
    const connection = new Connection(
      id,
      stream,
      remote,
      this.options,
      (frame, rateLimited, conn) => {
        if (!rateLimited && isSyncPayload(frame.payload)) {
          const reply = this.sync
            ? this.sync.handle(conn, frame)
            : { payload: err('FORBIDDEN', 'this tracker is a replica: it takes no tracker links') };
          return { payload: reply.payload, session: this.answerSession(frame.session) };
        }
        return dispatch(this.services, { connectionId: conn.id, session: frame.session, payload: frame.payload, rateLimited }, (key) =>
          this.services.hub.present(conn, key),
        );
      },
      logger,
    );
    this.connections.add(connection);
    logger.debug('connection opened');
    void connection.closed.then(() => {
      this.connections.delete(connection);
      this.services.hub.remove(connection);
      this.sync?.forget(connection);
      logger.debug('connection closed');
    });
  }

  /** The session field of an answer to a request carrying `id` (PROTOCOL.md §2): echoed when live, else 0. */
  private answerSession(id: bigint): bigint {
    if (id === 0n) return 0n;
    const row = this.store.session(id.toString(10));
    return row && row.expires_at > this.services.clock.now() ? id : 0n;
  }

  describe(): string {
    return `role=${this.options.role} epoch=${this.log.epoch} seq=${this.log.seq}`;
  }

  /** Graceful stop: no new requests, answer what is pending, commit, close the database. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    clearInterval(this.purgeTimer);
    this.replicaLink?.stop();
    // Clients first: their pending answers may still wait for the replica.
    await Promise.all([...this.connections].filter((c) => !c.isLink).map((c) => c.shutdown()));
    await this.log.drain();
    // Then the SyncQueue: the replica gets, and acknowledges, everything committed.
    await this.sync?.flush(this.options.syncTimeoutMs);
    this.sync?.close();
    await Promise.all([...this.connections].map((c) => c.shutdown()));
    await this.log.close();
    this.store.close();
    this.logStore.close();
    this.logger.info({ seq: this.log.seq }, 'tracker stopped');
  }

  private statusFields(): Record<string, string | number> {
    const link: Record<string, string | number> =
      this.options.role === 'primary'
        ? { ...(this.sync?.status() ?? { replica: 'disconnected', replica_seq: 0, replica_lag: 0, degraded: 1 }) }
        : { primary: this.replicaLink?.connected ? 'connected' : 'disconnected' };
    return {
      role: this.options.role,
      epoch: this.log.epoch,
      seq: this.log.seq,
      log_hash: this.log.logHash,
      ...link,
      history: this.store.getMeta('history_id') ?? '',
      connections: this.connections.size,
    };
  }

  private purgeExpired(): void {
    if (this.closing || this.options.role !== 'primary') return;
    const now = this.services.clock.now();
    const expired = this.store.expiredSessions(now, PURGE_BATCH);
    if (expired.length > 0) {
      this.log.append({ type: 'sessions_expired', sessions: expired, at: now });
      this.logger.info({ sessions: expired.length }, 'expired sessions purged');
    }
    // A client retries a write within moments of a failover; after a session TTL its record is dead weight.
    const before = now - this.options.sessionTtlMs;
    const oldest = this.store.oldestClientRequest();
    if (oldest !== undefined && oldest < before) this.log.append({ type: 'requests_forgotten', before });
  }
}

/** The log file that goes with a state file: `<db>-log`, beside it. */
export function logPathFor(dbPath: string): string {
  return `${dbPath}-log`;
}

/** Opens the change log, closing both files if they do not belong together. */
function openChangeLog(store: Store, logStore: LogStore, logger: Logger, hooks: ChangeLogHooks): ChangeLog {
  try {
    return new ChangeLog(store, logStore, logger, hooks);
  } catch (error) {
    store.close();
    logStore.close();
    throw new StoreOpenError(store.path, error);
  }
}

/** A new database gets its history id and epoch 1; both are part of the state a snapshot carries. */
function initMeta(store: Store): void {
  if (store.getMeta('history_id') !== undefined) return;
  store.db.transaction(() => {
    store.setMeta('history_id', randomBytes(16).toString('hex'));
    if (store.getMeta('epoch') === undefined) store.setMeta('epoch', 1);
    if (store.getMeta('seq') === undefined) store.setMeta('seq', 0);
  })();
}

const SYNC_LETTERS = [0x53, 0x59, 0x4e, 0x43]; // S Y N C

/**
 * Tracker-link payloads are routed before client dispatch; the prefix is
 * matched case-insensitively, like command names. Runs on every request, so
 * it compares bytes (`& 0xdf` folds ASCII lower case) instead of building strings.
 */
function isSyncPayload(payload: Buffer): boolean {
  if (payload.length < 5 || payload[4] !== 0x3a) return false;
  for (let i = 0; i < 4; i++) if (((payload[i] as number) & 0xdf) !== SYNC_LETTERS[i]) return false;
  return true;
}

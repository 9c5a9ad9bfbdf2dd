import { randomBytes } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { performance } from 'node:perf_hooks';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { TrackerError, encodeFrame, err, formatHostPort } from '@tracker-cluster/protocol';
import { AdminServer } from './sync/admin.js';
import { DEFAULT_THREAD_POOL_SIZE, HashSlots, hashSlotsFor } from './auth/hash-slots.js';
import { CLUSTER_ID_KEY, describePosition, primaryOfAnotherCluster } from './state/cluster-id.js';
import { probePeer } from './sync/peer-probe.js';
import { startingRole } from './sync/starting-role.js';
import { SyncServer } from './sync/primary-link.js';
import { ReplicaLink } from './sync/replica-link.js';
import type { Clock, Entropy } from './clock.js';
import { cryptoEntropy, systemClock } from './clock.js';
import { COMMANDS, dispatch } from './handlers/dispatch.js';
import { sessionExpiry, touchGranularity } from './handlers/session-ttl.js';
import { FailureWindow } from './limits/rate-limit.js';
import { ConnectionSlots, PROBATION_MS, PROBATION_SETUP_MS, probationAllows } from './net/admission.js';
import { Connection, MAX_EVENT_BACKLOG_TOTAL_BYTES } from './net/connection.js';
import { ByteBudget } from './net/byte-budget.js';
import { SessionHub } from './net/session-hub.js';
import type { Readiness, SnapshotDirection, TrackerGauges, TrackerObserver } from './observe/observer.js';
import { commandLabel, resultCode } from './observe/observer.js';
import type { Role, TrackerOptions } from './options.js';
import type { Outcome, Reply, Services } from './services.js';
import { AnswerCache, InFlightRequests, OrderedReply } from './services.js';
import type { Change } from './state/changes.js';
import { ChangeLog, STATE_SYNCHRONOUS } from './state/change-log.js';
import type { ChangeLogHooks } from './state/change-log.js';
import type { MemoryState } from './state/memory-state.js';
import { Checkpointer } from './store/checkpointer.js';
import { DatabaseLock, canonicalDbPath, refuseHardLinks } from './store/db-lock.js';
import { LogStore } from './store/log-store.js';
import { Store, StoreOpenError } from './store/store.js';

export interface TrackerDeps {
  clock?: Clock;
  entropy?: Entropy;
  /**
   * Called once if the tracker can no longer store changes (its state file
   * can be neither written nor caught up with the log, or the log's sync
   * failed). The tracker has
   * already stopped taking connections; the owner of the process should end
   * it, so that clients move to the other tracker.
   */
  onFatal?: (error: unknown) => void;
  /** Metrics hooks (the CLI's admin listener); none by default, and then requests cost nothing extra. */
  observer?: TrackerObserver;
  /**
   * Password hashes run at once (auth/hash-slots.ts: `hashSlotsFor` of the thread pool's size, which the process's
   * owner knows from UV_THREADPOOL_SIZE, and the cores); by default as for libuv's default pool.
   */
  hashSlots?: number;
}

const COMMAND_NAMES: ReadonlySet<string> = new Set(COMMANDS.keys());

/** Changes after which a cached `list_groups` answer is stale. */
const GROUP_LIST_CHANGES: ReadonlySet<Change['body']['type']> = new Set(['group_created', 'request_accepted', 'member_left']);
/** How often the log is trimmed to `--log-retention`. */
const RETENTION_INTERVAL_MS = 1000;
/** How often a primary asks its peer for its role and epoch (fencing), and how long it waits. */
const FENCE_PROBE_MS = 2000;
const FENCE_PROBE_TIMEOUT_MS = 2000;
/** Sessions purged per change, so that one purge never becomes a huge transaction. */
const PURGE_BATCH = 1000;

/**
 * One tracker: the store, the change log, and the connections. It never
 * opens a listening socket; the CLI hands it each accepted stream.
 */
export class Tracker {
  private currentOptions: TrackerOptions;
  /** The options in force; `role` changes on promotion and fencing. */
  get options(): TrackerOptions {
    return this.currentOptions;
  }
  private readonly logger: Logger;
  /** The state file: opened here, then the change log's to keep. */
  private readonly store: Store;
  private readonly logStore: LogStore;
  /** This process's hold on the database (store/db-lock.ts), released at close. */
  private readonly lock: DatabaseLock;
  private readonly log: ChangeLog;
  /** The state every request reads (the change log's, in memory). */
  private readonly state: MemoryState;
  private readonly services: Services;
  private readonly connections = new Set<Connection>();
  /** Events held for clients that do not read them, all connections together (net/byte-budget.ts). */
  private readonly eventBudget = new ByteBudget(MAX_EVENT_BACKLOG_TOTAL_BYTES);
  private readonly slots: ConnectionSlots;
  private readonly purgeTimer: NodeJS.Timeout;
  private readonly retentionTimer: NodeJS.Timeout;
  private fenceTimer: NodeJS.Timeout | undefined;
  /** The other primary the fencing probe last reported, so that it is logged once, not every probe. */
  private reportedPeerPrimary: number | undefined;
  /** The fencing probe found a primary of another cluster at the peer's address, and said so. */
  private reportedForeignPeer = false;
  /** The primary's end of the SYNC: link (primary only). */
  private sync: SyncServer | undefined;
  /** The replica's link to its primary (replica only). */
  private replicaLink: ReplicaLink | undefined;
  private readonly admin: AdminServer;
  /** Checkpoints the WAL files off the event loop. */
  private readonly checkpointer: Checkpointer;
  private readonly observer: TrackerObserver | undefined;
  /**
   * False while the state is not one a client may be served from: while a
   * replica installs a snapshot (`/readyz` reports it).
   */
  private stateConsistent = true;
  private nextConnectionId = 1;
  private closing = false;

  private constructor(options: TrackerOptions, logger: Logger, deps: TrackerDeps, lock: DatabaseLock) {
    this.currentOptions = options;
    this.lock = lock;
    this.logger = logger;
    this.observer = deps.observer;
    // The log is the durable record (synchronous as configured); the state
    // file is a checkpoint of it, synced at each of its rare commits (STATE_SYNCHRONOUS).
    this.store = Store.open(options.dbPath, STATE_SYNCHRONOUS);
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
      afterCommit: (batch) => this.sync?.onCommitted(batch),
      onDurable: (batch) => hub.deliver(batch.events, this.state, clock.now()),
      onFatal: (error) => {
        this.closing = true;
        for (const connection of this.connections) void connection.shutdown();
        deps.onFatal?.(error);
      },
    });
    this.state = this.log.state;
    this.slots = new ConnectionSlots(options.maxConnections);
    this.checkpointer = new Checkpointer([options.dbPath, logPathFor(options.dbPath)], logger);
    this.services = {
      options,
      logger,
      store: this.state,
      log: this.log,
      clock,
      entropy: deps.entropy ?? cryptoEntropy,
      hub,
      loginFailures: new FailureWindow(options.maxLoginFailures, options.loginWindowMs),
      hashSlots: new HashSlots(deps.hashSlots ?? hashSlotsFor(DEFAULT_THREAD_POOL_SIZE, availableParallelism())),
      cache,
      inFlight: new InFlightRequests(),
      statusFields: () => this.statusFields(),
    };
    this.purgeTimer = setInterval(() => this.purgeExpired(), options.sessionPurgeIntervalMs);
    this.purgeTimer.unref();
    this.retentionTimer = setInterval(() => this.applyRetention(), RETENTION_INTERVAL_MS);
    this.retentionTimer.unref();
    this.admin = new AdminServer(
      options.secret,
      () => this.promote(),
      (remote) => this.logger.warn({ remote }, 'admin action refused: authentication failed (wrong secret?)'),
    );
    const start = startingRole(options.role, this.log.epoch, this.logStore.ledEpoch());
    if (start.reason !== undefined) {
      this.logger.warn({ configured: options.role, role: start.role, epoch: this.log.epoch }, `starting as the ${start.role}, not as configured: ${start.reason}`);
      this.setRole(start.role);
    }
    if (this.options.role === 'primary') this.actAsPrimary();
    else this.followPrimary();
  }

  /** Serves as the primary: answers replica links, and watches the peer for a higher epoch. */
  private actAsPrimary(): void {
    // What the next start goes by (sync/starting-role.ts); in a promotion's batch, durable with it.
    if (this.logStore.ledEpoch() !== this.log.epoch) this.logStore.setLedEpoch(this.log.epoch);
    this.sync = new SyncServer({
      secret: this.options.secret,
      log: this.log,
      logger: this.logger,
      logStore: this.logStore,
      syncMode: this.options.syncMode,
      syncTimeoutMs: this.options.syncTimeoutMs,
      // No session hub callback: the link must not become a session's event connection.
      // The replica's clock is not trusted past ours: an expiry is at most the one our own use would give.
      // A session that expired here but is not purged yet is extended too: it was in use at the
      // replica while this primary could not hear of it (the touch is sent again when the link returns).
      runTouch: (key, expires) => {
        const row = this.state.session(key);
        const now = this.services.clock.now();
        const capped = Math.min(expires, sessionExpiry(now, this.options.sessionTtlMs));
        if (row && capped > now && capped - row.expires_at >= touchGranularity(this.options.sessionTtlMs)) {
          this.log.append({ type: 'sessions_touched', sessions: [[key, capped]] });
        }
      },
      runForwarded: async (session, payload, origin) => {
        // Stopping, like its own connections, the primary starts nothing new. Said plainly: the link
        // may close before an answer, and the replica could then only say "may or may not".
        if (this.closing) {
          return { payload: err('PRIMARY_UNAVAILABLE', 'the primary is stopping; this write was not applied: retry in a moment'), session: this.answerSession(session) };
        }
        const outcome = dispatch(this.services, { origin, session, payload });
        return outcome instanceof OrderedReply ? outcome.reply : outcome;
      },
      onHigherEpoch: (epoch, kept) => this.stepDown(kept === undefined ? `a replica dialled in with epoch ${epoch}` : `the replica was promoted to epoch ${epoch}`, kept),
      onSnapshotSent: () => this.snapshotTransferred('sent'),
    });
    delete this.services.forward;
    delete this.services.touch;
    const peer = this.options.peer;
    if (peer) {
      this.fenceTimer = setInterval(() => void this.checkPeer(), FENCE_PROBE_MS);
      this.fenceTimer.unref();
    }
  }

  /** Serves as a replica of the configured primary (none: reads only, writes PRIMARY_UNAVAILABLE). */
  private followPrimary(): void {
    const primary = this.options.peer;
    if (!primary) return;
    const granularity = touchGranularity(this.options.sessionTtlMs);
    const link = new ReplicaLink({
      secret: this.options.secret,
      snapshotPath: `${this.options.dbPath}.snapshot`,
      log: this.log,
      logger: this.logger,
      primary,
      onSnapshot: (phase) => {
        // A failed install left the old state in place (one transaction): servable again.
        this.setStateConsistent(phase !== 'installing');
        if (phase === 'installed') this.snapshotTransferred('installed');
      },
      onStreaming: () => {
        for (const [key, expires] of this.state.settleLocalExtensions()) link.touch(key, expires, granularity);
      },
    });
    this.replicaLink = link;
    this.services.forward = (session, payload, origin) => link.forward(session, payload, origin);
    // Kept here too: a session used only here lives on while the primary cannot be reached, and a promotion keeps it.
    this.services.touch = (key, expires) => {
      this.state.extendLocally(key, expires);
      link.touch(key, expires, granularity);
    };
    link.start();
  }

  private setRole(role: Role): void {
    this.currentOptions = { ...this.currentOptions, role };
    this.services.options = this.currentOptions;
  }

  /**
   * Promotion (an authenticated admin action): this replica becomes the
   * primary of a new epoch and history, recorded as a change in its log.
   * Resolves to the answer's text.
   */
  async promote(): Promise<string> {
    if (this.closing) throw new Error('the tracker is shutting down');
    if (this.options.role === 'primary') return `already primary epoch=${this.log.epoch} history=${this.state.getMeta('history_id') ?? ''}`;
    // Half a snapshot is no state to serve writes from, and its install would overwrite the promotion.
    if (this.replicaLink?.current.kind === 'snapshot') throw new Error('a snapshot from the primary is being installed; promote again once it is done');
    // Nothing from the primary is applied past this point: `kept` is where the old history ends here.
    const handOver = this.replicaLink?.handOver();
    this.replicaLink = undefined;
    delete this.services.forward;
    delete this.services.touch;
    const kept = this.log.seq;
    let told = false;
    try {
      await this.log.drain();
      const history = randomBytes(16).toString('hex');
      const { durable } = this.log.promote(history, this.services.clock.now());
      // Sessions extended here while the old primary did not hear of it: the new history holds their extensions.
      const extended = this.state.settleLocalExtensions();
      if (extended.length > 0) this.log.append({ type: 'sessions_touched', sessions: extended });
      this.setRole('primary');
      this.actAsPrimary();
      await durable;
      this.state.settleLocalExtensions();
      // Only now, with the promotion durable: the old primary, still linked, steps down on hearing it.
      handOver?.tell(this.log.epoch, kept);
      told = true;
      this.logger.warn({ epoch: this.log.epoch, history, seq: this.log.seq, kept }, 'promoted: this tracker is now the primary');
      return `promoted epoch=${this.log.epoch} history=${history}`;
    } finally {
      if (!told) handOver?.drop();
    }
  }

  /**
   * Fencing: another tracker holds a higher epoch, so this one is not the
   * primary any more. It stops taking writes at once and follows its peer
   * (the address it had as its replica) as a replica; its own unreplicated
   * tail is replaced by the new primary's snapshot.
   */
  private stepDown(reason: string, kept?: number): void {
    if (this.options.role !== 'primary' || this.closing) return;
    this.logger.error({ reason, epoch: this.log.epoch, seq: this.log.seq }, 'fenced: another tracker is primary with a higher epoch; following it as a replica');
    if (this.fenceTimer) clearInterval(this.fenceTimer);
    this.fenceTimer = undefined;
    // The new primary holds our history up to `kept` when it told us, else at least what its link acknowledged;
    // writers of anything after it, not answered yet, get an error rather than an OK for a change nobody keeps.
    const held = kept ?? this.sync?.status().replica_seq ?? 0;
    this.log.disown(
      held,
      new TrackerError(
        'PRIMARY_UNAVAILABLE',
        'this tracker stopped being the primary (another was promoted) before the change reached it; it may not have been kept: retry at the new primary',
      ),
    );
    this.sync?.close();
    this.sync = undefined;
    this.setRole('replica');
    this.followPrimary();
  }

  /**
   * Asks the peer (`--replica` of a primary) for its role and epoch; a
   * primary of a higher epoch fences this one. The CLI runs it once before
   * taking clients; then it runs every few seconds. An unreachable peer
   * changes nothing: a primary runs alone while its replica is away.
   */
  async checkPeer(): Promise<void> {
    const peer = this.options.peer;
    if (this.options.role !== 'primary' || !peer) return;
    const seen = await probePeer(peer, FENCE_PROBE_TIMEOUT_MS).catch(() => undefined);
    if (this.options.role !== 'primary' || !seen || seen.role !== 'primary') {
      this.reportedPeerPrimary = undefined;
      this.reportedForeignPeer = false;
      return;
    }
    const at = formatHostPort(peer);
    const mine = { cluster: this.state.getMeta(CLUSTER_ID_KEY), seq: this.log.seq };
    if (primaryOfAnotherCluster(mine, seen)) {
      // Not this cluster's: whatever its epoch, it neither fences this primary nor is fenced by it.
      if (!this.reportedForeignPeer) {
        this.logger.error(
          { peer: at, epoch: seen.epoch },
          `the peer is a primary of another cluster (${describePosition(seen)}; this tracker: ${describePosition(mine)}): ignored; check --replica and the peer's --db`,
        );
      }
      this.reportedForeignPeer = true;
      return;
    }
    if (seen.epoch > this.log.epoch) {
      this.stepDown(`the tracker at ${at} is primary with epoch ${seen.epoch}`);
      return;
    }
    if (this.reportedPeerPrimary === seen.epoch) return;
    this.reportedPeerPrimary = seen.epoch;
    // Nothing can tell which of two primaries of one epoch holds the writes to keep: only an operator can.
    if (seen.epoch === this.log.epoch) {
      this.logger.error(
        { peer: at, epoch: seen.epoch },
        'two primaries of the same epoch: the peer is primary too, and each takes writes the other lacks; stop one and restart it as tracker-replica (docs/operations.md)',
      );
    } else {
      this.logger.warn({ peer: at, epoch: seen.epoch, ours: this.log.epoch }, 'the peer still acts as primary with an older epoch; it steps down once it learns of ours');
    }
  }

  /**
   * Retention: the log keeps `--log-retention` changes, fewer if they pass
   * `--log-retention-bytes`, and always everything the replica link may
   * still need (and the state file: ChangeLog.truncate).
   */
  private applyRetention(): void {
    if (this.closing) return;
    let through = Math.max(this.log.seq - this.options.logRetention, this.log.sizeRetentionThrough(this.options.logRetentionBytes) ?? 0);
    const needed = this.sync?.neededAfter();
    if (needed !== undefined) through = Math.min(through, needed);
    if (through > this.log.baseSeq) this.log.truncate(through);
  }

  /** Opens the database (throws StoreOpenError; the database in use by another process is one) and readies the tracker. */
  static open(given: TrackerOptions, logger: Logger, deps: TrackerDeps = {}): Tracker {
    // Every file is named after the database's real path: an alias (a symlink) is the same database;
    // a second name (a hard link) cannot be told from the first, so it is refused.
    const options = { ...given, dbPath: canonicalDbPath(given.dbPath) };
    let lock: DatabaseLock;
    try {
      // Before the lock, which would otherwise leave a lock file beside a second name.
      refuseHardLinks([options.dbPath, logPathFor(options.dbPath)]);
      lock = DatabaseLock.acquire(options.dbPath);
    } catch (error) {
      throw new StoreOpenError(options.dbPath, error);
    }
    try {
      return new Tracker(options, logger, deps, lock);
    } catch (error) {
      lock.release();
      throw error;
    }
  }

  get connectionCount(): number {
    return this.connections.size;
  }

  handleConnection(stream: Duplex, remote = 'unknown'): void {
    const admission = this.closing ? 'refused' : this.slots.take();
    const full = `too many connections (max ${this.options.maxConnections})`;
    if (admission === 'refused') {
      const why = this.closing ? 'tracker is shutting down' : full;
      this.logger.warn({ remote }, `refusing connection: ${why}`);
      stream.on('error', () => undefined);
      stream.end(encodeFrame(0n, err('BUSY', why)));
      setTimeout(() => stream.destroy(), 1000).unref();
      return;
    }
    const id = this.nextConnectionId++;
    const logger = this.logger.child({ conn: id, remote });
    // Past the limit, kept for a tracker link, a probe or an admin action (net/admission.ts).
    const refuse = (conn: Connection): void => {
      if (conn.closingSoon) return;
      logger.warn(`refusing connection: ${full}`);
      conn.refuse(new TrackerError('BUSY', full));
    };
    let firstFrame: NodeJS.Timeout | undefined;
    // Made once per connection, not per request: they are on every request's path.
    const origin = String(id);
    const present = (key: string): void => this.services.hub.present(connection, key);
    const connection = new Connection(
      id,
      stream,
      remote,
      this.options,
      (frame, rateLimited, conn) => {
        if (admission === 'probation') {
          clearTimeout(firstFrame);
          const allowed = probationAllows(frame.payload);
          if (allowed === undefined) {
            // Answered in its turn and never run: the last frame, nothing behind it runs (Connection.closeAfterAnswer).
            if (!conn.closingSoon) logger.warn(`refusing connection: ${full}`);
            conn.closeAfterAnswer();
            return { payload: err('BUSY', full), session: 0n };
          }
          if (allowed === 'status') conn.closeAfterAnswer();
        }
        if (!rateLimited && isSyncPayload(frame.payload)) {
          if (isAdminPayload(frame.payload)) {
            const answer = this.admin.handle(conn, frame);
            return answer instanceof Promise ? new OrderedReply(answer) : answer;
          }
          const reply = this.sync
            ? this.sync.handle(conn, frame)
            : { payload: err('FORBIDDEN', 'this tracker is a replica: it takes no tracker links') };
          const answer = { payload: reply.payload, session: this.answerSession(frame.session) };
          return this.observer?.onRequest ? this.observed('sync', performance.now(), answer) : answer;
        }
        const request = { origin, session: frame.session, payload: frame.payload, rateLimited };
        if (!this.observer?.onRequest) return dispatch(this.services, request, present);
        const started = performance.now();
        const outcome = dispatch(this.services, request, present);
        return this.observed(commandLabel(frame.payload, COMMAND_NAMES), started, outcome);
      },
      logger,
      this.eventBudget,
    );
    this.connections.add(connection);
    logger.debug('connection opened');
    let setUp: NodeJS.Timeout | undefined;
    if (admission === 'probation') {
      logger.info(`admitted on probation past --max-connections: a tracker link, probe or admin action may use it`);
      firstFrame = setTimeout(() => refuse(connection), PROBATION_MS);
      setUp = setTimeout(() => {
        if (!connection.isLink) refuse(connection);
      }, PROBATION_SETUP_MS);
    }
    void connection.closed.then(() => {
      clearTimeout(firstFrame);
      clearTimeout(setUp);
      this.slots.release(admission);
      this.connections.delete(connection);
      this.services.hub.remove(connection);
      this.sync?.forget(connection);
      this.admin.forget(connection.id);
      logger.debug('connection closed');
    });
  }

  /** The session field of an answer to a request carrying `id` (PROTOCOL.md §2): echoed when live, else 0. */
  private answerSession(id: bigint): bigint {
    if (id === 0n) return 0n;
    const row = this.state.session(id.toString(10));
    return row && row.expires_at > this.services.clock.now() ? id : 0n;
  }

  /** Reports each answer of `outcome` to the observer once it is ready. */
  private observed(command: string, started: number, outcome: Outcome): Outcome {
    const report = (reply: Reply): Reply => {
      try {
        this.observer?.onRequest?.(command, resultCode(reply.payload), (performance.now() - started) / 1000);
      } catch (error) {
        this.logger.error({ err: error }, 'metrics observer failed');
      }
      return reply;
    };
    if (outcome instanceof OrderedReply) return new OrderedReply(outcome.reply.then(report));
    if (outcome instanceof Promise) return outcome.then(report);
    return report(outcome);
  }

  /** Numbers for metrics, read now: counts come from the state (one pass over its sessions). */
  gauges(): TrackerGauges {
    const counts = this.state.liveCounts(this.services.clock.now());
    const gauges: TrackerGauges = {
      role: this.options.role,
      epoch: this.log.epoch,
      seq: this.log.seq,
      connections: this.connections.size,
      users: counts.users,
      groups: counts.groups,
      liveSessions: counts.liveSessions,
      shares: counts.shares,
      stateFileLag: this.log.committed - this.log.stateFileSeq,
      diskFull: this.log.diskFull,
      eventBacklogBytes: this.eventBudget.inUse,
      passwordHashesWaiting: this.services.hashSlots.waiting,
    };
    if (this.options.role === 'primary') {
      const link = this.sync?.status();
      const depth = this.sync?.queueDepth();
      gauges.replicaConnected = link?.replica === 'connected';
      gauges.replicaSeq = link?.replica_seq ?? 0;
      gauges.replicaLag = link?.replica_lag ?? this.log.committed;
      gauges.degraded = (link?.degraded ?? 1) === 1;
      gauges.syncUnsent = depth?.unsent ?? 0;
      gauges.syncWaiting = depth?.waiting ?? 0;
    } else {
      gauges.primaryConnected = this.replicaLink?.connected ?? false;
    }
    return gauges;
  }

  /** `/readyz`: the database is open, the tracker is taking clients, and its state is consistent. */
  readiness(): Readiness {
    if (this.closing) return { ready: false, reason: 'stopping' };
    if (!this.store.db.open) return { ready: false, reason: 'database closed' };
    if (!this.stateConsistent) return { ready: false, reason: 'installing a snapshot' };
    return { ready: true, reason: 'serving' };
  }

  /**
   * For the snapshot code: the state is being replaced (false) or has been
   * installed (true). While false, `readiness()` is not ready.
   */
  setStateConsistent(consistent: boolean): void {
    this.stateConsistent = consistent;
  }

  /** For the snapshot code: one snapshot was sent to a replica, or installed from the primary. */
  snapshotTransferred(direction: SnapshotDirection): void {
    try {
      this.observer?.onSnapshot?.(direction);
    } catch (error) {
      this.logger.error({ err: error }, 'metrics observer failed');
    }
  }

  describe(): string {
    return `role=${this.options.role} epoch=${this.log.epoch} seq=${this.log.seq}`;
  }

  /** Graceful stop: no new requests, answer what is pending, commit, close the database. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    // One wait for the replica in the whole shutdown, counted from here: a writer pending now is released
    // by its own timeout before this deadline, and the flush must not then wait a whole timeout again.
    const replicaDeadline = Date.now() + this.options.syncTimeoutMs;
    clearInterval(this.purgeTimer);
    clearInterval(this.retentionTimer);
    if (this.fenceTimer) clearInterval(this.fenceTimer);
    // Clients first: their pending answers may still wait for the replica (semi-sync) or, on a
    // replica, for the primary that runs their forwarded writes: its link stays up until they are answered.
    await Promise.all([...this.connections].filter((c) => !c.isLink).map((c) => c.shutdown()));
    this.replicaLink?.stop();
    await this.log.drain();
    // Then the SyncQueue: the replica gets, and acknowledges, everything committed.
    await this.sync?.flush(replicaDeadline);
    this.sync?.close();
    await Promise.all([...this.connections].map((c) => c.shutdown()));
    await this.log.close();
    await this.checkpointer.stop();
    this.store.close();
    this.logStore.close();
    this.lock.release();
    this.logger.info({ seq: this.log.seq }, 'tracker stopped');
  }

  private statusFields(): Record<string, string | number> {
    const link: Record<string, string | number> =
      this.options.role === 'primary'
        ? { ...(this.sync?.status() ?? { replica: 'disconnected', replica_seq: 0, replica_lag: 0, degraded: 1 }) }
        : { primary: this.replicaLink?.connected ? 'connected' : 'disconnected', link: this.replicaLink?.current.kind ?? 'none' };
    return {
      role: this.options.role,
      epoch: this.log.epoch,
      seq: this.log.seq,
      log_hash: this.log.logHash,
      ...link,
      history: this.state.getMeta('history_id') ?? '',
      cluster: this.state.getMeta(CLUSTER_ID_KEY) ?? '',
      log_base: this.log.baseSeq,
      snapshots: this.sync?.snapshotsSent ?? this.replicaLink?.snapshotsInstalled ?? 0,
      connections: this.connections.size,
    };
  }

  private purgeExpired(): void {
    if (this.closing) return;
    if (this.options.role !== 'primary') {
      this.state.settleLocalExtensions();
      return;
    }
    const now = this.services.clock.now();
    const expired = this.state.expiredSessions(now, PURGE_BATCH);
    if (expired.length > 0) {
      this.log.append({ type: 'sessions_expired', sessions: expired, at: now });
      this.logger.info({ sessions: expired.length }, 'expired sessions purged');
    }
    // A client retries a write within moments of a failover; after a session TTL its record is dead weight.
    const before = now - this.options.sessionTtlMs;
    const oldest = this.state.oldestClientRequest();
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

/**
 * A new database gets its history id, its cluster id and epoch 1; all are
 * part of the state a snapshot carries. The cluster id never changes after
 * (a promotion starts a new history, not a new cluster): two trackers with
 * data and different cluster ids never replicate to each other (state/cluster-id.ts).
 */
function initMeta(store: Store): void {
  if (store.getMeta('history_id') !== undefined) return;
  store.db.transaction(() => {
    store.setMeta('history_id', randomBytes(16).toString('hex'));
    store.setMeta(CLUSTER_ID_KEY, randomBytes(16).toString('hex'));
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

/** `SYNC:ADMIN` and `SYNC:PROMOTE`: admin actions, answered on either role. */
function isAdminPayload(payload: Buffer): boolean {
  const space = payload.indexOf(32);
  const name = payload.subarray(0, space < 0 ? Math.min(payload.length, 16) : space).toString('latin1').toUpperCase();
  return AdminServer.handles(name);
}

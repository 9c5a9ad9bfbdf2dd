import type { Logger } from 'pino';
import { TrackerError } from '@tracker-cluster/protocol';
import type { LogPosition, LogStore } from '../store/log-store.js';
import type { Store } from '../store/store.js';
import type { DomainEvent } from './apply.js';
import { applyChange } from './apply.js';
import { GENESIS_HASH, LogMismatchError, nextLogHash, replayLog } from './log-chain.js';

export { GENESIS_HASH, LogMismatchError, nextLogHash } from './log-chain.js';
import type { Change, ChangeBody, RequestRecord } from './changes.js';
import { encodeChange } from './changes.js';

export interface CommittedBatch {
  changes: Change[];
  /** Canonical texts, index-aligned with `changes`. */
  texts: string[];
  events: DomainEvent[];
}

export interface ChangeLogHooks {
  /** Runs after each change is applied (inside the open transaction): drop derived caches. */
  onApplied?: (change: Change) => void;
  /**
   * Runs after each batch commits; the batch's writers are answered when the
   * returned promise settles (semi-sync waits here for the replica's ack).
   */
  afterCommit?: (batch: CommittedBatch) => Promise<void> | void;
  /** Runs when a batch is durable and acknowledged: deliver its events. */
  onDurable?: (batch: CommittedBatch) => void;
  /** Runs after a batch was rolled back, so caches derived from state can be dropped. */
  onRollback?: () => void;
  /**
   * The state file can be neither written nor rebuilt from the log. The log
   * is intact and every answered change is in it, but this process must not
   * go on: the change log refuses all changes from now on, and whoever owns
   * the process should stop it (the CLI exits 1).
   */
  onFatal?: (error: unknown) => void;
}

export interface ChangeLogOptions {
  /** Longest the state file may lag the log on disk (ms); default 100. */
  stateCommitMs?: number;
}

export const DEFAULT_STATE_COMMIT_MS = 100;

export interface Appended {
  change: Change;
  events: DomainEvent[];
  /** Settles when the change is committed (and, in semi-sync, acknowledged). */
  durable: Promise<void>;
}

interface OpenBatch extends CommittedBatch {
  done: Promise<void>;
  resolve: () => void;
  reject: (error: Error) => void;
}

/**
 * Most changes one batch holds. A replica catching up applies a whole
 * socket's worth of backlog in one event-loop turn; unbounded, that made one
 * batch of ~1.4 s during which nothing waiting on a commit was answered, and
 * undoing a failed change replays its batch.
 */
export const MAX_BATCH_CHANGES = 1000;
const SYNC_FAILED = 'the change log could not be synced to disk (fsync failed)';
/** Longest wait between two attempts to write the state file while its disk is full. */
export const MAX_STATE_RETRY_MS = 10_000;
/** At most one "disk full" line per this interval for refused batches; the others are counted. */
const DISK_FULL_LOG_MS = 10_000;

/**
 * SQLite found no room to write (ENOSPC, or a file past its size limit):
 * a fault of the moment, gone once space is freed, unlike an I/O error.
 */
export function isDiskFull(error: unknown): boolean {
  return (error as { code?: unknown } | undefined)?.code === 'SQLITE_FULL';
}

/**
 * The only way state changes, and the durable record of every change.
 *
 * Two SQLite files. The log file holds each change's canonical text; a batch
 * is committed there (synchronous=FULL by default) before anyone is
 * answered: that commit is the durable point. The state file holds the
 * tables the changes describe; it runs inside one long transaction that is
 * committed at most every `stateCommitMs`, so that a busy page is written
 * once per interval instead of once per batch. The state may lag the log on
 * disk, never lead it: after a crash, opening replays the log's tail with the
 * same `applyChange`. `append` applies a change at once (the next request
 * sees it), and the batch commits on the next turn of the event loop, so the
 * changes that arrive together share one commit (group commit). Writers
 * await `durable`, readers `barrier()`: nobody sees what could be lost.
 */
export class ChangeLog {
  private readonly store: Store;
  private readonly logStore: LogStore;
  private readonly log: Logger;
  private readonly hooks: ChangeLogHooks;
  private readonly stateCommitMs: number;
  private batch: OpenBatch | undefined;
  /** The newest batch not rolled back: settles when everything applied so far is durable. */
  private tail: Promise<void> | undefined;
  private committedTail: Promise<void> | undefined;
  /** Highest seq whose batch is committed and acknowledged. */
  private durableSeq: number;
  private committedSeq: number;
  /** Highest seq known to be on disk in the log (committed, then synced). */
  private syncedSeq: number;
  private committedHash: string;
  private lastStateCommit = Date.now();
  private stateTimer: NodeJS.Timeout | undefined;
  /** The seq of the state file's last commit: the log must keep every row after it (a restart replays them). */
  private stateOnDisk = 0;
  /** Set when close() begins: no change is accepted after it. */
  private closing = false;
  private closed = false;
  private fatal: unknown;
  /** A sync of the log failed: no batch is answered any more, whatever later syncs say. */
  private syncFailed = false;
  /** State commits failed in a row for want of disk space; the next one is put off accordingly. */
  private stateCommitFailures = 0;
  /** The last log COMMIT found no room (cleared by the next one that succeeds). */
  private logDiskFull = false;
  /** When a refused batch last logged "disk full", and how many were refused since without a line. */
  private diskFullLoggedAt = 0;
  private diskFullQuiet = 0;
  seq: number;
  logHash: string;
  epoch: number;

  constructor(store: Store, logStore: LogStore, logger: Logger, hooks: ChangeLogHooks = {}, options: ChangeLogOptions = {}) {
    this.store = store;
    this.logStore = logStore;
    this.log = logger;
    this.hooks = hooks;
    this.stateCommitMs = options.stateCommitMs ?? DEFAULT_STATE_COMMIT_MS;
    const position = this.catchUpState();
    this.stateOnDisk = position.seq;
    this.seq = position.seq;
    this.logHash = position.hash;
    this.epoch = Number(store.getMeta('epoch') ?? 1);
    this.committedSeq = this.seq;
    this.committedHash = this.logHash;
    this.durableSeq = this.seq;
    this.syncedSeq = this.seq;
    this.store.db.exec('BEGIN');
  }

  /** The last seq whose batch is committed to the log file (what may be shipped). */
  get committed(): number {
    return this.committedSeq;
  }

  /** The seq the state file on disk holds: behind `committed` by at most one state-commit interval, unless it cannot be written. */
  get stateFileSeq(): number {
    return this.stateOnDisk;
  }

  /** The last commit of the log or of the state file found no room on the disk. */
  get diskFull(): boolean {
    return this.logDiskFull || this.stateCommitFailures > 0;
  }

  /** Applies a change chosen by this tracker (the primary), with the request it answers if the client named one. */
  append(body: ChangeBody, req?: RequestRecord): Appended {
    const change: Change = { seq: this.seq + 1, epoch: this.epoch, body };
    if (req !== undefined) change.req = req;
    return this.applyOne(change);
  }

  /**
   * Applies one change whose seq and epoch were chosen elsewhere (a replica
   * applying the primary's log). The seq must follow on. `text` is its
   * canonical text when the caller has it already (a replica: the primary's
   * log row, hashed and stored as received).
   */
  applyOne(change: Change, text: string = encodeChange(change)): Appended {
    if (this.closing) throw new TrackerError('INTERNAL', 'the change log is closed');
    if (this.fatal !== undefined) throw new TrackerError('INTERNAL', 'the tracker cannot store changes; it must be restarted');
    if (change.seq !== this.seq + 1) {
      throw new TrackerError('INTERNAL', `change seq ${change.seq} does not follow ${this.seq}`);
    }
    const hash = nextLogHash(this.logHash, text);
    const batch = this.openBatch();
    let events: DomainEvent[];
    try {
      events = applyChange(this.store, change);
      // Written last: if the row cannot be written, the change's state is undone with the rest.
      this.logStore.append(change.seq, change.epoch, text, hash);
    } catch (error) {
      this.undoFailed(batch);
      throw error;
    }
    this.seq = change.seq;
    this.logHash = hash;
    if (change.body.type === 'promoted') this.epoch = change.epoch;
    // The tail moves only once the batch holds a change: a batch whose every change failed settles at once.
    this.tail = batch.done;
    this.hooks.onApplied?.(change);
    batch.changes.push(change);
    batch.texts.push(text);
    for (const e of events) batch.events.push(e);
    if (batch.changes.length >= MAX_BATCH_CHANGES) this.flush();
    return { change, events, durable: batch.done };
  }

  /**
   * A promise that settles once everything already applied is durable, or
   * undefined when nothing is pending. Readers await it so that no answer
   * ever shows state that could still be rolled back.
   */
  barrier(): Promise<void> | undefined {
    return this.seq > this.durableSeq ? this.tail : undefined;
  }

  /** Commits the open batch now (shutdown, tests). */
  flush(): void {
    const batch = this.batch;
    if (!batch) return;
    this.batch = undefined;
    try {
      this.logStore.setHead({ seq: this.seq, hash: this.logHash });
      this.logStore.db.exec('COMMIT');
    } catch (error) {
      this.rollback(batch, error);
      return;
    }
    this.committedSeq = this.seq;
    this.committedHash = this.logHash;
    this.logDiskFull = false;
    if (batch.changes.length === 0) {
      // Every change of this batch failed and was undone: nothing to ship, sync or deliver.
      batch.resolve();
      this.scheduleStateCommit();
      return;
    }
    this.committedTail = batch.done;
    void this.finish(batch, this.syncLog());
    this.scheduleStateCommit();
  }

  /** Waits until every appended change is durable, then writes the state file (graceful shutdown). */
  async drain(): Promise<void> {
    this.flush();
    while (this.tail !== undefined && this.seq > this.durableSeq && this.fatal === undefined) {
      await this.tail.catch(() => undefined);
    }
    this.commitState();
  }

  /**
   * Refuses new changes, drains, then ends the state transaction for good;
   * the stores may be closed after this. Idempotent.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closing = true;
    await this.drain();
    this.closed = true;
    if (this.stateTimer !== undefined) clearTimeout(this.stateTimer);
    if (this.store.db.inTransaction && this.fatal === undefined) {
      try {
        this.store.db.exec('COMMIT');
      } catch (error) {
        // drain() could not write it either (a full disk): the log holds every change, and the next start replays them.
        this.log.warn({ err: error, stateSeq: this.stateOnDisk, logSeq: this.committedSeq }, 'the state file could not be written at close; the next start replays the log');
        if (this.store.db.inTransaction) this.store.db.exec('ROLLBACK');
      }
    }
  }

  /**
   * Takes another tracker's history id and epoch (an empty replica joining
   * its primary), durably at once: a replica that lost them in a crash would
   * come back as a stranger to its primary.
   */
  adoptIdentity(historyId: string, epoch: number): void {
    this.store.setMeta('history_id', historyId);
    this.store.setMeta('epoch', epoch);
    this.epoch = epoch;
    this.commitState();
  }

  /** The position of the last committed batch: what a snapshot taken now is stamped with. */
  get committedPosition(): LogPosition {
    return { seq: this.committedSeq, hash: this.committedHash };
  }

  /** The first seq the log still holds a row for, minus one (0 when it reaches back to the start). */
  get baseSeq(): number {
    return this.logStore.base()?.seq ?? 0;
  }

  /**
   * Starts a new epoch on this tracker (promotion): one change, carrying the
   * new epoch and history id, so that every tracker that follows this log
   * learns them in order.
   */
  promote(historyId: string, at: number): Appended {
    const epoch = this.epoch + 1;
    return this.applyOne({ seq: this.seq + 1, epoch, body: { type: 'promoted', history: historyId, at } });
  }

  /**
   * A consistent image of the state at the committed position, for a replica
   * whose log cannot be caught up by streaming. Commits the open batch first,
   * so that the state transaction holds exactly the committed changes, and
   * serializes through the state connection, which sees them.
   */
  snapshot(): { image: Buffer; position: LogPosition; epoch: number } {
    if (this.fatal !== undefined) throw new TrackerError('INTERNAL', 'the tracker cannot store changes; it must be restarted');
    this.flush();
    return { image: this.store.db.serialize(), position: this.committedPosition, epoch: this.epoch };
  }

  /**
   * Replaces the whole state with a snapshot file (already checked), stamped
   * with its position, history and epoch, and starts the log again there.
   * The state is swapped in one SQLite transaction; the log is reset after
   * it, under a new generation, so that a crash between the two leaves a
   * state whose stale log is dropped at the next start (catchUpState).
   */
  async installSnapshot(path: string, position: LogPosition, historyId: string, epoch: number, generation: string): Promise<void> {
    await this.drain();
    const db = this.store.db;
    if (db.inTransaction) db.exec('COMMIT');
    db.prepare('ATTACH DATABASE ? AS snap').run(path);
    try {
      const version = db.pragma('snap.user_version', { simple: true }) as number;
      const ours = db.pragma('main.user_version', { simple: true }) as number;
      if (version !== ours) throw new Error(`snapshot schema version ${version} is not this tracker's ${ours}`);
      const tables = (sql: string): string[] => db.prepare(sql).pluck().all() as string[];
      const mine = tables("SELECT name FROM main.sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name");
      const theirs = tables("SELECT name FROM snap.sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name");
      if (mine.join() !== theirs.join()) throw new Error(`snapshot tables (${theirs.join(', ')}) are not this tracker's`);
      db.transaction(() => {
        for (const table of mine) {
          db.exec(`DELETE FROM main."${table}"; INSERT INTO main."${table}" SELECT * FROM snap."${table}";`);
        }
        this.store.setMeta('seq', position.seq);
        this.store.setMeta('log_hash', position.hash);
        this.store.setMeta('history_id', historyId);
        this.store.setMeta('epoch', epoch);
        this.store.setMeta('log_generation', generation);
      }).immediate();
    } finally {
      db.exec('DETACH DATABASE snap');
    }
    this.logStore.resetTo(position, generation);
    this.store.dropCaches();
    this.hooks.onRollback?.();
    this.seq = this.committedSeq = this.durableSeq = this.syncedSeq = this.stateOnDisk = position.seq;
    this.logHash = this.committedHash = position.hash;
    this.epoch = epoch;
    this.tail = this.committedTail = undefined;
    this.lastStateCommit = Date.now();
    db.exec('BEGIN');
  }

  /**
   * Retention: drops log rows up to `seq`, but never one that a restart
   * would replay (after the state file's last commit) or that is not yet
   * committed. Only between batches. Returns the log's new base seq.
   */
  truncate(seq: number, limit = 50_000): number {
    if (this.batch || this.closing) return this.baseSeq;
    return this.logStore.truncateThrough(Math.min(seq, this.stateOnDisk, this.committedSeq), limit);
  }

  /** The log rows after `seq`, for whoever ships them (the SyncQueue). */
  entriesAfter(seq: number, limit: number): Array<{ seq: number; change: string }> {
    return this.logStore.after(seq, limit);
  }

  private openBatch(): OpenBatch {
    if (this.batch) return this.batch;
    this.logStore.db.exec('BEGIN');
    let resolve!: () => void;
    let reject!: (error: Error) => void;
    const done = new Promise<void>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    // Every writer awaits `done`; this keeps a failed batch from also being an unhandled rejection.
    done.catch(() => undefined);
    const batch: OpenBatch = { changes: [], texts: [], events: [], done, resolve, reject };
    this.batch = batch;
    setImmediate(() => {
      if (this.batch === batch) this.flush();
    });
    return batch;
  }

  /**
   * Undoes the state writes of a change that threw, keeping the rest of its
   * batch. Neither changes nor batches carry a savepoint (SAVEPOINT/RELEASE
   * per change was a tenth of a write's cost; per batch, with the page
   * copies it makes SQLite keep, still ~5 µs a change): the state is rebuilt
   * from the state file and the log instead (`rebuildState`), then the
   * batch's applied changes are applied again, which gives the same state
   * since `applyChange` reads only the store and the change. The log needs
   * nothing: its row is written last, by one statement, which SQLite undoes
   * whole when it fails. Failures are rare (handlers validate first), so
   * their cost — replaying at most `stateCommitMs` worth of changes — does
   * not matter.
   */
  private undoFailed(batch: OpenBatch): void {
    try {
      this.rebuildState(batch.changes);
    } catch (error) {
      // The state cannot be put back as the batch had it: give the whole batch up, as a failed commit does.
      this.store.dropCaches();
      if (this.batch === batch) this.batch = undefined;
      this.rollback(batch, error);
    }
  }

  /**
   * The log's sync for everything committed so far (store/wal-sync.ts), with
   * the fail-stop of a failed sync wired in. Undefined when the configured
   * `synchronous` needs none.
   */
  private syncLog(): Promise<boolean> | undefined {
    const synced = this.logStore.sync();
    if (synced === undefined) {
      this.syncedSeq = this.committedSeq;
      return undefined;
    }
    const seq = this.committedSeq;
    return synced.then(
      () => {
        // A sync that succeeds after one failed proves nothing about the pages the failure lost.
        if (this.syncFailed) return false;
        this.syncedSeq = Math.max(this.syncedSeq, seq);
        return true;
      },
      (error: unknown) => {
        // After a failed fsync the kernel may have dropped the pages: nothing since the last sync can be trusted.
        this.syncFailed = true;
        if (this.fatal === undefined) this.fail(error, SYNC_FAILED);
        return false;
      },
    );
  }

  /**
   * Answers a committed batch once its log rows are on disk and the
   * after-commit hook (semi-sync: the replica's ack) is done. The two run
   * side by side: the batch is shipped as soon as it is committed, while
   * the local sync runs. A replica may therefore hold a change a moment
   * before this tracker's disk does; nobody is answered until both do.
   */
  private async finish(batch: OpenBatch, synced: Promise<boolean> | undefined): Promise<void> {
    const lastSeq = (batch.changes[batch.changes.length - 1] as Change).seq;
    const shipped = (async () => {
      try {
        await this.hooks.afterCommit?.(batch);
      } catch (error) {
        // Past the commit the change is ours for good; a replication failure is reported elsewhere.
        this.log.error({ err: error }, 'after-commit hook failed');
      }
    })();
    if (synced !== undefined && !(await synced)) {
      batch.reject(new TrackerError('INTERNAL', 'the change could not be made durable; the tracker must be restarted'));
      return;
    }
    await shipped;
    this.durableSeq = Math.max(this.durableSeq, lastSeq);
    batch.resolve();
    try {
      this.hooks.onDurable?.(batch);
    } catch (error) {
      this.log.error({ err: error }, 'event delivery failed');
    }
  }

  private rollback(batch: OpenBatch, cause: unknown): void {
    try {
      if (this.logStore.db.inTransaction) this.logStore.db.exec('ROLLBACK');
      this.rebuildState([]);
    } catch (error) {
      // The state cannot be brought back to the log's committed head: it must not serve any more.
      this.store.dropCaches();
      if (this.fatal === undefined) this.fail(error, 'the state could not be rebuilt from the log after a rollback');
    }
    // The state runs inside one transaction, whatever happened above.
    if (!this.store.db.inTransaction) this.store.db.exec('BEGIN');
    this.seq = this.committedSeq;
    this.logHash = this.committedHash;
    this.epoch = Number(this.store.getMeta('epoch') ?? 1); // a rolled-back promotion
    this.tail = this.committedTail;
    const full = isDiskFull(cause);
    this.logDiskFull = full;
    if (!full) {
      this.log.error({ err: cause, changes: batch.changes.length }, 'commit failed; batch rolled back');
    } else if (Date.now() - this.diskFullLoggedAt >= DISK_FULL_LOG_MS) {
      // Every write fails while the disk is full: one line per interval, not one per batch.
      this.log.error({ err: cause, changes: batch.changes.length, refusedSinceLastLine: this.diskFullQuiet }, 'the disk is full: batch rolled back, writes refused until there is room');
      this.diskFullLoggedAt = Date.now();
      this.diskFullQuiet = 0;
    } else {
      this.diskFullQuiet++;
    }
    this.hooks.onRollback?.();
    const why = full ? 'the change could not be stored: the disk is full; nothing was applied' : 'the change could not be stored; nothing was applied';
    batch.reject(new TrackerError('INTERNAL', why));
  }

  /**
   * Brings the state back to the log's committed head, then applies `then`:
   * the open state transaction is rolled back to the state file, and the
   * committed log rows after it are applied again, checking that the hash
   * chain lands where the log says it stands. Throws when it cannot.
   */
  private rebuildState(then: readonly Change[]): void {
    const db = this.store.db;
    this.store.dropCaches(); // they may hold writes being undone
    if (db.inTransaction) db.exec('ROLLBACK');
    db.exec('BEGIN');
    const onDisk = { seq: Number(this.store.getMeta('seq') ?? 0), hash: this.store.getMeta('log_hash') ?? GENESIS_HASH };
    this.replayLog(onDisk, this.committedPosition);
    for (const change of then) applyChange(this.store, change);
  }

  /** Applies the log's rows after `from` up to `to` to the state file (state/replay.ts). */
  private replayLog(from: LogPosition, to: LogPosition): void {
    replayLog(this.store, (after, limit) => this.logStore.after(after, limit), this.logStore.path, from, to);
  }

  /** Commits the state file when it has lagged long enough; otherwise makes sure it will. */
  private scheduleStateCommit(): void {
    // After failures for want of space, back off: each attempt replays the log's tail into memory again.
    const interval = Math.min(this.stateCommitMs * 2 ** this.stateCommitFailures, Math.max(this.stateCommitMs, MAX_STATE_RETRY_MS));
    if (Date.now() - this.lastStateCommit >= interval) {
      this.commitState();
    } else if (this.stateTimer === undefined) {
      this.stateTimer = setTimeout(() => {
        this.stateTimer = undefined;
        if (this.batch) return; // its flush will come back here
        this.scheduleStateCommit();
      }, interval - (Date.now() - this.lastStateCommit));
      this.stateTimer.unref();
    }
  }

  /**
   * Writes the state file up to the last committed batch. Only between
   * batches: the open state transaction then holds exactly the log's
   * committed changes.
   */
  private commitState(): void {
    if (this.batch || this.closed || this.fatal !== undefined || !this.store.db.inTransaction) return;
    this.lastStateCommit = Date.now();
    if (this.syncedSeq < this.committedSeq) {
      // The state file must never lead the log on disk: a restart could not replay what the log lost.
      try {
        this.logStore.syncNow();
      } catch (error) {
        this.syncFailed = true;
        this.fail(error, SYNC_FAILED);
        return;
      }
      this.syncedSeq = this.committedSeq;
    }
    try {
      this.store.setMeta('seq', this.committedSeq);
      this.store.setMeta('log_hash', this.committedHash);
      this.store.db.exec('COMMIT');
      this.stateOnDisk = this.committedSeq;
      if (this.stateCommitFailures > 0) {
        this.log.info({ stateSeq: this.stateOnDisk, failedAttempts: this.stateCommitFailures }, 'the state file is written again');
        this.stateCommitFailures = 0;
      }
    } catch (error) {
      if (isDiskFull(error)) {
        this.keepStateInMemory(error);
        return;
      }
      // The log has every change; a state file that could not be written is rebuilt from it.
      this.log.error({ err: error }, 'state commit failed; replaying the log into the state');
      try {
        if (this.store.db.inTransaction) this.store.db.exec('ROLLBACK');
        this.store.dropCaches();
        this.hooks.onRollback?.();
        this.catchUpState();
      } catch (fatal) {
        this.fail(fatal);
        return;
      }
    }
    this.store.db.exec('BEGIN');
  }

  /**
   * The state file could not be written for want of space. Nothing is lost:
   * every change is in the log, and the state file stays at its last commit,
   * which never leads the log. The open transaction is rebuilt from the log
   * (its writes went with the failed COMMIT), the tracker goes on serving
   * from it, and the commit is tried again later, less often while it fails.
   */
  private keepStateInMemory(error: unknown): void {
    this.stateCommitFailures++;
    if (this.stateCommitFailures === 1) {
      this.log.error(
        { err: error, stateSeq: this.stateOnDisk, logSeq: this.committedSeq },
        'the disk is full: the state file cannot be written; serving from the log and memory, retrying',
      );
    }
    try {
      this.store.dropCaches();
      if (this.store.db.inTransaction) this.store.db.exec('ROLLBACK');
      this.hooks.onRollback?.();
      this.rebuildState([]);
    } catch (fatal) {
      this.fail(fatal, 'the state could not be rebuilt from the log after a failed state commit');
    }
  }

  /** Fail-stop: the state cannot follow the log any more. */
  private fail(error: unknown, why = 'the state file can be neither written nor rebuilt from the log'): void {
    this.fatal = error;
    this.log.fatal({ err: error }, `${why}; refusing all changes`);
    try {
      this.hooks.onFatal?.(error);
    } catch (hookError) {
      this.log.error({ err: hookError }, 'onFatal hook failed');
    }
  }

  /**
   * Brings the state file up to the log's head by replaying the rows it has
   * not applied, checking that the hashes chain. A new database starts its
   * log at the state's position. Returns the head.
   */
  private catchUpState(): LogPosition {
    const state: LogPosition = {
      seq: Number(this.store.getMeta('seq') ?? 0),
      hash: this.store.getMeta('log_hash') ?? GENESIS_HASH,
    };
    const generation = this.store.getMeta('log_generation') ?? '';
    let head = this.logStore.head();
    if (head !== undefined && this.logStore.generation() !== generation) {
      // A snapshot was installed and the tracker stopped before it reset the log: the rows are another history's.
      this.log.warn({ log: this.logStore.path }, 'the log predates the installed snapshot; starting it again at the state');
      head = undefined;
    }
    if (head === undefined) {
      this.logStore.resetTo(state, generation);
      head = state;
    }
    if (head.seq < state.seq) {
      throw new LogMismatchError(
        `the log ${this.logStore.path} ends at seq ${head.seq} but the state ${this.store.path} is at seq ${state.seq}: wrong or truncated log file`,
      );
    }
    const base = this.logStore.base() ?? { seq: 0, hash: GENESIS_HASH };
    if (base.seq > state.seq) {
      throw new LogMismatchError(`the log ${this.logStore.path} starts after seq ${base.seq}; the state ${this.store.path} is at seq ${state.seq}`);
    }
    if (head.seq === state.seq) {
      if (head.hash !== state.hash) throw new LogMismatchError(`the log and the state are both at seq ${state.seq} but their hashes differ`);
      return head;
    }
    this.store.db.transaction(() => {
      this.replayLog(state, head);
      this.store.setMeta('seq', head.seq);
      this.store.setMeta('log_hash', head.hash);
    })();
    this.store.dropCaches();
    this.log.info({ from: state.seq, to: head.seq }, 'state caught up with the log');
    return head;
  }
}

import type { Logger } from 'pino';
import { TrackerError } from '@tracker-cluster/protocol';
import type { SqliteSynchronous } from '../options.js';
import type { LogPosition, LogStore } from '../store/log-store.js';
import { StateWriter } from '../store/state-writer.js';
import type { Store } from '../store/store.js';
import type { DomainEvent } from './apply.js';
import { applyChange } from './apply.js';
import type { Change, ChangeBody, RequestRecord } from './changes.js';
import { encodeChange } from './changes.js';
import { GENESIS_HASH, LogMismatchError, nextLogHash, replayLog } from './log-chain.js';
import { CLUSTER_ID_KEY } from './cluster-id.js';
import { MemoryState } from './memory-state.js';

export { GENESIS_HASH, LogMismatchError, nextLogHash } from './log-chain.js';

export interface CommittedBatch {
  changes: Change[];
  /** Canonical texts, index-aligned with `changes`. */
  texts: string[];
  events: DomainEvent[];
}

export interface ChangeLogHooks {
  /** Runs after each change is applied (inside the open batch): drop derived caches. */
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
   * The state can follow the log no more: its file can be neither written
   * nor caught up with the log, or the log's sync failed. The log holds
   * every answered change, but this process must not go on: the change log
   * refuses all changes from now on, and whoever owns the process should
   * stop it (the CLI exits 1).
   */
  onFatal?: (error: unknown) => void;
}

export interface ChangeLogOptions {
  /** Longest the state file may lag the log on disk (ms); default 100. */
  stateCommitMs?: number;
}

export const DEFAULT_STATE_COMMIT_MS = 100;

/**
 * The state file's commits are synced (in the worker, about every
 * `stateCommitMs`): retention drops the log rows the file holds. Unsynced,
 * a power loss could take the file back past rows the log had already
 * dropped, and those changes would be in neither file.
 */
export const STATE_SYNCHRONOUS: SqliteSynchronous = 'FULL';

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
/** About the most bytes of log rows one round of retention drops. */
const TRUNCATE_BYTES = 64 * 1024 * 1024;
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
 * The state lives in memory (`state`, a MemoryState) and two SQLite files
 * back it. The log file holds each change's canonical text; a batch is
 * committed there (synchronous=FULL by default) before anyone is answered:
 * that commit is the durable point. The state file holds the tables the
 * changes describe, as a checkpoint: a worker thread (StateWriter) replays
 * the log into it at most every `stateCommitMs`, up to where the log is on
 * disk, so the event loop never writes it. The file may lag the log, never
 * lead it: opening replays the log's tail with the same `applyChange`, then
 * reads the file into memory. `append` applies a change at once (the next
 * request sees it), and the batch commits on the next turn of the event
 * loop, so the changes that arrive together share one commit (group
 * commit); a change that fails, or a batch whose commit fails, is taken back
 * by the state's undo journal. Writers await `durable`, readers
 * `barrier()`: nobody sees what could be lost.
 */
export class ChangeLog {
  /** The state every request reads; only this class writes it. */
  readonly state: MemoryState;
  /** The state file: caught up at open, then read for snapshots and written by `writer`. */
  private readonly store: Store;
  private readonly logStore: LogStore;
  private writer: StateWriter;
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
  /** The seq of the state file's last commit, synced: the log must keep every row after it (a restart replays them). */
  private stateOnDisk = 0;
  /** The state file's last commit found no room (cleared once it can be written again). */
  private stateDiskFull = false;
  /** Set when close() begins: no change is accepted after it. */
  private closing = false;
  private closed = false;
  private fatal: unknown;
  /** A sync of the log failed: no batch is answered any more, whatever later syncs say. */
  private syncFailed = false;
  /** The last log COMMIT found no room (cleared by the next one that succeeds). */
  private logDiskFull = false;
  /**
   * Batches this tracker committed as a primary that another tracker, promoted
   * meanwhile, does not hold (seqs in `(after, upTo]`): they are answered with
   * `error`, never OK, whatever the local sync says (see `disown`).
   */
  private disowned: { after: number; upTo: number; error: TrackerError } | undefined;
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
    // Whatever the caller opened it with: this connection's rare commits (catching up at start, identity, snapshot installs) are trusted by retention too.
    store.db.pragma(`synchronous = ${STATE_SYNCHRONOUS}`);
    const position = this.catchUpState();
    this.state = MemoryState.load(store);
    this.stateOnDisk = position.seq;
    this.seq = position.seq;
    this.logHash = position.hash;
    this.epoch = Number(this.state.getMeta('epoch') ?? 1);
    this.committedSeq = this.seq;
    this.committedHash = this.logHash;
    this.durableSeq = this.seq;
    this.syncedSeq = this.seq;
    this.writer = this.startWriter();
  }

  /** The last seq whose batch is committed to the log file (what may be shipped). */
  get committed(): number {
    return this.committedSeq;
  }

  /** The seq the state file on disk holds: behind `committed` by about one state-commit interval, unless it cannot be written. */
  get stateFileSeq(): number {
    return this.stateOnDisk;
  }

  /** The last commit of the log or of the state file found no room on the disk. */
  get diskFull(): boolean {
    return this.logDiskFull || this.stateDiskFull;
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
    const mark = this.state.mark();
    let events: DomainEvent[];
    try {
      events = applyChange(this.state, change);
      // Written last: if the row cannot be written, the change's state is undone with the rest.
      this.logStore.append(change.seq, change.epoch, text, hash);
    } catch (error) {
      this.undoFailed(batch, mark);
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
    this.state.end();
    this.committedSeq = this.seq;
    this.committedHash = this.logHash;
    this.logDiskFull = false;
    if (batch.changes.length === 0) {
      // Every change of this batch failed and was undone: nothing to ship, sync or deliver.
      batch.resolve();
      return;
    }
    this.committedTail = batch.done;
    void this.finish(batch, this.syncLog());
  }

  /** Waits until every appended change is durable, then has the state file written up to it (graceful shutdown, tests). */
  async drain(): Promise<void> {
    this.flush();
    while (this.tail !== undefined && this.seq > this.durableSeq && this.fatal === undefined) {
      await this.tail.catch(() => undefined);
    }
    // A failed sync leaves the writer behind the log's unsynced tail, so what it writes is still safe; a fatal writer writes nothing.
    if (this.fatal === undefined) await this.writer.drain();
  }

  /**
   * Refuses new changes, drains, then stops the state writer; the stores
   * may be closed after this. Idempotent.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closing = true;
    await this.drain();
    this.closed = true;
    if (this.fatal === undefined && this.stateOnDisk < this.syncedSeq) {
      // A full disk: the log holds every change, and the next start replays them.
      this.log.warn({ stateSeq: this.stateOnDisk, logSeq: this.committedSeq }, 'the state file could not be written at close; the next start replays the log');
    }
    await this.writer.close();
  }

  /**
   * Stops at once, as a crash would: the open batch is neither committed
   * nor settled, and the state writer is stopped without writing, so the
   * state file stays where its last commit left it. Tests stage crashes
   * with it; the stores may be closed after this.
   */
  async abandon(): Promise<void> {
    this.closing = this.closed = true;
    this.batch = undefined;
    await this.writer.terminate();
  }

  /**
   * Takes another tracker's history id and epoch (an empty replica joining
   * its primary), durably at once: a replica that lost them in a crash would
   * come back as a stranger to its primary.
   */
  adoptIdentity(historyId: string, epoch: number, clusterId: string | undefined): void {
    this.flush(); // outside any batch, so that no rollback takes them back
    this.state.setMeta('history_id', historyId);
    this.state.setMeta('epoch', epoch);
    if (clusterId !== undefined) this.state.setMeta(CLUSTER_ID_KEY, clusterId);
    this.epoch = epoch;
    this.store.db
      .transaction(() => {
        this.store.setMeta('history_id', historyId);
        this.store.setMeta('epoch', epoch);
        if (clusterId !== undefined) this.store.setMeta(CLUSTER_ID_KEY, clusterId);
      })
      .immediate();
  }

  /**
   * This tracker was the primary and another one has been promoted: the
   * changes committed here after `kept` (the last seq the new primary holds)
   * are not part of the new history. The open batch is committed first, so
   * that it goes the same way; every batch after `kept` that is not answered
   * yet is answered with `error` instead of OK. Those already answered (in
   * degraded semi-sync, or async) are beyond recall. The mark covers only
   * what is committed now: the new history's changes that follow are not
   * affected, and a snapshot install clears it.
   */
  disown(kept: number, error: TrackerError): void {
    this.flush();
    // Nothing past `kept`, or every batch answered already (a primary fenced at start): nothing to refuse.
    if (this.committedSeq <= kept || this.durableSeq >= this.committedSeq) return;
    this.disowned = { after: kept, upTo: this.committedSeq, error };
    this.log.warn({ kept, upTo: this.committedSeq }, 'changes after the new primary\'s position are not kept: their writers are answered with an error');
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
   * A consistent image of the state, for a replica whose log cannot be
   * caught up by streaming: the state file as its last commit left it, read
   * in one transaction with the position and epoch it records. The file lags
   * the log by about `stateCommitMs`; the log keeps every row after it
   * (`truncate` never passes it), and the replica streams those next.
   */
  snapshot(): { image: Buffer; position: LogPosition; epoch: number } {
    if (this.fatal !== undefined) throw new TrackerError('INTERNAL', 'the tracker cannot store changes; it must be restarted');
    const db = this.store.db;
    const meta = db.prepare('SELECT value FROM meta WHERE key = ?').pluck();
    return db.transaction(() => {
      const seq = Number((meta.get('seq') as string | undefined) ?? 0);
      const hash = (meta.get('log_hash') as string | undefined) ?? GENESIS_HASH;
      const epoch = Number((meta.get('epoch') as string | undefined) ?? 1);
      return { image: db.serialize(), position: { seq, hash }, epoch };
    })();
  }

  /**
   * Replaces the whole state with a snapshot file (already checked), stamped
   * with its position, history and epoch, and starts the log again there.
   * The state file is swapped in one SQLite transaction, with the writer
   * stopped; the log is reset after it, under a new generation, so that a
   * crash between the two leaves a state whose stale log is dropped at the
   * next start (catchUpState). Then the memory state is read from the file.
   */
  async installSnapshot(path: string, position: LogPosition, historyId: string, epoch: number, generation: string): Promise<void> {
    await this.drain();
    await this.writer.close();
    try {
      this.swapStateFile(path, position, historyId, epoch, generation);
    } catch (error) {
      // The swap is one transaction: the old file is whole, and memory still matches the log.
      this.writer = this.startWriter();
      if (this.syncedSeq === this.committedSeq) this.writer.advance(this.committedPosition);
      throw error;
    }
    this.state.reload(this.store);
    this.truncateStateWal();
    this.writer = this.startWriter();
    this.logStore.resetTo(position, generation);
    this.hooks.onRollback?.();
    this.seq = this.committedSeq = this.durableSeq = this.syncedSeq = this.stateOnDisk = position.seq;
    this.logHash = this.committedHash = position.hash;
    this.epoch = epoch;
    this.tail = this.committedTail = undefined;
    this.disowned = undefined;
  }

  /**
   * The swap rewrote every table through the state file's WAL, and SQLite
   * never shrinks a WAL by itself: without this a replica's `-wal` would stay
   * as large as its whole state after each snapshot, until a restart. Done
   * while the writer is stopped. Best effort, and without waiting: another
   * process reading the file (`tracker-admin backup`) keeps the checkpoint
   * from completing, and the connection's busy timeout would stop the event
   * loop for seconds; a WAL left as it is costs disk, not data.
   */
  private truncateStateWal(): void {
    const db = this.store.db;
    const busyTimeout = db.pragma('busy_timeout', { simple: true }) as number;
    let busy = 0;
    let failure: unknown;
    try {
      db.pragma('busy_timeout = 0');
      busy = (db.pragma('wal_checkpoint(TRUNCATE)') as { busy: number }[])[0]?.busy ?? 0;
    } catch (error) {
      failure = error;
    } finally {
      db.pragma(`busy_timeout = ${busyTimeout}`);
    }
    if (failure !== undefined || busy !== 0) {
      this.log.warn(
        failure === undefined ? { busy } : { err: failure },
        "could not truncate the state file's WAL after installing a snapshot (another process reading it?); it shrinks at the next clean stop",
      );
    }
  }

  private swapStateFile(path: string, position: LogPosition, historyId: string, epoch: number, generation: string): void {
    const db = this.store.db;
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
  }

  /**
   * Retention: drops log rows up to `seq`, but never one that a restart
   * would replay (after the state file's last commit) or that is not yet
   * committed. Only between batches, and at most `limit` rows or about
   * `TRUNCATE_BYTES` of them at once (rows can be as large as a frame), so
   * that one round never stalls the tracker. Returns the log's new base seq.
   */
  truncate(seq: number, limit = 50_000): number {
    if (this.batch || this.closing) return this.baseSeq;
    const perRow = this.averageRowBytes();
    const bounded = perRow > 0 ? Math.min(limit, Math.max(1, Math.floor(TRUNCATE_BYTES / perRow))) : limit;
    return this.logStore.truncateThrough(Math.min(seq, this.stateOnDisk, this.committedSeq), bounded);
  }

  /**
   * Retention by size: the seq through which to drop rows so that the log
   * takes about 90% of `maxBytes` (undefined when it is within it), from its
   * pages in use and its average row. Rows vary; the next round corrects.
   */
  sizeRetentionThrough(maxBytes: number): number | undefined {
    const rows = this.seq - this.baseSeq;
    const used = this.logStore.usedBytes();
    if (rows <= 0 || used <= maxBytes) return undefined;
    return this.baseSeq + Math.min(rows, Math.ceil((used - 0.9 * maxBytes) / (used / rows)));
  }

  /** The log file's pages in use per row it holds (0 when it holds none): what retention's size estimates go by. */
  private averageRowBytes(): number {
    const rows = this.seq - this.baseSeq;
    return rows > 0 ? this.logStore.usedBytes() / rows : 0;
  }

  /** The log rows after `seq`, for whoever ships them (the SyncQueue). */
  entriesAfter(seq: number, limit: number): Array<{ seq: number; change: string }> {
    return this.logStore.after(seq, limit);
  }

  private openBatch(): OpenBatch {
    if (this.batch) return this.batch;
    this.logStore.db.exec('BEGIN');
    this.state.begin();
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
   * batch: the state's journal takes back what it wrote since `mark`. The
   * log needs nothing: its row is written last, by one statement, which
   * SQLite undoes whole when it fails.
   */
  private undoFailed(batch: OpenBatch, mark: number): void {
    try {
      this.state.undoTo(mark);
    } catch (error) {
      // The state cannot be put back as the batch had it: give the whole batch up, as a failed commit does.
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
      this.writer.advance(this.committedPosition);
      return undefined;
    }
    const position = this.committedPosition;
    return synced.then(
      () => {
        // A sync that succeeds after one failed proves nothing about the pages the failure lost.
        if (this.syncFailed) return false;
        if (position.seq > this.syncedSeq) {
          this.syncedSeq = position.seq;
          this.writer.advance(position);
        }
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
    // Settled either way: nothing more will make a disowned batch durable in the new history.
    this.durableSeq = Math.max(this.durableSeq, lastSeq);
    const disowned = this.disowned;
    if (disowned !== undefined && lastSeq > disowned.after && lastSeq <= disowned.upTo) {
      batch.reject(disowned.error);
      return;
    }
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
      this.state.undoTo(0);
    } catch (error) {
      // The state cannot be brought back to the log's committed head: it must not serve any more.
      if (this.fatal === undefined) this.fail(error, 'the state could not be taken back to the log after a rollback');
    }
    this.state.end();
    this.seq = this.committedSeq;
    this.logHash = this.committedHash;
    this.epoch = Number(this.state.getMeta('epoch') ?? 1); // a rolled-back promotion
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
   * A worker that keeps the state file caught up with the log. Its reports
   * count only while it is the current one: an old writer's last messages
   * may still arrive after a snapshot replaced it.
   */
  private startWriter(): StateWriter {
    // A new writer reports a full disk afresh: the old one's report would otherwise never be taken back.
    this.stateDiskFull = false;
    const writer: StateWriter = new StateWriter(
      { statePath: this.store.path, logPath: this.logStore.path, synchronous: STATE_SYNCHRONOUS, commitMs: this.stateCommitMs, maxRetryMs: MAX_STATE_RETRY_MS },
      {
        onCommitted: (seq) => {
          if (writer === this.writer) this.stateOnDisk = Math.max(this.stateOnDisk, seq);
        },
        onDiskFull: (error) => {
          if (writer !== this.writer) return;
          this.stateDiskFull = error !== undefined;
          if (error !== undefined) {
            this.log.error(
              { err: error, stateSeq: this.stateOnDisk, logSeq: this.committedSeq },
              'the disk is full: the state file cannot be written; serving from the log and memory, retrying',
            );
          } else {
            this.log.info({ stateSeq: this.stateOnDisk }, 'the state file is written again');
          }
        },
        onBusy: (error) => {
          if (writer !== this.writer) return;
          this.stateDiskFull = false; // it got as far as the lock: there is room again
          this.log.warn({ err: error, stateSeq: this.stateOnDisk }, 'the state file is locked by another connection; retrying');
        },
        onFatal: (error) => {
          if (writer === this.writer && this.fatal === undefined) this.fail(error);
        },
      },
    );
    return writer;
  }

  /** Fail-stop: the state cannot follow the log any more. */
  private fail(error: unknown, why = 'the state file can be neither written nor caught up with the log'): void {
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
      replayLog(this.store, (after, limit) => this.logStore.after(after, limit), this.logStore.path, state, head);
      this.store.setMeta('seq', head.seq);
      this.store.setMeta('log_hash', head.hash);
    })();
    this.log.info({ from: state.seq, to: head.seq }, 'state caught up with the log');
    return head;
  }
}

import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import { TrackerError } from '@tracker-cluster/protocol';
import type { Store } from '../store/store.js';
import type { DomainEvent } from './apply.js';
import { applyChange } from './apply.js';
import type { Change, ChangeBody } from './changes.js';
import { encodeChange } from './changes.js';

/** h_0 of the rolling log hash: 32 zero bytes. */
export const GENESIS_HASH = '0'.repeat(64);

/** h_n = SHA-256(h_{n-1} ‖ change_n), over the raw previous digest and the change's canonical text. */
export function nextLogHash(previousHex: string, changeText: string): string {
  return createHash('sha256').update(Buffer.from(previousHex, 'hex')).update(changeText, 'utf8').digest('hex');
}

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
}

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
 * The only way state changes. `append` applies a change at once inside the
 * open SQLite transaction, together with its log row, so that the next
 * request already sees it; the transaction commits on the next turn of the
 * event loop, so changes that arrive together share one commit (group
 * commit). Nobody is answered before the commit: writers await `durable`,
 * readers await `barrier()`.
 */
export class ChangeLog {
  private readonly store: Store;
  private readonly log: Logger;
  private readonly hooks: ChangeLogHooks;
  /** Applies one change and writes its log row; inside the open batch it runs as a savepoint. */
  private readonly applyInSavepoint: (change: Change, text: string) => DomainEvent[];
  private batch: OpenBatch | undefined;
  /** The newest batch not rolled back: settles when everything applied so far is durable. */
  private tail: Promise<void> | undefined;
  private committedTail: Promise<void> | undefined;
  /** Highest seq whose batch is committed and acknowledged. */
  private durableSeq: number;
  private committedSeq: number;
  private committedHash: string;
  seq: number;
  logHash: string;
  epoch: number;

  constructor(store: Store, logger: Logger, hooks: ChangeLogHooks = {}) {
    this.store = store;
    this.log = logger;
    this.hooks = hooks;
    // Built once: better-sqlite3 compiles a wrapper per transaction() call.
    this.applyInSavepoint = store.db.transaction((change: Change, text: string) => {
      const events = applyChange(store, change);
      store.appendLog(change.seq, change.epoch, text);
      return events;
    });
    this.seq = Number(store.getMeta('seq') ?? 0);
    this.logHash = store.getMeta('log_hash') ?? GENESIS_HASH;
    this.epoch = Number(store.getMeta('epoch') ?? 1);
    this.committedSeq = this.seq;
    this.committedHash = this.logHash;
    this.durableSeq = this.seq;
  }

  /** Applies a change chosen by this tracker (the primary). */
  append(body: ChangeBody): Appended {
    return this.applyOne({ seq: this.seq + 1, epoch: this.epoch, body });
  }

  /**
   * Applies one change whose seq and epoch were chosen elsewhere (a replica
   * applying the primary's log). The seq must follow on.
   */
  applyOne(change: Change): Appended {
    if (change.seq !== this.seq + 1) {
      throw new TrackerError('INTERNAL', `change seq ${change.seq} does not follow ${this.seq}`);
    }
    const text = encodeChange(change);
    const batch = this.openBatch();
    // A savepoint per change: a change that throws leaves the batch intact.
    let events: DomainEvent[];
    try {
      events = this.applyInSavepoint(change, text);
    } catch (error) {
      this.store.dropCaches(); // they may hold a write the savepoint undid
      throw error;
    }
    this.seq = change.seq;
    this.logHash = nextLogHash(this.logHash, text);
    // The tail moves only once the batch holds a change: a batch whose every change failed settles at once.
    this.tail = batch.done;
    this.hooks.onApplied?.(change);
    batch.changes.push(change);
    batch.texts.push(text);
    for (const e of events) batch.events.push(e);
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
      this.store.setMeta('seq', this.seq);
      this.store.setMeta('log_hash', this.logHash);
      this.store.db.exec('COMMIT');
    } catch (error) {
      this.rollback(batch, error);
      return;
    }
    this.committedSeq = this.seq;
    this.committedHash = this.logHash;
    if (batch.changes.length === 0) {
      // Every change of this batch failed and was undone at its savepoint: nothing to ship or deliver.
      batch.resolve();
      return;
    }
    this.committedTail = batch.done;
    void this.finish(batch);
  }

  /** Waits until every appended change is durable (graceful shutdown). */
  async drain(): Promise<void> {
    this.flush();
    while (this.tail !== undefined && this.seq > this.durableSeq) {
      await this.tail.catch(() => undefined);
    }
  }

  private openBatch(): OpenBatch {
    if (this.batch) return this.batch;
    this.store.db.exec('BEGIN');
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

  private async finish(batch: OpenBatch): Promise<void> {
    const lastSeq = (batch.changes[batch.changes.length - 1] as Change).seq;
    try {
      await this.hooks.afterCommit?.(batch);
    } catch (error) {
      // Past the commit the change is ours for good; a replication failure is reported elsewhere.
      this.log.error({ err: error }, 'after-commit hook failed');
    }
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
      if (this.store.db.inTransaction) this.store.db.exec('ROLLBACK');
    } catch (error) {
      this.log.error({ err: error }, 'rollback failed');
    }
    this.store.dropCaches();
    this.seq = this.committedSeq;
    this.logHash = this.committedHash;
    this.tail = this.committedTail;
    this.log.error({ err: cause, changes: batch.changes.length }, 'commit failed; batch rolled back');
    this.hooks.onRollback?.();
    batch.reject(new TrackerError('INTERNAL', 'the change could not be stored; nothing was applied'));
  }
}

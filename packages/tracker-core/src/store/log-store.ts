import type { Database as Db, Statement } from 'better-sqlite3';
import type { SqliteSynchronous } from '../options.js';
import { LOG_MIGRATIONS } from './schema.js';
import { StoreOpenError, openDatabase } from './store.js';
import { WalSync } from './wal-sync.js';

/** The log meta key of the epoch this tracker last led (see `ledEpoch`). */
export const LED_EPOCH_KEY = 'led_epoch';

/** Where the log stands: the seq and rolling hash after some change. */
export interface LogPosition {
  seq: number;
  hash: string;
}

export interface LogEntry {
  seq: number;
  change: string;
}

/**
 * The change log file: append-only rows of canonical change texts, and the
 * position after the last row (`seq`, `log_hash`) and before the first
 * (`base_seq`, `base_hash`: where a log starts that was begun from a state,
 * or whose old rows were dropped). It is the durable record: a batch is
 * committed here, with `synchronous` as configured (FULL by default), before
 * anyone is answered.
 *
 * With FULL (or EXTRA) that sync is not SQLite's: the connection runs NORMAL
 * and `sync()` makes the WAL durable off the event loop (store/wal-sync.ts).
 * Whoever commits a transaction here must await `sync()` before treating it
 * as durable; the methods below that commit by themselves sync before they
 * return.
 */
export class LogStore {
  readonly db: Db;
  readonly path: string;
  private readonly s: ReturnType<typeof prepare>;
  /** Undefined when commits need no sync of ours (NORMAL: durable at the next checkpoint). */
  private readonly wal: WalSync | undefined;

  private constructor(db: Db, path: string, wal: WalSync | undefined) {
    this.db = db;
    this.path = path;
    this.s = prepare(db);
    this.wal = wal;
  }

  static open(path: string, synchronous: SqliteSynchronous = 'FULL'): LogStore {
    const deferred = synchronous !== 'NORMAL';
    const db = openDatabase(path, deferred ? 'NORMAL' : synchronous, LOG_MIGRATIONS);
    let wal: WalSync | undefined;
    try {
      wal = deferred ? new WalSync(`${path}-wal`) : undefined;
      wal?.syncNow(); // whatever opening and migrating wrote
    } catch (error) {
      wal?.close();
      db.close();
      throw new StoreOpenError(`${path}-wal`, error);
    }
    return new LogStore(db, path, wal);
  }

  close(): void {
    if (this.db.open) this.db.close();
    this.wal?.close();
  }

  /** The log makes its commits durable itself (`synchronous` FULL or EXTRA), rather than SQLite inside COMMIT. */
  get syncsItself(): boolean {
    return this.wal !== undefined;
  }

  /**
   * Resolves once every transaction committed so far is on disk: at once
   * when the configured `synchronous` asks for no sync per commit.
   */
  sync(): Promise<void> | undefined {
    return this.wal?.sync();
  }

  /** After the last row; undefined for a log that was never written. */
  head(): LogPosition | undefined {
    return this.position('seq', 'log_hash');
  }

  /** Before the first row. */
  base(): LogPosition | undefined {
    return this.position('base_seq', 'base_hash');
  }

  /**
   * Which state this log goes with: a state installed from a snapshot gets a
   * new generation, and a log of another generation is stale (the install
   * stopped between the state's commit and the log's reset).
   */
  generation(): string {
    return (this.s.getMeta.get('generation') as { value: string } | undefined)?.value ?? '';
  }

  /**
   * Drops every row and starts again at a position: a new log (a new
   * database, or a state restored without its log), a stale one, or one
   * after a snapshot was installed.
   */
  resetTo(position: LogPosition, generation: string): void {
    this.db.transaction(() => {
      this.s.deleteThrough.run(Number.MAX_SAFE_INTEGER);
      this.setMeta('generation', generation);
      this.setMeta('base_seq', position.seq);
      this.setMeta('base_hash', position.hash);
      this.setHead(position);
    })();
    this.wal?.syncNow(); // durable before the state goes on from there
  }

  /**
   * Drops the rows up to and including `seq` (retention); the log then starts
   * after it. At most `limit` rows at once, so one call never stalls the tracker.
   * Returns the new base seq.
   */
  truncateThrough(seq: number, limit: number): number {
    const base = this.base() ?? { seq: 0, hash: '' };
    const upTo = Math.min(seq, base.seq + limit);
    if (upTo <= base.seq) return base.seq;
    const hash = this.hashAt(upTo);
    if (hash === undefined) return base.seq;
    this.db.transaction(() => {
      this.s.deleteThrough.run(upTo);
      this.setMeta('base_seq', upTo);
      this.setMeta('base_hash', hash);
    })();
    return upTo;
  }

  /** Bytes the log file's pages in use take (free pages, left by dropped rows, excluded): what retention by size bounds. */
  usedBytes(): number {
    const pages = this.db.pragma('page_count', { simple: true }) as number;
    const free = this.db.pragma('freelist_count', { simple: true }) as number;
    const size = this.db.pragma('page_size', { simple: true }) as number;
    return (pages - free) * size;
  }

  /** Appends one change with the rolling hash after it. */
  append(seq: number, epoch: number, change: string, hash: string): void {
    this.s.append.run(seq, epoch, change, hash);
  }

  /** The log_hash after `seq`, if this log still holds that position (a row, or its base). */
  hashAt(seq: number): string | undefined {
    const base = this.base();
    if (base && seq === base.seq) return base.hash;
    return (this.s.hashAt.get(seq) as { hash: string } | undefined)?.hash;
  }

  /**
   * The epoch this tracker last acted as the primary of, if it ever did
   * (`LED_EPOCH_KEY`). Kept in the log file's own meta, so neither the
   * replication stream nor a snapshot carries it; a backup drops it.
   */
  ledEpoch(): number | undefined {
    const value = (this.s.getMeta.get(LED_EPOCH_KEY) as { value: string } | undefined)?.value;
    const epoch = Number(value);
    return value !== undefined && Number.isSafeInteger(epoch) ? epoch : undefined;
  }

  /**
   * Records that this tracker acts as the primary of `epoch`. Inside the open
   * batch (a promotion) it commits and syncs with that batch; otherwise it is
   * synced now.
   */
  setLedEpoch(epoch: number): void {
    this.setMeta(LED_EPOCH_KEY, epoch);
    if (!this.db.inTransaction) this.wal?.syncNow();
  }

  setHead(position: LogPosition): void {
    this.setMeta('seq', position.seq);
    this.setMeta('log_hash', position.hash);
  }

  /** Rows after `seq`, oldest first. */
  after(seq: number, limit: number): LogEntry[] {
    return this.s.after.all(seq, limit) as LogEntry[];
  }

  private position(seqKey: string, hashKey: string): LogPosition | undefined {
    const seq = this.s.getMeta.get(seqKey) as { value: string } | undefined;
    const hash = this.s.getMeta.get(hashKey) as { value: string } | undefined;
    return seq && hash ? { seq: Number(seq.value), hash: hash.value } : undefined;
  }

  private setMeta(key: string, value: string | number): void {
    this.s.setMeta.run(key, String(value));
  }
}

function prepare(db: Db) {
  const p = (sql: string): Statement => db.prepare(sql);
  return {
    getMeta: p('SELECT value FROM meta WHERE key = ?'),
    setMeta: p('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value'),
    append: p('INSERT INTO sync_log (seq, epoch, change, hash) VALUES (?, ?, ?, ?)'),
    hashAt: p('SELECT hash FROM sync_log WHERE seq = ?'),
    after: p('SELECT seq, change FROM sync_log WHERE seq > ? ORDER BY seq LIMIT ?'),
    deleteThrough: p('DELETE FROM sync_log WHERE seq <= ?'),
  };
}

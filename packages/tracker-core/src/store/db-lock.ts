import { realpathSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { Database as Db } from 'better-sqlite3';

/** The lock file that goes with a state file: `<db>-lock`, beside it (the file's real path: see canonicalDbPath). */
export function lockPathFor(dbPath: string): string {
  return `${canonicalDbPath(dbPath)}-lock`;
}

/**
 * The one name of a database file, whatever path reached it: symlinks (to
 * the file or a folder on the way) resolved. Its log, lock and snapshot
 * files are named after it, so a second tracker given an alias finds the
 * lock taken instead of opening the state beside a log of its own. A file
 * not there yet is named from its folder's real path.
 */
export function canonicalDbPath(dbPath: string): string {
  try {
    return realpathSync(dbPath);
  } catch {
    try {
      return path.join(realpathSync(path.dirname(dbPath)), path.basename(dbPath));
    } catch {
      return path.resolve(dbPath);
    }
  }
}

/** Another process holds the database (a tracker, or a restore in progress). */
export class DatabaseInUseError extends Error {
  constructor(dbPath: string) {
    super(`${dbPath} is in use by another tracker process (it holds ${lockPathFor(dbPath)}): stop it first, or give this one another --db`);
    this.name = 'DatabaseInUseError';
  }
}

/**
 * One process at a time on a database: two trackers writing the same files
 * would interleave their logs (a write answered OK by one, refused by the
 * other), and a restore under a running tracker would be overwritten by it.
 *
 * The lock is SQLite's own, on a small file of its own (`<db>-lock`): a
 * connection in `locking_mode=EXCLUSIVE` that has begun an exclusive
 * transaction keeps the file's exclusive lock until it closes. It is an
 * fcntl lock, so the kernel drops it when the process dies (`kill -9`
 * leaves no stale lock), and it works between containers sharing a volume.
 * The state and log files keep their normal locking: the tracker's workers
 * and `tracker-admin backup` read them as before.
 */
export class DatabaseLock {
  private constructor(private readonly db: Db) {}

  /** Takes the lock at once or throws DatabaseInUseError. */
  static acquire(dbPath: string): DatabaseLock {
    const db = new Database(lockPathFor(dbPath));
    try {
      db.pragma('busy_timeout = 0');
      db.pragma('locking_mode = EXCLUSIVE');
      db.exec('BEGIN EXCLUSIVE');
      db.exec('COMMIT');
    } catch (error) {
      db.close();
      if ((error as { code?: unknown }).code === 'SQLITE_BUSY') throw new DatabaseInUseError(dbPath);
      throw error;
    }
    return new DatabaseLock(db);
  }

  release(): void {
    if (this.db.open) this.db.close();
  }
}

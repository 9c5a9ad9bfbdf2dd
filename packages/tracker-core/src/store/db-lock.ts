import { realpathSync, statSync } from 'node:fs';
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

/** A database file with another name (a hard link): the lock, named after one path, cannot see the other. */
export class HardLinkedDatabaseError extends Error {
  constructor(file: string, links: number) {
    super(
      `${file} has ${links} names (hard links): a program reaching it by another name would use a lock and SQLite side files of its own. ` +
        `Give it one name: remove the others (find them with \`find / -xdev -samefile ${file}\`); make copies with tracker-admin backup, not links`,
    );
    this.name = 'HardLinkedDatabaseError';
  }
}

/**
 * Refuses a state or log file that has more than one name. Symlinks are
 * resolved into one name (canonicalDbPath); a hard link cannot be: it is a
 * name like the first. So a second tracker on a link would take a lock of
 * its own and open the same state file (with SQLite's -wal and -shm named
 * after the link: a corrupt database), or write into the same log. SQLite
 * itself warns of such files ("multiple links to file"). Nothing the
 * trackers or tracker-admin do makes a link (snapshots install in place,
 * restores rename a fresh copy), so one means an operator's `ln` or a
 * hard-linking copy (`cp -l`, rsnapshot) of a live database, never a backup.
 * Checked at start; a file not there yet has one name.
 */
export function refuseHardLinks(files: readonly string[]): void {
  for (const file of files) {
    let links: number;
    try {
      links = statSync(file).nlink;
    } catch (error) {
      if ((error as { code?: unknown }).code === 'ENOENT') continue;
      throw error;
    }
    if (links > 1) throw new HardLinkedDatabaseError(file, links);
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

import { constants as fsConstants } from 'node:fs';
import { access, copyFile, mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { getSystemErrorMap } from 'node:util';
import Database from 'better-sqlite3';
import { DatabaseInUseError, DatabaseLock, GENESIS_HASH, HardLinkedDatabaseError, LED_EPOCH_KEY, lockPathFor, logPathFor, refuseHardLinks } from '@tracker-cluster/tracker-core';

/**
 * Consistent online backup of a tracker's two SQLite files, and restore.
 *
 * A tracker keeps its state in `--db` and its change log in `<db>-log`
 * (docs/architecture.md, "State and storage"). The log is committed before
 * every answer; the state is committed later, and only up to what the log
 * already holds, so on disk the state never leads the log. The log only
 * grows (rows are appended; none is rewritten or dropped today). Hence:
 *
 *   1. copy the state file with SQLite's online backup: a committed state
 *      at some seq S, with the log_hash after S;
 *   2. then copy the log file the same way: its head H is at least S
 *      (it was at least S when the state was copied, and only grew), and it
 *      still holds every row after S.
 *
 * A tracker started on the two copies replays the log rows S+1…H into the
 * state at open (as after a crash) and lands on H: everything answered OK
 * before step 2 began. `verifyBackup` checks exactly that the copies chain:
 * base ≤ S ≤ H and the log's hash at S equals the state's. Each copy is one
 * SQLite backup step over all pages, i.e. one read transaction: the tracker
 * keeps writing meanwhile (WAL readers do not block writers).
 */

export const MANIFEST = 'backup.json';

/** Where a pair of files stands. */
export interface BackupManifest {
  format: 1;
  createdAt: string;
  /** The database that was backed up (absolute path at backup time). */
  source: string;
  /** File names inside the backup directory. */
  files: { state: string; log: string };
  historyId: string;
  epoch: number;
  /** The state copy's position; a tracker started from the backup replays the log from here. */
  state: { seq: number; logHash: string };
  /** The log copy: first and last positions. A tracker started from the backup is at `log.seq`. */
  log: { baseSeq: number; seq: number; logHash: string };
}

/** A backup or restore that cannot be done; the message says why and what to do. */
export class AdminError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AdminError';
  }
}

/** Pages per backup step: all of them, so that each copy is one consistent read. */
const ALL_PAGES = 0x7fffffff;
const SIDE_FILES = ['', '-wal', '-shm', '-journal'];

/**
 * A failed system call (errno error from node:fs) or SQLite call: the
 * operator's environment (a path under a file, no permission, a full disk, a
 * damaged file), not a bug in this tool.
 */
function isSystemError(error: unknown): error is NodeJS.ErrnoException {
  const e = error as { code?: unknown; errno?: unknown; syscall?: unknown } | null;
  return typeof e?.code === 'string' && typeof e.errno === 'number' && typeof e.syscall === 'string';
}

/** The cause of a system call's failure in words, e.g. `not a directory (ENOTDIR)`. */
function cause(error: NodeJS.ErrnoException): string {
  const words = error.errno === undefined ? undefined : getSystemErrorMap().get(error.errno)?.[1];
  return words ? `${words} (${error.code})` : error.message;
}

/**
 * Runs one file-system step; a failed system call becomes an AdminError
 * `<what>: <cause> (<CODE>)` (exit 1, one line); anything else is a bug and
 * goes on up as it is.
 */
async function fsStep<T>(what: string, step: () => Promise<T>): Promise<T> {
  try {
    return await step();
  } catch (error) {
    if (isSystemError(error)) throw new AdminError(`${what}: ${cause(error)}`);
    throw error;
  }
}

/** Whether `file` exists; a path that cannot be looked at (no permission, …) is an AdminError, not "missing". */
async function exists(file: string): Promise<boolean> {
  try {
    await stat(file);
    return true;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return false;
    if (isSystemError(error)) throw new AdminError(`cannot look at ${file}: ${cause(error)}`);
    throw error;
  }
}

/**
 * Makes directory `dir` and any missing parents (as `mkdir -p`), one
 * directory at a time, each with a plain mkdir. Node's `recursive: true`
 * retries a parent that exists whenever a mkdir says ENOENT, which is what a
 * pseudo file system such as /proc says: it spun there for ever. Here a
 * mkdir under an existing directory that fails, fails: `<what> D: <cause>`.
 */
async function makeDirectory(dir: string, what: string): Promise<void> {
  const missing: string[] = [];
  for (let at = dir; ; ) {
    let isDirectory: boolean;
    try {
      isDirectory = (await stat(at)).isDirectory();
    } catch (error) {
      const parent = path.dirname(at);
      if ((error as NodeJS.ErrnoException).code === 'ENOENT' && parent !== at) {
        missing.push(at);
        at = parent;
        continue;
      }
      if (isSystemError(error)) throw new AdminError(`${what} ${dir}: ${cause(error)}`);
      throw error;
    }
    if (!isDirectory) throw new AdminError(`${what} ${dir}: ${at} is a file, not a directory`);
    break;
  }
  for (const at of missing.reverse()) {
    try {
      await mkdir(at);
    } catch (error) {
      // Made meanwhile by someone else: fine if it is a directory.
      if ((error as NodeJS.ErrnoException).code === 'EEXIST' && (await stat(at).then((s) => s.isDirectory(), () => false))) continue;
      if (!isSystemError(error)) throw error;
      const hint = error.code === 'ENOENT' ? `; ${path.dirname(at)} exists but takes no new directories` : '';
      throw new AdminError(`${what} ${dir}: ${cause(error)}${hint}`);
    }
  }
}

/** What SQLite said about a file it could not read, after `<file> …`. */
function sqliteTrouble(error: InstanceType<typeof Database.SqliteError>): string {
  if (error.code.startsWith('SQLITE_CORRUPT') || error.code === 'SQLITE_NOTADB') return `is damaged: ${error.message} (${error.code})`;
  return `cannot be read: ${error.message} (${error.code})`;
}

/** Copies one live SQLite database to `target` with the online backup API, in one step. */
async function onlineCopy(source: string, target: string): Promise<void> {
  let db: Database.Database;
  try {
    // Not read-only: a WAL database opened read-only needs its -shm to exist already.
    // Nothing is written through this connection.
    db = new Database(source, { fileMustExist: true });
  } catch (error) {
    throw new AdminError(`cannot open ${source}: ${(error as Error).message}`);
  }
  try {
    db.pragma('busy_timeout = 5000');
    await db.backup(target, { progress: () => ALL_PAGES });
  } catch (error) {
    throw new AdminError(`backing up ${source} failed: ${(error as Error).message}`);
  } finally {
    db.close();
  }
}

/**
 * A backup is of no running tracker: whoever is started from it takes its
 * role from its command line, not from the epoch the source last led (a
 * replica seeded from the primary's backup must not think itself the primary).
 */
function forgetLedEpoch(logPath: string): void {
  const db = new Database(logPath);
  try {
    db.prepare('DELETE FROM meta WHERE key = ?').run(LED_EPOCH_KEY);
  } finally {
    db.close();
  }
}

function meta(db: Database.Database, key: string): string | undefined {
  const row = db.prepare('SELECT value FROM meta WHERE key = ?').get(key) as { value: string } | undefined;
  return row?.value;
}

/**
 * Checks that a state file and a log file belong together the way a tracker
 * requires at start (the log covers the state's position with the same
 * hash) and that both pass SQLite's quick_check. Returns their positions.
 * `names` are the files as messages call them (default `the state <path>`,
 * `the log <path>`); a file SQLite cannot read is an AdminError naming it.
 */
export function inspectPair(
  statePath: string,
  logPath: string,
  names: { state: string; log: string } = { state: `the state ${statePath}`, log: `the log ${logPath}` },
): Omit<BackupManifest, 'format' | 'createdAt' | 'source' | 'files'> {
  const open = (file: string, name: string): Database.Database => {
    try {
      return new Database(file, { fileMustExist: true, readonly: true });
    } catch (error) {
      throw new AdminError(`cannot open ${name}: ${(error as Error).message}`);
    }
  };
  /** Reads from one file; SQLite's complaints (a damaged page, not a database) name that file. */
  const read = <T>(name: string, query: () => T): T => {
    try {
      return query();
    } catch (error) {
      if (error instanceof Database.SqliteError) throw new AdminError(`${name} ${sqliteTrouble(error)}`);
      throw error;
    }
  };
  const state = open(statePath, names.state);
  let log: Database.Database | undefined;
  try {
    log = open(logPath, names.log);
    for (const [name, db] of [
      [names.state, state],
      [names.log, log],
    ] as const) {
      const check = read(name, () => db.pragma('quick_check', { simple: true }));
      // quick_check's report may span lines ("*** in database main ***\nTree 2 page 2: …"): the error is one line.
      if (check !== 'ok') throw new AdminError(`${name} is damaged: quick_check says ${String(check).trim().replace(/\s*\n\s*/g, '; ')}`);
    }
    const { seq, logHash, historyId, epoch } = read(names.state, () => ({
      seq: Number(meta(state, 'seq') ?? 0),
      logHash: meta(state, 'log_hash') ?? GENESIS_HASH,
      historyId: meta(state, 'history_id') ?? '',
      epoch: Number(meta(state, 'epoch') ?? 1),
    }));
    const logDb = log;
    const { head, base } = read(names.log, () => ({
      head: { seq: Number(meta(logDb, 'seq') ?? NaN), hash: meta(logDb, 'log_hash') ?? '' },
      base: { seq: Number(meta(logDb, 'base_seq') ?? NaN), hash: meta(logDb, 'base_hash') ?? '' },
    }));
    if (!Number.isInteger(head.seq) || !Number.isInteger(base.seq)) throw new AdminError(`${names.log} is not a tracker change log (no head or base)`);
    if (head.seq < seq) throw new AdminError(`${names.log} ends at seq ${head.seq} but ${names.state} is at seq ${seq}: not a consistent pair`);
    if (base.seq > seq) throw new AdminError(`${names.log} starts after seq ${base.seq} but ${names.state} is at seq ${seq}: not a consistent pair`);
    const hashAtState =
      seq === base.seq
        ? base.hash
        : read(names.log, () => (logDb.prepare('SELECT hash FROM sync_log WHERE seq = ?').get(seq) as { hash: string } | undefined)?.hash);
    if (hashAtState !== logHash) throw new AdminError(`the log's hash at seq ${seq} differs from the state's: the files do not belong together`);
    return {
      historyId,
      epoch,
      state: { seq, logHash },
      log: { baseSeq: base.seq, seq: head.seq, logHash: head.hash },
    };
  } finally {
    state.close();
    log?.close();
  }
}

/**
 * Backs up a (running or stopped) tracker's database `db` into directory
 * `outDir`: `<name>`, `<name>-log` and `backup.json`. Existing files there
 * are refused unless `force`. The copies are written under temporary names
 * and renamed only once verified.
 */
export async function backupTracker(db: string, outDir: string, opts: { force?: boolean; now?: () => Date } = {}): Promise<BackupManifest> {
  const statePath = path.resolve(db);
  const logPath = logPathFor(statePath);
  for (const file of [statePath, logPath]) {
    if (!(await exists(file))) throw new AdminError(`${file} does not exist: --db must name a tracker's state file (its log ${path.basename(logPath)} beside it)`);
  }
  // Through a second name SQLite looks for the -wal beside that name, not the tracker's: a stale copy.
  try {
    refuseHardLinks([statePath, logPath]);
  } catch (error) {
    if (error instanceof HardLinkedDatabaseError) throw new AdminError(error.message);
    throw error;
  }
  const dir = path.resolve(outDir);
  if (path.dirname(statePath) === dir) throw new AdminError(`--out must be another directory than the database's own (${dir})`);
  await makeDirectory(dir, 'cannot create --out');
  // Said here, in words, rather than as SQLite's "unable to open database file" for the copy.
  await fsStep(`cannot write into --out ${dir}`, () => access(dir, fsConstants.W_OK | fsConstants.X_OK));
  const files = { state: path.basename(statePath), log: path.basename(logPath) };
  const targets = { state: path.join(dir, files.state), log: path.join(dir, files.log), manifest: path.join(dir, MANIFEST) };
  if (!opts.force) {
    for (const file of Object.values(targets)) {
      if (await exists(file)) throw new AdminError(`${file} already exists; choose a new --out directory or pass --force to replace it`);
    }
  }
  const partial = { state: `${targets.state}.partial`, log: `${targets.log}.partial` };
  const removePartials = async (): Promise<void> => {
    for (const file of Object.values(partial)) await removeWithSideFiles(file);
  };
  let manifest: BackupManifest;
  try {
    await removePartials();
    // Order matters: the state first, then the log (see the comment at the top).
    await onlineCopy(statePath, partial.state);
    await onlineCopy(logPath, partial.log);
    forgetLedEpoch(partial.log);
    const position = inspectPair(partial.state, partial.log, { state: `the copy of ${statePath} (${partial.state})`, log: `the copy of ${logPath} (${partial.log})` });
    manifest = {
      format: 1,
      createdAt: (opts.now?.() ?? new Date()).toISOString(),
      source: statePath,
      files,
      ...position,
    };
    await removeWithSideFiles(targets.state);
    await removeWithSideFiles(targets.log);
    await fsStep(`cannot rename ${partial.state} to ${targets.state}`, () => rename(partial.state, targets.state));
    await fsStep(`cannot rename ${partial.log} to ${targets.log}`, () => rename(partial.log, targets.log));
    await fsStep(`cannot write ${targets.manifest}`, () => writeFile(targets.manifest, `${JSON.stringify(manifest, null, 2)}\n`));
  } catch (error) {
    // The failure's own message matters more than a leftover copy's.
    await removePartials().catch(() => undefined);
    throw error;
  }
  await removePartials();
  return manifest;
}

/** Reads and checks a backup directory made by `backupTracker`. */
export async function readBackup(fromDir: string): Promise<{ manifest: BackupManifest; state: string; log: string }> {
  const dir = path.resolve(fromDir);
  let manifest: BackupManifest;
  try {
    manifest = JSON.parse(await readFile(path.join(dir, MANIFEST), 'utf8')) as BackupManifest;
  } catch (error) {
    throw new AdminError(`${dir} is not a tracker backup (cannot read ${MANIFEST}: ${(error as Error).message})`);
  }
  if (manifest.format !== 1 || !manifest.files?.state || !manifest.files.log) throw new AdminError(`${path.join(dir, MANIFEST)}: unknown backup format`);
  const state = path.join(dir, path.basename(manifest.files.state));
  const log = path.join(dir, path.basename(manifest.files.log));
  const position = inspectPair(state, log, { state: `the backup's state ${state}`, log: `the backup's log ${log}` });
  if (position.log.seq !== manifest.log.seq || position.log.logHash !== manifest.log.logHash) {
    throw new AdminError(`the backup's files are not the ones ${MANIFEST} describes (log at seq ${position.log.seq}, manifest says ${manifest.log.seq})`);
  }
  return { manifest, state, log };
}

/**
 * Puts a backup in place of the database `db` (and `<db>-log`), for a
 * tracker that is STOPPED. An existing database is refused unless `force`,
 * which removes it (with its -wal/-shm files) first.
 */
export async function restoreBackup(fromDir: string, db: string, opts: { force?: boolean } = {}): Promise<BackupManifest> {
  const backup = await readBackup(fromDir);
  const statePath = path.resolve(db);
  const logPath = logPathFor(statePath);
  const dbDir = path.dirname(statePath);
  await makeDirectory(dbDir, 'cannot create the directory of --db');
  // A tracker running on these files would go on writing over the restored ones.
  let lock: DatabaseLock;
  try {
    lock = DatabaseLock.acquire(statePath);
  } catch (error) {
    if (error instanceof DatabaseInUseError) throw new AdminError(`a tracker is running on ${statePath}: stop it before restoring`);
    if (error instanceof Database.SqliteError) throw new AdminError(`cannot lock ${statePath} (${lockPathFor(statePath)}): ${error.message} (${error.code})`);
    throw error;
  }
  try {
    return await restoreLocked(backup, statePath, logPath, opts);
  } finally {
    lock.release();
  }
}

async function restoreLocked(
  backup: { manifest: BackupManifest; state: string; log: string },
  statePath: string,
  logPath: string,
  opts: { force?: boolean },
): Promise<BackupManifest> {
  const present: string[] = [];
  for (const base of [statePath, logPath]) for (const side of SIDE_FILES) if (await exists(base + side)) present.push(base + side);
  if (present.length > 0 && !opts.force) {
    throw new AdminError(`${present.join(', ')} already exist${present.length === 1 ? 's' : ''}; stop the tracker, then pass --force to replace its database`);
  }
  for (const file of present) await fsStep(`cannot remove ${file}`, () => rm(file, { force: true }));
  // Log first, then state: a restore cut short leaves no state without its log.
  await copyThenRename(backup.log, logPath);
  await copyThenRename(backup.state, statePath);
  return backup.manifest;
}

async function copyThenRename(from: string, to: string): Promise<void> {
  const partial = `${to}.partial`;
  await fsStep(`cannot copy ${from} to ${partial}`, () => copyFile(from, partial));
  await fsStep(`cannot rename ${partial} to ${to}`, () => rename(partial, to));
}

async function removeWithSideFiles(file: string): Promise<void> {
  for (const side of SIDE_FILES) await fsStep(`cannot remove ${file + side}`, () => rm(file + side, { force: true }));
}

import { copyFile, mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import Database from 'better-sqlite3';
import { DatabaseInUseError, DatabaseLock, GENESIS_HASH, LED_EPOCH_KEY, logPathFor } from '@tracker-cluster/tracker-core';

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

async function exists(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    () => false,
  );
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
 */
export function inspectPair(statePath: string, logPath: string): Omit<BackupManifest, 'format' | 'createdAt' | 'source' | 'files'> {
  const open = (file: string): Database.Database => {
    try {
      return new Database(file, { fileMustExist: true, readonly: true });
    } catch (error) {
      throw new AdminError(`cannot open ${file}: ${(error as Error).message}`);
    }
  };
  const state = open(statePath);
  let log: Database.Database | undefined;
  try {
    log = open(logPath);
    for (const [file, db] of [
      [statePath, state],
      [logPath, log],
    ] as const) {
      const check = db.pragma('quick_check', { simple: true });
      if (check !== 'ok') throw new AdminError(`${file} is damaged: quick_check says ${String(check)}`);
    }
    const seq = Number(meta(state, 'seq') ?? 0);
    const logHash = meta(state, 'log_hash') ?? GENESIS_HASH;
    const head = { seq: Number(meta(log, 'seq') ?? NaN), hash: meta(log, 'log_hash') ?? '' };
    const base = { seq: Number(meta(log, 'base_seq') ?? NaN), hash: meta(log, 'base_hash') ?? '' };
    if (!Number.isInteger(head.seq) || !Number.isInteger(base.seq)) throw new AdminError(`${logPath} is not a tracker change log (no head or base)`);
    if (head.seq < seq) throw new AdminError(`the log ${logPath} ends at seq ${head.seq} but the state ${statePath} is at seq ${seq}: not a consistent pair`);
    if (base.seq > seq) throw new AdminError(`the log ${logPath} starts after seq ${base.seq} but the state ${statePath} is at seq ${seq}: not a consistent pair`);
    const hashAtState =
      seq === base.seq ? base.hash : (log.prepare('SELECT hash FROM sync_log WHERE seq = ?').get(seq) as { hash: string } | undefined)?.hash;
    if (hashAtState !== logHash) throw new AdminError(`the log's hash at seq ${seq} differs from the state's: the files do not belong together`);
    return {
      historyId: meta(state, 'history_id') ?? '',
      epoch: Number(meta(state, 'epoch') ?? 1),
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
  const dir = path.resolve(outDir);
  await mkdir(dir, { recursive: true });
  const files = { state: path.basename(statePath), log: path.basename(logPath) };
  const targets = { state: path.join(dir, files.state), log: path.join(dir, files.log), manifest: path.join(dir, MANIFEST) };
  if (path.dirname(statePath) === dir) throw new AdminError(`--out must be another directory than the database's own (${dir})`);
  if (!opts.force) {
    for (const file of Object.values(targets)) {
      if (await exists(file)) throw new AdminError(`${file} already exists; choose a new --out directory or pass --force to replace it`);
    }
  }
  const partial = { state: `${targets.state}.partial`, log: `${targets.log}.partial` };
  try {
    for (const file of Object.values(partial)) await removeWithSideFiles(file);
    // Order matters: the state first, then the log (see the comment at the top).
    await onlineCopy(statePath, partial.state);
    await onlineCopy(logPath, partial.log);
    forgetLedEpoch(partial.log);
    const position = inspectPair(partial.state, partial.log);
    const manifest: BackupManifest = {
      format: 1,
      createdAt: (opts.now?.() ?? new Date()).toISOString(),
      source: statePath,
      files,
      ...position,
    };
    await removeWithSideFiles(targets.state);
    await removeWithSideFiles(targets.log);
    await rename(partial.state, targets.state);
    await rename(partial.log, targets.log);
    await writeFile(targets.manifest, `${JSON.stringify(manifest, null, 2)}\n`);
    return manifest;
  } finally {
    for (const file of Object.values(partial)) await removeWithSideFiles(file);
  }
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
  const position = inspectPair(state, log);
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
  await mkdir(path.dirname(statePath), { recursive: true });
  // A tracker running on these files would go on writing over the restored ones.
  let lock: DatabaseLock;
  try {
    lock = DatabaseLock.acquire(statePath);
  } catch (error) {
    if (error instanceof DatabaseInUseError) throw new AdminError(`a tracker is running on ${statePath}: stop it before restoring`);
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
  for (const file of present) await rm(file, { force: true });
  // Log first, then state: a restore cut short leaves no state without its log.
  await copyThenRename(backup.log, logPath);
  await copyThenRename(backup.state, statePath);
  return backup.manifest;
}

async function copyThenRename(from: string, to: string): Promise<void> {
  const partial = `${to}.partial`;
  await copyFile(from, partial);
  await rename(partial, to);
}

async function removeWithSideFiles(file: string): Promise<void> {
  for (const side of SIDE_FILES) await rm(file + side, { force: true });
}

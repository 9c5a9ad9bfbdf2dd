import { createHash } from 'node:crypto';
import type { Stats } from 'node:fs';
import { lstat, readFile, rm, rmdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import lockfile from 'proper-lockfile';
import { writeFileAtomically } from './atomic-file.js';
import { Bitfield } from './bitfield.js';

/**
 * A download in progress lives next to its destination:
 *   <dest_dir>/.<file>.part        the bytes, written at each piece's offset
 *   <dest_dir>/.<file>.part.json   this state: which pieces are verified
 * so that running `download_file` again (after a restart) resumes it. The
 * state is written after the pieces it names (a crash loses at most the
 * last second of pieces, never claims a piece that is not on disk) and
 * replaced atomically (`writeFileAtomically`).
 *
 * These working files are only ever replaced when a state file of ours names
 * them: a file or a symlink of the same name that is not ours is refused,
 * never written through.
 */
export interface DownloadState {
  version: 1;
  group: string;
  file: string;
  size: number;
  sha256: string;
  pieceSize: number;
  /** Verified pieces, as Bitfield hex. */
  have: string;
  /** The client process that runs it: a lock left by a process that died on this host is not waited for. */
  owner?: DownloadOwner;
}

export interface DownloadOwner {
  host: string;
  pid: number;
}

/** This process, as a download state names its owner. */
export function thisProcess(): DownloadOwner {
  return { host: os.hostname(), pid: process.pid };
}

/**
 * File names are 1–255 bytes, and a working file adds `.`, `.part.json` and a
 * temporary suffix: past this many bytes the name is cut and a digest of the
 * whole name keeps it unique, so that every working name fits in 255 bytes.
 */
const MAX_STEM_BYTES = 200;

function stem(file: string): string {
  if (Buffer.byteLength(file) <= MAX_STEM_BYTES) return file;
  const digest = createHash('sha256').update(file).digest('hex').slice(0, 16);
  return `${truncateUtf8(file, MAX_STEM_BYTES - digest.length - 1)}~${digest}`;
}

/** The longest prefix of `text` of at most `maxBytes` UTF-8 bytes that ends on a whole character. */
export function truncateUtf8(text: string, maxBytes: number): string {
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length <= maxBytes) return text;
  let end = maxBytes;
  // A continuation byte (10xxxxxx) just past the cut means the cut splits a character.
  while (end > 0 && ((bytes[end] as number) & 0xc0) === 0x80) end--;
  return bytes.subarray(0, end).toString('utf8');
}

export function partPath(destDir: string, file: string): string {
  return path.join(destDir, `.${stem(file)}.part`);
}

export function statePath(destDir: string, file: string): string {
  return `${partPath(destDir, file)}.json`;
}

export interface WorkingFiles {
  /** The verified pieces of an earlier attempt at the same contents, when its part file is intact. */
  resume: Bitfield | undefined;
  /** A part file exists and may be replaced (ours, not resumable). */
  stalePart: boolean;
}

/** Why a download cannot use its working files; the message is for the user. */
export class WorkingFileError extends Error {}

/**
 * What the working files in `destDir` say before a download of `file` starts.
 * Throws `WorkingFileError` when a file of those names is not ours (not a
 * regular file, or a part file no state of ours names).
 */
export async function inspectWorkingFiles(
  destDir: string,
  file: string,
  expect: { sha256: string; pieceSize: number; size: number; pieces: number },
): Promise<WorkingFiles> {
  const part = partPath(destDir, file);
  const stateFile = statePath(destDir, file);
  const partInfo = await lstatOrUndefined(part);
  const stateInfo = await lstatOrUndefined(stateFile);
  const refuse = (name: string, why: string): WorkingFileError =>
    new WorkingFileError(`${name} ${why}; it is not a download of this client: remove it or choose another folder`);
  if (partInfo && !partInfo.isFile()) throw refuse(part, 'exists and is not a regular file');
  if (stateInfo && !stateInfo.isFile()) throw refuse(stateFile, 'exists and is not a regular file');
  let state: Partial<DownloadState> | undefined;
  if (stateInfo) {
    try {
      state = JSON.parse(await readFile(stateFile, 'utf8')) as Partial<DownloadState>;
    } catch {
      state = undefined;
    }
    if (state?.version !== 1 || state.file !== file) throw refuse(stateFile, 'exists and is not a download state');
  }
  if (!state) {
    if (partInfo) throw refuse(part, 'exists and no download state names it');
    return { resume: undefined, stalePart: false };
  }
  const same = state.sha256 === expect.sha256 && state.pieceSize === expect.pieceSize && state.size === expect.size;
  const intact = partInfo !== undefined && partInfo.size === expect.size;
  const resume = same && intact && typeof state.have === 'string' ? Bitfield.fromHex(expect.pieces, state.have) : undefined;
  return { resume, stalePart: resume === undefined && partInfo !== undefined };
}

/**
 * How long a download's lock may go without its holder refreshing it before
 * another process takes it over (its holder was killed). proper-lockfile
 * refreshes a held lock every `stale / 2` ms.
 */
const DOWNLOAD_LOCK_STALE_MS = 10_000;

function lockOptions(destDir: string, file: string): { realpath: false; stale: number; lockfilePath: string } {
  // `realpath: false`: the part file may not exist yet.
  return { realpath: false, stale: DOWNLOAD_LOCK_STALE_MS, lockfilePath: `${partPath(destDir, file)}.lock` };
}

function heldElsewhere(destDir: string, file: string): WorkingFileError {
  return new WorkingFileError(`another tracker-client is downloading ${JSON.stringify(file)} into ${destDir}; let it finish or choose another folder`);
}

/**
 * Takes the lock on a download's working files for as long as it runs:
 * two client processes downloading one file into one folder would write
 * the same part file and remove each other's. The lock is a directory
 * beside them (`.<file>.part.lock`, proper-lockfile). A lock whose holder
 * is gone is taken over: at once when the download state names a process
 * of this host that no longer runs (a client killed and started again
 * resumes without waiting), else once it has not been refreshed for
 * `DOWNLOAD_LOCK_STALE_MS`. Throws `WorkingFileError` when another process
 * holds it. `onLost` is told if the lock is lost while held (its directory
 * removed, or not refreshed in time). Resolves with the release.
 */
export async function lockWorkingFiles(destDir: string, file: string, onLost: (error: Error) => void): Promise<() => Promise<void>> {
  // The default onCompromised throws from a timer, which would crash the client.
  const options = { ...lockOptions(destDir, file), onCompromised: onLost };
  try {
    return await lockfile.lock(partPath(destDir, file), options);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ELOCKED') throw error;
    if (!(await heldByDeadProcess(destDir, file))) throw heldElsewhere(destDir, file);
  }
  await rmdir(options.lockfilePath).catch(() => undefined);
  try {
    return await lockfile.lock(partPath(destDir, file), options);
  } catch (error) {
    // Another process took it over first.
    if ((error as NodeJS.ErrnoException).code === 'ELOCKED') throw heldElsewhere(destDir, file);
    throw error;
  }
}

/** Throws `WorkingFileError` when another running process holds the lock of `lockWorkingFiles`. */
export async function checkWorkingFilesFree(destDir: string, file: string): Promise<void> {
  if (!(await lockfile.check(partPath(destDir, file), lockOptions(destDir, file)))) return;
  if (!(await heldByDeadProcess(destDir, file))) throw heldElsewhere(destDir, file);
}

/** The download state names an owner on this host that is not running (a client killed mid-download). */
async function heldByDeadProcess(destDir: string, file: string): Promise<boolean> {
  let owner: Partial<DownloadOwner> | undefined;
  try {
    owner = (JSON.parse(await readFile(statePath(destDir, file), 'utf8')) as Partial<DownloadState>).owner;
  } catch {
    return false;
  }
  const self = thisProcess();
  const pid = owner?.pid;
  if (owner?.host !== self.host || typeof pid !== 'number' || !Number.isInteger(pid) || pid <= 0 || pid === self.pid) return false;
  try {
    process.kill(pid, 0);
    return false; // running (or a reused pid: the lock then goes stale in time)
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

export async function saveDownloadState(destDir: string, state: DownloadState): Promise<void> {
  await writeFileAtomically(statePath(destDir, state.file), `${JSON.stringify(state)}\n`);
}

export async function removeDownloadState(destDir: string, file: string): Promise<void> {
  await rm(statePath(destDir, file), { force: true });
}

export async function lstatOrUndefined(file: string): Promise<Stats | undefined> {
  try {
    return await lstat(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

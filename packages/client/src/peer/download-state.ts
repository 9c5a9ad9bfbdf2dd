import { createHash } from 'node:crypto';
import type { Stats } from 'node:fs';
import { lstat, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
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

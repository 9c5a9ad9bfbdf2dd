import { readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Bitfield } from './bitfield.js';

/**
 * A download in progress lives next to its destination:
 *   <dest_dir>/.<file>.part        the bytes, written at each piece's offset
 *   <dest_dir>/.<file>.part.json   this state: which pieces are verified
 * so that running `download_file` again (after a restart) resumes it. The
 * state is written after the pieces it names (a crash loses at most the
 * last second of pieces, never claims a piece that is not on disk) and
 * replaced atomically (write a temporary file, rename).
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

export function partPath(destDir: string, file: string): string {
  return path.join(destDir, `.${file}.part`);
}

export function statePath(destDir: string, file: string): string {
  return `${partPath(destDir, file)}.json`;
}

/**
 * The verified pieces of an earlier attempt at the same file (same sha256
 * and piece size); undefined when there is none or it is for other contents.
 */
export async function loadDownloadState(
  destDir: string,
  file: string,
  expect: { sha256: string; pieceSize: number; size: number; pieces: number },
): Promise<Bitfield | undefined> {
  let state: Partial<DownloadState>;
  try {
    state = JSON.parse(await readFile(statePath(destDir, file), 'utf8')) as Partial<DownloadState>;
  } catch {
    return undefined;
  }
  if (state.version !== 1 || state.sha256 !== expect.sha256 || state.pieceSize !== expect.pieceSize || state.size !== expect.size) {
    return undefined;
  }
  return typeof state.have === 'string' ? Bitfield.fromHex(expect.pieces, state.have) : undefined;
}

export async function saveDownloadState(destDir: string, state: DownloadState): Promise<void> {
  const target = statePath(destDir, state.file);
  const tmp = `${target}.tmp`;
  await writeFile(tmp, `${JSON.stringify(state)}\n`);
  await rename(tmp, target);
}

export async function removeDownloadState(destDir: string, file: string): Promise<void> {
  await rm(statePath(destDir, file), { force: true });
}

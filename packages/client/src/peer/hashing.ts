import { createHash } from 'node:crypto';
import type { Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { Worker } from 'node:worker_threads';

/** A file's identity on the tracker: what `upload_file` registers. */
export interface FileDigest {
  size: number;
  sha256: string;
  pieceSize: number;
  /** SHA-256 of each piece, in order (empty for an empty file). */
  hashes: string[];
}

export function sha256Hex(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/**
 * Hashes a file (`hashFileHere`) in a worker thread of its own
 * (./file-hash-worker.ts): ~1.3 s of CPU per GiB that the event loop (the
 * prompt, the tracker link, the uploads) would otherwise share. Rejects as
 * `hashFileHere` would, with the same `code` (`ENOENT`, `EACCES` …).
 */
export function hashFile(path: string, pieceSize: number): Promise<FileDigest> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL('./file-hash-worker.js', import.meta.url), { workerData: { path, pieceSize } satisfies FileHashJob, execArgv: [] });
    let settled = false;
    worker.once('message', (reply: FileHashReply) => {
      settled = true;
      if ('digest' in reply) resolve(reply.digest);
      else reject(Object.assign(new Error(reply.error.message), reply.error.code === undefined ? {} : { code: reply.error.code }));
    });
    worker.once('error', (error) => {
      settled = true;
      reject(error);
    });
    worker.once('exit', (code) => {
      if (!settled) reject(new Error(`the file hasher stopped (exit ${code})`));
    });
  });
}

/** What `hashFile`'s worker is started with. */
export interface FileHashJob {
  path: string;
  pieceSize: number;
}

/** What it answers. */
export type FileHashReply = { digest: FileDigest } | { error: { message: string; code?: string } };

/**
 * Hashes a file on this thread by streaming it once (1 MiB reads, never the
 * whole file in memory): the whole file's SHA-256 and each piece's.
 */
export async function hashFileHere(path: string, pieceSize: number): Promise<FileDigest> {
  const whole = createHash('sha256');
  const hashes: string[] = [];
  let piece: Hash = createHash('sha256');
  let inPiece = 0;
  let size = 0;
  const stream = createReadStream(path, { highWaterMark: 1024 * 1024 });
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    whole.update(chunk);
    size += chunk.length;
    let at = 0;
    while (at < chunk.length) {
      const take = Math.min(pieceSize - inPiece, chunk.length - at);
      piece.update(chunk.subarray(at, at + take));
      inPiece += take;
      at += take;
      if (inPiece === pieceSize) {
        hashes.push(piece.digest('hex'));
        piece = createHash('sha256');
        inPiece = 0;
      }
    }
  }
  if (inPiece > 0) hashes.push(piece.digest('hex'));
  return { size, sha256: whole.digest('hex'), pieceSize, hashes };
}

/** The SHA-256 of a whole file, streamed. */
export async function sha256File(path: string): Promise<string> {
  const whole = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 1024 * 1024 }) as AsyncIterable<Buffer>) whole.update(chunk);
  return whole.digest('hex');
}

import { createHash } from 'node:crypto';
import type { Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';

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
 * Hashes a file by streaming it once (1 MiB reads, never the whole file in
 * memory): the whole file's SHA-256 and each piece's.
 */
export async function hashFile(path: string, pieceSize: number): Promise<FileDigest> {
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

/**
 * The piece sink (its worker thread): each piece checked before it is
 * written, the whole file's SHA-256 computed in piece order whatever order
 * the pieces come in — from memory within its bound, read back from the
 * part file beyond it, and for the pieces of an earlier run.
 */
import t from 'tap';
import type { Test } from 'tap';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Bitfield, PieceSink, pieceCount } from '@tracker-cluster/client';

const PIECE = 1000;

function layout(data: Buffer): { size: number; pieceSize: number; hashes: string[]; sha256: string } {
  const hashes: string[] = [];
  for (let at = 0; at < data.length; at += PIECE) hashes.push(createHash('sha256').update(data.subarray(at, at + PIECE)).digest('hex'));
  return { size: data.length, pieceSize: PIECE, hashes, sha256: createHash('sha256').update(data).digest('hex') };
}

/** A copy of piece `i` in a buffer of its own (what the frame reader hands over). */
function piece(data: Buffer, i: number): Buffer {
  const src = data.subarray(i * PIECE, (i + 1) * PIECE);
  const own = Buffer.allocUnsafeSlow(src.length);
  src.copy(own);
  return own;
}

async function partFile(t: Test, size: number, content?: Buffer): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'peer-sink-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, '.f.part');
  await writeFile(file, content ?? Buffer.alloc(size));
  return file;
}

t.test('pieces in any order, some past the memory bound: every piece checked, the whole file hashed once', async (t) => {
  const data = randomBytes(PIECE * 20 + 123);
  const meta = layout(data);
  const count = pieceCount(data.length, PIECE);
  const file = await partFile(t, data.length);
  const reused: ArrayBuffer[] = [];
  // Room for 3 pieces ahead: the others are read back from the part file.
  const sink = new PieceSink(file, meta, new Bitfield(count), { pendingLimit: 3 * PIECE, reuse: (b) => reused.push(b) });
  const order = Array.from({ length: count }, (_, i) => i).reverse();
  const bad = Buffer.from(piece(data, 5));
  bad[0] = (bad[0] as number) ^ 1;
  const own = Buffer.allocUnsafeSlow(bad.length);
  bad.copy(own);
  t.equal(await sink.put(5, own), 'bad', 'a corrupt piece is refused');
  const verdicts = await Promise.all(order.map((i) => sink.put(i, piece(data, i))));
  t.ok(verdicts.every((v) => v === 'ok'), 'the good pieces are written');
  t.equal(await sink.finish(), meta.sha256, "the whole file's SHA-256");
  await sink.close();
  t.ok((await readFile(file)).equals(data), 'the part file holds the file');
  t.ok(reused.length > 0, 'buffers come back for reuse');
});

t.test('resume: the pieces of an earlier run are read back for the whole-file hash', async (t) => {
  const data = randomBytes(PIECE * 6);
  const meta = layout(data);
  const have = new Bitfield(6);
  const earlier = Buffer.alloc(data.length);
  for (const i of [0, 1, 4]) {
    have.set(i);
    data.copy(earlier, i * PIECE, i * PIECE, (i + 1) * PIECE);
  }
  const file = await partFile(t, data.length, earlier);
  const sink = new PieceSink(file, meta, have);
  for (const i of [5, 3, 2]) t.equal(await sink.put(i, piece(data, i)), 'ok');
  t.equal(await sink.finish(), meta.sha256);
  await sink.close();
  t.ok((await readFile(file)).equals(data));
});

t.test('a part file that does not hash to the file: finish says so; a missing piece too', async (t) => {
  const data = randomBytes(PIECE * 3);
  const meta = layout(data);
  const wrong = Buffer.from(data);
  wrong[PIECE + 7] = (wrong[PIECE + 7] as number) ^ 0xff;
  // The earlier run's piece 1 was damaged on disk after it was verified.
  const have = new Bitfield(3);
  have.set(1);
  const file = await partFile(t, data.length, wrong);
  const sink = new PieceSink(file, meta, have);
  t.equal(await sink.put(0, piece(data, 0)), 'ok');
  t.equal(await sink.put(2, piece(data, 2)), 'ok');
  t.not(await sink.finish(), meta.sha256, 'the whole-file hash does not match');
  await sink.close();

  const file2 = await partFile(t, data.length);
  const short = new PieceSink(file2, meta, new Bitfield(3));
  t.equal(await short.put(0, piece(data, 0)), 'ok');
  await t.rejects(short.finish(), /piece 1 is missing/);
  await short.close();
  await t.rejects(short.put(1, piece(data, 1)), /closed/, 'nothing more once closed');
});

t.test('an empty file', async (t) => {
  const file = await partFile(t, 0);
  const sink = new PieceSink(file, { size: 0, pieceSize: PIECE, hashes: [] }, new Bitfield(0));
  t.equal(await sink.finish(), createHash('sha256').digest('hex'));
  await sink.close();
});

/**
 * `hashFile` (what `upload_file` and a login's re-check of a changed share
 * run) hashes the file off the caller's thread: ~1.3 s of CPU per GiB that
 * the client's event loop would otherwise spend. Real files.
 *
 * Off the thread is observed without a clock: this thread blocks (a
 * synchronous wait, nothing of its event loop runs) until the process has
 * read the whole file (/proc/self/io counts every thread's reads). On this
 * thread, the file is read a chunk per turn of the event loop, so the wait
 * would never end (the deadline fails the test); elsewhere it ends once the
 * file is read.
 */
import t from 'tap';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PieceHasher, hashFile } from '@tracker-cluster/client';

const MiB = 1024 * 1024;

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Bytes read by every thread of this process so far, but for these looks at /proc/self/io themselves. */
let looked = 0;
function bytesRead(): number {
  const io = readFileSync('/proc/self/io');
  const read = Number(/^rchar: (\d+)$/m.exec(io.toString('latin1'))?.[1]) - looked;
  looked += io.length;
  return read;
}

t.test('hashFile reads and hashes the file while this thread is blocked', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'hash-file-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const pieceSize = 4 * MiB;
  const data = randomBytes(32 * MiB + 123);
  const file = path.join(dir, 'f.bin');
  await writeFile(file, data);

  const before = bytesRead();
  const hashing = hashFile(file, pieceSize);
  const deadline = Date.now() + 30_000;
  let read: number;
  while ((read = bytesRead() - before) < data.length && Date.now() < deadline) {
    // Blocks this thread on purpose: its event loop does not turn until the file has been read.
  }
  t.ok(read >= data.length, `the whole file was read while this thread was blocked (${read} of ${data.length} bytes)`);

  const digest = await hashing;
  t.equal(digest.size, data.length);
  t.equal(digest.sha256, sha256(data));
  t.equal(digest.pieceSize, pieceSize);
  t.same(digest.hashes, Array.from({ length: 9 }, (_, i) => sha256(data.subarray(i * pieceSize, (i + 1) * pieceSize))));
});

t.test('hashFile of an empty file; of a missing one, the error code', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'hash-file-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await writeFile(path.join(dir, 'empty'), '');
  t.same(await hashFile(path.join(dir, 'empty'), 1024), { size: 0, sha256: sha256(Buffer.alloc(0)), pieceSize: 1024, hashes: [] });
  await t.rejects(hashFile(path.join(dir, 'missing'), 1024), { code: 'ENOENT' });
});

t.test('PieceHasher: hashes large pieces in its worker; once closed it takes no more work', async (t) => {
  const hasher = new PieceHasher();
  const piece = randomBytes(256 * 1024);
  const expected = sha256(piece);
  const copy = Buffer.from(piece);
  const first = await hasher.sha256(copy);
  t.equal(first.sha256, expected);
  t.same(first.bytes, piece, 'the bytes come back whole');
  await hasher.close();
  // A piece read after the server closed must not start a worker that nothing would stop.
  await t.rejects(hasher.sha256(Buffer.from(piece)), /the piece hasher was closed/);
  t.equal((await hasher.sha256(Buffer.alloc(16))).sha256, sha256(Buffer.alloc(16)), 'a small piece is still hashed here');
});

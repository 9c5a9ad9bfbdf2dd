/**
 * The piece server checks every piece it reads against its SHA-256 before
 * sending it: for a large piece, off its event loop, so that the other
 * connections (and, in the client, the prompt and the tracker link) are
 * answered meanwhile. Real sockets and real files, in this process.
 *
 * The test is told when the piece's read completed (a spy on
 * `FileHandle.read`, the server's only way to read a piece): at that very
 * moment a second peer sends `HAVE`, so its request is on the server's
 * socket before the check of the piece starts. A check on the event loop runs
 * to its end, and the piece is written, before that request is even read;
 * a check elsewhere lets it be answered first. Which answer comes first is
 * the whole observation — no clock is read.
 */
import t from 'tap';
import type { Test } from 'tap';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { encodeFrame, FrameDecoder } from '@tracker-cluster/protocol';
import { Bitfield, PieceServer, ShareTable, formatHaveRequest, formatPieceRequest, parsePieceAnswer } from '@tracker-cluster/client';
import type { FileGoneReason, ServedFile } from '@tracker-cluster/client';

const MiB = 1024 * 1024;
const PIECE = 8 * MiB;
const GROUP = 'g';

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

async function tempDir(t: Test): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'piece-hashing-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function waitFor(what: string, check: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** A file of two random pieces, shared in a fresh table and server. */
async function serve(t: Test, onFileGone?: (served: ServedFile, reason: FileGoneReason) => void): Promise<{ port: number; data: Buffer; served: ServedFile; table: ShareTable }> {
  const data = randomBytes(2 * PIECE);
  const file = path.join(await tempDir(t), 'big.bin');
  await writeFile(file, data);
  const served: ServedFile = {
    group: GROUP,
    file: 'big.bin',
    sha256: sha256(data),
    size: data.length,
    pieceSize: PIECE,
    path: file,
    have: Bitfield.full(2),
    hashes: [sha256(data.subarray(0, PIECE)), sha256(data.subarray(PIECE))],
  };
  const table = new ShareTable();
  table.set(served);
  const server = new PieceServer(table, { onFileGone });
  const { port } = await server.listen({ host: '127.0.0.1', port: 0 });
  t.teardown(() => server.close());
  return { port, data, served, table };
}

/** A raw peer connection; `arrivals` gets `name` when its first answer starts to arrive. */
async function peer(t: Test, port: number, name: string, arrivals: string[]): Promise<{ socket: net.Socket; answers: Buffer[] }> {
  const socket = net.connect({ port, host: '127.0.0.1' });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  t.teardown(() => socket.destroy());
  const decoder = new FrameDecoder({ maxPayload: 2 * PIECE });
  const answers: Buffer[] = [];
  let first = true;
  socket.on('data', (chunk: Buffer) => {
    if (first) arrivals.push(name);
    first = false;
    for (const frame of decoder.push(chunk)) answers.push(Buffer.from(frame.payload));
  });
  return { socket, answers };
}

/** Calls `onRead` each time a `FileHandle.read` has completed, before its caller resumes; undone in teardown. */
async function spyOnReads(t: Test, dir: string, onRead: () => void): Promise<void> {
  const probe = await open(path.join(dir, 'probe'), 'w');
  const proto = Object.getPrototypeOf(probe) as { read: FileHandle['read'] };
  await probe.close();
  const original = proto.read;
  proto.read = async function (this: FileHandle, ...args: unknown[]) {
    const result = await (original as (...a: unknown[]) => ReturnType<FileHandle['read']>).apply(this, args);
    onRead();
    return result;
  } as FileHandle['read'];
  t.teardown(() => {
    proto.read = original;
  });
}

t.test('while a large piece is checked, another peer is answered before it', async (t) => {
  const { port, data, served } = await serve(t);
  const arrivals: string[] = [];
  const a = await peer(t, port, 'piece', arrivals);
  const b = await peer(t, port, 'have', arrivals);
  let sent = false;
  await spyOnReads(t, await tempDir(t), () => {
    if (sent) return;
    sent = true;
    b.socket.write(encodeFrame(0n, formatHaveRequest(GROUP, served.sha256)));
  });
  a.socket.write(encodeFrame(0n, formatPieceRequest(GROUP, served.sha256, 1)));
  await waitFor('both answers', () => a.answers.length === 1 && b.answers.length === 1);
  t.same(arrivals, ['have', 'piece'], 'the HAVE sent once the piece was read is answered before the piece');
  t.equal(b.answers[0]?.toString(), 'OK 2 c0');
  t.ok(parsePieceAnswer(a.answers[0] as Buffer, 1, PIECE).equals(data.subarray(PIECE)), 'the piece, whole and right');
});

t.test('a large piece changed on disk is still caught: not sent, the share dropped, the owner told once', async (t) => {
  const gone: FileGoneReason[] = [];
  const { port, served, table } = await serve(t, (_, reason) => gone.push(reason));
  const handle = await open(served.path, 'r+');
  await handle.write(Buffer.from('edited'), 0, 6, PIECE + 100);
  await handle.close();
  const arrivals: string[] = [];
  const a = await peer(t, port, 'a', arrivals);
  a.socket.write(encodeFrame(0n, formatPieceRequest(GROUP, served.sha256, 0)));
  a.socket.write(encodeFrame(0n, formatPieceRequest(GROUP, served.sha256, 1)));
  a.socket.write(encodeFrame(0n, formatPieceRequest(GROUP, served.sha256, 0)));
  await waitFor('three answers', () => a.answers.length === 3);
  t.equal(parsePieceAnswer(a.answers[0] as Buffer, 0, PIECE).length, PIECE, 'the untouched piece is served');
  t.equal(a.answers[1]?.toString(), 'ERR NO_SUCH_FILE the shared file changed on disk since it was shared');
  t.equal(a.answers[2]?.toString(), `ERR NO_SUCH_FILE this peer does not share that file in ${GROUP}`, 'then no longer offered');
  t.same(gone, ['changed']);
  t.equal(table.get(GROUP, served.sha256), undefined);
});

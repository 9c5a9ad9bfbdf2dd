/**
 * The piece server's budget of piece bytes in memory (read from disk, not
 * yet taken by the peers' sockets), and what it does when a shared file is
 * gone or changed — against real sockets and real (sparse) files.
 *
 * A peer that "never reads" is a socket paused right after it connects: its
 * kernel buffers fill, and the rest of its piece stays in the server's
 * socket. Pieces are 16 MiB so that they cannot fit in the kernel's buffers
 * on loopback (a few MiB), whatever the autotuning.
 */
import t from 'tap';
import type { Test } from 'tap';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, open, rm, truncate, unlink, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { encodeFrame, FrameDecoder } from '@tracker-cluster/protocol';
import {
  Bitfield,
  ByteBudget,
  PieceServer,
  ShareTable,
  formatHaveRequest,
  formatPieceRequest,
  parseHaveAnswer,
  parsePieceAnswer,
  pieceCount,
} from '@tracker-cluster/client';
import type { FileGoneReason, PieceServerOptions, ServedFile } from '@tracker-cluster/client';

const MiB = 1024 * 1024;
const BIG = 16 * MiB;
const GROUP = 'g';

async function waitFor(what: string, check: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

async function tempDir(t: Test): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'piece-budget-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

let shares = 0;

/**
 * A sparse file of `pieces` pieces with 64 random bytes at the start of each
 * (so a wrong piece is noticed), in the table; returns the entry and those bytes.
 */
async function share(dir: string, table: ShareTable, pieceSize: number, pieces: number): Promise<{ served: ServedFile; marks: Buffer[] }> {
  const n = ++shares;
  const file = path.join(dir, `f${n}.bin`);
  const size = pieceSize * pieces;
  const handle = await open(file, 'w');
  const marks: Buffer[] = [];
  try {
    await handle.truncate(size);
    for (let i = 0; i < pieces; i++) {
      const mark = randomBytes(Math.min(64, pieceSize));
      marks.push(mark);
      await handle.write(mark, 0, mark.length, i * pieceSize);
    }
  } finally {
    await handle.close();
  }
  const served: ServedFile = {
    group: GROUP,
    file: `f${n}.bin`,
    sha256: n.toString(16).padStart(64, '0'),
    size,
    pieceSize,
    path: file,
    have: Bitfield.full(pieceCount(size, pieceSize)),
    hashes: marks.map((mark) => createHash('sha256').update(mark).update(Buffer.alloc(pieceSize - mark.length)).digest('hex')),
  };
  table.set(served);
  return { served, marks };
}

async function startServer(t: Test, options: PieceServerOptions): Promise<{ server: PieceServer; table: ShareTable; port: number }> {
  const table = new ShareTable();
  const server = new PieceServer(table, options);
  const { port } = await server.listen({ host: '127.0.0.1', port: 0 });
  t.teardown(() => server.close());
  return { server, table, port };
}

/** A peer on a raw socket; it takes nothing off its socket until `read()`. */
class Peer {
  readonly answers: Buffer[] = [];
  private readonly decoder = new FrameDecoder({ maxPayload: 64 * MiB });
  closed = false;

  private constructor(readonly socket: net.Socket) {
    socket.on('error', () => undefined);
    socket.once('close', () => (this.closed = true));
  }

  static async connect(t: Test, port: number): Promise<Peer> {
    const socket = net.connect({ port, host: '127.0.0.1' });
    socket.pause();
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const peer = new Peer(socket);
    t.teardown(() => peer.close());
    return peer;
  }

  send(line: string): void {
    this.socket.write(encodeFrame(0n, line));
  }

  read(): void {
    this.socket.on('data', (chunk: Buffer) => {
      for (const frame of this.decoder.push(chunk)) this.answers.push(frame.payload);
    });
    this.socket.resume();
  }

  async answer(n: number): Promise<Buffer> {
    await waitFor(`answer ${n}`, () => this.answers.length > n || this.closed);
    const got = this.answers[n];
    if (!got) throw new Error(`the connection closed before answer ${n}`);
    return got;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    const gone = new Promise((resolve) => this.socket.once('close', resolve));
    this.socket.destroy();
    await gone;
  }
}

function checkPiece(t: Test, payload: Buffer, index: number, length: number, mark: Buffer, label: string): void {
  const bytes = parsePieceAnswer(payload, index, length);
  t.equal(bytes.length, length, `${label}: the whole piece`);
  t.ok(bytes.subarray(0, mark.length).equals(mark), `${label}: the right piece`);
}

t.test('peers that never read hold no more than the budget; the others get their pieces once they read or go', async (t) => {
  const budget = 3 * BIG;
  const { server, table, port } = await startServer(t, { maxBufferedBytes: budget });
  const { served, marks } = await share(await tempDir(t), table, BIG, 2);
  const memoryBefore = process.memoryUsage().arrayBuffers;
  let peak = 0;
  const sample = (): number => {
    peak = Math.max(peak, server.bufferedBytes);
    return server.bufferedBytes;
  };

  const peers: Peer[] = [];
  // One at a time, so that the order in which they queue is known: 0-2 hold, 3-5 wait.
  for (let i = 0; i < 6; i++) {
    const peer = await Peer.connect(t, port);
    peer.send(formatPieceRequest(GROUP, served.sha256, i % 2));
    peers.push(peer);
    const holding = Math.min(i + 1, 3);
    const waiting = i + 1 - holding;
    await waitFor(`peer ${i} holding or waiting`, () => sample() === holding * BIG && server.waitingForBudget === waiting && server.stats.piecesServed === holding);
  }
  const grown = process.memoryUsage().arrayBuffers - memoryBefore;
  t.ok(grown <= budget + 8 * MiB, `memory in buffers grew by ${(grown / MiB).toFixed(1)} MiB, within the budget of ${budget / MiB} MiB`);

  // A holder that goes gives its piece's room to the first waiter.
  await peers[0]?.close();
  await waitFor('peer 3 served', () => sample() === budget && server.waitingForBudget === 2 && server.stats.piecesServed === 4);

  // The others read: each gets its own piece whole, in turn.
  for (const peer of peers.slice(1)) peer.read();
  for (const [i, peer] of peers.entries()) {
    if (i === 0) continue;
    checkPiece(t, await peer.answer(0), i % 2, BIG, marks[i % 2] as Buffer, `peer ${i}`);
  }
  await waitFor('everything given back', () => sample() === 0 && server.waitingForBudget === 0);
  t.equal(server.stats.piecesServed, 6, 'the closed peer was served once, the others once each');
  t.ok(peak <= budget, `never more than the budget in memory (peak ${peak / MiB} MiB)`);
});

t.test('a piece larger than the whole budget is served, holding all of it meanwhile; text answers need no budget', async (t) => {
  const budget = BIG / 2;
  const { server, table, port } = await startServer(t, { maxBufferedBytes: budget });
  const dir = await tempDir(t);
  const big = await share(dir, table, BIG, 1);
  const small = await share(dir, table, 1000, 3);

  const a = await Peer.connect(t, port);
  a.send(formatPieceRequest(GROUP, big.served.sha256, 0));
  await waitFor('the big piece holding the whole budget', () => server.bufferedBytes === budget && server.stats.piecesServed === 1);

  const b = await Peer.connect(t, port);
  b.read();
  b.send(formatHaveRequest(GROUP, small.served.sha256));
  t.equal(parseHaveAnswer(await b.answer(0), 3).count, 3, 'HAVE is answered while the budget is taken');
  b.send(formatPieceRequest(GROUP, small.served.sha256, 2));
  await waitFor('the small piece waiting', () => server.waitingForBudget === 1);
  t.equal(b.answers.length, 1, 'no piece for the second peer while the big one holds the budget');

  a.read();
  checkPiece(t, await a.answer(0), 0, BIG, big.marks[0] as Buffer, 'the big piece');
  checkPiece(t, await b.answer(1), 2, 1000, small.marks[2] as Buffer, 'the small piece after it');
  await waitFor('everything given back', () => server.bufferedBytes === 0 && server.waitingForBudget === 0);
});

t.test('a peer that closes while waiting gives up its place: the next one is not held up behind it', async (t) => {
  const budget = 2 * BIG;
  const { server, table, port } = await startServer(t, { maxBufferedBytes: budget });
  const dir = await tempDir(t);
  const one = await share(dir, table, BIG, 2);
  const two = await share(dir, table, 2 * BIG, 1);

  const holder = await Peer.connect(t, port);
  holder.send(formatPieceRequest(GROUP, one.served.sha256, 0));
  await waitFor('the holder', () => server.bufferedBytes === BIG);
  // Needs the whole budget: waits for the holder.
  const quitter = await Peer.connect(t, port);
  quitter.send(formatPieceRequest(GROUP, two.served.sha256, 0));
  await waitFor('the quitter waiting', () => server.waitingForBudget === 1);
  // Would fit now, but first come first served: waits behind the quitter.
  const next = await Peer.connect(t, port);
  next.read();
  next.send(formatPieceRequest(GROUP, one.served.sha256, 1));
  await waitFor('the next one waiting', () => server.waitingForBudget === 2);
  t.equal(server.bufferedBytes, BIG, 'nothing more read meanwhile');

  await quitter.close();
  checkPiece(t, await next.answer(0), 1, BIG, one.marks[1] as Buffer, 'the next one, while the holder still holds');
  t.equal(server.waitingForBudget, 0, 'nobody waits');
  t.notOk(holder.closed, 'the holder is still there, still not reading');
  await holder.close();
  await waitFor('everything given back', () => server.bufferedBytes === 0);
  t.equal(server.stats.piecesServed, 2, "the quitter's piece was never read");
});

t.test('a shared file gone, shorter than announced or changed: no piece sent, the share is dropped, the owner is told once', async (t) => {
  const gone: { served: ServedFile; reason: FileGoneReason }[] = [];
  const { server, table, port } = await startServer(t, { onFileGone: (served, reason) => gone.push({ served, reason }) });
  const dir = await tempDir(t);
  const missing = await share(dir, table, 1000, 3);
  const short = await share(dir, table, 1000, 3);
  const changed = await share(dir, table, 1000, 3);
  const kept = await share(dir, table, 1000, 3);
  await unlink(missing.served.path);
  await truncate(short.served.path, 1500);
  // Same size, other bytes: only the piece hashes tell.
  await writeFile(changed.served.path, randomBytes(3000));

  const peer = await Peer.connect(t, port);
  peer.read();
  peer.send(formatPieceRequest(GROUP, missing.served.sha256, 1));
  peer.send(formatPieceRequest(GROUP, missing.served.sha256, 2));
  peer.send(formatPieceRequest(GROUP, short.served.sha256, 2));
  peer.send(formatPieceRequest(GROUP, changed.served.sha256, 1));
  peer.send(formatPieceRequest(GROUP, changed.served.sha256, 0));
  peer.send(formatPieceRequest(GROUP, kept.served.sha256, 2));
  t.equal((await peer.answer(0)).toString(), 'ERR NO_SUCH_FILE the shared file is gone');
  t.equal((await peer.answer(1)).toString(), `ERR NO_SUCH_FILE this peer does not share that file in ${GROUP}`, 'then no longer offered');
  t.equal((await peer.answer(2)).toString(), 'ERR NO_SUCH_FILE the shared file is shorter than announced');
  t.equal((await peer.answer(3)).toString(), 'ERR NO_SUCH_FILE the shared file changed on disk since it was shared', 'the changed piece is not sent');
  t.equal((await peer.answer(4)).toString(), `ERR NO_SUCH_FILE this peer does not share that file in ${GROUP}`, 'nor any other of that file');
  checkPiece(t, await peer.answer(5), 2, 1000, kept.marks[2] as Buffer, 'another share');

  t.equal(table.get(GROUP, missing.served.sha256), undefined, 'the missing file left the share table');
  t.equal(table.get(GROUP, short.served.sha256), undefined, 'the short file left the share table');
  t.equal(table.get(GROUP, changed.served.sha256), undefined, 'the changed file left the share table');
  t.equal(table.get(GROUP, kept.served.sha256), kept.served, 'the other share stays');
  t.same(
    gone.map((g) => [g.served, g.reason]),
    [
      [missing.served, 'missing'],
      [short.served, 'truncated'],
      [changed.served, 'changed'],
    ],
    'onFileGone once per file, with its entry and why',
  );

  // Shared again (same content, another path) while the read of the old path is under way: the new share stays.
  const old = await share(dir, table, 1000, 3);
  await unlink(old.served.path);
  const replacement: ServedFile = { ...old.served, path: kept.served.path };
  const answer = server.answer(Buffer.from(formatPieceRequest(GROUP, old.served.sha256, 0)));
  table.set(replacement);
  t.same(await answer, { text: 'ERR NO_SUCH_FILE the shared file is gone' });
  t.equal(table.get(GROUP, old.served.sha256), replacement, 'a share replaced meanwhile is not dropped for the old one');
  t.equal(gone.length, 3, 'nor is the owner told');
});

t.test('ByteBudget: first come first served, a request over the capacity takes all of it, a waiter can leave', async (t) => {
  t.throws(() => new ByteBudget(0), RangeError);
  const budget = new ByteBudget(10);
  const grants: string[] = [];
  const track = (name: string, p: Promise<(() => void) | undefined>): Promise<(() => void) | undefined> =>
    p.then((release) => {
      grants.push(release ? name : `${name}:left`);
      return release;
    });
  const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

  const a = await track('a', budget.acquire(6));
  const b = track('b', budget.acquire(6));
  const c = track('c', budget.acquire(1));
  await settle();
  t.same(grants, ['a'], 'c fits but does not overtake b');
  t.equal(budget.held, 6);
  t.equal(budget.waiting, 2);
  a?.();
  a?.();
  const [rb, rc] = await Promise.all([b, c]);
  t.same(grants, ['a', 'b', 'c'], 'in order once there is room');
  t.equal(budget.held, 7, 'a given back once, however often released');

  const big = track('big', budget.acquire(25));
  await settle();
  t.equal(budget.waiting, 1, 'over the capacity: waits until nothing is held');
  rb?.();
  await settle();
  t.equal(budget.waiting, 1);
  rc?.();
  const rbig = await big;
  t.equal(budget.held, 10, 'then takes the whole capacity');

  rbig?.();
  t.equal(budget.held, 0);

  const holder = await budget.acquire(5);
  const controller = new AbortController();
  const leaver = track('leaver', budget.acquire(10, controller.signal));
  const behind = track('behind', budget.acquire(5));
  await settle();
  t.equal(budget.waiting, 2, 'behind fits but waits behind the leaver');
  controller.abort();
  t.equal(await leaver, undefined, 'an aborted waiter gets nothing');
  const rbehind = await behind;
  t.same(grants.slice(-2), ['leaver:left', 'behind'], 'the one behind it is served at once');
  t.equal(budget.held, 10);
  t.equal(budget.waiting, 0);
  holder?.();
  rbehind?.();
  t.equal(await budget.acquire(1, controller.signal), undefined, 'an aborted signal takes nothing');
  t.equal(budget.held, 0);
});

t.test('past maxConnections a peer gets ERR BUSY, the count in the singular for a limit of 1', async (t) => {
  const { port } = await startServer(t, { maxConnections: 1 });
  const first = await Peer.connect(t, port);
  const second = await Peer.connect(t, port);
  second.read();
  t.equal((await second.answer(0)).toString('utf8'), 'ERR BUSY this peer already serves 1 peer; try later');
  await waitFor('the busy connection closed', () => second.closed);
  t.notOk(first.closed, 'the first peer stays');
});

t.test('a refused peer that never closes its end is cut off', async (t) => {
  const { port } = await startServer(t, { maxConnections: 1 });
  await Peer.connect(t, port);
  // Half-open allowed: it reads the refusal and the seeder's end, and keeps its own end open.
  const stubborn = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  t.teardown(() => stubborn.destroy());
  stubborn.on('error', () => undefined);
  let ended = false;
  let closed = false;
  stubborn.on('end', () => (ended = true));
  stubborn.on('close', () => (closed = true));
  stubborn.resume();
  await waitFor('the refusal and the seeder\'s end', () => ended);
  // Its end closed already, the seeder's cut shows only as a reset when this side next writes.
  const poke = setInterval(() => stubborn.write('x'), 100);
  t.teardown(() => clearInterval(poke));
  await waitFor('the seeder to cut the refused connection', () => closed);
  t.pass('cut');
});

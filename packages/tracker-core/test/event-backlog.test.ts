import net from 'node:net';
import { Writable } from 'node:stream';
import pino from 'pino';
import t from 'tap';
import { ByteBudget, Connection, MAX_EVENT_BACKLOG_BYTES } from '@tracker-cluster/tracker-core';
import type { Test } from './fixtures/env.js';
import { waitFor } from './fixtures/env.js';

const LIMITS = { maxPayload: 1 << 20, frameTimeoutMs: 30_000, idleTimeoutMs: 600_000, rateLimit: 0, maxPipeline: 1024 };
/** ~1 KiB, as an event about a long file name is. */
const EVENT = `EVENT file_shared g ${'f'.repeat(1000)} u`;

interface Logged {
  msg: string;
  unsent?: number;
}

/** A server-side Connection over a real loopback socket, its peer's socket, and the lines it logged. */
async function pair(t: Test, budget: ByteBudget): Promise<{ conn: Connection; peer: net.Socket; logged: Logged[] }> {
  const logged: Logged[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      logged.push(JSON.parse(chunk.toString()) as Logged);
      done();
    },
  });
  const logger = pino({ level: 'warn' }, sink);
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const accepted = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
  const { port } = server.address() as net.AddressInfo;
  const peer = net.connect(port, '127.0.0.1');
  const socket = await accepted;
  server.close();
  const conn = new Connection(1, socket, 'test', LIMITS, () => ({ payload: 'OK' }), logger, budget);
  t.teardown(() => {
    peer.destroy();
    socket.destroy();
  });
  return { conn, peer, logged };
}

/** Sends events until the connection is dropped or `maxBytes` were sent, yielding so the kernel takes what it will. */
async function flood(conn: Connection, maxBytes: number, perTurn = 256): Promise<number> {
  let sent = 0;
  let dropped = false;
  void conn.closed.then(() => (dropped = true));
  while (!dropped && sent < maxBytes) {
    for (let i = 0; i < perTurn; i++) {
      conn.sendEvent(1n, EVENT);
      sent += EVENT.length + 12;
    }
    await new Promise((resolve) => setImmediate(resolve));
  }
  return sent;
}

const dropLines = (logged: Logged[]): Logged[] => logged.filter((l) => /dropping/.test(l.msg));

t.test('a peer that reads no events is dropped once its backlog passes the cap, with one log line', async (t) => {
  const budget = new ByteBudget(64 << 20);
  const { conn, peer, logged } = await pair(t, budget);
  peer.pause();
  await flood(conn, 64 << 20);
  await waitFor(() => budget.inUse === 0, 'the backlog to be given back', 5000);
  const lines = dropLines(logged);
  t.equal(lines.length, 1, 'said once, not once per later event');
  t.match(lines[0]?.msg, /does not read its events/);
  // Past what the kernel's buffers took, the tracker held at most the cap, the socket's own high-water mark and one event.
  t.ok((lines[0]?.unsent ?? Infinity) <= MAX_EVENT_BACKLOG_BYTES + 16 * 1024 + 2 * EVENT.length, `held ${lines[0]?.unsent} bytes at the drop`);
});

t.test('the peers that do not read share one budget: past it the next one is dropped, and what it held is given back', async (t) => {
  const budget = new ByteBudget(256 * 1024);
  const a = await pair(t, budget);
  const b = await pair(t, budget);
  a.peer.pause();
  b.peer.pause();
  await flood(a.conn, 64 << 20);
  t.match(dropLines(a.logged)[0]?.msg, /whole event budget/, 'the first is dropped at the shared budget, under its own cap');
  await waitFor(() => budget.inUse === 0, 'its share to be given back', 5000);
  await flood(b.conn, 64 << 20);
  t.equal(dropLines(b.logged).length, 1, 'the second gets the budget back, then meets it too');
  t.ok(budget.inUse <= budget.limit);
});

t.test('a peer that reads its events is never dropped', async (t) => {
  const budget = new ByteBudget(MAX_EVENT_BACKLOG_BYTES);
  const { conn, peer, logged } = await pair(t, budget);
  let received = 0;
  peer.on('data', (chunk: Buffer) => (received += chunk.length));
  const sent = await flood(conn, 16 << 20, 16);
  await waitFor(() => received >= sent, 'every event to arrive', 10_000);
  t.same(dropLines(logged), [], 'not dropped');
  t.equal(budget.inUse, 0);
});

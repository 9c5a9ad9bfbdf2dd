/**
 * The connection class against a real TCP server made here. The server only
 * echoes canned frames: it tests framing, ordering, event separation and
 * drop handling of the connection, not tracker behaviour (that is
 * test/client-script.test.ts, against the real tracker).
 */
import net from 'node:net';
import t from 'tap';
import type { Test } from 'tap';
import { encodeFrame, FrameDecoder } from '@tracker-cluster/protocol';
import type { Frame } from '@tracker-cluster/protocol';
import {
  DEFAULT_CLIENT_MAX_PAYLOAD,
  AbandonedError,
  connectFirst,
  ConnectionLostError,
  RequestTimeoutError,
  TrackerConnection,
  UnreachableError,
} from '@tracker-cluster/client';
import type { TrackerAddress, TrackerEvent } from '@tracker-cluster/client';

type Handler = (frame: Frame, socket: net.Socket) => void;

interface TestServer {
  address: TrackerAddress;
  /** Sockets the server accepted. */
  sockets: net.Socket[];
  /** Resolves with the nth accepted socket (0-based). */
  accepted(n?: number): Promise<net.Socket>;
}

async function startServer(t: Test, handler: Handler = () => {}): Promise<TestServer> {
  const sockets: net.Socket[] = [];
  const waiters: (() => void)[] = [];
  const server = net.createServer((socket) => {
    sockets.push(socket);
    const decoder = new FrameDecoder();
    socket.on('data', (chunk: Buffer) => {
      for (const frame of decoder.push(chunk)) handler(frame, socket);
    });
    socket.on('error', () => {});
    for (const wake of waiters.splice(0)) wake();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  );
  const port = (server.address() as net.AddressInfo).port;
  return {
    address: { host: '127.0.0.1', port },
    sockets,
    async accepted(n = 0) {
      while (sockets.length <= n) await new Promise<void>((resolve) => waiters.push(resolve));
      return sockets[n] as net.Socket;
    },
  };
}

/** A port nothing listens on: one just closed. */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Writes `buf` one byte per write, each after the previous has been flushed. */
async function dribble(socket: net.Socket, buf: Buffer): Promise<void> {
  for (let i = 0; i < buf.length; i++) {
    await new Promise<void>((resolve, reject) => socket.write(buf.subarray(i, i + 1), (e) => (e ? reject(e) : resolve())));
  }
}

t.test('answers come back in request order, with their sessions', async (t) => {
  const big = 0xffff_ffff_ffff_fff0n;
  const server = await startServer(t, (frame, socket) => {
    const line = frame.payload.toString('utf8');
    // Echo the line and session, answer login with a new session.
    if (line.startsWith('login')) socket.write(encodeFrame(big, 'OK logged in as a sessions=1'));
    else socket.write(encodeFrame(frame.session, `OK ${line} session=${frame.session}`));
  });
  const conn = await TrackerConnection.connect(server.address);
  t.teardown(() => conn.close());
  t.equal(conn.name, `127.0.0.1:${server.address.port}`);
  t.same(await conn.request(0n, 'ping'), { session: 0n, payload: 'OK ping session=0' });
  const login = await conn.request(0n, 'login a b');
  t.equal(login.session, big, 'a u64 session above 2^53 survives');
  t.same(await conn.request(big, 'whoami'), { session: big, payload: `OK whoami session=${big}` });
  // Pipelined: all sent before any answer is read.
  const answers = await Promise.all([1, 2, 3, 4, 5].map((n) => conn.request(BigInt(n), `n${n}`)));
  t.same(
    answers.map((a) => a.payload),
    [1, 2, 3, 4, 5].map((n) => `OK n${n} session=${n}`),
  );
  t.equal(conn.pendingCount, 0);
  t.same(await conn.request(0n, 'é ünïcode ✓'), { session: 0n, payload: 'OK é ünïcode ✓ session=0' }, 'UTF-8 both ways');
});

t.test('an abandoned request keeps its place: its late answer is dropped, not given to the next request', async (t) => {
  const server = await startServer(t);
  const conn = await TrackerConnection.connect(server.address);
  t.teardown(() => conn.close());
  const socket = await server.accepted();
  const controller = new AbortController();
  const first = conn.request(0n, 'slow', controller.signal);
  controller.abort();
  await t.rejects(first, AbandonedError, 'the caller stops waiting at once');
  await first.catch((error: unknown) => t.equal((error as AbandonedError).sent, true, 'it had been sent'));
  const second = conn.request(0n, 'next');
  t.equal(conn.pendingCount, 2, 'the abandoned request still holds its place');
  socket.write(Buffer.concat([encodeFrame(0n, 'OK answer to slow'), encodeFrame(0n, 'OK answer to next')]));
  t.same(await second, { session: 0n, payload: 'OK answer to next' });
  t.equal(conn.pendingCount, 0);
  t.ok(conn.isOpen, 'the connection stays open');
  const early = new AbortController();
  early.abort();
  const never = await conn.request(0n, 'never', early.signal).then(() => undefined, (error: unknown) => error);
  t.ok(never instanceof AbandonedError && !never.sent, 'aborted before: not sent');
  t.equal(conn.pendingCount, 0);
});

t.test('events are told apart from answers, whichever way the bytes arrive', async (t) => {
  const events: TrackerEvent[] = [];
  const server = await startServer(t);
  const conn = await TrackerConnection.connect(server.address, { onEvent: (e) => events.push(e) });
  t.teardown(() => conn.close());
  const socket = await server.accepted();

  // Several frames in one write: event, answer, event, answer.
  const a = conn.request(0n, 'one');
  const b = conn.request(0n, 'two');
  socket.write(
    Buffer.concat([
      encodeFrame(9n, 'EVENT join_request g bob'),
      encodeFrame(0n, 'OK first'),
      encodeFrame(9n, 'EVENT member_left g carol'),
      encodeFrame(0n, 'OK 2\nrow1 k=v\nrow2 k="a b"'),
    ]),
  );
  t.same((await a).payload, 'OK first');
  t.same((await b).payload, 'OK 2\nrow1 k=v\nrow2 k="a b"');
  t.same(events, [
    { session: 9n, payload: 'EVENT join_request g bob' },
    { session: 9n, payload: 'EVENT member_left g carol' },
  ]);

  // One frame split into single bytes, an event in front of it.
  const c = conn.request(0n, 'three');
  await dribble(socket, Buffer.concat([encodeFrame(3n, 'EVENT owner_changed g dave'), encodeFrame(4n, 'ERR NOT_OWNER no')]));
  t.same(await c, { session: 4n, payload: 'ERR NOT_OWNER no' });
  t.equal(events.length, 3);
  t.equal(events[2]?.payload, 'EVENT owner_changed g dave');
});

t.test('the request goes out as one frame holding the line and the session', async (t) => {
  const seen: Frame[] = [];
  const server = await startServer(t, (frame, socket) => {
    seen.push({ session: frame.session, payload: Buffer.from(frame.payload) });
    socket.write(encodeFrame(frame.session, 'OK'));
  });
  const conn = await TrackerConnection.connect(server.address);
  t.teardown(() => conn.close());
  await conn.request(42n, 'login "al ice" "p w"');
  t.equal(seen.length, 1);
  t.equal(seen[0]?.session, 42n);
  t.equal(seen[0]?.payload.toString('utf8'), 'login "al ice" "p w"');
});

t.test('a dropped connection rejects every pending request and says so', async (t) => {
  const server = await startServer(t);
  let closeError: ConnectionLostError | undefined;
  let closes = 0;
  const conn = await TrackerConnection.connect(server.address, {
    onClose: (e) => {
      closes++;
      closeError = e;
    },
  });
  const socket = await server.accepted();
  const pending = [conn.request(0n, 'a'), conn.request(0n, 'b')];
  // Answer the first, then drop.
  socket.write(encodeFrame(0n, 'OK a'));
  t.same((await pending[0])?.payload, 'OK a');
  socket.destroy();
  await t.rejects(pending[1] as Promise<unknown>, ConnectionLostError);
  await t.rejects(pending[1] as Promise<unknown>, { message: new RegExp(`connection to 127\\.0\\.0\\.1:${server.address.port} lost`) });
  await conn.closedSignal;
  t.equal(closes, 1);
  t.type(closeError, ConnectionLostError);
  t.equal(conn.isOpen, false);
  await t.rejects(conn.request(0n, 'late'), ConnectionLostError, 'requests after the drop are rejected at once');
});

t.test('an answer nobody asked for before the close is the reason given (ERR BUSY)', async (t) => {
  const server = net.createServer((socket) => {
    socket.end(encodeFrame(0n, 'ERR BUSY too many connections'));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  let closeError: ConnectionLostError | undefined;
  const conn = await TrackerConnection.connect(
    { host: '127.0.0.1', port: (server.address() as net.AddressInfo).port },
    { onClose: (e) => (closeError = e) },
  );
  await conn.closedSignal;
  t.match(closeError?.message, /lost \(the tracker said: ERR BUSY too many connections\)/);
});

t.test('a request timeout rejects and closes the connection', async (t) => {
  const server = await startServer(t); // never answers
  let closeError: ConnectionLostError | undefined;
  const conn = await TrackerConnection.connect(server.address, { requestTimeoutMs: 50, onClose: (e) => (closeError = e) });
  const first = conn.request(0n, 'slow');
  const second = conn.request(0n, 'slower');
  await t.rejects(first, RequestTimeoutError);
  await t.rejects(first, { message: /no answer from 127\.0\.0\.1:\d+ within 50 ms; connection closed/ });
  await t.rejects(second, RequestTimeoutError, 'later requests can no longer be matched either');
  await conn.closedSignal;
  t.type(closeError, RequestTimeoutError);
  t.equal(conn.isOpen, false);
});

t.test('a bad frame from the tracker closes the connection', async (t) => {
  const server = await startServer(t);
  const conn = await TrackerConnection.connect(server.address);
  const socket = await server.accepted();
  const pending = conn.request(0n, 'x');
  const bad = Buffer.alloc(4);
  bad.writeUInt32BE(3); // length below the minimum of 8
  socket.write(bad);
  await t.rejects(pending, { message: /bad frame from .*below the minimum/ });
  await conn.closedSignal;
});

t.test('bytes that are no frame as the first answer ask whether the address is a tracker; after a frame, they do not', async (t) => {
  const server = await startServer(t);
  const name = `127.0.0.1:${server.address.port}`;
  const first = await TrackerConnection.connect(server.address);
  const pending = first.request(0n, 'status');
  (await server.accepted(0)).write('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
  await t.rejects(pending, { message: `bad frame from ${name} (frame payload of 1213486152 bytes exceeds the maximum of ${DEFAULT_CLIENT_MAX_PAYLOAD}); connection closed — is ${name} a tracker?` });
  await first.closedSignal;

  const later = await TrackerConnection.connect(server.address);
  const answered = later.request(0n, 'ping');
  const socket = await server.accepted(1);
  socket.write(encodeFrame(0n, 'OK PONG'));
  t.same(await answered, { session: 0n, payload: 'OK PONG' });
  const pending2 = later.request(0n, 'ping');
  const bad = Buffer.alloc(4);
  bad.writeUInt32BE(3);
  socket.write(bad);
  await t.rejects(pending2, { message: /^bad frame from .*; connection closed$/ }, 'a tracker that has framed its answers is one');
  await later.closedSignal;
});

t.test('close() by the client is not reported as a loss', async (t) => {
  const server = await startServer(t);
  let called = false;
  let closeError: ConnectionLostError | undefined;
  const conn = await TrackerConnection.connect(server.address, {
    onClose: (e) => {
      called = true;
      closeError = e;
    },
  });
  const pending = conn.request(0n, 'never answered');
  const rejected = t.rejects(pending, { message: /closed by the client/ });
  await conn.close();
  t.ok(called);
  t.equal(closeError, undefined);
  await rejected;
  await conn.close(); // twice is fine
});

t.test('connectFirst tries the trackers in order', async (t) => {
  const dead = await closedPort();
  const server = await startServer(t);
  const conn = await connectFirst([{ host: '127.0.0.1', port: dead }, server.address]);
  t.teardown(() => conn.close());
  t.same(conn.address, server.address, 'the first that accepts');

  const dead2 = await closedPort();
  const error = await connectFirst([
    { host: '127.0.0.1', port: dead },
    { host: '127.0.0.1', port: dead2 },
  ]).catch((e: unknown) => e);
  t.type(error, UnreachableError);
  t.equal(
    (error as Error).message,
    `cannot reach any tracker: 127.0.0.1:${dead} (ECONNREFUSED), 127.0.0.1:${dead2} (ECONNREFUSED)`,
  );
  t.equal((error as UnreachableError).exitCode, 3);
  await t.rejects(connectFirst([]), { message: 'cannot reach any tracker: no tracker given' });
});

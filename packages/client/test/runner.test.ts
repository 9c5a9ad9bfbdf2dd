/**
 * The runner's failover against canned TCP servers: a request that times
 * out counts as a dead connection; the runner moves to the next tracker,
 * presents the session, says so once, and sends the same request id again.
 */
import net from 'node:net';
import t from 'tap';
import type { Test } from 'tap';
import { encodeFrame, FrameDecoder } from '@tracker-cluster/protocol';
import { MAX_SENDS_PER_REQUEST, RequestIds, Runner } from '@tracker-cluster/client';
import type { FailoverInfo, TrackerAddress } from '@tracker-cluster/client';

/**
 * A server answering `status` with `role`, and other requests with
 * `answer(line)` (undefined: never answers), with the request's session —
 * or 77 for a login, 0 for an AUTH_REQUIRED.
 */
async function server(t: Test, role: string, answer: (line: string) => string | undefined): Promise<{ address: TrackerAddress; seen: string[] }> {
  const seen: string[] = [];
  const sockets: net.Socket[] = [];
  const srv = net.createServer((socket) => {
    sockets.push(socket);
    const decoder = new FrameDecoder();
    socket.on('error', () => {});
    socket.on('data', (chunk: Buffer) => {
      for (const frame of decoder.push(chunk)) {
        const line = frame.payload.toString('utf8');
        seen.push(`${frame.session} ${line}`);
        const reply = line === 'status' ? `OK role=${role} epoch=1` : answer(line);
        const session = reply?.startsWith('OK logged in') ? 77n : reply?.startsWith('ERR AUTH_REQUIRED') ? 0n : frame.session;
        if (reply !== undefined) socket.write(encodeFrame(session, reply));
      }
    });
  });
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => {
    for (const s of sockets) s.destroy();
    srv.close(() => resolve());
  }));
  return { address: { host: '127.0.0.1', port: (srv.address() as net.AddressInfo).port }, seen };
}

t.test('a request timeout fails over to the next tracker and retries with the same request id', async (t) => {
  const a = await server(t, 'primary', (line) => (line.endsWith('login a pw') ? 'OK logged in as a sessions=1' : undefined));
  const b = await server(t, 'replica', (line) => `OK got ${line}`);
  const failovers: FailoverInfo[] = [];
  const runner = new Runner(
    { trackers: [a.address, b.address], requestTimeoutMs: 300, requestIds: new RequestIds('00000000000000aa'), failoverTimeoutMs: 1000 },
    { onFailover: (info) => failovers.push(info) },
  );
  t.teardown(() => runner.close());
  await runner.connect();
  t.equal(runner.role, 'primary');
  const login = await runner.execute('login a pw');
  t.equal(login.kind === 'reply' && login.reply.payload, 'OK logged in as a sessions=1');
  const session = runner.state.session;

  const outcome = await runner.execute('create_group g');
  t.equal(outcome.kind === 'reply' && outcome.reply.payload, 'OK got @00000000000000aa:2 create_group g');
  t.same(a.seen.slice(-1), [`${session} @00000000000000aa:2 create_group g`], 'first sent to a');
  t.same(b.seen, [`${session} status`, `${session} @00000000000000aa:2 create_group g`], 'b: the session presented, then the same request id');
  t.equal(failovers.length, 1, 'one notice');
  t.match(failovers[0], { from: a.address, to: b.address, role: 'replica', session: true, retrying: 'create_group' });
  t.match(failovers[0]?.reason, /no answer from 127\.0\.0\.1:\d+ within 300 ms/);
  t.equal(runner.role, 'replica');
  const next = await runner.execute('ping');
  t.equal(next.kind === 'reply' && next.reply.payload, 'OK got @00000000000000aa:3 ping', 'a new number for the next request');
  t.equal(runner.state.user, 'a', 'still the same user and session');
});

t.test('a request that never gets an answer is sent at most MAX_SENDS_PER_REQUEST times', async (t) => {
  const a = await server(t, 'primary', () => undefined);
  const runner = new Runner({ trackers: [a.address], requestTimeoutMs: 100, failoverTimeoutMs: 0 });
  t.teardown(() => runner.close());
  await runner.connect();
  await t.rejects(runner.execute('whoami'), { name: 'RequestTimeoutError' });
  t.equal(a.seen.filter((l) => l.endsWith(':1 whoami')).length, MAX_SENDS_PER_REQUEST, 'always with the same id');
});

t.test('a session the tracker no longer knows is reported once, plainly', async (t) => {
  let known = true;
  const a = await server(t, 'primary', (line) => {
    if (line.endsWith('login a pw')) return 'OK logged in as a sessions=1';
    return known ? 'OK a sessions=1' : 'ERR AUTH_REQUIRED whoami needs a session';
  });
  const ended: (string | undefined)[] = [];
  const runner = new Runner({ trackers: [a.address] }, { onSessionEnded: (user) => ended.push(user) });
  t.teardown(() => runner.close());
  await runner.connect();
  await runner.execute('login a pw');
  known = false;
  // The canned server answers with the request's session; make it 0 as an expired session would.
  const outcome = await runner.execute('whoami');
  t.equal(outcome.kind === 'reply' && outcome.ok, false);
  t.same(ended, ['a'], 'reported once, naming the user');
  t.same(runner.state, { session: 0n, user: undefined }, 'logged out locally');
});

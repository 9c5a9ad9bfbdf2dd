/**
 * Session ids at the edges of u64 — 1, 2^53+1 (past JavaScript's exact
 * integers), 2^63 (past SQLite's signed integers) and 2^64−1 — survive the
 * wire, the primary's store, the change log, the SYNC: link and the
 * replica's store. Two real trackers on real sockets and files; only the
 * random source is pinned, so that these ids are the ones handed out.
 */
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import t from 'tap';
import { Tracker, parseOptions } from '@tracker-cluster/tracker-core';
import type { Entropy, TrackerOptions } from '@tracker-cluster/tracker-core';
import type { Test } from './fixtures/env.js';
import { silent, tempDb } from './fixtures/env.js';
import { FrameClient } from './fixtures/frame-client.js';

const IDS = [1n, 2n ** 53n + 1n, 2n ** 63n, 2n ** 64n - 1n];

async function serve(t: Test, options: Partial<TrackerOptions> & Pick<TrackerOptions, 'role' | 'dbPath'>, entropy?: Entropy) {
  const tracker = Tracker.open(parseOptions({ scryptCost: 1024, secret: 'ids-secret', ...options }), silent, entropy ? { entropy } : {});
  const server = net.createServer({ allowHalfOpen: true }, (socket) => tracker.handleConnection(socket));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  t.teardown(async () => {
    await tracker.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return { tracker, port };
}

t.test('session ids 1, 2^53+1, 2^63 and 2^64-1 round-trip through both trackers', async (t) => {
  const queue = [...IDS];
  const entropy: Entropy = { sessionId: () => queue.shift() ?? 42n };
  const primary = await serve(t, { role: 'primary', dbPath: await tempDb(t, 'primary.db') }, entropy);
  const replica = await serve(t, { role: 'replica', dbPath: await tempDb(t, 'replica.db'), peer: { host: '127.0.0.1', port: primary.port } });

  const p = await FrameClient.connect(primary.port);
  const r = await FrameClient.connect(replica.port);
  t.teardown(() => Promise.all([p.close(), r.close()]));
  t.equal(await p.text('create_user edge pw'), 'OK user created');
  const sessions: bigint[] = [];
  for (let i = 0; i < IDS.length; i++) {
    const answer = await p.request('login edge pw');
    t.equal(answer.text, `OK logged in as edge sessions=${i + 1}`);
    sessions.push(answer.session);
  }
  t.same(sessions, IDS, 'the primary hands out exactly these ids, as u64 in the frame');

  const status = async (c: FrameClient): Promise<string> => (await c.text('status')).replace(/ (role|replica|primary|degraded|connections|replica_seq|replica_lag|link|log_base|snapshots)=\S+/g, '');
  // Poll until both report the same seq, log_hash and history (a deadline, no fixed sleep).
  const deadline = Date.now() + 10_000;
  while ((await status(p)) !== (await status(r))) {
    if (Date.now() > deadline) throw new Error(`no convergence: ${await status(p)} / ${await status(r)}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  for (const id of IDS) {
    const onPrimary = await p.request('whoami', id);
    const onReplica = await r.request('whoami', id);
    t.same(onPrimary, { text: 'OK edge sessions=4', session: id }, `${id} on the primary`);
    t.same(onReplica, { text: 'OK edge sessions=4', session: id }, `${id} on the replica, answered with the same id`);
  }
  // A write through the replica with the largest id: forwarded, and its session field intact.
  const forwarded = await r.request('create_group edges', IDS[3] as bigint);
  t.same(forwarded, { text: 'OK group created', session: IDS[3] }, 'a forwarded write keeps a 2^64-1 session');
  const out = await r.request('logout', IDS[2] as bigint);
  t.same(out, { text: 'OK logged out sessions=3', session: 0n }, 'logout of 2^63 through the replica');
  t.match((await p.request('whoami', IDS[2] as bigint)).text, /^ERR AUTH_REQUIRED /, 'and it is gone on the primary too');
});

t.test('the same ids survive a snapshot: a replica too far behind the retained log', async (t) => {
  const queue = [...IDS];
  const entropy: Entropy = { sessionId: () => queue.shift() ?? 42n };
  // A tiny retention, and a state committed at once, so the log is trimmed past the replica's position quickly.
  const primary = await serve(t, { role: 'primary', dbPath: await tempDb(t, 'primary.db'), logRetention: 1 }, entropy);
  const p = await FrameClient.connect(primary.port);
  t.teardown(() => p.close());
  t.equal(await p.text('create_user edge pw'), 'OK user created');
  for (let i = 0; i < IDS.length; i++) t.equal((await p.request('login edge pw')).session, IDS[i]);
  for (let i = 0; i < 30; i++) t.equal(await p.text(`create_group g${i}`, IDS[0]), 'OK group created');
  const deadline = Date.now() + 10_000;
  while (!/ log_base=([1-9]\d*)/.test(await p.text('status'))) {
    if (Date.now() > deadline) throw new Error(`the log was not trimmed: ${await p.text('status')}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  // A new, empty replica: its seq 0 is no longer in the log, so it gets a snapshot.
  const replica = await serve(t, { role: 'replica', dbPath: await tempDb(t, 'replica.db'), peer: { host: '127.0.0.1', port: primary.port } });
  const r = await FrameClient.connect(replica.port);
  t.teardown(() => r.close());
  const seq = / seq=(\d+)/.exec(await p.text('status'))?.[1];
  while (/ seq=(\d+)/.exec(await r.text('status'))?.[1] !== seq) {
    if (Date.now() > deadline + 10_000) throw new Error(`no convergence: ${await r.text('status')}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  t.match(await r.text('status'), / snapshots=1\b/, 'the replica installed a snapshot');
  for (const id of IDS) t.same(await r.request('whoami', id), { text: 'OK edge sessions=4', session: id }, `${id} on the replica after the snapshot`);
});

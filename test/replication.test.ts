/**
 * Replication between real tracker-primary and tracker-replica processes
 * (docs/protocol.md §6, the SYNC: link): convergence after a mixed workload,
 * reads on the replica with sessions made on the primary, writes refused on
 * the replica, a replica killed mid-stream and a primary restarted, forged
 * SYNC: messages and a wrong secret, replayed streams (against a scripted
 * primary).
 *
 * Semi-sync is in semi-sync.test.ts; snapshots, promotion and fencing in
 * failover.test.ts; request ids in request-ids.test.ts; `npm start` in
 * npm-start.test.ts.
 */
import { createHmac, randomBytes } from 'node:crypto';
import net from 'node:net';
import path from 'node:path';
import Database from 'better-sqlite3';
import t from 'tap';
import { FrameDecoder, encodeFrame } from '@tracker-cluster/protocol';
import { CLUSTER_SECRET, promote, startCluster, startReplica, waitForConvergence } from './helpers/cluster.js';
import { expectAnswer, login, parseList, send, settlesWithin, signUp, status } from './helpers/commands.js';
import { freePorts, startTracker } from './helpers/tracker.js';
import type { RunningTracker, TeardownHost } from './helpers/tracker.js';
import { connect, waitFor } from './helpers/wire.js';
import type { WireClient } from './helpers/wire.js';

const DEADLINE_MS = 20_000;
const SHA_A = 'a'.repeat(64);
const SHA_B = 'b'.repeat(64);
const ZERO_HASH = '0'.repeat(64);

async function open(t: TeardownHost, tracker: { port: number }): Promise<WireClient> {
  const c = await connect(tracker.port);
  t.teardown(() => c.close());
  return c;
}

/** The `seq=` of a ready line's description. */
function readySeq(tracker: RunningTracker): number {
  const m = /\bseq=(\d+)\b/.exec(tracker.description);
  if (!m) throw new Error(`no seq in ${tracker.readyLine}`);
  return Number(m[1]);
}

/** The JSON log lines a tracker wrote to stderr. */
function logLines(text: string): Record<string, unknown>[] {
  const lines: Record<string, unknown>[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      lines.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      // a line still being written
    }
  }
  return lines;
}

function authenticatedLinks(primary: RunningTracker): Record<string, unknown>[] {
  return logLines(primary.stderr()).filter((l) => l['msg'] === 'replica link authenticated; streaming');
}

/**
 * A mixed workload on the primary: users, logins, groups, join/accept/reject,
 * uploads and stop_share, an owner leaving (ownership passes on), logout.
 * Returns the live sessions.
 */
async function mixedWorkload(c: WireClient): Promise<{ alice: bigint; bob: bigint; carol: bigint; dave: bigint; gone: bigint }> {
  const alice = await signUp(c, 'alice');
  const bob = await signUp(c, 'bob');
  const carol = await signUp(c, 'carol');
  const dave = await signUp(c, 'dave');
  await expectAnswer(c, 'create_group red', 'OK group created', alice);
  await expectAnswer(c, 'create_group blue', 'OK group created', bob);
  await expectAnswer(c, 'join_group red', 'OK request sent', bob);
  await expectAnswer(c, 'join_group red', 'OK request sent', carol);
  await expectAnswer(c, 'join_group red', 'OK request sent', dave);
  await expectAnswer(c, 'accept_request red bob', 'OK bob joined red', alice);
  await expectAnswer(c, 'accept_request red carol', 'OK carol joined red', alice);
  await expectAnswer(c, 'reject_request red dave', 'OK request rejected', alice);
  await expectAnswer(c, 'join_group blue', 'OK request sent', dave);
  await expectAnswer(c, 'join_group blue', 'OK request sent', carol);
  await expectAnswer(c, 'accept_request blue dave', 'OK dave joined blue', bob);
  const upload = (group: string, file: string, sha: string, peer: string): string =>
    `upload_file ${group} ${file} 8 ${sha} 4 ${peer} ${sha},${sha}`;
  await expectAnswer(c, upload('red', 'notes.txt', SHA_A, '127.0.0.1:9001'), 'OK shared notes.txt seeders=1', bob);
  await expectAnswer(c, upload('red', 'notes.txt', SHA_A, '127.0.0.1:9002'), 'OK shared notes.txt seeders=2', carol);
  await expectAnswer(c, upload('red', 'alice.bin', SHA_B, '127.0.0.1:9003'), 'OK shared alice.bin seeders=1', alice);
  await expectAnswer(c, upload('blue', 'other.bin', SHA_B, '[::1]:9004'), 'OK shared other.bin seeders=1', dave);
  await expectAnswer(c, 'stop_share red notes.txt', 'OK stopped sharing notes.txt', carol);
  // The owner leaves: bob (accepted before carol) becomes the owner, alice's share ends.
  await expectAnswer(c, 'leave_group red', 'OK left red', alice);
  const gone = await login(c, 'carol', 'carol-pw');
  await expectAnswer(c, 'logout', 'OK logged out sessions=1', gone);
  return { alice, bob, carol, dave, gone };
}

t.test('a mixed workload on the primary converges on the replica; reads and forwarded writes there', async (t) => {
  const { primary, replica } = await startCluster(t);
  const p = await open(t, primary);
  const s = await mixedWorkload(p);

  const { primary: ps, replica: rs } = await waitForConvergence(primary, replica, { timeoutMs: DEADLINE_MS, acked: true });
  t.equal(ps['role'], 'primary');
  t.equal(rs['role'], 'replica');
  t.ok(Number(ps['seq']) > 20, `the workload made changes (seq ${ps['seq']})`);
  t.equal(rs['seq'], ps['seq'], 'seq equal');
  t.equal(rs['log_hash'], ps['log_hash'], 'log_hash equal');
  t.equal(rs['history'], ps['history'], 'the replica took the primary history');
  t.equal(rs['epoch'], ps['epoch'], 'epoch equal');
  t.equal(ps['replica'], 'connected');
  t.equal(ps['replica_seq'], ps['seq'], 'the primary has the replica acknowledgement of every change');
  t.equal(ps['degraded'], '0');
  t.equal(rs['primary'], 'connected');

  await t.test('a session made on the primary reads the same rows on the replica', async (t) => {
    const r = await open(t, replica);
    t.same(await r.request('whoami', s.bob), { session: s.bob, payload: 'OK bob sessions=1' });
    t.same(await r.request('whoami', s.carol), { session: s.carol, payload: 'OK carol sessions=1' }, 'the logout of the other session replicated');
    const dead = await r.request('whoami', s.gone);
    t.match(dead.payload, /^ERR AUTH_REQUIRED /, 'a session logged out on the primary is dead on the replica');
    t.equal(dead.session, 0n);

    const reads: [string, bigint, string][] = [
      ['list_groups', s.dave, 'OK 2\nblue owner=bob members=2\nred owner=bob members=2'],
      ['list_members red', s.carol, 'OK 2\nbob role=owner\ncarol role=member'],
      ['list_members blue', s.dave, 'OK 2\nbob role=owner\ndave role=member'],
      ['list_files red', s.bob, `OK 1\nnotes.txt size=8 sha256=${SHA_A} seeders=1`],
      ['list_files blue', s.dave, `OK 1\nother.bin size=8 sha256=${SHA_B} seeders=1`],
      ['list_requests blue', s.bob, 'OK 1\ncarol'],
      ['file_peers red notes.txt', s.carol, ''],
    ];
    for (const [command, session, expected] of reads) {
      const onPrimary = await p.request(command, session);
      const onReplica = await r.request(command, session);
      t.equal(onReplica.payload, onPrimary.payload, `${command}: same answer on both`);
      t.equal(onReplica.session, session, `${command}: the replica answers with the session`);
      if (expected !== '') t.equal(onReplica.payload, expected, `${command}: the expected rows`);
    }
    t.match((await r.request('file_peers red notes.txt', s.carol)).payload, /\npeer bob 127\.0\.0\.1:9001$/);
    t.match((await r.request('list_files red', s.alice)).payload, /^ERR NOT_MEMBER /, 'alice left red on the replica too');
  });

  await t.test('writes on the replica are run by the primary and read back at once on the replica', async (t) => {
    const r = await open(t, replica);
    t.equal((await r.request('create_user zed zed-pw')).payload, 'OK user created');
    const zed = await r.request('login zed zed-pw');
    t.equal(zed.payload, 'OK logged in as zed sessions=1', 'a login through the replica');
    t.not(zed.session, 0n, 'carries the new session');
    t.same(await r.request('whoami', zed.session), { session: zed.session, payload: 'OK zed sessions=1' }, 'which works on the replica at once');
    t.equal((await r.request('create_group green', zed.session)).payload, 'OK group created');
    t.match((await r.request('list_groups', zed.session)).payload, /\ngreen owner=zed members=1$/m, 'read-your-writes: the next read on the replica sees it');
    t.match((await r.request('join_group blue', s.bob)).payload, /^ERR ALREADY_MEMBER /, "the primary's refusal comes back as it is");
    t.equal((await r.request('accept_request blue carol', s.bob)).payload, 'OK carol joined blue');
    t.equal((await r.request('list_members blue', s.bob)).payload, 'OK 3\nbob role=owner\ncarol role=member\ndave role=member');
    const out = await r.request('logout', zed.session);
    t.same(out, { session: 0n, payload: 'OK logged out sessions=0' }, 'logout through the replica answers session 0');
    const converged = await waitForConvergence(primary, replica, { timeoutMs: DEADLINE_MS, acked: true });
    t.equal(converged.replica['seq'], converged.primary['seq'], 'both trackers hold the forwarded writes');
    t.match((await p.request('whoami', zed.session)).payload, /^ERR AUTH_REQUIRED /, 'and the primary saw the logout');
  });
});

t.test('a replica killed (SIGKILL) during 1,000 writes catches up after a restart on the same database', async (t) => {
  const { primary, replica } = await startCluster(t);
  const c1 = await open(t, primary);
  const c2 = await open(t, primary);
  const writer = await signUp(c1, 'writer');
  const start = await waitForConvergence(primary, replica, { timeoutMs: DEADLINE_MS, acked: true });
  const base = Number(start.primary['seq']);

  const TOTAL = 1000;
  const BATCH = 25;
  let answered = 0;
  let killed: Promise<void> | undefined;
  const failures: string[] = [];
  const worker = async (c: WireClient, from: number, count: number): Promise<void> => {
    for (let at = from; at < from + count; at += BATCH) {
      const batch: Promise<{ payload: string }>[] = [];
      for (let i = at; i < at + BATCH; i++) batch.push(c.request(`create_group g${String(i).padStart(4, '0')}`, writer));
      for (const reply of await Promise.all(batch)) if (reply.payload !== 'OK group created') failures.push(reply.payload);
      answered += BATCH;
      // Roughly in the middle, with the other connection still writing.
      if (!killed && answered >= TOTAL / 2) killed = replica.kill9();
    }
  };
  await Promise.all([worker(c1, 0, TOTAL / 2), worker(c2, TOTAL / 2, TOTAL / 2)]);
  await killed;
  t.same(failures, [], 'every write answered OK');
  t.equal(replica.proc.signalCode, 'SIGKILL', 'the replica was killed');
  const after = await status(c1);
  t.equal(Number(after['seq']), base + TOTAL, 'one change per write');
  await waitFor(async () => (await status(c1))['replica'] === 'disconnected', {
    timeoutMs: DEADLINE_MS,
    message: 'the primary to notice the replica is gone',
  });

  const back = await replica.restart();
  const resumedAt = readySeq(back);
  t.comment(`replica restarted at seq ${resumedAt}; primary at ${base + TOTAL} (writes began after ${base})`);
  t.ok(resumedAt >= base, `the replica kept what it had acknowledged (seq ${resumedAt} >= ${base})`);
  t.ok(resumedAt < base + TOTAL, `the replica had to catch up (restarted at seq ${resumedAt} of ${base + TOTAL})`);
  const done = await waitForConvergence(primary, back, { timeoutMs: DEADLINE_MS, acked: true });
  t.equal(done.replica['seq'], String(base + TOTAL));
  t.equal(done.replica['log_hash'], done.primary['log_hash']);
  t.equal(done.primary['replica_seq'], done.primary['seq'], 'replica_seq reached seq');
  const r = await open(t, back);
  const groups = parseList((await r.request('list_groups', writer)).payload);
  t.equal(groups.length, TOTAL, 'every group is on the replica');
  t.equal(groups[TOTAL - 1], 'g0999 owner=writer members=1');
});

t.test('a primary restarted (SIGTERM) on the same database: the replica resumes from its applied seq', async (t) => {
  const { primary, replica } = await startCluster(t);
  const c = await open(t, primary);
  const alice = await signUp(c, 'alice');
  for (let i = 0; i < 20; i++) await expectAnswer(c, `create_group before${i}`, 'OK group created', alice);
  const first = await waitForConvergence(primary, replica, { timeoutMs: DEADLINE_MS, acked: true });
  const applied = Number(first.replica['seq']);
  t.same(authenticatedLinks(primary).map((l) => l['from']), [1], 'the first link streamed from seq 1');
  await c.close();

  const stopped = await primary.stop();
  t.same(stopped, { code: 0, signal: null }, 'the primary stops cleanly');
  const r = await open(t, replica);
  await waitFor(async () => (await status(r))['primary'] === 'disconnected', {
    timeoutMs: DEADLINE_MS,
    message: 'the replica to notice the primary is gone',
  });
  t.equal((await status(r))['seq'], String(applied), 'the replica keeps its state meanwhile');
  await r.close();

  const primary2 = await primary.restart();
  t.equal(readySeq(primary2), applied, 'the primary restarted at the same seq');
  // The primary has a new port: the replica is restarted pointing at it.
  const replica2 = await replica.restart(['--primary', primary2.address]);
  t.equal(readySeq(replica2), applied, 'the replica restarted at its applied seq');
  const c2 = await open(t, primary2);
  for (let i = 0; i < 5; i++) await expectAnswer(c2, `create_group after${i}`, 'OK group created', alice);
  const done = await waitForConvergence(primary2, replica2, { timeoutMs: DEADLINE_MS, acked: true });
  t.equal(done.primary['seq'], String(applied + 5));
  t.equal(done.replica['log_hash'], done.primary['log_hash']);
  t.equal(done.replica['history'], first.primary['history'], 'same history');
  t.same(
    authenticatedLinks(primary2).map((l) => l['from']),
    [applied + 1],
    'the restarted primary streamed from the replica applied seq + 1, not from the start',
  );
});

t.test('a primary crashed (SIGKILL) and restarted on the same address: the running replica reconnects by itself', async (t) => {
  const [port] = (await freePorts(1)) as [number];
  const { primary, replica } = await startCluster(t, { primary: { args: ['--port', String(port)] } });
  t.equal(primary.port, port);
  const c = await open(t, primary);
  const alice = await signUp(c, 'alice');
  for (let i = 0; i < 10; i++) await expectAnswer(c, `create_group before${i}`, 'OK group created', alice);
  const first = await waitForConvergence(primary, replica, { timeoutMs: DEADLINE_MS, acked: true });
  const applied = Number(first.replica['seq']);
  await c.close();

  await primary.kill9();
  const r = await open(t, replica);
  await waitFor(async () => (await status(r))['primary'] === 'disconnected', {
    timeoutMs: DEADLINE_MS,
    message: 'the replica to notice the primary is gone',
  });
  const primary2 = await primary.restart();
  t.equal(primary2.port, port, 'same address');
  t.equal(readySeq(primary2), applied, 'nothing answered was lost');
  const c2 = await open(t, primary2);
  for (let i = 0; i < 5; i++) await expectAnswer(c2, `create_group after${i}`, 'OK group created', alice);
  const done = await waitForConvergence(primary2, replica, { timeoutMs: DEADLINE_MS, acked: true });
  t.equal(done.replica['seq'], String(applied + 5));
  t.equal(done.replica['log_hash'], done.primary['log_hash']);
  t.equal(replica.proc.exitCode, null, 'the same replica process throughout');
  t.same(authenticatedLinks(primary2).map((l) => l['from']), [applied + 1], 'streamed from the replica applied seq + 1');
  t.equal((await status(r))['primary'], 'connected');
});

t.test('a tracker with data of another cluster is never overwritten, followed nor fenced; an empty one joins', async (t) => {
  const { primary, replica } = await startCluster(t);
  const c = await open(t, primary);
  await signUp(c, 'alice');
  const first = await waitForConvergence(primary, replica, { timeoutMs: DEADLINE_MS, acked: true });
  t.equal(first.replica['cluster'], first.primary['cluster'], 'an empty replica took its primary\'s cluster id');
  t.match(first.primary['cluster'], /^[0-9a-f]{32}$/);

  // Another cluster with the same secret, further along, and promoted to a higher epoch.
  const other = await startTracker(t, { args: ['--secret', CLUSTER_SECRET] });
  const o = await open(t, other);
  const bob = await signUp(o, 'bob');
  for (let i = 0; i < 5; i++) await expectAnswer(o, `create_group g${i}`, 'OK group created', bob);
  const otherReplica = await startReplica(t, other, { args: ['--secret', CLUSTER_SECRET] });
  await waitForConvergence(other, otherReplica, { timeoutMs: DEADLINE_MS, acked: true });
  t.match(await promote(otherReplica), /^OK promoted epoch=2 /);

  // Our replica, pointed at it by mistake: refused, its data kept.
  const moved = await replica.restart(['--primary', otherReplica.address]);
  await waitFor(() => otherReplica.stderr().includes("tracker link refused: the replica holds another cluster's data"), {
    timeoutMs: DEADLINE_MS,
    message: `the foreign primary to refuse the replica; its stderr:\n${otherReplica.stderr()}`,
  });
  await waitFor(() => /primary refused the (link|handshake).*another cluster/.test(moved.stderr()), { timeoutMs: DEADLINE_MS, message: `the replica to log the refusal:\n${moved.stderr()}` });
  const m = await open(t, moved);
  const kept = await status(m);
  t.equal(kept['seq'], first.replica['seq'], 'the replica kept its position');
  t.equal(kept['log_hash'], first.replica['log_hash'], 'and its data');
  t.equal((await status(await open(t, otherReplica)))['snapshots'], '0', 'no snapshot was sent to it');

  // Our primary, whose --replica names that foreign primary of a higher epoch: not fenced by it.
  const fenced = await primary.restart(['--replica', otherReplica.address]);
  await waitFor(() => fenced.stderr().includes('the peer is a primary of another cluster'), { timeoutMs: DEADLINE_MS, message: `the probe to report the stranger:\n${fenced.stderr()}` });
  const f = await open(t, fenced);
  t.equal((await status(f))['role'], 'primary', 'still the primary');
  const alice = await login(f, 'alice', 'alice-pw');
  await expectAnswer(f, 'create_group ours', 'OK group created', alice);

  // The same replica restarted on an empty database joins the other cluster.
  const fresh = await moved.restart(['--db', path.join(moved.dir, 'empty.db')]);
  t.teardown(() => {
    if (t.passing()) return;
    t.comment(fresh.stderr());
    t.comment(otherReplica.stderr());
  });
  const joined = await waitForConvergence(otherReplica, fresh, { timeoutMs: DEADLINE_MS, acked: true });
  t.equal(joined.replica['cluster'], joined.primary['cluster'], 'it took the other cluster\'s id');
  t.match((await (await open(t, fresh)).request('login bob bob-pw')).payload, /^OK logged in as bob/, "the other cluster's user is there");
});

t.test('a primary restarted on a new database (a typo in --db) does not wipe its replica', async (t) => {
  const [port] = (await freePorts(1)) as [number];
  const { primary, replica } = await startCluster(t, { primary: { args: ['--port', String(port)] } });
  const c = await open(t, primary);
  await signUp(c, 'alice');
  const before = await waitForConvergence(primary, replica, { timeoutMs: DEADLINE_MS, acked: true });
  const typo = await primary.restart(['--db', path.join(primary.dir, 'typo.db')]);
  await waitFor(() => typo.stderr().includes("tracker link refused: the replica holds another cluster's data"), {
    timeoutMs: DEADLINE_MS,
    message: 'the new primary to refuse its replica',
  });
  const r = await open(t, replica);
  const after = await status(r);
  t.equal(after['seq'], before.replica['seq'], 'the replica kept its position');
  t.equal(after['log_hash'], before.replica['log_hash']);

  t.notMatch(typo.stderr(), /sending a snapshot/, 'no snapshot was sent');
});

t.test('forged SYNC: messages on client connections are FORBIDDEN and change nothing', async (t) => {
  const { primary, replica } = await startCluster(t);
  const p = await open(t, primary);
  const alice = await signUp(p, 'alice');
  const before = await waitForConvergence(primary, replica, { timeoutMs: DEADLINE_MS, acked: true });
  const next = Number(before.primary['seq']) + 1;
  const forgedChange = JSON.stringify({ seq: next, epoch: 1, type: 'group_created', group: 'forged', owner: 'alice', at: 1 });
  const forgeries = [`SYNC:CHANGES ${next} 1\n${forgedChange}`, 'SYNC:ACK 5', `SYNC:ACK ${next + 100}`, `SYNC:CHANGES ${next} 0`, 'sync:ack "unterminated'];

  for (const [name, tracker] of [['primary', primary], ['replica', replica]] as const) {
    const c = await open(t, tracker);
    for (const payload of forgeries) {
      const reply = await c.request(payload);
      t.match(reply.payload, /^ERR FORBIDDEN /, `${name}: ${JSON.stringify(payload.slice(0, 20))} is FORBIDDEN`);
    }
    // A tracker-link message is FORBIDDEN whatever follows its prefix (docs/protocol.md §2, order of checks).
    c.sendRaw(encodeFrame(0n, Buffer.concat([Buffer.from('SYNC:ACK '), Buffer.from([0xff, 0xfe])])));
    t.match((await c.nextFrame()).payload.toString('utf8'), /^ERR FORBIDDEN /, `${name}: a SYNC: payload that is not UTF-8 is FORBIDDEN`);
    t.equal((await c.request('ping')).payload, 'OK PONG', `${name}: the connection stays open`);
  }
  // Between HELLO and AUTH a connection is still a client connection.
  const half = await open(t, primary);
  const hello = await half.request(`SYNC:HELLO 1 ${randomBytes(16).toString('hex')}`);
  t.match(hello.payload, /^OK SYNC:CHALLENGE [0-9a-f]{32} [0-9a-f]{64}$/, 'HELLO is answered with a challenge');
  t.match((await half.request(`SYNC:CHANGES ${next} 1\n${forgedChange}`)).payload, /^ERR FORBIDDEN /, 'CHANGES after HELLO only');
  t.match((await half.request('SYNC:ACK 5')).payload, /^ERR FORBIDDEN /, 'ACK after HELLO only');

  const pNow = await status(p);
  const rNow = await status(await open(t, replica));
  t.equal(pNow['seq'], before.primary['seq'], 'primary seq unchanged');
  t.equal(pNow['log_hash'], before.primary['log_hash'], 'primary log_hash unchanged');
  t.equal(pNow['replica_seq'], before.primary['replica_seq'], 'a forged ACK does not move replica_seq');
  t.equal(rNow['seq'], before.replica['seq'], 'replica seq unchanged');
  t.equal(rNow['log_hash'], before.replica['log_hash'], 'replica log_hash unchanged');
  t.equal((await p.request('list_groups', alice)).payload, 'OK 0', 'no forged group');

  await t.test('SYNC:AUTH without HELLO: FORBIDDEN, closed', async (t) => {
    for (const payload of ['SYNC:AUTH', `SYNC:AUTH ${'f'.repeat(64)} x 1 0 ${ZERO_HASH}`]) {
      const c = await open(t, primary);
      t.equal((await c.request(payload)).payload, 'ERR FORBIDDEN authentication failed', payload.slice(0, 20));
      t.ok(await Promise.race([c.closed.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 5000).unref())]), 'closed');
    }
    const onReplica = await open(t, replica);
    t.match((await onReplica.request(`SYNC:AUTH ${'f'.repeat(64)} x 1 0 ${ZERO_HASH}`)).payload, /^ERR FORBIDDEN /, 'on the replica too');
  });

  await t.test('HELLO then a garbage proof: FORBIDDEN authentication failed, closed, logged with the address', async (t) => {
    const c = await open(t, primary);
    const local = c.socket.localPort;
    const challenge = await c.request(`SYNC:HELLO 1 ${randomBytes(16).toString('hex')}`);
    t.match(challenge.payload, /^OK SYNC:CHALLENGE [0-9a-f]{32} [0-9a-f]{64}$/);
    const reply = await c.request(`SYNC:AUTH ${randomBytes(32).toString('hex')} x 1 0 ${ZERO_HASH}`);
    t.equal(reply.payload, 'ERR FORBIDDEN authentication failed');
    t.ok(await Promise.race([c.closed.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 5000).unref())]), 'closed');
    const logged = await waitFor(
      () =>
        primary
          .stderr()
          .split('\n')
          .find((l) => l.includes('authentication failed') && l.includes(`:${local}`)),
      { timeoutMs: DEADLINE_MS, message: 'the log line of the failed authentication' },
    );
    t.ok(logged, 'the primary logged the failure with the peer address');
  });

  await t.test('an unknown link version is ERR PROTOCOL', async (t) => {
    const c = await open(t, primary);
    const reply = await c.request(`SYNC:HELLO 2 ${randomBytes(16).toString('hex')}`);
    t.match(reply.payload, /^ERR PROTOCOL /);
    const closed = await Promise.race([c.closed.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 2000).unref())]);
    t.ok(closed, 'and the connection is closed (docs/protocol.md §6)');
  });

  await t.test('a refused link is the last answer: requests sent behind it in the same write are not run', async (t) => {
    const nonce = (): string => randomBytes(16).toString('hex');
    for (const [refusal, expected] of [
      [`SYNC:HELLO 2 ${nonce()}`, /^ERR PROTOCOL unsupported SYNC link version 2/],
      [`SYNC:AUTH ${'f'.repeat(64)} x 1 0 ${ZERO_HASH}`, /^ERR FORBIDDEN authentication failed$/],
    ] as const) {
      const c = await open(t, primary);
      const user = `behind${randomBytes(4).toString('hex')}`;
      c.sendRaw(Buffer.concat(['ping', refusal, `create_user ${user} pw`, 'ping'].map((line) => encodeFrame(0n, line))));
      t.equal((await c.nextFrame()).payload.toString(), 'OK PONG', `${refusal.slice(0, 10)}: the request before it is answered`);
      t.match((await c.nextFrame()).payload.toString(), expected, 'then the refusal');
      await t.rejects(c.nextFrame(5000), 'and nothing after it: the connection closes');
      t.ok(c.isClosed, 'closed');
      t.match((await p.request(`login ${user} pw`)).payload, /^ERR INVALID_CREDENTIALS /, 'the request behind it never ran');
    }
  });

  // None of this disturbed the genuine link.
  await expectAnswer(p, 'create_group real', 'OK group created', alice);
  const after = await waitForConvergence(primary, replica, { timeoutMs: DEADLINE_MS, acked: true });
  t.equal(Number(after.primary['seq']), Number(before.primary['seq']) + 1);
  t.equal(authenticatedLinks(primary).length, 1, 'the replica link never had to reconnect');
});

t.test('with a small --max-frame, a write forwarded by the replica near that limit keeps the link', async (t) => {
  const args = ['--max-frame', '256'];
  const { primary, replica } = await startCluster(t, { primary: { args }, replica: { args } });
  const r = await open(t, replica);
  await waitForConvergence(primary, replica, { timeoutMs: DEADLINE_MS });
  // 253 bytes from the client: within its limit, but over 256 once wrapped in SYNC:FORWARD.
  const line = `create_user bigpw ${'p'.repeat(235)}`;
  t.ok(line.length <= 256 && line.length > 256 - 64, `${line.length} bytes`);
  t.equal((await r.request(line)).payload, 'OK user created', 'forwarded and run by the primary');
  const atLimit = `create_user bigpw2 ${'p'.repeat(237)}`;
  t.equal(atLimit.length, 256);
  t.equal((await r.request(atLimit)).payload, 'OK user created', 'and one of exactly --max-frame bytes');
  const after = await waitForConvergence(primary, replica, { timeoutMs: DEADLINE_MS, acked: true });
  t.equal(after.primary['replica'], 'connected', 'the link was never cut');
  t.equal(authenticatedLinks(primary).length, 1, 'nor had to reconnect');
  t.notMatch(replica.stderr(), /FRAME_TOO_LARGE/, 'no frame refused on the link');
});

t.test('a short --idle-timeout closes idle clients, never the replica link between its heartbeats', async (t) => {
  const { primary, replica } = await startCluster(t, { primary: { args: ['--idle-timeout', '500ms'] } });
  await waitForConvergence(primary, replica, { timeoutMs: DEADLINE_MS, acked: true });
  // Two idle clients closed one after the other: the link, quiet for as long, has been idle past 500 ms meanwhile.
  for (let i = 0; i < 2; i++) {
    const c = await open(t, primary);
    t.equal((await c.request('ping')).payload, 'OK PONG');
    t.ok(await settlesWithin(c.closed, DEADLINE_MS), `idle client ${i + 1} closed`);
  }
  t.equal((await status(await open(t, primary)))['replica'], 'connected', 'the replica is still linked');
  t.equal(authenticatedLinks(primary).length, 1, 'on its first link');
  t.notMatch(replica.stderr(), /connection closed/, 'the replica never saw its link close');
});

t.test('a replica with the wrong secret never connects', async (t) => {
  const { primary, replica } = await startCluster(t, { replicaSecret: 'not-the-cluster-secret' });
  await waitFor(() => replica.stderr().includes('failed authentication'), {
    timeoutMs: DEADLINE_MS,
    message: 'the replica to refuse the primary',
  });
  // The replica hangs up before it proves anything: the primary's log says so all the same.
  await waitFor(() => primary.stderr().includes('tracker link closed during its handshake (a replica with another secret?)'), {
    timeoutMs: DEADLINE_MS,
    message: `the primary to log the failed handshake; its stderr:\n${primary.stderr()}`,
  });
  const p = await open(t, primary);
  await signUp(p, 'alice');
  const ps = await status(p);
  const rs = await status(await open(t, replica));
  t.equal(rs['primary'], 'disconnected', 'the replica is not connected');
  t.equal(rs['seq'], '0', 'the replica got nothing');
  t.not(rs['history'], ps['history'], 'nor the primary history');
  t.equal(ps['replica'], 'disconnected', 'the primary has no replica');
  t.equal(ps['replica_seq'], '0');
  t.notMatch(primary.stderr(), /replica link authenticated/, 'the primary never streamed to it');
  t.notMatch(replica.stderr(), /not-the-cluster-secret|test-cluster-secret/, 'no secret in the logs');
});

/** A scripted primary: accepts the replica's connections and hands over its frames. */
class FakePrimary {
  readonly server: net.Server;
  private readonly pending: FakeLink[] = [];
  private wake: (() => void) | undefined;

  constructor() {
    this.server = net.createServer((socket) => {
      this.pending.push(new FakeLink(socket));
      this.wake?.();
    });
  }

  async listen(): Promise<number> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return (this.server.address() as net.AddressInfo).port;
  }

  async nextLink(): Promise<FakeLink> {
    await waitFor(
      () =>
        this.pending.length > 0 ||
        new Promise<boolean>((resolve) => {
          this.wake = () => resolve(true);
          setTimeout(() => resolve(false), 200).unref();
        }),
      { timeoutMs: DEADLINE_MS, message: 'a connection from the replica' },
    );
    return this.pending.shift() as FakeLink;
  }

  async close(): Promise<void> {
    for (const link of this.pending) link.socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

class FakeLink {
  readonly received: string[] = [];
  readonly closed: Promise<void>;
  private readonly decoder = new FrameDecoder({ maxPayload: 64 * 1024 * 1024 });

  constructor(readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => {
      for (const frame of this.decoder.push(chunk)) this.received.push(frame.payload.toString('utf8'));
    });
    socket.on('error', () => undefined);
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
  }

  send(payload: string): void {
    this.socket.write(encodeFrame(0n, payload));
  }

  /** The first received payload matching `re` (waiting for it), removed with everything before it. */
  async expect(re: RegExp): Promise<RegExpExecArray> {
    const m = await waitFor(
      () => {
        for (let i = 0; i < this.received.length; i++) {
          const found = re.exec(this.received[i] as string);
          if (found) {
            this.received.splice(0, i + 1);
            return found;
          }
        }
        return undefined;
      },
      { timeoutMs: DEADLINE_MS, intervalMs: 10, message: `a message matching ${re} (have ${JSON.stringify(this.received)})` },
    );
    return m;
  }
}

const hmac = (secret: string, text: string): string => createHmac('sha256', secret).update(text).digest('hex');

t.test('a replayed or duplicated stream changes nothing; a gap closes the link, which resumes from the applied seq', async (t) => {
  // The changes come from a real primary's log; a scripted primary ships them.
  const real = await startTracker(t, { args: ['--secret', CLUSTER_SECRET] });
  const c = await open(t, real);
  const alice = await signUp(c, 'alice');
  for (let i = 0; i < 8; i++) await expectAnswer(c, `create_group g${i}`, 'OK group created', alice);
  const truth = await status(c);
  const n = Number(truth['seq']);
  const db = new Database(`${real.dbPath}-log`, { readonly: true, fileMustExist: true });
  const rows = db.prepare('SELECT seq, change FROM sync_log ORDER BY seq').all() as { seq: number; change: string }[];
  db.close();
  t.equal(rows.length, n, 'the log holds every change');
  const frame = (first: number, count: number): string =>
    `SYNC:CHANGES ${first} ${count}\n${rows
      .slice(first - 1, first - 1 + count)
      .map((r) => r.change)
      .join('\n')}`;

  const fake = new FakePrimary();
  const fakePort = await fake.listen();
  t.teardown(() => fake.close());
  const replica = await startReplica(t, { port: fakePort, address: `127.0.0.1:${fakePort}` }, { args: ['--secret', CLUSTER_SECRET] });

  /** The primary side of the handshake, computed here from docs/protocol.md §6. */
  const handshake = async (link: FakeLink): Promise<{ history: string; epoch: number; seq: number; hash: string }> => {
    const [, nonceR] = (await link.expect(/^SYNC:HELLO 1 ([0-9a-f]{32})$/)) as unknown as [string, string];
    const nonceP = randomBytes(16).toString('hex');
    link.send(`OK SYNC:CHALLENGE ${nonceP} ${hmac(CLUSTER_SECRET, `tracker-sync/1 primary ${nonceR} ${nonceP}`)}`);
    const auth = await link.expect(/^SYNC:AUTH ([0-9a-f]{64}) (\S+) (\d+) (\d+) ([0-9a-f]{64})(?: [0-9a-f]{32})?$/);
    t.equal(auth[1], hmac(CLUSTER_SECRET, `tracker-sync/1 replica ${nonceP} ${nonceR}`), 'the replica proof is as documented');
    return { history: auth[2] as string, epoch: Number(auth[3]), seq: Number(auth[4]), hash: auth[5] as string };
  };

  const link = await fake.nextLink();
  const hello = await handshake(link);
  t.equal(hello.seq, 0, 'an empty replica says seq 0');
  t.equal(hello.hash, ZERO_HASH, 'and h_0');
  link.send(`OK SYNC:STREAM ${truth['history']} ${truth['epoch']} 1`);
  link.send(frame(1, 3));
  link.send(frame(1, 3)); // the same frame again
  link.send(frame(2, n - 1)); // overlapping: 2 and 3 again, then the rest
  link.send(frame(n, 1)); // the last one again
  await link.expect(new RegExp(`^SYNC:ACK ${n}$`));
  const r = await open(t, replica);
  const rs = await status(r);
  t.equal(rs['seq'], String(n), 'each change applied once');
  t.equal(rs['log_hash'], truth['log_hash'], 'the log_hash of the real primary');
  t.equal(rs['history'], truth['history'], 'the history of the stream');
  t.equal(rs['primary'], 'connected', 'duplicates do not close the link');
  t.equal(parseList((await send(r, ['list_groups'], alice)).payload).length, 8);

  // A gap: the replica drops the link and comes back saying where it stands.
  link.send(`SYNC:CHANGES ${n + 2} 1\n{}`);
  await link.closed;
  const again = await fake.nextLink();
  const resumed = await handshake(again);
  t.same(
    { history: resumed.history, seq: resumed.seq, hash: resumed.hash },
    { history: truth['history'], seq: n, hash: truth['log_hash'] },
    'the replica resumes from its applied seq',
  );

  // A frame that carries more changes than it announces closes the link too, and the log says so.
  again.send(`OK SYNC:STREAM ${truth['history']} ${truth['epoch']} ${n + 1}`);
  again.send(`SYNC:CHANGES ${n + 1} 1\n{}\n{}`);
  await again.closed;
  await waitFor(() => (/SYNC:CHANGES announced 1 change and carried 2/.test(replica.stdout() + replica.stderr()) ? true : undefined), {
    timeoutMs: DEADLINE_MS,
    message: 'the replica to log the miscounted frame, the count in the singular',
  });
});

t.test('a replica that acknowledges changes it was never sent is dropped, and no write is answered as replicated on its word', async (t) => {
  // The link is authenticated (the fake knows the secret): only the primary's own bookkeeping stands between it and a lie.
  const primary = await startTracker(t, { args: ['--secret', CLUSTER_SECRET] });
  const c = await open(t, primary);
  const alice = await signUp(c, 'alice');
  const before = await status(c);
  const link = await open(t, primary);
  const nonceR = randomBytes(16).toString('hex');
  const challenge = /^OK SYNC:CHALLENGE ([0-9a-f]{32}) [0-9a-f]{64}$/.exec((await link.request(`SYNC:HELLO 1 ${nonceR}`)).payload);
  t.ok(challenge, 'challenged');
  const proof = hmac(CLUSTER_SECRET, `tracker-sync/1 replica ${challenge?.[1] ?? ''} ${nonceR}`);
  t.match((await link.request(`SYNC:AUTH ${proof} - 1 0 ${ZERO_HASH}`)).payload, /^OK SYNC:STREAM /, 'authenticated, streaming from seq 1');
  link.sendRaw(encodeFrame(0n, `SYNC:ACK ${Number(before['seq']) + 1000}`));
  await waitFor(() => (link.isClosed ? true : undefined), { timeoutMs: 10_000, message: 'the primary to close the lying link' });
  t.match(primary.stderr(), /the replica acknowledged changes this link never sent; closing it/);
  const after = await status(c);
  t.equal(after['replica'], 'disconnected');
  t.ok(Number(after['replica_seq']) <= Number(before['seq']), `replica_seq ${after['replica_seq']} is not beyond what was sent`);
  await expectAnswer(c, 'create_group g', 'OK group created', alice);
  t.equal((await status(c))['degraded'], '1', 'the write was answered without a replica: degraded, not replicated');
});

t.test('a snapshot cut short by the replica is logged as such', async (t) => {
  const primary = await startTracker(t, { args: ['--secret', CLUSTER_SECRET] });
  const c = await open(t, primary);
  await signUp(c, 'alice');
  const link = await open(t, primary);
  const nonceR = randomBytes(16).toString('hex');
  const challenge = /^OK SYNC:CHALLENGE ([0-9a-f]{32}) [0-9a-f]{64}$/.exec((await link.request(`SYNC:HELLO 1 ${nonceR}`)).payload);
  const proof = hmac(CLUSTER_SECRET, `tracker-sync/1 replica ${challenge?.[1] ?? ''} ${nonceR}`);
  // A position the primary never held: it needs a snapshot.
  t.match((await link.request(`SYNC:AUTH ${proof} - 1 1 ${'ab'.repeat(32)}`)).payload, /^OK SYNC:SNAPSHOT /, 'a snapshot is on its way');
  await link.close();
  await waitFor(() => (primary.stderr().includes('replica link closed before the replica installed its snapshot') ? true : undefined), {
    timeoutMs: DEADLINE_MS,
    message: 'the primary to say the snapshot was cut short',
  }).catch((error: unknown) => {
    t.comment(primary.stderr());
    throw error;
  });
  t.notMatch(primary.stderr(), /"msg":"replica link closed"/, 'not the plain line');
});

t.test('a write forwarded while the primary stops is answered as not applied, and is not applied', async (t) => {
  // async mode: a change the (fake) replica never acknowledges is answered at once, and then holds the stop open
  // for --sync-timeout-ms while the primary waits for the replica: the window a forwarded write can arrive in.
  const primary = await startTracker(t, { args: ['--secret', CLUSTER_SECRET, '--sync-mode', 'async', '--sync-timeout-ms', '20000'] });
  const link = await open(t, primary);
  const nonceR = randomBytes(16).toString('hex');
  const challenge = /^OK SYNC:CHALLENGE ([0-9a-f]{32}) [0-9a-f]{64}$/.exec((await link.request(`SYNC:HELLO 1 ${nonceR}`)).payload);
  const proof = hmac(CLUSTER_SECRET, `tracker-sync/1 replica ${challenge?.[1] ?? ''} ${nonceR}`);
  t.match((await link.request(`SYNC:AUTH ${proof} - 1 0 ${ZERO_HASH}`)).payload, /^OK SYNC:STREAM /, 'authenticated');
  const c = await open(t, primary);
  await signUp(c, 'alice');
  await c.close();

  primary.proc.kill('SIGTERM');
  await waitFor(() => (primary.stderr().includes('stopping: no new connections') ? true : undefined), { message: 'the primary to begin its stop' });
  link.sendRaw(encodeFrame(0n, 'SYNC:FORWARD 1 0 7\ncreate_user ghost "ghost pw"'));
  let result = '';
  while (!result.startsWith('SYNC:RESULT 1 ')) result = (await link.nextFrame()).payload.toString('utf8');
  t.match(result.split('\n')[1], /^ERR PRIMARY_UNAVAILABLE the primary is stopping; this write was not applied/, 'refused, said plainly');
  link.sendRaw(encodeFrame(0n, `SYNC:ACK ${result.split(' ')[2]}`)); // let the stop finish
  t.same(await primary.exited, { code: 0, signal: null }, 'a graceful stop');

  const again = await primary.restart();
  const d = await open(t, again);
  t.equal((await d.request('create_user ghost "ghost pw"')).payload, 'OK user created', 'ghost was never created');
});

t.test('with the primary gone, the replica answers writes PRIMARY_UNAVAILABLE and keeps serving reads and sessions', async (t) => {
  const { primary, replica } = await startCluster(t);
  const p = await open(t, primary);
  const bob = await signUp(p, 'bob');
  await expectAnswer(p, 'create_group kept', 'OK group created', bob);
  await waitForConvergence(primary, replica, { timeoutMs: DEADLINE_MS, acked: true });
  await primary.kill9();
  const r = await open(t, replica);
  const refused = await r.request('create_group lost', bob);
  t.match(refused.payload, /^ERR PRIMARY_UNAVAILABLE /, 'a write cannot be applied');
  t.equal(refused.session, bob, 'the session is still good');
  t.same(await r.request('whoami', bob), { session: bob, payload: 'OK bob sessions=1' }, 'sessions keep working');
  t.equal((await r.request('list_groups', bob)).payload, 'OK 1\nkept owner=bob members=1', 'reads keep working');
});

t.test('a replica stopped (SIGTERM) while forwarding pipelined writes gives each the primary\'s real answer', async (t) => {
  const { primary, replica } = await startCluster(t);
  await waitForConvergence(primary, replica, { timeoutMs: 20_000, acked: true });
  const r = await connect(replica.port);
  const alice = await signUp(r, 'alice');
  const names = Array.from({ length: 400 }, (_, i) => `fw${i}`);
  const answers = new Map<string, string>();
  const sent = names.map((name) =>
    r.request(`create_group ${name}`, alice).then(
      (reply) => answers.set(name, reply.payload),
      () => undefined, // never read before the stop: no answer, which is honest
    ),
  );
  await waitFor(async () => (answers.size > 0 ? true : undefined), { timeoutMs: 20_000, message: 'a first forwarded answer' });
  const stopped = await replica.stop('SIGTERM');
  t.equal(stopped.code, 0, 'a graceful stop');
  await Promise.all(sent);
  const wrong = [...answers.entries()].filter(([, payload]) => payload !== 'OK group created');
  t.same(wrong, [], 'every request the replica had read got the primary\'s answer, none a false PRIMARY_UNAVAILABLE');
  t.ok(answers.size > 1, `${answers.size} answers`);
  // Each OK is a group the primary holds.
  const p = await connect(primary.port);
  t.teardown(() => p.close());
  const session = await login(p, 'alice', 'alice-pw');
  const held = new Set(parseList((await send(p, ['list_groups'], session)).payload).map((row) => row.split(' ')[0]));
  const ok = [...answers.entries()].filter(([, payload]) => payload === 'OK group created').map(([name]) => name);
  t.same(ok.filter((name) => !held.has(name)), [], 'no OK for a write the primary does not hold');
});

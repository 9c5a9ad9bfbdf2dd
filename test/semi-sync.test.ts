/**
 * Semi-sync write acknowledgement against real processes: an answered write
 * survives the primary's sudden death; a lost replica degrades the primary
 * instead of stalling it; async mode answers without waiting.
 */
import t from 'tap';
import { parseList, signUp, status } from './helpers/commands.js';
import { startCluster, startReplica, waitForConvergence } from './helpers/cluster.js';
import { connect, waitFor } from './helpers/wire.js';
import type { WireClient } from './helpers/wire.js';

const WRITERS = 8;
const TARGET_ACKED = 400;

t.test('kill -9 of the primary under semi-sync load: every write answered OK is on the replica', async (t) => {
  // A long sync timeout: on a loaded 2-core machine a slow ack must not turn into
  // degraded mode mid-test (that would make the check meaningless); the status
  // poll below also proves the primary never degraded while writes were answered.
  const { primary, replica } = await startCluster(t, { primary: { args: ['--sync-timeout-ms', '10000'] } });
  const admin = await connect(primary.port);
  t.teardown(() => admin.close());
  const session = await signUp(admin, 'writer');
  await waitFor(async () => (await status(admin))['degraded'] === '0', { timeoutMs: 20_000, message: 'semi-sync on' });

  const acked: string[] = [];
  let degradedSeen = false;
  let stop = false;
  const writers: WireClient[] = await Promise.all(Array.from({ length: WRITERS }, () => connect(primary.port)));
  t.teardown(() => Promise.all(writers.map((w) => w.close())));
  const loops = writers.map(async (w, n) => {
    for (let i = 0; !stop; i++) {
      const name = `w${n}_${i}`;
      try {
        const reply = await w.request(`create_group ${name}`, session);
        if (reply.payload === 'OK group created') acked.push(name);
        else if (!stop) throw new Error(`create_group ${name}: ${reply.payload}`);
      } catch {
        return; // the primary died mid-request: that write was never answered
      }
    }
  });
  const watcher = (async () => {
    while (!stop) {
      try {
        if ((await status(admin))['degraded'] !== '0') degradedSeen = true;
      } catch {
        return;
      }
    }
  })();

  await waitFor(() => acked.length >= TARGET_ACKED, { timeoutMs: 60_000, message: `${TARGET_ACKED} acknowledged writes` });
  await primary.kill9();
  stop = true;
  await Promise.all([...loops, watcher]);
  t.notOk(degradedSeen, 'the primary never answered in degraded mode during the load');
  t.ok(acked.length >= TARGET_ACKED, `${acked.length} writes were answered OK before the kill`);

  // The replica holds every one of them; its primary is gone, so nothing more arrives.
  const reader = await connect(replica.port);
  t.teardown(() => reader.close());
  const rows = parseList((await reader.request('list_groups', session)).payload);
  const present = new Set(rows.map((row) => row.split(' ')[0]));
  const missing = acked.filter((name) => !present.has(name));
  t.same(missing, [], 'no acknowledged write is missing on the replica');
});

t.test('a lost replica degrades the primary instead of stalling writes; it catches up and semi-sync resumes', async (t) => {
  const { primary, replica } = await startCluster(t, { primary: { args: ['--sync-timeout-ms', '2000'] } });
  const c = await connect(primary.port);
  t.teardown(() => c.close());
  const s = await signUp(c, 'alice');
  await waitFor(async () => (await status(c))['degraded'] === '0', { timeoutMs: 20_000, message: 'semi-sync on' });

  await replica.kill9();
  const started = Date.now();
  t.equal((await c.request('create_group after_kill', s)).payload, 'OK group created', 'a write is answered without the replica');
  t.ok(Date.now() - started < 2000, 'without waiting out the sync timeout: the lost link degrades at once');
  const degraded = await waitFor(async () => {
    const st = await status(c);
    return st['degraded'] === '1' && st['replica'] === 'disconnected' ? st : undefined;
  });
  t.equal(degraded['replica_lag'], String(Number(degraded['seq']) - Number(degraded['replica_seq'])), 'replica_lag = seq - replica_seq');

  const again = await replica.restart();
  t.teardown(() => again.stop());
  await waitForConvergence(primary, again, { acked: true });
  await waitFor(async () => (await status(c))['degraded'] === '0', { message: 'semi-sync resumed' });
  t.match(primary.stderr(), /degraded: answering writes without the replica/, 'degrading is logged');
  t.match(primary.stderr(), /replica caught up/, 'and so is recovering');
});

t.test('async mode answers after the local commit; the replica still converges', async (t) => {
  const { primary, replica } = await startCluster(t, { primary: { args: ['--sync-mode', 'async'] } });
  const c = await connect(primary.port);
  t.teardown(() => c.close());
  const s = await signUp(c, 'bob');
  for (let i = 0; i < 20; i++) t.equal((await c.request(`create_group a${i}`, s)).payload, 'OK group created');
  const converged = await waitForConvergence(primary, replica, { acked: true });
  t.equal(converged.primary['degraded'], '0', 'async never waits for the replica, so it never falls short of it: not degraded');
  t.equal(converged.primary['replica'], 'connected', 'the replica link is what tells its health');
});

t.test('a primary with no replica is degraded and answers at once', async (t) => {
  const { primary, replica } = await startCluster(t);
  await replica.stop();
  const c = await connect(primary.port);
  t.teardown(() => c.close());
  await waitFor(async () => (await status(c))['replica'] === 'disconnected');
  const s = await signUp(c, 'carol');
  t.equal((await c.request('create_group solo', s)).payload, 'OK group created');
  t.equal((await status(c))['degraded'], '1');
  // A new replica on a fresh database catches up from nothing.
  const fresh = await startReplica(t, primary, { args: ['--secret', 'test-cluster-secret'] });
  await waitForConvergence(primary, fresh, { acked: true });
});

t.test('SIGTERM flushes the SyncQueue: when the primary has exited, the replica has every change it committed', async (t) => {
  // Async mode, so answers do not wait for the replica: only the flush at shutdown brings the tail over.
  const { primary, replica } = await startCluster(t, { primary: { args: ['--sync-mode', 'async'] } });
  const c = await connect(primary.port);
  t.teardown(() => c.close());
  const s = await signUp(c, 'dora');
  await waitForConvergence(primary, replica, { acked: true });
  const replies = await Promise.all(Array.from({ length: 300 }, (_, i) => c.request(`create_group f${i}`, s)));
  t.ok(
    replies.every((r) => r.payload === 'OK group created'),
    '300 pipelined writes answered',
  );
  const committed = Number((await status(c))['seq']);
  const exit = await primary.stop('SIGTERM');
  t.equal(exit.code, 0, 'the primary exits 0');
  const r = await connect(replica.port);
  t.teardown(() => r.close());
  t.equal(Number((await status(r))['seq']), committed, 'the replica holds every committed change');
  t.match(primary.stderr(), /tracker stopped/);
});

t.test('SIGTERM with the replica frozen and a write waiting for it: the shutdown waits for the replica once, not twice', async (t) => {
  // The replica is stopped, not killed: its connection stays up, so only the timeout tells the primary it is gone.
  const SYNC_TIMEOUT_MS = 3000;
  const { primary, replica } = await startCluster(t, { primary: { args: ['--sync-timeout-ms', String(SYNC_TIMEOUT_MS), '--admin-port', '0'] } });
  t.teardown(() => {
    replica.proc.kill('SIGCONT');
  });
  const c = await connect(primary.port);
  t.teardown(() => c.close());
  const s = await signUp(c, 'erin');
  await waitForConvergence(primary, replica, { acked: true });
  await waitFor(async () => (await status(c))['degraded'] === '0', { timeoutMs: 20_000, message: 'semi-sync on' });

  replica.proc.kill('SIGSTOP');
  const sent = Date.now();
  const write = c.request('create_group frozen', s).then((reply) => ({ reply, waited: Date.now() - sent }));
  // Committed and waiting for the replica's acknowledgement: the SIGTERM comes while the write is in flight.
  await waitFor(
    async () => {
      const metrics = await (await fetch(`${primary.adminUrl as string}/metrics`)).text();
      return /^tracker_sync_waiting_batches [1-9]/m.test(metrics) ? true : undefined;
    },
    { timeoutMs: 20_000, intervalMs: 10, message: 'the write waiting for the replica' },
  );
  const signalled = Date.now();
  primary.proc.kill('SIGTERM');
  const exit = await primary.exited;
  const elapsed = Date.now() - signalled;

  t.equal(exit.code, 0, 'the primary exits 0');
  // One wait for the frozen replica, not two (the write's, then the flush's again): 1.5 × lies halfway, so that
  // neither a slow machine's overhead nor how soon the SIGTERM followed the write decides the outcome.
  t.ok(elapsed < SYNC_TIMEOUT_MS * 1.5, `exited ${elapsed} ms after SIGTERM: within one --sync-timeout-ms (${SYNC_TIMEOUT_MS} ms) and a margin, not two`);
  const { reply, waited } = await write;
  t.equal(reply.payload, 'OK group created', 'the write, committed on the primary, is answered as degraded mode answers it');
  // The primary releases it no sooner than the timeout after its commit, by the machine's clock; the slack is for rounding to the millisecond.
  t.ok(waited >= SYNC_TIMEOUT_MS - 5, `answered ${waited} ms after it was sent: not before its own --sync-timeout-ms had passed`);
  t.match(primary.stderr(), /degraded: answering writes without the replica/, 'the timeout degraded the primary, as it does outside a shutdown');
  t.match(
    primary.stderr(),
    /stopping before the replica acknowledged everything: it acknowledged seq \d+ of \d+ within --sync-timeout-ms \(3000 ms\) of the stop/,
    'the shutdown says the replica did not acknowledge',
  );
});

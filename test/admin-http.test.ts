/**
 * The admin listener (`--admin-port`): /metrics, /healthz and /readyz
 * scraped over real HTTP from a real primary and its replica.
 */
import t from 'tap';
import { promote, startCluster } from './helpers/cluster.js';
import { send, signUp } from './helpers/commands.js';
import { metricSample as sample, runTrackerCommand, startTracker } from './helpers/tracker.js';
import type { RunningTracker } from './helpers/tracker.js';
import { connect, waitFor } from './helpers/wire.js';

async function get(tracker: RunningTracker, path: string): Promise<{ status: number; type: string; body: string }> {
  if (!tracker.adminUrl) throw new Error(`no admin= in the ready line: ${tracker.readyLine}`);
  const res = await fetch(`${tracker.adminUrl}${path}`);
  return { status: res.status, type: res.headers.get('content-type') ?? '', body: await res.text() };
}

t.test('no admin listener unless --admin-port is set', async (t) => {
  const tracker = await startTracker(t);
  t.equal(tracker.adminUrl, undefined);
  t.notMatch(tracker.readyLine, /admin=/);
});

t.test('primary and replica: health, readiness and metrics over HTTP', async (t) => {
  const { primary, replica } = await startCluster(t, {
    primary: { args: ['--admin-port', '0'] },
    replica: { args: ['--admin-port', '0'] },
  });
  t.match(primary.readyLine, /\(role=primary epoch=1 seq=\d+ admin=127\.0\.0\.1:\d+\)$/, 'the ready line tells the admin address');
  t.ok(replica.adminUrl, 'the replica has one too');

  for (const tracker of [primary, replica]) {
    const health = await get(tracker, '/healthz');
    t.equal(health.status, 200);
    const ready = await get(tracker, '/readyz');
    t.equal(ready.status, 200);
    t.match(ready.body, /^ready: serving/);
    t.equal((await get(tracker, '/nope')).status, 404);
    const post = await fetch(`${tracker.adminUrl}/metrics`, { method: 'POST' });
    t.equal(post.status, 405);
    await post.text();
  }

  // Traffic on the primary: accounts, a group, a refused request, an unknown command.
  const c = await connect(primary.port);
  t.teardown(() => c.close());
  const alice = await signUp(c, 'alice');
  t.equal((await send(c, ['create_group', 'climbers'], alice)).payload, 'OK group created');
  t.match((await send(c, ['create_group', 'climbers'], alice)).payload, /^ERR GROUP_EXISTS/);
  t.match((await send(c, ['frobnicate'])).payload, /^ERR UNKNOWN_COMMAND/);
  t.match((await send(c, ['ping'])).payload, 'OK PONG');
  // tracker-client puts a request id before every command: the label is still the command's.
  t.match((await send(c, ['@9f86d081884c7d65:1', 'create_group', 'hikers'], alice)).payload, 'OK group created');

  const metrics = await get(primary, '/metrics');
  t.equal(metrics.status, 200);
  t.match(metrics.type, /^text\/plain/);
  const m = metrics.body;
  t.equal(sample(m, 'tracker_info', { role: 'primary' }), 1);
  t.equal(sample(m, 'tracker_requests_total', { command: 'create_group', result: 'OK' }), 2);
  t.equal(sample(m, 'tracker_requests_total', { command: 'create_group', result: 'GROUP_EXISTS' }), 1);
  t.equal(sample(m, 'tracker_requests_total', { command: 'unknown', result: 'UNKNOWN_COMMAND' }), 1);
  t.equal(sample(m, 'tracker_requests_total', { command: 'login', result: 'OK' }), 1);
  t.equal(sample(m, 'tracker_request_duration_seconds_count', { command: 'create_group' }), 3);
  t.equal(sample(m, 'tracker_request_duration_seconds_bucket', { command: 'ping', le: '+Inf' }), 1);
  t.equal(sample(m, 'tracker_users'), 1);
  t.equal(sample(m, 'tracker_groups'), 2);
  t.equal(sample(m, 'tracker_live_sessions'), 1);
  t.equal(sample(m, 'tracker_shares'), 0);
  t.ok((sample(m, 'tracker_open_connections') ?? 0) >= 2, 'the client and the replica link');
  const seq = sample(m, 'tracker_log_seq') ?? 0;
  t.ok(seq >= 3, 'user_created, session_opened, group_created: the log moved');
  t.equal(sample(m, 'tracker_replica_connected'), 1);
  t.equal(sample(m, 'tracker_epoch'), 1);
  t.equal(sample(m, 'tracker_ready'), 1);
  t.equal(sample(m, 'tracker_snapshot_transfers_total', { direction: 'sent' }), 0, 'defined, wired by the snapshot code');
  t.ok(sample(m, 'process_resident_memory_bytes') !== undefined, 'process metrics too');
  t.ok(sample(m, 'tracker_sync_queue_depth') !== undefined);
  t.ok(sample(m, 'tracker_sync_waiting_batches') !== undefined);
  t.equal(sample(m, 'tracker_primary_connected'), undefined, 'replica-only gauge absent on the primary');

  // Semi-sync: once the replica acknowledged everything, the primary is not degraded and the lag is 0.
  const settled = await waitFor(
    async () => {
      const text = (await get(primary, '/metrics')).body;
      return sample(text, 'tracker_degraded') === 0 && sample(text, 'tracker_replica_lag') === 0 ? text : undefined;
    },
    { message: 'replica caught up in the metrics' },
  );
  t.equal(sample(settled, 'tracker_replica_seq'), sample(settled, 'tracker_log_seq'));
  t.equal(sample(settled, 'tracker_sync_queue_depth'), 0);

  // The replica reports its own copy and its link.
  const r = await waitFor(
    async () => {
      const text = (await get(replica, '/metrics')).body;
      return sample(text, 'tracker_log_seq') === sample(settled, 'tracker_log_seq') ? text : undefined;
    },
    { message: 'the replica applied everything' },
  );
  t.equal(sample(r, 'tracker_info', { role: 'replica' }), 1);
  t.equal(sample(r, 'tracker_primary_connected'), 1);
  t.equal(sample(r, 'tracker_users'), 1);
  t.equal(sample(r, 'tracker_groups'), 2);
  t.equal(sample(r, 'tracker_snapshot_transfers_total', { direction: 'installed' }), 0);
  t.equal(sample(r, 'tracker_degraded'), undefined, 'primary-only gauge absent on the replica');

  // Primary gone: the replica stays ready (it serves reads), reports the lost link; the primary's listener is gone.
  const primaryAdmin = primary.adminUrl as string;
  t.equal((await primary.stop()).code, 0);
  await waitFor(async () => sample((await get(replica, '/metrics')).body, 'tracker_primary_connected') === 0, {
    message: 'the replica noticed the primary left',
  });
  t.equal((await get(replica, '/readyz')).status, 200);
  await t.rejects(fetch(`${primaryAdmin}/healthz`), 'the admin listener closes with the tracker');
});

t.test('after a live promotion, /metrics on both trackers shows their new roles and those roles\' gauges', async (t) => {
  const { primary, replica } = await startCluster(t, {
    primary: { args: ['--admin-port', '0'] },
    replica: { args: ['--admin-port', '0'] },
  });
  // The primary learns of the promotion on the replica's link (SYNC:PROMOTED) and steps down.
  const live = await primary.restart(['--replica', replica.address, '--port', String(primary.port)]);
  await waitFor(async () => sample((await get(replica, '/metrics')).body, 'tracker_primary_connected') === 1, {
    timeoutMs: 20_000,
    message: 'the replica to link to the restarted primary',
  });
  t.match(await promote(replica), /^OK promoted epoch=2 /);
  const promoted = (await get(replica, '/metrics')).body;
  t.equal(sample(promoted, 'tracker_info', { role: 'primary' }), 1, 'the promoted tracker says primary');
  t.equal(sample(promoted, 'tracker_info', { role: 'replica' }), undefined, 'and nothing else');
  t.equal(sample(promoted, 'tracker_epoch'), 2);
  t.not(sample(promoted, 'tracker_degraded'), undefined, 'the primary\'s gauges are there');
  t.not(sample(promoted, 'tracker_replica_connected'), undefined);
  t.equal(sample(promoted, 'tracker_primary_connected'), undefined, 'the replica\'s gauge is gone');
  await waitFor(async () => sample((await get(live, '/metrics')).body, 'tracker_info', { role: 'replica' }) === 1, {
    timeoutMs: 20_000,
    message: 'the old primary to report role=replica',
  });
  const old = (await get(live, '/metrics')).body;
  t.equal(sample(old, 'tracker_info', { role: 'primary' }), undefined);
  t.equal(sample(old, 'tracker_degraded'), undefined, 'no primary gauges on the fenced tracker');
  t.not(sample(old, 'tracker_primary_connected'), undefined);
  t.not(sample(old, 'tracker_snapshot_transfers_total', { direction: 'installed' }), undefined, 'both directions are counted from the start');
});

t.test('--admin-port on a port in use: exit 1 with a clear message', async (t) => {
  const first = await startTracker(t, { args: ['--admin-port', '0'] });
  const port = new URL(first.adminUrl as string).port;
  const dir = first.dir;
  const second = await runTrackerCommand(t, ['--port', '0', '--db', `${dir}/other.db`, '--admin-port', port, '--secret', 's'], {});
  t.equal(second.code, 1);
  t.match(second.stderr, new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port} \\(--admin-port\\): address already in use`));
});

t.test('TRACKER_ADMIN_PORT and TRACKER_ADMIN_HOST from the environment', async (t) => {
  const tracker = await startTracker(t, { env: { TRACKER_ADMIN_PORT: '0', TRACKER_ADMIN_HOST: '127.0.0.1' } });
  t.ok(tracker.adminUrl);
  t.equal((await get(tracker, '/readyz')).status, 200);
});

/**
 * Failover between real processes: the log's retention forcing a snapshot,
 * promotion of the replica (the authenticated admin action), and fencing of
 * the old primary when it comes back — it never keeps its unreplicated tail.
 */
import { statSync } from 'node:fs';
import Database from 'better-sqlite3';
import t from 'tap';
import { promote, promoteWithCode, startCluster, waitForConvergence } from './helpers/cluster.js';
import { expectAnswer, login, parseList, signUp, status } from './helpers/commands.js';
import { freePorts, startTracker } from './helpers/tracker.js';
import type { RunningTracker, TeardownHost } from './helpers/tracker.js';
import { connect, waitFor } from './helpers/wire.js';
import type { WireClient } from './helpers/wire.js';

const DEADLINE_MS = 30_000;

async function open(t: TeardownHost, tracker: { port: number }): Promise<WireClient> {
  const c = await connect(tracker.port);
  t.teardown(() => c.close());
  return c;
}

t.test('a replica behind the retained log gets a snapshot, then streams', async (t) => {
  const retention = ['--log-retention', '50', '--admin-port', '0'];
  const { primary, replica } = await startCluster(t, { primary: { args: retention }, replica: { args: retention } });
  const p = await open(t, primary);
  const alice = await signUp(p, 'alice');
  await waitForConvergence(primary, replica, { timeoutMs: DEADLINE_MS, acked: true });
  await replica.stop();
  for (let i = 0; i < 400; i++) await expectAnswer(p, `create_group g${i}`, 'OK group created', alice);
  // The log drops what is past retention once the state file holds it (a state commit, then the next trim).
  const trimmed = await waitFor(async () => {
    const s = await status(p);
    return Number(s['log_base']) > 100 ? s : undefined;
  }, { timeoutMs: DEADLINE_MS, message: 'the primary to trim its log' });
  t.ok(Number(trimmed['log_base']) > 100, `the log starts after seq ${trimmed['log_base']}`);

  const back = await replica.restart();
  const converged = await waitForConvergence(primary, back, { timeoutMs: DEADLINE_MS, acked: true });
  t.equal(converged.primary['snapshots'], '1', 'one snapshot sent');
  t.equal(converged.replica['snapshots'], '1', 'one snapshot installed');
  t.match(primary.stderr(), /sending a snapshot to the replica: the log no longer reaches back to it/);
  const metric = async (url: string | undefined, direction: string): Promise<string | undefined> => {
    const text = await (await fetch(`${url ?? ''}/metrics`)).text();
    return new RegExp(`^tracker_snapshot_transfers_total\\{direction="${direction}"\\} (\\d+)$`, 'm').exec(text)?.[1];
  };
  t.equal(await metric(primary.adminUrl, 'sent'), '1', 'the primary counts the snapshot it sent (/metrics)');
  t.equal(await metric(back.adminUrl, 'installed'), '1', 'the replica the one it installed');
  t.equal((await fetch(`${back.adminUrl ?? ''}/readyz`)).status, 200, 'and is ready again');
  const r = await open(t, back);
  t.equal(parseList((await r.request('list_groups', alice)).payload).length, 400, 'every group, with the session made before');
  for (let i = 0; i < 20; i++) await expectAnswer(p, `create_group h${i}`, 'OK group created', alice);
  const later = await waitForConvergence(primary, back, { timeoutMs: DEADLINE_MS, acked: true });
  t.equal(later.primary['snapshots'], '1', 'the stream went on after the snapshot: no second one');

  // The replica restarted again: it resumes from its own position, inside the retained log.
  const again = await back.restart();
  const resumed = await waitForConvergence(primary, again, { timeoutMs: DEADLINE_MS, acked: true });
  t.equal(resumed.primary['snapshots'], '1', 'a replica inside the retained log streams without a snapshot');
});

t.test('a snapshot install leaves no state-sized WAL behind on the replica', async (t) => {
  // The install rewrites every table through the state file's WAL, and SQLite never
  // shrinks a WAL by itself: without a truncate it stays as large as the state until a restart.
  const args = ['--log-retention', '50', '--max-groups-per-user', '3000'];
  const { primary, replica } = await startCluster(t, { primary: { args }, replica: { args } });
  const p = await open(t, primary);
  const alice = await signUp(p, 'alice');
  await waitForConvergence(primary, replica, { timeoutMs: DEADLINE_MS, acked: true });
  await replica.stop();
  for (let i = 0; i < 3000; i++) await expectAnswer(p, `create_group g${i}`, 'OK group created', alice);
  await waitFor(async () => (Number((await status(p))['log_base']) > 100 ? true : undefined), { timeoutMs: DEADLINE_MS, message: 'the primary to trim its log' });
  const back = await replica.restart();
  const converged = await waitForConvergence(primary, back, { timeoutMs: DEADLINE_MS, acked: true });
  t.equal(converged.replica['snapshots'], '1', 'the replica installed a snapshot');
  // The state's size whether its pages are in the file or still in the WAL (a reader beside the running tracker).
  const db = new Database(back.dbPath, { readonly: true });
  const state = (db.pragma('page_count', { simple: true }) as number) * (db.pragma('page_size', { simple: true }) as number);
  db.close();
  const wal = statSync(`${back.dbPath}-wal`, { throwIfNoEntry: false })?.size ?? 0;
  t.ok(state > 128 * 1024, `a state of ${state} bytes`);
  t.ok(wal < state / 4, `the state file's WAL holds ${wal} bytes after the install, well under the state's ${state}`);
});

t.test('promotion needs the cluster secret', async (t) => {
  const { replica } = await startCluster(t);
  const refused = await promoteWithCode(replica, 'not-the-secret');
  t.match(refused.answer, /^ERR FORBIDDEN /);
  t.equal(refused.code, 1, 'tracker-admin promote exits 1 when refused');
  t.match(replica.stderr(), /admin action refused: authentication failed/);
  const r = await open(t, replica);
  t.equal((await status(r))['role'], 'replica', 'still a replica');
  t.match((await r.request('SYNC:PROMOTE 00')).payload, /^ERR FORBIDDEN /, 'no proof without a challenge');
});

t.test('kill the primary, promote the replica: sessions, reads and writes carry on there', async (t) => {
  const { primary, replica } = await startCluster(t);
  const p = await open(t, primary);
  const alice = await signUp(p, 'alice');
  await expectAnswer(p, 'create_group team', 'OK group created', alice);
  await waitForConvergence(primary, replica, { timeoutMs: DEADLINE_MS, acked: true });
  await primary.kill9();

  const r = await open(t, replica);
  t.match((await r.request('create_group other', alice)).payload, /^ERR PRIMARY_UNAVAILABLE /, 'before promotion, writes wait for a primary');
  const answer = await promote(replica);
  t.match(answer, /^OK promoted epoch=2 history=[0-9a-f]{32}$/);
  t.match(await promote(replica), /^OK already primary epoch=2 /, 'promoting again changes nothing');
  const s = await status(r);
  t.equal(s['role'], 'primary');
  t.equal(s['epoch'], '2');
  t.equal((await r.request('whoami', alice)).payload, 'OK alice sessions=1', 'the session made at the old primary');
  await expectAnswer(r, 'create_group other', 'OK group created', alice);
  t.same(parseList((await r.request('list_groups', alice)).payload), ['other owner=alice members=1', 'team owner=alice members=1']);
});

t.test('the old primary comes back, is fenced, drops its unreplicated tail and follows the new primary', async (t) => {
  // async mode: the primary answers writes the replica never saw (the tail fencing must drop).
  const { primary, replica } = await startCluster(t, { primary: { args: ['--sync-mode', 'async'] } });
  const p = await open(t, primary);
  const alice = await signUp(p, 'alice');
  await expectAnswer(p, 'create_group kept', 'OK group created', alice);
  await waitForConvergence(primary, replica, { timeoutMs: DEADLINE_MS, acked: true });
  await replica.stop();
  await expectAnswer(p, 'create_group tail', 'OK group created', alice);
  await p.close();
  await primary.kill9();

  // The replica comes back with its primary gone, and is promoted.
  const promoted = await replica.restart();
  t.match(await promote(promoted), /^OK promoted epoch=2 /);
  const n = await open(t, promoted);
  await expectAnswer(n, 'create_group after', 'OK group created', alice);

  // The old primary restarts, told where its peer is: it finds a primary of a higher epoch.
  const old = await primary.restart(['--replica', promoted.address]);
  t.match(old.description, /^role=replica /, 'it does not start as a primary');
  t.match(old.stderr(), /fenced: another tracker is primary with a higher epoch/);
  const converged = await waitForConvergence(promoted, old, { timeoutMs: DEADLINE_MS, acked: true });
  t.equal(converged.replica['role'], 'replica');
  t.equal(converged.replica['epoch'], '2');
  t.equal(converged.primary['snapshots'], '1', 'its diverged log was replaced by a snapshot');
  const o = await open(t, old);
  t.same(
    parseList((await o.request('list_groups', alice)).payload),
    ['after owner=alice members=1', 'kept owner=alice members=1'],
    'the unreplicated "tail" group is gone; the new primary\'s write is there',
  );
  t.equal((await o.request('whoami', alice)).payload, 'OK alice sessions=1');
  await expectAnswer(o, 'create_group via_old', 'OK group created', alice);
  t.equal((await status(n))['seq'], (await status(o))['seq'], 'its writes are forwarded to the new primary');
});

/** A pair with alice signed up and replicated; then the primary is killed (SIGKILL) and the replica promoted. */
async function failOver(t: TeardownHost & { match: (found: unknown, wanted: RegExp) => void }): Promise<{ primary: RunningTracker; replica: RunningTracker; alice: bigint }> {
  const { primary, replica } = await startCluster(t);
  const p = await open(t, primary);
  const alice = await signUp(p, 'alice');
  await p.close();
  await waitForConvergence(primary, replica, { timeoutMs: DEADLINE_MS, acked: true });
  await primary.kill9();
  t.match(await promote(replica), /^OK promoted epoch=2 /);
  return { primary, replica, alice };
}

t.test('an old primary that has followed the new one is still its replica when restarted with its old command line', async (t) => {
  const { primary, replica, alice } = await failOver(t);
  const old = await primary.restart(['--replica', replica.address]);
  t.match(old.description, /^role=replica /, 'fenced at its first start');
  await waitForConvergence(replica, old, { timeoutMs: DEADLINE_MS, acked: true });

  // A reboot, or its supervisor, starts it again with the same `tracker-primary … --replica` line.
  // Its log now says epoch 2, like its peer's: only what it led tells it that epoch is not its own.
  const again = await old.restart(['--replica', replica.address]);
  t.match(again.description, /^role=replica epoch=2 /, 'not a second primary of epoch 2');
  t.match(again.stderr(), /starting as the replica, not as configured: it was last primary of epoch 1 and has since followed the primary of epoch 2/);
  await waitForConvergence(replica, again, { timeoutMs: DEADLINE_MS, acked: true });
  const a = await open(t, again);
  await expectAnswer(a, 'create_group via_again', 'OK group created', alice);
  const converged = await waitForConvergence(replica, again, { timeoutMs: DEADLINE_MS, acked: true });
  t.equal(converged.primary['role'], 'primary');
  t.equal(converged.replica['role'], 'replica');
  t.equal(converged.primary['seq'], converged.replica['seq'], 'one history: the write went to the promoted tracker');
});

t.test('a promoted tracker restarted with its old tracker-replica command line is still the primary', async (t) => {
  const { primary, replica, alice } = await failOver(t);
  const n = await connect(replica.port);
  await expectAnswer(n, 'create_group before_crash', 'OK group created', alice);
  await n.close();
  await replica.kill9();

  // Its supervisor starts it again as it was set up: `tracker-replica --primary <the dead primary>`.
  const back = await replica.restart();
  t.match(back.description, /^role=primary epoch=2 /, 'not a replica of nobody');
  t.match(back.stderr(), /starting as the primary, not as configured: it was promoted to epoch 2/);
  const b = await open(t, back);
  await expectAnswer(b, 'create_group after_restart', 'OK group created', alice);
  t.same(parseList((await b.request('list_groups', alice)).payload), ['after_restart owner=alice members=1', 'before_crash owner=alice members=1']);

  // The old primary comes back with its own old command line: the higher epoch fences it.
  const old = await primary.restart(['--replica', back.address]);
  t.match(old.description, /^role=replica /);
  const converged = await waitForConvergence(back, old, { timeoutMs: DEADLINE_MS, acked: true });
  t.equal(converged.primary['role'], 'primary');
});

t.test('a live old primary that learns of a promotion steps down by itself', async (t) => {
  const { primary, replica } = await startCluster(t);
  // Tell the primary where its peer is, as npm start and the classic form do; same port, so the replica finds it again.
  const live = await primary.restart(['--replica', replica.address, '--port', String(primary.port)]);
  await waitForConvergence(live, replica, { timeoutMs: DEADLINE_MS, acked: true });
  const p = await open(t, live);
  const alice = await signUp(p, 'alice');
  await waitForConvergence(live, replica, { timeoutMs: DEADLINE_MS, acked: true });
  t.match(await promote(replica), /^OK promoted epoch=2 /);
  // The replica tells it on their link (SYNC:PROMOTED); its probe of the peer would see epoch 2 within seconds otherwise.
  await waitFor(async () => ((await status(p))['role'] === 'replica' ? true : undefined), { timeoutMs: DEADLINE_MS, message: 'the old primary to step down' });
  const converged = await waitForConvergence(replica, live, { timeoutMs: DEADLINE_MS, acked: true });
  t.equal(converged.replica['epoch'], '2');
  t.equal((await p.request('whoami', alice)).payload, 'OK alice sessions=1');
  const again = await login(p, 'alice', 'alice-pw');
  t.ok(again > 0n, 'a login through the fenced tracker is forwarded to the new primary');
});

t.test('a replica promoted under write load tells its live primary, which steps down: no write it answered OK is lost', async (t) => {
  // No --replica on the primary: it has no peer to probe, so the replica's word on the link is the only way it can learn.
  // One user is the whole write load: the group limit must not end it (on either tracker: the replica becomes the primary).
  const load = ['--max-groups-per-user', '1000000'];
  const { primary, replica } = await startCluster(t, { primary: { args: load }, replica: { args: load } });
  const p = await open(t, primary);
  const alice = await signUp(p, 'alice');
  await waitForConvergence(primary, replica, { timeoutMs: DEADLINE_MS, acked: true });
  const acked: string[] = [];
  const refused: string[] = [];
  let stop = false;
  const writers = Array.from({ length: 8 }, async (_, k) => {
    const c = await open(t, primary);
    for (let i = 0; !stop; i++) {
      const name = `w${k}_${i}`;
      const answer = (await c.request(`create_group ${name}`, alice)).payload;
      if (answer === 'OK group created') acked.push(name);
      else if (answer.startsWith('ERR PRIMARY_UNAVAILABLE ')) refused.push(name);
      else throw new Error(`unexpected answer to create_group ${name}: ${answer}`);
    }
  });
  const writing = Promise.all(writers);
  writing.catch(() => undefined); // awaited below; a writer's failure must not be unhandled meanwhile
  await waitFor(() => (acked.length >= 200 ? true : undefined), { timeoutMs: DEADLINE_MS, message: '200 writes answered before the promotion' });
  t.match(await promote(replica), /^OK promoted epoch=2 /);
  await waitFor(async () => ((await status(p))['role'] === 'replica' ? true : undefined), { timeoutMs: DEADLINE_MS, message: 'the old primary to step down' });
  stop = true;
  await writing;
  t.match(primary.stderr(), /the replica was promoted: this tracker is no longer the primary/, 'it stepped down on the replica\'s word');

  const n = await open(t, replica);
  const groups = new Set(parseList((await n.request('list_groups', alice)).payload).map((row) => row.split(' ')[0]));
  const missing = acked.filter((name) => !groups.has(name));
  t.same(missing, [], `every one of the ${acked.length} writes the old primary answered OK is on the new primary`);
  t.comment(`${refused.length} writes in flight at the promotion, or sent after it, were refused PRIMARY_UNAVAILABLE`);
  t.match((await p.request('create_group after_step_down', alice)).payload, /^ERR PRIMARY_UNAVAILABLE /, 'the old primary takes no more writes itself');
});

t.test('two primaries of the same epoch: the fencing probe reports it, and neither steps down', async (t) => {
  // Both started as tracker-primary on fresh databases: epoch 1 each. Nothing can tell which holds the writes to keep.
  const a = await startTracker(t);
  const b = await startTracker(t, { args: ['--replica', a.address] });
  await waitFor(() => b.stderr().includes('two primaries of the same epoch'), {
    timeoutMs: DEADLINE_MS,
    message: `the probe to report the other primary; stderr:\n${b.stderr()}`,
  });
  const line = b.stderr().split('\n').find((l) => l.includes('two primaries of the same epoch')) ?? '';
  t.match(JSON.parse(line), { level: 50, peer: a.address, epoch: 1 }, 'an error naming the peer');
  for (const tracker of [a, b]) {
    const c = await open(t, tracker);
    t.equal((await status(c))['role'], 'primary', 'it stays primary: only an operator can choose');
  }
});

t.test('the original primary brought back as tracker-replica while the new primary is out of reach stays a replica', async (t) => {
  // The runbook's step, at a bad moment: the log says it led epoch 1, but nobody is promoted to epoch 1.
  const primary = await startTracker(t);
  const c = await open(t, primary);
  const alice = await signUp(c, 'alice');
  await c.close();
  await primary.stop();
  const [nowhere] = (await freePorts(1)) as [number];
  const back = await startTracker(t, { role: 'replica', dbPath: primary.dbPath, args: ['--primary', `127.0.0.1:${nowhere}`] });
  t.match(back.description, /^role=replica /, 'a replica, as its command line says');
  t.notMatch(back.stderr(), /starting as the primary/);
  const r = await open(t, back);
  t.equal((await r.request('whoami', alice)).payload, 'OK alice sessions=1', 'it serves reads and sessions');
  t.match((await r.request('create_group g', alice)).payload, /^ERR PRIMARY_UNAVAILABLE /, 'and takes no write of its own');
});

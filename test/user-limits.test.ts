/**
 * Per-user limits against real tracker processes: what one user (and
 * `create_user` needs no session, so anyone) may hold of the trackers' memory
 * and disk. Sessions past `--max-sessions-per-user` end the least recently
 * active one at login, the same on both trackers; groups past
 * `--max-groups-per-user` and join requests past `--max-requests-per-user`
 * are QUOTA_EXCEEDED.
 */
import t from 'tap';
import { login, parseList, settle, signUp } from './helpers/commands.js';
import { startCluster, waitForConvergence } from './helpers/cluster.js';
import { startTracker } from './helpers/tracker.js';
import { connect, waitFor } from './helpers/wire.js';
import type { WireClient } from './helpers/wire.js';
import type { TeardownHost } from './helpers/tracker.js';

/** Resolves once the wall clock has moved past now: the next login's expiry is then strictly later than the last one's. */
async function nextMillisecond(): Promise<void> {
  const now = Date.now();
  await waitFor(() => Date.now() > now, { intervalMs: 1, message: 'the clock to move' });
}

async function client(t: TeardownHost, port: number): Promise<WireClient> {
  const c = await connect(port);
  t.teardown(() => c.close());
  return c;
}

t.test('--max-sessions-per-user 3: the 4th login answers sessions=3 and ends the first session, on both trackers alike', async (t) => {
  const cap = ['--max-sessions-per-user', '3'];
  const { primary, replica } = await startCluster(t, { primary: { args: cap }, replica: { args: cap } });
  const p = await client(t, primary.port);
  const r = await client(t, replica.port);
  const sessions: bigint[] = [await signUp(p, 'alice')];
  for (let i = 0; i < 2; i++) {
    await nextMillisecond();
    sessions.push(await login(p, 'alice', 'alice-pw'));
  }
  await nextMillisecond();
  const fourth = await p.request('login alice alice-pw');
  t.equal(fourth.payload, 'OK logged in as alice sessions=3', 'the login succeeds, and the user holds the cap');
  t.same(await p.request('whoami', sessions[0]), { payload: 'ERR AUTH_REQUIRED whoami needs a session: log in first', session: 0n }, 'the first session is ended');
  t.equal((await p.request('whoami', fourth.session)).payload, 'OK alice sessions=3');

  // Through the replica (forwarded to the primary, which decides): the next least recently active ends.
  await nextMillisecond();
  const fifth = await r.request('login alice alice-pw');
  t.equal(fifth.payload, 'OK logged in as alice sessions=3');
  t.same(await r.request('whoami', sessions[1]), { payload: 'ERR AUTH_REQUIRED whoami needs a session: log in first', session: 0n }, 'ended at the replica');
  const converged = await waitForConvergence(primary, replica, { acked: true });
  t.equal(converged.replica['log_hash'], converged.primary['log_hash'], 'the same history on both');
  for (const [name, c] of [['primary', p], ['replica', r]] as const) {
    for (const ended of sessions.slice(0, 2)) t.match((await c.request('whoami', ended)).payload, /^ERR AUTH_REQUIRED /, `${name}: an ended session stays ended`);
    for (const live of [sessions[2] as bigint, fourth.session, fifth.session]) t.equal((await c.request('whoami', live)).payload, 'OK alice sessions=3', `${name}: the rest live on`);
  }

  const lines = primary.stderr().split('\n').filter((l) => l.includes('--max-sessions-per-user'));
  t.equal(lines.length, 2, 'each eviction is logged once, by the primary');
  t.match(JSON.parse(lines[0] as string), { level: 30, user: 'alice', ended: 1, max: 3 });
  for (const id of sessions) t.notOk(primary.stderr().includes(id.toString()), 'no session id in the log');
});

t.test('--max-groups-per-user 2 and TRACKER_MAX_REQUESTS_PER_USER=1: QUOTA_EXCEEDED past either, nothing stored, no event sent', async (t) => {
  const tracker = await startTracker(t, { args: ['--max-groups-per-user', '2'], env: { TRACKER_MAX_REQUESTS_PER_USER: '1' } });
  const owner = await client(t, tracker.port);
  const asker = await client(t, tracker.port);
  const o = await signUp(owner, 'olga');
  const m = await signUp(asker, 'mike');
  t.equal((await owner.request('create_group g1', o)).payload, 'OK group created');
  t.equal((await owner.request('create_group g2', o)).payload, 'OK group created');
  t.equal((await owner.request('create_group g3', o)).payload, 'ERR QUOTA_EXCEEDED you already own 2 groups and a user may own at most 2; leave one first');
  t.same(parseList((await owner.request('list_groups', o)).payload), ['g1 owner=olga members=1', 'g2 owner=olga members=1'], 'the refused group was not created');

  t.equal((await asker.request('join_group g1', m)).payload, 'OK request sent');
  t.equal((await asker.request('join_group g2', m)).payload, 'ERR QUOTA_EXCEEDED you already have 1 pending join request and a user may have at most 1; wait until an owner accepts or rejects one');
  t.same(parseList((await owner.request('list_requests g2', o)).payload), [], 'the refused request is not pending');
  await settle(owner);
  t.same(owner.events, ['EVENT join_request g1 mike'], 'the owner heard of the accepted request only');
  t.equal((await owner.request('reject_request g1 mike', o)).payload, 'OK request rejected');
  t.equal((await asker.request('join_group g2', m)).payload, 'OK request sent', 'an answer frees the place');
});

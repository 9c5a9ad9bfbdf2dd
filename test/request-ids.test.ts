/**
 * Request ids (`@<client>:<n> <command>`, docs/protocol.md §2): a write
 * retried with the same id is answered with the stored answer and runs
 * once — at the tracker that ran it, at the replica, after a restart, and
 * after the primary died.
 */
import t from 'tap';
import { parseList, signUp } from './helpers/commands.js';
import { startCluster, waitForConvergence } from './helpers/cluster.js';
import { startTracker } from './helpers/tracker.js';
import { connect } from './helpers/wire.js';

const CLIENT = '9f86d081884c7d65';
const OTHER = '0123456789abcdef';

t.test('a retried write answers the same and applies once', async (t) => {
  const tracker = await startTracker(t);
  const c = await connect(tracker.port);
  t.teardown(() => c.close());
  const alice = await signUp(c, 'alice');

  const first = await c.request(`@${CLIENT}:1 create_group team`, alice);
  t.equal(first.payload, 'OK group created');
  const again = await c.request(`@${CLIENT}:1 create_group team`, alice);
  t.equal(again.payload, 'OK group created', 'the retry gets the first answer, not GROUP_EXISTS');
  t.equal(again.session, alice);
  t.equal((await c.request(`@${CLIENT}:2 create_group team`, alice)).payload.split(' ')[1], 'GROUP_EXISTS', 'a new number runs again');
  t.same(parseList((await c.request('list_groups', alice)).payload), ['team owner=alice members=1']);

  t.match((await c.request(`@${CLIENT}:3 join_group x`, alice)).payload, /^ERR NO_SUCH_GROUP/, 'a failed write is not remembered');
  t.match((await c.request(`@${CLIENT}:3 create_group other`, alice)).payload, /^OK group created/, 'so its number may run another command');
  t.match((await c.request(`@${CLIENT}:1 create_group team`, alice)).payload, /^ERR BAD_REQUEST stale request number 1/);
  t.match(
    (await c.request(`@${CLIENT}:3 create_group third`, alice)).payload,
    /^ERR BAD_REQUEST request number 3 was already used for another command or session/,
  );
  t.equal((await c.request(`@${CLIENT}:4 list_groups`, alice)).payload.split('\n')[0], 'OK 2', 'reads take a request id and ignore it');
});

t.test('a retried login gets the same session; a retried logout answers after the session ended', async (t) => {
  const tracker = await startTracker(t);
  const c = await connect(tracker.port);
  t.teardown(() => c.close());
  t.equal((await c.request(`@${CLIENT}:1 create_user bob pw`)).payload, 'OK user created');
  t.equal((await c.request(`@${CLIENT}:1 create_user bob pw`)).payload, 'OK user created', 'not USER_EXISTS');

  const login = await c.request(`@${CLIENT}:2 login bob pw`);
  t.equal(login.payload, 'OK logged in as bob sessions=1');
  const retry = await c.request(`@${CLIENT}:2 login bob pw`);
  t.equal(retry.payload, 'OK logged in as bob sessions=1');
  t.equal(retry.session, login.session, 'the same session id');
  t.equal((await c.request('whoami', login.session)).payload, 'OK bob sessions=1', 'one session, not two');

  const logout = await c.request(`@${CLIENT}:3 logout`, login.session);
  t.same(logout, { session: 0n, payload: 'OK logged out sessions=0' });
  t.same(await c.request(`@${CLIENT}:3 logout`, login.session), logout, 'the retry is answered though the session is gone');
});

t.test("a request id replayed under another session is refused, not answered with the other session's answer", async (t) => {
  const tracker = await startTracker(t);
  const c = await connect(tracker.port);
  t.teardown(() => c.close());
  const alice = await signUp(c, 'alice');
  const mallory = await signUp(c, 'mallory');
  t.equal((await c.request(`@${CLIENT}:1 create_group team`, alice)).payload, 'OK group created');
  const replay = await c.request(`@${CLIENT}:1 create_group team`, mallory);
  t.same(replay, { session: mallory, payload: 'ERR BAD_REQUEST request number 1 was already used for another command or session' });

  t.equal((await c.request(`@${OTHER}:1 create_user bob pw`)).payload, 'OK user created');
  const login = await c.request(`@${OTHER}:2 login bob pw`);
  t.equal(login.payload, 'OK logged in as bob sessions=1');
  const stolen = await c.request(`@${OTHER}:2 login bob pw`, mallory);
  t.match(stolen.payload, /^ERR BAD_REQUEST request number 2 was already used/, "a login's replay under another session does not hand out its session");
  t.equal(stolen.session, mallory);
  t.same(await c.request(`@${OTHER}:2 login bob pw`), login, 'the true retry, with no session as the first attempt had, gets the answer');

  // On two connections at once: one arrives while the other is still hashing its password.
  const c2 = await connect(tracker.port);
  t.teardown(() => c2.close());
  const both = await Promise.all([c.request(`@${OTHER}:3 create_user carol pw`), c2.request(`@${OTHER}:3 create_user carol pw`, mallory)]);
  t.same(
    both.map((r) => r.payload.split(' ')[0]).sort(),
    ['ERR', 'OK'],
    `one ran, the other was refused, whichever came first: ${JSON.stringify(both.map((r) => r.payload))}`,
  );
});

t.test('two clients keep their own numbers', async (t) => {
  const tracker = await startTracker(t);
  const c = await connect(tracker.port);
  t.teardown(() => c.close());
  const alice = await signUp(c, 'alice');
  t.equal((await c.request(`@${CLIENT}:5 create_group a`, alice)).payload, 'OK group created');
  t.equal((await c.request(`@${OTHER}:1 create_group b`, alice)).payload, 'OK group created');
  t.equal((await c.request(`@${CLIENT}:5 create_group a`, alice)).payload, 'OK group created');
});

t.test('malformed request ids are refused without running anything', async (t) => {
  const tracker = await startTracker(t);
  const c = await connect(tracker.port);
  t.teardown(() => c.close());
  for (const bad of ['@xyz:1 ping', `@${CLIENT}:0 ping`, `@${CLIENT}:-1 ping`, `@${CLIENT.toUpperCase()}:1 ping`, `@${CLIENT}:1`, `@${CLIENT}:99999999999999999 ping`, `@${CLIENT} ping`]) {
    t.match((await c.request(bad)).payload, /^ERR BAD_REQUEST /, bad);
  }
  t.equal((await c.request(`@${CLIENT}:1 ping`)).payload, 'OK PONG');
});

t.test('the record is durable: a retry after a restart is answered from it', async (t) => {
  const tracker = await startTracker(t);
  let c = await connect(tracker.port);
  const alice = await signUp(c, 'alice');
  t.equal((await c.request(`@${CLIENT}:1 join_group nowhere`, alice)).payload.split(' ')[1], 'NO_SUCH_GROUP');
  t.equal((await c.request(`@${CLIENT}:2 create_group team`, alice)).payload, 'OK group created');
  await c.close();
  await tracker.kill9();
  const again = await tracker.restart();
  c = await connect(again.port);
  t.teardown(() => c.close());
  t.equal((await c.request(`@${CLIENT}:2 create_group team`, alice)).payload, 'OK group created');
});

t.test('the replica answers a retry from the replicated record, also once the primary is gone', async (t) => {
  const { primary, replica } = await startCluster(t);
  const p = await connect(primary.port);
  const r = await connect(replica.port);
  t.teardown(() => Promise.all([p.close(), r.close()]));
  const alice = await signUp(p, 'alice');
  t.equal((await p.request(`@${CLIENT}:1 create_group team`, alice)).payload, 'OK group created');
  await waitForConvergence(primary, replica, { acked: true });
  t.equal((await r.request(`@${CLIENT}:1 create_group team`, alice)).payload, 'OK group created', 'the retry at the replica');

  // A write forwarded by the replica is remembered too.
  t.equal((await r.request(`@${CLIENT}:2 join_group team`, alice)).payload.split(' ')[1], 'ALREADY_MEMBER');
  t.equal((await r.request(`@${CLIENT}:2 create_group club`, alice)).payload, 'OK group created', 'forwarded');
  t.equal((await p.request(`@${CLIENT}:2 create_group club`, alice)).payload, 'OK group created', 'and remembered at the primary');

  await p.close();
  await primary.kill9();
  t.equal((await r.request(`@${CLIENT}:2 create_group club`, alice)).payload, 'OK group created', 'no PRIMARY_UNAVAILABLE: it already ran');
  t.match((await r.request(`@${CLIENT}:3 create_group more`, alice)).payload, /^ERR PRIMARY_UNAVAILABLE/, 'a new write needs the primary');
  t.same(parseList((await r.request('list_groups', alice)).payload), ['club owner=alice members=1', 'team owner=alice members=1']);
});

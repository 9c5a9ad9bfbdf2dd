/**
 * tracker-client failing over from a killed primary to the replica, against
 * a real cluster: the same session carries on, one notice is printed, the
 * next read works, and a write whose answer was lost with the primary is
 * retried with the same request id and answered from the replicated request
 * record — applied exactly once. Writes after the primary is gone get the
 * replica's clear `ERR PRIMARY_UNAVAILABLE` until the operator promotes it
 * (`tracker-admin promote`); then the next write succeeds there.
 */
import t from 'tap';
import { promote, startCluster } from './helpers/cluster.js';
import { spawnClient, lines } from './helpers/client.js';
import { createUser, login, parseList } from './helpers/commands.js';
import { startProxy } from './helpers/proxy.js';
import { connect, waitFor } from './helpers/wire.js';

const NOTICE = /^tracker-client: .*; now on 127\.0\.0\.1:\d+ \(replica\) with the same session/;

t.test('a write in flight when the primary dies is retried at the replica and applied once', async (t) => {
  const { primary, replica } = await startCluster(t);
  // The client reaches the primary through a proxy that can lose answers.
  const proxy = await startProxy(t, primary);
  const admin = await connect(primary.port);
  t.teardown(() => admin.close());
  await createUser(admin, 'alice', 'alice-pw');
  await admin.close();

  const client = await spawnClient(t, [
    '--tracker', proxy.address,
    '--tracker', replica.address,
    '--keep-going',
  ]);
  client.proc.stdin?.write('login alice alice-pw\nlist_groups\n');
  await client.waitOut('OK 0\n', 'logged in, no groups yet');

  // From create_group on, the primary's answers are lost; the write itself reaches it.
  proxy.dropAnswersAfter('create_group team');
  client.proc.stdin?.write('create_group team\n');
  // Wait until the write is committed and replicated (semi-sync), seen at the replica.
  const watcher = await connect(replica.port);
  t.teardown(() => watcher.close());
  const session = await waitFor(async () => {
    try {
      return await login(watcher, 'alice', 'alice-pw');
    } catch {
      return undefined;
    }
  }, { message: 'a watcher session at the replica' });
  await waitFor(async () => (await watcher.request('list_groups', session)).payload === 'OK 1\nteam owner=alice members=1', {
    message: 'the group replicated while its answer is lost',
  });
  t.notMatch(client.stdout(), 'OK group created', 'the client has not had its answer');

  // The primary dies with the answer; the proxy goes too.
  await primary.kill9();
  await proxy.close();
  await client.waitOut('OK group created', 'the retried write answered from the request record');
  t.notMatch(client.stdout(), 'GROUP_EXISTS', 'the retry did not run the write again');
  const notices = lines(client.stderr());
  t.equal(notices.length, 1, `one notice; stderr:\n${client.stderr()}`);
  t.match(notices[0], NOTICE);
  t.match(notices[0], /; retrying create_group$/);

  // The next read and the same session, through the replica.
  client.proc.stdin?.write('list_groups\nwhoami\n');
  await client.waitOut(/OK alice sessions=\d+\n/, 'whoami at the replica');
  // The next write: the replica cannot apply it without a primary, and says so.
  client.proc.stdin?.write('create_group team2\n');
  await client.waitOut(/ERR PRIMARY_UNAVAILABLE [^\n]*\n/, 'the write refused until a promotion');
  // The operator promotes the replica; the client's next write goes through there, same session.
  t.match(await promote(replica), /^OK promoted epoch=2 /);
  client.proc.stdin?.end('create_group team2\nlist_groups\n');
  const r = await client.exited;
  const out = lines(r.stdout);
  t.same(out.slice(0, 4), ['OK logged in as alice sessions=1', 'OK 0', 'OK group created', 'OK 1']);
  t.equal(out[4], 'team owner=alice members=1', 'the group exists once');
  t.match(out[5], /^OK alice sessions=2$/, 'the same session (plus the watcher)');
  t.match(out[6], /^ERR PRIMARY_UNAVAILABLE /);
  t.same(out.slice(7), ['OK group created', 'OK 2', 'team owner=alice members=1', 'team2 owner=alice members=1'], 'after the promotion the write succeeds through the replica');
  t.equal(r.code, 1, 'one ERR answer on the way: exit 1');
  t.equal(lines(r.stderr).length, 1, 'still one notice');
  const count = parseList((await watcher.request('list_groups', session)).payload);
  t.equal(count.length, 2, 'each group once at the (promoted) replica');
});

t.test('the primary killed between commands: one notice, the next read works at the replica', async (t) => {
  const { primary, replica } = await startCluster(t);
  const admin = await connect(primary.port);
  await createUser(admin, 'bob', 'bob-pw');
  await admin.close();
  const client = await spawnClient(t, ['--tracker', primary.address, '--tracker', replica.address, '--keep-going']);
  client.proc.stdin?.write('login bob bob-pw\ncreate_group climbers\n');
  await client.waitOut('OK group created');
  await primary.kill9();
  // The client notices the lost connection and moves on its own (events keep coming).
  await client.waitErr(NOTICE, 'the failover notice');
  client.proc.stdin?.end('whoami\nlist_members climbers\njoin_group nowhere\n');
  const r = await client.exited;
  t.same(lines(r.stdout), [
    'OK logged in as bob sessions=1',
    'OK group created',
    'OK bob sessions=1',
    'OK 1',
    'bob role=owner',
    'ERR PRIMARY_UNAVAILABLE the primary cannot be reached; reads and sessions still work here',
  ]);
  t.equal(lines(r.stderr).length, 1, `one notice; stderr:\n${r.stderr}`);
  t.match(r.stderr, /connection to 127\.0\.0\.1:\d+ lost/);
  t.equal(r.code, 1);
});

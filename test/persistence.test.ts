/**
 * Durability of the real tracker-primary process (PROTOCOL.md §3 rules, §6):
 * state and sessions survive a crash (SIGKILL) and a restart on the same
 * database with an identical seq and log_hash; SIGTERM answers what is in
 * flight and exits 0; sessions expire after the TTL without activity and
 * activity extends them (docs/protocol.md: sliding session TTL).
 */
import t from 'tap';
import { startTracker } from './helpers/tracker.js';
import type { RunningTracker, TeardownHost } from './helpers/tracker.js';
import { connect, waitFor } from './helpers/wire.js';
import type { Reply, WireClient } from './helpers/wire.js';
import { createUser, expectAnswer, login, settlesWithin, signUp, status } from './helpers/commands.js';

async function open(t: TeardownHost, tracker: RunningTracker): Promise<WireClient> {
  const c = await connect(tracker.port);
  t.teardown(() => c.close());
  return c;
}

t.test('kill -9 and restart: users, groups, members, requests and sessions survive', async (t) => {
  const first = await startTracker(t);
  const c = await open(t, first);
  const olga = await signUp(c, 'olga', 'olga pw');
  const zed = await signUp(c, 'zed', 'zed-pw');
  const amy = await signUp(c, 'amy', 'amy-pw');
  const bob = await signUp(c, 'bob', 'bob-pw');
  const olga2 = await login(c, 'olga', 'olga pw');
  await createUser(c, 'idle', 'idle-pw');

  await expectAnswer(c, 'create_group red', 'OK group created', olga);
  await expectAnswer(c, 'create_group blue', 'OK group created', bob);
  await expectAnswer(c, 'join_group red', 'OK request sent', zed);
  await expectAnswer(c, 'join_group red', 'OK request sent', amy);
  await expectAnswer(c, 'join_group red', 'OK request sent', bob);
  await expectAnswer(c, 'accept_request red zed', 'OK zed joined red', olga);
  await expectAnswer(c, 'join_group blue', 'OK request sent', olga);
  await expectAnswer(c, 'join_group blue', 'OK request sent', zed);
  await expectAnswer(c, 'reject_request blue olga', 'OK request rejected', bob);
  await expectAnswer(c, 'create_group gone', 'OK group created', amy);
  await expectAnswer(c, 'leave_group gone', 'OK left gone', amy);
  const loggedOut = await login(c, 'amy', 'amy-pw');
  await expectAnswer(c, 'logout', 'OK logged out sessions=1', loggedOut);

  // Everything above was answered, so it is committed.
  const before = await status(c);
  const groupsBefore = (await c.request('list_groups', olga)).payload;
  t.equal(groupsBefore, 'OK 2\nblue owner=bob members=1\nred owner=olga members=2');
  await c.close();

  await first.kill9();
  t.equal(first.proc.signalCode, 'SIGKILL', 'crashed');
  const second = await first.restart();
  t.equal(second.dbPath, first.dbPath);
  t.not(second.port, 0);
  t.match(second.description, new RegExp(`seq=${before['seq']}$`), 'the ready line shows the same seq');

  const d = await open(t, second);
  const after = await status(d);
  t.equal(after['seq'], before['seq'], 'status seq identical');
  t.equal(after['log_hash'], before['log_hash'], 'log_hash identical');
  t.equal(after['epoch'], before['epoch'], 'epoch identical');

  // The old session ids still work: sessions are durable.
  t.same(await d.request('whoami', olga), { session: olga, payload: 'OK olga sessions=2' });
  t.same(await d.request('whoami', olga2), { session: olga2, payload: 'OK olga sessions=2' });
  t.same(await d.request('whoami', zed), { session: zed, payload: 'OK zed sessions=1' });
  t.same(await d.request('whoami', amy), { session: amy, payload: 'OK amy sessions=1' });
  t.same(await d.request('whoami', bob), { session: bob, payload: 'OK bob sessions=1' });
  const dead = await d.request('whoami', loggedOut);
  t.match(dead.payload, /^ERR AUTH_REQUIRED /, 'a logged-out session stays logged out');
  t.equal(dead.session, 0n);

  // Groups, members and requests are intact.
  t.equal((await d.request('list_groups', zed)).payload, groupsBefore);
  t.equal((await d.request('list_members red', zed)).payload, 'OK 2\nolga role=owner\nzed role=member');
  t.equal((await d.request('list_requests red', olga)).payload, 'OK 2\namy\nbob', 'pending requests, oldest first');
  t.equal((await d.request('list_requests blue', bob)).payload, 'OK 1\nzed', 'the rejected request is gone');
  t.match((await d.request('join_group red', amy)).payload, /^ERR REQUEST_PENDING /);
  t.match((await d.request('join_group red', zed)).payload, /^ERR ALREADY_MEMBER /);
  t.match((await d.request('list_members gone', amy)).payload, /^ERR NO_SUCH_GROUP /, 'the deleted group stays deleted');

  // The users can log in (password hashes survived); names stay taken.
  for (const [user, pw] of [['olga', 'olga pw'], ['zed', 'zed-pw'], ['amy', 'amy-pw'], ['bob', 'bob-pw'], ['idle', 'idle-pw']]) {
    const r = await d.request(`login ${user} "${pw}"`);
    t.match(r.payload, new RegExp(`^OK logged in as ${user} sessions=\\d+$`), `${user} logs in`);
    t.not(r.session, 0n);
  }
  t.match((await d.request('login idle wrong')).payload, /^ERR INVALID_CREDENTIALS /);
  t.match((await d.request('create_user zed other')).payload, /^ERR USER_EXISTS /);

  // Writes carry on from the restored state: accepting after the restart.
  await expectAnswer(d, 'accept_request red bob', 'OK bob joined red', olga);
  t.equal(Number((await status(d))['seq']), Number(before['seq']) + 5 + 1, 'five logins and one accept after the restart');
  // Ownership order survived: zed joined red before bob.
  await expectAnswer(d, 'leave_group red', 'OK left red', olga);
  t.equal((await d.request('list_members red', bob)).payload, 'OK 2\nbob role=member\nzed role=owner');
});

t.test('SIGTERM with requests in flight: answered or closed cleanly, exit 0, acknowledged writes kept', async (t) => {
  // Slow writes (a real scrypt cost) and a small --max-pipeline: when SIGTERM arrives some
  // requests are being worked on and most are still unread.
  const first = await startTracker(t, { args: ['--max-pipeline', '8', '--scrypt-cost', '16384'] });
  const c = await open(t, first);
  const s = await signUp(c, 'writer');
  const watcher = await open(t, first);
  const seqBefore = Number((await status(watcher))['seq']);
  const N = 300;
  // Pipeline many writes, then stop the tracker once the first has been answered.
  const pending = Array.from({ length: N }, (_, i) => c.request(`create_user w${i} pw${i}`));
  const reads = Array.from({ length: 20 }, () => watcher.request('whoami', s));
  // Settled from the start: the unanswered ones reject when the connection closes.
  const settled = Promise.allSettled(pending);
  const readsSettled = Promise.allSettled(reads);
  await pending[0];
  const exit = await first.stop('SIGTERM');
  t.same(exit, { code: 0, signal: null }, 'exit code 0');

  const results = await settled;
  const acknowledged: number[] = [];
  let firstUnanswered = -1;
  for (let i = 0; i < N; i++) {
    const r = results[i] as PromiseSettledResult<Reply>;
    if (r.status === 'fulfilled') {
      if (firstUnanswered >= 0) t.fail(`request ${i} answered after request ${firstUnanswered} was not`);
      if (r.value.payload !== 'OK user created') t.fail(`w${i} answered ${r.value.payload}`);
      acknowledged.push(i);
    } else if (firstUnanswered < 0) {
      firstUnanswered = i;
    }
  }
  t.ok(acknowledged.length >= 1, 'the first write was acknowledged');
  t.comment(`${acknowledged.length} of ${N} pipelined writes acknowledged before the close`);
  for (const r of await readsSettled) {
    if (r.status === 'fulfilled') t.equal(r.value.payload, 'OK writer sessions=1');
  }
  t.ok(await settlesWithin(c.closed, 10_000), 'the connection was closed by the tracker');
  t.ok(await settlesWithin(watcher.closed, 10_000), 'and the other one too');
  t.notMatch(first.stderr(), /"level":(50|60)/, 'no error logged during the shutdown');

  const second = await first.restart();
  const d = await open(t, second);
  t.same(await d.request('whoami', s), { session: s, payload: 'OK writer sessions=1' }, 'the session survived');
  const seqAfter = Number((await status(d))['seq']);
  t.ok(seqAfter >= seqBefore + acknowledged.length && seqAfter <= seqBefore + N, `seq ${seqBefore} → ${seqAfter}`);
  // create_user of a taken name is refused before any hashing: a cheap existence check.
  const lost: number[] = [];
  for (const i of acknowledged) {
    const r = await d.request(`create_user w${i} other`);
    if (!r.payload.startsWith('ERR USER_EXISTS ')) lost.push(i);
  }
  t.same(lost, [], 'every acknowledged write is there');
  const last = acknowledged[acknowledged.length - 1] as number;
  t.match((await d.request(`login w${last} pw${last}`)).payload, new RegExp(`^OK logged in as w${last} sessions=1$`));
});

t.test('SIGTERM on an idle tracker exits 0, and a restart keeps the seq', async (t) => {
  const first = await startTracker(t);
  const c = await open(t, first);
  await signUp(c, 'quiet');
  const before = await status(c);
  t.same(await first.stop(), { code: 0, signal: null });
  await c.closed;
  const second = await first.restart();
  const d = await open(t, second);
  const after = await status(d);
  t.equal(after['seq'], before['seq']);
  t.equal(after['log_hash'], before['log_hash']);
});

t.test('a session expires after --session-ttl without activity', async (t) => {
  const ttl = 1500;
  const tracker = await startTracker(t, { args: ['--session-ttl', `${ttl}ms`, '--session-purge-interval', '200ms'] });
  const c = await open(t, tracker);
  await createUser(c, 'brief', 'pw');
  await createUser(c, 'other', 'pw');
  const s = await login(c, 'brief', 'pw');
  const loggedInAt = Date.now();
  t.same(await c.request('whoami', s), { session: s, payload: 'OK brief sessions=1' }, 'the session works');
  const seqAfterLogin = Number((await status(c))['seq']);

  // Time passing without activity on the session is the condition itself: nothing
  // to poll without touching the session (a whoami would extend it), so wait it out.
  await new Promise((resolve) => setTimeout(resolve, ttl + 700));

  const r = await c.request('whoami', s);
  t.match(r.payload, /^ERR AUTH_REQUIRED /, `expired after ${Date.now() - loggedInAt} ms`);
  t.equal(r.session, 0n, 'answered with session 0');
  t.same(await c.request('ping', s), { session: 0n, payload: 'OK PONG' }, 'an expired session is answered with 0 on any command');
  t.match((await c.request('create_group late', s)).payload, /^ERR AUTH_REQUIRED /);
  // The periodic purge writes a change (it uses status only, which does not touch any session).
  await waitFor(async () => Number((await status(c))['seq']) > seqAfterLogin, { message: 'the purge change' });
  const again = await c.request('login brief pw');
  t.equal(again.payload, 'OK logged in as brief sessions=1', 'the expired session is not counted');
  t.not(again.session, s);
});

t.test('activity extends a session past its TTL', async (t) => {
  const ttl = 2000;
  const tracker = await startTracker(t, { args: ['--session-ttl', `${ttl}ms`] });
  const c = await open(t, tracker);
  await createUser(c, 'busy', 'pw');
  const s = await login(c, 'busy', 'pw');
  const started = Date.now();
  let requests = 0;
  // A request every 300 ms for 3 s: the session never goes 2 s without activity.
  while (Date.now() - started < 3000) {
    const r = await c.request('whoami', s);
    requests++;
    if (r.payload !== 'OK busy sessions=1') {
      t.fail(`request ${requests} at ${Date.now() - started} ms: ${r.payload}`);
      break;
    }
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
  t.ok(requests >= 8, `${requests} requests over ${Date.now() - started} ms`);
  t.ok(Date.now() - started > ttl, 'longer than the TTL');
  t.same(await c.request('whoami', s), { session: s, payload: 'OK busy sessions=1' }, 'still alive after 1.5 × the TTL');
  t.same(await c.request('list_groups', s), { session: s, payload: 'OK 0' });
});

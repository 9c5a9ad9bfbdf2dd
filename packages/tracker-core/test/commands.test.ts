import { createHash } from 'node:crypto';
import t from 'tap';
import { encodeFrame } from '@tracker-cluster/protocol';
import { LogStore, Store, decodeChange, logPathFor } from '@tracker-cluster/tracker-core';
import { tempDb } from './fixtures/env.js';
import { dump, openLog } from './fixtures/state.js';
import { logIn, signUp, startTracker } from './fixtures/tracker.js';

t.test('every command answers exactly as PROTOCOL §3', async (t) => {
  const run = await startTracker(t);
  const a = await run.connect();
  const b = await run.connect();
  const c = await run.connect();

  t.same(await a.request('ping'), { text: 'OK PONG', session: 0n }, 'ping');
  const status = await a.text('status');
  t.match(status, /^OK role=primary epoch=1 seq=0 log_hash=0{64} replica=disconnected replica_seq=0( |$)/, 'status on a fresh primary');
  t.notMatch(status, /\n/, 'status is one line');

  t.same(await a.request('create_user alice pw-alice'), { text: 'OK user created', session: 0n }, 'create_user');
  const login = await a.request('login alice pw-alice');
  t.equal(login.text, 'OK logged in as alice sessions=1', 'login');
  t.not(login.session, 0n, 'the login frame carries the new session id');
  const sa = login.session;
  t.same(await a.request('whoami', sa), { text: 'OK alice sessions=1', session: sa }, 'whoami, answered on the same session');
  t.same(await a.request('create_group g', sa), { text: 'OK group created', session: sa }, 'create_group');
  t.equal(await a.text('list_groups', sa), 'OK 1\ng owner=alice members=1', 'list_groups');
  t.equal(await a.text('list_members g', sa), 'OK 1\nalice role=owner', 'the creator is owner and first member');
  t.equal(await a.text('list_requests g', sa), 'OK 0', 'an empty list is OK 0');

  const sb = await signUp(b, 'bob');
  const sc = await signUp(c, 'carol');
  t.equal(await b.text('join_group g', sb), 'OK request sent', 'join_group');
  t.equal(await c.text('join_group g', sc), 'OK request sent');
  t.equal(await a.text('list_requests g', sa), 'OK 2\nbob\ncarol', 'list_requests, oldest first');
  t.equal(await a.text('accept_request g bob', sa), 'OK bob joined g', 'accept_request');
  t.equal(await a.text('reject_request g carol', sa), 'OK request rejected', 'reject_request');
  t.equal(await a.text('list_requests g', sa), 'OK 0');
  t.equal(await b.text('list_members g', sb), 'OK 2\nalice role=owner\nbob role=member', 'list_members, by name, with roles');
  t.equal(await c.text('create_group a-team', sc), 'OK group created');
  t.equal(await b.text('list_groups', sb), 'OK 2\na-team owner=carol members=1\ng owner=alice members=2', 'list_groups, by name');
  t.equal(await a.text('leave_group g', sa), 'OK left g', 'leave_group');
  t.equal(await b.text('list_members g', sb), 'OK 1\nbob role=owner', 'ownership passed on');
  t.equal(await b.text('list_groups', sb), 'OK 2\na-team owner=carol members=1\ng owner=bob members=1', 'the cached list follows the change');
  t.same(await a.request('logout', sa), { text: 'OK logged out sessions=0', session: 0n }, 'logout; the session field is 0');

  // Quoting: a password with spaces and an escaped quote.
  t.equal(await c.text('create_user dan "two words \\" and a quote"'), 'OK user created');
  const dan = await c.request('login "dan" "two words \\" and a quote"');
  t.equal(dan.text, 'OK logged in as dan sessions=1', 'quoted arguments');
  t.equal(await c.text('login\tdan\t"two words \\" and a quote"'), 'OK logged in as dan sessions=2', 'tabs separate words too');

  // Case-insensitive command names.
  t.equal(await c.text('PING'), 'OK PONG');
  t.equal(await c.text('WhoAmI', dan.session), 'OK dan sessions=2');
  t.equal((await c.request('LOGIN bob pw-bob')).text, 'OK logged in as bob sessions=2');
  t.equal(await c.text('ping\n'), 'OK PONG', 'one trailing newline is allowed');
  t.equal(await c.text('ping\r\n'), 'OK PONG', 'so is CRLF');

  // The status line tracks the log; its hash follows the definition over the stored log.
  const final = await a.text('status');
  const seq = Number(/ seq=(\d+)/.exec(final)?.[1]);
  const logHash = /log_hash=([0-9a-f]{64})/.exec(final)?.[1];
  await run.stop();

  const store = Store.open(run.dbPath);
  t.teardown(() => store.close());
  const logStore = LogStore.open(logPathFor(run.dbPath));
  t.teardown(() => logStore.close());
  const texts = logStore.after(0, 100_000).map((r) => r.change);
  t.equal(texts.length, seq, 'status seq = number of logged changes');
  t.same(texts.map((x) => decodeChange(x).seq), Array.from({ length: seq }, (_, i) => i + 1), 'seq has no gaps');
  let h = Buffer.alloc(32);
  for (const text of texts) h = createHash('sha256').update(h).update(text).digest();
  t.equal(logHash, h.toString('hex'), 'status log_hash = SHA-256 chain over the log');
  t.same(logStore.head(), { seq, hash: logHash }, 'the log file records the head the status showed');
  t.equal(store.getMeta('seq'), String(seq), 'close() committed the state file up to it');
  t.equal(store.getMeta('log_hash'), logHash);

  // Determinism on a history made by the real handlers: replay it into a fresh file.
  const copy = await openLog(t, {}, await tempDb(t, 'replay.db'));
  for (const text of texts) copy.log.applyOne(decodeChange(text));
  await copy.log.drain();
  t.equal(copy.log.seq, seq);
  t.equal(copy.log.logHash, logHash, 'the replay reaches the same log_hash');
  t.same(dump(copy.store.db), dump(store.db), 'and the same tables, session ids and password hashes included');
  t.ok(
    texts.some((x) => decodeChange(x).body.type === 'user_created' && x.includes('"params":"scrypt:N=1024')),
    'password hashes travel in the change',
  );
});

t.test('every error code a client can reach', async (t) => {
  const run = await startTracker(t);
  const a = await run.connect();
  const b = await run.connect();
  const c = await run.connect();
  const sa = await signUp(a, 'alice');
  const sb = await signUp(b, 'bob');
  const sc = await signUp(c, 'carol');
  t.equal(await a.text('create_group g', sa), 'OK group created');
  t.equal(await b.text('join_group g', sb), 'OK request sent');
  t.equal(await a.text('accept_request g bob', sa), 'OK bob joined g');

  const code = async (client: typeof a, line: string | Buffer, session = 0n): Promise<string> => {
    const answer = await client.request(line, session);
    return /^ERR ([A-Z_]+)/.exec(answer.text)?.[1] ?? answer.text;
  };

  await t.test('BAD_REQUEST', async (t) => {
    for (const [line, why] of [
      ['login alice', 'too few arguments'],
      ['login alice pw x', 'too many arguments'],
      ['ping now', 'ping takes none'],
      ['create_user "bad name" pw', 'a space in a name'],
      ['create_user a/b pw', 'a slash in a name'],
      [`create_user ${'x'.repeat(33)} pw`, 'a 33-character name'],
      ['create_user "" pw', 'an empty name'],
      [`create_user xavier ${'p'.repeat(257)}`, 'a 257-character password'],
      ['create_user xavier ""', 'an empty password'],
      ['login "alice pw-alice', 'an unterminated quote'],
      ['', 'an empty request'],
      ['   ', 'only spaces'],
      ['ping\nping', 'two lines'],
      ['ping\r', 'a bare CR at the end'],
      ['ping\rping', 'a bare CR inside'],
      ['ping\n\n', 'two line breaks at the end'],
      ['ping\r\n\r\n', 'two CRLFs at the end'],
    ] as const) {
      t.equal(await code(a, line), 'BAD_REQUEST', why);
    }
    t.equal(await code(a, 'create_group "a b"', sa), 'BAD_REQUEST', 'an invalid group name');
    t.equal(await code(a, 'accept_request g b/x', sa), 'BAD_REQUEST', 'an invalid user name');
    const withSession = await a.request('whoami extra', sa);
    t.match(withSession.text, /^ERR BAD_REQUEST usage: whoami$/, 'the message gives the usage');
    t.equal(withSession.session, sa, 'an error answer keeps the valid session');
    t.equal(await code(a, Buffer.from([0x70, 0x69, 0x6e, 0x67, 0xff])), 'BAD_REQUEST', 'a non-UTF-8 payload');
    t.equal(await code(a, Buffer.from([0xc3, 0x28])), 'BAD_REQUEST', 'an invalid UTF-8 sequence');
    t.match((await a.request(Buffer.from([0x70, 0x0a, 0xff, 0x0a]))).text, /^ERR BAD_REQUEST payload is not valid UTF-8/, 'not UTF-8 is said first, before a second line');
    t.match((await a.request('ping\n\u00e9')).text, /^ERR BAD_REQUEST a request is one line/, 'a second line of valid UTF-8');
    t.equal(await a.text('ping'), 'OK PONG', 'the connection stays open');
    t.notOk(a.isEnded);
  });

  await t.test('UNKNOWN_COMMAND', async (t) => {
    const answer = await a.request('frobnicate x y', sa);
    t.match(answer.text, /^ERR UNKNOWN_COMMAND .*frobnicate/);
    t.equal(answer.session, sa);
    t.equal(await code(a, 'pin'), 'UNKNOWN_COMMAND');
    t.equal(await code(a, '"ping pong"'), 'UNKNOWN_COMMAND', 'a quoted name is one word');
  });

  await t.test('AUTH_REQUIRED', async (t) => {
    for (const line of ['logout', 'whoami', 'create_group h', 'join_group g', 'leave_group g', 'list_requests g', 'accept_request g bob', 'reject_request g bob', 'list_groups', 'list_members g']) {
      const answer = await a.request(line);
      t.match(answer.text, /^ERR AUTH_REQUIRED /, `${line} without a session`);
      t.equal(answer.session, 0n, `${line}: session 0`);
    }
    const unknown = await a.request('whoami', 0x1234_5678_9abc_def0n);
    t.match(unknown.text, /^ERR AUTH_REQUIRED /, 'an unknown session');
    t.equal(unknown.session, 0n, 'the response session is 0 for an unknown session');
    t.same(await a.request('ping', 0xfeed_facen), { text: 'OK PONG', session: 0n }, 'even on a command that needs no session');
    const other = await a.request('login alice pw-alice');
    t.equal((await a.request('logout', other.session)).session, 0n);
    const gone = await a.request('whoami', other.session);
    t.match(gone.text, /^ERR AUTH_REQUIRED /, 'a logged-out session');
    t.equal(gone.session, 0n);
  });

  await t.test('FORBIDDEN: SYNC: payloads on a client connection', async (t) => {
    for (const line of ['SYNC:HELLO 1 abc', 'SYNC: anything', 'SYNC:']) {
      const answer = await a.request(line, sa);
      t.match(answer.text, /^ERR FORBIDDEN /, line);
      t.equal(answer.session, sa);
    }
    t.equal(await code(a, 'SYNC:APPLY 1'), 'FORBIDDEN', 'with no session either');
    t.equal(await a.text('ping'), 'OK PONG', 'the connection stays open');
  });

  await t.test('the order of checks (docs/protocol.md §2)', async (t) => {
    t.equal(await code(a, '"unterminated'), 'BAD_REQUEST', 'quoting before the command name');
    t.equal(await code(a, 'frobnicate'), 'UNKNOWN_COMMAND', 'the command name before the session');
    t.equal(await code(a, 'whoami x y'), 'AUTH_REQUIRED', 'the session before the argument count');
    t.equal(await code(a, 'create_group', sa), 'BAD_REQUEST', 'the argument count before anything the handler checks');
    t.equal(await code(c, 'join_group "no such"', sc), 'BAD_REQUEST', 'argument syntax before state');
    t.equal(await code(c, 'accept_request nope bob', sc), 'NO_SUCH_GROUP', 'a missing group before any role check');
    t.equal(await code(c, 'accept_request g nobody', sc), 'NOT_OWNER', 'the owner check before the request check');
    t.equal(await code(c, 'login alice "unterminated', sc), 'BAD_REQUEST', 'a bad login line is BAD_REQUEST even with a session');
  });

  await t.test('ALREADY_LOGGED_IN', async (t) => {
    const answer = await a.request('login bob pw-bob', sa);
    t.match(answer.text, /^ERR ALREADY_LOGGED_IN /);
    t.equal(answer.session, sa, 'the valid session stays the one to use');
  });

  await t.test('USER_EXISTS', async (t) => {
    t.equal(await code(a, 'create_user alice other'), 'USER_EXISTS');
    t.equal(await code(a, 'create_user alice pw-alice'), 'USER_EXISTS');
  });

  await t.test('INVALID_CREDENTIALS: the same answer for an unknown user and a wrong password', async (t) => {
    const d = await run.connect();
    const wrong = await d.request('login alice nope');
    const unknown = await d.request('login nobody pw-alice');
    t.match(wrong.text, /^ERR INVALID_CREDENTIALS /);
    t.equal(unknown.text, wrong.text, 'identical text');
    t.equal(wrong.session, 0n);
    t.equal(unknown.session, 0n);
  });

  await t.test('group errors', async (t) => {
    t.equal(await code(a, 'create_group g', sa), 'GROUP_EXISTS');
    t.equal(await code(c, 'create_group g', sc), 'GROUP_EXISTS', 'for anyone');
    for (const line of ['join_group nope', 'leave_group nope', 'list_members nope', 'list_requests nope', 'accept_request nope bob', 'reject_request nope bob']) {
      t.equal(await code(a, line, sa), 'NO_SUCH_GROUP', line);
    }
    t.equal(await code(b, 'list_requests g', sb), 'NOT_OWNER', 'list_requests by a member');
    t.equal(await c.text('join_group g', sc), 'OK request sent', 'carol asks to join');
    t.equal(await code(b, 'accept_request g carol', sb), 'NOT_OWNER', 'accept_request by a member');
    t.equal(await code(c, 'reject_request g carol', sc), 'NOT_OWNER', 'reject_request by a non-member');
    t.equal(await code(c, 'list_members g', sc), 'NOT_MEMBER', 'list_members by a non-member');
    t.equal(await code(c, 'leave_group g', sc), 'NOT_MEMBER', 'leave_group by a non-member');
    t.equal(await code(b, 'join_group g', sb), 'ALREADY_MEMBER', 'join_group by a member');
    t.equal(await code(a, 'join_group g', sa), 'ALREADY_MEMBER', 'join_group by the owner');
    t.equal(await code(c, 'join_group g', sc), 'REQUEST_PENDING', 'a second request while one is pending');
    t.equal(await code(a, 'accept_request g dave', sa), 'NO_SUCH_REQUEST', 'accepting a request nobody made');
    t.equal(await code(a, 'reject_request g bob', sa), 'NO_SUCH_REQUEST', 'rejecting a member');
    t.equal(await a.text('reject_request g carol', sa), 'OK request rejected');
    t.equal(await code(a, 'accept_request g carol', sa), 'NO_SUCH_REQUEST', 'a request is answered once');
  });
});

t.test('RATE_LIMITED: failed logins per user and per connection', async (t) => {
  const run = await startTracker(t, { maxLoginFailures: 3, loginWindowMs: 60_000 });
  const setup = await run.connect();
  t.equal(await setup.text('create_user alice right'), 'OK user created');
  t.equal(await setup.text('create_user bob right'), 'OK user created');
  for (let i = 0; i < 3; i++) {
    const c = await run.connect(); // one failure per connection: only the user key fills up
    t.match(await c.text('login alice wrong'), /^ERR INVALID_CREDENTIALS /, `failure ${i + 1}`);
  }
  const d = await run.connect();
  const limited = await d.request('login alice right');
  t.match(limited.text, /^ERR RATE_LIMITED .*try again in 60 s/, 'even the right password is refused for that user');
  t.equal(limited.session, 0n);
  t.equal((await d.request('login bob right')).text, 'OK logged in as bob sessions=1', 'other users are not affected');
  run.clock.advance(59_999);
  t.match(await d.text('login alice right'), /^ERR RATE_LIMITED .*try again in 1 s/);
  run.clock.advance(1);
  t.equal(await d.text('login alice right'), 'OK logged in as alice sessions=1', 'allowed again once the window has passed');

  const e = await run.connect();
  for (const user of ['u1', 'u2', 'u3']) t.match(await e.text(`login ${user} x`), /^ERR INVALID_CREDENTIALS /);
  t.match(await e.text('login bob right'), /^ERR RATE_LIMITED /, 'three failures on one connection block it, whatever the user');
  t.equal(await (await run.connect()).text('login bob right'), 'OK logged in as bob sessions=2', 'another connection is fine');
  t.equal(await e.text('ping'), 'OK PONG', 'the blocked connection stays open for other commands');
});

t.test('RATE_LIMITED: requests per connection', async (t) => {
  const run = await startTracker(t, { rateLimit: 3 });
  const c = await run.connect();
  const ping = encodeFrame(0n, 'ping');
  c.sendRaw(Buffer.concat(Array.from({ length: 6 }, () => ping))); // one burst
  const answers: string[] = [];
  for (let i = 0; i < 6; i++) answers.push((await c.response()).text);
  t.same(answers.slice(0, 3), ['OK PONG', 'OK PONG', 'OK PONG'], 'the burst allowance is answered');
  for (const answer of answers.slice(3)) t.match(answer, /^ERR RATE_LIMITED /, 'the rest is refused, still one answer each');
  t.equal(answers.length, 6);
  const other = await run.connect();
  t.equal(await other.text('ping'), 'OK PONG', 'the limit is per connection');
  // The bucket refills with time: poll until a ping passes again (deadline, not a sleep).
  const deadline = Date.now() + 5000;
  let text = '';
  while (Date.now() < deadline && text !== 'OK PONG') text = await c.text('ping');
  t.equal(text, 'OK PONG', 'the same connection is served again after a while');
  t.notOk(c.isEnded, 'rate limiting does not close the connection');
});

t.test('login with a frame carrying an unknown session logs in afresh', async (t) => {
  const run = await startTracker(t);
  const a = await run.connect();
  const first = await signUp(a, 'alice');
  const fresh = await a.request('login alice pw-alice', 0xabcdefn);
  t.equal(fresh.text, 'OK logged in as alice sessions=2');
  t.not(fresh.session, 0n);
  t.not(fresh.session, first);
  await logIn(a, 'alice');
});

t.test('QUOTA_EXCEEDED past --max-groups-per-user: the groups a user owns, inherited ones included', async (t) => {
  const run = await startTracker(t, { maxGroupsPerUser: 2 });
  const a = await run.connect();
  const alice = await signUp(a, 'alice');
  const bob = await signUp(a, 'bob');
  t.equal(await a.text('create_group a1', alice), 'OK group created');
  t.equal(await a.text('create_group a2', alice), 'OK group created');
  const seq = (await a.text('status')).match(/ seq=(\d+)/)?.[1];
  t.equal(await a.text('create_group a3', alice), 'ERR QUOTA_EXCEEDED you already own 2 groups and a user may own at most 2; leave one first');
  t.match(await a.text('create_group a1', alice), /^ERR GROUP_EXISTS /, 'a taken name is GROUP_EXISTS first');
  t.equal((await a.text('status')).match(/ seq=(\d+)/)?.[1], seq, 'a refusal changes nothing');
  t.equal(await a.text('list_groups', alice), 'OK 2\na1 owner=alice members=1\na2 owner=alice members=1');
  t.equal(await a.text('create_group b1', bob), 'OK group created', 'the limit is per user');

  // Membership does not count: bob joins alice's groups and may still create his second.
  t.equal(await a.text('join_group a1', bob), 'OK request sent');
  t.equal(await a.text('accept_request a1 bob', alice), 'OK bob joined a1');
  t.equal(await a.text('create_group b2', bob), 'OK group created');
  // Inherited ownership is never refused, but counts: bob owns 3 when alice leaves a1.
  t.equal(await a.text('leave_group a1', alice), 'OK left a1');
  t.equal(await a.text('create_group b3', bob), 'ERR QUOTA_EXCEEDED you already own 3 groups and a user may own at most 2; leave one first');
  t.equal(await a.text('create_group a3', alice), 'OK group created', "alice's ownership passed on: she has room again");
  // Leaving a group you own with nobody left deletes it, and frees its place.
  t.equal(await a.text('leave_group b1', bob), 'OK left b1');
  t.equal(await a.text('leave_group b2', bob), 'OK left b2');
  t.equal(await a.text('create_group b3', bob), 'OK group created');
});

t.test('--max-groups-per-user 1 and 0: the message reads right', async (t) => {
  const one = await startTracker(t, { maxGroupsPerUser: 1 });
  const a = await one.connect();
  const s = await signUp(a, 'alice');
  t.equal(await a.text('create_group g', s), 'OK group created');
  t.equal(await a.text('create_group h', s), 'ERR QUOTA_EXCEEDED you already own 1 group and a user may own at most 1; leave one first');
  const none = await startTracker(t, { maxGroupsPerUser: 0 });
  const b = await none.connect();
  t.equal(await b.text('create_group g', await signUp(b, 'bob')), 'ERR QUOTA_EXCEEDED this tracker lets no user create groups (--max-groups-per-user 0)');
});

t.test('QUOTA_EXCEEDED past --max-requests-per-user: pending join requests, across groups', async (t) => {
  const run = await startTracker(t, { maxRequestsPerUser: 2 });
  const a = await run.connect();
  const owner = await signUp(a, 'owner');
  const carol = await signUp(a, 'carol');
  for (const g of ['g1', 'g2', 'g3', 'g4']) t.equal(await a.text(`create_group ${g}`, owner), 'OK group created');
  t.equal(await a.text('join_group g1', carol), 'OK request sent');
  t.equal(await a.text('join_group g2', carol), 'OK request sent');
  t.equal(await a.text('join_group g3', carol), 'ERR QUOTA_EXCEEDED you already have 2 pending join requests and a user may have at most 2; wait until an owner accepts or rejects one');
  t.match(await a.text('join_group g1', carol), /^ERR REQUEST_PENDING /, 'a repeated request is REQUEST_PENDING first');
  t.equal(await a.text('list_requests g3', owner), 'OK 0', 'the refused request is not pending');
  t.equal(await a.text('join_group g3', await signUp(a, 'dave')), 'OK request sent', 'the limit is per user');

  // An answer frees a place, an accept as a reject, and so does the group's deletion.
  t.equal(await a.text('accept_request g1 carol', owner), 'OK carol joined g1');
  t.equal(await a.text('join_group g3', carol), 'OK request sent');
  t.match(await a.text('join_group g4', carol), /^ERR QUOTA_EXCEEDED /);
  t.equal(await a.text('reject_request g2 carol', owner), 'OK request rejected');
  t.equal(await a.text('join_group g4', carol), 'OK request sent');
  t.match(await a.text('join_group g2', carol), /^ERR QUOTA_EXCEEDED /);
  t.equal(await a.text('leave_group g4', owner), 'OK left g4', 'g4 had one member: it is deleted with its requests');
  t.equal(await a.text('join_group g2', carol), 'OK request sent');
});

t.test('--max-requests-per-user 1 and 0: the message reads right', async (t) => {
  const one = await startTracker(t, { maxRequestsPerUser: 1 });
  const a = await one.connect();
  const owner = await signUp(a, 'owner');
  const bob = await signUp(a, 'bob');
  t.equal(await a.text('create_group g', owner), 'OK group created');
  t.equal(await a.text('create_group h', owner), 'OK group created');
  t.equal(await a.text('join_group g', bob), 'OK request sent');
  t.equal(await a.text('join_group h', bob), 'ERR QUOTA_EXCEEDED you already have 1 pending join request and a user may have at most 1; wait until an owner accepts or rejects one');
  const none = await startTracker(t, { maxRequestsPerUser: 0 });
  const b = await none.connect();
  const o = await signUp(b, 'owner');
  t.equal(await b.text('create_group g', o), 'OK group created');
  t.equal(await b.text('join_group g', await signUp(b, 'bob')), 'ERR QUOTA_EXCEEDED this tracker lets no user ask to join groups (--max-requests-per-user 0)');
});

t.test('the per-user counts survive a restart (the state is read back with its indexes)', async (t) => {
  const run = await startTracker(t, { maxGroupsPerUser: 1, maxRequestsPerUser: 1 });
  const a = await run.connect();
  const alice = await signUp(a, 'alice');
  const bob = await signUp(a, 'bob');
  t.equal(await a.text('create_group g', alice), 'OK group created');
  t.equal(await a.text('create_group h', bob), 'OK group created');
  t.equal(await a.text('join_group h', alice), 'OK request sent');
  await run.stop();
  const again = await startTracker(t, { dbPath: run.dbPath, maxGroupsPerUser: 1, maxRequestsPerUser: 1 }, run.clock);
  const b = await again.connect();
  t.match(await b.text('create_group g2', alice), /^ERR QUOTA_EXCEEDED you already own 1 group /);
  t.equal(await b.text('create_group i', bob), 'ERR QUOTA_EXCEEDED you already own 1 group and a user may own at most 1; leave one first');
  t.equal(await b.text('join_group h', bob), 'ERR ALREADY_MEMBER you are already a member of h');
  t.match(await b.text('join_group g', bob), /^OK request sent$/);
  t.match(await b.text('join_group g', alice), /^ERR ALREADY_MEMBER /);
  t.equal(await b.text('create_group k', await signUp(b, 'carol')), 'OK group created');
  t.match(await b.text('join_group k', alice), /^ERR QUOTA_EXCEEDED you already have 1 pending join request /);
});

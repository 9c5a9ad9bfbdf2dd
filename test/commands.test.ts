/**
 * Every client command of PROTOCOL.md §3 against the real tracker-primary
 * process over TCP: exact success answers, every error code reachable
 * without a replica, the group rules, quoting, sessions, pipelining and
 * `status`. Checks follow PROTOCOL.md and docs/protocol.md (order of checks,
 * error table, rate limits).
 *
 * One tracker is shared by the subtests that need no special options; each
 * subtest uses its own user and group names so that they do not interact.
 */
import t from 'tap';
import { encodeFrame } from '@tracker-cluster/protocol';
import { startTracker } from './helpers/tracker.js';
import type { RunningTracker, TeardownHost } from './helpers/tracker.js';
import { connect } from './helpers/wire.js';
import type { Reply, WireClient } from './helpers/wire.js';
import { createUser, expectAnswer, login, parseList, send, signUp, status } from './helpers/commands.js';

const HEX64 = /^[0-9a-f]{64}$/;
const CREDENTIALS = 'ERR INVALID_CREDENTIALS unknown user or wrong password';

/** The error code of an answer, or undefined for OK answers. */
function codeOf(reply: Reply): string | undefined {
  return /^ERR ([A-Z_]+)(?: |$)/.exec(reply.payload)?.[1];
}

function text(f: { payload: Buffer }): string {
  return f.payload.toString('utf8');
}

const shared: RunningTracker = await startTracker(t);

async function client(t: TeardownHost, port = shared.port): Promise<WireClient> {
  const c = await connect(port);
  t.teardown(() => c.close());
  return c;
}

t.test('ping, status and case-insensitive command names', async (t) => {
  const c = await client(t);
  t.same(await c.request('ping'), { session: 0n, payload: 'OK PONG' });
  t.equal((await c.request('PING')).payload, 'OK PONG');
  t.equal((await c.request('Ping')).payload, 'OK PONG');
  t.equal((await c.request('  ping\t')).payload, 'OK PONG', 'blanks around the words are separators');
  t.equal((await c.request('ping\n')).payload, 'OK PONG', 'one trailing newline is tolerated');
  t.equal((await c.request('ping\r\n')).payload, 'OK PONG', 'one trailing CRLF is tolerated');

  const st = await status(c);
  t.equal(st['role'], 'primary');
  t.match(st['epoch'], /^\d+$/);
  t.match(st['seq'], /^\d+$/);
  t.match(st['log_hash'], HEX64);
  t.equal(st['replica'], 'disconnected');
  t.equal(st['replica_seq'], '0');
  t.match((await c.request('STATUS')).payload, /^OK role=primary epoch=\d+ seq=\d+ log_hash=[0-9a-f]{64} replica=disconnected replica_seq=0/);

  await createUser(c, 'casey', 'pw-casey');
  const login1 = await c.request('LOGIN casey pw-casey');
  t.equal(login1.payload, 'OK logged in as casey sessions=1');
  const s = login1.session;
  t.equal((await c.request('WhoAmI', s)).payload, 'OK casey sessions=1');
  t.equal((await c.request('Create_Group CaseG', s)).payload, 'OK group created');
  t.equal((await c.request('LIST_GROUPS', s)).payload.split('\n').includes('CaseG owner=casey members=1'), true);
  t.equal((await c.request('LIST_MEMBERS CaseG', s)).payload, 'OK 1\ncasey role=owner');
  t.same(await c.request('LogOut', s), { session: 0n, payload: 'OK logged out sessions=0' });
  t.equal(codeOf(await c.request('list_groups', s)), 'AUTH_REQUIRED');
});

t.test('create_user, login, whoami, logout: exact answers', async (t) => {
  const c = await client(t);
  t.same(await c.request('create_user alice pw-alice'), { session: 0n, payload: 'OK user created' });
  const r = await c.request('login alice pw-alice');
  t.equal(r.payload, 'OK logged in as alice sessions=1');
  t.not(r.session, 0n, 'the login answer carries a session');
  t.same(await c.request('whoami', r.session), { session: r.session, payload: 'OK alice sessions=1' });
  t.same(await c.request('ping', r.session), { session: r.session, payload: 'OK PONG' }, 'a valid session is echoed');
  t.same(await c.request('logout', r.session), { session: 0n, payload: 'OK logged out sessions=0' });
  const gone = await c.request('whoami', r.session);
  t.equal(codeOf(gone), 'AUTH_REQUIRED', 'a logged-out session is refused');
  t.equal(gone.session, 0n, 'and answered with session 0');
  t.equal(codeOf(await c.request('logout', r.session)), 'AUTH_REQUIRED', 'logging out twice');
});

t.test('two sessions of one user are independent', async (t) => {
  const a = await client(t);
  const b = await client(t);
  await createUser(a, 'twin', 'pw-twin');
  const r1 = await a.request('login twin pw-twin');
  t.equal(r1.payload, 'OK logged in as twin sessions=1');
  const r2 = await b.request('login twin pw-twin');
  t.equal(r2.payload, 'OK logged in as twin sessions=2');
  const s1 = r1.session;
  const s2 = r2.session;
  t.not(s1, 0n);
  t.not(s2, 0n);
  t.not(s1, s2, 'two logins get two different session ids');
  const r3 = await a.request('login twin pw-twin');
  t.equal(r3.payload, 'OK logged in as twin sessions=3', 'a third one, on the same connection');
  t.not(r3.session, s1);
  t.not(r3.session, s2);

  t.same(await a.request('whoami', s1), { session: s1, payload: 'OK twin sessions=3' });
  t.same(await b.request('whoami', s2), { session: s2, payload: 'OK twin sessions=3' });
  // A session is not tied to the connection it was opened on.
  t.same(await a.request('whoami', s2), { session: s2, payload: 'OK twin sessions=3' });

  t.same(await a.request('logout', r3.session), { session: 0n, payload: 'OK logged out sessions=2' });
  t.same(await a.request('logout', s1), { session: 0n, payload: 'OK logged out sessions=1' });
  const gone = await a.request('whoami', s1);
  t.equal(codeOf(gone), 'AUTH_REQUIRED');
  t.equal(gone.session, 0n);
  t.same(await b.request('whoami', s2), { session: s2, payload: 'OK twin sessions=1' }, 'the other session lives on');
  t.equal((await b.request('create_group twinG', s2)).payload, 'OK group created');
  t.same(await b.request('logout', s2), { session: 0n, payload: 'OK logged out sessions=0' });
});

t.test('session ids are non-zero, distinct and not a counter', async (t) => {
  const c = await client(t);
  await createUser(c, 'many', 'pw-many');
  const ids: bigint[] = [];
  for (let i = 0; i < 8; i++) ids.push(await login(c, 'many', 'pw-many'));
  t.equal(new Set(ids).size, ids.length, 'all different');
  t.ok(ids.every((id) => id !== 0n));
  const steps = new Set(ids.slice(1).map((id, i) => id - (ids[i] as bigint)));
  t.ok(steps.size > 1, 'not a constant step');
  t.ok(ids.some((id) => id > 1n << 32n), 'use more than 32 bits');
});

t.test('quoted arguments', async (t) => {
  const c = await client(t);
  t.equal((await c.request('create_user quoted "pass word"')).payload, 'OK user created');
  t.equal(codeOf(await c.request('login quoted pass word')), 'BAD_REQUEST', 'unquoted, it is three arguments');
  t.equal((await c.request('login quoted "pass word"')).payload, 'OK logged in as quoted sessions=1');
  t.equal((await c.request('login "quoted" pass" "word')).payload, 'OK logged in as quoted sessions=2', 'touching parts form one word');
  t.equal((await c.request('login quoted "pass  word"')).payload, CREDENTIALS, 'the spaces are kept exactly');

  t.equal((await c.request('create_user esc "a\\"b\\\\c d"')).payload, 'OK user created');
  t.equal((await send(c, ['login', 'esc', 'a"b\\c d'])).payload, 'OK logged in as esc sessions=1', '\\" and \\\\ are escapes');
  t.equal((await c.request('create_user tabby "x\ty"')).payload, 'OK user created');
  t.equal((await c.request('login\ttabby\t"x\ty"')).payload, 'OK logged in as tabby sessions=1', 'tabs separate words');
  t.equal((await c.request('create_user back a\\b')).payload, 'OK user created');
  t.equal((await c.request('login back "a\\b"')).payload, 'OK logged in as back sessions=1', 'a backslash before another character is kept');
});

t.test('BAD_REQUEST: arguments, names, passwords, quoting, UTF-8, lines', async (t) => {
  const c = await client(t);
  await createUser(c, 'bob', 'pw-bob');
  const s = await login(c, 'bob', 'pw-bob');
  const bad: Array<[string, bigint]> = [
    ['ping extra', 0n],
    ['status now', 0n],
    ['create_user', 0n],
    ['create_user onlyname', 0n],
    ['create_user a b c', 0n],
    ['login bob', 0n],
    ['login bob pw-bob extra', 0n],
    ['whoami now', s],
    ['logout now', s],
    ['create_group', s],
    ['create_group g1 g2', s],
    ['join_group', s],
    ['leave_group', s],
    ['list_requests', s],
    ['accept_request g', s],
    ['reject_request g', s],
    ['reject_request g u v', s],
    ['list_groups all', s],
    ['list_members', s],
    // invalid names
    ['create_user bad/name pw', 0n],
    ['create_user "a b" pw', 0n],
    [`create_user ${'x'.repeat(33)} pw`, 0n],
    ['create_user "" pw', 0n],
    ['create_user héllo pw', 0n],
    ['login bad/name pw', 0n],
    ['create_group bad/name', s],
    [`create_group ${'g'.repeat(33)}`, s],
    ['join_group "no spaces"', s],
    ['list_members a:b', s],
    // passwords: 1-256 characters
    ['create_user pwempty ""', 0n],
    [`create_user pwlong ${'p'.repeat(257)}`, 0n],
    ['login bob ""', 0n],
    // quoting
    ['create_user q "unterminated', 0n],
    ['login bob "pw-bob', 0n],
    ['"', 0n],
    // lines
    ['ping\nping', 0n],
    ['ping\n\n', 0n],
    ['ping\rping', 0n],
    ['', 0n],
    ['   \t ', 0n],
  ];
  for (const [payload, session] of bad) {
    const r = await c.request(payload, session);
    t.equal(codeOf(r), 'BAD_REQUEST', `${JSON.stringify(payload.slice(0, 60))} → ${r.payload}`);
    t.equal(r.session, session, 'the session field is the request one');
  }
  t.match((await c.request('create_user onlyname')).payload, /^ERR BAD_REQUEST usage: /, 'argument count: usage message');

  // Boundaries that are fine.
  t.equal((await c.request(`create_user ${'n'.repeat(32)} ${'p'.repeat(256)}`)).payload, 'OK user created', '32-char name, 256-char password');
  t.equal((await c.request('create_user A-z_0.9 p')).payload, 'OK user created', 'every allowed name character, 1-char password');
  t.equal((await c.request(`login ${'n'.repeat(32)} ${'p'.repeat(256)}`)).payload, 'OK logged in as ' + 'n'.repeat(32) + ' sessions=1');

  // Non-UTF-8 payloads: BAD_REQUEST, and the connection stays usable.
  for (const bytes of [[0xff, 0xfe], [0x70, 0x69, 0x6e, 0x67, 0x20, 0xc3], [0xc0, 0xaf], [0xed, 0xa0, 0x80]]) {
    c.sendRaw(encodeFrame(s, Buffer.from(bytes)));
    const frame = await c.nextFrame();
    t.match(frame.payload.toString('utf8'), /^ERR BAD_REQUEST /, `bytes ${Buffer.from(bytes).toString('hex')}`);
    t.equal(frame.session, s);
  }
  t.equal((await c.request('whoami', s)).payload, 'OK bob sessions=1', 'the connection is still usable');
  t.equal((await c.request('ping')).payload, 'OK PONG');
  t.notOk(c.isClosed);
});

t.test('UNKNOWN_COMMAND, and the order of checks', async (t) => {
  const c = await client(t);
  await createUser(c, 'carol', 'pw-carol');
  const s = await login(c, 'carol', 'pw-carol');
  for (const payload of ['frobnicate', 'pingg', 'ping_', 'delete_user carol', 'HELLO world']) {
    const r = await c.request(payload);
    t.equal(codeOf(r), 'UNKNOWN_COMMAND', `${payload} → ${r.payload}`);
  }
  t.same((await c.request('frobnicate', s)).session, s);
  // docs/protocol.md order: quoting, SYNC:, command name, session, argument count, argument syntax, state.
  t.equal(codeOf(await c.request('frobnicate "x')), 'BAD_REQUEST', 'quoting before the command name');
  t.equal(codeOf(await c.request('frobnicate a b c d')), 'UNKNOWN_COMMAND', 'command name before arguments');
  t.equal(codeOf(await c.request('whoami too many args')), 'AUTH_REQUIRED', 'session before argument count');
  t.equal(codeOf(await c.request('create_group bad/name')), 'AUTH_REQUIRED', 'session before argument syntax');
  t.equal(codeOf(await c.request('create_group', s)), 'BAD_REQUEST', 'argument count before state');
  t.equal(codeOf(await c.request('join_group bad/name', s)), 'BAD_REQUEST', 'argument syntax before state');
  t.equal(codeOf(await c.request('list_members nosuchgroup', s)), 'NO_SUCH_GROUP');
  // Argument syntax (6) comes before state (7) for every argument, including the user of accept/reject.
  await expectAnswer(c, 'create_group carolG', 'OK group created', s);
  for (const payload of ['accept_request nosuchgroup bad/name', 'reject_request nosuchgroup bad/name']) {
    t.equal(codeOf(await c.request(payload, s)), 'BAD_REQUEST', `${payload}: BAD_REQUEST before NO_SUCH_GROUP`);
  }
  t.equal(codeOf(await c.request('accept_request carolG bad/name', s)), 'BAD_REQUEST', 'by the owner');
  const other = await signUp(c, 'carol2');
  t.equal(codeOf(await c.request('accept_request carolG bad/name', other)), 'BAD_REQUEST', 'BAD_REQUEST before NOT_OWNER');
});

t.test('AUTH_REQUIRED: no session, a made-up one, a logged-out one', async (t) => {
  const c = await client(t);
  await createUser(c, 'dave', 'pw-dave');
  const s = await login(c, 'dave', 'pw-dave');
  await expectAnswer(c, 'create_group daveG', 'OK group created', s);
  const madeUp = 0x0123456789abcdefn;
  const huge = (1n << 64n) - 1n;
  const needsSession = ['logout', 'whoami', 'create_group g', 'join_group daveG', 'leave_group daveG', 'list_requests daveG',
    'accept_request daveG x', 'reject_request daveG x', 'list_groups', 'list_members daveG'];
  for (const payload of needsSession) {
    for (const session of [0n, madeUp, huge]) {
      const r = await c.request(payload, session);
      t.equal(codeOf(r), 'AUTH_REQUIRED', `${payload} with session ${session}`);
      t.equal(r.session, 0n, 'the answer carries session 0');
    }
  }
  // An unknown session is answered with 0 on every command, even those needing none.
  t.same(await c.request('ping', madeUp), { session: 0n, payload: 'OK PONG' });
  t.equal((await c.request('status', madeUp)).session, 0n);

  t.same(await c.request('logout', s), { session: 0n, payload: 'OK logged out sessions=0' });
  for (const payload of needsSession) {
    const r = await c.request(payload, s);
    t.equal(codeOf(r), 'AUTH_REQUIRED', `${payload} with a logged-out session`);
    t.equal(r.session, 0n);
  }
  t.same(await c.request('ping', s), { session: 0n, payload: 'OK PONG' }, 'a logged-out session is answered with 0');
  // A logged-out session lets the connection log in again.
  const again = await c.request('login dave pw-dave', s);
  t.equal(again.payload, 'OK logged in as dave sessions=1');
  t.not(again.session, s);
});

t.test('ALREADY_LOGGED_IN, USER_EXISTS, INVALID_CREDENTIALS', async (t) => {
  const c = await client(t);
  await createUser(c, 'erin', 'pw-erin');
  t.equal(codeOf(await c.request('create_user erin other')), 'USER_EXISTS');
  t.equal(codeOf(await c.request('create_user erin pw-erin')), 'USER_EXISTS');
  const s = await login(c, 'erin', 'pw-erin');
  const r = await c.request('login erin pw-erin', s);
  t.equal(codeOf(r), 'ALREADY_LOGGED_IN');
  t.equal(r.session, s, 'the answer keeps the live session');
  t.equal(codeOf(await c.request('login nobody whatever', s)), 'ALREADY_LOGGED_IN');
  t.equal((await c.request('whoami', s)).payload, 'OK erin sessions=1', 'no session was opened');

  const unknown = await c.request('login nobody-here pw-erin');
  const wrong = await c.request('login erin wrong-password');
  t.equal(unknown.payload, CREDENTIALS);
  t.equal(wrong.payload, unknown.payload, 'identical text for an unknown user and a wrong password');
  t.equal(unknown.session, 0n);
  t.equal(wrong.session, 0n);
  t.equal(codeOf(await c.request('login Erin pw-erin')), 'INVALID_CREDENTIALS', 'user names are case-sensitive');
  t.equal(codeOf(await c.request('login erin PW-ERIN')), 'INVALID_CREDENTIALS', 'passwords are case-sensitive');
  t.equal((await c.request('whoami', s)).payload, 'OK erin sessions=1');
});

t.test('group rules and group errors', async (t) => {
  const c = await client(t);
  // Name order differs from join order: zed asks and joins first, bob before amy.
  const olga = await signUp(c, 'olga');
  const zed = await signUp(c, 'zed');
  const amy = await signUp(c, 'amy');
  const bob = await signUp(c, 'bob2');
  const carl = await signUp(c, 'carl');
  const out = await signUp(c, 'outsider');

  t.same(await c.request('create_group rules', olga), { session: olga, payload: 'OK group created' });
  t.equal(codeOf(await c.request('create_group rules', zed)), 'GROUP_EXISTS');
  t.equal(codeOf(await c.request('create_group rules', olga)), 'GROUP_EXISTS');
  t.equal((await c.request('list_members rules', olga)).payload, 'OK 1\nolga role=owner', 'the creator is owner and first member');
  t.equal((await c.request('list_requests rules', olga)).payload, 'OK 0');

  for (const [who, s] of [['zed', zed], ['amy', amy], ['bob2', bob], ['carl', carl]] as const) {
    t.equal((await c.request('join_group rules', s)).payload, 'OK request sent', `${who} asks`);
  }
  t.equal(codeOf(await c.request('join_group rules', zed)), 'REQUEST_PENDING');
  t.equal(codeOf(await c.request('join_group rules', olga)), 'ALREADY_MEMBER', 'the owner is a member');
  t.equal((await c.request('list_requests rules', olga)).payload, 'OK 4\nzed\namy\nbob2\ncarl', 'oldest first');
  t.equal(codeOf(await c.request('list_requests rules', zed)), 'NOT_OWNER', 'a requester');
  t.equal(codeOf(await c.request('list_requests rules', out)), 'NOT_OWNER', 'an outsider');
  t.equal(codeOf(await c.request('accept_request rules zed', zed)), 'NOT_OWNER');
  t.equal(codeOf(await c.request('reject_request rules zed', out)), 'NOT_OWNER');
  t.equal(codeOf(await c.request('list_members rules', zed)), 'NOT_MEMBER', 'a pending requester is not a member');
  t.equal(codeOf(await c.request('leave_group rules', zed)), 'NOT_MEMBER', 'leave_group by a non-member');
  t.equal(codeOf(await c.request('accept_request rules outsider', olga)), 'NO_SUCH_REQUEST');
  t.equal(codeOf(await c.request('reject_request rules nobody', olga)), 'NO_SUCH_REQUEST');
  t.equal(codeOf(await c.request('accept_request rules olga', olga)), 'NO_SUCH_REQUEST');

  t.same(await c.request('accept_request rules zed', olga), { session: olga, payload: 'OK zed joined rules' });
  t.equal(codeOf(await c.request('accept_request rules zed', olga)), 'NO_SUCH_REQUEST', 'accepted already');
  t.equal(codeOf(await c.request('join_group rules', zed)), 'ALREADY_MEMBER');
  t.equal((await c.request('accept_request rules bob2', olga)).payload, 'OK bob2 joined rules');
  t.equal((await c.request('accept_request rules amy', olga)).payload, 'OK amy joined rules');
  t.same(await c.request('reject_request rules carl', olga), { session: olga, payload: 'OK request rejected' });
  t.equal(codeOf(await c.request('reject_request rules carl', olga)), 'NO_SUCH_REQUEST', 'rejected already');
  t.equal(codeOf(await c.request('list_members rules', carl)), 'NOT_MEMBER', 'a rejected user is not a member');
  t.equal((await c.request('list_requests rules', olga)).payload, 'OK 0');
  t.equal((await c.request('join_group rules', carl)).payload, 'OK request sent', 'a rejected user may ask again');
  t.equal((await c.request('list_requests rules', olga)).payload, 'OK 1\ncarl');

  const members = 'OK 4\namy role=member\nbob2 role=member\nolga role=owner\nzed role=member';
  t.equal((await c.request('list_members rules', olga)).payload, members, 'by name');
  t.equal((await c.request('list_members rules', amy)).payload, members, 'any member may list');

  // list_groups: every group to any logged-in user, by name, with owner and member count.
  t.equal((await c.request('create_group Alpha', out)).payload, 'OK group created');
  t.equal((await c.request('create_group rulez', carl)).payload, 'OK group created');
  const rows = parseList((await c.request('list_groups', out)).payload);
  t.same(rows, [...rows].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))), 'sorted by name (byte order)');
  const mine = rows.filter((r) => /^(rules|rulez|Alpha) /.test(r));
  t.same(mine, ['Alpha owner=outsider members=1', 'rules owner=olga members=4', 'rulez owner=carl members=1']);

  // The owner leaves: ownership passes to the earliest joiner (zed), not the first by name (amy).
  t.same(await c.request('leave_group rules', olga), { session: olga, payload: 'OK left rules' });
  t.equal((await c.request('list_members rules', zed)).payload, 'OK 3\namy role=member\nbob2 role=member\nzed role=owner');
  t.ok(parseList((await c.request('list_groups', zed)).payload).includes('rules owner=zed members=3'));
  t.equal(codeOf(await c.request('list_members rules', olga)), 'NOT_MEMBER', 'the old owner left');
  t.equal(codeOf(await c.request('list_requests rules', olga)), 'NOT_OWNER');
  t.equal((await c.request('list_requests rules', zed)).payload, 'OK 1\ncarl', 'pending requests pass to the new owner');

  // zed leaves: bob2 joined before amy.
  t.equal((await c.request('leave_group rules', zed)).payload, 'OK left rules');
  t.equal((await c.request('list_members rules', amy)).payload, 'OK 2\namy role=member\nbob2 role=owner');
  // A member that is not the owner leaves: the owner stays.
  t.equal((await c.request('leave_group rules', amy)).payload, 'OK left rules');
  t.equal((await c.request('list_members rules', bob)).payload, 'OK 1\nbob2 role=owner');
  t.ok(parseList((await c.request('list_groups', bob)).payload).includes('rules owner=bob2 members=1'));

  // The last member leaves: the group is deleted with its pending requests.
  t.equal((await c.request('leave_group rules', bob)).payload, 'OK left rules');
  t.notOk(parseList((await c.request('list_groups', bob)).payload).some((r) => r.startsWith('rules ')), 'gone from list_groups');
  for (const payload of ['list_members rules', 'join_group rules', 'leave_group rules', 'list_requests rules',
    'accept_request rules carl', 'reject_request rules carl']) {
    t.equal(codeOf(await c.request(payload, carl)), 'NO_SUCH_GROUP', payload);
  }
  t.equal((await c.request('create_group rules', carl)).payload, 'OK group created', 'the name is free again');
  t.equal((await c.request('list_requests rules', carl)).payload, 'OK 0', 'old requests did not survive');
  t.equal((await c.request('list_members rules', carl)).payload, 'OK 1\ncarl role=owner');
  // Group names are case-sensitive.
  t.equal((await c.request('create_group RULES', carl)).payload, 'OK group created');
  t.equal(codeOf(await c.request('join_group NoSuch', zed)), 'NO_SUCH_GROUP');
});

t.test('FORBIDDEN: SYNC: payloads on a client connection change nothing', async (t) => {
  const c = await client(t);
  const s = await signUp(c, 'syncer');
  const before = await status(c);
  for (const [payload, session] of [
    ['SYNC:hello', 0n],
    ['SYNC:hello', s],
    ['sync:ack 5', s],
    ['SYNC:APPLY {"seq":999,"epoch":1,"type":"group_created","group":"forged","owner":"syncer","at":1}', 0n],
    ['SYNC:', 0n],
    ['SYNC:AUTH abc def', s], // last: an AUTH without a challenge also closes the connection
  ] as const) {
    const r = await c.request(payload, session);
    t.equal(codeOf(r), 'FORBIDDEN', `${payload.slice(0, 30)} → ${r.payload}`);
    t.equal(r.session, session, 'the answer carries the live session back, as any answer does');
  }
  await c.closed;
  t.pass('a failed handshake closes the connection');
  const d = await client(t);
  const after = await status(d);
  t.equal(after['seq'], before['seq'], 'status seq unchanged');
  t.equal(after['log_hash'], before['log_hash'], 'log_hash unchanged');
  t.notOk(parseList((await d.request('list_groups', s)).payload).some((r) => r.startsWith('forged ')));
  t.equal((await d.request('whoami', s)).payload, 'OK syncer sessions=1', 'the session is untouched');
});

t.test('status: seq grows by one per write, reads and errors do not write', async (t) => {
  const c = await client(t);
  const seq = async (): Promise<number> => Number((await status(c))['seq']);
  const hash = async (): Promise<string> => (await status(c))['log_hash'] as string;
  const base = await seq();
  const baseHash = await hash();
  t.equal((await c.request('create_user seqy pw')).payload, 'OK user created');
  t.equal(await seq(), base + 1, 'create_user');
  t.not(await hash(), baseHash, 'log_hash moves with seq');
  const s = await login(c, 'seqy', 'pw');
  t.equal(await seq(), base + 2, 'login');
  await expectAnswer(c, 'create_group seqG', 'OK group created', s);
  t.equal(await seq(), base + 3, 'create_group');
  const h3 = await hash();
  // Reads and failures: no change.
  await c.request('ping');
  await c.request('whoami', s);
  await c.request('list_groups', s);
  await c.request('list_members seqG', s);
  await c.request('list_requests seqG', s);
  await c.request('create_group seqG', s);
  await c.request('login seqy wrong');
  await c.request('frobnicate');
  t.equal(await seq(), base + 3, 'reads and errors write nothing');
  t.equal(await hash(), h3);
  const other = await login(c, 'seqy', 'pw');
  t.equal(await seq(), base + 4);
  t.equal(codeOf(await c.request('join_group seqG', other)), 'ALREADY_MEMBER');
  await expectAnswer(c, 'leave_group seqG', 'OK left seqG', other);
  t.equal(await seq(), base + 5, 'leave_group');
  await expectAnswer(c, 'logout', 'OK logged out sessions=1', other);
  t.equal(await seq(), base + 6, 'logout');
  const st = await status(c);
  t.match(st['log_hash'], HEX64);
  t.equal(st['role'], 'primary');
});

t.test('RATE_LIMITED: failed logins (--max-login-failures 2)', async (t) => {
  const tracker = await startTracker(t, { args: ['--max-login-failures', '2', '--login-window', '1m'] });
  const a = await client(t, tracker.port);
  await createUser(a, 'victim', 'right');
  await createUser(a, 'bystander', 'fine');
  t.equal((await a.request('login victim wrong1')).payload, CREDENTIALS);
  t.equal((await a.request('login victim wrong2')).payload, CREDENTIALS);
  const limited = await a.request('login victim right');
  t.match(limited.payload, /^ERR RATE_LIMITED .*try again in \d+ s/, 'even the right password, on the same connection');
  t.equal(limited.session, 0n);
  const b = await client(t, tracker.port);
  t.equal(codeOf(await b.request('login victim right')), 'RATE_LIMITED', 'for that user on another connection');
  t.equal(codeOf(await a.request('login bystander fine')), 'RATE_LIMITED', 'for any user on the offending connection');
  const bystander = await b.request('login bystander fine');
  t.equal(bystander.payload, 'OK logged in as bystander sessions=1', 'another user on another connection is fine');
  t.equal((await a.request('ping')).payload, 'OK PONG', 'the connection stays open');
  t.equal((await a.request('create_user third pw')).payload, 'OK user created', 'other commands still work');
  t.notOk(a.isClosed);

  // A successful login clears the user's count (each failure on a fresh connection, so only the user counts).
  await createUser(b, 'forgetful', 'right');
  const once = await client(t, tracker.port);
  t.equal((await once.request('login forgetful wrong')).payload, CREDENTIALS);
  const ok = await client(t, tracker.port);
  t.equal((await ok.request('login forgetful right')).payload, 'OK logged in as forgetful sessions=1');
  const twice = await client(t, tracker.port);
  t.equal((await twice.request('login forgetful wrong')).payload, CREDENTIALS, 'one failure after the success: not limited');
  const thrice = await client(t, tracker.port);
  t.equal((await thrice.request('login forgetful right')).payload, 'OK logged in as forgetful sessions=2');
});

t.test('RATE_LIMITED: request rate (--rate-limit 5) with pipelined requests', async (t) => {
  const tracker = await startTracker(t, { args: ['--rate-limit', '5'] });
  const observer = await client(t, tracker.port);
  const seqBefore = Number((await status(observer))['seq']);

  // A burst of pings in one write, on a fresh connection (a full bucket: one second's worth).
  const c = await client(t, tracker.port);
  c.sendRaw(Buffer.concat(Array.from({ length: 30 }, () => encodeFrame(0n, 'ping'))));
  const answers: string[] = [];
  for (let i = 0; i < 30; i++) answers.push((await c.nextFrame()).payload.toString('utf8'));
  const pongs = answers.filter((a) => a === 'OK PONG').length;
  const limited = answers.filter((a) => /^ERR RATE_LIMITED /.test(a)).length;
  t.equal(pongs + limited, 30, `every request answered with PONG or RATE_LIMITED: ${JSON.stringify(answers.slice(0, 8))}`);
  t.ok(pongs >= 5 && pongs <= 10, `about one second's worth passed (${pongs})`);
  t.ok(limited >= 20, `the rest was refused (${limited})`);
  t.equal(answers[0], 'OK PONG', 'the first ones pass');
  t.match(answers[29], /^ERR RATE_LIMITED /);
  t.notOk(c.isClosed, 'the connection stays open');
  // The rate limit is checked first: even a bad payload or an unknown command is RATE_LIMITED.
  c.sendRaw(Buffer.concat([encodeFrame(0n, Buffer.from([0xff])), encodeFrame(0n, 'frobnicate'), encodeFrame(0n, 'SYNC:x')]));
  for (const what of ['non-UTF-8', 'unknown command', 'SYNC:']) t.match(text(await c.nextFrame()), /^ERR RATE_LIMITED /, what);
  t.equal((await observer.request('ping')).payload, 'OK PONG', 'the limit is per connection');

  // Refused requests are not run: only the answered writes change anything.
  const w = await client(t, tracker.port);
  w.sendRaw(Buffer.concat(Array.from({ length: 20 }, (_, i) => encodeFrame(0n, `create_user rl${i} pw`))));
  const results: string[] = [];
  for (let i = 0; i < 20; i++) results.push((await w.nextFrame()).payload.toString('utf8'));
  t.ok(results.every((r) => r === 'OK user created' || r.startsWith('ERR RATE_LIMITED ')), JSON.stringify(results));
  const created = results.filter((r) => r === 'OK user created').length;
  t.ok(created >= 5 && created <= 10, `about one second's worth created (${created})`);
  t.equal(Number((await status(observer))['seq']), seqBefore + created, 'exactly the answered writes were applied');
});

t.test('1,000 pipelined requests are answered in order', async (t) => {
  const tracker = await startTracker(t);
  const c = await client(t, tracker.port);
  const s = await signUp(c, 'piper');
  const before = Number((await status(c))['seq']);
  // All 1,000 requests are written before any answer is read.
  const creates = Array.from({ length: 1000 }, (_, i) => c.request(`create_group p${i}`, s));
  const created = await Promise.all(creates);
  t.ok(created.every((r) => r.payload === 'OK group created' && r.session === s), 'all created');
  t.equal(Number((await status(c))['seq']), before + 1000, 'one change per write');

  // Answers that tell their request: creating an existing group names it.
  const again = Array.from({ length: 1000 }, (_, i) => c.request(`create_group p${i}`, s));
  const answers = await Promise.all(again);
  // The message is free text, but it names the group: enough to tie each answer to its request.
  const misplaced = answers.filter((r, i) => !new RegExp(`^ERR GROUP_EXISTS .*\\bp${i}\\b`).test(r.payload) || r.session !== s);
  t.same(misplaced, [], 'each answer belongs to its request');

  // A mix of reads in one write, read back frame by frame.
  const other = await signUp(c, 'mixer');
  const kinds = Array.from({ length: 1000 }, (_, i) => i % 4);
  const wire = Buffer.concat(
    kinds.map((k, i) =>
      k === 0 ? encodeFrame(0n, 'ping')
      : k === 1 ? encodeFrame(s, 'whoami')
      : k === 2 ? encodeFrame(other, 'whoami')
      : encodeFrame(s, `list_members p${i}`),
    ),
  );
  const mix = await connect(tracker.port);
  t.teardown(() => mix.close());
  mix.sendRaw(wire);
  let wrong = 0;
  for (let i = 0; i < 1000; i++) {
    const f = await mix.nextFrame();
    const text = f.payload.toString('utf8');
    const k = kinds[i] as number;
    const expected =
      k === 0 ? [0n, 'OK PONG']
      : k === 1 ? [s, 'OK piper sessions=1']
      : k === 2 ? [other, 'OK mixer sessions=1']
      : [s, 'OK 1\npiper role=owner'];
    if (f.session !== expected[0] || text !== expected[1]) {
      wrong++;
      if (wrong < 5) t.fail(`answer ${i}: ${text} (session ${f.session}), expected ${String(expected[1])}`);
    }
  }
  t.equal(wrong, 0, 'all 1,000 mixed answers in order');
});

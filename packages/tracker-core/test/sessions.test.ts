import { encodeFrame } from '@tracker-cluster/protocol';
import Database from 'better-sqlite3';
import t from 'tap';
import { decodeChange, logPathFor } from '@tracker-cluster/tracker-core';
import type { Change } from '@tracker-cluster/tracker-core';
import type { FrameClient } from './fixtures/frame-client.js';
import { waitFor } from './fixtures/env.js';
import type { Test } from './fixtures/env.js';
import { logIn, signUp, startTracker } from './fixtures/tracker.js';

t.test('sessions=<n> counts the live sessions of a user across logins and logouts', async (t) => {
  const run = await startTracker(t);
  const a = await run.connect();
  const b = await run.connect();
  t.equal(await a.text('create_user alice pw'), 'OK user created');
  const first = await a.request('login alice pw');
  const second = await b.request('login alice pw');
  t.equal(first.text, 'OK logged in as alice sessions=1');
  t.equal(second.text, 'OK logged in as alice sessions=2', 'this one included');
  t.not(first.session, 0n, 'session ids are non-zero');
  t.not(second.session, 0n);
  t.not(first.session, second.session, 'and differ');
  t.not(first.session - second.session, 1n, 'not a counter');
  t.not(second.session - first.session, 1n, 'not a counter');
  t.equal(await a.text('whoami', first.session), 'OK alice sessions=2');
  t.equal(await a.text('whoami', second.session), 'OK alice sessions=2', 'a session works on any connection');
  t.same(await b.request('logout', second.session), { text: 'OK logged out sessions=1', session: 0n });
  t.equal(await a.text('whoami', first.session), 'OK alice sessions=1');
  t.match(await b.text('whoami', second.session), /^ERR AUTH_REQUIRED /);
  t.same(await a.request('logout', first.session), { text: 'OK logged out sessions=0', session: 0n });
});

t.test('sessions outlive their TCP connection and a tracker restart', async (t) => {
  const run = await startTracker(t);
  const a = await run.connect();
  const sa = await signUp(a, 'alice');
  await a.close();
  const b = await run.connect();
  t.equal(await b.text('whoami', sa), 'OK alice sessions=1', 'a disconnect does not end a session');
  t.equal(await b.text('create_group g', sa), 'OK group created');
  await run.stop();

  const again = await startTracker(t, { dbPath: run.dbPath }, run.clock);
  const c = await again.connect();
  t.equal(await c.text('whoami', sa), 'OK alice sessions=1', 'the session survived the restart');
  t.equal(await c.text('list_groups', sa), 'OK 1\ng owner=alice members=1', 'and so did the state');
  t.equal((await c.request('login alice pw-alice')).text, 'OK logged in as alice sessions=2');
});

t.test('the session TTL slides with activity; an expired session is AUTH_REQUIRED', async (t) => {
  // The expiry is written when it moves by a granularity (ttl/10), so every
  // expiry carries that much slack: a session ends between one TTL and one
  // TTL + granularity after its last use.
  const ttl = 10_000;
  const slack = 1000;
  const run = await startTracker(t, { sessionTtlMs: ttl });
  // What another process sees: the log file has every answered change; the
  // state file follows it within a state commit (waited for, never slept on).
  const db = new Database(run.dbPath, { readonly: true });
  t.teardown(() => db.close());
  const logDb = new Database(logPathFor(run.dbPath), { readonly: true });
  t.teardown(() => logDb.close());
  const expiresAt = (session: bigint): number | undefined =>
    db.prepare('SELECT expires_at FROM sessions WHERE id = ?').pluck().get(session.toString()) as number | undefined;
  const logged = (): Change[] => (logDb.prepare('SELECT change FROM sync_log ORDER BY seq').pluck().all() as string[]).map(decodeChange);
  const a = await run.connect();
  t.equal(await a.text('create_user alice pw'), 'OK user created');
  const t0 = run.clock.t;
  const active = (await a.request('login alice pw')).session;
  const idle = (await a.request('login alice pw')).session;
  const opened = { type: 'session_opened', session: active.toString(), user: 'alice', at: t0, expires: t0 + ttl + slack };
  t.same(logged().at(-2)?.body, opened, 'a new session lives one TTL and its slack');
  await waitFor(() => expiresAt(active) === t0 + ttl + slack, 'the state file to show the new session');

  run.clock.advance(6000);
  t.equal(await a.text('whoami', active), 'OK alice sessions=2');
  const touches = logged().length;
  const touched = { type: 'sessions_touched', sessions: [[active.toString(), t0 + 6000 + ttl + slack]] };
  t.same(logged().at(-1)?.body, touched, 'activity pushed the expiry out, durably');
  await waitFor(() => expiresAt(active) === t0 + 6000 + ttl + slack, 'the state file to show the new expiry');
  run.clock.advance(500);
  t.equal(await a.text('whoami', active), 'OK alice sessions=2');
  t.equal(logged().length, touches, 'a move below the granularity is not written');
  t.equal(expiresAt(active), t0 + 6000 + ttl + slack);

  // (Asking with the idle session would extend it: its expiry is read from the state file.)
  t.equal(expiresAt(idle), t0 + ttl + slack, 'an idle session lives one TTL and its slack');
  run.clock.advance(ttl + slack - 6500);
  const expired = await a.request('whoami', idle);
  t.match(expired.text, /^ERR AUTH_REQUIRED /, 'then it expires');
  t.equal(expired.session, 0n, 'the response session is 0 for an expired session');
  t.same(await a.request('ping', idle), { text: 'OK PONG', session: 0n }, 'also on commands that need no session');
  const answer = await a.request('whoami', active);
  t.same(answer, { text: 'OK alice sessions=1', session: active }, 'the active one lives on; expired sessions are not counted');

  // A use whose extension is too small to be written still buys a whole TTL.
  run.clock.advance(slack - 1);
  const before = logged().length;
  t.equal(await a.text('whoami', active), 'OK alice sessions=1');
  t.equal(logged().length, before, 'this use moved the expiry by less than the granularity: not written');
  run.clock.advance(ttl - 1); // one ms short of a whole TTL after that use
  t.equal(await a.text('whoami', active), 'OK alice sessions=1', 'the session outlives a whole TTL after its last use');
  run.clock.advance(ttl + slack);
  const late = await a.request('whoami', active);
  t.match(late.text, /^ERR AUTH_REQUIRED /, 'expired after a full TTL and its slack without activity');
  t.equal(late.session, 0n);
  const relogin = await a.request('login alice pw', active);
  t.equal(relogin.text, 'OK logged in as alice sessions=1', 'an expired session in the frame is no ALREADY_LOGGED_IN');
});

t.test('a request carrying a live session presents and extends it, whatever its answer', async (t) => {
  // docs/protocol.md §2 and §4: an unknown command, a wrong argument count or a
  // payload that is not UTF-8 is still the client's activity under that session.
  const ttl = 10_000;
  const run = await startTracker(t, { sessionTtlMs: ttl });
  const owner = await run.connect();
  const so = await signUp(owner, 'olive');
  t.equal(await owner.text('create_group g', so), 'OK group created');
  const failing: Array<[string, string | Buffer, RegExp]> = [
    ['an unknown command', 'frob', /^ERR UNKNOWN_COMMAND /],
    ['a wrong argument count', 'whoami x', /^ERR BAD_REQUEST usage: whoami/],
    ['a payload that is not UTF-8', Buffer.from([0xff]), /^ERR BAD_REQUEST /],
  ];
  const connections = [];
  for (const [what, payload, expected] of failing) {
    const c = await run.connect();
    const answer = await c.request(payload, so);
    t.match(answer.text, expected, `${what} is refused`);
    t.equal(answer.session, so, '... under the live session');
    connections.push({ what, c });
  }
  const joiner = await run.connect();
  const sj = await signUp(joiner, 'jack');
  t.equal(await joiner.text('join_group g', sj), 'OK request sent');
  for (const { what, c } of connections) {
    t.same(await c.event(), { text: 'EVENT join_request g jack', session: so }, `a connection whose last request was ${what} gets the owner's events`);
  }

  // Only such requests, for longer than one TTL: the session stays alive.
  const idle = await run.connect();
  for (let i = 0; i < 4; i++) {
    run.clock.advance(3000);
    for (const [, payload] of failing) await idle.request(payload, so);
  }
  t.same(await idle.request('whoami', so), { text: 'OK olive sessions=1', session: so }, '12 s of refused requests kept a 10 s session alive');
});

t.test('expired sessions are purged by a replicated change', async (t) => {
  const run = await startTracker(t, { sessionTtlMs: 1000, sessionPurgeIntervalMs: 20 });
  const db = new Database(run.dbPath, { readonly: true });
  t.teardown(() => db.close());
  const logDb = new Database(logPathFor(run.dbPath), { readonly: true });
  t.teardown(() => logDb.close());
  const sessions = (): string[] => db.prepare('SELECT id FROM sessions ORDER BY id').pluck().all() as string[];
  const a = await run.connect();
  t.equal(await a.text('create_user alice pw'), 'OK user created');
  const gone = (await a.request('login alice pw')).session;
  const kept = (await a.request('login alice pw')).session;
  run.clock.advance(500);
  t.equal(await a.text('whoami', kept), 'OK alice sessions=2', 'extends the kept session to +1600 (TTL and its slack of ttl/10)');
  const seqBefore = Number(/ seq=(\d+)/.exec(await a.text('status'))?.[1]);
  await waitFor(() => sessions().length === 2, 'the state file to show both sessions');
  t.same(sessions().sort(), [gone, kept].map(String).sort(), 'nothing purged while both are live');

  run.clock.advance(600); // +1100: `gone` expired at +1100, `kept` lives to +1600
  await waitFor(() => sessions().length === 1, 'the purge timer to remove the expired session');
  t.same(sessions(), [kept.toString()], 'only the expired session was removed');
  // The state file never leads the log: the purge's log row is already there.
  const last = logDb.prepare('SELECT change FROM sync_log ORDER BY seq DESC LIMIT 1').pluck().get() as string;
  const change = decodeChange(last);
  t.equal(change.seq, seqBefore + 1, 'the purge is the next change in the log');
  t.same(change.body, { type: 'sessions_expired', sessions: [gone.toString()], at: run.clock.t }, 'carrying the ids and the time');
  t.equal(await a.text('whoami', kept), 'OK alice sessions=1');
  t.match(await a.text('whoami', gone), /^ERR AUTH_REQUIRED /);
});

/**
 * A ping on `client` under the session it presents anyway: every event written
 * to the connection before the answer has been received once the answer is.
 */
async function sync(client: FrameClient, session: bigint): Promise<void> {
  if ((await client.text('ping', session)) !== 'OK PONG') throw new Error('ping failed');
}

t.test('events go to the connections that last presented the session, with its id in the frame', async (t) => {
  const run = await startTracker(t);
  const a = await run.connect();
  const a2 = await run.connect();
  const b = await run.connect();
  const c = await run.connect();
  const sa = await signUp(a, 'alice'); // presented on a by whoami
  const sb = await signUp(b, 'bob');
  const sc = await signUp(c, 'carol');
  t.equal(await a.text('create_group g', sa), 'OK group created');

  t.equal(await b.text('join_group g', sb), 'OK request sent');
  t.same(await a.event(), { text: 'EVENT join_request g bob', session: sa }, "the owner's connection gets join_request with the owner's session");
  await sync(b, sb);
  t.same(b.events, [], 'the requester gets no join_request');

  const sa2 = await logIn(a2, 'alice'); // a second session of the owner, presented on a2
  t.equal(await c.text('join_group g', sc), 'OK request sent');
  t.same(await a.event(), { text: 'EVENT join_request g carol', session: sa }, 'each live session of the owner...');
  t.same(await a2.event(), { text: 'EVENT join_request g carol', session: sa2 }, '...gets it, on its own connection, under its own id');

  t.equal(await a.text('accept_request g bob', sa), 'OK bob joined g');
  t.same(await b.event(), { text: 'EVENT request_accepted g', session: sb }, 'request_accepted to the accepted user');
  t.equal(await a.text('reject_request g carol', sa), 'OK request rejected');
  t.same(await c.event(), { text: 'EVENT request_rejected g', session: sc }, 'request_rejected to the rejected user');

  // a presents another session now: alice's events no longer go there.
  const sd = await signUp(a, 'dave');
  t.equal(await c.text('join_group g', sc), 'OK request sent');
  t.same(await a2.event(), { text: 'EVENT join_request g carol', session: sa2 });
  await sync(a, sd);
  t.same(a.events, [], 'a connection that moved on to another session gets none of the old one');

  // Owner leaves: member_left and owner_changed to the remaining members.
  t.equal(await a2.text('leave_group g', sa2), 'OK left g');
  t.same(await b.event(), { text: 'EVENT member_left g alice', session: sb });
  t.same(await b.event(), { text: 'EVENT owner_changed g bob', session: sb }, 'bob joined earliest and owns g now');
  await sync(a2, sa2);
  t.same(a2.events, [], 'the leaver is not told');
  t.equal(await b.text('list_requests g', sb), 'OK 1\ncarol', 'the pending request is now for bob');

  // Logged-out sessions get nothing.
  t.equal(await a.text('join_group g', sd), 'OK request sent');
  t.same(await b.event(), { text: 'EVENT join_request g dave', session: sb });
  t.same(await b.request('logout', sb), { text: 'OK logged out sessions=0', session: 0n });
  const se = await signUp(c, 'erin');
  t.equal(await c.text('join_group g', se), 'OK request sent');
  await sync(b, sb);
  t.same(b.events, [], 'no event for a logged-out session');
});

t.test('the connection that logged in gets the events of the new session at once', async (t) => {
  // The login answer hands the session to that connection: it counts as presented there
  // (docs/protocol.md §4), so a client hears events without sending anything else first.
  const run = await startTracker(t);
  const a = await run.connect();
  const b = await run.connect();
  t.equal(await a.text('create_user alice pw'), 'OK user created');
  const sa = (await a.request('login alice pw')).session;
  const sb = await signUp(b, 'bob');
  const other = await run.connect();
  t.equal(await other.text('create_group g', sa), 'OK group created', 'alice presents her session on another connection too');
  t.equal(await b.text('join_group g', sb), 'OK request sent');
  t.same(await a.event(), { text: 'EVENT join_request g bob', session: sa }, 'the login connection hears it');
  t.same(await other.event(), { text: 'EVENT join_request g bob', session: sa }, 'and so does the other one');
});

t.test('pipelined requests take effect in the order they were sent', async (t) => {
  // create_user and login both wait for scrypt before they decide; without ordering the
  // login could look for the user before it exists.
  const run = await startTracker(t);
  const c = await run.connect();
  c.sendRaw(
    Buffer.concat([
      encodeFrame(0n, 'create_user zoe pw'),
      encodeFrame(0n, 'login zoe pw'),
      encodeFrame(0n, 'create_user zoe other'),
      encodeFrame(0n, 'ping'),
    ]),
  );
  t.equal((await c.response()).text, 'OK user created');
  const login = await c.response();
  t.equal(login.text, 'OK logged in as zoe sessions=1');
  t.not(login.session, 0n);
  t.match((await c.response()).text, /^ERR USER_EXISTS /);
  t.equal((await c.response()).text, 'OK PONG');
});

/** The log's changes, as another process reads them. */
function logOf(t: Test, dbPath: string): () => Change[] {
  const logDb = new Database(logPathFor(dbPath), { readonly: true });
  t.teardown(() => logDb.close());
  return () => (logDb.prepare('SELECT change FROM sync_log ORDER BY seq').pluck().all() as string[]).map(decodeChange);
}

const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

t.test('past --max-sessions-per-user a login still succeeds and ends the least recently active session, as logout would', async (t) => {
  const run = await startTracker(t, { maxSessionsPerUser: 3 });
  const logged = logOf(t, run.dbPath);
  const a = await run.connect();
  const first = await signUp(a, 'alice');
  run.clock.advance(1000);
  const second = await logIn(a, 'alice');
  run.clock.advance(1000);
  const third = await logIn(a, 'alice');
  t.equal(await a.text('create_group g', second), 'OK group created');
  t.equal(await a.text(`upload_file g empty.txt 0 ${EMPTY_SHA256} 1 127.0.0.1:9000 -`, second), 'OK shared empty.txt seeders=1');
  // `first` is the oldest login, but used since: its expiry moves past the others' (a touch is due after a granularity, 1 min).
  run.clock.advance(61_000);
  t.equal(await a.text('whoami', first), 'OK alice sessions=3');
  t.equal(await a.text('whoami', third), 'OK alice sessions=3');

  const fourth = await a.request('login alice pw-alice');
  t.equal(fourth.text, 'OK logged in as alice sessions=3', 'at most the cap, this one included');
  t.same(await a.request('whoami', second), { text: 'ERR AUTH_REQUIRED whoami needs a session: log in first', session: 0n }, 'the least recently active session ended');
  t.equal(await a.text('whoami', first), 'OK alice sessions=3', 'the oldest login lives on: it was used since');
  t.equal(await a.text('whoami', fourth.session), 'OK alice sessions=3');
  t.equal(await a.text('list_files g', first), 'OK 0', "the ended session's shares ended with it");
  t.match(await a.text('file_peers g empty.txt', first), /^ERR NO_SUCH_FILE /);
  const opened = logged().at(-1)?.body;
  t.same(opened, { type: 'session_opened', session: fourth.session.toString(), user: 'alice', at: run.clock.t, expires: opened?.type === 'session_opened' ? opened.expires : 0, evicted: [second.toString()] }, 'the handler chose the ended session and the change carries it');
  t.equal(logged().filter((c) => c.body.type === 'session_opened' && c.body.evicted !== undefined).length, 1, 'logins under the cap carry no evicted field');

  await run.stop();
  const again = await startTracker(t, { dbPath: run.dbPath, maxSessionsPerUser: 3 }, run.clock);
  const b = await again.connect();
  t.match(await b.text('whoami', second), /^ERR AUTH_REQUIRED /, 'still ended after a restart');
  t.equal(await b.text('whoami', first), 'OK alice sessions=3');
});

t.test('a login ends as many sessions as it takes to reach the cap (it was lowered), others\' sessions untouched', async (t) => {
  const run = await startTracker(t);
  const a = await run.connect();
  const alice: bigint[] = [await signUp(a, 'alice')];
  const bob = await signUp(a, 'bob');
  for (let i = 0; i < 4; i++) {
    run.clock.advance(1000);
    alice.push(await logIn(a, 'alice'));
  }
  t.equal(await a.text('whoami', alice[0]), 'OK alice sessions=5');
  await run.stop();

  const again = await startTracker(t, { dbPath: run.dbPath, maxSessionsPerUser: 2 }, run.clock);
  const b = await again.connect();
  const next = await b.request('login alice pw-alice');
  t.equal(next.text, 'OK logged in as alice sessions=2');
  for (const s of alice.slice(0, 4)) t.match(await b.text('whoami', s), /^ERR AUTH_REQUIRED /, 'the four least recently active ended');
  t.equal(await b.text('whoami', alice[4]), 'OK alice sessions=2', 'the most recent one lives on');
  t.equal(await b.text('whoami', bob), 'OK bob sessions=1', "another user's session is not counted or touched");
});

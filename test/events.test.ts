/**
 * Unasked EVENT frames (PROTOCOL.md §4, docs/protocol.md §4) from the real
 * tracker-primary process: who gets which event, with which session field,
 * on which connection ("every open connection whose most recent request
 * carried that session"), and that a logged-out session gets none.
 *
 * Absence is checked without sleeping: the tracker writes an event to a
 * connection before it answers the request that caused it, so a `ping` sent
 * on that connection after that answer comes back after any such event
 * (`settle`).
 */
import t from 'tap';
import { startTracker } from './helpers/tracker.js';
import type { RunningTracker, TeardownHost } from './helpers/tracker.js';
import { connect } from './helpers/wire.js';
import type { WireClient } from './helpers/wire.js';
import { expectAnswer, login, settle, signUp } from './helpers/commands.js';

const tracker: RunningTracker = await startTracker(t);

async function open(t: TeardownHost): Promise<WireClient> {
  const c = await connect(tracker.port);
  t.teardown(() => c.close());
  return c;
}

/** The session field of the first event equal to `payload` on `c` (waits for it). */
async function eventSession(c: WireClient, payload: string): Promise<bigint> {
  await c.waitForEvent((p) => p === payload);
  const i = c.events.indexOf(payload);
  return (c.eventFrames[i] as { session: bigint }).session;
}

/** Waits for every event already sent to `c`, then forgets them. */
async function drain(c: WireClient): Promise<void> {
  await settle(c);
  c.events.length = 0;
  c.eventFrames.length = 0;
}

/** A user with a session presented on their own connection. */
interface Member {
  name: string;
  c: WireClient;
  s: bigint;
}

async function member(t: TeardownHost, name: string): Promise<Member> {
  const c = await open(t);
  const s = await signUp(c, name);
  return { name, c, s };
}

t.test('join_request reaches the owner, with the owner session', async (t) => {
  const owner = await member(t, 'jr-owner');
  const asker = await member(t, 'jr-asker');
  const bystander = await member(t, 'jr-bystander');
  await expectAnswer(owner.c, 'create_group jr', 'OK group created', owner.s);

  await expectAnswer(asker.c, 'join_group jr', 'OK request sent', asker.s);
  t.equal(await eventSession(owner.c, 'EVENT join_request jr jr-asker'), owner.s, 'the event carries the owner session');
  await settle(asker.c);
  await settle(bystander.c);
  t.same(asker.c.events, [], 'the requester gets no event');
  t.same(bystander.c.events, [], 'nor does anyone else');
  t.same(owner.c.events, ['EVENT join_request jr jr-asker'], 'exactly one event');
  // The owner's connection still gets answers, and events never take a response's place.
  t.equal((await owner.c.request('list_requests jr', owner.s)).payload, 'OK 1\njr-asker');
});

t.test('request_accepted and request_rejected reach the requester', async (t) => {
  const owner = await member(t, 'ar-owner');
  const yes = await member(t, 'ar-yes');
  const no = await member(t, 'ar-no');
  await expectAnswer(owner.c, 'create_group ar', 'OK group created', owner.s);
  await expectAnswer(yes.c, 'join_group ar', 'OK request sent', yes.s);
  await expectAnswer(no.c, 'join_group ar', 'OK request sent', no.s);

  await expectAnswer(owner.c, 'accept_request ar ar-yes', 'OK ar-yes joined ar', owner.s);
  t.equal(await eventSession(yes.c, 'EVENT request_accepted ar'), yes.s, 'to the accepted user session');
  await expectAnswer(owner.c, 'reject_request ar ar-no', 'OK request rejected', owner.s);
  t.equal(await eventSession(no.c, 'EVENT request_rejected ar'), no.s, 'to the rejected user session');

  await settle(yes.c);
  await settle(no.c);
  await settle(owner.c);
  t.same(yes.c.events, ['EVENT request_accepted ar']);
  t.same(no.c.events, ['EVENT request_rejected ar']);
  t.same(owner.c.events, ['EVENT join_request ar ar-yes', 'EVENT join_request ar ar-no'], 'the owner only got the join requests');
});

t.test('member_left and owner_changed reach the remaining members', async (t) => {
  const owner = await member(t, 'ml-owner');
  // zz joins first, so it inherits although its name sorts last.
  const zz = await member(t, 'ml-zz');
  const aa = await member(t, 'ml-aa');
  const outsider = await member(t, 'ml-out');
  await expectAnswer(owner.c, 'create_group ml', 'OK group created', owner.s);
  for (const m of [zz, aa]) {
    await expectAnswer(m.c, 'join_group ml', 'OK request sent', m.s);
    await expectAnswer(owner.c, `accept_request ml ${m.name}`, `OK ${m.name} joined ml`, owner.s);
  }
  for (const m of [owner, zz, aa]) await drain(m.c);

  // A plain member leaves: the others get member_left, nobody gets owner_changed.
  await expectAnswer(aa.c, 'leave_group ml', 'OK left ml', aa.s);
  t.equal(await eventSession(owner.c, 'EVENT member_left ml ml-aa'), owner.s);
  t.equal(await eventSession(zz.c, 'EVENT member_left ml ml-aa'), zz.s);
  for (const m of [owner, zz, aa, outsider]) await settle(m.c);
  t.same(owner.c.events, ['EVENT member_left ml ml-aa']);
  t.same(zz.c.events, ['EVENT member_left ml ml-aa']);
  t.same(aa.c.events, [], 'the leaver gets nothing');
  t.same(outsider.c.events, [], 'a non-member gets nothing');

  // aa comes back (joined after zz), then the owner leaves: zz inherits.
  await expectAnswer(aa.c, 'join_group ml', 'OK request sent', aa.s);
  await expectAnswer(owner.c, 'accept_request ml ml-aa', 'OK ml-aa joined ml', owner.s);
  for (const m of [owner, zz, aa]) await drain(m.c);
  await expectAnswer(owner.c, 'leave_group ml', 'OK left ml', owner.s);
  for (const m of [zz, aa]) {
    t.equal(await eventSession(m.c, 'EVENT member_left ml ml-owner'), m.s, `${m.name}: member_left`);
    t.equal(await eventSession(m.c, 'EVENT owner_changed ml ml-zz'), m.s, `${m.name}: owner_changed`);
  }
  for (const m of [owner, zz, aa, outsider]) await settle(m.c);
  t.same(zz.c.events, ['EVENT member_left ml ml-owner', 'EVENT owner_changed ml ml-zz']);
  t.same(aa.c.events, ['EVENT member_left ml ml-owner', 'EVENT owner_changed ml ml-zz']);
  t.notOk(owner.c.events.some((e) => e.includes('ml-owner') || e.includes('owner_changed')), 'the old owner gets nothing');
  t.same(outsider.c.events, []);
  t.equal((await zz.c.request('list_members ml', zz.s)).payload, 'OK 2\nml-aa role=member\nml-zz role=owner');

  // The new owner gets the join requests now.
  await expectAnswer(owner.c, 'join_group ml', 'OK request sent', owner.s);
  t.equal(await eventSession(zz.c, 'EVENT join_request ml ml-owner'), zz.s);
  await settle(aa.c);
  t.notOk(aa.c.events.some((e) => e.startsWith('EVENT join_request')), 'not the plain member');
});

t.test('events go to the connections that last presented the session', async (t) => {
  const owner = await member(t, 'lp-owner');
  await expectAnswer(owner.c, 'create_group lp', 'OK group created', owner.s);
  const first = await open(t);
  const second = await open(t);
  const s = await signUp(first, 'lp-user'); // presented on `first`
  // A second session of the same user, opened elsewhere (a login may count as presenting its new session).
  const aux = await open(t);
  const other = await login(aux, 'lp-user', 'lp-user-pw');
  await aux.close();

  // The session is presented on the second connection too: both last carried it.
  t.equal((await second.request('whoami', s)).payload, 'OK lp-user sessions=2');
  await expectAnswer(second, 'join_group lp', 'OK request sent', s);
  await expectAnswer(owner.c, 'reject_request lp lp-user', 'OK request rejected', owner.s);
  t.equal(await eventSession(second, 'EVENT request_rejected lp'), s, 'the event arrives on the second connection');
  t.equal(await eventSession(first, 'EVENT request_rejected lp'), s,
    'and on the first, whose most recent request also carried the session (docs/protocol.md §4)');

  // The first connection now presents another session: it no longer gets the first one's events.
  t.equal((await first.request('whoami', other)).payload, 'OK lp-user sessions=2');
  await expectAnswer(second, 'join_group lp', 'OK request sent', s);
  await expectAnswer(owner.c, 'accept_request lp lp-user', 'OK lp-user joined lp', owner.s);
  // An event is for the user's live sessions: `other` is one, presented on `first`.
  t.equal(await eventSession(second, 'EVENT request_accepted lp'), s);
  t.equal(await eventSession(first, 'EVENT request_accepted lp'), other, 'first gets it for the session it presented last');
  await settle(first);
  await settle(second);
  const onFirst = first.eventFrames.filter((f) => f.payload.toString() === 'EVENT request_accepted lp');
  t.same(onFirst.map((f) => f.session), [other], 'once, for `other` only');
  const onSecond = second.eventFrames.filter((f) => f.payload.toString() === 'EVENT request_accepted lp');
  t.same(onSecond.map((f) => f.session), [s], 'once, for `s` only');

  // A session presented only on a third connection: the event goes there, not to the first two.
  const third = await open(t);
  const solo = await open(t);
  const soloSession = await signUp(solo, 'lp-solo');
  await third.request('whoami', soloSession);
  await solo.request('whoami', 0n); // carries no session: `solo` still last presented soloSession
  await expectAnswer(third, 'join_group lp', 'OK request sent', soloSession);
  await expectAnswer(owner.c, 'accept_request lp lp-solo', 'OK lp-solo joined lp', owner.s);
  t.equal(await eventSession(third, 'EVENT request_accepted lp'), soloSession);
  await settle(first);
  await settle(second);
  t.equal(first.events.filter((e) => e === 'EVENT request_accepted lp').length, 1, 'nothing more on the first');
  t.equal(second.events.filter((e) => e === 'EVENT request_accepted lp').length, 1, 'nothing more on the second');

  // Closing one connection does not stop the events on the other.
  await third.close();
  await expectAnswer(second, 'leave_group lp', 'OK left lp', s);
  t.equal(await eventSession(solo, 'EVENT member_left lp lp-user'), soloSession, 'the solo session still gets events on solo');
});

t.test('no event to a logged-out session', async (t) => {
  const owner = await member(t, 'lo-owner');
  await expectAnswer(owner.c, 'create_group lo', 'OK group created', owner.s);
  const gone = await open(t);
  const live = await open(t);
  const s1 = await signUp(gone, 'lo-user');
  const s2 = await login(live, 'lo-user', 'lo-user-pw');
  await live.request('whoami', s2);
  await expectAnswer(gone, 'join_group lo', 'OK request sent', s1);
  // s1 ends; its connection's most recent request carried it.
  await expectAnswer(gone, 'logout', 'OK logged out sessions=1', s1);

  await expectAnswer(owner.c, 'accept_request lo lo-user', 'OK lo-user joined lo', owner.s);
  t.equal(await eventSession(live, 'EVENT request_accepted lo'), s2, 'the live session of the user gets it');
  await settle(gone);
  t.same(gone.events, [], 'the logged-out session gets nothing');

  // Same after the owner logs out: join requests reach nobody, and nothing breaks.
  await expectAnswer(owner.c, 'logout', 'OK logged out sessions=0', owner.s);
  const late = await member(t, 'lo-late');
  await expectAnswer(late.c, 'join_group lo', 'OK request sent', late.s);
  await settle(owner.c);
  t.notOk(owner.c.events.some((e) => e.includes('lo-late')), 'no join_request to the logged-out owner');
  // Logging in again and presenting the new session brings the events back.
  const again = await login(owner.c, 'lo-owner', 'lo-owner-pw');
  await owner.c.request('whoami', again);
  await expectAnswer(live, 'leave_group lo', 'OK left lo', s2);
  t.equal(await eventSession(owner.c, 'EVENT member_left lo lo-user'), again);
});

import t from 'tap';
import { applyReply, formatPrompt, INITIAL_STATE, userFromLogin, userFromWhoami } from '@tracker-cluster/client';
import type { ClientState } from '@tracker-cluster/client';

const BIG = 0xfedc_ba98_7654_3210n; // above 2^53: must stay a bigint
const addr = { host: '127.0.0.1', port: 7001 };

t.test('parsing user names out of answers', async (t) => {
  t.equal(userFromLogin('logged in as alice sessions=1'), 'alice');
  t.equal(userFromLogin('logged in as a.b-c_d sessions=12'), 'a.b-c_d');
  t.equal(userFromLogin('logged out sessions=0'), undefined);
  t.equal(userFromLogin('logged in as alice'), undefined);
  t.equal(userFromWhoami('bob sessions=2'), 'bob');
  t.equal(userFromWhoami('PONG'), undefined);
  t.equal(userFromWhoami('role=primary epoch=1'), undefined);
});

t.test('the response session is the session from now on', async (t) => {
  let s: ClientState = INITIAL_STATE;
  s = applyReply(s, 'create_user', { session: 0n, payload: 'OK user created' });
  t.same(s, { session: 0n, user: undefined });

  s = applyReply(s, 'login', { session: BIG, payload: 'OK logged in as alice sessions=1' });
  t.equal(s.session, BIG);
  t.equal(typeof s.session, 'bigint');
  t.equal(s.user, 'alice');
  t.equal(formatPrompt(s, addr, 'primary'), 'alice@127.0.0.1:7001 (primary)> ');
  t.equal(formatPrompt(s, addr), 'alice@127.0.0.1:7001> ', 'no role known');
  t.equal(formatPrompt(s, { host: '::1', port: 7002 }), 'alice@[::1]:7002> ');

  s = applyReply(s, 'create_group', { session: BIG, payload: 'OK group created' });
  t.same(s, { session: BIG, user: 'alice' }, 'other answers keep session and user');

  s = applyReply(s, 'create_group', { session: BIG, payload: 'ERR GROUP_EXISTS group g exists' });
  t.same(s, { session: BIG, user: 'alice' }, 'so do errors that keep the session');

  s = applyReply(s, 'login', { session: BIG, payload: 'ERR ALREADY_LOGGED_IN already logged in' });
  t.same(s, { session: BIG, user: 'alice' });

  s = applyReply(s, 'logout', { session: 0n, payload: 'OK logged out sessions=0' });
  t.same(s, { session: 0n, user: undefined }, 'logout clears the user');
  t.equal(formatPrompt(s, addr, 'replica'), '127.0.0.1:7001 (replica)> ', 'logged out: where only');
});

t.test('an expired session (answer carries 0) clears the user', async (t) => {
  const s = applyReply({ session: 5n, user: 'alice' }, 'whoami', { session: 0n, payload: 'ERR AUTH_REQUIRED session expired' });
  t.same(s, { session: 0n, user: undefined });
});

t.test('whoami tells the user; an unexplained new session forgets it', async (t) => {
  let s = applyReply({ session: 7n, user: undefined }, 'whoami', { session: 7n, payload: 'OK carol sessions=3' });
  t.same(s, { session: 7n, user: 'carol' });
  t.equal(formatPrompt(s, addr), 'carol@127.0.0.1:7001> ');
  s = applyReply(s, 'ping', { session: 8n, payload: 'OK PONG' });
  t.same(s, { session: 8n, user: undefined });
  t.equal(formatPrompt(s, addr), '127.0.0.1:7001> ');
  t.equal(formatPrompt(INITIAL_STATE, undefined), 'tracker> ', 'no connection');
});

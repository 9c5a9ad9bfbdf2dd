import { NO_SESSION, TrackerError, formatSessionId, ok } from '@tracker-cluster/protocol';
import { dummyVerify, hashPassword, verifyPassword } from '../auth/password.js';
import type { Reply, RequestContext, Services } from '../services.js';
import type { ChangeBody } from '../state/changes.js';
import type { SessionRow } from '../store/store.js';
import type { Command } from './command.js';
import { commit, sessionOf, userOf } from './command.js';
import { checkName, checkPassword } from './checks.js';
import { sessionsToEvict } from './session-cap.js';
import { sessionExpiry } from './session-ttl.js';

export const createUser: Command = {
  name: 'create_user',
  auth: false,
  args: ['user', 'password'],
  summary: 'create an account',
  write: true,
  decidesLate: true,
  async run(ctx, [user, password]) {
    const { services } = ctx;
    checkName('user', user as string);
    checkPassword(password as string);
    const { store, options, clock } = services;
    // Checked before the expensive hash, and again after it: another request may have won meanwhile.
    if (store.user(user as string)) throw new TrackerError('USER_EXISTS', `user ${user} already exists`);
    const hashed = await services.hashSlots.run(() => hashPassword(password as string, options.scryptCost));
    if (store.user(user as string)) throw new TrackerError('USER_EXISTS', `user ${user} already exists`);
    return commit(ctx, { type: 'user_created', user: user as string, ...hashed, at: clock.now() }, { payload: ok('user created') });
  },
};

function throttleKeys(ctx: RequestContext, user: string): [string, string] {
  return [`user:${user}`, `conn:${ctx.origin}`];
}

function refuseIfThrottled(services: Services, keys: readonly string[], now: number): void {
  for (const key of keys) {
    const wait = services.loginFailures.retryAfter(key, now);
    if (wait > 0) {
      throw new TrackerError('RATE_LIMITED', `too many failed logins; try again in ${Math.ceil(wait / 1000)} s`);
    }
  }
}

export const login: Command = {
  name: 'login',
  auth: false,
  args: ['user', 'password'],
  summary: 'log in; the answer carries the new session id',
  write: true,
  decidesLate: true,
  async run(ctx, [user, password]): Promise<Reply> {
    const { services } = ctx;
    if (ctx.session) throw new TrackerError('ALREADY_LOGGED_IN', `already logged in as ${ctx.session.user}; log out first`);
    checkName('user', user as string);
    checkPassword(password as string);
    const { store, options, clock, loginFailures, entropy } = services;
    const keys = throttleKeys(ctx, user as string);
    refuseIfThrottled(services, keys, clock.now());
    const row = store.user(user as string);
    const valid = await services.hashSlots.run(async () => {
      // Checked again once this attempt's turn has come, and counted as a failure before it is hashed: attempts sent
      // side by side on many connections all passed the check above, and those hashing at once (one per core) would
      // otherwise all be tried before the first of them failed.
      const at = clock.now();
      refuseIfThrottled(services, keys, at);
      for (const key of keys) loginFailures.record(key, at);
      let matches = false;
      if (row) matches = await verifyPassword(password as string, row);
      else await dummyVerify(password as string, options.scryptCost);
      // A success clears the user's count (below); the connection's keeps its earlier failures, not this one.
      if (matches) loginFailures.forget(keys[1], at);
      return matches;
    });
    if (!valid) throw new TrackerError('INVALID_CREDENTIALS', 'unknown user or wrong password');
    const now = clock.now();
    loginFailures.clear(keys[0]);
    let id = entropy.sessionId();
    while (store.session(formatSessionId(id))) id = entropy.sessionId();
    // Past the cap the login still succeeds: refusing it would lock out a user whose client lost its
    // session ids until they expire. The least recently active sessions end instead, chosen here and
    // carried in the change, so that the replica and a replay end the same ones.
    const live = store.liveSessionsOf(user as string, now).map((key) => ({ id: key, expires_at: (store.session(key) as SessionRow).expires_at }));
    const evicted = sessionsToEvict(live, options.maxSessionsPerUser);
    // This session counts: it is live from now.
    const sessions = live.length - evicted.length + 1;
    const body: ChangeBody = { type: 'session_opened', session: formatSessionId(id), user: user as string, at: now, expires: sessionExpiry(now, options.sessionTtlMs) };
    if (evicted.length > 0) body.evicted = evicted;
    const reply = await commit(ctx, body, { payload: ok(`logged in as ${user} sessions=${sessions}`), session: id });
    if (evicted.length > 0) {
      // Session ids are credentials: the log names the user and how many, never which.
      services.logger.info({ user, ended: evicted.length, max: options.maxSessionsPerUser }, 'login past --max-sessions-per-user ended the least recently active session(s)');
    }
    return reply;
  },
};

export const logout: Command = {
  name: 'logout',
  auth: true,
  args: [],
  summary: 'end this session',
  write: true,
  async run(ctx): Promise<Reply> {
    const { store, clock } = ctx.services;
    const session = sessionOf(ctx);
    const left = store.liveSessionsOf(session.user, clock.now()).filter((id) => id !== session.key).length;
    return commit(ctx, { type: 'session_closed', session: session.key }, { payload: ok(`logged out sessions=${left}`), session: NO_SESSION });
  },
};

export const whoami: Command = {
  name: 'whoami',
  auth: true,
  args: [],
  summary: 'the user of this session and its live session count',
  run(ctx): Reply {
    const user = userOf(ctx);
    const n = ctx.services.store.liveSessionCount(user, ctx.services.clock.now());
    return { payload: ok(`${user} sessions=${n}`) };
  },
};


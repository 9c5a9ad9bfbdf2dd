/**
 * Small command-level helpers over a WireClient, for the integration tests:
 * create users and log in, parse `status` and list answers, wait on a
 * deadline, and check that nothing more arrived on a connection.
 *
 * They throw on an unexpected answer (with the answer in the message), so a
 * test fails where the setup went wrong rather than later.
 */
import { formatCommand } from '@tracker-cluster/protocol';
import type { Reply, WireClient } from './wire.js';

/** Sends `words` as one quoted command line. */
export function send(c: WireClient, words: readonly string[], session = 0n): Promise<Reply> {
  return c.request(formatCommand(words), session);
}

/** Sends `payload` and throws unless the answer is exactly `expected`. */
export async function expectAnswer(c: WireClient, payload: string, expected: string, session = 0n): Promise<Reply> {
  const reply = await c.request(payload, session);
  if (reply.payload !== expected) {
    throw new Error(`${JSON.stringify(payload)} answered ${JSON.stringify(reply.payload)}, expected ${JSON.stringify(expected)}`);
  }
  return reply;
}

export async function createUser(c: WireClient, user: string, password: string): Promise<void> {
  const reply = await send(c, ['create_user', user, password]);
  if (reply.payload !== 'OK user created') throw new Error(`create_user ${user}: ${reply.payload}`);
}

/** Logs in and returns the new session id (throws on anything but OK). */
export async function login(c: WireClient, user: string, password: string): Promise<bigint> {
  const reply = await send(c, ['login', user, password]);
  if (!reply.payload.startsWith(`OK logged in as ${user} sessions=`) || reply.session === 0n) {
    throw new Error(`login ${user}: ${reply.payload} (session ${reply.session})`);
  }
  return reply.session;
}

/** Creates the user and logs in; the session is then presented on `c` (whoami) so that events reach `c`. */
export async function signUp(c: WireClient, user: string, password = `${user}-pw`): Promise<bigint> {
  await createUser(c, user, password);
  const session = await login(c, user, password);
  await expectAnswer(c, 'whoami', `OK ${user} sessions=1`, session);
  return session;
}

/** `OK key=value ...` of `status` as a record. */
export function parseStatus(payload: string): Record<string, string> {
  if (!payload.startsWith('OK ')) throw new Error(`status answered ${payload}`);
  const fields: Record<string, string> = {};
  for (const word of payload.slice(3).split(' ')) {
    const eq = word.indexOf('=');
    if (eq <= 0) throw new Error(`status word without a value: ${JSON.stringify(word)} in ${payload}`);
    fields[word.slice(0, eq)] = word.slice(eq + 1);
  }
  return fields;
}

export async function status(c: WireClient): Promise<Record<string, string>> {
  return parseStatus((await c.request('status')).payload);
}

/** The rows of an `OK <n>` list answer; throws unless the count matches the rows. */
export function parseList(payload: string): string[] {
  const [head, ...rows] = payload.split('\n');
  const m = /^OK (\d+)$/.exec(head ?? '');
  if (!m) throw new Error(`not a list answer: ${JSON.stringify(payload)}`);
  const n = Number(m[1]);
  if (n === 0 && payload === 'OK 0') return [];
  if (rows.length !== n) throw new Error(`list says ${n} rows but has ${rows.length}: ${JSON.stringify(payload)}`);
  return rows;
}

/**
 * Resolves once every frame the tracker wrote on `c` before answering this
 * ping has been received: events sent earlier are then in `c.events`. The
 * ping carries no session, so it does not change which session `c` last
 * presented.
 */
export async function settle(c: WireClient): Promise<void> {
  const reply = await c.request('ping');
  if (reply.payload !== 'OK PONG') throw new Error(`ping answered ${reply.payload}`);
}

/** Resolves true if `promise` settles within `ms`, false otherwise (a deadline, not a sleep). */
export async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([promise.then(
      () => true,
      () => true,
    ), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

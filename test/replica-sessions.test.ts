/**
 * Sessions and events on a replica: activity there extends a session's TTL on
 * both trackers (through the primary, so their states stay equal), and events
 * reach a client that only talks to the replica.
 */
import Database from 'better-sqlite3';
import t from 'tap';
import type { Test } from 'tap';
import { createUser, signUp, status } from './helpers/commands.js';
import { promote, startCluster, waitForConvergence } from './helpers/cluster.js';
import type { RunningTracker } from './helpers/tracker.js';
import { connect, waitFor } from './helpers/wire.js';
import type { WireClient } from './helpers/wire.js';

t.test('activity on the replica alone keeps a session alive on both trackers, past its TTL', async (t) => {
  const ttl = ['--session-ttl', '3000ms'];
  const { primary, replica } = await startCluster(t, { primary: { args: ttl }, replica: { args: ttl } });
  const p = await connect(primary.port);
  const r = await connect(replica.port);
  const r2 = await connect(replica.port);
  t.teardown(() => Promise.all([p.close(), r.close(), r2.close()]));
  const alice = await signUp(p, 'alice');
  await waitForConvergence(primary, replica, { acked: true });

  // Use the session only at the replica, for well past the TTL (time passing is the condition).
  const until = Date.now() + 5000;
  while (Date.now() < until) {
    const who = await r.request('whoami', alice);
    t.equal(who.payload, 'OK alice sessions=1', 'alive at the replica');
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  t.equal((await p.request('whoami', alice)).payload, 'OK alice sessions=1', 'and at the primary, which never saw the activity itself');
  const converged = await waitForConvergence(primary, replica, { acked: true });
  t.equal(converged.replica['log_hash'], converged.primary['log_hash'], 'the touches went through the log: the states are equal');
});

/** Uses `session` on `c` every 250 ms for `ms` (time passing is the condition under test): every answer must be OK. */
async function keepUsing(t: Test, c: WireClient, session: bigint, expected: string, ms: number): Promise<void> {
  const until = Date.now() + ms;
  let answers = 0;
  while (Date.now() < until) {
    const who = await c.request('whoami', session);
    answers++;
    if (who.payload !== expected) {
      t.fail(`answer ${answers}, ${ms - (until - Date.now())} ms in: ${who.payload}`);
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  t.pass(`${answers} answers over ${ms} ms: ${expected}`);
}

/** A cluster whose sessions last `ttlMs`, a connection to each tracker, and alice signed up at the primary and replicated. */
async function shortSessions(t: Test, ttlMs: number): Promise<{ primary: RunningTracker; replica: RunningTracker; p: WireClient; r: WireClient; alice: bigint }> {
  const ttl = ['--session-ttl', `${ttlMs}ms`];
  const { primary, replica } = await startCluster(t, { primary: { args: ttl }, replica: { args: ttl } });
  const p = await connect(primary.port);
  const r = await connect(replica.port);
  t.teardown(() => Promise.all([p.close(), r.close()]));
  const alice = await signUp(p, 'alice');
  await waitForConvergence(primary, replica, { acked: true });
  return { primary, replica, p, r, alice };
}

t.test('a session used only at the replica while the primary is down lives on, and a promotion keeps its extension', async (t) => {
  // A TTL long enough that the promotion, done right after the last use, never races the session's end.
  const { primary, replica, r, alice } = await shortSessions(t, 6000);
  await primary.kill9();
  await keepUsing(t, r, alice, 'OK alice sessions=1', 7500);
  const usedUntil = Date.now();
  t.match(await promote(replica), /^OK promoted epoch=2 /);
  t.equal((await status(r))['role'], 'primary');

  // The extension is in the new history's log, durable before the promotion was answered, not only in memory.
  const db = new Database(`${replica.dbPath}-log`, { readonly: true, fileMustExist: true });
  t.teardown(() => db.close());
  const changes = (db.prepare('SELECT change FROM sync_log ORDER BY seq').pluck().all() as string[]).map((c) => JSON.parse(c) as Record<string, unknown>);
  const promotion = changes.findIndex((c) => c['type'] === 'promoted');
  t.ok(promotion >= 0, 'the promotion is logged');
  const touched = changes.slice(promotion + 1).find((c) => c['type'] === 'sessions_touched') as { sessions: Array<[string, number]> } | undefined;
  const extension = touched?.sessions.find(([id]) => id === alice.toString());
  t.ok(extension && extension[1] > usedUntil, `the session's extension follows the promotion: ${JSON.stringify(touched)}`);
  // Checked after the log, where a use now would write its own extension: alive with a TTL to spare.
  t.equal((await r.request('whoami', alice)).payload, 'OK alice sessions=1', 'alive at the new primary');
});

t.test('a session used only at the replica while the primary is down lives on at the primary when it returns', async (t) => {
  const { primary, replica, p, r, alice } = await shortSessions(t, 3000);
  await p.close();
  await primary.kill9();
  await keepUsing(t, r, alice, 'OK alice sessions=1', 5000);
  // Back on its port, past the session's expiry as it knows it. The session is still in use at the replica
  // (as a client's would be) while the replica's link comes back, within its reconnect backoff of up to 5 s,
  // longer than this test's TTL: the touch it sends when the link streams extends the session at the primary.
  const back = await primary.restart(['--port', String(primary.port)]);
  const b = await connect(back.port);
  t.teardown(() => b.close());
  // Asking the primary with an expired session changes nothing, so polling it is safe.
  await waitFor(
    async () => {
      if ((await r.request('whoami', alice)).payload !== 'OK alice sessions=1') throw new Error('the session ended at the replica');
      return (await b.request('whoami', alice)).payload === 'OK alice sessions=1' ? true : undefined;
    },
    { timeoutMs: 20_000, message: "the returned primary to take the replica's extension" },
  );
  const converged = await waitForConvergence(back, replica, { acked: true });
  t.equal(converged.replica['log_hash'], converged.primary['log_hash'], 'through the log: the states are equal');
  t.equal((await r.request('whoami', alice)).payload, 'OK alice sessions=1', 'and alive at the replica');
});

t.test('events reach a client that only talks to the replica', async (t) => {
  const { primary, replica } = await startCluster(t);
  const p = await connect(primary.port);
  const r = await connect(replica.port);
  const r2 = await connect(replica.port);
  t.teardown(() => Promise.all([p.close(), r.close(), r2.close()]));
  const owner = await signUp(p, 'owner');
  const joiner = await signUp(p, 'joiner');
  t.equal((await p.request('create_group club', owner)).payload, 'OK group created');
  await waitForConvergence(primary, replica, { acked: true });
  t.equal((await r.request('whoami', owner)).payload, 'OK owner sessions=1', 'the owner presents the session at the replica');

  // On its own connection: a request carrying the joiner's session would make `r` the joiner's (docs/protocol.md §4).
  t.equal((await r2.request('join_group club', joiner)).payload, 'OK request sent', 'a join request, forwarded through the replica');
  await waitFor(() => r.eventFrames.some((e) => e.payload.toString('utf8') === 'EVENT join_request club joiner' && e.session === owner), {
    message: 'the join_request event at the replica',
  });
  t.pass('the owner heard it at the replica, with the session in the frame');
});

t.test('failed logins through the replica count per client connection, not once for all its clients', async (t) => {
  const limit = ['--max-login-failures', '2', '--login-window', '1m'];
  const { primary, replica } = await startCluster(t, { primary: { args: limit }, replica: { args: limit } });
  const p = await connect(primary.port);
  const clients = await Promise.all(Array.from({ length: 4 }, () => connect(replica.port)));
  t.teardown(() => Promise.all([p.close(), ...clients.map((c) => c.close())]));
  await createUser(p, 'victim', 'right');
  const [first, second, third, fourth] = clients as [WireClient, WireClient, WireClient, WireClient];
  const refused = 'ERR INVALID_CREDENTIALS unknown user or wrong password';

  // Three failures, each by another client of the replica and for another name: no one is over the limit.
  t.equal((await first.request('login nobody1 wrong')).payload, refused);
  t.equal((await second.request('login nobody2 wrong')).payload, refused);
  t.equal((await third.request('login nobody3 wrong')).payload, refused);
  t.equal((await fourth.request('login victim right')).payload, 'OK logged in as victim sessions=1', 'another client logs in through the replica');

  // The limit still holds for one client of the replica.
  t.equal((await first.request('login nobody4 wrong')).payload, refused);
  t.match((await first.request('login victim right')).payload, /^ERR RATE_LIMITED too many failed logins/, 'the client that failed twice is limited');
});

t.test('a write sent to the replica as soon as it says it is ready is forwarded, not refused while its link is set up', async (t) => {
  const { replica } = await startCluster(t);
  const r = await connect(replica.port);
  t.teardown(() => r.close());
  t.equal((await r.request('create_user early pw')).payload, 'OK user created', 'the first write, right after the ready line');
  t.match((await r.request('login early pw')).payload, /^OK logged in as early sessions=1$/);
});

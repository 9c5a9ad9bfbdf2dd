/**
 * A burst of sign-ups must not hold up durable writes. Password hashing and
 * the change log's fdatasync share libuv's thread pool; the tracker runs only
 * a few hashes at once so that the log's sync is never queued behind all of
 * them. Observed by order, not by time: a write sent while a hundred
 * sign-ups are being hashed is answered before most of them.
 */
import t from 'tap';
import { createUser, signUp } from './helpers/commands.js';
import { metricSample, startTracker } from './helpers/tracker.js';
import { connect, waitFor } from './helpers/wire.js';
import type { WireClient } from './helpers/wire.js';

const SIGN_UPS = 100;

t.test('a burst of sign-ups waits for hashing slots; a durable write sent meanwhile is answered before most of them', async (t) => {
  // The real cost (about 50 ms a hash here), so that the burst outlasts the write by far.
  const tracker = await startTracker(t, { args: ['--scrypt-cost', '16384', '--admin-port', '0'] });
  const writer = await connect(tracker.port);
  t.teardown(() => writer.close());
  const session = await signUp(writer, 'writer');

  // One sign-up per connection: a connection hashes one password at a time, so a burst needs many.
  const burst: WireClient[] = [];
  t.teardown(() => Promise.all(burst.map((c) => c.close())));
  for (let i = 0; i < SIGN_UPS; i++) burst.push(await connect(tracker.port));
  let answered = 0;
  const signUps = burst.map((c, i) =>
    createUser(c, `burst${i}`, 'pw').then(() => {
      answered++;
    }),
  );
  // The first answer comes a hash's time (~50 ms) after the burst was sent, long after the tracker read all of it.
  await waitFor(() => answered > 0, { timeoutMs: 20_000, message: 'the first sign-up answered' });
  const waiting = metricSample(await (await fetch(`${tracker.adminUrl}/metrics`)).text(), 'tracker_password_hashes_waiting') ?? 0;
  t.ok(waiting > 0, `${waiting} sign-ups wait for a hashing slot`);

  const write = await writer.request('create_group during-the-burst', session);
  t.equal(write.payload, 'OK group created');
  t.ok(answered < SIGN_UPS / 2, `the write was answered after ${answered} of ${SIGN_UPS} sign-ups, not behind them all`);

  await Promise.all(signUps);
  t.equal(answered, SIGN_UPS, 'every sign-up was answered in the end');
  const after = metricSample(await (await fetch(`${tracker.adminUrl}/metrics`)).text(), 'tracker_password_hashes_waiting');
  t.equal(after, 0, 'and nothing waits any more');
});

t.test('wrong passwords for one user sent side by side on many connections: only --max-login-failures of them are tried', async (t) => {
  const tracker = await startTracker(t, { args: ['--scrypt-cost', '16384', '--max-login-failures', '5'] });
  const setup = await connect(tracker.port);
  t.teardown(() => setup.close());
  await createUser(setup, 'victim', 'the-real-one');
  const guessers: WireClient[] = [];
  t.teardown(() => Promise.all(guessers.map((c) => c.close())));
  for (let i = 0; i < 20; i++) guessers.push(await connect(tracker.port));
  // Each guess on a connection of its own: the per-connection limit never applies, only the user's.
  const answers = await Promise.all(guessers.map((c, i) => c.request(`login victim guess${i}`)));
  const codes = answers.map((a) => /^ERR (\w+)/.exec(a.payload)?.[1]);
  const tried = codes.filter((c) => c === 'INVALID_CREDENTIALS').length;
  t.same([...new Set(codes)].sort(), ['INVALID_CREDENTIALS', 'RATE_LIMITED'], 'every guess failed, most without being tried');
  // Exactly the limit, however many hashes run at once: each is counted before it is hashed.
  t.equal(tried, 5, `${tried} of 20 guesses were tried`);
});

/**
 * A `--serve` seeder and its session (docs/client.md, "Sessions and the
 * registry"): it keeps the session alive while it serves (`--keepalive-ms`),
 * so its share outlives the trackers' session TTL; and when the session ends
 * anyway, it says so on stderr instead of silently serving nothing. The
 * tracker runs with a 3 s TTL; time is measured by idle control sessions
 * expiring, not by sleeping.
 */
import path from 'node:path';
import t from 'tap';
import type { Test } from 'tap';
import { createUser, login, send } from './helpers/commands.js';
import { makeFile, makeGroup, runClient, spawnClient } from './helpers/peers.js';
import type { SpawnedClient } from './helpers/peers.js';
import { makeTempDir, startTracker } from './helpers/tracker.js';
import type { RunningTracker } from './helpers/tracker.js';
import { connect, waitFor } from './helpers/wire.js';
import type { WireClient } from './helpers/wire.js';

const TTL = ['--session-ttl', '3s', '--session-purge-interval', '1s'];

/**
 * Resolves once a session made now has been idle for a whole TTL (and so has
 * every session idle since before): `user`, a fresh user, gets an idle
 * control session and a poller counting the live ones.
 */
async function aTtlPasses(c: WireClient, user: string): Promise<void> {
  await createUser(c, user, `${user}-pw`);
  await login(c, user, `${user}-pw`); // the control: never used again
  const poller = await login(c, user, `${user}-pw`);
  const count = async (): Promise<number> => Number(/sessions=(\d+)/.exec((await send(c, ['whoami'], poller)).payload)?.[1]);
  if ((await count()) !== 2) throw new Error('the control user has other sessions');
  await waitFor(async () => (await count()) === 1, { timeoutMs: 20_000, message: `${user}'s idle control session to expire` });
}

/**
 * A tracker with the short TTL, a group of `owner` and `member`, and `owner`
 * seeding f.bin (`size` bytes, 64 KiB pieces) with `--serve` and `--keepalive-ms keepaliveMs`.
 */
async function seeding(t: Test, owner: string, member: string, keepaliveMs: number, size = 64 * 1024): Promise<{ tracker: RunningTracker; dir: string; seeder: SpawnedClient }> {
  const tracker = await startTracker(t, { args: TTL });
  const dir = await makeTempDir(t);
  await makeGroup(t, tracker.port, 'g', owner, [member]);
  await makeFile(dir, 'f.bin', size);
  const seeder = spawnClient(
    t,
    ['--tracker', tracker.address, '--data-dir', path.join(dir, owner), '--serve', '--keepalive-ms', String(keepaliveMs), '--exec', `login ${owner} ${owner}-pw; upload_file f.bin g 64k`],
    dir,
  );
  await seeder.waitOut(/OK shared f\.bin seeders=1/);
  return { tracker, dir, seeder };
}

t.test('a --serve seeder keeps its session, and its share, past the session TTL', async (t) => {
  const { tracker, dir, seeder } = await seeding(t, 'ann', 'bea', 1000, 3 * 64 * 1024 + 7);
  const c = await connect(tracker.port);
  t.teardown(() => c.close());
  // Two TTLs after the upload, with the purge running every second: an idle seeder's session would be gone.
  await aTtlPasses(c, 'clock1');
  await aTtlPasses(c, 'clock2');
  const bea = await login(c, 'bea', 'bea-pw');
  t.match((await send(c, ['list_files', 'g'], bea)).payload, /^OK 1\nf\.bin .*seeders=1$/, 'still shared');
  const dest = await makeTempDir(t);
  const run = await runClient(t, ['--tracker', tracker.address, '--data-dir', path.join(dir, 'bea'), '--exec', `login bea bea-pw; download_file g f.bin ${dest}; wait_downloads`], dir);
  t.equal(run.code, 0, run.stdout + run.stderr);
  t.match(run.stdout, /\[C\] \[g\] f\.bin 100%/, 'downloaded from the seeder');
  t.notMatch(seeder.stderr(), /session ended|session has ended/, 'the seeder reported nothing wrong');
});

t.test('a --serve seeder whose session ends anyway says so on stderr', async (t) => {
  // A keep-alive slower than the TTL: the session expires between two of them.
  const { tracker, seeder } = await seeding(t, 'cal', 'dee', 6000);
  await waitFor(() => seeder.stderr().includes('[share] session ended: f.bin in g is no longer shared'), {
    timeoutMs: 20_000,
    message: `the seeder saying its share ended; stderr:\n${seeder.stderr()}`,
  });
  t.match(seeder.stderr(), "tracker-client: cal's session has ended at the tracker (expired or logged out); log in again");
  const c = await connect(tracker.port);
  t.teardown(() => c.close());
  const dee = await login(c, 'dee', 'dee-pw');
  t.equal((await send(c, ['list_files', 'g'], dee)).payload, 'OK 0', 'and indeed nobody shares it');
  t.equal(seeder.proc.exitCode, null, 'the seeder still runs (its exit is SIGTERM, as before)');
});

t.test('a seeder without keep-alive whose session expired says, as it leaves, that its shares ended with it', async (t) => {
  const { tracker, seeder } = await seeding(t, 'eve', 'fay', 0);
  const c = await connect(tracker.port);
  t.teardown(() => c.close());
  await aTtlPasses(c, 'clock3'); // the seeder's session, idle since the upload, has expired too
  seeder.proc.kill('SIGTERM');
  await seeder.exited;
  t.match(seeder.stderr(), '[share] session ended: f.bin in g is no longer shared', `stderr:\n${seeder.stderr()}`);
  t.notMatch(seeder.stderr(), /could not be withdrawn/, 'not a share left listed: the tracker ended it');
});

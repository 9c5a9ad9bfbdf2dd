/**
 * A download nobody can serve, with real client processes and a real tracker
 * (docs/client.md "How downloads run"): it fails with a reason that says
 * why — at once when the tracker lists no other peer, and after a bounded
 * time of asking the tracker again when every peer it lists is gone (the
 * connection refused) or does not have the file (`ERR NO_SUCH_FILE`) —
 * never after a silent wait for the 60 s stall.
 */
import path from 'node:path';
import t from 'tap';
import type { Test } from 'tap';
import { makeTempDir, startTracker } from './helpers/tracker.js';
import { send } from './helpers/commands.js';
import { waitFor } from './helpers/wire.js';
import { makeFile, makeGroup, pieceHashes, runClient, sha256, spawnClient } from './helpers/peers.js';

/** The reason of the one `[F]` line of `wait_downloads`. */
function failure(stdout: string): string | undefined {
  return /^\[F\] \[g\] f\.bin failed: (.*)$/m.exec(stdout)?.[1];
}

/** `user` (password `<user>-pw`) downloads g/f.bin with a client of its own and waits for the outcome, which must be a failure. */
async function downloadAndWait(t: Test, tracker: string, dir: string, user: string): Promise<{ stdout: string; stderr: string }> {
  const dest = await makeTempDir(t);
  const run = await runClient(t, ['--tracker', tracker, '--data-dir', path.join(dir, user), '--exec', `login ${user} ${user}-pw; download_file g f.bin ${dest}; wait_downloads`], dir, 120_000);
  t.equal(run.code, 1, run.stdout + run.stderr);
  return run;
}

t.test('nobody shares the file, or only this client: download_file answers ERR at once, nothing is queued', async (t) => {
  const tracker = await startTracker(t);
  const dir = await makeTempDir(t);
  await makeGroup(t, tracker.port, 'g', 'ann', ['bob']);
  await makeFile(dir, 'f.bin', 1000);
  const dest = await makeTempDir(t);
  const run = await runClient(
    t,
    ['--tracker', tracker.address, '--data-dir', path.join(dir, 'bob'), '--keep-going', '--exec', `login bob bob-pw; download_file g f.bin ${dest}; upload_file f.bin g; download_file g f.bin ${dest}; show_downloads`],
    dir,
  );
  t.equal(run.code, 1, run.stdout + run.stderr);
  t.match(run.stdout, /^ERR NO_SUCH_FILE nobody shares f\.bin in g$/m, 'the tracker lists nobody');
  t.match(run.stdout, /^ERR NO_SUCH_FILE nobody else shares f\.bin in g now: the tracker lists only this client$/m, 'the tracker lists only this client');
  t.match(run.stdout, /^OK 0$/m, 'nothing was queued');
  t.notMatch(run.stdout, /download started/);
});

t.test('every listed seeder is gone (connection refused): the download fails saying so, not after the 60 s stall', async (t) => {
  const tracker = await startTracker(t);
  const dir = await makeTempDir(t);
  await makeGroup(t, tracker.port, 'g', 'ola', ['pat', 'quin']);
  await makeFile(dir, 'f.bin', 300_000);
  const seeders = ['ola', 'pat'].map((user) =>
    spawnClient(t, ['--tracker', tracker.address, '--data-dir', path.join(dir, user), '--serve', '--exec', `login ${user} ${user}-pw; upload_file f.bin g 64k`], dir),
  );
  for (const seeder of seeders) await seeder.waitOut(/OK shared f\.bin/);
  // Killed: no stop_share, so their shares stay listed while their sessions live.
  for (const seeder of seeders) await seeder.kill('SIGKILL');
  const run = await downloadAndWait(t, tracker.address, dir, 'quin');
  t.match(run.stdout, /^OK download started f\.bin size=300000 pieces=5 have=0 peers=2$/m);
  t.match(
    failure(run.stdout),
    /^no usable peer for 20 s: none of the 2 peers the tracker lists could be reached \(127\.0\.0\.1:\d+: ECONNREFUSED; 127\.0\.0\.1:\d+: ECONNREFUSED\)$/,
    'why, for each listed peer',
  );
  t.match(run.stdout, /^\[event\] download_failed g f\.bin no usable peer for 20 s: /m);
});

t.test('the listed seeder answers ERR NO_SUCH_FILE: the download fails saying so, not after the 60 s stall', async (t) => {
  const tracker = await startTracker(t);
  const dir = await makeTempDir(t);
  const { c, session } = await makeGroup(t, tracker.port, 'g', 'ann', ['cal', 'dee']);
  // A real client that serves pieces but shares nothing; the tracker is told it shares f.bin.
  const cal = spawnClient(t, ['--tracker', tracker.address, '--data-dir', path.join(dir, 'cal'), '--serve', '--exec', 'login cal cal-pw'], dir);
  const address = await waitFor(() => /serving pieces on (127\.0\.0\.1:\d+)/.exec(cal.stderr())?.[1], { timeoutMs: 30_000, message: 'the serving line' });
  const data = await makeFile(dir, 'f.bin', 1000);
  const answer = await send(c, ['upload_file', 'g', 'f.bin', '1000', sha256(data), '1000', address, pieceHashes(data, 1000).join(',')], session);
  t.match(answer.payload, /^OK shared/);
  const run = await downloadAndWait(t, tracker.address, dir, 'dee');
  t.match(run.stdout, /^OK download started f\.bin size=1000 pieces=1 have=0 peers=1$/m);
  t.equal(
    failure(run.stdout),
    `no usable peer for 20 s: the only peer the tracker lists does not have the file (${address}: NO_SUCH_FILE this peer does not share that file in g)`,
  );
});

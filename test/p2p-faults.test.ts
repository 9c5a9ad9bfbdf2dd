/**
 * Downloads that meet trouble, with real client processes: a seeder killed
 * (SIGKILL) mid-download, and the downloader itself killed and restarted
 * (it resumes from its `.part.json`). The seeders are slowed with
 * `--upload-rate` so that "mid-download" is a real moment, not a race.
 */
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import t from 'tap';
import { makeTempDir, startTracker } from './helpers/tracker.js';
import { waitFor } from './helpers/wire.js';
import { makeFile, makeGroup, runClient, sha256, sha256OfFile, sidecarPieces, spawnClient } from './helpers/peers.js';

const PIECE = 64 * 1024;
const RATE = String(1024 * 1024); // bytes/s per seeder

t.test('a seeder killed mid-download: its pieces come from the other seeder', async (t) => {
  const tracker = await startTracker(t);
  const dir = await makeTempDir(t);
  await makeGroup(t, tracker.port, 'g', 'ola', ['pat', 'quin']);
  const data = await makeFile(dir, 'big.bin', 64 * PIECE);
  const seeders = ['ola', 'pat'].map((user) =>
    spawnClient(
      t,
      ['--tracker', tracker.address, '--data-dir', path.join(dir, user), '--upload-rate', RATE, '--serve', '--exec', `login ${user} ${user}-pw; upload_file big.bin g 64k`],
      dir,
    ),
  );
  await seeders[0]?.waitOut(/OK shared big\.bin/);
  await seeders[1]?.waitOut(/OK shared big\.bin/);
  const dest = await makeTempDir(t);
  const downloader = spawnClient(
    t,
    ['--tracker', tracker.address, '--data-dir', path.join(dir, 'quin'), '--exec', `login quin quin-pw; download_file g big.bin ${dest}; wait_downloads`],
    dir,
  );
  await downloader.waitOut(/peers=2/);
  await waitFor(async () => (await sidecarPieces(dest, 'big.bin')) >= 8, { timeoutMs: 30_000, message: 'some pieces' });
  await seeders[0]?.kill('SIGKILL');
  const done = await downloader.exited;
  t.equal(done.code, 0, downloader.stdout() + downloader.stderr());
  t.match(downloader.stdout(), /\[C\] \[g\] big\.bin 100% size=4194304 .* sources=2/);
  t.equal(await sha256OfFile(path.join(dest, 'big.bin')), sha256(data));
  t.same(await readdir(dest), ['big.bin']);
});

t.test('a download resumes after the downloading client is killed and started again', async (t) => {
  const tracker = await startTracker(t);
  const dir = await makeTempDir(t);
  await makeGroup(t, tracker.port, 'g', 'ray', ['sam']);
  const data = await makeFile(dir, 'resume me.bin', 64 * PIECE);
  const seeder = spawnClient(
    t,
    ['--tracker', tracker.address, '--data-dir', path.join(dir, 'ray'), '--upload-rate', RATE, '--serve', '--exec', 'login ray ray-pw; upload_file "resume me.bin" g 64k'],
    dir,
  );
  await seeder.waitOut(/OK shared "resume me\.bin"/);
  const dest = await makeTempDir(t);
  const args = ['--tracker', tracker.address, '--data-dir', path.join(dir, 'sam'), '--exec', `login sam sam-pw; download_file g "resume me.bin" ${dest}; wait_downloads`];
  const first = spawnClient(t, args, dir);
  const before = await waitFor(async () => {
    const n = await sidecarPieces(dest, 'resume me.bin');
    return n >= 16 ? n : undefined;
  }, { timeoutMs: 30_000, message: '16 verified pieces' });
  await first.kill('SIGKILL');
  t.ok((await readdir(dest)).includes('.resume me.bin.part'), 'the part file stays');
  const second = await runClient(t, args, dir);
  t.equal(second.code, 0, second.stdout + second.stderr);
  const have = Number(/have=(\d+)/.exec(second.stdout)?.[1]);
  t.ok(have >= before, `resumed with ${have} pieces (${before} seen before the kill)`);
  t.match(second.stdout, new RegExp(`\\[C\\] \\[g\\] "resume me\\.bin" 100% .* resumed=${have}`));
  t.equal(await sha256OfFile(path.join(dest, 'resume me.bin')), sha256(data));
  t.same(await readdir(dest), ['resume me.bin'], 'part and state files gone');
});

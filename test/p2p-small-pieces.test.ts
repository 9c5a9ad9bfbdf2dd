/**
 * Small pieces, with real client processes: a file of many small pieces has
 * a `HAVE` answer (`OK <pieces> <bitfield hex>`) larger than one piece, and
 * the downloader's frame limit must take it (docs/protocol.md §7 "Frame
 * limits"). It used to drop every peer with "bad frame (frame payload of
 * 1474 bytes exceeds the maximum of 1280)" and stall.
 */
import path from 'node:path';
import t from 'tap';
import { makeTempDir, startTracker } from './helpers/tracker.js';
import { makeFile, makeGroup, runClient, sha256, sha256OfFile, spawnClient } from './helpers/peers.js';

t.test('a 6,000,000-byte file in 1k pieces downloads from a real seeder', async (t) => {
  const tracker = await startTracker(t);
  const dir = await makeTempDir(t);
  await makeGroup(t, tracker.port, 'g', 'ann', ['bob']);
  const data = await makeFile(dir, 'k1.bin', 6_000_000);
  const seeder = spawnClient(t, ['--tracker', tracker.address, '--data-dir', path.join(dir, 'ann'), '--serve', '--exec', 'login ann ann-pw; upload_file k1.bin g 1k'], dir);
  await seeder.waitOut(/OK shared k1\.bin seeders=1/);
  const dest = await makeTempDir(t);
  // Without the fix the download stalls for 60 s: the deadline is well below that.
  const run = await runClient(t, ['--tracker', tracker.address, '--data-dir', path.join(dir, 'bob'), '--exec', `login bob bob-pw; download_file g k1.bin ${dest}; wait_downloads`], dir, 40_000);
  t.equal(run.code, 0, run.stdout + run.stderr);
  t.match(run.stdout, /OK download started k1\.bin size=6000000 pieces=5860 have=0/);
  t.match(run.stdout, /\[C\] \[g\] k1\.bin 100% size=6000000 .* sources=1/);
  t.notMatch(run.stdout, /bad frame/);
  t.equal(await sha256OfFile(path.join(dest, 'k1.bin')), sha256(data));
});

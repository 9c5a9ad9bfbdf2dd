/**
 * What `download_file` says when it starts, with real client processes and a
 * real tracker (docs/client.md "File sharing"): `peers=` counts the peers
 * it can download from, never this client itself.
 */
import path from 'node:path';
import t from 'tap';
import { makeTempDir, startTracker } from './helpers/tracker.js';
import { makeFile, makeGroup, runClient } from './helpers/peers.js';

t.test('a file that only this client shares: peers=0, not itself', async (t) => {
  const tracker = await startTracker(t);
  const dir = await makeTempDir(t);
  await makeGroup(t, tracker.port, 'g', 'sam', []);
  await makeFile(dir, 'f.bin', 1000);
  const dest = await makeTempDir(t);
  const run = await runClient(t, ['--tracker', tracker.address, '--data-dir', path.join(dir, 'sam'), '--exec', `login sam sam-pw; upload_file f.bin g; download_file g f.bin ${dest}`], dir);
  t.equal(run.code, 0, run.stdout + run.stderr);
  t.match(run.stdout, /^OK download started f\.bin size=1000 pieces=1 have=0 peers=0$/m);
});

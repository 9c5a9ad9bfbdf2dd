/**
 * `~` in the client's local path arguments (docs/client.md "File sharing"):
 * commands typed at the prompt or given to `--exec` never go through a
 * shell, so the client expands a leading `~` or `~/` to the home directory
 * itself — as `help download_file`'s own example (`~/Downloads`) expects.
 * A real tracker and client processes, with HOME set to a temp directory.
 */
import { access, readdir } from 'node:fs/promises';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import t from 'tap';
import { runClient } from './helpers/client.js';
import { makeFile, makeGroup, sha256, sha256OfFile, spawnClient } from './helpers/peers.js';
import { makeTempDir, startTracker } from './helpers/tracker.js';

t.test('download_file, upload_file and --data-dir take ~ and ~/', async (t) => {
  const tracker = await startTracker(t);
  const dir = await makeTempDir(t);
  await makeGroup(t, tracker.port, 'climbers', 'ann', ['bob']);
  const annHome = await makeTempDir(t);
  const data = await makeFile(annHome, 'notes.txt', 5000);
  // ann shares ~/notes.txt and keeps her registry in ~/reg (HOME is a temp directory).
  const seeder = await runClient(t, ['--tracker', tracker.address, '--data-dir', '~/reg', '--exec', 'login ann ann-pw; upload_file ~/notes.txt climbers'], '', { HOME: annHome });
  t.equal(seeder.code, 0, seeder.stdout + seeder.stderr);
  t.match(seeder.stdout, /^OK shared notes\.txt seeders=1$/m);
  await access(path.join(annHome, 'reg', 'shares-ann.json')); // --data-dir ~/reg is under HOME, not ./~/reg

  // A seeder that stays up, then bob downloads into ~/Downloads and into ~ itself.
  const serving = spawnClient(t, ['--tracker', tracker.address, '--data-dir', path.join(dir, 'ann'), '--serve', '--exec', `login ann ann-pw; upload_file ${path.join(annHome, 'notes.txt')} climbers`], dir);
  await serving.waitOut(/OK shared notes\.txt/);
  const bobHome = await makeTempDir(t);
  await mkdir(path.join(bobHome, 'Downloads'));
  const run = await runClient(
    t,
    ['--tracker', tracker.address, '--data-dir', path.join(dir, 'bob'), '--exec', 'login bob bob-pw; download_file climbers notes.txt ~/Downloads; wait_downloads'],
    '',
    { HOME: bobHome },
  );
  t.equal(run.code, 0, run.stdout + run.stderr);
  t.equal(await sha256OfFile(path.join(bobHome, 'Downloads', 'notes.txt')), sha256(data), 'downloaded into $HOME/Downloads');
  const bare = await runClient(
    t,
    ['--tracker', tracker.address, '--data-dir', path.join(dir, 'bob2'), '--exec', 'login bob bob-pw; download_file climbers notes.txt ~; wait_downloads'],
    '',
    { HOME: bobHome },
  );
  t.equal(bare.code, 0, bare.stdout + bare.stderr);
  t.same((await readdir(bobHome)).sort(), ['Downloads', 'notes.txt'], 'downloaded into $HOME');
});

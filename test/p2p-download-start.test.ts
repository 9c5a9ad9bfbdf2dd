/**
 * What `download_file` says when it starts, with real client processes and a
 * real tracker (docs/client.md "File sharing"): a folder it cannot write in
 * is refused at once, like the other start-time checks. (A file that only
 * this client shares: test/p2p-no-seeder.test.ts.)
 */
import { chmod, mkdir, readdir, rmdir } from 'node:fs/promises';
import path from 'node:path';
import t from 'tap';
import { makeTempDir, startTracker } from './helpers/tracker.js';
import { announceFake, fakePeer, makeFile, makeGroup, runClient } from './helpers/peers.js';

/** A directory this process cannot create anything in: read-only for a user; for root, one the kernel refuses. */
async function unwritableDir(t: Parameters<typeof makeTempDir>[0]): Promise<string | undefined> {
  let dir = '/sys/kernel';
  if (process.getuid?.() !== 0) {
    dir = await makeTempDir(t);
    await chmod(dir, 0o555);
    t.teardown(() => chmod(dir, 0o755));
  }
  try {
    await mkdir(path.join(dir, '.probe'));
    await rmdir(path.join(dir, '.probe'));
    return undefined; // writable after all: nothing to test here
  } catch {
    return dir;
  }
}

t.test('a folder the client cannot write in: ERR at once, nothing queued', async (t) => {
  const dest = await unwritableDir(t);
  if (dest === undefined) {
    t.pass('no unwritable directory on this machine: nothing to check');
    return;
  }
  const tracker = await startTracker(t);
  const dir = await makeTempDir(t);
  const { c, session } = await makeGroup(t, tracker.port, 'g', 'ann', ['bob']);
  const data = await makeFile(dir, 'f', 1000);
  const peer = await fakePeer(t, { group: 'g', data, pieceSize: 1000 });
  await announceFake(c, session, 'g', 'f', data, 1000, peer);
  const run = await runClient(t, ['--tracker', tracker.address, '--data-dir', path.join(dir, 'bob'), '--keep-going', '--exec', `login bob bob-pw; download_file g f ${dest}; show_downloads`], dir);
  t.equal(run.code, 1, run.stdout + run.stderr);
  const refusal = /^ERR BAD_REQUEST cannot write in (.+) \((EACCES|EPERM|EROFS)\)$/m.exec(run.stdout);
  t.equal(refusal?.[1], dest, `refused for the folder: ${run.stdout}`);
  t.match(run.stdout, /^OK 0$/m, 'nothing was queued');
  t.notMatch(run.stdout, /download started/);
  if (dest !== '/sys/kernel') t.same(await readdir(dest), [], 'nothing left in the folder');
});

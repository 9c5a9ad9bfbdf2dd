/**
 * A client's share bookkeeping while the primary is down (docs/client.md,
 * "Sessions and the registry"): its writes (`stop_share`, the announce of a
 * finished download) reach only a replica, which answers
 * `ERR PRIMARY_UNAVAILABLE`. The client must say so, never drop it silently;
 * a finished download is remembered, so the next login shares it. The
 * download's seeder is a fake peer that holds no piece until the primary
 * is down, so that "while the primary is down" is a real moment, not a race.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import t from 'tap';
import { startCluster, waitForConvergence } from './helpers/cluster.js';
import { announceFake, fakePeer, makeFile, makeGroup, runClient, sha256, sha256OfFile, spawnClient } from './helpers/peers.js';
import { makeTempDir } from './helpers/tracker.js';

const PIECE = 64 * 1024;

t.test('a seeder that leaves while the primary is down says which shares stay listed', async (t) => {
  const { primary, replica } = await startCluster(t);
  const dir = await makeTempDir(t);
  await makeGroup(t, primary.port, 'g', 'ann', ['bea']);
  await makeFile(dir, 'f.bin', PIECE + 3);
  const seeder = spawnClient(
    t,
    ['--tracker', primary.address, '--tracker', replica.address, '--data-dir', path.join(dir, 'ann'), '--serve', '--exec', 'login ann ann-pw; upload_file f.bin g 64k'],
    dir,
  );
  await seeder.waitOut(/OK shared f\.bin seeders=1/);
  await waitForConvergence(primary, replica, { acked: true });
  await primary.kill9();
  seeder.proc.kill('SIGTERM');
  const exit = await seeder.exited;
  t.equal(exit.code, 0, 'the script succeeded');
  t.match(
    seeder.stderr(),
    /\[share\] f\.bin in g could not be withdrawn \(ERR [^\n]*\): it stays listed until the session ends; downloaders skip this peer/,
    `said so on stderr:\n${seeder.stderr()}`,
  );
});

t.test('a download finished while the primary is down is announced as not shared, remembered, and shared at the next login', async (t) => {
  const { primary, replica } = await startCluster(t);
  const dir = await makeTempDir(t);
  const { c, session } = await makeGroup(t, primary.port, 'g', 'cal', ['dee']);
  const data = await makeFile(dir, 'big.bin', 16 * PIECE);
  // It holds nothing until the primary is down: the download's first piece, and so its first announce, come after.
  let holding = false;
  const seeder = await fakePeer(t, { group: 'g', data, pieceSize: PIECE, holds: () => holding });
  await announceFake(c, session, 'g', 'big.bin', data, PIECE, seeder);

  const dest = await makeTempDir(t);
  const trackers = ['--tracker', primary.address, '--tracker', replica.address];
  const downloader = spawnClient(t, [...trackers, '--data-dir', path.join(dir, 'dee'), '--exec', `login dee dee-pw; download_file g big.bin ${dest}; wait_downloads`], dir);
  await downloader.waitOut(/OK download started big\.bin .* peers=1/);
  await waitForConvergence(primary, replica, { acked: true });
  await primary.kill9();
  holding = true;
  const done = await downloader.exited;
  t.equal(done.code, 0, downloader.stdout() + downloader.stderr());
  t.equal(await sha256OfFile(path.join(dest, 'big.bin')), sha256(data), 'the download itself is whole');
  t.match(
    downloader.stdout() + downloader.stderr(),
    /\[event\] share_not_announced g big\.bin ERR [^\n]* \(while downloading: the download goes on, its pieces are not served\)/,
    'its first piece could not be announced either',
  );
  t.match(
    downloader.stdout() + downloader.stderr(),
    /\[event\] share_not_announced g big\.bin ERR [^\n]* \(remembered: the next login shares it\)/,
    'the user is told the file is not shared now',
  );
  const registry = JSON.parse(await readFile(path.join(dir, 'dee', 'shares-dee.json'), 'utf8')) as unknown;
  t.match(JSON.stringify(registry), /big\.bin/, 'and it is in the share registry');

  // The primary back on its address: the next login shares the file.
  const back = await primary.restart(['--port', String(primary.port)]);
  await waitForConvergence(back, replica, { acked: true });
  const again = await runClient(t, [...trackers, '--data-dir', path.join(dir, 'dee'), '--exec', 'login dee dee-pw'], dir);
  t.equal(again.code, 0, again.stdout + again.stderr);
  t.match(again.stdout, /\[share\] sharing big\.bin in g again/, 'the tracker took the share (OK)');
});

/**
 * `leave_group` ends the leaver's shares in the group (PROTOCOL.md §3), so
 * the client stops serving them and stops its downloads in that group,
 * running or queued (docs/client.md "Sessions and the registry"). Before,
 * its piece server still answered `HAVE`/`PIECE` for the group's files and
 * the downloads went on to completion. Real client processes, a real
 * tracker, and a raw peer connection to the leaver's piece server.
 */
import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import t from 'tap';
import { spawnClient } from './helpers/client.js';
import { makeFile, makeGroup, sha256, sidecarPieces, spawnClient as spawnSeeder } from './helpers/peers.js';
import { freePorts, makeTempDir, startTracker } from './helpers/tracker.js';
import { connect, waitFor } from './helpers/wire.js';

const PIECE = 64 * 1024;

t.test('leave_group: the client stops serving the group and stops its downloads in it, queued ones too', async (t) => {
  const tracker = await startTracker(t);
  const dir = await makeTempDir(t);
  await makeGroup(t, tracker.port, 'g', 'ann', ['sam']);
  const seed = await makeFile(dir, 'seed.bin', 3 * PIECE);
  const big = await makeFile(dir, 'big.bin', 64 * PIECE);
  await makeFile(dir, 'big2.bin', 8 * PIECE);
  // A slow seeder (256 KiB/s: 16 s for big.bin), so that sam's download is still running when sam leaves.
  const seeder = spawnSeeder(
    t,
    ['--tracker', tracker.address, '--data-dir', path.join(dir, 'ann'), '--upload-rate', String(256 * 1024), '--serve', '--exec', 'login ann ann-pw; upload_file big.bin g 64k; upload_file big2.bin g 64k'],
    dir,
  );
  await seeder.waitOut(/OK shared big2\.bin/);

  const [port] = await freePorts(1);
  const dest = await makeTempDir(t);
  const sam = await spawnClient(t, ['--tracker', tracker.address, '--data-dir', path.join(dir, 'sam'), '--listen', `127.0.0.1:${port}`, '--max-downloads', '1', '--keep-going']);
  sam.proc.stdin?.write(
    [
      'login sam sam-pw',
      `upload_file ${path.join(dir, 'seed.bin')} g 64k`,
      `download_file g big.bin ${dest}`,
      `download_file g big2.bin ${dest}`,
      '',
    ].join('\n'),
  );
  await sam.waitOut(/OK download queued position=1 big2\.bin/);

  // sam serves its own share, and the download's verified pieces once it has some.
  const peer = await connect(port as number);
  t.teardown(() => peer.close());
  t.match((await peer.request(`HAVE g ${sha256(seed)}`)).payload, /^OK 3 e0$/, 'the share is served');
  await waitFor(async () => (await peer.request(`HAVE g ${sha256(big)}`)).payload.startsWith('OK 64 '), {
    timeoutMs: 20_000,
    message: "sam serving big.bin's first verified pieces",
  });

  sam.proc.stdin?.write('leave_group g\n');
  await sam.waitOut(/^OK left g$/m);
  t.match(sam.stdout(), /^\[share\] left g: seed\.bin is no longer shared$/m, 'the share that ended is named');
  for (const [name, sha] of [['seed.bin', sha256(seed)], ['big.bin', sha256(big)]]) {
    t.match((await peer.request(`HAVE g ${sha}`)).payload, /^ERR NO_SUCH_FILE/, `HAVE for ${name} is refused`);
    t.match((await peer.request(`PIECE g ${sha} 0`)).payload, /^ERR NO_SUCH_FILE/, `PIECE for ${name} is refused`);
  }

  sam.proc.stdin?.end('show_downloads\nwait_downloads\n');
  const done = await sam.exited;
  t.equal(done.code, 1, 'wait_downloads reports the stopped downloads as failed');
  t.match(done.stdout, /^\[F\] \[g\] big\.bin failed: left the group g \(join it again and run download_file again to resume\)$/m);
  t.match(done.stdout, /^\[F\] \[g\] big2\.bin failed: left the group g /m, 'the queued download is stopped too');
  t.match(done.stdout, /\[event\] download_failed g big\.bin left the group g/);
  t.match(done.stdout, /\[event\] download_failed g big2\.bin left the group g/);
  t.match(done.stdout, /ERR DOWNLOAD_FAILED 2 of 2 downloads failed/);
  const left = await readdir(dest);
  t.notOk(left.includes('big.bin') || left.includes('big2.bin'), `nothing completed: ${left.join(', ')}`);
  t.ok((await sidecarPieces(dest, 'big.bin')) > 0, 'the verified pieces are kept for a resume');
  const registry = JSON.parse(await readFile(path.join(dir, 'sam', 'shares-sam.json'), 'utf8')) as { shares: { group: string }[] };
  t.same(registry.shares.filter((s) => s.group === 'g'), [], 'the shares in g are forgotten: the next login does not offer them again');
});

/**
 * File sharing between real tracker-client processes through a real
 * tracker: one seeder (a file name with spaces), a shared file deleted or
 * changed on disk, three partial seeders, a peer serving corrupt bytes, a
 * non-member, the empty file, logout pausing and login resuming sharing,
 * and the share quota. Partial and corrupt seeders are small in-test fake
 * peers (test/helpers/peers.ts).
 */
import { randomBytes } from 'node:crypto';
import { readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import t from 'tap';
import { makeTempDir, metricSample, startTracker } from './helpers/tracker.js';
import type { RunningTracker } from './helpers/tracker.js';
import { connect } from './helpers/wire.js';
import { login, send } from './helpers/commands.js';
import { announceFake, fakePeer, makeFile, makeGroup, runClient, sha256, sha256OfFile, spawnClient } from './helpers/peers.js';

const PIECE = 64 * 1024;

t.test('file sharing', async (t) => {
  const tracker: RunningTracker = await startTracker(t);
  const base = (user: string, dataDir: string): string[] => ['--tracker', tracker.address, '--data-dir', dataDir];

  t.test('one seeder; a file name with spaces; list_files, show_downloads, wait_downloads', async (t) => {
    const dir = await makeTempDir(t);
    await makeGroup(t, tracker.port, 'one', 'ann', ['bea']);
    const data = await makeFile(dir, 'holiday photos.bin', 3 * PIECE + 123);
    const seeder = spawnClient(t, [...base('ann', path.join(dir, 'ann')), '--serve', '--exec', 'login ann ann-pw; upload_file "holiday photos.bin" one 64k'], dir);
    await seeder.waitOut(/OK shared "holiday photos.bin" seeders=1/);
    const dest = await makeTempDir(t);
    const run = await runClient(
      t,
      [...base('bea', path.join(dir, 'bea')), '--exec', `login bea bea-pw; list_files one; download_file one "holiday photos.bin" ${dest}; wait_downloads; show_downloads`],
      dir,
    );
    t.equal(run.code, 0, run.stderr);
    t.match(run.stdout, `"holiday photos.bin" size=${data.length} sha256=${sha256(data)} seeders=1`);
    t.match(run.stdout, /OK download started "holiday photos\.bin" size=196731 pieces=4 have=0 peers=1/);
    t.match(run.stdout, /\[C\] \[one\] "holiday photos\.bin" 100% size=196731 .* sources=1 resumed=0/);
    t.equal(await sha256OfFile(path.join(dest, 'holiday photos.bin')), sha256(data), 'same bytes');
    t.same(await readdir(dest), ['holiday photos.bin'], 'no part or state file left');
    const registry = JSON.parse(await readFile(path.join(dir, 'ann', 'shares-ann.json'), 'utf8')) as { shares: { file: string }[] };
    t.same(registry.shares.map((s) => s.file), ['holiday photos.bin'], 'the seeder remembers its share');
  });

  t.test('a shared file deleted on disk: the seeder stops sharing it with the tracker and says so', async (t) => {
    const dir = await makeTempDir(t);
    await makeGroup(t, tracker.port, 'gone', 'gwen', ['hugo']);
    await makeFile(dir, 'old.bin', 3 * PIECE);
    const seeder = spawnClient(t, [...base('gwen', path.join(dir, 'gwen')), '--serve', '--exec', 'login gwen gwen-pw; upload_file old.bin gone 64k'], dir);
    await seeder.waitOut(/OK shared old\.bin seeders=1/);
    await rm(path.join(dir, 'old.bin'));
    const dest = await makeTempDir(t);
    // The first piece request finds the file gone; the downloader then waits for other peers (killed in teardown).
    spawnClient(t, [...base('hugo', path.join(dir, 'hugo')), '--exec', `login hugo hugo-pw; download_file gone old.bin ${dest}; wait_downloads`], dir);
    await seeder.waitOut(/\[event\] share_stopped gone old\.bin the file is gone: /);
    const after = await runClient(t, [...base('hugo', path.join(dir, 'hugo2')), '--exec', 'login hugo hugo-pw; list_files gone'], dir);
    t.equal(after.code, 0, after.stderr);
    t.notMatch(after.stdout, /old\.bin/, 'the tracker no longer lists it');
    t.same(await registryFiles(path.join(dir, 'gwen'), 'gwen'), [], 'nor does the registry: the next login does not offer it');
  });

  t.test('a shared file changed on disk: the seeder sends none of it, stops sharing it and says so; the download comes from the other seeder', async (t) => {
    const dir = await makeTempDir(t);
    const { c, session } = await makeGroup(t, tracker.port, 'edits', 'rex', ['sue', 'tom']);
    const data = await makeFile(dir, 'doc.bin', 40 * PIECE);
    const sueDir = await makeTempDir(t);
    await writeFile(path.join(sueDir, 'doc.bin'), data);
    const rex = spawnClient(t, [...base('rex', path.join(dir, 'rex')), '--serve', '--exec', 'login rex rex-pw; upload_file doc.bin edits 64k'], dir);
    await rex.waitOut(/OK shared doc\.bin seeders=1/);
    const sue = spawnClient(t, [...base('sue', path.join(dir, 'sue')), '--serve', '--exec', 'login sue sue-pw; upload_file doc.bin edits 64k'], sueDir);
    await sue.waitOut(/OK shared doc\.bin seeders=2/);
    // Same size, other bytes: nothing but the piece hashes tells.
    await writeFile(path.join(dir, 'doc.bin'), randomBytes(data.length));
    const dest = await makeTempDir(t);
    const run = await runClient(t, [...base('tom', path.join(dir, 'tom')), '--exec', `login tom tom-pw; download_file edits doc.bin ${dest}; wait_downloads`], dir);
    t.equal(run.code, 0, run.stdout + run.stderr);
    t.match(run.stdout, /peers=2/, 'both seeders were listed');
    t.match(run.stdout, /\[C\] \[edits\] doc\.bin 100% .* sources=1 resumed=0$/m, 'every piece from the other seeder, and nobody banned');
    t.equal(await sha256OfFile(path.join(dest, 'doc.bin')), sha256(data), 'the announced bytes');
    await rex.waitOut(/\[event\] share_stopped edits doc\.bin /);
    const notices = rex.stdout().match(/share_stopped[^\n]*/g) ?? [];
    t.same(
      notices,
      [`share_stopped edits doc.bin the file changed on disk since it was shared: ${path.join(dir, 'doc.bin')} (share it again to serve the new content)`],
      'told once',
    );
    const peers = (await send(c, ['file_peers', 'edits', 'doc.bin'], session)).payload;
    t.match(peers, /peers=1\n/, 'the tracker lists only the other seeder');
    t.match(peers, /^peer sue /m);
    t.same(await registryFiles(path.join(dir, 'rex'), 'rex'), [], 'the registry forgot it');
  });

  t.test('--json: show_downloads and wait_downloads answer one object per download, its fields as data', async (t) => {
    const dir = await makeTempDir(t);
    await makeGroup(t, tracker.port, 'json', 'wes', ['xia']);
    const first = await makeFile(dir, 'first.bin', 16 * PIECE);
    const second = await makeFile(dir, 'second file.bin', 16 * PIECE + 1);
    // Slowed, so that the first download still runs while the second waits its turn.
    const seeder = spawnClient(
      t,
      [...base('wes', path.join(dir, 'wes')), '--upload-rate', String(1024 * 1024), '--serve', '--exec', 'login wes wes-pw; upload_file first.bin json 64k; upload_file "second file.bin" json 64k'],
      dir,
    );
    await seeder.waitOut(/OK shared "second file\.bin" seeders=1/);
    const dest = await makeTempDir(t);
    const run = await runClient(
      t,
      [
        ...base('xia', path.join(dir, 'xia')),
        '--json',
        '--max-downloads',
        '1',
        '--exec',
        `login xia xia-pw; download_file json first.bin ${dest}; download_file json "second file.bin" ${dest}; show_downloads; wait_downloads`,
      ],
      dir,
    );
    t.equal(run.code, 0, run.stdout + run.stderr);
    const answers = run.stdout
      .split('\n')
      .filter((line) => line.startsWith('{"ok"'))
      .map((line) => JSON.parse(line) as { ok: boolean; message: string; rows: Record<string, unknown>[] });
    const [shown, waited] = answers.slice(-2);
    const keys = ['group', 'file', 'state', 'percent', 'size', 'bytes_per_second', 'peers', 'sources', 'resumed', 'banned', 'reason'];
    t.equal(shown?.message, '2');
    t.match(shown?.rows, [
      { group: 'json', file: 'first.bin', state: 'downloading', percent: Number, size: first.length, peers: Number, reason: null },
      { group: 'json', file: 'second file.bin', state: 'queued', percent: 0, size: second.length, peers: 0, reason: null },
    ]);
    t.same(waited?.rows.map((r) => r['state']), ['complete', 'complete']);
    t.match(waited?.rows, [
      { file: 'first.bin', percent: 100, size: first.length, bytes_per_second: Number, sources: 1, resumed: 0, banned: 0, reason: null },
      { file: 'second file.bin', percent: 100, size: second.length, sources: 1, resumed: 0, banned: 0, reason: null },
    ]);
    for (const row of [...(shown?.rows ?? []), ...(waited?.rows ?? [])]) t.same(Object.keys(row), keys, 'the same keys in every row');
  });

  t.test('three partial seeders, each holding a third of the pieces', async (t) => {
    const dir = await makeTempDir(t);
    const { c, session } = await makeGroup(t, tracker.port, 'thirds', 'cat', ['dan', 'cat2', 'cat3']);
    // One share per session: three sessions, one for each fake peer.
    const sessions = [session, await login(c, 'cat2', 'cat2-pw'), await login(c, 'cat3', 'cat3-pw')];
    const data = await makeFile(dir, 'parts.bin', 30 * PIECE + 5);
    const peers = [];
    for (let k = 0; k < 3; k++) {
      const peer = await fakePeer(t, { group: 'thirds', data, pieceSize: PIECE, holds: (i) => i % 3 === k });
      await announceFake(c, sessions[k] as bigint, 'thirds', 'parts.bin', data, PIECE, peer);
      peers.push(peer);
    }
    const dest = await makeTempDir(t);
    const run = await runClient(t, [...base('dan', path.join(dir, 'dan')), '--exec', `login dan dan-pw; download_file thirds parts.bin ${dest}; wait_downloads`], dir);
    t.equal(run.code, 0, run.stdout + run.stderr);
    t.match(run.stdout, /peers=3/);
    t.match(run.stdout, /\[C\] \[thirds\] parts\.bin 100% .* sources=3/);
    t.same(peers.map((p) => p.served()), [11, 10, 10], 'each piece fetched once, from the peer that has it');
    t.equal(await sha256OfFile(path.join(dest, 'parts.bin')), sha256(data));
  });

  t.test('a peer serving corrupt bytes is detected and banned; the download completes from the other', async (t) => {
    const dir = await makeTempDir(t);
    const { c, session } = await makeGroup(t, tracker.port, 'bad', 'eve', ['fay', 'gus']);
    const data = await makeFile(dir, 'x.bin', 40 * PIECE);
    const liar = await fakePeer(t, { group: 'bad', data, pieceSize: PIECE, corrupt: true });
    await announceFake(c, session, 'bad', 'x.bin', data, PIECE, liar);
    const seeder = spawnClient(t, [...base('fay', path.join(dir, 'fay')), '--serve', '--exec', 'login fay fay-pw; upload_file x.bin bad 64k'], dir);
    await seeder.waitOut(/OK shared x\.bin seeders=2/);
    const dest = await makeTempDir(t);
    const run = await runClient(t, [...base('gus', path.join(dir, 'gus')), '--exec', `login gus gus-pw; download_file bad x.bin ${dest}; wait_downloads`], dir);
    t.equal(run.code, 0, run.stdout + run.stderr);
    t.ok(liar.served() >= 1, 'the corrupt peer was asked');
    t.match(run.stdout, /\[C\] \[bad\] x\.bin 100% .* sources=1 resumed=0 banned=1/);
    t.equal(await sha256OfFile(path.join(dest, 'x.bin')), sha256(data));
  });

  t.test('a non-member is refused by the tracker, and a piece server serves only a valid share context', async (t) => {
    const dir = await makeTempDir(t);
    await makeGroup(t, tracker.port, 'club', 'hal', []);
    const raw = await connect(tracker.port);
    t.teardown(() => raw.close());
    await send(raw, ['create_user', 'ivy', 'ivy-pw']);
    const data = await makeFile(dir, 'secret.bin', 2 * PIECE);
    const seeder = spawnClient(t, [...base('hal', path.join(dir, 'hal')), '--serve', '--exec', 'login hal hal-pw; upload_file secret.bin club'], dir);
    await seeder.waitOut(/OK shared secret\.bin/);
    const dest = await makeTempDir(t);
    const run = await runClient(t, [...base('ivy', path.join(dir, 'ivy')), '--keep-going', '--exec', `login ivy ivy-pw; download_file club secret.bin ${dest}; show_downloads`], dir);
    t.equal(run.code, 1);
    t.match(run.stdout, /ERR NOT_MEMBER/);
    t.match(run.stdout, /^OK 0$/m, 'nothing was queued');
    t.same(await readdir(dest), []);

    await waitForStderr(seeder, /serving pieces on 127\.0\.0\.1:(\d+)/);
    const port = Number(/serving pieces on 127\.0\.0\.1:(\d+)/.exec(seeder.stderr())?.[1]);
    const socket = await connect(port, '127.0.0.1');
    t.teardown(() => socket.close());
    const sha = sha256(data);
    t.equal((await socket.request(`HAVE club ${sha}`)).payload, 'OK 1 80', 'the right context is answered (one 512 KiB piece)');
    t.match((await socket.request(`HAVE other ${sha}`)).payload, /^ERR NO_SUCH_FILE/, 'another group: refused');
    t.match((await socket.request(`PIECE club ${'0'.repeat(64)} 0`)).payload, /^ERR NO_SUCH_FILE/, 'another hash: refused');
    t.match((await socket.request(`PIECE club ${sha} 99`)).payload, /^ERR BAD_REQUEST/, 'no such piece index');
    t.match((await socket.request('GET /')).payload, /^ERR UNKNOWN_COMMAND/);
  });

  t.test('a file named . or .. is refused for what it is, before the tracker is asked', async (t) => {
    const dir = await makeTempDir(t);
    await makeGroup(t, tracker.port, 'dots', 'ned', ['ola']);
    const dest = await makeTempDir(t);
    const run = await runClient(t, [...base('ola', path.join(dir, 'ola')), '--keep-going', '--exec', `login ola ola-pw; download_file dots . ${dest}; download_file dots .. ${dest}`], dir);
    t.equal(run.code, 1);
    t.match(run.stdout, /^ERR BAD_REQUEST \. names a directory, not a file: it cannot be downloaded$/m);
    t.match(run.stdout, /^ERR BAD_REQUEST \.\. names a directory, not a file: it cannot be downloaded$/m);
    t.notMatch(run.stdout, /already exists/);
  });

  t.test("upload_file with a wrong number of arguments shows the client's own usage", async (t) => {
    const dir = await makeTempDir(t);
    await makeGroup(t, tracker.port, 'args', 'pia', []);
    const run = await runClient(t, [...base('pia', path.join(dir, 'pia')), '--keep-going', '--exec', 'login pia pia-pw; upload_file; upload_file a; upload_file a b c d'], dir);
    t.equal(run.code, 1);
    const usages = run.stdout.split('\n').filter((l) => l === 'ERR BAD_REQUEST usage: upload_file <path> <group> [piece_size]');
    t.equal(usages.length, 3, run.stdout);
  });

  t.test('the empty file', async (t) => {
    const dir = await makeTempDir(t);
    await makeGroup(t, tracker.port, 'zero', 'jon', ['kim']);
    await makeFile(dir, 'empty', 0);
    const seeder = spawnClient(t, [...base('jon', path.join(dir, 'jon')), '--serve', '--exec', 'login jon jon-pw; upload_file empty zero'], dir);
    await seeder.waitOut(/OK shared empty seeders=1/);
    const dest = await makeTempDir(t);
    const run = await runClient(t, [...base('kim', path.join(dir, 'kim')), '--exec', `login kim kim-pw; download_file zero empty ${dest}; wait_downloads`], dir);
    t.equal(run.code, 0, run.stdout + run.stderr);
    t.match(run.stdout, /pieces=0 have=0 peers=1/);
    t.match(run.stdout, /\[C\] \[zero\] empty 100% size=0/);
    t.equal((await stat(path.join(dest, 'empty'))).size, 0);
  });

  t.test('logout pauses sharing; the next login re-announces what is still on disk', async (t) => {
    const dir = await makeTempDir(t);
    const { c, session } = await makeGroup(t, tracker.port, 'pause', 'lea', ['max']);
    await makeFile(dir, 'keep.bin', PIECE + 1);
    await makeFile(dir, 'gone.bin', 10);
    await makeFile(dir, 'failing.bin', 10);
    const dataDir = path.join(dir, 'lea');
    const first = await runClient(
      t,
      [...base('lea', dataDir), '--exec', 'login lea lea-pw; upload_file keep.bin pause; upload_file gone.bin pause; upload_file failing.bin pause; logout'],
      dir,
    );
    t.equal(first.code, 0, first.stdout + first.stderr);
    t.match((await send(c, ['list_files', 'pause'], session)).payload, /^OK 0$/, 'logout ended the shares');
    const fs = await import('node:fs/promises');
    await fs.rm(path.join(dir, 'gone.bin'));
    // A file that can no longer be read (a failing disk): it stats as a changed file, and reading it gives EIO.
    await fs.rm(path.join(dir, 'failing.bin'));
    await fs.symlink('/proc/self/mem', path.join(dir, 'failing.bin'));
    const again = spawnClient(t, [...base('lea', dataDir), '--serve', '--exec', 'login lea lea-pw'], dir);
    await again.waitOut(/\[share\] dropped gone\.bin in pause: .* is gone/);
    await again.waitOut(/\[share\] not sharing failing\.bin in pause for now: cannot read .*failing\.bin: .*EIO/);
    t.match(again.stdout(), /\[share\] sharing keep\.bin in pause again/);
    t.match((await send(c, ['list_files', 'pause'], session)).payload, /keep\.bin size=65537 .* seeders=1/);
    const dest = await makeTempDir(t);
    const run = await runClient(t, [...base('max', path.join(dir, 'max')), '--exec', `login max max-pw; download_file pause keep.bin ${dest}; wait_downloads`], dir);
    t.equal(run.code, 0, run.stdout + run.stderr);
    t.equal(await sha256OfFile(path.join(dest, 'keep.bin')), await sha256OfFile(path.join(dir, 'keep.bin')));
  });

  t.test('a bad frame to a piece server closes only that connection', async (t) => {
    const dir = await makeTempDir(t);
    const client = spawnClient(t, [...base('x', path.join(dir, 'x')), '--serve', '--exec', 'ping'], dir);
    await client.waitOut(/OK PONG/);
    await waitForStderr(client, /serving pieces on 127\.0\.0\.1:(\d+)/);
    const port = Number(/serving pieces on 127\.0\.0\.1:(\d+)/.exec(client.stderr())?.[1]);
    const socket = await connect(port, '127.0.0.1');
    t.teardown(() => socket.close());
    socket.sendRaw(Buffer.from([0, 0, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0]));
    const frame = await socket.nextFrame();
    t.match(frame.payload.toString(), /^ERR FRAME_TOO_LARGE/);
    await socket.closed;
    const other = await connect(port, '127.0.0.1');
    t.teardown(() => other.close());
    t.match((await other.request(`HAVE g ${'a'.repeat(64)}`)).payload, /^ERR NO_SUCH_FILE/);
  });
});

t.test('quota: a share past --max-shares-per-user is refused and not remembered', async (t) => {
  const tracker = await startTracker(t, { args: ['--max-shares-per-user', '1'] });
  const dir = await makeTempDir(t);
  await makeGroup(t, tracker.port, 'q', 'ned', []);
  await makeFile(dir, 'a.bin', 100);
  await makeFile(dir, 'b.bin', 100);
  const run = await runClient(t, ['--tracker', tracker.address, '--data-dir', path.join(dir, 'ned'), '--exec', 'login ned ned-pw; upload_file a.bin q; upload_file b.bin q'], dir);
  t.equal(run.code, 1);
  t.match(run.stdout, /OK shared a\.bin seeders=1\nERR QUOTA_EXCEEDED/);
  const registry = JSON.parse(await readFile(path.join(dir, 'ned', 'shares-ned.json'), 'utf8')) as { shares: { file: string }[] };
  t.same(registry.shares.map((s) => s.file), ['a.bin']);
});

t.test('quota: a download by a user at the quota says at its first piece that it is not served', async (t) => {
  const tracker = await startTracker(t, { args: ['--max-shares-per-user', '1'] });
  const dir = await makeTempDir(t);
  await makeGroup(t, tracker.port, 'q', 'ned', ['ola']);
  await makeFile(dir, 'big.bin', 16 * 64 * 1024);
  await makeFile(dir, 'own.bin', 100);
  const seeder = spawnClient(t, ['--tracker', tracker.address, '--data-dir', path.join(dir, 'ned'), '--serve', '--exec', 'login ned ned-pw; upload_file big.bin q 64k'], dir);
  await seeder.waitOut(/OK shared big\.bin/);
  const dest = await makeTempDir(t);
  const run = await runClient(
    t,
    ['--tracker', tracker.address, '--data-dir', path.join(dir, 'ola'), '--exec', `login ola ola-pw; upload_file own.bin q; download_file q big.bin ${dest}; wait_downloads`],
    dir,
  );
  t.equal(run.code, 0, run.stdout + run.stderr);
  const out = run.stdout + run.stderr;
  const during = out.search(/share_not_announced q big\.bin ERR QUOTA_EXCEEDED [^\n]*\(while downloading: the download goes on, its pieces are not served\)/);
  t.ok(during >= 0, `said while downloading:\n${out}`);
  t.ok(during < out.search(/download_complete q big\.bin/), 'before the download completed');
});

t.test('a finished download is announced to the tracker once, not again at its end', async (t) => {
  const tracker = await startTracker(t, { args: ['--admin-port', '0'] });
  const dir = await makeTempDir(t);
  await makeGroup(t, tracker.port, 'g', 'una', ['vic']);
  await makeFile(dir, 'once.bin', 16 * PIECE);
  const shares = async (): Promise<number | undefined> =>
    metricSample(await (await fetch(`${tracker.adminUrl}/metrics`)).text(), 'tracker_requests_total', { command: 'upload_file', result: 'OK' });
  const seeder = spawnClient(t, ['--tracker', tracker.address, '--data-dir', path.join(dir, 'una'), '--serve', '--exec', 'login una una-pw; upload_file once.bin g 64k'], dir);
  await seeder.waitOut(/OK shared once\.bin seeders=1/);
  t.equal(await shares(), 1, "the seeder's");
  const dest = await makeTempDir(t);
  const run = await runClient(t, ['--tracker', tracker.address, '--data-dir', path.join(dir, 'vic'), '--exec', `login vic vic-pw; download_file g once.bin ${dest}; wait_downloads`], dir);
  t.equal(run.code, 0, run.stdout + run.stderr);
  t.match(run.stdout, /\[C\] \[g\] once\.bin 100%/);
  t.equal(await shares(), 2, "and the downloader's, once");
  await seeder.waitOut(/\[event\] file_shared g once\.bin vic/);
  t.equal(seeder.stdout().match(/\[event\] file_shared g once\.bin vic/g)?.length, 1, 'the other members hear of it once');
  const registry = JSON.parse(await readFile(path.join(dir, 'vic', 'shares-vic.json'), 'utf8')) as { shares: { file: string; path: string }[] };
  t.same(registry.shares.map((s) => [s.file, s.path]), [['once.bin', path.join(dest, 'once.bin')]], 'remembered for the next login all the same');
});

/** The files a user's share registry remembers. */
async function registryFiles(dataDir: string, user: string): Promise<string[]> {
  const registry = JSON.parse(await readFile(path.join(dataDir, `shares-${user}.json`), 'utf8')) as { shares: { file: string }[] };
  return registry.shares.map((s) => s.file);
}

async function waitForStderr(client: { stderr(): string }, re: RegExp): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!re.test(client.stderr())) {
    if (Date.now() > deadline) throw new Error(`no ${re} in stderr: ${client.stderr()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * One download against a real piece server over loopback, and the download
 * queue: what a download does with the files already in its folder, what it
 * says when its only peer answers that the file is gone, and the queue's
 * positions and retries.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm, stat, symlink, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { FrameDecoder, encodeFrame } from '@tracker-cluster/protocol';
import { Bitfield, Download, DownloadQueue, PieceServer, ShareTable, partPath, saveDownloadState, statePath } from '@tracker-cluster/client';
import type { DownloadDeps, FilePeers } from '@tracker-cluster/client';

/** What a test needs of tap's `t` to clean up after itself. */
interface Teardown {
  teardown(fn: () => unknown): void;
}

const PIECE = 4096;

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

async function tempDir(t: Teardown): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'download-test-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * A piece server sharing `name` in group `g` (by default 10 pieces of 4 KiB);
 * the FilePeers a tracker would answer for it.
 */
async function seed(t: Teardown, name: string, layout: { size: number; pieceSize: number } = { size: 10 * PIECE, pieceSize: PIECE }): Promise<{ meta: FilePeers; data: Buffer; source: string }> {
  const dir = await tempDir(t);
  const { size, pieceSize } = layout;
  const pieces = Math.ceil(size / pieceSize);
  const data = Buffer.alloc(size);
  for (let i = 0; i < data.length; i++) data[i] = (i * 31 + 7) % 251;
  const source = path.join(dir, 'source.bin');
  await writeFile(source, data);
  const hashes = Array.from({ length: pieces }, (_, i) => sha256(data.subarray(i * pieceSize, (i + 1) * pieceSize)));
  const table = new ShareTable();
  table.set({ group: 'g', file: name, sha256: sha256(data), size: data.length, pieceSize, path: source, have: Bitfield.full(pieces), hashes });
  const server = new PieceServer(table);
  const address = await server.listen({ host: '127.0.0.1', port: 0 });
  t.teardown(() => server.close());
  const meta: FilePeers = {
    file: name,
    size: data.length,
    sha256: sha256(data),
    pieceSize,
    hashes,
    peers: [{ user: 'seeder', address, text: `127.0.0.1:${address.port}` }],
  };
  return { meta, data, source };
}

/** Ports nothing listens on (each bound once, then closed). */
async function closedPorts(n: number): Promise<number[]> {
  const ports: number[] = [];
  for (let i = 0; i < n; i++) {
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    ports.push((server.address() as net.AddressInfo).port);
    await new Promise((resolve) => server.close(resolve));
  }
  return ports;
}

function deps(meta: FilePeers): DownloadDeps {
  return {
    fetchPeers: () => Promise.resolve(meta),
    self: () => undefined,
    announce: () => Promise.resolve(),
    completed: () => Promise.resolve(),
    withdraw: () => Promise.resolve(),
  };
}

const quick = { refreshMs: 200, retryMs: 200 };
/**
 * Only where a download is meant to find no peer: gives up after 1.5 s without one, asking again every
 * 50-400 ms (a worker thread's start under the test loader can take a second or two).
 */
const noPeerSoon = { ...quick, noPeerTimeoutMs: 1500, noPeerRetryMs: 50 };

t.test('a symlink at the part file name is refused and never written through', async (t) => {
  const { meta } = await seed(t, 'notes.txt');
  const dest = await tempDir(t);
  const victim = path.join(await tempDir(t), 'victim.txt');
  await writeFile(victim, 'precious\n');
  await symlink(victim, partPath(dest, 'notes.txt'));
  const download = new Download('g', 'notes.txt', dest, meta, deps(meta), quick);
  await t.rejects(download.peekResume(), /is not a regular file.*not a download of this client/);
  await download.run();
  t.equal(download.status, 'failed');
  t.match(download.reason, /\.notes\.txt\.part exists and is not a regular file/);
  t.equal(await readFile(victim, 'utf8'), 'precious\n', 'the symlink target is untouched');
});

t.test('a file at the part name that no state of ours names is not overwritten', async (t) => {
  const { meta } = await seed(t, 'report');
  const dest = await tempDir(t);
  await writeFile(partPath(dest, 'report'), 'a file of the user named .report.part\n');
  const download = new Download('g', 'report', dest, meta, deps(meta), quick);
  await t.rejects(download.peekResume(), /exists and no download state names it/);
  await download.run();
  t.equal(download.status, 'failed');
  t.equal(await readFile(partPath(dest, 'report'), 'utf8'), 'a file of the user named .report.part\n');
  t.same((await readdir(dest)).sort(), ['.report.part'], 'no state file was written beside it');
});

t.test('a state file that is not a download state is not overwritten', async (t) => {
  const { meta } = await seed(t, 'report');
  const dest = await tempDir(t);
  await writeFile(statePath(dest, 'report'), '{"mine":true}\n');
  const download = new Download('g', 'report', dest, meta, deps(meta), quick);
  await t.rejects(download.peekResume(), /is not a download state/);
  await download.run();
  t.equal(await readFile(statePath(dest, 'report'), 'utf8'), '{"mine":true}\n');
});

t.test('a stale attempt of ours at other contents is replaced; a file appearing at the destination is never replaced', async (t) => {
  const { meta, data } = await seed(t, 'f.bin');
  const dest = await tempDir(t);
  // An earlier attempt at other contents: our state, a part file of another size.
  await writeFile(partPath(dest, 'f.bin'), 'old');
  await writeFile(statePath(dest, 'f.bin'), JSON.stringify({ version: 1, group: 'g', file: 'f.bin', size: 3, sha256: 'a'.repeat(64), pieceSize: 1, have: '00' }));
  const download = new Download('g', 'f.bin', dest, meta, deps(meta), quick);
  t.equal(await download.peekResume(), 0);
  await download.run();
  t.equal(download.status, 'complete', download.reason);
  t.equal(sha256(await readFile(path.join(dest, 'f.bin'))), sha256(data));
  t.same(await readdir(dest), ['f.bin']);

  // Between the command's check and the end of the download, someone creates the destination.
  const again = await tempDir(t);
  const late = new Download('g', 'f.bin', again, meta, {
    ...deps(meta),
    announce: async () => {
      await writeFile(path.join(again, 'f.bin'), 'created meanwhile\n');
    },
  }, quick);
  await late.run();
  t.equal(late.status, 'failed');
  t.match(late.reason, /appeared during the download/);
  t.equal(await readFile(path.join(again, 'f.bin'), 'utf8'), 'created meanwhile\n', 'not replaced');
  t.ok((await readdir(again)).includes(path.basename(partPath(again, 'f.bin'))), 'the verified part file is kept');
});

t.test('a 255-byte file name downloads: the working files keep under the name limit', async (t) => {
  const name = `${'é'.repeat(120)}${'x'.repeat(15)}`;
  t.equal(Buffer.byteLength(name), 255);
  const { meta, data } = await seed(t, name);
  const dest = await tempDir(t);
  t.ok(Buffer.byteLength(path.basename(statePath(dest, name))) <= 230, 'state name is short enough for a temporary suffix');
  const download = new Download('g', name, dest, meta, deps(meta), quick);
  await download.run();
  t.equal(download.status, 'complete', download.reason);
  t.equal(sha256(await readFile(path.join(dest, name))), sha256(data));
  t.same(await readdir(dest), [name]);
  t.not(partPath(dest, name), partPath(dest, `${name.slice(0, -1)}y`), 'two long names that differ only at the end have their own part files');
});

t.test('a peer whose file is gone: the failure says so, not "closed by us"', async (t) => {
  const { meta, source } = await seed(t, 'gone.bin');
  await rm(source);
  const dest = await tempDir(t);
  const download = new Download('g', 'gone.bin', dest, meta, deps(meta), noPeerSoon);
  await download.run();
  t.equal(download.status, 'failed');
  // The peer's own answers: the file is gone, then (having dropped the share) that it does not share it.
  t.match(download.reason, /^no usable peer for 2 s: the only peer the tracker lists does not have the file \(127\.0\.0\.1:\d+: NO_SUCH_FILE (the shared file is gone|this peer does not share that file in g)\)$/);
  t.notMatch(download.reason, /closed by us/);
});

t.test('this client is the only peer listed: the failure says no other peer shares it', async (t) => {
  const { meta } = await seed(t, 'mine.bin');
  const dest = await tempDir(t);
  // The tracker lists only this client's own address, which a download skips.
  const self = meta.peers[0]?.text;
  const download = new Download('g', 'mine.bin', dest, meta, { ...deps(meta), self: () => self }, noPeerSoon);
  await download.run();
  t.equal(download.status, 'failed');
  t.equal(download.reason, 'no usable peer for 2 s: the tracker lists no peer but this client');
});

t.test('every listed peer refuses the connection: the download fails after noPeerTimeoutMs, saying so for each', async (t) => {
  const { meta } = await seed(t, 'r.bin');
  const ports = await closedPorts(2);
  const listed: FilePeers = { ...meta, peers: ports.map((port) => ({ user: 'gone', address: { host: '127.0.0.1', port }, text: `127.0.0.1:${port}` })) };
  const download = new Download('g', 'r.bin', await tempDir(t), listed, deps(listed), { ...noPeerSoon, stallTimeoutMs: 600_000 });
  await download.run();
  t.equal(download.status, 'failed');
  t.equal(
    download.reason,
    `no usable peer for 2 s: none of the 2 peers the tracker lists could be reached (127.0.0.1:${ports[0]}: ECONNREFUSED; 127.0.0.1:${ports[1]}: ECONNREFUSED)`,
  );
});

t.test('nobody to download from at first: the tracker is asked again, and a seeder listed later is used', async (t) => {
  const { meta, data } = await seed(t, 'later.bin');
  let asked = 0;
  const download = new Download(
    'g',
    'later.bin',
    await tempDir(t),
    meta,
    // The first two answers list nobody (as `file_peers` says it), then the seeder.
    { ...deps(meta), fetchPeers: () => (++asked <= 2 ? Promise.reject(new Error('ERR NO_SUCH_FILE nobody shares later.bin in g')) : Promise.resolve(meta)) },
    { ...noPeerSoon, noPeerTimeoutMs: 600_000 },
  );
  await download.run();
  t.equal(download.status, 'complete', download.reason);
  t.ok(asked >= 3, `asked ${asked} times`);
  t.equal(sha256(await readFile(download.destination)), sha256(data));
});

t.test('a peer that connects but is slow to answer is waited for until the stall timeout, not failed as unreachable', async (t) => {
  const { meta } = await seed(t, 'slow.bin');
  const sockets = new Set<net.Socket>();
  const silent = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.resume(); // reads (and drops) the requests, so that it sees the download's close
  });
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise((resolve) => silent.close(resolve)));
  const port = (silent.address() as net.AddressInfo).port;
  const listed: FilePeers = { ...meta, peers: [{ user: 'slow', address: { host: '127.0.0.1', port }, text: `127.0.0.1:${port}` }] };
  // No peer connected for 1 s would fail it: the silent peer connected, so only the stall timeout does.
  const download = new Download('g', 'slow.bin', await tempDir(t), listed, deps(listed), { ...noPeerSoon, noPeerTimeoutMs: 1000, stallTimeoutMs: 2500 });
  await download.run();
  t.equal(download.status, 'failed');
  t.match(download.reason, /^stalled: /);
  t.equal(sockets.size, 1, 'connected once, not again at each round of asking');
  await waitUntil(() => [...sockets].every((socket) => socket.readableEnded));
  t.pass('the download closed its connection as it ended, without waiting for HAVE');
});

t.test('a seeder whose upload slots are full (ERR BUSY) is waited for until the stall timeout, not given up on as gone', async (t) => {
  const { meta } = await seed(t, 'busy.bin');
  let refused = 0;
  // What a PieceServer at its connection limit does: one ERR BUSY, then it closes.
  const full = net.createServer((socket) => {
    refused++;
    socket.on('error', () => undefined);
    socket.end(encodeFrame(0n, 'ERR BUSY this peer already serves 32 peers; try later'));
    socket.resume(); // so that it sees each downloader's close, and the server can close in teardown
  });
  await new Promise<void>((resolve) => full.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise((resolve) => full.close(resolve)));
  const port = (full.address() as net.AddressInfo).port;
  const listed: FilePeers = { ...meta, peers: [{ user: 'full', address: { host: '127.0.0.1', port }, text: `127.0.0.1:${port}` }] };
  const download = new Download('g', 'busy.bin', await tempDir(t), listed, deps(listed), { ...noPeerSoon, stallTimeoutMs: 4000 });
  await download.run();
  t.equal(download.status, 'failed');
  t.match(download.reason, /^stalled: .*BUSY/, 'the stall timeout ended it, naming the busy peer');
  t.ok(refused > 1, `the busy seeder was asked again (${refused} times)`);
});

async function waitUntil(check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

// The HAVE answer (`OK <pieces> <bitfield hex>`) grows with the piece count: with small pieces it is
// larger than a piece, and the downloader's frame limit must take it (docs/protocol.md §7 "Frame limits").
for (const [size, pieceSize] of [[2000, 1], [6_000_000, 1024]] as const) {
  t.test(`small pieces: ${size} bytes in pieces of ${pieceSize} download (the HAVE answer is larger than a piece)`, async (t) => {
    const { meta, data } = await seed(t, 'small.bin', { size, pieceSize });
    const dest = await tempDir(t);
    // Without the fix every peer is dropped for a frame too large, and the download stalls.
    const download = new Download('g', 'small.bin', dest, meta, deps(meta), { ...quick, stallTimeoutMs: 10_000 });
    await download.run();
    t.equal(download.status, 'complete', download.reason);
    t.notMatch(download.reason, /bad frame/);
    t.equal(sha256(await readFile(path.join(dest, 'small.bin'))), sha256(data));
  });
}

/** A download stand-in for the queue: it runs until `finish` is called. */
function fakeDownload(group: string, file: string): Download & { settleAs(ok: boolean): void } {
  let end: (() => void) | undefined;
  const fake = {
    group,
    file,
    status: 'queued' as Download['status'],
    reason: '',
    run(): Promise<void> {
      fake.status = 'running';
      return new Promise<void>((resolve) => {
        end = resolve;
      });
    },
    abort(): void {
      fake.status = 'failed';
      end?.();
    },
    settleAs(ok: boolean): void {
      fake.status = ok ? 'complete' : 'failed';
      end?.();
    },
  };
  return fake as unknown as Download & { settleAs(ok: boolean): void };
}

/** Another client process holding the lock on `file`'s working files in `dest` until its stdin closes (`release`) or it is killed. */
async function lockHolder(t: Teardown, dest: string, file: string): Promise<{ pid: number; release(): Promise<void>; kill(): Promise<void> }> {
  const script = `
    import { lockWorkingFiles } from '@tracker-cluster/client';
    const release = await lockWorkingFiles(process.argv[1], process.argv[2], () => {});
    process.stdout.write('locked\\n');
    process.stdin.on('end', async () => { await release(); process.exit(0); });
    process.stdin.resume();`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script, dest, file], { stdio: ['pipe', 'pipe', 'inherit'] });
  t.teardown(() => child.kill('SIGKILL'));
  const exited = once(child, 'exit');
  let out = '';
  child.stdout.setEncoding('utf8');
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (d: string) => {
      out += d;
      if (out.includes('locked')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`lock holder exited ${code} before taking the lock`)));
  });
  return {
    pid: child.pid as number,
    release: async () => {
      child.stdin.end();
      await exited;
    },
    kill: async () => {
      child.kill('SIGKILL');
      await exited;
    },
  };
}

t.test('the working files of a download in another client process are refused, never written', async (t) => {
  const { meta, data } = await seed(t, 'notes.txt');
  const dest = await tempDir(t);
  const holder = await lockHolder(t, dest, 'notes.txt');

  const refused = new Download('g', 'notes.txt', dest, meta, deps(meta), quick);
  await t.rejects(refused.peekResume(), /another tracker-client is downloading "notes\.txt" into .*; let it finish or choose another folder/);
  await refused.run(); // a queued download that starts while the other process still runs
  t.equal(refused.status, 'failed');
  t.match(refused.reason, /another tracker-client is downloading "notes\.txt"/);
  t.same((await readdir(dest)).sort(), ['.notes.txt.part.lock'], 'nothing of ours was written beside the other process\'s lock');

  await holder.release();
  const download = new Download('g', 'notes.txt', dest, meta, deps(meta), quick);
  t.equal(await download.peekResume(), 0);
  await download.run();
  t.equal(download.status, 'complete', download.reason);
  t.same(await readFile(path.join(dest, 'notes.txt')), data);
  t.same(await readdir(dest), ['notes.txt'], 'its own lock is gone with the working files');
});

t.test('the lock of a client process killed on this host is taken over at once, not after it goes stale', async (t) => {
  const { meta, data } = await seed(t, 'notes.txt');
  const dest = await tempDir(t);
  const holder = await lockHolder(t, dest, 'notes.txt');
  // As the killed client's download left it: a state naming its process, no piece yet.
  const state = { version: 1 as const, group: 'g', file: 'notes.txt', size: meta.size, sha256: meta.sha256, pieceSize: meta.pieceSize, have: new Bitfield(10).toHex() };
  await saveDownloadState(dest, { ...state, owner: { host: os.hostname(), pid: holder.pid } });
  await t.rejects(new Download('g', 'notes.txt', dest, meta, deps(meta), quick).peekResume(), /another tracker-client/, 'refused while that process runs');

  await holder.kill();
  const download = new Download('g', 'notes.txt', dest, meta, deps(meta), quick);
  t.equal(await download.peekResume(), 0);
  await download.run(); // without the takeover it would fail at once: the lock is not stale yet
  t.equal(download.status, 'complete', download.reason);
  t.same(await readFile(path.join(dest, 'notes.txt')), data);
  t.same(await readdir(dest), ['notes.txt']);
});

/** A peer that says it holds every piece of a 10-piece file and never answers a PIECE request (hung, not gone). */
async function hungPeer(t: Teardown): Promise<{ port: number; asked: () => number }> {
  let asked = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    const decoder = new FrameDecoder();
    socket.on('data', (chunk: Buffer) => {
      for (const frame of decoder.push(chunk)) {
        if (frame.payload.toString('utf8').startsWith('HAVE ')) socket.write(encodeFrame(0n, 'OK 10 ffc0'));
        else asked++;
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return { port: (server.address() as net.AddressInfo).port, asked: () => asked };
}

t.test('end game: pieces asked of a hung peer come from another, long before its connection times out', async (t) => {
  const { meta, data } = await seed(t, 'notes.txt');
  const hung = await hungPeer(t);
  const both: FilePeers = { ...meta, peers: [...meta.peers, { user: 'hung', address: { host: '127.0.0.1', port: hung.port }, text: `127.0.0.1:${hung.port}` }] };
  const dest = await tempDir(t);
  const download = new Download('g', 'notes.txt', dest, both, deps(both), quick);
  t.teardown(() => download.abort('test over'));
  // Well inside the 30 s after which a peer connection with requests outstanding and no byte is closed.
  const deadline = new Promise<'late'>((resolve) => setTimeout(() => resolve('late'), 20_000).unref());
  t.equal(await Promise.race([download.run().then(() => 'ended' as const), deadline]), 'ended');
  t.equal(download.status, 'complete', download.reason);
  t.ok(hung.asked() > 0, `the hung peer was asked for pieces (${hung.asked()})`);
  t.same([...download.sources], [`127.0.0.1:${meta.peers[0]?.address.port}`], 'every piece came from the live peer');
  t.same(await readFile(path.join(dest, 'notes.txt')), data);
});

t.test('the end of a download waits for the answer to its first announce, which decides whether to announce again', async (t) => {
  const { meta, data } = await seed(t, 'order.bin');
  const dest = await tempDir(t);
  const calls: string[] = [];
  let answered = false;
  let answer = (): void => undefined;
  const answering = new Promise<void>((resolve) => (answer = resolve));
  const download = new Download(
    'g',
    'order.bin',
    dest,
    meta,
    {
      ...deps(meta),
      announce: async () => {
        calls.push('announce');
        await answering;
        answered = true;
        calls.push('answered');
      },
      completed: async () => {
        calls.push(answered ? 'completed' : 'completed before the answer');
        answer();
      },
    },
    quick,
  );
  const run = download.run();
  // The tracker answers the first announce only once the download is published and its state gone: the point where
  // the end either waits for that answer or goes on without it.
  const there = (file: string): Promise<boolean> => stat(file).then(() => true, () => false);
  const deadline = Date.now() + 20_000;
  while (!answered && Date.now() < deadline) {
    if ((await there(path.join(dest, 'order.bin'))) && !(await there(statePath(dest, 'order.bin')))) answer();
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  await run;
  t.equal(download.status, 'complete', download.reason);
  t.same(calls, ['announce', 'answered', 'completed']);
  t.same(await readFile(path.join(dest, 'order.bin')), data);
});

t.test('queue positions: 0 for a download that starts, then 1, 2 … in line', async (t) => {
  const queue = new DownloadQueue(2);
  const d = ['f1', 'f2', 'f3', 'f4'].map((f) => fakeDownload('g', f));
  t.same(
    d.map((x) => queue.add(x)),
    [0, 0, 1, 2],
  );
  t.same(d.map((x) => x.status), ['running', 'running', 'queued', 'queued']);
  d[0]?.settleAs(true);
  await t.resolves(new Promise((resolve) => setImmediate(resolve)));
  t.equal(d[2]?.status, 'running', 'the first in line starts when a slot frees');
  t.equal(queue.add(fakeDownload('g', 'f5')), 2, 'f4 is first in line now, f5 second');
  for (const x of queue.list()) (x as ReturnType<typeof fakeDownload>).settleAs(true);
});

t.test('a download run again replaces its failed attempt in the list', async (t) => {
  const queue = new DownloadQueue(2);
  const first = fakeDownload('g', 'f');
  const other = fakeDownload('g', 'other');
  queue.add(first);
  queue.add(other);
  first.settleAs(false);
  other.settleAs(false);
  await queue.whenIdle();
  const retry = fakeDownload('g', 'f');
  queue.add(retry);
  t.same(
    queue.list().map((x) => [x.file, x.status]),
    [
      ['other', 'failed'],
      ['f', 'running'],
    ],
    'the old failure of f is gone, the failure of another file stays',
  );
  retry.settleAs(true);
  await queue.whenIdle();
});

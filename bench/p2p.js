// `npm run bench:p2p` (or `node bench/p2p.js`): peer-to-peer download throughput.
//
// One tracker-primary, three seeder tracker-client processes sharing the
// same file (--serve), and one downloader tracker-client process running
// `download_file ...; wait_downloads`. Reported: the download's MB/s (from
// the download starting to the file verified and renamed, as the client's
// `[C]` line says, and the whole client run end to end), the downloader's
// peak RSS (VmHWM, /proc/<pid>/status), and, in the same run, a plain
// loopback copy of the same file: one TCP stream, read from disk by one
// process and written to disk by another (bench/p2p-copy.js).
//
// Also printed: the CPU seconds (user + system) the downloader and the three
// seeders spent during the download, and the plain copy's two processes, so
// that CPU per byte can be compared (the machine's cores are shared by all).
//
// Flags: --size-mb N (default 1024), --piece-size BYTES (default 524288), --no-docs,
// --cpu-prof DIR (V8 CPU profiles of the downloader and seeders, for bench/profile-summary.js).
// Rewrites the `bench:p2p` section of docs/benchmarks.md.
import { spawn } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { randomFillSync } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { ROOT, machine, makeTempDir, procCpuSeconds, procStatus, removeTempDir, startTracker, stopChild, track, writeDocsSection } from './lib.js';

const CLIENT = path.join(ROOT, 'packages/client/bin/tracker-client.js');
const args = process.argv.slice(2);
const flag = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : fallback;
};
const SIZE = Number(flag('--size-mb', process.env.BENCH_P2P_SIZE_MB ?? '1024')) * 1024 * 1024;
const PIECE = Number(flag('--piece-size', '524288'));
const DOCS = !args.includes('--no-docs');
const CPU_PROF = flag('--cpu-prof', undefined);
const PROF_ARGS = CPU_PROF ? ['--cpu-prof', '--cpu-prof-dir', path.resolve(CPU_PROF)] : [];

/** [user, system] CPU seconds of a process (0, 0 once it is gone). */
function cpuSplit(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return [Number(f[11]) / 100, Number(f[12]) / 100];
  } catch {
    return [0, 0];
  }
}

function spawnNode(argv) {
  const child = track(spawn(process.execPath, argv, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] }));
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (d) => (out += d));
  child.stderr.setEncoding('utf8').on('data', (d) => (err += d));
  const exited = new Promise((resolve) => child.once('close', (code) => resolve(code)));
  return { child, out: () => out, err: () => err, exited };
}

async function waitOut(p, re, ms = 600_000) {
  const deadline = Date.now() + ms;
  while (!re.test(p.out())) {
    if (Date.now() > deadline) throw new Error(`no ${re} in output:\n${p.out()}\n${p.err()}`);
    if (p.child.exitCode !== null) throw new Error(`exited before ${re}:\n${p.out()}\n${p.err()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function client(tracker, argv) {
  const p = spawnNode([CLIENT, '--tracker', tracker, ...argv]);
  const code = await p.exited;
  if (code !== 0) throw new Error(`tracker-client ${argv.join(' ')} exited ${code}:\n${p.out()}\n${p.err()}`);
  return p.out();
}

const dir = makeTempDir('bench-p2p-');
try {
  // The file: random bytes, written in 8 MiB blocks.
  const file = path.join(dir, 'big.bin');
  const fd = fs.openSync(file, 'w');
  const block = Buffer.allocUnsafe(8 * 1024 * 1024);
  for (let left = SIZE; left > 0; left -= block.length) {
    randomFillSync(block);
    fs.writeSync(fd, block, 0, Math.min(block.length, left));
  }
  fs.closeSync(fd);
  console.log(`file: ${(SIZE / 1024 ** 2).toFixed(0)} MiB in ${dir}`);

  // Plain copy: one TCP stream, disk to disk.
  const sender = spawnNode([path.join(ROOT, 'bench/p2p-copy.js'), 'send', file]);
  await waitOut(sender, /listening (\d+)/);
  const port = /listening (\d+)/.exec(sender.out())[1];
  const receiver = spawnNode([path.join(ROOT, 'bench/p2p-copy.js'), 'recv', port, path.join(dir, 'copy.bin')]);
  let copyCpu = 0;
  const copyPoll = setInterval(() => {
    copyCpu = Math.max(copyCpu, (procCpuSeconds(sender.child.pid) ?? 0) + (procCpuSeconds(receiver.child.pid) ?? 0));
  }, 25);
  await receiver.exited;
  await sender.exited;
  clearInterval(copyPoll);
  const copy = JSON.parse(receiver.out());
  const copyMBs = copy.bytes / 1e6 / (copy.ms / 1000);
  fs.rmSync(path.join(dir, 'copy.bin'));
  console.log(`plain copy: ${copyMBs.toFixed(1)} MB/s (${copy.bytes} bytes in ${(copy.ms / 1000).toFixed(2)} s)`);

  // Tracker, users, group.
  const tracker = await startTracker({ role: 'primary', scenario: 'p2p', secret: 'bench-secret' });
  const address = `${tracker.address.host}:${tracker.address.port}`;
  const users = ['s1', 's2', 's3', 'dl'];
  await client(address, ['--exec', `${users.map((u) => `create_user ${u} pw`).join('; ')}; login s1 pw; create_group g`]);
  for (const u of users.slice(1)) await client(address, ['--exec', `login ${u} pw; join_group g`]);
  await client(address, ['--exec', `login s1 pw; ${users.slice(1).map((u) => `accept_request g ${u}`).join('; ')}`]);

  // Three seeders of the same file.
  const seeders = users.slice(0, 3).map((u) =>
    spawnNode([...PROF_ARGS, CLIENT, '--tracker', address, '--data-dir', path.join(dir, u), '--serve', '--exec', `login ${u} pw; upload_file ${file} g ${PIECE}`]),
  );
  const hashStart = performance.now();
  for (const s of seeders) await waitOut(s, /OK shared big\.bin/);
  console.log(`3 seeders ready (hashing took ${((performance.now() - hashStart) / 1000).toFixed(1)} s)`);

  // The download.
  const dest = path.join(dir, 'dest');
  fs.mkdirSync(dest);
  const t0 = performance.now();
  const seederCpu0 = seeders.map((s) => procCpuSeconds(s.child.pid) ?? 0);
  const dl = spawnNode([...PROF_ARGS, CLIENT, '--tracker', address, '--data-dir', path.join(dir, 'dl'), '--exec', `login dl pw; download_file g big.bin ${dest}; wait_downloads`]);
  let peakKb = 0;
  let dlCpu = [0, 0];
  const poll = setInterval(() => {
    const s = procStatus(dl.child.pid);
    peakKb = Math.max(peakKb, s.rssKb ?? 0, s.hwmKb ?? 0);
    const c = cpuSplit(dl.child.pid);
    if (c[0] + c[1] > dlCpu[0] + dlCpu[1]) dlCpu = c;
  }, 25);
  const code = await dl.exited;
  clearInterval(poll);
  const seederCpu = seeders.reduce((sum, s, i) => sum + (procCpuSeconds(s.child.pid) ?? 0) - (seederCpu0[i] ?? 0), 0);
  const wallS = (performance.now() - t0) / 1000;
  if (code !== 0) throw new Error(`download failed (${code}):\n${dl.out()}\n${dl.err()}`);
  const done = /\[C\] \[g\] big\.bin 100% size=(\d+) ([0-9.]+) MB\/s sources=(\d+)/.exec(dl.out());
  if (!done || fs.statSync(path.join(dest, 'big.bin')).size !== SIZE) throw new Error(`unexpected output:\n${dl.out()}`);
  const p2pMBs = Number(done[2]);
  const endToEndMBs = SIZE / 1e6 / wallS;
  const peakMb = peakKb / 1024;
  const ratio = p2pMBs / copyMBs;
  console.log(`p2p download: ${p2pMBs.toFixed(1)} MB/s from ${done[3]} seeders (client run end to end ${endToEndMBs.toFixed(1)} MB/s, ${wallS.toFixed(2)} s)`);
  console.log(`downloader peak RSS: ${peakMb.toFixed(1)} MB; p2p / plain copy = ${(ratio * 100).toFixed(0)}%`);
  console.log(`CPU during the download: downloader ${(dlCpu[0] + dlCpu[1]).toFixed(2)} s (user ${dlCpu[0].toFixed(2)}, sys ${dlCpu[1].toFixed(2)}; whole run, last sample), 3 seeders ${seederCpu.toFixed(2)} s; plain copy ${copyCpu.toFixed(2)} s`);

  for (const s of seeders) await stopChild(s.child);
  await stopChild(tracker.child);

  if (DOCS) {
    const m = machine();
    const section = [
      '<!-- bench:p2p:start -->',
      '## Peer-to-peer download',
      '',
      '_This section is rewritten by `npm run bench:p2p` (bench/p2p.js); edit outside the markers._',
      '',
      `- Date: ${new Date().toISOString()}`,
      `- Machine: ${m.cpu}, ${m.memory} RAM, ${m.os}, Node ${m.node}`,
      `- Setup: one tracker-primary, 3 seeder \`tracker-client --serve\` processes sharing the same ${(SIZE / 1024 ** 2).toFixed(0)} MiB file of random bytes (piece size ${PIECE} B), and one downloader \`tracker-client --exec "login ...; download_file g big.bin DEST; wait_downloads"\`; all on this machine over loopback, files in ${path.dirname(dir)}.`,
      '- p2p MB/s: the size over the time from the download starting to the whole file verified (SHA-256 of every piece; that of the whole file computed as the pieces come in and compared at the end) and renamed, as the client reports it in its `[C]` line. End to end: the whole downloader run (process start, login, `file_peers`, download, exit).',
      '- Plain copy: the same file through one TCP stream on loopback, read from disk by one Node process and written to disk by another (bench/p2p-copy.js), in the same run.',
      '- Downloader peak RSS: VmHWM of the downloader process (/proc/&lt;pid&gt;/status), polled every 25 ms until it exits.',
      '- CPU: user + system seconds (/proc/&lt;pid&gt;/stat, polled every 25 ms): the downloader over its whole run (its last sample), the 3 seeders during the download, the plain copy\'s two processes. The machine\'s cores are shared by all of them (and whatever else runs), so the MB/s move with the load; the CPU seconds per run say more about the cost.',
      '',
      '| measure | value | target | met |',
      '|---|---:|---:|---:|',
      `| plain loopback copy (1 TCP stream) | ${copyMBs.toFixed(1)} MB/s | - | - |`,
      `| p2p download from 3 seeders | ${p2pMBs.toFixed(1)} MB/s | ≥ 50% of the copy (${(copyMBs / 2).toFixed(1)} MB/s) | ${ratio >= 0.5 ? 'yes' : 'no'} (${(ratio * 100).toFixed(0)}%) |`,
      `| p2p, whole client run end to end | ${endToEndMBs.toFixed(1)} MB/s | - | - |`,
      `| downloader peak RSS | ${peakMb.toFixed(1)} MB | < 200 MB | ${peakMb < 200 ? 'yes' : 'no'} |`,
      `| CPU: downloader (user + sys) / 3 seeders / plain copy | ${(dlCpu[0] + dlCpu[1]).toFixed(2)} s (${dlCpu[0].toFixed(2)} + ${dlCpu[1].toFixed(2)}) / ${seederCpu.toFixed(2)} s / ${copyCpu.toFixed(2)} s | - | - |`,
      '<!-- bench:p2p:end -->',
    ].join('\n');
    writeDocsSection('<!-- bench:p2p:start -->', '<!-- bench:p2p:end -->', section);
    console.log('docs/benchmarks.md updated (bench:p2p section)');
  }
} finally {
  removeTempDir(dir);
}

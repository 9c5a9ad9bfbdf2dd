// Helpers shared by the benchmark scripts (bench/run.js, bench/replication.js):
// starting tracker processes and waiting for their ready line, forking worker
// processes, stopping every child on every exit path (including Ctrl-C),
// /proc sampling (RSS, CPU), formatting, and rewriting one marked section of
// docs/benchmarks.md.
import { fork, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { randomBytes } from 'node:crypto';
import { BenchClient } from './client.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const BINS = {
  primary: path.join(ROOT, 'packages/tracker-primary/bin/tracker-primary.js'),
  replica: path.join(ROOT, 'packages/tracker-replica/bin/tracker-replica.js'),
};
export const DOCS_FILE = path.join(ROOT, 'docs/benchmarks.md');
/** The baseline durable-write server (alone, or a semi-sync pair) and its ready line. */
export const DURABLE_SERVER = path.join(ROOT, 'bench/durable-server.js');
export const DURABLE_SERVER_READY = /^durable-server ready on (\S+):(\d+)$/m;
export const READY_TIMEOUT_MS = 20_000;
const STOP_TIMEOUT_MS = 5_000;
const CLK_TCK = 100; // Linux USER_HZ
/**
 * Options every benchmarked tracker gets. One user makes the whole load, with
 * a session per connection and a group per write: the per-user limits are
 * lifted so that they do not end it.
 */
export const TRACKER_BENCH_ARGS = [
  '--scrypt-cost', '1024', '--rate-limit', '0', '--log-level', 'warn',
  '--max-sessions-per-user', '1000000', '--max-groups-per-user', '1000000000',
];

// ---------------------------------------------------------------------------
// Child processes and temp dirs: everything we start is stopped on every exit path.

const children = new Set();
const tempDirs = new Set();
let shuttingDown = false;

export function track(child) {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

export function alive(child) {
  return child.exitCode === null && child.signalCode === null;
}

export async function stopChild(child, timeoutMs = STOP_TIMEOUT_MS) {
  if (!alive(child)) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => {
    if (alive(child)) child.kill('SIGKILL');
  }, timeoutMs);
  await exited;
  clearTimeout(timer);
}

/** A fresh temporary directory, removed on every exit path (or earlier with removeTempDir). */
export function makeTempDir(prefix) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  tempDirs.add(dir);
  return dir;
}

export function removeTempDir(dir) {
  tempDirs.delete(dir);
  try {
    fs.rmSync(dir, { recursive: true, force: true });
  } catch {
    /* best effort */
  }
}

function removeTempDirs() {
  for (const dir of [...tempDirs]) removeTempDir(dir);
}

/** Stops every child, removes the temp dirs and exits. */
export async function shutdown(code, why) {
  if (shuttingDown) return;
  shuttingDown = true;
  if (why) process.stderr.write(`bench: ${why}; stopping child processes\n`);
  await Promise.all([...children].map((c) => stopChild(c, 2000)));
  removeTempDirs();
  process.exit(code);
}

for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    if (shuttingDown) {
      for (const c of children) if (alive(c)) c.kill('SIGKILL');
      process.exit(130);
    }
    void shutdown(130, `received ${sig}`);
  });
}
// Last resort (e.g. process.exit from elsewhere): nothing may outlive us.
process.on('exit', () => {
  for (const c of children) if (alive(c)) c.kill('SIGKILL');
  removeTempDirs();
});

// ---------------------------------------------------------------------------
// Options

export class UsageError extends Error {}

export function parseDuration(text, name) {
  const m = /^(\d+(?:\.\d+)?)(ms|s)?$/.exec(String(text).trim());
  if (!m) throw new UsageError(`${name}: expected a duration like 10000, 500ms or 10s, got "${text}"`);
  return Math.round(Number(m[1]) * (m[2] === 's' ? 1000 : 1));
}

export function positiveInt(text, name) {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`${name}: expected a positive integer, got "${text}"`);
  return n;
}

// ---------------------------------------------------------------------------
// /proc sampling

export function procStatus(pid) {
  try {
    const text = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (key) => {
      const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text);
      return m ? Number(m[1]) : undefined;
    };
    return { rssKb: kb('VmRSS'), hwmKb: kb('VmHWM') };
  } catch {
    return {};
  }
}

/** utime + stime of a process, in seconds. */
export function procCpuSeconds(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields[0] is field 3 (state); utime is field 14, stime field 15.
    return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
  } catch {
    return undefined;
  }
}

/** Busy CPU seconds of the whole machine (all cores) so far, from /proc/stat. */
export function systemBusySeconds() {
  try {
    const line = fs.readFileSync('/proc/stat', 'utf8').split('\n', 1)[0];
    const v = line.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal ...
    const busy = v[0] + v[1] + v[2]; // user + nice + system (irq/softirq/steal are not charged to processes)
    return busy / CLK_TCK;
  } catch {
    return undefined;
  }
}

/** Peak RSS of a process: VmRSS polled every 200 ms, and VmHWM when read at the end. */
export function rssWatcher(pid) {
  let peakKb = 0;
  const sample = () => {
    const s = procStatus(pid);
    if (s.rssKb && s.rssKb > peakKb) peakKb = s.rssKb;
  };
  const timer = setInterval(sample, 200);
  return {
    /** Peak so far in MB (reads VmHWM too). */
    peakMb() {
      const s = procStatus(pid);
      peakKb = Math.max(peakKb, s.rssKb ?? 0, s.hwmKb ?? 0);
      return peakKb / 1024;
    },
    stop() {
      clearInterval(timer);
    },
  };
}

/**
 * CPU used by some processes and by the whole machine between mark('start')
 * and mark('end'), as a share of one core (100% = one core).
 */
export function cpuMeter(pids) {
  const at = {};
  const read = () => ({ procs: Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, procCpuSeconds(pid)])), sys: systemBusySeconds() });
  return {
    mark(phase) {
      at[phase] = read();
    },
    /** { <name>: percent, ..., machine: percent } over `seconds`, or {} when a mark is missing. */
    percentages(seconds) {
      const a = at.start;
      const b = at.end;
      if (!a || !b) return {};
      const out = {};
      for (const k of Object.keys(pids)) {
        out[k] = a.procs[k] !== undefined && b.procs[k] !== undefined ? ((b.procs[k] - a.procs[k]) / seconds) * 100 : undefined;
      }
      out.machine = a.sys !== undefined && b.sys !== undefined ? ((b.sys - a.sys) / seconds) * 100 : undefined;
      return out;
    },
  };
}

// ---------------------------------------------------------------------------
// Starting processes

/**
 * Spawns `node ...argv` and resolves once its stdout printed a line matching
 * `ready` (capture groups: host, port). stderr is kept (last 4 kB), and every
 * stderr line is handed to `onStderrLine` when given.
 */
export async function startProcess({ name, argv, ready, onStderrLine }) {
  const child = track(spawn(process.execPath, argv, { cwd: ROOT, env: process.env, stdio: ['ignore', 'pipe', 'pipe'] }));
  let stderrTail = '';
  let partial = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d) => {
    stderrTail = (stderrTail + d).slice(-4000);
    if (onStderrLine) {
      const lines = (partial + d).split('\n');
      partial = lines.pop();
      for (const line of lines) onStderrLine(line);
    }
  });

  const address = await new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => fail(new Error(`no ready line within ${READY_TIMEOUT_MS} ms`)), READY_TIMEOUT_MS);
    const fail = (err) => {
      clearTimeout(timer);
      child.stdout.off('data', onData);
      child.off('exit', onExit);
      reject(new Error(`${name} did not start: ${err.message}\n${stderrTail}`));
    };
    const onExit = (code, signal) => fail(new Error(`exited with ${signal ?? code}`));
    const onData = (d) => {
      out += d;
      const m = ready.exec(out);
      if (!m) return;
      clearTimeout(timer);
      child.stdout.off('data', onData);
      child.off('exit', onExit);
      child.stdout.resume(); // keep draining anything else
      resolve({ host: m[1].replace(/^\[|\]$/g, ''), port: Number(m[2]) });
    };
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', onData);
    child.once('exit', onExit);
  });
  return { child, address, stderr: () => stderrTail };
}

/**
 * Starts a tracker (`role` primary or replica) on 127.0.0.1, port 0, with a
 * fresh temp db and TRACKER_BENCH_ARGS plus `args`. With `cpuProfDir` it runs
 * under `node --cpu-prof`, the profile written into cpuProfDir when it exits
 * (SIGTERM → graceful stop). Resolves once the ready line is printed, with
 * { child, address, dir, stderr(), readyAt (performance.now()) }.
 */
export async function startTracker({ role, scenario, secret, args = [], cpuProfDir, onStderrLine }) {
  const dir = makeTempDir(`bench-${scenario}-${role}-`);
  const nodeArgs = [];
  if (cpuProfDir) {
    // Node 20 refuses --cpu-prof in NODE_OPTIONS, so it goes on the command line.
    fs.mkdirSync(cpuProfDir, { recursive: true });
    nodeArgs.push('--cpu-prof', `--cpu-prof-dir=${cpuProfDir}`);
  }
  const argv = [
    ...nodeArgs,
    BINS[role],
    '--host', '127.0.0.1',
    '--port', '0',
    '--db', path.join(dir, 'tracker.db'),
    '--secret', secret,
    ...TRACKER_BENCH_ARGS,
    ...args,
  ];
  const name = `tracker-${role}`;
  const started = await startProcess({ name, argv, ready: new RegExp(`^${name} ready on (\\S+):(\\d+) \\(.*\\)$`, 'm'), onStderrLine });
  return { ...started, dir, readyAt: performance.now() };
}

/** Stops a tracker started by startTracker and removes its directory. */
export async function stopTracker(tracker) {
  if (!tracker) return;
  await stopChild(tracker.child);
  removeTempDir(tracker.dir);
}

/**
 * Forks a worker script, sends it `config`, hands every { type: 'phase' }
 * message to `onMessage`, and resolves with its { type: 'result' } message
 * (rejects on { type: 'error' }, an exit without result, or `timeoutMs`).
 * Returns { child, done } so that the caller can send the worker more messages.
 */
export function forkWorker(script, config, { onMessage, timeoutMs } = {}) {
  const child = track(fork(script, [], { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit', 'ipc'], env: { ...process.env, NODE_OPTIONS: '' } }));
  const name = path.basename(script);
  const done = new Promise((resolve, reject) => {
    let result;
    const deadline = setTimeout(() => {
      reject(new Error(`${name} did not finish within ${timeoutMs} ms`));
      child.kill('SIGKILL');
    }, timeoutMs ?? 120_000);
    child.on('message', (msg) => {
      if (msg?.type === 'result' || msg?.type === 'error') result = msg;
      else onMessage?.(msg);
    });
    child.once('error', (err) => {
      clearTimeout(deadline);
      reject(err);
    });
    child.once('exit', (code, signal) => {
      clearTimeout(deadline);
      if (result?.type === 'result') resolve(result);
      else if (result?.type === 'error') reject(new Error(`${name} failed: ${result.message}`));
      else reject(new Error(`${name} exited with ${signal ?? code} and no result`));
    });
  });
  child.send(config);
  return { child, done };
}

// ---------------------------------------------------------------------------
// Talking to a tracker (not on a measured path)

/** `status` as an object: { role, seq, log_hash, replica, replica_seq, degraded, ... } (all strings). */
export async function status(client) {
  const r = await client.ok('status');
  const fields = {};
  for (const word of r.text.split('\n', 1)[0].split(' ').slice(1)) {
    const eq = word.indexOf('=');
    if (eq > 0) fields[word.slice(0, eq)] = word.slice(eq + 1);
  }
  return fields;
}

/** Polls `check(status)` every `intervalMs` until it returns something truthy; rejects after `timeoutMs` with the last status. */
export async function waitForStatus(address, check, { intervalMs = 20, timeoutMs = 10_000, what = 'status' } = {}) {
  const client = await BenchClient.connect(address.host, address.port);
  const deadline = performance.now() + timeoutMs;
  let last;
  try {
    for (;;) {
      last = await status(client);
      const hit = check(last);
      if (hit) return hit;
      if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last status: ${JSON.stringify(last)}`);
      await sleep(intervalMs);
    }
  } finally {
    client.close();
  }
}

/** One user with `count` sessions (one per load connection), made over a normal client connection. */
export async function makeSessions(address, count, user = 'bench') {
  const client = await BenchClient.connect(address.host, address.port);
  try {
    const password = randomHex(12);
    await client.ok(`create_user ${user} ${password}`);
    const sessions = [];
    for (let i = 0; i < count; i++) {
      const r = await client.ok(`login ${user} ${password}`);
      if (r.session === 0n) throw new Error('login answered without a session id');
      sessions.push(r.session);
    }
    return sessions.map(String);
  } finally {
    client.close();
  }
}

/** Session ids for a load against a server that keeps no sessions (the baselines): 1..count. */
export function fakeSessions(count) {
  return Array.from({ length: count }, (_, i) => String(i + 1));
}

export function randomHex(bytes) {
  return randomBytes(bytes).toString('hex');
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------------------
// Output

export const fmtInt = (n) => (n === undefined || Number.isNaN(n) ? '-' : Math.round(n).toLocaleString('en-US'));
export const fmtMs = (n) => (n === undefined ? '-' : n < 10 ? n.toFixed(3) : n.toFixed(1));
export const fmtPct = (n) => (n === undefined ? '-' : `${Math.round(n)}%`);

export function machine() {
  const cpus = os.cpus();
  const models = [...new Set(cpus.map((c) => c.model.trim()))].join(', ');
  return {
    cpu: `${models} × ${cpus.length}`,
    cores: cpus.length,
    memory: `${(os.totalmem() / 1024 ** 3).toFixed(1)} GiB`,
    os: `${os.type()} ${os.release()} (${os.arch()})`,
    node: process.version,
  };
}

const DOCS_PREFACE = [
  '# Benchmarks',
  '',
  'Measured by the scripts in `bench/`. Each script rewrites only its own section, between its markers;',
  'text outside the markers is kept.',
  '',
  '- `npm run bench` runs every scenario below (a few minutes). `npm run bench -- --help` lists',
  '  the options: `--duration`, `--warmup`, `--connections`, `--pipeline`, `--scenarios`, `--no-docs`.',
  '- `npm run bench -- --cpu-prof DIR --no-docs` runs each tracker under `node --cpu-prof`;',
  '  `node bench/profile-summary.js DIR/<scenario>/*.cpuprofile` lists the top functions by self and total time.',
  '',
  '',
].join('\n');

/**
 * Replaces the text between `markStart` and `markEnd` (markers included) in
 * docs/benchmarks.md with `section`, or appends `section` when the markers
 * are missing. Everything else in the file is kept.
 */
export function writeDocsSection(markStart, markEnd, section) {
  let text;
  try {
    text = fs.readFileSync(DOCS_FILE, 'utf8');
  } catch {
    text = DOCS_PREFACE;
  }
  const a = text.indexOf(markStart);
  const b = text.indexOf(markEnd);
  if (a >= 0 && b > a) text = text.slice(0, a) + section + text.slice(b + markEnd.length);
  else text = `${text.replace(/\n*$/, '\n\n')}${section}\n`;
  fs.mkdirSync(path.dirname(DOCS_FILE), { recursive: true });
  fs.writeFileSync(DOCS_FILE, text);
}

/** Text of docs/benchmarks.md between the markers (exclusive), or undefined. */
export function readDocsSection(markStart, markEnd) {
  try {
    const text = fs.readFileSync(DOCS_FILE, 'utf8');
    const a = text.indexOf(markStart);
    const b = text.indexOf(markEnd);
    return a >= 0 && b > a ? text.slice(a + markStart.length, b) : undefined;
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------
// Closed-loop load generator (bench/load.js) in its own process

export const LOAD_SCRIPT = path.join(ROOT, 'bench/load.js');

/**
 * Runs bench/load.js with `config` ({ host, port, scenario, connections,
 * pipeline, warmupMs, durationMs, sessions }); `onPhase('measure-start' |
 * 'measure-end')` is called as the measured window opens and closes.
 */
export function runLoad(config, onPhase) {
  const { done } = forkWorker(LOAD_SCRIPT, config, {
    onMessage: (msg) => {
      if (msg?.type === 'phase') onPhase?.(msg.phase);
    },
    timeoutMs: config.warmupMs + config.durationMs + 60_000,
  });
  return done;
}

// `npm run bench`: request throughput of the primary tracker.
//
// For each scenario: start a fresh tracker-primary process (temp db, port 0),
// wait for its ready line, prepare state over a normal client connection,
// run bench/load.js in its own process, sample the tracker's memory and CPU,
// and stop the tracker. Prints a table and rewrites the
// `bench:primary` section of docs/benchmarks.md.
//
// Flags (or environment):
//   --duration MS|10s      measuring time per scenario   (BENCH_DURATION_MS, default 10 s)
//   --warmup MS|2s         warm-up before measuring       (BENCH_WARMUP_MS, default 2 s)
//   --connections N        client connections            (BENCH_CONNECTIONS, default 50)
//   --pipeline N           requests outstanding per connection (BENCH_PIPELINE, default 1)
//   --scenarios a,b        subset of ping,read,write,baseline (BENCH_SCENARIOS; baseline =
//                          bench/echo-server.js, a minimal Node server, for scale)
//   --cpu-prof DIR         run the tracker under `node --cpu-prof`, profiles into DIR/<scenario>/
//                          (summarise with: node bench/profile-summary.js DIR/<scenario>/*.cpuprofile)
//   --no-docs              do not touch docs/benchmarks.md
import { fork, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { BenchClient } from './client.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const TRACKER_BIN = path.join(ROOT, 'packages/tracker-primary/bin/tracker-primary.js');
const LOAD_SCRIPT = path.join(ROOT, 'bench/load.js');
const DOCS_FILE = path.join(ROOT, 'docs/benchmarks.md');
const MARK_START = '<!-- bench:primary:start -->';
const MARK_END = '<!-- bench:primary:end -->';
const READY_TIMEOUT_MS = 20_000;
const STOP_TIMEOUT_MS = 5_000;
const READ_GROUPS = 100;
const CLK_TCK = 100; // Linux USER_HZ

const SCENARIOS = {
  ping: { label: 'ping', command: 'ping', target: 50_000 },
  read: { label: `read (list_groups, ${READ_GROUPS} groups)`, command: 'list_groups', target: 30_000 },
  write: { label: 'durable write (create_group)', command: 'create_group <unique>', target: 20_000 },
  // Not the tracker: bench/echo-server.js, for scale (what one Node process can answer here).
  baseline: { label: 'baseline: minimal Node frame server', command: 'ping', target: undefined },
};
const ECHO_SERVER = path.join(ROOT, 'bench/echo-server.js');

// ---------------------------------------------------------------------------
// Child processes and temp dirs: everything we start is stopped on every exit path.

const children = new Set();
const tempDirs = new Set();
let shuttingDown = false;

function track(child) {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

function alive(child) {
  return child.exitCode === null && child.signalCode === null;
}

async function stopChild(child, timeoutMs = STOP_TIMEOUT_MS) {
  if (!alive(child)) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => {
    if (alive(child)) child.kill('SIGKILL');
  }, timeoutMs);
  await exited;
  clearTimeout(timer);
}

function removeTempDirs() {
  for (const dir of tempDirs) {
    try {
      fs.rmSync(dir, { recursive: true, force: true });
    } catch {
      /* best effort */
    }
    tempDirs.delete(dir);
  }
}

async function shutdown(code, why) {
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

class UsageError extends Error {}

function parseDuration(text, name) {
  const m = /^(\d+(?:\.\d+)?)(ms|s)?$/.exec(String(text).trim());
  if (!m) throw new UsageError(`${name}: expected a duration like 10000, 500ms or 10s, got "${text}"`);
  return Math.round(Number(m[1]) * (m[2] === 's' ? 1000 : 1));
}

function positiveInt(text, name) {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`${name}: expected a positive integer, got "${text}"`);
  return n;
}

function parseArgs(argv, env) {
  const o = {
    durationMs: parseDuration(env.BENCH_DURATION_MS ?? '10000', 'BENCH_DURATION_MS'),
    warmupMs: parseDuration(env.BENCH_WARMUP_MS ?? '2000', 'BENCH_WARMUP_MS'),
    connections: positiveInt(env.BENCH_CONNECTIONS ?? '50', 'BENCH_CONNECTIONS'),
    pipeline: positiveInt(env.BENCH_PIPELINE ?? '1', 'BENCH_PIPELINE'),
    scenarios: (env.BENCH_SCENARIOS ?? 'ping,read,write,baseline').split(','),
    cpuProfDir: undefined,
    docs: true,
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const [flag, inline] = arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    const value = () => {
      if (inline !== undefined) return inline;
      if (i + 1 >= argv.length) throw new UsageError(`${flag} needs a value`);
      return argv[++i];
    };
    switch (flag) {
      case '--duration': o.durationMs = parseDuration(value(), flag); break;
      case '--warmup': o.warmupMs = parseDuration(value(), flag); break;
      case '--connections': o.connections = positiveInt(value(), flag); break;
      case '--pipeline': o.pipeline = positiveInt(value(), flag); break;
      case '--scenarios': o.scenarios = value().split(','); break;
      case '--cpu-prof': o.cpuProfDir = path.resolve(value()); break;
      case '--no-docs': o.docs = false; break;
      case '--help':
      case '-h':
        process.stdout.write(fs.readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\nimport ')[0].replace(/^\/\/ ?/gm, '') + '\n');
        process.exit(0);
        break;
      default:
        throw new UsageError(`unknown option ${arg} (try --help)`);
    }
  }
  o.scenarios = o.scenarios.map((s) => s.trim()).filter(Boolean);
  for (const s of o.scenarios) if (!SCENARIOS[s]) throw new UsageError(`unknown scenario "${s}" (${Object.keys(SCENARIOS).join(', ')})`);
  if (o.durationMs < 100) throw new UsageError('--duration must be at least 100 ms');
  return o;
}

// ---------------------------------------------------------------------------
// /proc sampling of the tracker

function procStatus(pid) {
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
function procCpuSeconds(pid) {
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
function systemBusySeconds() {
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

// ---------------------------------------------------------------------------
// Tracker process

async function startTracker(opts, scenario) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `bench-${scenario}-`));
  tempDirs.add(dir);
  const args = [
    TRACKER_BIN,
    '--host', '127.0.0.1',
    '--port', '0',
    '--db', path.join(dir, 'tracker.db'),
    '--secret', randomBytes(16).toString('hex'),
    '--scrypt-cost', '1024',
    '--rate-limit', '0',
    '--log-level', 'warn',
  ];
  const nodeArgs = [];
  if (opts.cpuProfDir) {
    // Node 20 refuses --cpu-prof in NODE_OPTIONS, so it goes on the command line.
    // The profile is written when the tracker exits (SIGTERM → graceful stop).
    const profDir = path.join(opts.cpuProfDir, scenario);
    fs.mkdirSync(profDir, { recursive: true });
    nodeArgs.push('--cpu-prof', `--cpu-prof-dir=${profDir}`);
  }
  const baseline = scenario === 'baseline';
  const argv = baseline ? [ECHO_SERVER] : [...nodeArgs, ...args];
  const ready = baseline ? /^echo-server ready on (\S+):(\d+)$/m : /^tracker-primary ready on (\S+):(\d+) \(.*\)$/m;
  const child = track(spawn(process.execPath, argv, { cwd: ROOT, env: process.env, stdio: ['ignore', 'pipe', 'pipe'] }));
  let stderrTail = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d) => {
    stderrTail = (stderrTail + d).slice(-4000);
  });

  const address = await new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => fail(new Error(`no ready line within ${READY_TIMEOUT_MS} ms`)), READY_TIMEOUT_MS);
    const fail = (err) => {
      clearTimeout(timer);
      child.stdout.off('data', onData);
      child.off('exit', onExit);
      reject(new Error(`${baseline ? 'echo-server' : 'tracker-primary'} did not start: ${err.message}\n${stderrTail}`));
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
  return { child, address, dir, stderr: () => stderrTail };
}

// ---------------------------------------------------------------------------
// State preparation (not measured)

async function prepare(address, scenario, connections) {
  if (scenario === 'ping' || scenario === 'baseline') return { sessions: [] };
  const client = await BenchClient.connect(address.host, address.port);
  try {
    const password = randomBytes(12).toString('hex');
    await client.ok(`create_user bench ${password}`);
    // One session per load connection (several live sessions of one user are allowed).
    const sessions = [];
    for (let i = 0; i < connections; i++) {
      const r = await client.ok(`login bench ${password}`);
      if (r.session === 0n) throw new Error('login answered without a session id');
      sessions.push(r.session);
    }
    if (scenario === 'read') {
      for (let g = 0; g < READ_GROUPS; g++) await client.ok(`create_group g${String(g).padStart(3, '0')}`, sessions[0]);
      const r = await client.ok('list_groups', sessions[0]);
      if (r.response.text !== String(READ_GROUPS) || r.response.lines.length !== READ_GROUPS) {
        throw new Error(`list_groups answered "${r.text.split('\n')[0]}" with ${r.response.lines.length} lines, expected ${READ_GROUPS}`);
      }
    }
    return { sessions: sessions.map(String) };
  } finally {
    client.close();
  }
}

// ---------------------------------------------------------------------------
// Load generator process

function runLoad(config, onPhase) {
  return new Promise((resolve, reject) => {
    const child = track(fork(LOAD_SCRIPT, [], { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit', 'ipc'], env: { ...process.env, NODE_OPTIONS: '' } }));
    let result;
    const deadline = setTimeout(() => {
      reject(new Error('load generator did not finish in time'));
      child.kill('SIGKILL');
    }, config.warmupMs + config.durationMs + 60_000);
    child.on('message', (msg) => {
      if (msg?.type === 'phase') onPhase(msg.phase);
      else if (msg?.type === 'result') result = msg;
      else if (msg?.type === 'error') result = msg;
    });
    child.once('error', (err) => {
      clearTimeout(deadline);
      reject(err);
    });
    child.once('exit', (code, signal) => {
      clearTimeout(deadline);
      if (result?.type === 'result') resolve(result);
      else if (result?.type === 'error') reject(new Error(`load generator failed: ${result.message}`));
      else reject(new Error(`load generator exited with ${signal ?? code} and no result`));
    });
    child.send(config);
  });
}

// ---------------------------------------------------------------------------

async function runScenario(opts, scenario) {
  const tracker = await startTracker(opts, scenario);
  const pid = tracker.child.pid;
  let rssPeakKb = 0;
  const poll = setInterval(() => {
    const s = procStatus(pid);
    if (s.rssKb && s.rssKb > rssPeakKb) rssPeakKb = s.rssKb;
  }, 200);
  try {
    const { sessions } = await prepare(tracker.address, scenario, opts.connections);
    let cpuStart;
    let cpuEnd;
    let sysStart;
    let sysEnd;
    const result = await runLoad(
      {
        host: tracker.address.host,
        port: tracker.address.port,
        scenario,
        connections: opts.connections,
        pipeline: opts.pipeline,
        warmupMs: opts.warmupMs,
        durationMs: opts.durationMs,
        sessions,
      },
      (phase) => {
        if (phase === 'measure-start') {
          cpuStart = procCpuSeconds(pid);
          sysStart = systemBusySeconds();
        }
        if (phase === 'measure-end') {
          cpuEnd = procCpuSeconds(pid);
          sysEnd = systemBusySeconds();
        }
      },
    );
    if (!alive(tracker.child)) throw new Error(`tracker exited during the run\n${tracker.stderr()}`);
    const s = procStatus(pid);
    rssPeakKb = Math.max(rssPeakKb, s.rssKb ?? 0, s.hwmKb ?? 0);
    result.trackerPeakRssMb = rssPeakKb / 1024;
    result.trackerCpuPercent =
      cpuStart !== undefined && cpuEnd !== undefined ? ((cpuEnd - cpuStart) / (opts.durationMs / 1000)) * 100 : undefined;
    // Everything else the machine did meanwhile (other processes, kernel): a busy machine skews the figures.
    result.otherCpuPercent =
      sysStart !== undefined && sysEnd !== undefined && result.trackerCpuPercent !== undefined
        ? Math.max(0, ((sysEnd - sysStart) / (opts.durationMs / 1000)) * 100 - result.trackerCpuPercent - result.loadCpuPercent)
        : undefined;
    return result;
  } finally {
    clearInterval(poll);
    await stopChild(tracker.child);
    tempDirs.delete(tracker.dir);
    fs.rmSync(tracker.dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------
// Output

const fmtInt = (n) => Math.round(n).toLocaleString('en-US');
const fmtMs = (n) => (n === undefined ? '-' : n < 10 ? n.toFixed(3) : n.toFixed(1));
const fmtPct = (n) => (n === undefined ? '-' : `${Math.round(n)}%`);

function rows(results) {
  return results.map((r) => {
    const sc = SCENARIOS[r.scenario];
    const errs = r.errors + r.unexpected + r.socketFaults;
    return {
      scenario: sc.label,
      reqs: fmtInt(r.reqPerSec),
      p50: fmtMs(r.latencyMs.p50),
      p99: fmtMs(r.latencyMs.p99),
      errors: errs === 0 ? '0' : `${fmtInt(errs)} (${describeErrors(r)})`,
      rss: r.trackerPeakRssMb.toFixed(1),
      target: sc.target === undefined ? '-' : `≥ ${fmtInt(sc.target)}`,
      met: sc.target === undefined ? '-' : r.reqPerSec >= sc.target && errs === 0 ? 'yes' : 'no',
    };
  });
}

function describeErrors(r) {
  const parts = Object.entries(r.errorCodes).map(([code, n]) => `${code} ${n}`);
  if (r.unexpected) parts.push(`unexpected ${r.unexpected}`);
  if (r.socketFaults) parts.push(`lost connections ${r.socketFaults}`);
  return parts.join(', ');
}

const COLUMNS = [
  ['scenario', 'scenario'],
  ['reqs', 'req/s'],
  ['p50', 'p50 ms'],
  ['p99', 'p99 ms'],
  ['errors', 'errors'],
  ['rss', 'tracker peak RSS MB'],
  ['target', 'target req/s'],
  ['met', 'met'],
];

function textTable(data) {
  const widths = COLUMNS.map(([k, h]) => Math.max(h.length, ...data.map((d) => String(d[k]).length)));
  const line = (cells) => cells.map((c, i) => (i === 0 ? String(c).padEnd(widths[i]) : String(c).padStart(widths[i]))).join('  ');
  return [line(COLUMNS.map(([, h]) => h)), widths.map((w) => '-'.repeat(w)).join('  '), ...data.map((d) => line(COLUMNS.map(([k]) => d[k])))].join('\n');
}

function markdownTable(data) {
  const head = `| ${COLUMNS.map(([, h]) => h).join(' | ')} |`;
  const sep = `|${COLUMNS.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`;
  return [head, sep, ...data.map((d) => `| ${COLUMNS.map(([k]) => d[k]).join(' | ')} |`)].join('\n');
}

function detailTable(results) {
  const head = '| scenario | requests counted | p90 ms | p99.9 ms | max ms | tracker CPU | load generator CPU | other CPU |';
  const sep = '|---|---:|---:|---:|---:|---:|---:|---:|';
  const body = results.map((r) => {
    const l = r.latencyMs;
    return `| ${SCENARIOS[r.scenario].label} | ${fmtInt(r.ok)} | ${fmtMs(l.p90)} | ${fmtMs(l.p999)} | ${fmtMs(l.max)} | ${fmtPct(r.trackerCpuPercent)} | ${fmtPct(r.loadCpuPercent)} | ${fmtPct(r.otherCpuPercent)} |`;
  });
  return [head, sep, ...body].join('\n');
}

/** Other processes took a noticeable share of the CPU during some measurement. */
function busyWarning(results) {
  const busy = results.filter((r) => (r.otherCpuPercent ?? 0) > 15);
  if (busy.length === 0) return undefined;
  return (
    `other processes used CPU during ${busy.map((r) => `${r.scenario} (${fmtPct(r.otherCpuPercent)})`).join(', ')}; ` +
    'those figures understate the tracker: rerun on an idle machine'
  );
}

function machine() {
  const cpus = os.cpus();
  const models = [...new Set(cpus.map((c) => c.model.trim()))].join(', ');
  return {
    cpu: `${models} × ${cpus.length}`,
    memory: `${(os.totalmem() / 1024 ** 3).toFixed(1)} GiB`,
    os: `${os.type()} ${os.release()} (${os.arch()})`,
    node: process.version,
  };
}

function commandLine() {
  const args = process.argv.slice(2);
  const envs = ['BENCH_DURATION_MS', 'BENCH_WARMUP_MS', 'BENCH_CONNECTIONS', 'BENCH_PIPELINE', 'BENCH_SCENARIOS']
    .filter((k) => process.env[k] !== undefined)
    .map((k) => `${k}=${process.env[k]} `)
    .join('');
  return `${envs}npm run bench${args.length ? ` -- ${args.join(' ')}` : ''}`;
}

function docsSection(opts, results, startedAt) {
  const m = machine();
  const data = rows(results);
  const baselineResult = results.find((r) => r.scenario === 'baseline');
  return [
    MARK_START,
    '## Primary tracker: request throughput',
    '',
    '_This section is rewritten by `npm run bench` (bench/run.js); edit outside the markers._',
    '',
    `- Date: ${startedAt.toISOString()}`,
    `- Command: \`${commandLine()}\``,
    `- Machine: ${m.cpu}, ${m.memory} RAM, ${m.os}, Node ${m.node}`,
    `- Setup: a fresh \`tracker-primary\` process per scenario (own temp SQLite db, \`--scrypt-cost 1024 --rate-limit 0 --log-level warn\`,` +
      ' default `--db-synchronous FULL`, no replica configured), and the load generator (`bench/load.js`) in a second process on the same machine,' +
      ' over loopback. Both share the same cores.',
    `- Load: ${opts.connections} connections, closed loop with ${opts.pipeline} request${opts.pipeline === 1 ? '' : 's'} outstanding per connection,` +
      ` ${opts.warmupMs / 1000} s warm-up, then ${opts.durationMs / 1000} s measured. Each connection has its own session of one user.` +
      ' req/s counts `OK` answers received in the measured window; `ERR` answers are errors, never successes.' +
      ' Latency is from sending a request to receiving its answer (exact percentiles over every answer in the window).',
    `- Scenarios: \`ping\` (no session); \`list_groups\` with ${READ_GROUPS} groups existing (~${READ_GROUPS + 1}-line answer);` +
      ' `create_group b<conn>_<n>`, a unique name per request, each a durable change (committed to the change log with synchronous=FULL before the answer).',
    '- Baseline row (not the tracker): `bench/echo-server.js`, a minimal Node server that answers every frame with `OK PONG` and does nothing else,' +
      ' driven by the same load generator. It shows what this machine allows; its RSS and CPU are in the tracker columns.',
    '- Tracker peak RSS: max of VmRSS polled every 200 ms and VmHWM read at the end (/proc/&lt;pid&gt;/status).',
    '- CPU columns: share of one core used during the measured window (100% = one full core; the machine has' +
      ` ${os.cpus().length} cores = ${os.cpus().length * 100}%). "other" is everything else the machine ran meanwhile (from /proc/stat);` +
      ' if it is not near 0, the figures were taken on a busy machine and understate the tracker.',
    '',
    markdownTable(data),
    '',
    ...(busyWarning(results) ? [`**Warning:** ${busyWarning(results)}.`, ''] : []),
    'Details:',
    '',
    detailTable(results),
    '',
    'Targets (from the issue): ping ≥ 50,000 req/s, read ≥ 30,000 req/s, durable writes ≥ 20,000 req/s, on a 2-core machine where' +
      ' the load generator and the tracker share the cores. For scale, a minimal Node server does about 68,000 req/s there' +
      (baselineResult ? `; on this machine the baseline row did ${fmtInt(baselineResult.reqPerSec)} req/s.` : '.'),
    MARK_END,
  ].join('\n');
}

function writeDocs(section) {
  let text;
  try {
    text = fs.readFileSync(DOCS_FILE, 'utf8');
  } catch {
    text = [
      '# Benchmarks',
      '',
      'Measured by the scripts in `bench/`. Each script rewrites only its own section, between its markers;',
      'text outside the markers is kept.',
      '',
      '- `npm run bench` runs the primary-tracker scenarios below (about a minute). `npm run bench -- --help` lists',
      '  the options: `--duration`, `--warmup`, `--connections`, `--pipeline`, `--scenarios`, `--no-docs`.',
      '- `npm run bench -- --cpu-prof DIR --no-docs` runs each tracker under `node --cpu-prof`;',
      '  `node bench/profile-summary.js DIR/<scenario>/*.cpuprofile` lists the top functions by self and total time.',
      '',
      '',
    ].join('\n');
  }
  const a = text.indexOf(MARK_START);
  const b = text.indexOf(MARK_END);
  if (a >= 0 && b > a) text = text.slice(0, a) + section + text.slice(b + MARK_END.length);
  else text = `${text.replace(/\n*$/, '\n\n')}${section}\n`;
  fs.mkdirSync(path.dirname(DOCS_FILE), { recursive: true });
  fs.writeFileSync(DOCS_FILE, text);
}

// ---------------------------------------------------------------------------

async function main() {
  const opts = parseArgs(process.argv.slice(2), process.env);
  if (!fs.existsSync(TRACKER_BIN)) throw new Error(`missing ${TRACKER_BIN}`);
  const startedAt = new Date();
  const m = machine();
  process.stdout.write(
    `bench: ${m.cpu}, ${m.memory}, Node ${m.node}; ${opts.connections} connections, pipeline ${opts.pipeline}, ` +
      `${opts.warmupMs} ms warm-up + ${opts.durationMs} ms per scenario\n`,
  );
  const results = [];
  for (const scenario of opts.scenarios) {
    process.stdout.write(`bench: ${scenario} ...\n`);
    const r = await runScenario(opts, scenario);
    results.push(r);
    const errs = r.errors + r.unexpected + r.socketFaults;
    process.stdout.write(
      `bench: ${scenario}: ${fmtInt(r.reqPerSec)} req/s, p50 ${fmtMs(r.latencyMs.p50)} ms, p99 ${fmtMs(r.latencyMs.p99)} ms, ` +
        `errors ${errs}${errs ? ` (${describeErrors(r)}; e.g. ${r.errorSamples[0] ?? ''})` : ''}, ` +
        `tracker ${r.trackerPeakRssMb.toFixed(1)} MB peak RSS, CPU tracker ${fmtPct(r.trackerCpuPercent)} / load ${fmtPct(r.loadCpuPercent)} / other ${fmtPct(r.otherCpuPercent)}\n`,
    );
  }
  process.stdout.write(`\n${textTable(rows(results))}\n\n`);
  const busy = busyWarning(results);
  if (busy) process.stdout.write(`bench: WARNING: ${busy}\n`);
  if (opts.docs) {
    writeDocs(docsSection(opts, results, startedAt));
    process.stdout.write(`bench: wrote ${path.relative(process.cwd(), DOCS_FILE)}\n`);
  }
  if (opts.cpuProfDir) process.stdout.write(`bench: tracker CPU profiles in ${opts.cpuProfDir}\n`);
}

main().then(
  () => shutdown(0),
  (err) => {
    process.stderr.write(`bench: ${err instanceof UsageError ? err.message : (err?.stack ?? String(err))}\n`);
    void shutdown(err instanceof UsageError ? 2 : 1);
  },
);

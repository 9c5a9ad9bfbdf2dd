// `npm run bench`: throughput of the primary tracker, and replication.
//
// Primary scenarios (ping, read, write; baseline and baseline-write start a
// baseline server instead of a tracker): for each, start a fresh
// tracker-primary process (temp db, port 0), wait for its ready line, prepare
// state over a normal client connection, run bench/load.js in its own
// process, sample the tracker's memory and CPU, and stop the tracker. They
// rewrite the `bench:primary` section of docs/benchmarks.md.
//
// Replication scenarios (repl-write, baseline-repl-write, repl-lag, repl-catchup;
// bench/replication.js):
// a primary and a replica as real processes; semi-sync durable writes/s,
// replication lag at a steady write rate, and the catch-up time of a fresh
// replica. They rewrite the `bench:replication` section.
//
// Flags (or environment):
//   --duration MS|10s      measuring time per scenario   (BENCH_DURATION_MS, default 10 s)
//   --warmup MS|2s         warm-up before measuring       (BENCH_WARMUP_MS, default 2 s)
//   --connections N        client connections            (BENCH_CONNECTIONS, default 50)
//   --pipeline N           requests outstanding per connection (BENCH_PIPELINE, default 1)
//   --scenarios a,b        subset of ping,read,write,baseline,baseline-write,repl-write,
//                          baseline-repl-write,repl-lag,repl-catchup (BENCH_SCENARIOS; default all).
//                          Groups: primary = ping,read,write,baseline,baseline-write; replication =
//                          repl-write,baseline-repl-write,repl-lag,repl-catchup. The baselines are not
//                          the tracker but the least a server can do, for scale: baseline =
//                          bench/echo-server.js (answers every frame); baseline-write and
//                          baseline-repl-write = bench/durable-server.js (durable writes, alone and
//                          as a semi-sync pair, with nothing else).
//   --lag-rate N           writes/s of the repl-lag scenario (BENCH_LAG_RATE, default 5000)
//   --catchup-changes N    changes written before the repl-catchup replica starts
//                          (BENCH_CATCHUP_CHANGES, default 100000)
//   --cpu-prof DIR         run the trackers under `node --cpu-prof`, profiles into DIR/<scenario>/
//                          (replication: DIR/<scenario>/primary/ and DIR/<scenario>/replica/;
//                          summarise with: node bench/profile-summary.js DIR/<scenario>/*.cpuprofile)
//   --no-docs              do not touch docs/benchmarks.md
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { BenchClient } from './client.js';
import {
  BINS,
  DOCS_FILE,
  DURABLE_SERVER,
  DURABLE_SERVER_READY,
  ROOT,
  TRACKER_BENCH_ARGS,
  UsageError,
  alive,
  cpuMeter,
  fmtInt,
  fmtMs,
  fmtPct,
  machine,
  fakeSessions,
  makeSessions,
  makeTempDir,
  parseDuration,
  positiveInt,
  randomHex,
  removeTempDir,
  rssWatcher,
  runLoad,
  shutdown,
  startProcess,
  startTracker,
  stopChild,
  writeDocsSection,
} from './lib.js';
import { REPLICATION_SCENARIOS, replicationDocsSection, replicationSummaryLine, replicationTextTable, runReplicationScenario } from './replication.js';

const MARK_START = '<!-- bench:primary:start -->';
const MARK_END = '<!-- bench:primary:end -->';
const READ_GROUPS = 100;

// `load`: the request bench/load.js sends.
const PRIMARY_SCENARIOS = {
  ping: { label: 'ping', load: 'ping', target: 50_000 },
  read: { label: `read (list_groups, ${READ_GROUPS} groups)`, load: 'read', target: 30_000 },
  write: { label: 'durable write (create_group)', load: 'write', target: 20_000 },
  // Not the tracker, for scale: what one Node process can answer here (bench/echo-server.js)…
  baseline: { label: 'baseline: minimal Node frame server', load: 'ping', target: undefined },
  // …and how many durable writes it can answer when it does nothing else (bench/durable-server.js).
  'baseline-write': { label: 'baseline: minimal durable-write server', load: 'write', target: undefined },
};
const SCENARIOS = { ...PRIMARY_SCENARIOS, ...REPLICATION_SCENARIOS };
const GROUPS = { primary: Object.keys(PRIMARY_SCENARIOS), replication: Object.keys(REPLICATION_SCENARIOS) };
const ECHO_SERVER = path.join(ROOT, 'bench/echo-server.js');

// ---------------------------------------------------------------------------
// Options

function parseArgs(argv, env) {
  const o = {
    durationMs: parseDuration(env.BENCH_DURATION_MS ?? '10000', 'BENCH_DURATION_MS'),
    warmupMs: parseDuration(env.BENCH_WARMUP_MS ?? '2000', 'BENCH_WARMUP_MS'),
    connections: positiveInt(env.BENCH_CONNECTIONS ?? '50', 'BENCH_CONNECTIONS'),
    pipeline: positiveInt(env.BENCH_PIPELINE ?? '1', 'BENCH_PIPELINE'),
    scenarios: (env.BENCH_SCENARIOS ?? Object.keys(SCENARIOS).join(',')).split(','),
    lagRate: positiveInt(env.BENCH_LAG_RATE ?? '5000', 'BENCH_LAG_RATE'),
    catchupChanges: positiveInt(env.BENCH_CATCHUP_CHANGES ?? '100000', 'BENCH_CATCHUP_CHANGES'),
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
      case '--lag-rate': o.lagRate = positiveInt(value(), flag); break;
      case '--catchup-changes': o.catchupChanges = positiveInt(value(), flag); break;
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
  o.scenarios = [...new Set(o.scenarios.map((s) => s.trim()).filter(Boolean).flatMap((s) => GROUPS[s] ?? [s]))];
  for (const s of o.scenarios) {
    if (!SCENARIOS[s]) throw new UsageError(`unknown scenario "${s}" (${[...Object.keys(SCENARIOS), ...Object.keys(GROUPS)].join(', ')})`);
  }
  if (o.durationMs < 100) throw new UsageError('--duration must be at least 100 ms');
  return o;
}

// ---------------------------------------------------------------------------
// Tracker process

async function startPrimaryScenarioServer(opts, scenario) {
  if (scenario === 'baseline') {
    const started = await startProcess({ name: 'echo-server', argv: [ECHO_SERVER], ready: /^echo-server ready on (\S+):(\d+)$/m });
    return { ...started, dir: undefined };
  }
  if (scenario === 'baseline-write') {
    const dir = makeTempDir('bench-durable-');
    try {
      const started = await startProcess({ name: 'durable-server', argv: [DURABLE_SERVER, 'alone', path.join(dir, 'log')], ready: DURABLE_SERVER_READY });
      return { ...started, dir };
    } catch (err) {
      removeTempDir(dir);
      throw err;
    }
  }
  // The profile is written when the tracker exits (SIGTERM → graceful stop).
  return startTracker({
    role: 'primary',
    scenario,
    secret: randomHex(16),
    cpuProfDir: opts.cpuProfDir ? path.join(opts.cpuProfDir, scenario) : undefined,
  });
}

// ---------------------------------------------------------------------------
// State preparation (not measured)

async function prepare(address, scenario, connections) {
  if (scenario === 'ping' || scenario === 'baseline') return { sessions: [] };
  // It keeps no sessions: any id will do.
  if (scenario === 'baseline-write') return { sessions: fakeSessions(connections) };
  // One session per load connection (several live sessions of one user are allowed).
  const sessions = await makeSessions(address, connections);
  if (scenario === 'read') {
    const client = await BenchClient.connect(address.host, address.port);
    try {
      const session = BigInt(sessions[0]);
      for (let g = 0; g < READ_GROUPS; g++) await client.ok(`create_group g${String(g).padStart(3, '0')}`, session);
      const r = await client.ok('list_groups', session);
      if (r.response.text !== String(READ_GROUPS) || r.response.lines.length !== READ_GROUPS) {
        throw new Error(`list_groups answered "${r.text.split('\n')[0]}" with ${r.response.lines.length} lines, expected ${READ_GROUPS}`);
      }
    } finally {
      client.close();
    }
  }
  return { sessions };
}

// ---------------------------------------------------------------------------

async function runPrimaryScenario(opts, scenario) {
  const tracker = await startPrimaryScenarioServer(opts, scenario);
  const pid = tracker.child.pid;
  const rss = rssWatcher(pid);
  const cpu = cpuMeter({ tracker: pid });
  try {
    const { sessions } = await prepare(tracker.address, scenario, opts.connections);
    const result = await runLoad(
      {
        host: tracker.address.host,
        port: tracker.address.port,
        scenario: PRIMARY_SCENARIOS[scenario].load,
        connections: opts.connections,
        pipeline: opts.pipeline,
        warmupMs: opts.warmupMs,
        durationMs: opts.durationMs,
        sessions,
      },
      (phase) => cpu.mark(phase === 'measure-start' ? 'start' : 'end'),
    );
    if (!alive(tracker.child)) throw new Error(`tracker exited during the run\n${tracker.stderr()}`);
    result.scenario = scenario;
    result.trackerPeakRssMb = rss.peakMb();
    const pct = cpu.percentages(opts.durationMs / 1000);
    result.trackerCpuPercent = pct.tracker;
    // Everything else the machine did meanwhile (other processes, kernel): a busy machine skews the figures.
    result.otherCpuPercent =
      pct.machine !== undefined && pct.tracker !== undefined ? Math.max(0, pct.machine - pct.tracker - result.loadCpuPercent) : undefined;
    return result;
  } finally {
    rss.stop();
    await stopChild(tracker.child);
    if (tracker.dir) removeTempDir(tracker.dir);
  }
}

// ---------------------------------------------------------------------------
// Output

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

function commandLine() {
  const args = process.argv.slice(2);
  const envs = ['BENCH_DURATION_MS', 'BENCH_WARMUP_MS', 'BENCH_CONNECTIONS', 'BENCH_PIPELINE', 'BENCH_SCENARIOS', 'BENCH_LAG_RATE', 'BENCH_CATCHUP_CHANGES']
    .filter((k) => process.env[k] !== undefined)
    .map((k) => `${k}=${process.env[k]} `)
    .join('');
  return `${envs}npm run bench${args.length ? ` -- ${args.join(' ')}` : ''}`;
}

function docsSection(opts, results, startedAt) {
  const m = machine();
  const data = rows(results);
  const baselineResult = results.find((r) => r.scenario === 'baseline');
  const durableBaseline = results.find((r) => r.scenario === 'baseline-write');
  return [
    MARK_START,
    '## Primary tracker: request throughput',
    '',
    '_This section is rewritten by `npm run bench` (bench/run.js); edit outside the markers._',
    '',
    `- Date: ${startedAt.toISOString()}`,
    `- Command: \`${commandLine()}\``,
    `- Machine: ${m.cpu}, ${m.memory} RAM, ${m.os}, Node ${m.node}`,
    `- Setup: a fresh \`tracker-primary\` process per scenario (own temp SQLite db, \`${TRACKER_BENCH_ARGS.join(' ')}\`,` +
      ' default `--db-synchronous FULL`, no replica configured), and the load generator (`bench/load.js`) in a second process on the same machine,' +
      ' over loopback. Both share the same cores.',
    `- Load: ${opts.connections} connections, closed loop with ${opts.pipeline} request${opts.pipeline === 1 ? '' : 's'} outstanding per connection,` +
      ` ${opts.warmupMs / 1000} s warm-up, then ${opts.durationMs / 1000} s measured. Each connection has its own session of one user.` +
      ' req/s counts `OK` answers received in the measured window; `ERR` answers are errors, never successes.' +
      ' Latency is from sending a request to receiving its answer (exact percentiles over every answer in the window).',
    `- Scenarios: \`ping\` (no session); \`list_groups\` with ${READ_GROUPS} groups existing (~${READ_GROUPS + 1}-line answer);` +
      ' `create_group b<conn>_<n>`, a unique name per request, each a durable change (committed to the change log with synchronous=FULL before the answer).',
    '- Baseline rows (not the tracker), driven by the same load generator; their RSS and CPU are in the tracker columns.' +
      ' `bench/echo-server.js`: a minimal Node server that answers every frame with `OK PONG` and does nothing else.' +
      ' `bench/durable-server.js alone`: a minimal durable-write server, the `write` scenario\'s load; per request one `Map` insert and one JSON line' +
      ' written to a file (zeroed ahead of the writes, so that a sync flushes data only), the lines of one event-loop turn written together and' +
      ' answered after an `fdatasync` (on the thread pool, one at a time,' +
      ' shared by the batches written meanwhile, as the tracker\'s log does), and nothing else: no sessions, no validation, no SQLite, no hash.' +
      ' They show what this machine allows: the tracker cannot beat them.',
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
      (baselineResult ? `; on this machine the baseline row did ${fmtInt(baselineResult.reqPerSec)} req/s` : '') +
      (durableBaseline ? `, and the minimal durable-write server ${fmtInt(durableBaseline.reqPerSec)} writes/s.` : '.'),
    MARK_END,
  ].join('\n');
}

// ---------------------------------------------------------------------------

async function main() {
  const opts = parseArgs(process.argv.slice(2), process.env);
  for (const bin of Object.values(BINS)) if (!fs.existsSync(bin)) throw new Error(`missing ${bin}`);
  const startedAt = new Date();
  const m = machine();
  process.stdout.write(
    `bench: ${m.cpu}, ${m.memory}, Node ${m.node}; ${opts.connections} connections, pipeline ${opts.pipeline}, ` +
      `${opts.warmupMs} ms warm-up + ${opts.durationMs} ms per scenario; scenarios ${opts.scenarios.join(',')}\n`,
  );
  const results = [];
  const replResults = [];
  for (const scenario of opts.scenarios) {
    process.stdout.write(`bench: ${scenario} ...\n`);
    if (REPLICATION_SCENARIOS[scenario]) {
      const r = await runReplicationScenario(opts, scenario);
      replResults.push(r);
      process.stdout.write(`bench: ${scenario}: ${replicationSummaryLine(r)}\n`);
      continue;
    }
    const r = await runPrimaryScenario(opts, scenario);
    results.push(r);
    const errs = r.errors + r.unexpected + r.socketFaults;
    process.stdout.write(
      `bench: ${scenario}: ${fmtInt(r.reqPerSec)} req/s, p50 ${fmtMs(r.latencyMs.p50)} ms, p99 ${fmtMs(r.latencyMs.p99)} ms, ` +
        `errors ${errs}${errs ? ` (${describeErrors(r)}; e.g. ${r.errorSamples[0] ?? ''})` : ''}, ` +
        `tracker ${r.trackerPeakRssMb.toFixed(1)} MB peak RSS, CPU tracker ${fmtPct(r.trackerCpuPercent)} / load ${fmtPct(r.loadCpuPercent)} / other ${fmtPct(r.otherCpuPercent)}\n`,
    );
  }
  if (results.length > 0) process.stdout.write(`\n${textTable(rows(results))}\n\n`);
  if (replResults.length > 0) process.stdout.write(`\n${replicationTextTable(replResults)}\n\n`);
  const busy = busyWarning(results);
  if (busy) process.stdout.write(`bench: WARNING: ${busy}\n`);
  if (opts.docs) {
    // Each group rewrites only its own section, and only when it ran.
    if (results.length > 0) writeDocsSection(MARK_START, MARK_END, docsSection(opts, results, startedAt));
    if (replResults.length > 0) replicationDocsSection(opts, replResults, startedAt, commandLine(), results);
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

// Replication scenarios of `npm run bench` (run by bench/run.js; select them
// with `--scenarios replication` or by name):
//
//   repl-write    semi-sync durable writes/s: a primary and a replica, the same
//                 closed-loop create_group load as the `write` scenario
//                 (bench/load.js); the orchestrator polls the primary's status
//                 every 200 ms for degraded=1, and checks at the end that both
//                 trackers have the same seq and log_hash.
//   baseline-repl-write
//                 not the trackers: bench/durable-server.js as a semi-sync pair
//                 (a primary that answers each batch once its own fdatasync and
//                 its replica's do), the same load; what this machine allows.
//   repl-lag      replication lag at a steady write rate: the primary in
//                 --sync-mode async, an open-loop paced writer and a status
//                 probe (bench/repl-worker.js), each in its own process.
//   repl-catchup  catch-up time: a primary alone takes N changes, then a fresh
//                 replica starts; time from its ready line until its seq equals
//                 the primary's.
//
// Each scenario starts its own trackers (fresh temp dbs) and stops them, and
// every child process, on every exit path (see bench/lib.js).
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { BenchClient } from './client.js';
import {
  DURABLE_SERVER,
  DURABLE_SERVER_READY,
  ROOT,
  TRACKER_BENCH_ARGS,
  alive,
  fakeSessions,
  makeTempDir,
  removeTempDir,
  startProcess,
  stopChild,
  cpuMeter,
  fmtInt,
  fmtMs,
  fmtPct,
  forkWorker,
  machine,
  makeSessions,
  randomHex,
  readDocsSection,
  rssWatcher,
  runLoad,
  sleep,
  startTracker,
  status,
  stopTracker,
  waitForStatus,
  writeDocsSection,
} from './lib.js';

const WORKER = path.join(ROOT, 'bench/repl-worker.js');
const MARK_START = '<!-- bench:replication:start -->';
const MARK_END = '<!-- bench:replication:end -->';
/** Hand-written notes below this marker (inside the section) are kept when the section is rewritten. */
const MARK_NOTES = '<!-- bench:replication:notes (kept when the section is rewritten) -->';

const TARGET_WRITES = 10_000;
const TARGET_LAG_P99_MS = 20;
const TARGET_CATCHUP_S = 10;
const DEGRADED_POLL_MS = 200;
const LAG_WRITER_CONNECTIONS = 10;
const LAG_PROBE_INTERVAL_MS = 1;
const FILL_CONNECTIONS = 8;
const FILL_WINDOW = 256;
const CATCHUP_POLL_MS = 20;
const CATCHUP_TIMEOUT_MS = 120_000;
const CONVERGE_TIMEOUT_MS = 15_000;
/** The primary's log line when semi-sync is suspended (tracker-core sync/primary-link.ts). */
const DEGRADED_LOG = /degraded: answering writes without the replica/;

export const REPLICATION_SCENARIOS = {
  'repl-write': { label: 'semi-sync durable write (create_group)' },
  'baseline-repl-write': { label: 'baseline: minimal semi-sync pair' },
  'repl-lag': { label: 'replication lag at a steady write rate' },
  'repl-catchup': { label: 'catch-up of a fresh replica' },
};

// ---------------------------------------------------------------------------
// Trackers

function profDir(opts, scenario, role) {
  return opts.cpuProfDir ? path.join(opts.cpuProfDir, scenario, role) : undefined;
}

async function startPrimary(opts, scenario, secret, args = []) {
  const degradedLines = [];
  const primary = await startTracker({
    role: 'primary',
    scenario,
    secret,
    args,
    cpuProfDir: profDir(opts, scenario, 'primary'),
    onStderrLine: (line) => {
      if (DEGRADED_LOG.test(line)) degradedLines.push({ at: performance.now(), line });
    },
  });
  primary.degradedLines = degradedLines;
  return primary;
}

function startReplica(opts, scenario, secret, primary) {
  return startTracker({
    role: 'replica',
    scenario,
    secret,
    args: ['--primary', `${primary.address.host}:${primary.address.port}`],
    cpuProfDir: profDir(opts, scenario, 'replica'),
  });
}

function checkAlive(...trackers) {
  for (const t of trackers) if (t && !alive(t.child)) throw new Error(`a tracker exited during the run\n${t.stderr()}`);
}

/**
 * Polls both trackers' status every 20 ms until seq and log_hash agree, the
 * replica is connected and the primary has its acknowledgement of that seq.
 * Never throws on a timeout: the result says whether they converged.
 */
async function converge(primary, replica, timeoutMs = CONVERGE_TIMEOUT_MS) {
  const pc = await BenchClient.connect(primary.address.host, primary.address.port);
  const rc = await BenchClient.connect(replica.address.host, replica.address.port);
  const t0 = performance.now();
  let p;
  let r;
  try {
    for (;;) {
      [p, r] = await Promise.all([status(pc), status(rc)]);
      const agreed = p.seq === r.seq && p.log_hash === r.log_hash && r.primary === 'connected' && p.replica_seq === p.seq;
      if (agreed) return { ok: true, ms: performance.now() - t0, seq: Number(p.seq), logHash: p.log_hash };
      if (performance.now() - t0 > timeoutMs) return { ok: false, ms: performance.now() - t0, primary: p, replica: r };
      await sleep(20);
    }
  } finally {
    pc.close();
    rc.close();
  }
}

/** Polls the primary's status every `intervalMs` (one request at a time) and counts what it saw. */
async function degradedPoller(address, intervalMs) {
  const client = await BenchClient.connect(address.host, address.port);
  const stats = { polls: 0, degraded: 0, disconnected: 0, maxReplicaLag: 0, skipped: 0, failed: 0, maxAnswerMs: 0 };
  let inflight;
  const timer = setInterval(() => {
    if (inflight) {
      stats.skipped++;
      return;
    }
    const t0 = performance.now();
    inflight = status(client)
      .then((s) => {
        stats.polls++;
        stats.maxAnswerMs = Math.max(stats.maxAnswerMs, performance.now() - t0);
        if (s.degraded !== '0') stats.degraded++;
        if (s.replica !== 'connected') stats.disconnected++;
        stats.maxReplicaLag = Math.max(stats.maxReplicaLag, Number(s.replica_lag ?? 0));
      })
      .catch(() => {
        stats.failed++;
      })
      .finally(() => {
        inflight = undefined;
      });
  }, intervalMs);
  return {
    async stop() {
      clearInterval(timer);
      await inflight;
      client.close();
      return stats;
    },
  };
}

/**
 * CPU shares (100% = one core) over the meter's window, plus `extra` shares
 * measured elsewhere; `other` is what the rest of the machine used.
 */
function cpuShares(meter, seconds, extra = {}) {
  const pct = { ...(meter ? meter.percentages(seconds) : {}), ...extra };
  const parts = Object.entries(pct)
    .filter(([k]) => k !== 'machine')
    .map(([, v]) => v);
  pct.other = pct.machine !== undefined && parts.every((v) => v !== undefined) ? Math.max(0, pct.machine - parts.reduce((a, b) => a + b, 0)) : undefined;
  return pct;
}

/**
 * The `write` scenario's closed-loop load against `primary` (bench/load.js),
 * with `cpu`: the shares of both processes and of the load generator over
 * the measured window.
 */
async function writeLoad(opts, primary, replica, sessions) {
  let cpu;
  const result = await runLoad(
    {
      host: primary.address.host,
      port: primary.address.port,
      scenario: 'write',
      connections: opts.connections,
      pipeline: opts.pipeline,
      warmupMs: opts.warmupMs,
      durationMs: opts.durationMs,
      sessions,
    },
    (phase) => {
      if (phase === 'measure-start') {
        cpu = cpuMeter({ primary: primary.child.pid, replica: replica.child.pid });
        cpu.mark('start');
      } else cpu?.mark('end');
    },
  );
  result.cpu = cpuShares(cpu, opts.durationMs / 1000, { load: result.loadCpuPercent });
  return result;
}

// ---------------------------------------------------------------------------
// repl-write: semi-sync durable writes/s

async function runReplWrite(opts, scenario) {
  const secret = randomHex(16);
  let primary;
  let replica;
  const watchers = [];
  try {
    primary = await startPrimary(opts, scenario, secret);
    replica = await startReplica(opts, scenario, secret, primary);
    const semiSync = (s) => s.replica === 'connected' && s.degraded === '0' && s;
    await waitForStatus(primary.address, semiSync, { timeoutMs: 10_000, what: 'semi-sync (replica=connected degraded=0)' });
    const sessions = await makeSessions(primary.address, opts.connections);
    await waitForStatus(primary.address, semiSync, { timeoutMs: 10_000, what: 'semi-sync after preparing sessions' });

    const primaryRss = rssWatcher(primary.child.pid);
    const replicaRss = rssWatcher(replica.child.pid);
    watchers.push(primaryRss, replicaRss);
    const degradedLogBefore = primary.degradedLines.length;
    const poller = await degradedPoller(primary.address, DEGRADED_POLL_MS);
    const result = await writeLoad(opts, primary, replica, sessions);
    const polls = await poller.stop();
    checkAlive(primary, replica);
    result.scenario = scenario;
    result.rssMb = { primary: primaryRss.peakMb(), replica: replicaRss.peakMb() };
    result.degradedPolls = polls;
    result.degradedLogLines = primary.degradedLines.length - degradedLogBefore;
    result.degradedSample = primary.degradedLines[degradedLogBefore]?.line.slice(0, 300);
    result.convergence = await converge(primary, replica);
    result.errorsTotal = result.errors + result.unexpected + result.socketFaults;
    result.met =
      result.reqPerSec >= TARGET_WRITES && result.errorsTotal === 0 && polls.degraded === 0 && result.degradedLogLines === 0 && result.convergence.ok;
    return result;
  } finally {
    for (const w of watchers) w.stop();
    await Promise.all([stopTracker(replica), stopTracker(primary)]);
  }
}

// ---------------------------------------------------------------------------
// baseline-repl-write: the same load against bench/durable-server.js as a pair

async function runBaselineReplWrite(opts, scenario) {
  const dir = makeTempDir('bench-durable-pair-');
  let replica;
  let primary;
  try {
    replica = await startProcess({ name: 'durable-server replica', argv: [DURABLE_SERVER, 'replica', path.join(dir, 'replica')], ready: DURABLE_SERVER_READY });
    const at = `${replica.address.host}:${replica.address.port}`;
    primary = await startProcess({ name: 'durable-server primary', argv: [DURABLE_SERVER, 'primary', path.join(dir, 'primary'), at], ready: DURABLE_SERVER_READY });
    // It keeps no sessions: any id will do.
    const result = await writeLoad(opts, primary, replica, fakeSessions(opts.connections));
    checkAlive(primary, replica);
    result.scenario = scenario;
    result.errorsTotal = result.errors + result.unexpected + result.socketFaults;
    return result;
  } finally {
    await Promise.all([primary && stopChild(primary.child), replica && stopChild(replica.child)]);
    removeTempDir(dir);
  }
}

// ---------------------------------------------------------------------------
// repl-lag: lag at a steady write rate

async function runReplLag(opts, scenario) {
  const secret = randomHex(16);
  let primary;
  let replica;
  const watchers = [];
  try {
    primary = await startPrimary(opts, scenario, secret, ['--sync-mode', 'async']);
    replica = await startReplica(opts, scenario, secret, primary);
    await waitForStatus(primary.address, (s) => s.replica === 'connected' && s, { timeoutMs: 10_000, what: 'replica=connected' });
    const sessions = await makeSessions(primary.address, LAG_WRITER_CONNECTIONS);
    const before = await converge(primary, replica);
    if (!before.ok) throw new Error(`the replica did not catch up before the run: ${JSON.stringify(before)}`);

    const primaryRss = rssWatcher(primary.child.pid);
    const replicaRss = rssWatcher(replica.child.pid);
    watchers.push(primaryRss, replicaRss);
    let cpu;
    const budget = opts.warmupMs + opts.durationMs + 60_000;

    const ready = (name) => {
      let resolve;
      const p = new Promise((r) => {
        resolve = r;
      });
      return { name, p, resolve };
    };
    const probeReady = ready('probe');
    const writerReady = ready('writer');
    const probe = forkWorker(
      WORKER,
      { mode: 'probe', primary: primary.address, replica: replica.address, intervalMs: LAG_PROBE_INTERVAL_MS },
      { onMessage: (m) => m?.type === 'ready' && probeReady.resolve(m), timeoutMs: budget + 30_000 },
    );
    const writer = forkWorker(
      WORKER,
      {
        mode: 'paced',
        host: primary.address.host,
        port: primary.address.port,
        sessions,
        connections: LAG_WRITER_CONNECTIONS,
        rate: opts.lagRate,
        warmupMs: opts.warmupMs,
        durationMs: opts.durationMs,
      },
      {
        onMessage: (m) => {
          if (m?.type === 'ready') writerReady.resolve(m);
          if (m?.type !== 'phase') return;
          if (m.phase === 'measure-start') {
            cpu = cpuMeter({ primary: primary.child.pid, replica: replica.child.pid, load: writer.child.pid, probe: probe.child.pid });
            cpu.mark('start');
            probe.child.send({ type: 'mark', phase: 'start' });
          } else {
            cpu?.mark('end');
            probe.child.send({ type: 'mark', phase: 'end' });
          }
        },
        timeoutMs: budget,
      },
    );
    // Awaited below; a worker that fails meanwhile must not be an unhandled rejection.
    probe.done.catch(() => undefined);
    writer.done.catch(() => undefined);
    // A worker that fails before it is ready must not leave us waiting.
    await Promise.race([Promise.all([probeReady.p, writerReady.p]), probe.done, writer.done]);
    probe.child.send({ type: 'go' });
    writer.child.send({ type: 'go' });
    const writes = await writer.done;
    probe.child.send({ type: 'finish' });
    const lag = await probe.done;
    checkAlive(primary, replica);
    const result = { scenario, rate: opts.lagRate, writes, lag };
    result.cpu = cpuShares(cpu, opts.durationMs / 1000);
    result.rssMb = { primary: primaryRss.peakMb(), replica: replicaRss.peakMb() };
    result.convergence = await converge(primary, replica);
    result.errorsTotal = writes.errors + writes.unexpected + writes.socketFaults;
    result.rateOk = writes.okPerSec >= 0.95 * opts.lagRate;
    result.met = lag.lagMs.p99 !== undefined && lag.lagMs.p99 < TARGET_LAG_P99_MS && lag.missing === 0 && result.rateOk && result.errorsTotal === 0 && result.convergence.ok;
    return result;
  } finally {
    for (const w of watchers) w.stop();
    await Promise.all([stopTracker(replica), stopTracker(primary)]);
  }
}

// ---------------------------------------------------------------------------
// repl-catchup: a fresh replica catching up with N changes

async function runReplCatchup(opts, scenario) {
  const secret = randomHex(16);
  let primary;
  let replica;
  const watchers = [];
  try {
    primary = await startPrimary(opts, scenario, secret);
    const sessions = await makeSessions(primary.address, FILL_CONNECTIONS);
    const fill = await forkWorker(
      WORKER,
      { mode: 'fill', host: primary.address.host, port: primary.address.port, sessions, connections: FILL_CONNECTIONS, total: opts.catchupChanges, window: FILL_WINDOW },
      { timeoutMs: 300_000 },
    ).done;
    if (fill.ok !== opts.catchupChanges) throw new Error(`filling the primary: ${fill.ok} of ${opts.catchupChanges} writes succeeded (${JSON.stringify(fill.errorCodes)}; ${fill.errorSamples[0] ?? ''})`);
    const pc = await BenchClient.connect(primary.address.host, primary.address.port);
    let target;
    try {
      target = await status(pc);
    } finally {
      pc.close();
    }
    const targetSeq = Number(target.seq);

    const spawnedAt = performance.now();
    replica = await startReplica(opts, scenario, secret, primary);
    const readyAt = replica.readyAt;
    const primaryRss = rssWatcher(primary.child.pid);
    const replicaRss = rssWatcher(replica.child.pid);
    watchers.push(primaryRss, replicaRss);
    const cpu = cpuMeter({ primary: primary.child.pid, replica: replica.child.pid });
    cpu.mark('start');
    const rc = await BenchClient.connect(replica.address.host, replica.address.port);
    let caughtUp;
    let last;
    let timedOut = false;
    let polls = 0;
    try {
      for (;;) {
        last = await status(rc);
        polls++;
        if (Number(last.seq) >= targetSeq) {
          caughtUp = performance.now();
          break;
        }
        if (performance.now() - readyAt > CATCHUP_TIMEOUT_MS) {
          timedOut = true;
          break;
        }
        await sleep(CATCHUP_POLL_MS);
      }
    } finally {
      rc.close();
    }
    cpu.mark('end');
    checkAlive(primary, replica);
    const seconds = ((caughtUp ?? performance.now()) - readyAt) / 1000;
    const pct = cpuShares(cpu, seconds);
    const result = {
      scenario,
      fill,
      changes: targetSeq,
      seconds: timedOut ? undefined : seconds,
      secondsFromSpawn: timedOut ? undefined : ((caughtUp ?? performance.now()) - spawnedAt) / 1000,
      startupSeconds: (readyAt - spawnedAt) / 1000,
      changesPerSec: timedOut ? undefined : targetSeq / seconds,
      timedOut,
      lastReplicaSeq: Number(last?.seq ?? 0),
      hashMatch: last?.log_hash === target.log_hash,
      polls,
      cpu: pct,
      rssMb: { primary: primaryRss.peakMb(), replica: replicaRss.peakMb() },
    };
    result.convergence = await converge(primary, replica);
    result.met = !timedOut && seconds < TARGET_CATCHUP_S && result.hashMatch && result.convergence.ok;
    return result;
  } finally {
    for (const w of watchers) w.stop();
    await Promise.all([stopTracker(replica), stopTracker(primary)]);
  }
}

// ---------------------------------------------------------------------------

export async function runReplicationScenario(opts, scenario) {
  switch (scenario) {
    case 'repl-write':
      return runReplWrite(opts, scenario);
    case 'baseline-repl-write':
      return runBaselineReplWrite(opts, scenario);
    case 'repl-lag':
      return runReplLag(opts, scenario);
    case 'repl-catchup':
      return runReplCatchup(opts, scenario);
    default:
      throw new Error(`unknown replication scenario ${scenario}`);
  }
}

// ---------------------------------------------------------------------------
// Output

const yesNo = (b) => (b ? 'yes' : 'no');
const short = (hash) => (hash ? `${hash.slice(0, 12)}…` : '-');

function describeErrorCodes(codes = {}, extra = {}) {
  const parts = Object.entries(codes).map(([code, n]) => `${code} ${n}`);
  for (const [k, n] of Object.entries(extra)) if (n) parts.push(`${k} ${n}`);
  return parts.join(', ');
}

function convergenceText(c) {
  if (!c) return '-';
  if (c.ok) return `converged ${fmtInt(c.ms)} ms after the run at seq ${fmtInt(c.seq)} (log_hash ${short(c.logHash)}, acknowledged)`;
  return (
    `did NOT converge within ${fmtInt(c.ms)} ms: primary seq ${c.primary?.seq} log_hash ${short(c.primary?.log_hash)} replica_seq ${c.primary?.replica_seq}, ` +
    `replica seq ${c.replica?.seq} log_hash ${short(c.replica?.log_hash)} primary=${c.replica?.primary}`
  );
}

/** One summary row per scenario: { scenario, result, target, met }. */
function summaryRows(results) {
  return results.map((r) => {
    switch (r.scenario) {
      case 'repl-write':
        return {
          scenario: `semi-sync durable writes (create_group, ${r.connections} connections)`,
          result: `${fmtInt(r.reqPerSec)} writes/s (p50 ${fmtMs(r.latencyMs.p50)} ms, p99 ${fmtMs(r.latencyMs.p99)} ms); degraded in ${r.degradedPolls.degraded} of ${r.degradedPolls.polls} polls; ${r.errorsTotal} errors; ${r.convergence.ok ? 'converged' : 'NOT converged'}`,
          target: `≥ ${fmtInt(TARGET_WRITES)} writes/s`,
          met: yesNo(r.met),
        };
      case 'baseline-repl-write':
        return {
          scenario: `baseline, not the trackers: minimal semi-sync pair (same load)`,
          result: `${fmtInt(r.reqPerSec)} writes/s (p50 ${fmtMs(r.latencyMs.p50)} ms, p99 ${fmtMs(r.latencyMs.p99)} ms); ${r.errorsTotal} errors`,
          target: '-',
          met: '-',
        };
      case 'repl-lag':
        return {
          scenario: `replication lag at ${fmtInt(r.rate)} writes/s (async)`,
          result: `p50 ${fmtMs(r.lag.lagMs.p50)} ms, p99 ${fmtMs(r.lag.lagMs.p99)} ms at ${fmtInt(r.writes.okPerSec)} writes/s achieved`,
          target: `p99 < ${TARGET_LAG_P99_MS} ms`,
          met: yesNo(r.met),
        };
      case 'repl-catchup':
        return {
          scenario: `catch-up of ${fmtInt(r.changes)} changes by a fresh replica`,
          result: r.timedOut
            ? `not caught up within ${CATCHUP_TIMEOUT_MS / 1000} s (seq ${fmtInt(r.lastReplicaSeq)})`
            : `${r.seconds.toFixed(2)} s (${fmtInt(r.changesPerSec)} changes/s); log_hash ${r.hashMatch ? 'equal' : 'DIFFERENT'}`,
          target: `< ${TARGET_CATCHUP_S} s`,
          met: yesNo(r.met),
        };
      default:
        return { scenario: r.scenario, result: '?', target: '-', met: '-' };
    }
  });
}

export function replicationSummaryLine(r) {
  const row = summaryRows([r])[0];
  return `${row.result} [target ${row.target}: ${row.met}]`;
}

export function replicationTextTable(results) {
  const data = summaryRows(results);
  const cols = ['scenario', 'result', 'target', 'met'];
  const widths = cols.map((k) => Math.max(k.length, ...data.map((d) => String(d[k]).length)));
  const line = (cells) => cells.map((c, i) => String(c).padEnd(widths[i])).join('  ').trimEnd();
  return [line(cols), widths.map((w) => '-'.repeat(w)).join('  '), ...data.map((d) => line(cols.map((k) => d[k])))].join('\n');
}

function cpuText(cpu, names) {
  return names
    .filter(([k]) => cpu?.[k] !== undefined)
    .map(([k, label]) => `${label} ${fmtPct(cpu[k])}`)
    .join(', ');
}

function writeDetails(r, primaryWrite) {
  const l = r.latencyMs;
  const p = r.degradedPolls;
  return [
    '### `repl-write`: semi-sync durable writes',
    '',
    '- Method: a primary (default `--sync-mode semi-sync`, `--sync-timeout-ms 1000`) and a replica; the run starts once the primary\'s `status` shows' +
      ' `replica=connected degraded=0`. Then the `write` scenario\'s load: ' +
      `${r.connections} connections, closed loop, ${r.pipeline} request${r.pipeline === 1 ? '' : 's'} outstanding each, \`create_group b<conn>_<n>\`,` +
      ` ${r.warmupMs / 1000} s warm-up, ${r.durationMs / 1000} s measured (bench/load.js). Every answer waits for the replica's \`SYNC:ACK\` of its batch.`,
    `- Throughput: **${fmtInt(r.reqPerSec)} writes/s** (${fmtInt(r.ok)} \`OK\` answers in the window); latency p50 ${fmtMs(l.p50)} ms, p90 ${fmtMs(l.p90)} ms,` +
      ` p99 ${fmtMs(l.p99)} ms, p99.9 ${fmtMs(l.p999)} ms, max ${fmtMs(l.max)} ms; errors ${r.errorsTotal}` +
      (r.errorsTotal ? ` (${describeErrorCodes(r.errorCodes, { unexpected: r.unexpected, 'lost connections': r.socketFaults })})` : '') +
      (primaryWrite ? `. For comparison, the primary alone (\`write\` row above, same run): ${fmtInt(primaryWrite.reqPerSec)} writes/s.` : '.'),
    `- Semi-sync held: the orchestrator polled the primary's \`status\` every ${DEGRADED_POLL_MS} ms from the start of the warm-up to the end of the load` +
      ` (${p.polls} polls${p.skipped ? `, ${p.skipped} ticks skipped while an answer was pending` : ''}${p.failed ? `, ${p.failed} failed` : ''}):` +
      ` **degraded=1 in ${p.degraded}**, replica=disconnected in ${p.disconnected}; largest \`replica_lag\` seen ${fmtInt(p.maxReplicaLag)} changes;` +
      ` slowest status answer ${fmtMs(p.maxAnswerMs)} ms. The primary logged "degraded" ${r.degradedLogLines} time${r.degradedLogLines === 1 ? '' : 's'}` +
      (r.degradedSample ? ` (first: \`${r.degradedSample.replace(/`/g, "'")}\`)` : '') +
      '.',
    `- After the run: ${convergenceText(r.convergence)}.`,
    `- CPU during the window (100% = one core): ${cpuText(r.cpu, [['primary', 'primary'], ['replica', 'replica'], ['load', 'load generator'], ['other', 'other']])};` +
      ` peak RSS primary ${r.rssMb.primary.toFixed(1)} MB, replica ${r.rssMb.replica.toFixed(1)} MB.`,
  ];
}

function baselinePairDetails(r) {
  const l = r.latencyMs;
  return [
    '### `baseline-repl-write`: the least a semi-sync pair can do here',
    '',
    '- Not the trackers: `bench/durable-server.js` as a primary and a replica process, driven by the `repl-write` load' +
      ` (${r.connections} connections, closed loop, \`create_group b<conn>_<n>\`). Per request the primary does one \`Map\` insert and appends one` +
      ' JSON line to a file (zeroed ahead of the writes); the lines of one event-loop turn are written together and sent to the replica at once, and answered when the' +
      ' primary\'s own `fdatasync` and the replica\'s acknowledgement (after its append and `fdatasync`) both cover them. No sessions, no' +
      ' validation, no SQLite, no hash, no authentication: what this machine\'s disk, loopback and two cores allow any semi-sync pair.',
    `- Throughput: **${fmtInt(r.reqPerSec)} writes/s**; latency p50 ${fmtMs(l.p50)} ms, p90 ${fmtMs(l.p90)} ms, p99 ${fmtMs(l.p99)} ms, max ${fmtMs(l.max)} ms;` +
      ` errors ${r.errorsTotal}.`,
    `- CPU during the window: ${cpuText(r.cpu, [['primary', 'primary'], ['replica', 'replica'], ['load', 'load generator'], ['other', 'other']])}.`,
  ];
}

function lagDetails(r) {
  const w = r.writes;
  const g = r.lag;
  return [
    '### `repl-lag`: replication lag',
    '',
    `- Load: the primary in \`--sync-mode async\` (answers after its own commit, so they do not wait for the replica), and an open-loop writer` +
      ` (bench/repl-worker.js, own process): ${w.connections} connections, each sending \`create_group\` on a fixed schedule of` +
      ` ${fmtInt(w.rate / w.connections)}/s (${fmtInt(w.rate)}/s in all), phases spread evenly; the requests that fall due in one 1 ms timer tick go out in` +
      ` one write (pipelined); the schedule does not wait for answers. ${r.lag.windowMs ? `${(r.lag.windowMs / 1000).toFixed(1)} s` : '-'} measured after a warm-up.`,
    `- Method: a probe process (bench/repl-worker.js) sends \`status\` to the primary and to the replica every ${LAG_PROBE_INTERVAL_MS} ms (one request` +
      ' outstanding per tracker; a tick is skipped while its answer is pending). t_P(s) is the arrival time of the first primary answer showing `seq` ≥ s,' +
      ' t_R(s) the same on the replica, both on the probe\'s one clock; the lag of change s is t_R(s) − t_P(s), over every s that reached the primary' +
      ' inside the writer\'s measured window. A `status` answer is sent only once the state it reports is committed (answers wait for the commit of' +
      ' anything they could have seen), so t_P is "committed and answerable on the primary" and t_R "committed and readable on the replica".',
    `- Resolution: each t_X(s) is late by at most the gap between two answers of that tracker — median ${fmtMs(g.primary.gapMs.p50)} ms / p99` +
      ` ${fmtMs(g.primary.gapMs.p99)} ms on the primary, ${fmtMs(g.replica.gapMs.p50)} ms / ${fmtMs(g.replica.gapMs.p99)} ms on the replica` +
      ` (status round trips p50 ${fmtMs(g.primary.rttMs.p50)} / ${fmtMs(g.replica.rttMs.p50)} ms, p99 ${fmtMs(g.primary.rttMs.p99)} / ${fmtMs(g.replica.rttMs.p99)} ms)` +
      ` — so a single lag is known to about ±1 gap; ${fmtInt(g.negative)} of ${fmtInt(g.seqs)} came out negative for that reason.` +
      ' Many changes share one sample (the primary commits in batches), so the percentiles are over changes, not over polls.',
    `- Lag: **p50 ${fmtMs(g.lagMs.p50)} ms, p99 ${fmtMs(g.lagMs.p99)} ms** (p90 ${fmtMs(g.lagMs.p90)}, p99.9 ${fmtMs(g.lagMs.p999)}, max ${fmtMs(g.lagMs.max)} ms)` +
      ` over ${fmtInt(g.seqs)} changes (seq ${fmtInt(g.firstSeq)}–${fmtInt(g.lastSeq)})${g.missing ? `; **${fmtInt(g.missing)} never seen on the replica**` : ''}.` +
      ` The primary's \`replica_lag\` (committed − acknowledged, in changes) at the probe's polls: p50 ${fmtInt(g.primary.replicaLagChanges.p50)},` +
      ` p99 ${fmtInt(g.primary.replicaLagChanges.p99)}, max ${fmtInt(g.primary.replicaLagChanges.max)}.`,
    `- Writes: **${fmtInt(w.okPerSec)}/s achieved** (${fmtInt(w.sentPerSec)}/s sent in the window${w.skipped ? `, ${fmtInt(w.skipped)} not sent: more than 1000 outstanding on a connection` : ''});` +
      ` answer latency p50 ${fmtMs(w.latencyMs.p50)} ms, p99 ${fmtMs(w.latencyMs.p99)} ms; sending was behind schedule by p99 ${fmtMs(w.slipMs.p99)} ms, max ${fmtMs(w.slipMs.max)} ms` +
      ` (timer jitter); errors ${r.errorsTotal}${r.errorsTotal ? ` (${describeErrorCodes(w.errorCodes, { unexpected: w.unexpected, 'lost connections': w.socketFaults })})` : ''}.` +
      ` The probe's own status traffic: ${fmtInt(g.primary.polls / (g.windowMs / 1000))} + ${fmtInt(g.replica.polls / (g.windowMs / 1000))} requests/s.`,
    `- After the run: ${convergenceText(r.convergence)}.`,
    `- CPU during the window: ${cpuText(r.cpu, [['primary', 'primary'], ['replica', 'replica'], ['load', 'writer'], ['probe', 'probe'], ['other', 'other']])};` +
      ` peak RSS primary ${r.rssMb.primary.toFixed(1)} MB, replica ${r.rssMb.replica.toFixed(1)} MB.`,
  ];
}

function catchupDetails(r) {
  const f = r.fill;
  return [
    '### `repl-catchup`: catch-up of a fresh replica',
    '',
    `- Method: a primary alone (no replica: it answers after its own commit) takes ${fmtInt(f.total)} \`create_group\`s from ${FILL_CONNECTIONS} connections with` +
      ` ${FILL_WINDOW} requests outstanding each (plus the user and ${FILL_CONNECTIONS} logins: seq ${fmtInt(r.changes)} in all) —` +
      ` ${f.seconds.toFixed(2)} s, ${fmtInt(f.perSec)} writes/s${f.errors ? `, ${f.errors} errors` : ''}. Then a replica with an empty db starts;` +
      ` the orchestrator polls its \`status\` every ${CATCHUP_POLL_MS} ms (one at a time) from its ready line until its \`seq\` equals the primary's.` +
      ' The replica\'s answer is sent only after that seq is committed in its own log.',
    r.timedOut
      ? `- Catch-up: **not done within ${CATCHUP_TIMEOUT_MS / 1000} s**; the replica was at seq ${fmtInt(r.lastReplicaSeq)}.`
      : `- Catch-up: **${r.seconds.toFixed(2)} s from the ready line, ${fmtInt(r.changesPerSec)} changes/s** (${r.secondsFromSpawn.toFixed(2)} s from spawning` +
        ` the process, of which ${r.startupSeconds.toFixed(2)} s start-up; ${r.polls} polls). \`log_hash\` at that seq ${r.hashMatch ? 'equal to' : '**different from**'} the primary's.`,
    `- After: ${convergenceText(r.convergence)}.`,
    `- CPU from the ready line to caught up: ${cpuText(r.cpu, [['primary', 'primary'], ['replica', 'replica']])} (machine ${fmtPct(r.cpu.machine)});` +
      ` peak RSS primary ${r.rssMb.primary.toFixed(1)} MB, replica ${r.rssMb.replica.toFixed(1)} MB.`,
  ];
}

function markdownSummary(results) {
  const data = summaryRows(results);
  return ['| scenario | result | target | met |', '|---|---|---|---|', ...data.map((d) => `| ${d.scenario} | ${d.result} | ${d.target} | ${d.met} |`)].join('\n');
}

/** Rewrites the bench:replication section of docs/benchmarks.md; notes below MARK_NOTES are kept. */
export function replicationDocsSection(opts, results, startedAt, command, primaryResults = []) {
  const m = machine();
  const old = readDocsSection(MARK_START, MARK_END);
  const notesAt = old?.indexOf(MARK_NOTES) ?? -1;
  const notes = notesAt >= 0 ? old.slice(notesAt + MARK_NOTES.length).replace(/^\n+|\n+$/g, '') : '';
  const primaryWrite = primaryResults.find((r) => r.scenario === 'write');
  const pairBaseline = results.find((r) => r.scenario === 'baseline-repl-write');
  const details = [];
  for (const r of results) {
    details.push('');
    if (r.scenario === 'repl-write') details.push(...writeDetails(r, primaryWrite));
    if (r.scenario === 'baseline-repl-write') details.push(...baselinePairDetails(r));
    if (r.scenario === 'repl-lag') details.push(...lagDetails(r));
    if (r.scenario === 'repl-catchup') details.push(...catchupDetails(r));
  }
  const section = [
    MARK_START,
    '## Replication: semi-sync writes, lag, catch-up',
    '',
    '_Rewritten by `npm run bench` (scenarios `repl-write`, `repl-lag`, `repl-catchup`, or `--scenarios replication`; bench/replication.js)' +
      ' except for the notes at the end of this section._',
    '',
    `- Date: ${startedAt.toISOString()}`,
    `- Command: \`${command}\``,
    `- Machine: ${m.cpu}, ${m.memory} RAM, ${m.os}, Node ${m.node}`,
    '- Setup: each scenario starts its own `tracker-primary` and `tracker-replica` processes (fresh temp SQLite dbs,' +
      ` \`${TRACKER_BENCH_ARGS.join(' ')}\`, default \`--db-synchronous FULL\` on both, one \`--secret\`),` +
      ' and its load in separate processes, all on this machine over loopback, sharing its' +
      ` ${m.cores} cores: the figures include the replica competing with the primary for CPU.` +
      ' CPU figures are shares of one core (100% = one core); "other" is what the rest of the machine used meanwhile.',
    '',
    markdownSummary(results),
    '',
    `Targets (from the issue): semi-sync durable writes ≥ ${fmtInt(TARGET_WRITES)}/s with ${opts.connections} clients; replication lag` +
      ` p99 < ${TARGET_LAG_P99_MS} ms at a steady ${fmtInt(5000)} writes/s; catch-up of 100,000 changes < ${TARGET_CATCHUP_S} s.` +
      ' "met" also requires no errors, no degraded poll and convergence (same seq and log_hash, acknowledged) after the run.' +
      (pairBaseline ? ` For scale, a semi-sync pair that does nothing but append and sync (baseline row) did ${fmtInt(pairBaseline.reqPerSec)} writes/s.` : ''),
    ...details,
    '',
    MARK_NOTES,
    ...(notes ? ['', notes] : []),
    MARK_END,
  ].join('\n');
  writeDocsSection(MARK_START, MARK_END, section);
}

/**
 * `npm start` (scripts/start.js): a primary and its replica run together,
 * converge, and stop gracefully when start.js is told to stop (Ctrl-C,
 * SIGTERM, SIGHUP) or when the process that started it dies, as npm does
 * on SIGTERM.
 */
import { spawn } from 'node:child_process';
import type { ChildProcessByStdio } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type { Readable } from 'node:stream';
import t from 'tap';
import type { Test } from 'tap';
import { waitForConvergence } from './helpers/cluster.js';
import { signUp, status } from './helpers/commands.js';
import { childEnv, freePorts, makeTempDir, processAlive, ROOT } from './helpers/tracker.js';
import type { ExitStatus, TeardownHost } from './helpers/tracker.js';
import { connect, waitFor } from './helpers/wire.js';
import type { WireClient } from './helpers/wire.js';

const DEADLINE_MS = 20_000;

async function open(t: TeardownHost, tracker: { port: number }): Promise<WireClient> {
  const c = await connect(tracker.port);
  t.teardown(() => c.close());
  return c;
}

/** The JSON log lines a tracker wrote to stderr. */
function logLines(text: string): Record<string, unknown>[] {
  const lines: Record<string, unknown>[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      lines.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      // a line still being written
    }
  }
  return lines;
}

/** Whether a process runs: a zombie (dead, not reaped yet by whoever adopted it) does not. */
function running(pid: number): boolean {
  if (!processAlive(pid)) return false;
  if (process.platform !== 'linux') return true;
  try {
    return !/^\d+ \(.*\) Z /s.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false; // gone since the check above
  }
}

/** Whether nothing listens on 127.0.0.1:`port` any more. */
function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

interface StartScript {
  primaryPort: number;
  replicaPort: number;
  /** What the test spawned: start.js, or the parent that runs it. */
  proc: ChildProcessByStdio<null, Readable, Readable>;
  /** Resolves once `proc` has exited and everything holding its output has closed it. */
  exited: Promise<ExitStatus>;
  /** start.js's own process id. */
  startPid: number;
  /** The trackers' process ids by name (`tracker-primary`, `tracker-replica`), from their log lines. */
  trackers: Map<string, number>;
  out(): string;
  err(): string;
}

/**
 * Runs scripts/start.js on free ports and a temporary data directory, and
 * waits until both trackers are ready. `parent`: start.js is started by a
 * node process of its own (as npm's shell starts it) which the test may kill.
 * Every process is killed in teardown.
 */
async function runStart(t: TeardownHost, { parent = false } = {}): Promise<StartScript> {
  const dir = await makeTempDir(t, 'tracker-start-test-');
  const [primaryPort, replicaPort] = (await freePorts(2)) as [number, number];
  const startJs = path.join(ROOT, 'scripts/start.js');
  const launcher = [
    "const { spawn } = require('node:child_process');",
    `const child = spawn(process.execPath, [${JSON.stringify(startJs)}], { stdio: 'inherit' });`,
    "process.stderr.write(`launcher: start.js is pid ${child.pid}\\n`);",
    'child.on("exit", (code) => process.exit(code ?? 1));',
  ].join('\n');
  const proc = spawn(process.execPath, parent ? ['-e', launcher] : [startJs], {
    cwd: dir,
    env: childEnv({ TRACKER_DATA_DIR: dir, PRIMARY_PORT: String(primaryPort), REPLICA_PORT: String(replicaPort) }),
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true, // a process group of its own, as a terminal's foreground job
  });
  let out = '';
  let err = '';
  proc.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
  proc.stderr.setEncoding('utf8').on('data', (s: string) => (err += s));
  const exited = new Promise<ExitStatus>((resolve) => proc.once('close', (code, signal) => resolve({ code, signal })));
  const trackers = (): Map<string, number> => {
    const found = new Map<string, number>();
    for (const line of logLines(err)) {
      if (typeof line['name'] === 'string' && typeof line['pid'] === 'number') found.set(line['name'], line['pid']);
    }
    return found;
  };
  const startPid = (): number | undefined => (parent ? Number(/^launcher: start\.js is pid (\d+)$/m.exec(err)?.[1] ?? NaN) || undefined : proc.pid);
  t.teardown(async () => {
    const pids = [...trackers().values(), startPid()];
    for (const pid of pids) if (pid !== undefined && running(pid)) process.kill(pid, 'SIGKILL');
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    await exited;
  });

  await waitFor(() => /^tracker-primary ready on /m.test(out) && /^tracker-replica ready on /m.test(out), {
    timeoutMs: DEADLINE_MS,
    message: `both ready lines (stdout so far: ${JSON.stringify(out)})`,
  });
  const found = await waitFor(() => (trackers().has('tracker-primary') && trackers().has('tracker-replica') ? trackers() : undefined), {
    timeoutMs: DEADLINE_MS,
    message: 'the trackers log lines',
  });
  return {
    primaryPort,
    replicaPort,
    proc,
    exited,
    startPid: await waitFor(startPid, { message: "start.js's pid" }),
    trackers: found,
    out: () => out,
    err: () => err,
  };
}

/** Waits until start.js and both trackers have exited and freed their ports, and checks that both trackers stopped gracefully. */
async function expectAllStopped(t: Test, run: StartScript): Promise<void> {
  for (const [name, pid] of [...run.trackers, ['start.js', run.startPid] as const]) {
    await waitFor(() => !running(pid), { timeoutMs: DEADLINE_MS, message: `${name} (pid ${pid}) to exit` });
    t.pass(`${name} (pid ${pid}) is gone`);
  }
  t.ok(await portFree(run.primaryPort), `port ${run.primaryPort} is free`);
  t.ok(await portFree(run.replicaPort), `port ${run.replicaPort} is free`);
  t.equal(run.err().match(/tracker stopped/g)?.length, 2, 'both trackers stopped gracefully');
  t.notMatch(run.err(), /second signal/, 'each got one signal');
}

t.test('npm start runs a primary and its replica, which converge; Ctrl-C stops both gracefully', async (t) => {
  const run = await runStart(t);
  const { primaryPort, replicaPort } = run;
  t.match(run.out(), new RegExp(`^tracker-primary ready on 127\\.0\\.0\\.1:${primaryPort} \\(role=primary `, 'm'));
  t.match(run.out(), new RegExp(`^tracker-replica ready on 127\\.0\\.0\\.1:${replicaPort} \\(role=replica `, 'm'));

  const p = await open(t, { port: primaryPort });
  const r = await open(t, { port: replicaPort });
  t.equal((await status(p))['role'], 'primary');
  t.equal((await status(r))['role'], 'replica');
  await signUp(p, 'alice');
  const done = await waitForConvergence({ port: primaryPort }, { port: replicaPort }, { timeoutMs: DEADLINE_MS, acked: true });
  t.ok(Number(done.primary['seq']) >= 2, 'the user and the login replicated');
  await p.close();
  await r.close();

  // Ctrl-C: the terminal sends SIGINT to its whole foreground process group.
  process.kill(-run.startPid, 'SIGINT');
  const stopped = await Promise.race([run.exited, new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), DEADLINE_MS).unref())]);
  t.same(stopped, { code: 0, signal: null }, 'npm start exits 0 on Ctrl-C');
  await expectAllStopped(t, run);
});

for (const signal of ['SIGTERM', 'SIGHUP'] as const) {
  t.test(`${signal} to start.js alone stops both trackers gracefully`, async (t) => {
    const run = await runStart(t);
    process.kill(run.startPid, signal);
    const stopped = await Promise.race([run.exited, new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), DEADLINE_MS).unref())]);
    t.same(stopped, { code: 0, signal: null }, `start.js exits 0 on ${signal}`);
    await expectAllStopped(t, run);
  });
}

t.test('when the process that started it dies (npm on SIGTERM), start.js stops both trackers gracefully', async (t) => {
  const run = await runStart(t, { parent: true });
  // npm's shell dies of the SIGTERM npm forwards to it and passes nothing on: to start.js, it just disappears.
  run.proc.kill('SIGKILL');
  await expectAllStopped(t, run);
  t.match(run.err(), /npm start: the process that started this one \(pid \d+\) is gone; stopping the trackers/);
});

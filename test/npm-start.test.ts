/**
 * `npm start` (scripts/start.js): a primary and its replica run together,
 * converge, and stop gracefully when start.js is told to stop (Ctrl-C,
 * SIGTERM, SIGHUP) or when the process that started it dies, as npm does
 * on SIGTERM, or when npm itself dies.
 */
import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcessByStdio } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
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

/** start.js puts each tracker's name in front of every line it writes, padded alike. */
const PREFIX = { primary: 'primary | ', replica: 'replica | ' } as const;

/**
 * The JSON log lines the trackers wrote to stderr, each with the name start.js put in front of it (`primary`,
 * `replica`; undefined for a line without one, kept so that teardown finds every tracker whatever start.js did).
 */
function logLines(text: string): { prefix: string | undefined; entry: Record<string, unknown> }[] {
  const lines: { prefix: string | undefined; entry: Record<string, unknown> }[] = [];
  for (const line of text.split('\n')) {
    const m = /^(?:(\w+) \| )?(\{.*)$/.exec(line);
    if (!m) continue;
    try {
      lines.push({ prefix: m[1], entry: JSON.parse(m[2] as string) as Record<string, unknown> });
    } catch {
      // a line still being written
    }
  }
  return lines;
}

/** The processes `pid` started that still run (Linux `ps`): the trackers, while start.js runs. */
function childrenOf(pid: number): number[] {
  try {
    return execFileSync('ps', ['-o', 'pid=', '--ppid', String(pid)], { encoding: 'utf8' }).trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return []; // ps exits 1 when there are none
  }
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

/** start.js's environment; `npm`: what npm tells the scripts it runs (start.js watches npm only then), else not. */
function startEnv(dir: string, primaryPort: number, replicaPort: number, npm: boolean): NodeJS.ProcessEnv {
  const env = childEnv({ TRACKER_DATA_DIR: dir, PRIMARY_PORT: String(primaryPort), REPLICA_PORT: String(replicaPort) });
  // `npm test` runs this file with npm's variables, which start.js must not take as its own.
  for (const key of Object.keys(env)) if (key.startsWith('npm_')) delete env[key];
  if (npm) env['npm_lifecycle_event'] = 'start';
  return env;
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
 * node process of its own which the test may kill: `node` starts it directly
 * (as npm's shell does), `npm` through `sh -c` as npm does, with npm's
 * environment. Every process is killed in teardown.
 */
async function runStart(t: TeardownHost, { parent }: { parent?: 'node' | 'npm' } = {}): Promise<StartScript> {
  const dir = await makeTempDir(t, 'tracker-start-test-');
  const [primaryPort, replicaPort] = (await freePorts(2)) as [number, number];
  const startJs = path.join(ROOT, 'scripts/start.js');
  const command = parent === 'npm' ? `'sh', ['-c', ${JSON.stringify(`"${process.execPath}" "${startJs}"`)}]` : `process.execPath, [${JSON.stringify(startJs)}]`;
  const launcher = [
    "const { spawn } = require('node:child_process');",
    `const child = spawn(${command}, { stdio: 'inherit' });`,
    `process.stderr.write(\`launcher: ${parent === 'npm' ? 'its shell' : 'start.js'} is pid \${child.pid}\\n\`);`,
    'child.on("exit", (code) => process.exit(code ?? 1));',
  ].join('\n');
  const proc = spawn(process.execPath, parent ? ['-e', launcher] : [startJs], {
    cwd: dir,
    env: startEnv(dir, primaryPort, replicaPort, parent === 'npm'),
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
    for (const { entry } of logLines(err)) {
      if (typeof entry['name'] === 'string' && typeof entry['pid'] === 'number') found.set(entry['name'], entry['pid']);
    }
    return found;
  };
  const launched = (what: string): number | undefined => Number(new RegExp(`^launcher: ${what} is pid (\\d+)$`, 'm').exec(err)?.[1] ?? NaN) || undefined;
  const shellPid = (): number | undefined => (parent === 'npm' ? launched('its shell') : undefined);
  const startPid = (): number | undefined => {
    if (parent === 'npm') {
      const shell = shellPid();
      return shell === undefined ? undefined : childrenOf(shell)[0];
    }
    return parent === 'node' ? launched('start\\.js') : proc.pid;
  };
  t.teardown(async () => {
    const start = startPid();
    const shell = shellPid();
    const pids = [...trackers().values(), ...(start === undefined ? [] : [...childrenOf(start), start]), ...(shell === undefined ? [] : [shell])];
    for (const pid of pids) if (running(pid)) process.kill(pid, 'SIGKILL');
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    await exited;
  });

  await waitFor(() => /^primary \| tracker-primary ready on /m.test(out) && /^replica \| tracker-replica ready on /m.test(out), {
    timeoutMs: DEADLINE_MS,
    message: 'both ready lines',
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

/** Waits until start.js and both trackers have exited and freed their ports. */
async function expectAllGone(t: Test, run: StartScript): Promise<void> {
  for (const [name, pid] of [...run.trackers, ['start.js', run.startPid] as const]) {
    await waitFor(() => !running(pid), { timeoutMs: DEADLINE_MS, message: `${name} (pid ${pid}) to exit` });
    t.pass(`${name} (pid ${pid}) is gone`);
  }
  t.ok(await portFree(run.primaryPort), `port ${run.primaryPort} is free`);
  t.ok(await portFree(run.replicaPort), `port ${run.replicaPort} is free`);
}

/** As expectAllGone, and both trackers stopped gracefully, each on one signal. */
async function expectAllStopped(t: Test, run: StartScript): Promise<void> {
  await expectAllGone(t, run);
  t.equal(run.err().match(/tracker stopped/g)?.length, 2, 'both trackers stopped gracefully');
  t.notMatch(run.err(), /second signal/, 'each got one signal');
}

/** `promise`, or undefined after DEADLINE_MS. */
function withinDeadline<T>(promise: Promise<T>): Promise<T | undefined> {
  return Promise.race([promise, new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), DEADLINE_MS).unref())]);
}

t.test('npm start runs a primary and its replica, which converge, every line named; Ctrl-C stops both gracefully', async (t) => {
  const run = await runStart(t);
  const { primaryPort, replicaPort } = run;
  t.match(run.out(), new RegExp(`^primary \\| tracker-primary ready on 127\\.0\\.0\\.1:${primaryPort} \\(role=primary `, 'm'));
  t.match(run.out(), new RegExp(`^replica \\| tracker-replica ready on 127\\.0\\.0\\.1:${replicaPort} \\(role=replica `, 'm'));

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
  const stopped = await withinDeadline(run.exited);
  t.same(stopped, { code: 0, signal: null }, 'npm start exits 0 on Ctrl-C');
  await expectAllStopped(t, run);

  // Which tracker wrote each line: all of them carry its name, and the JSON logs (stderr is no terminal) agree.
  const lines = (text: string): string[] => text.split('\n').filter((l) => l.length > 0);
  for (const line of lines(run.out())) t.match(line, /^(primary|replica) \| tracker-\1 ready on /, `stdout: ${line}`);
  const theirs = lines(run.err()).filter((l) => !l.startsWith('npm start: '));
  t.same(theirs.filter((l) => !l.startsWith(PREFIX.primary) && !l.startsWith(PREFIX.replica)), [], 'every stderr line names its tracker');
  const logs = logLines(run.err());
  t.equal(logs.length, theirs.length, 'and is a whole JSON log line');
  for (const name of ['primary', 'replica']) {
    const own = logs.filter((l) => l.prefix === name);
    t.ok(own.length > 0, `${name} logged`);
    t.same([...new Set(own.map((l) => l.entry['name']))], [`tracker-${name}`], `the ${name}'s lines are all the ${name}'s`);
  }
});

for (const signal of ['SIGTERM', 'SIGHUP'] as const) {
  t.test(`${signal} to start.js alone stops both trackers gracefully`, async (t) => {
    const run = await runStart(t);
    process.kill(run.startPid, signal);
    const stopped = await withinDeadline(run.exited);
    t.same(stopped, { code: 0, signal: null }, `start.js exits 0 on ${signal}`);
    await expectAllStopped(t, run);
  });
}

t.test('when the process that started it dies (npm on SIGTERM), start.js stops both trackers gracefully', async (t) => {
  const run = await runStart(t, { parent: 'node' });
  // npm's shell dies of the SIGTERM npm forwards to it and passes nothing on: to start.js, it just disappears.
  run.proc.kill('SIGKILL');
  await expectAllStopped(t, run);
  t.match(run.err(), /npm start: the process that started this one \(pid \d+\) is gone; stopping the trackers/);
});

t.test('when npm itself is killed (SIGKILL), its shell stays, and start.js stops both trackers gracefully', async (t) => {
  const run = await runStart(t, { parent: 'npm' });
  // The shell npm ran start.js in outlives npm, waiting for start.js: start.js's own parent does not change.
  run.proc.kill('SIGKILL');
  await expectAllStopped(t, run);
  t.match(run.err(), /npm start: npm \(pid \d+\) is gone; stopping the trackers/);
});

t.test('a reader of its output that goes away does not keep start.js from stopping its trackers', async (t) => {
  const run = await runStart(t);
  // `npm start 2>&1 | head`: once head has gone, every write to that pipe fails (EPIPE).
  run.proc.stderr.destroy();
  process.kill(run.startPid, 'SIGTERM');
  t.same(await withinDeadline(run.exited), { code: 0, signal: null }, 'start.js stops as usual, exit 0');
  await expectAllGone(t, run);
});

t.test('on a terminal, the trackers keep their pretty, coloured logs, every line named', async (t) => {
  const dir = await makeTempDir(t, 'tracker-start-pty-');
  const [primaryPort, replicaPort] = (await freePorts(2)) as [number, number];
  const pidFile = path.join(dir, 'start.pid');
  const env = childEnv({
    TRACKER_DATA_DIR: dir,
    PRIMARY_PORT: String(primaryPort),
    REPLICA_PORT: String(replicaPort),
    RUN_IN_PTY_PID_FILE: pidFile,
  });
  // The test runner asks its children for no colours (NO_COLOR, FORCE_COLOR=0); a user's terminal does not.
  delete env['NO_COLOR'];
  delete env['FORCE_COLOR'];
  const proc = spawn('python3', [path.join(ROOT, 'test/helpers/run_in_pty.py'), process.execPath, path.join(ROOT, 'scripts/start.js')], {
    cwd: dir,
    env,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let raw = '';
  proc.stdout.setEncoding('utf8').on('data', (s: string) => (raw += s));
  proc.stderr.setEncoding('utf8').on('data', (s: string) => (raw += s));
  const exited = new Promise<number | null>((resolve) => proc.once('close', (code) => resolve(code)));
  // eslint-disable-next-line no-control-regex -- escape sequences are what it removes
  const screen = (): string => raw.replace(/\x1b\[[0-9;]*m/g, '').replace(/\r/g, '');
  let pids: number[] = [];
  t.teardown(async () => {
    for (const pid of pids) if (running(pid)) process.kill(pid, 'SIGKILL');
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    await exited;
  });

  const startPid = await waitFor(async () => Number(await readFile(pidFile, 'utf8').catch(() => '')) || undefined, { message: "start.js's pid" });
  // Known from the start, so that teardown kills the trackers also when the screen never shows what is expected.
  const noteTrackers = (): void => {
    for (const pid of childrenOf(startPid)) if (!pids.includes(pid)) pids.push(pid);
  };
  pids = [startPid];
  await waitFor(
    () => {
      noteTrackers();
      return /^primary \| tracker-primary ready on /m.test(screen()) && /^replica \| tracker-replica ready on /m.test(screen());
    },
    { timeoutMs: DEADLINE_MS, message: 'both ready lines' },
  );
  noteTrackers();
  t.equal(pids.length, 3, 'start.js runs two trackers');

  process.kill(startPid, 'SIGINT');
  t.equal(await withinDeadline(exited), 0, 'start.js exits 0');
  for (const pid of pids) t.notOk(running(pid), `pid ${pid} is gone`);

  const lines = screen().split('\n').filter((l) => l.length > 0);
  t.same(lines.filter((l) => !/^(primary|replica) \| /.test(l)), [], 'every line names its tracker');
  t.same(lines.filter((l) => /^\w+ \| \{/.test(l)), [], 'no JSON log lines');
  for (const name of ['primary', 'replica']) {
    t.match(screen(), new RegExp(`^${name} \\| \\[[\\d:.]+\\] INFO: tracker stopped$`, 'm'), `the ${name}'s logs are pretty`);
  }
  // eslint-disable-next-line no-control-regex -- the colour codes are what it looks for
  t.match(raw, /\x1b\[\d+mINFO\x1b\[39m/, 'and coloured');
});

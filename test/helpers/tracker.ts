/**
 * Real tracker processes for integration tests.
 *
 *   const tracker = await startTracker(t);            // primary on 127.0.0.1:<ephemeral>
 *   const c = await connect(tracker.port);            // see ./wire.ts
 *   ...
 *   const { code } = await tracker.stop();            // SIGTERM; expect 0
 *   const replica = await startTracker(t, { role: 'replica', args: ['--primary', tracker.address] });
 *
 * Every process started here is SIGKILLed (if still alive) and awaited in the
 * test's teardown, and its temporary directory removed. Nothing sleeps: the
 * helpers wait for the ready line or the exit, each with a deadline.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root. */
export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const BINS = {
  primary: path.join(ROOT, 'packages/tracker-primary/bin/tracker-primary.js'),
  replica: path.join(ROOT, 'packages/tracker-replica/bin/tracker-replica.js'),
} as const;
/** The operator's tool (tracker-admin), run as a process in tests. */
export const ADMIN_BIN = path.join(ROOT, 'packages/tracker-admin/bin/tracker-admin.js');
export type TrackerRole = keyof typeof BINS;

/** The part of a tap `Test` the helpers need (any tap `t` fits). */
export interface TeardownHost {
  teardown(fn: () => unknown): void;
}

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface StartOptions {
  role?: TrackerRole;
  /** Extra arguments after the defaults (a later flag wins over a default). */
  args?: string[];
  /**
   * Replaces the default arguments entirely (`--host 127.0.0.1 --port 0 --db ... --secret ...
   * --scrypt-cost 1024`), e.g. for the classic positional form.
   */
  rawArgs?: string[];
  /** Extra environment; inherited `TRACKER_*` variables are removed first. */
  env?: Record<string, string>;
  /** Directory for the database (and the process's cwd); default: a fresh temp dir, removed in teardown. */
  dir?: string;
  /** Database file; default `<dir>/<role>.db`. With `rawArgs`, only reported back (pass it to match the args). */
  dbPath?: string;
  /** Deadline for the ready line (default 20 s). */
  readyTimeoutMs?: number;
}

export interface RunningTracker {
  host: string;
  port: number;
  /** `host:port` as printed in the ready line. */
  address: string;
  /** The whole ready line, and the part in parentheses (`role=primary epoch=1 seq=0`). */
  readyLine: string;
  description: string;
  /** `http://HOST:PORT` of the admin listener when it runs (`--admin-port`; the ready line's `admin=`). */
  adminUrl: string | undefined;
  dbPath: string;
  dir: string;
  proc: ChildProcess;
  /** Everything the process wrote to stdout / stderr so far. */
  stdout(): string;
  stderr(): string;
  /** Resolves when the process has exited. */
  exited: Promise<ExitStatus>;
  /** Sends `signal` (default SIGTERM) and waits for the exit (SIGKILL after `timeoutMs`, default 20 s). */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<ExitStatus>;
  /** SIGKILL, as in a crash; waits for the exit. */
  kill9(): Promise<void>;
  /**
   * Stops this process if it still runs (SIGTERM), then starts it again on the same database and a new ephemeral port.
   * `extraArgs` are appended after the original arguments (a later flag wins), e.g. a replica's new `--primary`.
   */
  restart(extraArgs?: string[]): Promise<RunningTracker>;
}

const READY_LINE = /^(tracker-\w+) ready on (.+):(\d+) \((.*)\)$/m;
/** Every child still running, killed if the test process exits without its teardown. */
const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

/** A clean environment for a child: ours without any `TRACKER_*`, plus `extra`. */
/** Whether a process with this id is running (signal 0 checks without sending anything). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('TRACKER_')) env[k] = v;
  return { ...env, ...extra };
}

export async function makeTempDir(t: TeardownHost, prefix = 'tracker-test-'): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

interface Spawned {
  proc: ChildProcess;
  stdout(): string;
  stderr(): string;
  exited: Promise<ExitStatus>;
}

function spawnBin(role: TrackerRole, args: string[], env: NodeJS.ProcessEnv, cwd: string): Spawned {
  const proc = spawn(process.execPath, [BINS[role], ...args], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(proc);
  let out = '';
  let err = '';
  proc.stdout?.setEncoding('utf8').on('data', (s: string) => (out += s));
  proc.stderr?.setEncoding('utf8').on('data', (s: string) => (err += s));
  const exited = new Promise<ExitStatus>((resolve) => {
    proc.once('close', (code, signal) => {
      live.delete(proc);
      resolve({ code, signal });
    });
    proc.once('error', () => {
      live.delete(proc);
      resolve({ code: null, signal: null });
    });
  });
  return { proc, stdout: () => out, stderr: () => err, exited };
}

async function killAndWait(s: Spawned): Promise<void> {
  if (s.proc.exitCode === null && s.proc.signalCode === null) s.proc.kill('SIGKILL');
  await s.exited;
}

/** Waits for `promise` up to `ms`; resolves `undefined` on timeout. */
async function within<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Starts a tracker and resolves once it printed its ready line. */
export async function startTracker(t: TeardownHost, opts: StartOptions = {}): Promise<RunningTracker> {
  const ownDir = opts.dir === undefined;
  const dir = opts.dir ?? (await mkdtemp(path.join(os.tmpdir(), 'tracker-test-')));
  /** This tracker and its restarts: all killed before the directory goes. */
  const group: Spawned[] = [];
  t.teardown(async () => {
    await Promise.all(group.map(killAndWait));
    if (ownDir) await rm(dir, { recursive: true, force: true });
  });
  return launch(opts, dir, group);
}

async function launch(opts: StartOptions, dir: string, group: Spawned[]): Promise<RunningTracker> {
  const role = opts.role ?? 'primary';
  const dbPath = opts.dbPath ?? path.join(dir, `${role}.db`);
  const args = opts.rawArgs ?? [
    '--host', '127.0.0.1',
    '--port', '0',
    '--db', dbPath,
    '--secret', 'test-secret',
    '--scrypt-cost', '1024',
    ...(opts.args ?? []),
  ];
  const child = spawnBin(role, args, childEnv(opts.env), dir);
  group.push(child);

  const timeoutMs = opts.readyTimeoutMs ?? 20_000;
  const match = await new Promise<RegExpExecArray>((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`no ready line within ${timeoutMs} ms; stderr:\n${child.stderr()}`));
    }, timeoutMs);
    const check = (): void => {
      const m = READY_LINE.exec(child.stdout());
      if (m) {
        cleanup();
        resolve(m);
      }
    };
    const onExit = (status: ExitStatus): void => {
      cleanup();
      reject(new Error(`tracker exited (${JSON.stringify(status)}) before it was ready; stderr:\n${child.stderr()}`));
    };
    const cleanup = (): void => {
      clearTimeout(timer);
      child.proc.stdout?.off('data', check);
    };
    child.proc.stdout?.on('data', check);
    void child.exited.then(onExit);
    check();
  }).catch(async (err: unknown) => {
    await killAndWait(child);
    throw err;
  });

  const [readyLine, , hostText, portText, description] = match as unknown as [string, string, string, string, string];
  const host = hostText.replace(/^\[(.*)\]$/, '$1');
  const port = Number(portText);
  const admin = /\badmin=(\S+)/.exec(description)?.[1];
  const stop = async (signal: NodeJS.Signals = 'SIGTERM', stopTimeoutMs = 20_000): Promise<ExitStatus> => {
    if (child.proc.exitCode === null && child.proc.signalCode === null) child.proc.kill(signal);
    const status = await within(child.exited, stopTimeoutMs);
    if (status) return status;
    await killAndWait(child);
    throw new Error(`tracker did not exit within ${stopTimeoutMs} ms of ${signal}; stderr:\n${child.stderr()}`);
  };
  const running: RunningTracker = {
    host,
    port,
    address: `${hostText}:${port}`,
    readyLine,
    description,
    adminUrl: admin ? `http://${admin}` : undefined,
    dbPath,
    dir,
    proc: child.proc,
    stdout: child.stdout,
    stderr: child.stderr,
    exited: child.exited,
    stop,
    kill9: () => killAndWait(child),
    restart: async (extraArgs: string[] = []) => {
      await stop();
      const next: StartOptions = { ...opts, dbPath };
      if (extraArgs.length > 0) {
        if (opts.rawArgs) next.rawArgs = [...opts.rawArgs, ...extraArgs];
        else next.args = [...(opts.args ?? []), ...extraArgs];
      }
      return launch(next, dir, group);
    },
  };
  return running;
}

export interface CommandResult extends ExitStatus {
  stdout: string;
  stderr: string;
}

/**
 * Runs a tracker binary expected to exit by itself (`--help`, bad options,
 * startup failures) and returns its status and output. Killed after
 * `timeoutMs` (default 20 s), which then rejects.
 */
export async function runTrackerCommand(
  t: TeardownHost,
  args: string[],
  opts: { role?: TrackerRole; env?: Record<string, string>; cwd?: string; timeoutMs?: number } = {},
): Promise<CommandResult> {
  const cwd = opts.cwd ?? (await makeTempDir(t));
  const child = spawnBin(opts.role ?? 'primary', args, childEnv(opts.env), cwd);
  t.teardown(() => killAndWait(child));
  const timeoutMs = opts.timeoutMs ?? 20_000;
  const status = await within(child.exited, timeoutMs);
  if (!status) {
    await killAndWait(child);
    throw new Error(`tracker ${args.join(' ')} still running after ${timeoutMs} ms; stderr:\n${child.stderr()}`);
  }
  return { ...status, stdout: child.stdout(), stderr: child.stderr() };
}

/**
 * Ports nothing listens on right now, all different: bound together on port
 * 0, then released (for a tracker's port chosen ahead, or an address to fail on).
 */
export async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<net.Server>((resolve, reject) => {
          const s = net.createServer();
          s.once('error', reject);
          s.listen(0, '127.0.0.1', () => resolve(s));
        }),
    ),
  );
  const ports = servers.map((s) => (s.address() as net.AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  return ports;
}

/** One sample of a Prometheus text exposition: `name{labels} value`. */
export function metricSample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have: Record<string, string> = {};
    for (const pair of (m[3] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) have[pair[1] as string] = pair[2] as string;
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(m[4]);
  }
  return undefined;
}

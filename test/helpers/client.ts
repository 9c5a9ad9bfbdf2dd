/**
 * The tracker-client bin as a child process, for integration tests.
 *
 *   const c = await spawnClient(t, ['--tracker', tracker.address]);   // stdin, stdout, stderr piped
 *   c.proc.stdin?.write('login alice pw\n');
 *   await c.waitOut('OK logged in');
 *   const r = await runClient(t, [...at, '--exec', 'ping']);         // to its exit
 *
 * Each child runs in a fresh temp directory with a clean environment (no
 * `TRACKER_*`, history off unless `env` says otherwise) and is killed and
 * awaited in the test's teardown. Nothing sleeps: waits poll with deadlines.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import path from 'node:path';
import { childEnv, makeTempDir, ROOT } from './tracker.js';
import type { TeardownHost } from './tracker.js';
import { waitFor } from './wire.js';

export const CLIENT_BIN = path.join(ROOT, 'packages/client/bin/tracker-client.js');
export const DEADLINE_MS = 20_000;

export interface ClientRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface SpawnedClient {
  proc: ChildProcess;
  stdout(): string;
  stderr(): string;
  exited: Promise<ClientRun>;
  /** Resolves once stdout contains `text` (or matches it). */
  waitOut(text: string | RegExp, message?: string): Promise<void>;
  /** Resolves once stderr contains `text` (or matches it). */
  waitErr(text: string | RegExp, message?: string): Promise<void>;
}

function contains(haystack: string, needle: string | RegExp): boolean {
  return typeof needle === 'string' ? haystack.includes(needle) : needle.test(haystack);
}

/** Starts the client bin; it is killed (if still running) and awaited in teardown. */
export async function spawnClient(t: TeardownHost, args: string[], env: Record<string, string> = {}): Promise<SpawnedClient> {
  const cwd = await makeTempDir(t, 'tracker-client-test-');
  const proc = spawn(process.execPath, [CLIENT_BIN, ...args], {
    cwd,
    env: childEnv({ TRACKER_CLIENT_HISTORY: '', ...env }),
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  proc.stdout?.setEncoding('utf8').on('data', (s: string) => (out += s));
  proc.stderr?.setEncoding('utf8').on('data', (s: string) => (err += s));
  const exited = new Promise<ClientRun>((resolve) => {
    proc.once('close', (code, signal) => resolve({ code, signal, stdout: out, stderr: err }));
    proc.once('error', (error) => resolve({ code: null, signal: null, stdout: out, stderr: `${err}${String(error)}` }));
  });
  t.teardown(async () => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    await exited;
  });
  const wait = (get: () => string, name: string) => (text: string | RegExp, message?: string) =>
    waitFor(() => contains(get(), text), {
      timeoutMs: DEADLINE_MS,
      message: `${message ?? String(text)} on ${name}; stdout:\n${out}\nstderr:\n${err}`,
    }).then(() => undefined);
  return {
    proc,
    stdout: () => out,
    stderr: () => err,
    exited,
    waitOut: wait(() => out, 'stdout'),
    waitErr: wait(() => err, 'stderr'),
  };
}

/** Runs the client to its exit, with `stdin` as its whole input (closed at once when absent). */
export async function runClient(t: TeardownHost, args: string[], stdin = '', env: Record<string, string> = {}): Promise<ClientRun> {
  const client = await spawnClient(t, args, env);
  client.proc.stdin?.end(stdin);
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      client.proc.kill('SIGKILL');
      reject(new Error(`tracker-client ${args.join(' ')} did not exit within ${DEADLINE_MS} ms; stderr:\n${client.stderr()}`));
    }, DEADLINE_MS);
  });
  try {
    return await Promise.race([client.exited, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** The non-empty lines of some output. */
export function lines(text: string): string[] {
  return text.split('\n').filter((l) => l.length > 0);
}

/**
 * The interactive client in a real pseudo-terminal (./run_in_pty.py,
 * Python's pty module: node-pty would need a native build).
 *
 *   const term = await spawnPty(t, ['--tracker', tracker.address], { HOME: home });
 *   await term.waitScreen('> ', 'the prompt');
 *   term.type('whoami\r');
 *   process.kill(await term.pid(), 'SIGTERM');   // the client itself
 *   await term.hangUp();                          // the terminal goes away
 *
 * The pty process and the client are killed (if still running) and awaited
 * in the test's teardown. Nothing sleeps: waits poll with deadlines.
 */
import { spawn } from 'node:child_process';
import xterm from '@xterm/headless';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { CLIENT_BIN, DEADLINE_MS } from './client.js';
import { childEnv, makeTempDir, processAlive, ROOT } from './tracker.js';
import type { TeardownHost } from './tracker.js';
import { waitFor } from './wire.js';

const PTY = path.join(ROOT, 'test/helpers/run_in_pty.py');

export interface Pty {
  type(text: string): void;
  /** Everything shown so far, escape sequences included. */
  raw(): string;
  /** What was shown, without escape sequences and carriage returns. */
  screen(): string;
  /**
   * The terminal's rows as a terminal would show them now (cursor moves and
   * clears applied; scrolled-off rows first), trailing blanks removed.
   */
  rendered(): Promise<string[]>;
  /** Waits until the screen (from `from` on) matches. Resolves with the index just after the match. */
  waitScreen(pattern: string | RegExp, message: string, from?: number): Promise<number>;
  /** The client's exit status (128+N when signal N ended it), once it exited, as the pty reports it. */
  exited: Promise<number | null>;
  /** The client's process id (not the pty helper's). */
  pid(): Promise<number>;
  /** Closes the terminal under the client (the pty helper is killed): the client gets SIGHUP. */
  hangUp(): Promise<void>;
  /** Whether the client process is still running. */
  alive(): Promise<boolean>;
}

// eslint-disable-next-line no-control-regex -- escape sequences are what it removes
const ANSI = /\x1b\[[0-9;?]*[A-Za-z]/g;

export interface PtyOptions {
  /** Run the client without the test runner's NODE_OPTIONS hooks (which catch signals): for tests of signal handling. */
  plainNode?: boolean;
  /** The terminal's width (default 200: lines do not wrap). */
  cols?: number;
}

const ROWS = 50;
const DEFAULT_COLS = 200;

/** Plays what a program wrote through a headless terminal emulator, and reads its rows back. */
async function render(output: string, cols: number): Promise<string[]> {
  const term = new xterm.Terminal({ cols, rows: ROWS, scrollback: 10_000, allowProposedApi: true });
  await new Promise<void>((resolve) => term.write(output, resolve));
  const buffer = term.buffer.active;
  const rows: string[] = [];
  for (let i = 0; i < buffer.length; i++) rows.push(buffer.getLine(i)?.translateToString(true) ?? '');
  term.dispose();
  while (rows.length > 0 && rows[rows.length - 1] === '') rows.pop();
  return rows;
}

export async function spawnPty(t: TeardownHost, args: string[], env: Record<string, string>, opts: PtyOptions = {}): Promise<Pty> {
  const cwd = await makeTempDir(t, 'tracker-client-pty-');
  const pidFile = path.join(cwd, 'client.pid');
  const cols = opts.cols ?? DEFAULT_COLS;
  const childEnvironment = childEnv({ ...env, RUN_IN_PTY_PID_FILE: pidFile, RUN_IN_PTY_COLS: String(cols) });
  // The test runner may set NO_COLOR; colours are what `env` says.
  if (!('NO_COLOR' in env)) delete childEnvironment['NO_COLOR'];
  // tap loads a process-info hook into node child processes (NODE_OPTIONS,
  // added to every spawn) whose signal handlers catch SIGHUP: with
  // `plainNode` the client meets signals as a plain `node` does.
  if (opts.plainNode === true) childEnvironment['RUN_IN_PTY_PLAIN_NODE'] = '1';
  const proc = spawn('python3', [PTY, process.execPath, CLIENT_BIN, ...args], { cwd, env: childEnvironment, stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout?.setEncoding('utf8').on('data', (s: string) => (out += s));
  proc.stderr?.setEncoding('utf8').on('data', (s: string) => (out += s));
  const exited = new Promise<number | null>((resolve) => proc.once('close', (code) => resolve(code)));
  let knownPid: number | undefined;
  const readPid = waitFor(async () => {
    try {
      const text = await readFile(pidFile, 'utf8');
      knownPid = /^\d+$/.test(text) ? Number(text) : undefined;
      return knownPid;
    } catch {
      return undefined;
    }
  }, { timeoutMs: DEADLINE_MS, message: 'the client process id from the pty helper' });
  readPid.catch(() => undefined);
  const pid = (): Promise<number> => readPid;
  t.teardown(async () => {
    // The client first (it may have outlived a hung-up terminal), then the pty helper.
    if (knownPid !== undefined && processAlive(knownPid)) process.kill(knownPid, 'SIGKILL');
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    await exited;
  });
  const screen = (): string => out.replace(ANSI, '').replace(/\r/g, '');
  return {
    type: (text) => proc.stdin?.write(text),
    raw: () => out,
    screen,
    rendered: () => render(out, cols),
    async waitScreen(pattern, message, from = 0) {
      const find = (): number | undefined => {
        const s = screen().slice(from);
        if (typeof pattern === 'string') {
          const at = s.indexOf(pattern);
          return at < 0 ? undefined : from + at + pattern.length;
        }
        const m = pattern.exec(s);
        return m ? from + m.index + m[0].length : undefined;
      };
      return waitFor(find, { timeoutMs: DEADLINE_MS, message: `${message}; screen:\n${screen().slice(from)}` });
    },
    exited,
    pid,
    async hangUp() {
      await pid();
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
      await exited;
    },
    async alive() {
      return processAlive(await pid());
    },
  };
}

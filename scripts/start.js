#!/usr/bin/env node
// `npm start`: runs the primary (127.0.0.1:7001) and its replica
// (127.0.0.1:7002) locally for development, with their databases under ./data
// (TRACKER_DATA_DIR, PRIMARY_PORT and REPLICA_PORT move them). Each child's output goes to ours, every line
// prefixed with the tracker's name (`primary | `); Ctrl-C (or SIGTERM, SIGHUP, or the death of the process that
// started this one, or of npm) stops them all gracefully.
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dataDir = process.env.TRACKER_DATA_DIR ?? join(root, 'data');
mkdirSync(dataDir, { recursive: true });

const primaryPort = process.env.PRIMARY_PORT ?? '7001';
const replicaPort = process.env.REPLICA_PORT ?? '7002';
// Both trackers need the same cluster secret. Without TRACKER_SECRET they use
// the built-in development secret, and each logs a loud warning saying so.
const trackers = [
  {
    name: 'primary',
    bin: join(root, 'packages/tracker-primary/bin/tracker-primary.js'),
    args: ['--host', '127.0.0.1', '--port', primaryPort, '--replica', `127.0.0.1:${replicaPort}`, '--db', join(dataDir, 'primary.db')],
  },
  {
    name: 'replica',
    bin: join(root, 'packages/tracker-replica/bin/tracker-replica.js'),
    args: ['--host', '127.0.0.1', '--port', replicaPort, '--primary', `127.0.0.1:${primaryPort}`, '--db', join(dataDir, 'replica.db')],
  },
];

// TRACKER_DATA_DIR is this script's (and the client's), not a tracker option: the trackers would warn about it.
const childEnv = { ...process.env };
delete childEnv.TRACKER_DATA_DIR;
// The trackers' stderr is a pipe to us, so on their own they would log JSON without colours. Where our stderr is a
// terminal the logs are for reading: ask for what the trackers give a terminal (an explicit choice still wins).
const noColor = process.env.NO_COLOR !== undefined && process.env.NO_COLOR !== '';
if (process.stderr.isTTY) {
  childEnv.TRACKER_LOG_FORMAT ??= 'pretty';
  if (!noColor) childEnv.FORCE_COLOR ??= '1';
}

// The name in front of each line, padded alike so that the lines stay aligned; coloured on a terminal.
const labelWidth = Math.max(...trackers.map(({ name }) => name.length));
const LABEL_COLORS = { primary: 36, replica: 35 };
function label(name, stream) {
  const text = `${name.padEnd(labelWidth)} | `;
  return stream.isTTY && !noColor ? `\x1b[${LABEL_COLORS[name] ?? 1}m${text}\x1b[0m` : text;
}

// A reader of our output that has gone away (`npm start | head`) must not crash us: the trackers, in process groups
// of their own, would be left running. Their output is dropped from then on.
for (const stream of [process.stdout, process.stderr]) stream.on('error', () => undefined);

function relay(from, to, prefix) {
  createInterface({ input: from, crlfDelay: Infinity }).on('line', (line) => {
    if (!to.destroyed) to.write(`${prefix}${line}\n`);
  });
}

const children = trackers.map(({ name, bin, args }) => {
  // Each tracker in a process group of its own: Ctrl-C signals the terminal's foreground group, and a
  // tracker that got SIGINT from the terminal and then SIGTERM from us took the second as "exit now".
  // We forward one SIGTERM to each instead.
  const child = spawn(process.execPath, [bin, ...args], { stdio: ['ignore', 'pipe', 'pipe'], detached: true, env: childEnv });
  relay(child.stdout, process.stdout, label(name, process.stdout));
  relay(child.stderr, process.stderr, label(name, process.stderr));
  child.on('exit', (code, signal) => {
    if (!stopping) {
      console.error(`npm start: ${name} exited (${signal ?? code}); stopping the others`);
      stop(code === 0 ? 1 : (code ?? 1));
    }
  });
  return child;
});

// No process.exit: we leave once both trackers have exited and their pipes are drained, so that their last log
// lines (`tracker stopped`) are passed on rather than cut off.
let stopping = false;
function stop(exitCode = 0) {
  if (stopping) return;
  stopping = true;
  process.exitCode = exitCode;
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
}

// SIGHUP: the terminal went away. The trackers, in process groups of their own, do not get it from the terminal.
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(signal, () => stop(0));

// npm forwards SIGTERM to the shell that runs this script (`sh -c "node scripts/start.js"`), not to us: dash
// does not exec its one command, so the shell dies of the signal and we are left re-parented, with the trackers
// holding the ports and databases. No signal tells us; a new parent does (process.ppid reads it afresh).
// npm killed outright (SIGKILL, the OOM killer) leaves that shell running, waiting for us: then it is the shell
// that gets a new parent. So when npm's script shell started us, we watch npm through it (Linux: /proc).
const parentPid = process.ppid;
const npmPid = process.env.npm_lifecycle_event !== undefined && isShell(parentPid) ? parentOf(parentPid) : undefined;

/** The parent of process `pid` (Linux); undefined when it cannot be read (gone, or no /proc). */
function parentOf(pid) {
  try {
    // `pid (comm) state ppid ...`: comm may hold spaces and parentheses, so read after its last ')'.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return undefined;
  }
}

/** Whether process `pid` is a shell (Linux), as npm's script shell is; a shell that exec'd us is not our parent. */
function isShell(pid) {
  try {
    return ['sh', 'dash', 'bash', 'zsh', 'ash'].includes(readFileSync(`/proc/${pid}/comm`, 'utf8').trim());
  } catch {
    return false;
  }
}

setInterval(() => {
  if (stopping) return;
  if (process.ppid !== parentPid) {
    console.error(`npm start: the process that started this one (pid ${parentPid}) is gone; stopping the trackers`);
    stop(0);
  } else if (npmPid !== undefined) {
    // Unreadable (undefined) says nothing: a shell that died is caught above, by our own new parent.
    const shellParent = parentOf(parentPid);
    if (shellParent !== undefined && shellParent !== npmPid) {
      console.error(`npm start: npm (pid ${npmPid}) is gone; stopping the trackers`);
      stop(0);
    }
  }
}, 500).unref();

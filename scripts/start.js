#!/usr/bin/env node
// `npm start`: runs the trackers locally for development, with their
// databases under ./data. Each child's output goes to this terminal; Ctrl-C
// (or SIGTERM) stops them all gracefully.
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dataDir = process.env.TRACKER_DATA_DIR ?? join(root, 'data');
mkdirSync(dataDir, { recursive: true });

const trackers = [
  {
    name: 'primary',
    bin: join(root, 'packages/tracker-primary/bin/tracker-primary.js'),
    args: ['--host', '127.0.0.1', '--port', process.env.PRIMARY_PORT ?? '7001', '--db', join(dataDir, 'primary.db')],
  },
];

const children = trackers.map(({ name, bin, args }) => {
  const child = spawn(process.execPath, [bin, ...args], { stdio: 'inherit' });
  child.on('exit', (code, signal) => {
    if (!stopping) {
      console.error(`npm start: ${name} exited (${signal ?? code}); stopping the others`);
      stop(code === 0 ? 1 : (code ?? 1));
    }
  });
  return child;
});

let stopping = false;
function stop(exitCode = 0) {
  if (stopping) return;
  stopping = true;
  let alive = children.filter((c) => c.exitCode === null && c.signalCode === null);
  if (alive.length === 0) process.exit(exitCode);
  for (const child of alive) {
    child.once('exit', () => {
      alive = alive.filter((c) => c !== child);
      if (alive.length === 0) process.exit(exitCode);
    });
    child.kill('SIGTERM');
  }
}

process.on('SIGINT', () => stop(0));
process.on('SIGTERM', () => stop(0));

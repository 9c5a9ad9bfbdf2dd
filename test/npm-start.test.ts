/**
 * `npm start` (scripts/start.js): a primary and its replica run together,
 * converge, and stop gracefully when start.js is told to stop.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import t from 'tap';
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

t.test('npm start runs a primary and its replica, which converge; Ctrl-C stops both gracefully', async (t) => {
  const dir = await makeTempDir(t, 'tracker-start-test-');
  const [primaryPort, replicaPort] = (await freePorts(2)) as [number, number];
  const proc = spawn(process.execPath, [path.join(ROOT, 'scripts/start.js')], {
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
  /** The trackers' process ids, from their log lines. */
  const pids = (): Map<string, number> => {
    const found = new Map<string, number>();
    for (const line of logLines(err)) {
      if (typeof line['name'] === 'string' && typeof line['pid'] === 'number') found.set(line['name'], line['pid']);
    }
    return found;
  };
  t.teardown(async () => {
    for (const pid of pids().values()) if (processAlive(pid)) process.kill(pid, 'SIGKILL');
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    await exited;
  });

  await waitFor(() => /^tracker-primary ready on /m.test(out) && /^tracker-replica ready on /m.test(out), {
    timeoutMs: DEADLINE_MS,
    message: `both ready lines (stdout so far: ${JSON.stringify(out)})`,
  });
  t.match(out, new RegExp(`^tracker-primary ready on 127\\.0\\.0\\.1:${primaryPort} \\(role=primary `, 'm'));
  t.match(out, new RegExp(`^tracker-replica ready on 127\\.0\\.0\\.1:${replicaPort} \\(role=replica `, 'm'));
  const children = await waitFor(() => (pids().has('tracker-primary') && pids().has('tracker-replica') ? pids() : undefined), {
    timeoutMs: DEADLINE_MS,
    message: 'the trackers log lines',
  });

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
  process.kill(-(proc.pid as number), 'SIGINT');
  const stopped = await Promise.race([exited, new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), DEADLINE_MS).unref())]);
  t.same(stopped, { code: 0, signal: null }, 'npm start exits 0 on Ctrl-C');
  for (const [name, pid] of children) t.notOk(processAlive(pid), `${name} (pid ${pid}) is gone`);
  t.equal(err.match(/tracker stopped/g)?.length, 2, 'both trackers stopped gracefully');
  t.notMatch(err, /second signal/, 'each got one signal, not the terminal\'s and then ours');
});

/**
 * Leaving the client withdraws its shares (docs/client.md, "Sessions and
 * the registry"), whichever way it leaves: SIGTERM at the prompt (exit 0,
 * as after `quit`), the terminal going away (SIGHUP), and SIGTERM in the
 * middle of a script (exit 143). Another member's `list_files` shows the
 * file gone at once, not after the session's TTL.
 */
import path from 'node:path';
import t from 'tap';
import { spawnClient } from './helpers/client.js';
import { send } from './helpers/commands.js';
import { makeFile, makeGroup } from './helpers/peers.js';
import { spawnPty } from './helpers/pty.js';
import { makeTempDir, startTracker } from './helpers/tracker.js';
import type { RunningTracker, TeardownHost } from './helpers/tracker.js';
import { waitFor } from './helpers/wire.js';
import type { WireClient } from './helpers/wire.js';

const PIECE = 64 * 1024;

interface Setup {
  tracker: RunningTracker;
  /** The other member's connection and session, to look at `list_files`. */
  c: WireClient;
  session: bigint;
  /** The file to share (absolute path) and the sharer's data dir. */
  file: string;
  dataDir: string;
}

/** A tracker, a group `g` owned by carol with `sharer` as a member, and a file to share. */
async function setUp(t: TeardownHost, sharer: string): Promise<Setup> {
  const tracker = await startTracker(t);
  const { c, session } = await makeGroup(t, tracker.port, 'g', 'carol', [sharer]);
  const dir = await makeTempDir(t);
  await makeFile(dir, 'big.bin', 3 * PIECE + 1);
  return { tracker, c, session, file: path.join(dir, 'big.bin'), dataDir: path.join(dir, 'data') };
}

async function listFiles(s: Setup): Promise<string> {
  return (await send(s.c, ['list_files', 'g'], s.session)).payload;
}

/** A prompt logged in as bob, sharing big.bin in g. */
async function sharingAtPrompt(t: TeardownHost, s: Setup): Promise<Awaited<ReturnType<typeof spawnPty>>> {
  const home = await makeTempDir(t, 'tracker-client-home-');
  const term = await spawnPty(t, ['--tracker', s.tracker.address, '--data-dir', s.dataDir], { HOME: home, NO_COLOR: '1', TRACKER_CLIENT_HISTORY: '' }, { plainNode: true });
  let at = await term.waitScreen(`${s.tracker.address} (primary)> `, 'the prompt');
  term.type('login bob bob-pw\r');
  at = await term.waitScreen('OK logged in as bob', 'the login', at);
  term.type(`upload_file ${s.file} g 64k\r`);
  await term.waitScreen('OK shared big.bin seeders=1', 'the upload', at);
  return term;
}

t.test('SIGTERM at the prompt leaves like quit: the share is withdrawn, exit 0', async (t) => {
  const s = await setUp(t, 'bob');
  const term = await sharingAtPrompt(t, s);
  t.match(await listFiles(s), /^OK 1\nbig\.bin .*seeders=1$/, 'shared');
  process.kill(await term.pid(), 'SIGTERM');
  t.equal(await term.exited, 0, 'exit 0, as after quit');
  t.equal(await listFiles(s), 'OK 0', 'withdrawn before the client exited');
});

t.test('the terminal going away (SIGHUP) withdraws the share too', async (t) => {
  const s = await setUp(t, 'bob');
  const term = await sharingAtPrompt(t, s);
  t.match(await listFiles(s), /^OK 1\n/, 'shared');
  await term.hangUp();
  await waitFor(async () => (await listFiles(s)) === 'OK 0', { timeoutMs: 10_000, message: 'the share withdrawn after the hang-up' });
  await waitFor(async () => !(await term.alive()), { timeoutMs: 10_000, message: 'the client gone after the hang-up' });
  t.pass('withdrawn, and the client left');
});

t.test('SIGTERM in the middle of a script: the share is withdrawn, exit 143', async (t) => {
  const s = await setUp(t, 'bob');
  // A script on stdin that is not over: the client waits for its next line.
  const client = await spawnClient(t, ['--tracker', s.tracker.address, '--data-dir', s.dataDir]);
  client.proc.stdin?.write(`login bob bob-pw\nupload_file ${s.file} g 64k\n`);
  await client.waitOut('OK shared big.bin seeders=1');
  t.match(await listFiles(s), /^OK 1\n/, 'shared');
  client.proc.kill('SIGTERM');
  const r = await client.exited;
  t.same({ code: r.code, signal: r.signal }, { code: 143, signal: null }, '128 + 15, after leaving cleanly');
  t.match(r.stderr, 'tracker-client: stopped by SIGTERM');
  t.equal(await listFiles(s), 'OK 0', 'withdrawn before the client exited');
});

t.test('leaving is bounded when the tracker does not answer', async (t) => {
  const s = await setUp(t, 'bob');
  const client = await spawnClient(t, ['--tracker', s.tracker.address, '--data-dir', s.dataDir]);
  client.proc.stdin?.write(`login bob bob-pw\nupload_file ${s.file} g 64k\n`);
  await client.waitOut('OK shared big.bin seeders=1');
  // The tracker hangs: its connections stay open, nothing is answered.
  s.tracker.proc.kill('SIGSTOP');
  t.teardown(() => s.tracker.proc.kill('SIGCONT'));
  const start = Date.now();
  client.proc.kill('SIGTERM');
  const r = await client.exited;
  const took = Date.now() - start;
  t.equal(r.code, 143);
  // stop_share waits 2 s for its answer, the connection 1 s to close.
  t.ok(took < 8000, `left in ${took} ms`);
});

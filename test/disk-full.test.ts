/**
 * A full disk is a fault of the moment, not a reason to stop: writes are
 * refused with a clear `ERR INTERNAL … the disk is full …`, reads and
 * sessions go on, nothing answered `OK` is lost (not even across a crash
 * while the disk is full), and writes resume by themselves once there is
 * room again (docs/operations.md, "The disk is full").
 *
 * A tracker has two files. The log is committed before anyone is answered:
 * when it cannot grow, the batch is refused and undone in the memory state.
 * The state file is only a checkpoint, which a worker thread (the state
 * writer) replays the log into: when it cannot grow, the tracker serves
 * from memory and goes on taking writes, `diskFull` is true, and the writer
 * retries with a growing delay (up to MAX_STATE_RETRY_MS) until it can write
 * again; the log holds every change meanwhile.
 *
 * The disk is a real one: a small tmpfs mounted for the test (root only;
 * CI runs as root), filled with a file to ENOSPC and freed by deleting it.
 * The ChangeLog tests put one of its two files on that disk and the other
 * on a roomy one, to reach each failure on its own.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import Database from 'better-sqlite3';
import pino from 'pino';
import t from 'tap';
import type { Test } from 'tap';
import { ChangeLog, LogStore, Store, logPathFor } from '@tracker-cluster/tracker-core';
import type { ChangeBody } from '@tracker-cluster/tracker-core';
import { startCluster, waitForConvergence } from './helpers/cluster.js';
import { startTracker } from './helpers/tracker.js';
import { connect, waitFor } from './helpers/wire.js';
import type { WireClient } from './helpers/wire.js';
import { expectAnswer, login, signUp, status } from './helpers/commands.js';

const DISK_FULL = 'ERR INTERNAL the change could not be stored: the disk is full; nothing was applied';
/** Longest wait between two attempts of the state writer while the disk is full (MAX_STATE_RETRY_MS in change-log.ts). */
const MAX_STATE_RETRY_MS = 10_000;
/** How long a test waits for the state file to be written again once there is room: one retry delay at most, with a margin. */
const RETRY_WAIT_MS = MAX_STATE_RETRY_MS + 10_000;

/** A fresh tmpfs of `sizeKb`, unmounted in teardown (lazily, so that a file still open cannot stop it). */
function smallDisk(t: Test, sizeKb: number): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tracker-small-disk-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeKb}k,mode=0700`, 'tmpfs', dir], { stdio: 'pipe' });
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  t.teardown(() => {
    execFileSync('umount', ['-l', dir]);
    rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}

/** Mounting needs root (CI runs as root); elsewhere these tests are skipped, and say why. */
const SKIP = process.getuid?.() === 0 ? false : 'mounting a small tmpfs to fill needs root';

/** Fills `dir`'s filesystem with one file until ENOSPC; returns a function that frees the space again. */
function fill(dir: string): () => void {
  const file = path.join(dir, 'filler');
  const fd = openSync(file, 'w');
  try {
    for (const size of [256 * 1024, 4096, 512]) {
      const chunk = Buffer.alloc(size, 0x55);
      for (;;) {
        try {
          writeSync(fd, chunk);
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code === 'ENOSPC') break;
          throw error;
        }
      }
    }
  } finally {
    closeSync(fd);
  }
  return () => rmSync(file);
}

/** A pino logger whose lines are kept, to check what the operator is told. */
function capturingLogger(): { logger: pino.Logger; lines: string[] } {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      done();
    },
  });
  return { logger: pino({ level: 'info' }, sink), lines };
}

function userCreated(user: string): ChangeBody {
  return { type: 'user_created', user, salt: `salt-${user}`, hash: `hash-${user}`, params: 'scrypt:N=1024,r=8,p=1,len=32', at: 1000 };
}

function openLog(t: Test, stateFile: string, logFile: string, stateCommitMs: number): { store: Store; logStore: LogStore; log: ChangeLog; lines: string[] } {
  const store = Store.open(stateFile, 'NORMAL');
  const logStore = LogStore.open(logFile);
  const { logger, lines } = capturingLogger();
  const log = new ChangeLog(store, logStore, logger, {}, { stateCommitMs });
  t.teardown(async () => {
    await log.close();
    store.close();
    logStore.close();
  });
  return { store, logStore, log, lines };
}

/** `seq` recorded in a state or log file, read by a connection of its own. */
function seqOnDisk(file: string): number {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    return Number(db.prepare("SELECT value FROM meta WHERE key = 'seq'").pluck().get() ?? 0);
  } finally {
    db.close();
  }
}

t.test('the state file on a full disk: served from memory, retried by the state writer, diskFull until it is written again, and nothing is lost', { skip: SKIP }, async (t) => {
  const disk = smallDisk(t, 1024);
  const roomy = mkdtempSync(path.join(os.tmpdir(), 'tracker-roomy-'));
  t.teardown(() => rmSync(roomy, { recursive: true, force: true }));
  const stateFile = path.join(disk, 'tracker.db');
  // The state writer tries every 20 ms by itself: while the disk is full, every attempt and retry is its own.
  const { log, lines } = openLog(t, stateFile, logPathFor(path.join(roomy, 'tracker.db')), 20);
  const fullLine = (l: string): boolean => l.includes('the disk is full: the state file cannot be written');

  await log.append(userCreated('alice')).durable;
  await log.drain();
  t.equal(seqOnDisk(stateFile), 1, 'the state file was written while there was room');
  t.notOk(log.diskFull);

  const free = fill(disk);
  for (let i = 0; i < 200; i++) await log.append(userCreated(`u${i}`)).durable;
  t.equal(log.seq, 201, 'every change is answered: the log is on another disk');
  await waitFor(() => log.diskFull, { message: 'the state writer to find the disk full' });
  t.equal(seqOnDisk(stateFile), 1, 'the state file stays at its last commit, behind the log');
  t.equal(log.stateFileSeq, 1);
  t.ok(log.state.user('u199') && log.state.user('alice'), 'the tracker serves every change from memory');
  t.ok(lines.some(fullLine), 'the operator is told');
  const more = log.append(userCreated('bob'));
  await more.durable;
  t.ok(log.state.user('bob'), 'changes go on while the state file cannot be written');
  await log.drain(); // returns: the writer reports that it could not write
  t.equal(seqOnDisk(stateFile), 1, 'a drain() while the disk is full writes nothing either');
  t.ok(log.diskFull, 'diskFull stays true while the state file cannot be written');

  free();
  // No drain(): the writer's own retry, after its backed-off delay, must write the file.
  await waitFor(() => !log.diskFull && log.stateFileSeq === log.seq, {
    message: 'the state writer to retry and catch up once there is room',
    timeoutMs: RETRY_WAIT_MS,
  });
  t.equal(seqOnDisk(stateFile), 202, 'once there is room the state file catches up with the log by itself');
  const db = new Database(stateFile, { readonly: true, fileMustExist: true });
  const users = db.prepare('SELECT name FROM users ORDER BY name').pluck().all() as string[];
  db.close();
  t.same(users, ['alice', 'bob', ...Array.from({ length: 200 }, (_, i) => `u${i}`)].sort(), 'with every change answered meanwhile');
  t.ok(lines.some((l) => l.includes('the state file is written again')), 'the operator is told it is written again');
  t.equal(lines.filter(fullLine).length, 1, 'one "disk full" line for the episode, however many attempts failed');
});

t.test('a state writer restarted while the disk is full reports afresh: the old one\'s "full" does not outlive it', { skip: SKIP }, async (t) => {
  const disk = smallDisk(t, 1024);
  const roomy = mkdtempSync(path.join(os.tmpdir(), 'tracker-roomy-'));
  t.teardown(() => rmSync(roomy, { recursive: true, force: true }));
  const stateFile = path.join(disk, 'tracker.db');
  // The writer commits only on drain(): no retry of its own can report or clear anything behind the test's back.
  const { log } = openLog(t, stateFile, logPathFor(path.join(roomy, 'tracker.db')), 60_000);
  await log.append(userCreated('alice')).durable;
  await log.drain();
  const snapshot = log.snapshot();
  const snapshotFile = path.join(roomy, 'snapshot.db');
  writeFileSync(snapshotFile, snapshot.image);

  const free = fill(disk);
  await log.append(userCreated('bob')).durable;
  await log.drain();
  t.ok(log.diskFull, 'the writer finds the disk full');
  // Installing a snapshot stops the writer and starts another; on a full disk the swap itself fails.
  await t.rejects(
    log.installSnapshot(snapshotFile, snapshot.position, 'another-history', snapshot.epoch, 'generation-2'),
    { code: 'SQLITE_FULL' },
    'the state file cannot be swapped on a full disk',
  );
  t.notOk(log.diskFull, 'the new writer has reported nothing yet: the old one\'s report went with it');
  t.ok(log.state.user('bob'), 'memory still holds every change');

  free();
  await log.drain();
  t.equal(log.stateFileSeq, log.seq, 'the new writer catches the file up at its first attempt');
  t.equal(seqOnDisk(stateFile), 2);
  t.notOk(log.diskFull, 'and nothing says the disk is full: it was never full for this writer');
});

t.test('the log on a full disk: the batch is refused with a clear error and undone, and writes resume once there is room', { skip: SKIP }, async (t) => {
  const disk = smallDisk(t, 1024);
  const roomy = mkdtempSync(path.join(os.tmpdir(), 'tracker-roomy-'));
  t.teardown(() => rmSync(roomy, { recursive: true, force: true }));
  const stateFile = path.join(roomy, 'tracker.db');
  // Only drain() writes the state file.
  const { log, lines } = openLog(t, stateFile, path.join(disk, 'tracker.db-log'), 60_000);

  await log.append(userCreated('alice')).durable;
  const free = fill(disk);
  let refused: Error | undefined;
  const accepted: string[] = [];
  for (let i = 0; i < 2000 && refused === undefined; i++) {
    const user = `u${i}`;
    try {
      await log.append(userCreated(user)).durable;
      accepted.push(user);
    } catch (error) {
      refused = error as Error;
      t.notOk(log.state.user(user), 'the refused change is undone in the memory state');
    }
  }
  t.ok(refused, 'a write is refused once the log cannot grow');
  t.equal(refused?.message, 'the change could not be stored: the disk is full; nothing was applied');
  t.equal((refused as { code?: string } | undefined)?.code, 'INTERNAL');
  t.equal(log.seq, 1 + accepted.length, 'the log holds exactly the accepted changes');
  for (const user of accepted) if (!log.state.user(user)) t.fail(`${user} was accepted but is gone`);
  t.ok(log.diskFull, 'diskFull is true');
  t.ok(lines.some((l) => l.includes('the disk is full: batch rolled back')), 'the operator is told');

  free();
  await log.append(userCreated('after')).durable;
  t.ok(log.state.user('after'), 'writes resume once there is room');
  t.notOk(log.diskFull, 'diskFull is false again once a batch is committed');
  await log.drain();
  t.equal(seqOnDisk(stateFile), log.seq, 'the state file gets every accepted change');
  const db = new Database(stateFile, { readonly: true, fileMustExist: true });
  const users = db.prepare('SELECT name FROM users ORDER BY name').pluck().all() as string[];
  db.close();
  t.same(users, ['alice', ...accepted, 'after'].sort(), '... and none of the refused one');
});

/** One unlabelled sample of the tracker's /metrics. */
async function metric(adminUrl: string | undefined, name: string): Promise<number | undefined> {
  const text = await (await fetch(`${adminUrl}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.slice(name.length + 1));
}

async function createGroups(c: WireClient, session: bigint, prefix: string, max: number): Promise<{ created: string[]; refusal: string | undefined }> {
  const created: string[] = [];
  for (let i = 0; i < max; i++) {
    const group = `${prefix}${i}`;
    const { payload } = await c.request(`create_group ${group}`, session);
    if (payload !== 'OK group created') return { created, refusal: payload };
    created.push(group);
  }
  return { created, refusal: undefined };
}

async function groupNames(c: WireClient, session: bigint): Promise<string[]> {
  const { payload } = await c.request('list_groups', session);
  return payload
    .split('\n')
    .slice(1)
    .map((line) => line.split(' ')[0] as string)
    .sort();
}

t.test('tracker-primary on a full disk: refuses writes clearly, serves reads, loses nothing across kill -9, and recovers by itself', { skip: SKIP }, async (t) => {
  const disk = smallDisk(t, 4096);
  // One user fills the disk with groups: the group limit must not refuse them first.
  const first = await startTracker(t, { dir: disk, args: ['--log-level', 'info', '--admin-port', '0', '--max-groups-per-user', '1000000'] });
  const c = await connect(first.port);
  t.teardown(() => c.close());
  const olga = await signUp(c, 'olga');
  await expectAnswer(c, 'create_group before', 'OK group created', olga);

  const free = fill(disk);
  const { created, refusal } = await createGroups(c, olga, 'g', 20_000);
  t.equal(refusal, DISK_FULL, 'a write is refused with a clear error once the disk is full');
  t.equal((await c.request('create_group another', olga)).payload, DISK_FULL, 'and the next one too');
  t.equal(first.proc.exitCode, null, 'the tracker keeps running');
  t.equal(await metric(first.adminUrl, 'tracker_disk_full'), 1, 'and /metrics says the disk is full');

  // Reads and the session go on.
  await expectAnswer(c, 'ping', 'OK PONG');
  await expectAnswer(c, 'whoami', 'OK olga sessions=1', olga);
  const expected = ['before', ...created].sort();
  t.same(await groupNames(c, olga), expected, 'every group answered OK is listed, and no other');
  t.equal((await c.request('login olga olga-pw')).payload, DISK_FULL, 'a login is a write: refused the same way');
  const full = await status(c);

  // A crash while the disk is full, then room again: nothing answered OK is lost.
  await first.kill9();
  free();
  const second = await first.restart();
  const d = await connect(second.port);
  t.teardown(() => d.close());
  const after = await status(d);
  t.equal(after['seq'], full['seq'], 'the same seq after the restart');
  t.equal(after['log_hash'], full['log_hash'], 'and the same log_hash');
  t.same(await groupNames(d, olga), expected, 'the session and every acknowledged group survived');
  t.match(first.stderr(), /the disk is full/, 'the first process told the operator');

  // And once there is room, a running tracker takes writes again without a restart.
  const refill = fill(disk);
  const { refusal: again } = await createGroups(d, olga, 'h', 20_000);
  t.equal(again, DISK_FULL);
  refill();
  await waitFor(async () => (await d.request('create_group resumed', olga)).payload === 'OK group created', { message: 'a write to succeed once the disk has room' });
  await expectAnswer(d, 'whoami', 'OK olga sessions=1', olga);
  // The state writer may be in a backed-off delay of up to MAX_STATE_RETRY_MS before its next attempt.
  await waitFor(async () => (await metric(second.adminUrl, 'tracker_disk_full')) === 0, { message: 'tracker_disk_full to fall back to 0', timeoutMs: RETRY_WAIT_MS });
  await waitFor(async () => (await metric(second.adminUrl, 'tracker_state_file_lag')) === 0, {
    message: 'the state file to catch up (tracker_state_file_lag 0)',
    timeoutMs: RETRY_WAIT_MS,
  });
  const loggedIn = await login(d, 'olga', 'olga-pw');
  t.not(loggedIn, 0n, 'a login works again');
  const stopped = await second.stop();
  t.equal(stopped.code, 0, 'SIGTERM still exits 0');
});

t.test('a replica on a full disk: the primary goes on degraded, the replica serves reads, and it catches up once there is room', { skip: SKIP }, async (t) => {
  const disk = smallDisk(t, 4096);
  const { primary, replica } = await startCluster(t, {
    primary: { args: ['--sync-timeout-ms', '200'] },
    replica: { dir: disk, args: ['--log-level', 'info'] },
  });
  const p = await connect(primary.port);
  t.teardown(() => p.close());
  const olga = await signUp(p, 'olga');
  await expectAnswer(p, 'create_group before', 'OK group created', olga);
  await waitForConvergence(primary, replica, { acked: true });

  const free = fill(disk);
  const groups = ['before'];
  for (let i = 0; i < 300; i++) {
    await expectAnswer(p, `create_group f${i}`, 'OK group created', olga);
    groups.push(`f${i}`);
  }
  await waitFor(async () => (await status(p))['degraded'] === '1', { message: 'the primary to go on without its replica (degraded=1)' });
  t.equal(replica.proc.exitCode, null, 'the replica keeps running');
  const r = await connect(replica.port);
  t.teardown(() => r.close());
  await expectAnswer(r, 'whoami', 'OK olga sessions=1', olga);
  t.ok((await groupNames(r, olga)).includes('before'), 'and serves reads from what it holds');

  free();
  await waitForConvergence(primary, replica, { acked: true, timeoutMs: 30_000 });
  t.same(await groupNames(r, olga), groups.sort(), 'every acknowledged write reached the replica');
  await waitFor(async () => (await status(p))['degraded'] === '0', { message: 'semi-sync to resume (degraded=0)' });
  t.match(replica.stderr(), /disk is full/, 'the replica told the operator');
});

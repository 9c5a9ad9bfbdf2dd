/**
 * The files behind a ChangeLog. The live state is in memory (`log.state`,
 * read by every request); the log file is the durable record, committed per
 * batch before anyone is answered; the state file is a checkpoint, written by
 * a worker thread (the StateWriter) that replays the log into it up to where
 * the log is synced to disk, at most every stateCommitMs (at once on
 * drain()). The file may lag the log, never lead it; opening catches it up
 * from the log and reads it into memory. A failed write of the file is fatal
 * (a full disk aside: retried, see test/disk-full.test.ts): the change log
 * refuses changes from then on, and every change answered is in the log.
 * On real temporary SQLite files; a crash is `crash()`: the change log
 * abandoned (the open batch neither committed nor settled, the writer
 * stopped without writing), then both connections closed.
 */
import { createHash } from 'node:crypto';
import { statSync } from 'node:fs';
import { rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Writable } from 'node:stream';
import Database from 'better-sqlite3';
import pino from 'pino';
import t from 'tap';
import { GENESIS_HASH, LogMismatchError, STATE_SYNCHRONOUS, StoreOpenError, Tracker, decodeChange, encodeChange, logPathFor, nextLogHash, parseOptions } from '@tracker-cluster/tracker-core';
import type { ChangeBody, Store } from '@tracker-cluster/tracker-core';
import type { Test } from './fixtures/env.js';
import { silent, tempDb, waitFor } from './fixtures/env.js';
import { crash, diskSeq, dumpLog, dumpTables, openLog, openPair, reader, userCreated } from './fixtures/state.js';
import { signUp, startTracker } from './fixtures/tracker.js';

/** h_n = SHA-256(h_{n-1} bytes ‖ change text), computed here without the package's helper. */
function independentHash(texts: readonly string[], from = Buffer.alloc(32)): string {
  let h = from;
  for (const text of texts) h = createHash('sha256').update(Buffer.concat([h, Buffer.from(text, 'utf8')])).digest();
  return h.toString('hex');
}

/** The state writer's timer never fires during a test: only drain() and close() write the state file. */
const NO_STATE_TIMER = { stateCommitMs: 60_000 };

/**
 * A fault of the state file that is not a full disk: a trigger in the file's
 * schema, so that the state writer's own connection runs it too, failing the
 * replay of the change that creates the user "poison".
 */
const POISON = "CREATE TRIGGER poison BEFORE INSERT ON users WHEN NEW.name = 'poison' BEGIN SELECT RAISE(ABORT, 'poisoned state file'); END";
const REFUSED = 'the tracker cannot store changes; it must be restarted';

/** Opens `file` with a one-off connection, runs `read` inside one read transaction (one snapshot), closes it. */
function peek<T>(file: string, read: (db: Database.Database) => T): T {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    return db.transaction(() => read(db))();
  } finally {
    db.close();
  }
}

const logTexts = (db: Database.Database): string[] => db.prepare('SELECT change FROM sync_log ORDER BY seq').pluck().all() as string[];
const userNames = (db: Database.Database): string[] => db.prepare('SELECT name FROM users ORDER BY name').pluck().all() as string[];
const stateHash = (db: Database.Database): string | undefined =>
  db.prepare("SELECT value FROM meta WHERE key = 'log_hash'").pluck().get() as string | undefined;
/** The user each log row creates (undefined for other changes), in log order. */
const loggedUsers = (db: Database.Database): Array<string | undefined> =>
  logTexts(db).map((text) => {
    const body = decodeChange(text).body;
    return body.type === 'user_created' ? body.user : undefined;
  });

/** Removes a closed SQLite file with its WAL and shared-memory files. */
async function removeDb(file: string): Promise<void> {
  for (const suffix of ['', '-wal', '-shm']) await rm(`${file}${suffix}`, { force: true });
}

/** The queries both the memory state and the state file answer alike. */
type Queries = Pick<Store, 'user' | 'session' | 'listGroups' | 'listMembers' | 'listRequests' | 'counts'>;

const USERS = ['alice', 'bob', 'carol', 'dave'];
const SESSIONS = ['18446744073709551615', '9007199254740993'];

/** What a state answers about the users, sessions and group `g` these tests make. */
function answers(state: Queries): Record<string, unknown> {
  return {
    users: USERS.map((u) => state.user(u) ?? null),
    sessions: SESSIONS.map((id) => state.session(id) ?? null),
    groups: state.listGroups(),
    members: state.listMembers('g'),
    requests: state.listRequests('g'),
    counts: state.counts(),
  };
}

/** The tables of a state file written, without any crash, from `batches` (appended batch by batch, then drained). */
async function referenceTables(t: Test, batches: readonly ChangeBody[][]): Promise<Record<string, unknown[]>> {
  const ref = await openLog(t, {}, await tempDb(t, 'reference.db'), NO_STATE_TIMER);
  for (const batch of batches) await Promise.all(batch.map((body) => ref.log.append(body).durable));
  await ref.log.drain();
  return dumpTables(ref.store.db);
}

// --- crash recovery ---------------------------------------------------------

t.test('crash recovery: the state file catches up by replaying the log, and the chain goes on', async (t) => {
  const file = await tempDb(t);
  const logFile = logPathFor(file);
  const first = openPair(file, {}, NO_STATE_TIMER);
  t.teardown(() => crash(first)); // only if an assertion threw before the crash below

  // Three changes in two batches, then drain(): the writer writes the state file up to seq 3.
  const early: ChangeBody[][] = [
    [userCreated('alice')],
    [userCreated('bob'), { type: 'session_opened', session: '18446744073709551615', user: 'alice', at: 10, expires: 1000 }],
  ];
  await first.log.append(early[0]![0]!).durable;
  first.log.append(early[1]![0]!);
  await first.log.append(early[1]![1]!).durable;
  await first.log.drain();
  t.equal(peek(file, diskSeq), 3, 'the state file is at seq 3');
  t.equal(first.log.stateFileSeq, 3, '... as the writer reported');

  // More batches, answered (durable) and served from memory, but never written to the state file.
  const later: ChangeBody[][] = [
    [{ type: 'group_created', group: 'g', owner: 'alice', at: 20 }],
    [
      { type: 'join_requested', group: 'g', user: 'bob', at: 21 },
      { type: 'request_accepted', group: 'g', user: 'bob', at: 22 },
    ],
    [{ type: 'session_opened', session: '9007199254740993', user: 'bob', at: 23, expires: 2000 }],
    [
      { type: 'sessions_touched', sessions: [['18446744073709551615', 3000]] },
      userCreated('carol', 24),
      { type: 'join_requested', group: 'g', user: 'carol', at: 25 },
    ],
  ];
  for (const batch of later) {
    const appended = batch.map((body) => first.log.append(body));
    await Promise.all(appended.map((a) => a.durable));
  }
  const seq = first.log.seq;
  const hash = first.log.logHash;
  t.equal(seq, 10);
  const served = answers(first.state); // what this tracker served and answered, from memory
  t.same(first.state.group('g'), { name: 'g', owner: 'alice' }, 'the live state has every answered change');
  t.equal(peek(file, diskSeq), 3, 'the state file still lags at seq 3');
  t.equal(first.log.stateFileSeq, 3);
  t.equal(peek(logFile, diskSeq), 10, 'the log file is at seq 10');

  await crash(first);
  t.notOk(first.store.db.open, 'crashed: the state file is closed');
  t.notOk(first.logStore.db.open, '... and so is the log file');
  t.equal(peek(file, diskSeq), 3, 'after the crash the state file is at its last commit');
  t.same(peek(file, (db) => db.prepare('SELECT name FROM groups').pluck().all()), [], 'without the group made after it');
  const texts = peek(logFile, logTexts);
  t.equal(texts.length, 10, 'the log file has every answered change');
  t.equal(independentHash(texts), hash);

  const second = await openLog(t, {}, file, NO_STATE_TIMER);
  t.equal(second.log.seq, 10, 'the reopened log resumes at the log head');
  t.equal(second.log.logHash, hash, '... with its hash');
  t.equal(second.log.stateFileSeq, 10, 'the state file was caught up at open');
  t.equal(peek(file, diskSeq), 10, '... and the catch-up was committed to it');
  t.equal(peek(file, stateHash), hash, '... with the log hash');
  t.same(dumpTables(second.store.db), await referenceTables(t, [...early, ...later]), 'every table as a tracker that never crashed writes it');
  t.same(answers(second.state), served, 'the memory state answers as it did before the crash');
  t.same(answers(second.store), served, '... and so does the state file');
  t.same(second.state.group('g'), { name: 'g', owner: 'alice' }, 'the group is back');
  t.ok(second.state.isMember('g', 'bob'));
  t.same(second.state.listRequests('g'), ['carol']);
  t.same(second.state.session('18446744073709551615'), { id: '18446744073709551615', user: 'alice', expires_at: 3000 }, 'sessions are back, touched');
  t.same(second.state.session('9007199254740993'), { id: '9007199254740993', user: 'bob', expires_at: 2000 });
  t.equal(second.log.barrier(), undefined, 'nothing pending after a catch-up');

  // The chain continues from the log head, through a second crash.
  const dave = second.log.append(userCreated('dave'));
  t.equal(dave.change.seq, 11);
  t.ok(second.state.user('dave'), 'a change is served from memory at once');
  await dave.durable;
  t.equal(second.log.logHash, nextLogHash(hash, encodeChange(dave.change)));
  t.same(second.state.listRequests('g'), ['carol']);
  t.equal(peek(file, diskSeq), 10, 'the state file does not have it yet');
  await crash(second);
  const third = await openLog(t, {}, file);
  t.equal(third.log.seq, 11);
  t.ok(third.state.user('dave'), 'replayed again after a second crash');
  t.equal(peek(file, diskSeq), 11);
  await third.log.append(userCreated('erin')).durable;
  await third.log.drain();
  const allTexts = peek(logFile, logTexts);
  t.same(allTexts.map((x) => decodeChange(x).seq), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12], 'one row per seq, no gap, no repeat');
  t.equal(third.log.logHash, independentHash(allTexts), 'the hash chains over the whole log');
  t.equal(peek(file, diskSeq), 12, 'drain() wrote the state file up to the log head');
  t.equal(peek(file, stateHash), third.log.logHash, 'the state file records it');
});

t.test('crash before the first state commit: the whole log is replayed, and the unanswered open batch is lost', async (t) => {
  const file = await tempDb(t);
  const first = openPair(file, {}, NO_STATE_TIMER);
  t.teardown(() => crash(first));
  for (const u of ['alice', 'bob', 'carol']) await first.log.append(userCreated(u)).durable;
  const served = answers(first.state);
  // Applied (the live state has it) but its batch is still open: nobody was answered when the crash comes.
  first.log.append(userCreated('dave'));
  t.ok(first.state.user('dave'));
  await crash(first);
  t.equal(peek(file, diskSeq), 0, 'nothing of it reached the state file');
  t.same(peek(file, userNames), []);
  t.same(peek(logPathFor(file), loggedUsers), ['alice', 'bob', 'carol'], 'the log has the answered changes, not the open batch');
  const second = await openLog(t, {}, file);
  t.equal(second.log.seq, 3);
  t.same(answers(second.state), served, 'the memory state answers as before the crash');
  t.notOk(second.state.user('dave'), 'without the change nobody was answered for');
  t.same(dumpTables(second.store.db), await referenceTables(t, [[userCreated('alice')], [userCreated('bob')], [userCreated('carol')]]));
});

t.test('a failed write of the state file is fatal and loses nothing answered: the file stays at its last commit, and a restart catches it up', async (t) => {
  // There is no rebuilding from the log any more: a state-file write that fails
  // for any reason but a full disk stops the change log. The file is left at
  // its last commit (the writer's transaction is rolled back whole), the log
  // has every answered change, and a restart without the fault catches up.
  const file = await tempDb(t);
  const logFile = logPathFor(file);
  const fatals: Error[] = [];
  const opened = openPair(file, { onFatal: (e) => fatals.push(e as Error) }, NO_STATE_TIMER);
  t.teardown(() => crash(opened)); // only if an assertion threw before the close below
  const { log } = opened;

  await log.append(userCreated('alice')).durable;
  await log.drain();
  t.equal(peek(file, diskSeq), 1, 'the state file is at seq 1');
  opened.store.db.exec(POISON);

  await log.append(userCreated('poison')).durable; // the log commit is the durable point; the file is written later
  await log.append(userCreated('bob')).durable;
  t.equal(fatals.length, 0, 'nothing has failed yet: the state file was not written');
  t.same(peek(logFile, loggedUsers), ['alice', 'poison', 'bob'], 'both changes are in the log');
  t.ok(log.state.user('poison') && log.state.user('bob'), 'and served from memory');

  await log.drain(); // the writer's replay fails on the trigger
  t.equal(fatals.length, 1, 'onFatal ran once');
  t.match(fatals[0]?.message, /poisoned state file/, 'with the error of the state file');
  t.equal(peek(file, diskSeq), 1, 'the state file stays at its last commit');
  t.same(peek(file, userNames), ['alice'], '... without a trace of the failed write');
  t.equal(log.stateFileSeq, 1);
  t.throws(() => log.append(userCreated('carol')), { code: 'INTERNAL', message: REFUSED }, 'later changes are refused');
  t.throws(() => log.snapshot(), { code: 'INTERNAL', message: REFUSED }, 'and no snapshot is offered');
  await log.close();
  opened.store.close();
  opened.logStore.close();
  t.equal(fatals.length, 1, 'close() after the failure blows up nothing else');
  t.same(peek(logFile, loggedUsers), ['alice', 'poison', 'bob'], 'the log has exactly the answered changes');

  // A restart with the fault still there cannot catch the file up: it does not start.
  t.throws(() => openPair(file), /poisoned state file/, 'a restart with the fault still in the file is refused');
  t.equal(peek(file, diskSeq), 1, 'the refused catch-up was rolled back');

  // Once the fault is gone, a restart replays the log into the file: nothing answered was lost.
  const fix = new Database(file);
  fix.exec('DROP TRIGGER poison');
  fix.close();
  const second = await openLog(t, {}, file, NO_STATE_TIMER);
  t.equal(second.log.seq, 3);
  t.equal(peek(file, diskSeq), 3, 'the state file caught up with the log');
  t.same(peek(file, userNames), ['alice', 'bob', 'poison']);
  t.ok(second.state.user('poison') && second.state.user('bob'), 'and so did the memory state');
  const carol = second.log.append(userCreated('carol'));
  t.equal(carol.change.seq, 4, 'the chain goes on');
  await carol.durable;
  await second.log.drain();
  t.equal(peek(file, diskSeq), 4, 'and the state file is written again');
});

t.test('a state file that cannot be written stops the change log (fail-stop), answering what is in the log', async (t) => {
  // The same poison, found by the writer on its own timer (no drain): writers
  // go on being answered until the failure is reported, then onFatal is
  // called once and every later change is refused. Every change answered is
  // in the log; the state file stays at its last commit.
  const file = await tempDb(t);
  const logFile = logPathFor(file);
  const fatals: Error[] = [];
  const { log, store } = await openLog(t, { onFatal: (e) => fatals.push(e as Error) }, file, { stateCommitMs: 0 });

  await log.append(userCreated('alice')).durable;
  await waitFor(() => log.stateFileSeq === 1, 'the writer to commit seq 1 by its timer');
  store.db.exec(POISON);

  const answered: string[] = [];
  let refusal: unknown;
  const deadline = Date.now() + 5000;
  for (let i = 0; refusal === undefined; i++) {
    if (Date.now() > deadline) throw new Error('timed out waiting for the state writer to fail');
    const user = i === 0 ? 'poison' : `u${i}`;
    try {
      await log.append(userCreated(user)).durable;
      answered.push(user);
    } catch (error) {
      refusal = error;
    }
  }
  t.equal(fatals.length, 1, 'onFatal ran once');
  t.match(refusal, { code: 'INTERNAL', message: REFUSED }, 'then changes are refused');
  t.equal(answered[0], 'poison', 'the change the state file could not take was answered: the log has it');
  t.same(peek(logFile, loggedUsers), ['alice', ...answered], 'the log has every answered change, and no other');
  t.equal(peek(file, diskSeq), 1, 'the state file stays at its last commit');
  t.equal(log.stateFileSeq, 1);
  await log.drain(); // must return: the writer writes nothing any more
  t.throws(() => log.append(userCreated('carol')), { code: 'INTERNAL', message: REFUSED }, 'still refused after drain()');
  t.equal(fatals.length, 1, 'and nothing else blew up');
});

t.test('close() refuses changes from its first moment, so the state cannot get one the log lacks', async (t) => {
  const opened = await openLog(t, {}, undefined, NO_STATE_TIMER);
  const { log, file } = opened;
  await log.append(userCreated('alice')).durable;
  const closing = log.close();
  t.throws(() => log.append(userCreated('late')), { code: 'INTERNAL' }, 'an append during close() is refused');
  await closing;
  t.notOk(opened.state.user('late'), 'the refused change was never applied');
  t.same(peek(file, userNames), ['alice'], 'the state file holds only what the log holds');
  t.equal(peek(file, diskSeq), peek(logPathFor(file), diskSeq), 'close() wrote the state file up to the log head');
  t.equal(log.stateFileSeq, 1);
});

// --- what another process sees ----------------------------------------------

t.test('the state file on disk never leads the log: the log has a batch when durable settles, the state file after drain()', async (t) => {
  const opened = await openLog(t, {}, undefined, NO_STATE_TIMER);
  const { log, file, logFile } = opened;
  const state = reader(t, file);
  const logDb = reader(t, logFile);
  for (let i = 1; i <= 3; i++) {
    const a = log.append(userCreated(`u${i}`));
    t.ok(opened.state.user(`u${i}`), `batch ${i}: the live state has it at once`);
    await a.durable;
    t.equal(diskSeq(logDb), i, '... the log file records it when durable settles');
    t.equal(logTexts(logDb).length, i, '... row included');
    t.equal(diskSeq(state), 0, '... the state file lags');
    t.same(userNames(state), []);
  }
  await log.drain();
  t.equal(diskSeq(state), 3, 'drain() has the writer commit the state file');
  t.equal(diskSeq(opened.store.db), 3, '... which the change log\'s own connection sees too');
  t.same(userNames(state), ['u1', 'u2', 'u3']);
  t.equal(stateHash(state), log.logHash);
  t.equal(diskSeq(logDb), 3);
});

t.test('the state file is synced at every commit, whatever its connection was opened with: retention trusts it', async (t) => {
  // The fixture opens the state file with synchronous=NORMAL, as a careless caller might.
  const opened = await openLog(t);
  t.equal(STATE_SYNCHRONOUS, 'FULL', 'the state writer opens the file with FULL');
  t.equal(opened.store.db.pragma('synchronous', { simple: true }), 2, 'and the change log sets its own connection to FULL (2)');
});

t.test('an idle state file is committed by itself within stateCommitMs', async (t) => {
  const { log, file, logFile } = await openLog(t, {}, undefined, { stateCommitMs: 20 });
  const state = reader(t, file);
  const logDb = reader(t, logFile);
  await log.append(userCreated('alice')).durable;
  log.append(userCreated('bob'));
  await log.append({ type: 'group_created', group: 'g', owner: 'alice', at: 1 }).durable;
  t.ok(diskSeq(state) <= diskSeq(logDb), 'the state is not ahead of the log');
  // The writer reports a commit once it is done: from then on every connection sees it.
  await waitFor(() => log.stateFileSeq === log.seq, 'the state writer\'s timer to commit the file');
  t.equal(diskSeq(state), log.seq, 'the state file is at the log head');
  t.same(userNames(state), ['alice', 'bob'], 'without drain() or another append');
  t.equal(state.prepare('SELECT owner FROM groups WHERE name = ?').pluck().get('g'), 'alice');
  t.equal(stateHash(state), log.logHash);
});

t.test('under a steady stream of batches the state file keeps up, always at a committed log position', async (t) => {
  const { log, file, logFile } = await openLog(t, {}, undefined, { stateCommitMs: 20 });
  const state = reader(t, file);
  const logDb = reader(t, logFile);
  const seen = new Set<number>();
  const deadline = Date.now() + 5000;
  let n = 0;
  // Keep appending, one batch at a time, until the state file has moved twice.
  while (seen.size < 2) {
    if (Date.now() > deadline) throw new Error('timed out waiting for the state file to be committed under load');
    await log.append(userCreated(`u${++n}`)).durable;
    // One snapshot of each file; the state is read first, so the log can only be further on.
    const onDisk = state.transaction(() => ({ seq: diskSeq(state), hash: stateHash(state), users: userNames(state).length }))();
    const logSeq = diskSeq(logDb);
    t.ok(onDisk.seq <= logSeq, `the state (${onDisk.seq}) never leads the log (${logSeq})`, { diagnostic: false });
    t.equal(onDisk.users, onDisk.seq, 'the state tables match the seq it records', { diagnostic: false });
    if (onDisk.seq > 0) {
      seen.add(onDisk.seq);
      const prefix = logTexts(logDb).slice(0, onDisk.seq);
      t.equal(onDisk.hash, independentHash(prefix), 'its log_hash is the hash of that log prefix', { diagnostic: false });
    }
  }
  t.pass(`the state file was committed at seq ${[...seen].join(', ')} while ${n} batches were appended`);
});

// --- pairing a state file with a log file -------------------------------------

t.test('a state file with an empty new log: the log starts at the state position', async (t) => {
  const file = await tempDb(t);
  const logFile = logPathFor(file);
  const first = openPair(file);
  await first.log.append(userCreated('alice')).durable;
  await first.log.append(userCreated('bob')).durable;
  const hash = first.log.logHash;
  await first.log.close();
  first.store.close();
  first.logStore.close();
  await removeDb(logFile); // a state file restored without its log

  const second = await openLog(t, {}, file, NO_STATE_TIMER);
  t.equal(second.log.seq, 2, 'no error, seq kept');
  t.equal(second.log.logHash, hash, 'log_hash kept');
  t.same(second.logStore.head(), { seq: 2, hash }, 'the new log is headed at the state position');
  t.same(second.logStore.base(), { seq: 2, hash }, '... and starts there');
  t.same(second.log.entriesAfter(0, 10), [], 'with no rows');
  const carol = second.log.append(userCreated('carol'));
  t.equal(carol.change.seq, 3);
  await carol.durable;
  t.equal(second.log.logHash, nextLogHash(hash, encodeChange(carol.change)), 'the chain continues from the state hash');
  t.same(peek(logFile, (db) => dumpLog(db).sync_log), [{ seq: 3, epoch: 1, change: encodeChange(carol.change) }]);

  // A crash now: the state file is at 2, the log runs from its base 2 to 3.
  await crash(second);
  t.equal(peek(file, diskSeq), 2);
  const third = await openLog(t, {}, file);
  t.equal(third.log.seq, 3, 'a log that starts at the state is replayed from there');
  t.equal(peek(file, diskSeq), 3, '... into the state file');
  t.ok(third.state.user('carol'), '... and so into memory');
  t.equal(third.log.logHash, second.log.logHash);

  // That log starts at seq 2: it does not go with an empty state.
  await third.log.close();
  const fresh = path.join(path.dirname(file), 'fresh.db');
  t.throws(() => openPair(fresh, {}, {}, logFile), LogMismatchError, 'a log that starts after the state is refused');
  t.throws(() => openPair(fresh, {}, {}, logFile), /starts after seq 2/);
});

t.test('a log file behind its state file (an older copy) is refused', async (t) => {
  const file = await tempDb(t);
  const dir = path.dirname(file);
  const oldLog = path.join(dir, 'old-log');
  const first = openPair(file);
  await first.log.append(userCreated('alice')).durable;
  await first.log.append(userCreated('bob')).durable;
  first.logStore.db.exec(`VACUUM INTO '${oldLog}'`); // a copy of the log file at seq 2
  await first.log.append(userCreated('carol')).durable;
  await first.log.append(userCreated('dave')).durable;
  await first.log.close();
  first.store.close();
  first.logStore.close();

  let error: unknown;
  try {
    openPair(file, {}, {}, oldLog);
  } catch (e) {
    error = e;
  }
  t.ok(error instanceof LogMismatchError, 'LogMismatchError');
  t.equal((error as Error).name, 'LogMismatchError');
  t.match((error as Error).message, /ends at seq 2 but the state .* is at seq 4/, 'the message gives both positions');
  t.equal(peek(file, diskSeq), 4, 'the state file is left as it was');
  t.same(peek(file, userNames), ['alice', 'bob', 'carol', 'dave']);
  t.equal(peek(oldLog, diskSeq), 2, 'and so is the old log');
  t.equal(peek(oldLog, logTexts).length, 2);

  // A state of another history at the same seq as the old log: the hashes differ.
  const other = path.join(dir, 'other.db');
  const pair = openPair(other);
  await pair.log.append(userCreated('mallory')).durable;
  await pair.log.append(userCreated('trent')).durable;
  await pair.log.close();
  pair.store.close();
  pair.logStore.close();
  t.throws(() => openPair(other, {}, {}, oldLog), LogMismatchError, 'same seq, another history');
  t.throws(() => openPair(other, {}, {}, oldLog), /hashes differ/);
});

t.test('log rows that do not chain to the recorded head are refused', async (t) => {
  const file = await tempDb(t);
  const logFile = logPathFor(file);
  const first = openPair(file, {}, NO_STATE_TIMER);
  t.teardown(() => crash(first));
  await first.log.append(userCreated('alice')).durable;
  await first.log.drain(); // the state file at seq 1
  await first.log.append(userCreated('bob')).durable;
  await first.log.append(userCreated('carol')).durable;
  await crash(first); // the state file must replay rows 2 and 3

  const writable = new Database(logFile);
  const changed = writable.prepare(`UPDATE sync_log SET change = replace(change, '"user":"bob"', '"user":"bub"') WHERE seq = 2`).run().changes;
  writable.close();
  t.equal(changed, 1, 'one row corrupted (it still decodes and applies)');

  t.throws(() => openPair(file), LogMismatchError, 'the replay does not reach the recorded log_hash');
  t.throws(() => openPair(file), /another log_hash/);
  t.equal(peek(file, diskSeq), 1, 'the replay was rolled back: the state file is at seq 1');
  t.same(peek(file, userNames), ['alice'], 'and has no trace of the corrupt row');

  const again = new Database(logFile);
  again.prepare('DELETE FROM sync_log WHERE seq = 3').run();
  again.close();
  t.throws(() => openPair(file), /has no row for seq 3/, 'a missing row is refused too');
  t.equal(peek(file, diskSeq), 1);
});

t.test('Tracker.open refuses a log that does not go with the state file: StoreOpenError', async (t) => {
  const dbPath = await tempDb(t);
  const logFile = logPathFor(dbPath);
  const keep = `${logFile}.keep`;
  const oldLog = `${logFile}.old`;
  const run = await startTracker(t, { dbPath });
  const a = await run.connect();
  const session = await signUp(a, 'alice'); // user_created, session_opened
  const copy = new Database(logFile, { readonly: true });
  copy.exec(`VACUUM INTO '${oldLog}'`);
  copy.close();
  t.equal(await a.text('create_group g', session), 'OK group created');
  await a.close();
  await run.stop();

  await rename(logFile, keep);
  await rename(oldLog, logFile);
  const options = parseOptions({ role: 'primary', scryptCost: 1024, dbPath });
  let error: unknown;
  try {
    const tracker = Tracker.open(options, silent);
    t.teardown(() => tracker.close());
  } catch (e) {
    error = e;
  }
  t.ok(error instanceof StoreOpenError, 'StoreOpenError');
  t.match((error as Error).message, dbPath, 'naming the state file');
  t.match((error as Error).message, /ends at seq 2 but the state .* is at seq 3/, 'and why');

  // Both files were closed and left as they were: with the right log the tracker starts.
  await removeDb(logFile);
  await rename(keep, logFile);
  const again = await startTracker(t, { dbPath }, run.clock);
  const b = await again.connect();
  t.match(await b.text('status'), / seq=3 /);
  t.equal(await b.text('list_groups', session), 'OK 1\ng owner=alice members=1');
});

t.test('a snapshot install interrupted between the state swap and the log reset: the stale log is dropped at start', async (t) => {
  const file = await tempDb(t);
  const first = openPair(file);
  for (const name of ['alice', 'bob', 'carol']) await first.log.append(userCreated(name)).durable;
  await first.log.close();
  await crash(first);
  // What installSnapshot leaves if the process dies right after the state's commit: a state of a new
  // generation (here: the same rows, stamped at seq 1 of another history) beside the old log.
  const db = new Database(file);
  db.prepare("UPDATE meta SET value = ? WHERE key = 'seq'").run('1');
  db.prepare("UPDATE meta SET value = ? WHERE key = 'log_hash'").run('ab'.repeat(32));
  db.prepare("INSERT INTO meta (key, value) VALUES ('log_generation', 'g2')").run();
  db.close();

  const second = await openLog(t, {}, file, NO_STATE_TIMER);
  t.equal(second.log.seq, 1, 'the state position stands; the old rows 2 and 3 were not replayed onto it');
  t.equal(second.log.logHash, 'ab'.repeat(32));
  t.same(second.logStore.head(), { seq: 1, hash: 'ab'.repeat(32) }, 'the log restarted at the state');
  t.equal(second.logStore.generation(), 'g2', 'under the state generation');
  t.same(second.log.entriesAfter(0, 10), []);
  t.same(
    ['alice', 'bob', 'carol'].map((u) => second.state.user(u)?.name),
    ['alice', 'bob', 'carol'],
    'the memory state is read from the state file',
  );
});

t.test('installSnapshot truncates the state file\'s WAL; a reader in the way is not waited for, and is logged', async (t) => {
  const source = openPair(await tempDb(t, 'source.db'), {}, NO_STATE_TIMER);
  t.teardown(() => crash(source));
  for (let i = 0; i < 200; i++) await source.log.append(userCreated(`u${i}`)).durable;
  await source.log.drain();
  const snap = source.log.snapshot();
  const snapFile = path.join(path.dirname(source.file), 'snap.db');
  await writeFile(snapFile, snap.image);
  await source.log.close();
  await crash(source);

  const walSize = (file: string): number => statSync(`${file}-wal`, { throwIfNoEntry: false })?.size ?? 0;
  const quiet = openPair(await tempDb(t, 'quiet.db'), {}, NO_STATE_TIMER);
  t.teardown(async () => {
    await quiet.log.close();
    await crash(quiet);
  });
  await quiet.log.installSnapshot(snapFile, snap.position, 'hist-2', 1, 'gen-1');
  t.equal(walSize(quiet.file), 0, 'with nobody else reading, the WAL is truncated');

  const warnings: { msg: string; busy?: number }[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      warnings.push(JSON.parse(chunk.toString()) as { msg: string; busy?: number });
      done();
    },
  });
  const busyFile = await tempDb(t, 'busy.db');
  const busy = openPair(busyFile, {}, NO_STATE_TIMER, logPathFor(busyFile), pino({ level: 'warn' }, sink));
  t.teardown(async () => {
    await busy.log.close();
    await crash(busy);
  });
  // Another process reading the state file (tracker-admin backup), in the middle of a read.
  const reader = new Database(busy.file, { readonly: true });
  t.teardown(() => reader.close());
  reader.exec('BEGIN');
  reader.prepare('SELECT count(*) FROM users').get();
  await busy.log.installSnapshot(snapFile, snap.position, 'hist-2', 1, 'gen-1');
  t.ok(busy.state.user('u199'), 'the snapshot is installed all the same');
  t.match(warnings, [{ msg: /could not truncate the state file's WAL after installing a snapshot/, busy: 1 }], 'and the WAL left as it is, said');
  reader.exec('COMMIT');
});

t.test('installSnapshot swaps every table and restarts the log; retention trims only what the state file holds', async (t) => {
  const source = openPair(await tempDb(t, 'source.db'), {}, NO_STATE_TIMER);
  t.teardown(() => crash(source)); // only if an assertion threw before the close below
  for (const name of ['alice', 'bob']) await source.log.append(userCreated(name)).durable;
  // A snapshot is of the state file, stamped with the position the file holds: it lags the log until written.
  const dir = path.dirname(source.file);
  const lagging = source.log.snapshot();
  t.same(lagging.position, { seq: 0, hash: GENESIS_HASH }, 'before the writer wrote the file, a snapshot is at the position the file holds');
  const laggingFile = path.join(dir, 'lagging.db');
  await writeFile(laggingFile, lagging.image);
  t.same(peek(laggingFile, userNames), [], '... and holds what the file holds');
  await source.log.drain();
  const snap = source.log.snapshot();
  t.same(snap.position, { seq: 2, hash: source.log.logHash }, 'after drain(), stamped at the committed position');
  const snapFile = path.join(dir, 'snap.db');
  await writeFile(snapFile, snap.image);
  t.same(peek(snapFile, userNames), ['alice', 'bob'], '... with every change up to it');
  t.equal(peek(snapFile, diskSeq), 2);
  await source.log.close();
  await crash(source);

  const target = openPair(await tempDb(t, 'target.db'), {}, NO_STATE_TIMER);
  t.teardown(async () => {
    await target.log.close();
    await crash(target);
  });
  await target.log.append(userCreated('zed')).durable;
  await target.log.installSnapshot(snapFile, snap.position, 'hist-2', 7, 'gen-1');
  t.equal(target.log.seq, 2);
  t.equal(target.log.epoch, 7);
  t.ok(target.state.user('alice') && target.state.user('bob'), 'the memory state has the snapshot rows');
  t.notOk(target.state.user('zed'), '... and not the old ones');
  t.equal(target.state.getMeta('history_id'), 'hist-2');
  t.same(peek(target.file, userNames), ['alice', 'bob'], 'the state file\'s tables were swapped');
  t.equal(peek(target.file, diskSeq), 2, '... and stamped with the snapshot position');
  t.equal(target.store.getMeta('history_id'), 'hist-2');
  t.equal(target.log.stateFileSeq, 2);
  t.same(target.logStore.base(), snap.position, 'the log starts at the snapshot');
  const next = target.log.append(userCreated('dave'));
  t.equal(next.change.seq, 3);
  await next.durable;
  t.ok(target.state.user('dave'));
  t.equal(target.log.truncate(3), 2, 'nothing past the state file on disk is trimmed');
  await target.log.drain();
  t.equal(peek(target.file, diskSeq), 3, 'the restarted writer writes the state file after the swap');
  t.same(peek(target.file, userNames), ['alice', 'bob', 'dave']);
  t.equal(target.log.truncate(3), 3, 'once the state file holds seq 3, the log may start after it');
  t.same(target.log.entriesAfter(0, 10), []);
});

/**
 * The two files of a ChangeLog: the log file is the durable record (committed
 * per batch before anyone is answered), the state file follows it (committed
 * at most every stateCommitMs) and is caught up from the log when opened. On
 * real temporary SQLite files; a crash is both connections closed without
 * close() or drain().
 */
import { createHash } from 'node:crypto';
import { rename, rm } from 'node:fs/promises';
import path from 'node:path';
import Database from 'better-sqlite3';
import t from 'tap';
import { ChangeLog, LogMismatchError, LogStore, Store, StoreOpenError, Tracker, decodeChange, encodeChange, logPathFor, nextLogHash, parseOptions } from '@tracker-cluster/tracker-core';
import type { ChangeBody } from '@tracker-cluster/tracker-core';
import { silent, tempDb, waitFor } from './fixtures/env.js';
import { crash, diskSeq, dumpLog, dumpTables, openLog, openPair, reader, userCreated } from './fixtures/state.js';
import { signUp, startTracker } from './fixtures/tracker.js';

/** h_n = SHA-256(h_{n-1} bytes ‖ change text), computed here without the package's helper. */
function independentHash(texts: readonly string[], from = Buffer.alloc(32)): string {
  let h = from;
  for (const text of texts) h = createHash('sha256').update(Buffer.concat([h, Buffer.from(text, 'utf8')])).digest();
  return h.toString('hex');
}

/** Never commits the state file by itself during a test: only drain() and close() do. */
const NO_STATE_TIMER = { stateCommitMs: 60_000 };

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

/** Removes a closed SQLite file with its WAL and shared-memory files. */
async function removeDb(file: string): Promise<void> {
  for (const suffix of ['', '-wal', '-shm']) await rm(`${file}${suffix}`, { force: true });
}

// --- crash recovery ---------------------------------------------------------

t.test('crash recovery: the state file catches up by replaying the log, and the chain goes on', async (t) => {
  const file = await tempDb(t);
  const logFile = logPathFor(file);
  const first = openPair(file, {}, NO_STATE_TIMER);
  t.teardown(() => crash(first)); // only if an assertion threw before the crash below

  // Three batches, then a state commit: the state file is at seq 3.
  await first.log.append(userCreated('alice')).durable;
  first.log.append(userCreated('bob'));
  await first.log.append({ type: 'session_opened', session: '18446744073709551615', user: 'alice', at: 10, expires: 1000 }).durable;
  await first.log.drain();
  t.equal(peek(file, diskSeq), 3, 'the state file is at seq 3');

  // More batches, answered (durable) but never committed to the state file.
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
  const applied = dumpTables(first.store.db); // what this tracker had applied and answered
  t.equal(peek(file, diskSeq), 3, 'the state file still lags at seq 3');
  t.equal(peek(logFile, diskSeq), 10, 'the log file is at seq 10');

  crash(first);
  t.notOk(first.store.db.open, 'crashed');
  t.equal(peek(file, diskSeq), 3, 'after the crash the state file is at its last state commit');
  t.same(peek(file, (db) => db.prepare('SELECT name FROM groups').pluck().all()), [], 'without the group made after it');
  const texts = peek(logFile, logTexts);
  t.equal(texts.length, 10, 'the log file has every answered change');
  t.equal(independentHash(texts), hash);

  const second = await openLog(t, {}, file, NO_STATE_TIMER);
  t.equal(second.log.seq, 10, 'the reopened log resumes at the log head');
  t.equal(second.log.logHash, hash, '... with its hash');
  t.equal(second.store.getMeta('seq'), '10', 'the state caught up');
  t.equal(second.store.getMeta('log_hash'), hash);
  t.equal(peek(file, diskSeq), 10, 'and the catch-up was committed to the state file');
  t.same(dumpTables(second.store.db), applied, 'every table as it was before the crash');
  t.same(second.store.group('g'), { name: 'g', owner: 'alice' }, 'the group is back');
  t.ok(second.store.isMember('g', 'bob'));
  t.same(second.store.listRequests('g'), ['carol']);
  t.same(second.store.session('18446744073709551615'), { id: '18446744073709551615', user: 'alice', expires_at: 3000 }, 'sessions are back, touched');
  t.same(second.store.session('9007199254740993'), { id: '9007199254740993', user: 'bob', expires_at: 2000 });
  t.equal(second.log.barrier(), undefined, 'nothing pending after a catch-up');

  // The chain continues from the log head, through a second crash.
  const dave = second.log.append(userCreated('dave'));
  t.equal(dave.change.seq, 11);
  await dave.durable;
  t.equal(second.log.logHash, nextLogHash(hash, encodeChange(dave.change)));
  t.same(second.store.listRequests('g'), ['carol']);
  crash(second);
  const third = await openLog(t, {}, file);
  t.equal(third.log.seq, 11);
  t.ok(third.store.user('dave'), 'replayed again after a second crash');
  await third.log.append(userCreated('erin')).durable;
  await third.log.drain();
  const allTexts = peek(logFile, logTexts);
  t.same(allTexts.map((x) => decodeChange(x).seq), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12], 'one row per seq, no gap, no repeat');
  t.equal(third.log.logHash, independentHash(allTexts), 'the hash chains over the whole log');
  t.equal(peek(file, stateHash), third.log.logHash, 'the state file records it');
});

t.test('crash before the first state commit: the whole log is replayed', async (t) => {
  const file = await tempDb(t);
  const first = openPair(file, {}, NO_STATE_TIMER);
  t.teardown(() => crash(first));
  for (const u of ['alice', 'bob', 'carol']) await first.log.append(userCreated(u)).durable;
  const applied = dumpTables(first.store.db);
  crash(first);
  t.equal(peek(file, diskSeq), 0, 'nothing of it reached the state file');
  t.same(peek(file, userNames), []);
  const second = await openLog(t, {}, file);
  t.equal(second.log.seq, 3);
  t.same(dumpTables(second.store.db), applied);
});

t.test('a failed state COMMIT loses nothing: the state is rebuilt from the log', async (t) => {
  // A real COMMIT failure of the state file: a deferred foreign key, checked only
  // at COMMIT, is violated by a trigger when the user "poison" is inserted. It
  // stands for a transient fault (a full disk since cleared): the onRollback hook,
  // which runs before the state is replayed, removes it once.
  const file = await tempDb(t);
  const store = Store.open(file, 'NORMAL');
  store.db.pragma('foreign_keys = ON'); // not in a transaction yet: the ChangeLog begins one
  store.db.exec(`
    CREATE TABLE guard_parent (id INTEGER PRIMARY KEY);
    CREATE TABLE guard (parent INTEGER REFERENCES guard_parent(id) DEFERRABLE INITIALLY DEFERRED);
    CREATE TRIGGER poison AFTER INSERT ON users WHEN NEW.name = 'poison' BEGIN INSERT INTO guard (parent) VALUES (42); END;
  `);
  const logStore = LogStore.open(logPathFor(file));
  let rollbacks = 0;
  const onRollback = (): void => {
    rollbacks++;
    t.notOk(store.db.inTransaction, 'the failed state transaction was rolled back before the hook');
    store.db.exec('DROP TRIGGER IF EXISTS poison');
  };
  const log = new ChangeLog(store, logStore, silent, { onRollback }, NO_STATE_TIMER);
  t.teardown(async () => {
    await log.close();
    store.close();
    logStore.close();
  });

  await log.append(userCreated('alice')).durable;
  const poison = log.append(userCreated('poison'));
  await poison.durable; // the log commit is the durable point; the state commit comes later
  t.equal(peek(logPathFor(file), diskSeq), 2, 'both changes are in the log');
  t.equal(peek(file, diskSeq), 0, 'none in the state file yet');

  await log.drain(); // the state COMMIT fails; the state is rebuilt from the log and committed
  t.equal(rollbacks, 1, 'onRollback ran once: derived caches are dropped');
  t.ok(store.db.inTransaction, 'the state transaction is open again');
  t.equal(log.seq, 2);
  t.equal(peek(file, diskSeq), 2, 'the state file is at the log head');
  t.equal(peek(file, stateHash), log.logHash);
  t.same(peek(file, userNames), ['alice', 'poison'], 'with every durable change');
  t.ok(store.user('poison'));

  const carol = log.append(userCreated('carol'));
  t.equal(carol.change.seq, 3, 'the chain goes on');
  await carol.durable;
  await log.drain();
  t.equal(peek(file, diskSeq), 3);
  t.equal(rollbacks, 1);
});

t.test('a state file that can be neither written nor rebuilt stops the change log (fail-stop), answering what is in the log', async (t) => {
  // The same deferred-FK poison, but permanent: the replay after the failed
  // COMMIT fails too. The writer of the batch is answered (its change is in the
  // log), onFatal is called once, and every later change is refused.
  const file = await tempDb(t);
  const store = Store.open(file, 'NORMAL');
  store.db.pragma('foreign_keys = ON');
  store.db.exec(`
    CREATE TABLE guard_parent (id INTEGER PRIMARY KEY);
    CREATE TABLE guard (parent INTEGER REFERENCES guard_parent(id) DEFERRABLE INITIALLY DEFERRED);
    CREATE TRIGGER poison AFTER INSERT ON users WHEN NEW.name = 'poison' BEGIN INSERT INTO guard (parent) VALUES (42); END;
  `);
  const logStore = LogStore.open(logPathFor(file));
  const fatals: unknown[] = [];
  const log = new ChangeLog(store, logStore, silent, { onFatal: (e) => fatals.push(e) }, { stateCommitMs: 0 });
  t.teardown(async () => {
    await log.close();
    store.close();
    logStore.close();
  });

  await log.append(userCreated('alice')).durable;
  await log.append(userCreated('poison')).durable; // answered: the log has it
  t.equal(fatals.length, 1, 'onFatal ran once');
  t.equal(peek(logPathFor(file), diskSeq), 2, 'the log has both changes');
  t.throws(() => log.append(userCreated('carol')), { code: 'INTERNAL' }, 'later changes are refused');
  await log.drain();
  t.equal(fatals.length, 1, 'and nothing else blew up');
});

t.test('close() refuses changes from its first moment, so the state cannot get one the log lacks', async (t) => {
  const opened = await openLog(t, {}, undefined, NO_STATE_TIMER);
  const { log, file } = opened;
  await log.append(userCreated('alice')).durable;
  const closing = log.close();
  t.throws(() => log.append(userCreated('late')), { code: 'INTERNAL' }, 'an append during close() is refused');
  await closing;
  t.same(peek(file, userNames), ['alice'], 'the state file holds only what the log holds');
  t.equal(peek(file, diskSeq), peek(logPathFor(file), diskSeq));
});

// --- what another process sees ----------------------------------------------

t.test('the state file on disk never leads the log: the log has a batch when durable settles, the state after drain()', async (t) => {
  const { log, file, logFile } = await openLog(t, {}, undefined, NO_STATE_TIMER);
  const state = reader(t, file);
  const logDb = reader(t, logFile);
  for (let i = 1; i <= 3; i++) {
    const a = log.append(userCreated(`u${i}`));
    await a.durable;
    t.equal(diskSeq(logDb), i, `batch ${i}: the log file records it when durable settles`);
    t.equal(logTexts(logDb).length, i, '... row included');
    t.equal(diskSeq(state), 0, '... the state file lags');
    t.same(userNames(state), []);
  }
  await log.drain();
  t.equal(diskSeq(state), 3, 'drain() commits the state file');
  t.same(userNames(state), ['u1', 'u2', 'u3']);
  t.equal(stateHash(state), log.logHash);
  t.equal(diskSeq(logDb), 3);
});

t.test('an idle state file is committed by itself within stateCommitMs', async (t) => {
  const { log, file, logFile } = await openLog(t, {}, undefined, { stateCommitMs: 20 });
  const state = reader(t, file);
  const logDb = reader(t, logFile);
  await log.append(userCreated('alice')).durable;
  log.append(userCreated('bob'));
  await log.append({ type: 'group_created', group: 'g', owner: 'alice', at: 1 }).durable;
  t.ok(diskSeq(state) <= diskSeq(logDb), 'the state is not ahead of the log');
  await waitFor(() => diskSeq(state) === log.seq, 'the state commit timer');
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
  crash(second);
  t.equal(peek(file, diskSeq), 2);
  const third = await openLog(t, {}, file);
  t.equal(third.log.seq, 3, 'a log that starts at the state is replayed from there');
  t.ok(third.store.user('carol'));
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
  crash(first); // the state file must replay rows 2 and 3

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
  crash(first);
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
});

t.test('installSnapshot swaps every table and restarts the log; retention trims only what the state file holds', async (t) => {
  const source = openPair(await tempDb(t, 'source.db'));
  for (const name of ['alice', 'bob']) await source.log.append(userCreated(name)).durable;
  const snap = source.log.snapshot();
  t.same(snap.position, { seq: 2, hash: source.log.logHash }, 'stamped at the committed position');
  const snapFile = path.join(path.dirname(source.file), 'snap.db');
  const { writeFile } = await import('node:fs/promises');
  await writeFile(snapFile, snap.image);
  await source.log.close();
  crash(source);

  const target = openPair(await tempDb(t, 'target.db'), {}, NO_STATE_TIMER);
  t.teardown(async () => {
    await target.log.close();
    crash(target);
  });
  await target.log.append(userCreated('zed')).durable;
  await target.log.installSnapshot(snapFile, snap.position, 'hist-2', 7, 'gen-1');
  t.equal(target.log.seq, 2);
  t.equal(target.log.epoch, 7);
  t.ok(target.store.user('alice') && target.store.user('bob'), 'the snapshot rows');
  t.notOk(target.store.user('zed'), 'the old rows are gone');
  t.equal(target.store.getMeta('history_id'), 'hist-2');
  t.same(target.logStore.base(), snap.position, 'the log starts at the snapshot');
  const next = target.log.append(userCreated('dave'));
  t.equal(next.change.seq, 3);
  await next.durable;
  t.equal(target.log.truncate(3), 2, 'nothing past the state file on disk is trimmed');
  await target.log.drain();
  t.equal(target.log.truncate(3), 3, 'once the state file holds seq 3, the log may start after it');
  t.same(target.log.entriesAfter(0, 10), []);
});

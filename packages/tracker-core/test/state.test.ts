/**
 * The replicated state machine: ChangeLog (seq, log rows, rolling hash, group
 * commit, undoing a failed change, rollback) over the state in memory and its
 * two files (the log file, committed per batch, and the state file, written
 * by the state writer at most every stateCommitMs) and applyChange (the group
 * and session rules), on real temporary SQLite files. Crash recovery and the
 * pairing of the two files: durability.test.ts.
 */
import { createHash } from 'node:crypto';
import Database from 'better-sqlite3';
import t from 'tap';
import { TrackerError } from '@tracker-cluster/protocol';
import { GENESIS_HASH, applyChange, decodeChange, encodeChange, nextLogHash, MAX_BATCH_CHANGES } from '@tracker-cluster/tracker-core';
import type { Change, ChangeBody, CommittedBatch, DomainEvent, LogStore } from '@tracker-cluster/tracker-core';
import type { Test } from './fixtures/env.js';
import { tempDb, waitFor } from './fixtures/env.js';
import { diskSeq, dump, dumpLog, openLog, openPair, reader, userCreated } from './fixtures/state.js';

/** h_n = SHA-256(h_{n-1} bytes ‖ change text), computed here without the package's helper. */
function independentHash(texts: readonly string[]): string {
  let h = Buffer.alloc(32);
  for (const text of texts) h = createHash('sha256').update(Buffer.concat([h, Buffer.from(text, 'utf8')])).digest();
  return h.toString('hex');
}

const nextTick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

t.test('GENESIS_HASH and nextLogHash follow the definition', async (t) => {
  t.equal(GENESIS_HASH, '0'.repeat(64));
  const text = '{"seq":1,"epoch":1,"type":"session_closed","session":"5"}';
  t.equal(nextLogHash(GENESIS_HASH, text), independentHash([text]));
  t.equal(nextLogHash(nextLogHash(GENESIS_HASH, 'a'), 'b'), independentHash(['a', 'b']));
  t.not(nextLogHash(GENESIS_HASH, 'ab'), independentHash(['a', 'b']), 'the chain is not a hash of the concatenation');
});

t.test('encodeChange / decodeChange', async (t) => {
  const change: Change = { seq: 3, epoch: 2, body: { type: 'sessions_touched', sessions: [['18446744073709551615', 99]] } };
  const text = encodeChange(change);
  t.equal(text, '{"seq":3,"epoch":2,"type":"sessions_touched","sessions":[["18446744073709551615",99]]}', 'canonical text');
  t.same(decodeChange(text), change, 'round trip, u64 session ids intact as decimal strings');
  t.throws(() => decodeChange('{"seq":1,"epoch":1}'), /malformed change/);
  t.throws(() => decodeChange('{"seq":1.5,"epoch":1,"type":"x"}'), /malformed change/);
  t.throws(() => decodeChange('not json'));
});

t.test('append applies at once; the batch is committed to the log file on the next tick, the state file later', async (t) => {
  const { store, logStore, log, file, logFile } = await openLog(t, {}, undefined, { stateCommitMs: 60_000 });
  const state = reader(t, file);
  const logDb = reader(t, logFile);
  t.equal(log.seq, 0);
  t.equal(log.logHash, GENESIS_HASH);
  t.equal(log.epoch, 1);
  t.notOk(store.db.inTransaction, 'the state file is not held open in a transaction: a worker writes it');
  t.notOk(logStore.db.inTransaction, 'no batch is open in the log');
  const appended = log.append(userCreated('alice'));
  t.same(appended.change, { seq: 1, epoch: 1, body: userCreated('alice') });
  t.same(appended.events, []);
  t.equal(log.seq, 1, 'seq moves at once');
  t.ok(log.state.user('alice'), 'the next request on this tracker already sees the change');
  t.ok(logStore.db.inTransaction, 'the batch is open in the log file');
  t.equal(state.prepare('SELECT COUNT(*) FROM users').pluck().get(), 0, 'another connection sees no state yet');
  t.equal(logDb.prepare('SELECT COUNT(*) FROM sync_log').pluck().get(), 0, '... and no log row yet');
  await appended.durable;
  t.notOk(logStore.db.inTransaction, 'the batch is committed to the log');
  t.same(logDb.prepare('SELECT seq, epoch, change FROM sync_log').all(), [{ seq: 1, epoch: 1, change: encodeChange(appended.change) }], 'after durable: the log row is on disk');
  t.same(logStore.head(), { seq: 1, hash: log.logHash }, '... with the head it records');
  t.equal(diskSeq(logDb), 1, '... as another connection sees it');
  t.equal(state.prepare('SELECT COUNT(*) FROM users').pluck().get(), 0, 'the state file lags: not committed yet');
  t.equal(diskSeq(state), 0);
  await log.drain();
  t.equal(state.prepare('SELECT COUNT(*) FROM users').pluck().get(), 1, 'drain() commits the state file');
  t.equal(diskSeq(state), 1, '... with its seq');
  t.equal(state.prepare("SELECT value FROM meta WHERE key = 'log_hash'").pluck().get(), log.logHash, '... and log_hash');
  t.equal(log.stateFileSeq, 1, 'the writer reports where the file stands');
  t.equal(store.getMeta('seq'), '1');
  t.equal(store.getMeta('log_hash'), log.logHash);
});

t.test('seq increments by one and log_hash chains over the log texts', async (t) => {
  const { store, logStore, log, file, logFile } = await openLog(t);
  const bodies: ChangeBody[] = [
    userCreated('alice'),
    userCreated('bob'),
    { type: 'session_opened', session: '18446744073709551615', user: 'alice', at: 1, expires: 100 },
    { type: 'group_created', group: 'g', owner: 'alice', at: 2 },
    { type: 'join_requested', group: 'g', user: 'bob', at: 3 },
  ];
  const seqs: number[] = [];
  for (const body of bodies) {
    const a = log.append(body);
    seqs.push(a.change.seq);
    await a.durable; // one batch each
    t.same(logStore.head(), { seq: a.change.seq, hash: log.logHash }, `the log records its head with batch ${a.change.seq}`);
  }
  t.same(seqs, [1, 2, 3, 4, 5]);
  const texts = reader(t, logFile).prepare('SELECT change FROM sync_log ORDER BY seq').pluck().all() as string[];
  t.equal(texts.length, 5);
  t.same(texts.map((x) => decodeChange(x).body), bodies, 'the log holds the changes in order');
  const expected = independentHash(texts);
  t.equal(log.logHash, expected, 'log_hash = SHA-256 chain from 64 zero hex digits');
  await log.drain();
  t.equal(store.getMeta('log_hash'), expected, 'and is stored in the state at its commit');
  t.equal(store.getMeta('seq'), '5');

  await log.close();
  store.close();
  logStore.close();
  const resumed = await openLog(t, {}, file);
  t.equal(resumed.log.seq, 5, 'a reopened log resumes its seq');
  t.equal(resumed.log.logHash, expected, '... and its hash');
  t.equal(resumed.log.append(userCreated('carol')).change.seq, 6);
  await resumed.log.drain();
  t.equal(resumed.log.logHash, independentHash([...texts, encodeChange({ seq: 6, epoch: 1, body: userCreated('carol') })]));
});

t.test('group commit: changes appended in one tick share one commit', async (t) => {
  const batches: CommittedBatch[] = [];
  const durableBatches: CommittedBatch[] = [];
  const { logStore, log } = await openLog(t, {
    afterCommit: (batch) => {
      t.notOk(logStore.db.inTransaction, 'afterCommit runs after the log COMMIT');
      batches.push(batch);
    },
    onDurable: (batch) => durableBatches.push(batch),
  });
  const N = 50;
  const appended = Array.from({ length: N }, (_, i) => log.append(userCreated(`u${i}`)));
  t.equal(new Set(appended.map((a) => a.durable)).size, 1, 'every writer of the tick awaits the same batch');
  await Promise.all(appended.map((a) => a.durable));
  t.equal(batches.length, 1, 'one commit');
  const batch = batches[0] as CommittedBatch;
  t.equal(batch.changes.length, N, `with ${N} changes`);
  t.same(batch.changes.map((c) => c.seq), Array.from({ length: N }, (_, i) => i + 1));
  t.same(batch.texts, batch.changes.map(encodeChange), 'texts aligned with changes');
  t.equal(durableBatches.length, 1);
  t.equal(log.state.counts().users, N);

  const later = log.append(userCreated('late'));
  await later.durable;
  t.equal(batches.length, 2, 'a change in a later tick is a new batch');
  t.same(batches[1]?.changes.map((c) => c.seq), [N + 1]);
});

t.test('barrier() is undefined when nothing is pending and waits for the open batch otherwise', async (t) => {
  let release!: () => void;
  const gate = new Promise<void>((resolve) => {
    release = resolve;
  });
  const delivered: CommittedBatch[] = [];
  const { logStore, log, logFile } = await openLog(t, {
    afterCommit: () => gate, // a semi-sync primary waiting for the replica's ack
    onDurable: (batch) => delivered.push(batch),
  });
  const logDb = reader(t, logFile);
  t.equal(log.barrier(), undefined, 'nothing pending on a fresh log');
  const a = log.append(userCreated('alice'));
  log.append({ type: 'group_created', group: 'g', owner: 'alice', at: 1 });
  const barrier = log.barrier();
  t.ok(barrier instanceof Promise, 'a promise while a batch is open');
  let durable = false;
  void a.durable.then(() => {
    durable = true;
  });
  await nextTick(); // the batch's own setImmediate ran first: it is committed now
  t.notOk(logStore.db.inTransaction, 'committed');
  t.equal(diskSeq(logDb), 2, 'the log file has it');
  t.notOk(durable, 'committed but not acknowledged: writers still wait');
  t.ok(log.barrier() instanceof Promise, 'and readers too');
  t.same(delivered, [], 'no events before the ack');
  release();
  await barrier;
  t.ok(durable, 'the ack makes the batch durable');
  t.equal(log.barrier(), undefined, 'nothing pending after the ack');
  t.equal(delivered.length, 1, 'onDurable ran once');
});

t.test('drain() and flush() commit without waiting for the next tick', async (t) => {
  const { store, logStore, log, file, logFile } = await openLog(t, {}, undefined, { stateCommitMs: 60_000 });
  const state = reader(t, file);
  const logDb = reader(t, logFile);
  log.flush(); // nothing open: a no-op
  await log.drain();
  t.equal(log.barrier(), undefined);
  log.append(userCreated('alice'));
  log.flush();
  t.notOk(logStore.db.inTransaction, 'flush() committed the log at once');
  t.equal(diskSeq(logDb), 1, 'the log file has the row');
  t.equal(diskSeq(state), 0, 'the state file does not, yet');
  log.append(userCreated('bob'));
  await log.drain();
  t.equal(log.barrier(), undefined, 'drain() waits until everything is durable');
  t.equal(diskSeq(logDb), 2);
  t.equal(diskSeq(state), 2, 'and commits the state file');
  t.equal(state.prepare('SELECT COUNT(*) FROM users').pluck().get(), 2);
  t.equal(store.getMeta('seq'), '2');
});

t.test('a change whose apply throws is undone; the rest of the batch stays', async (t) => {
  const batches: CommittedBatch[] = [];
  const { store, logStore, log, file, logFile } = await openLog(t, { afterCommit: (b) => void batches.push(b) });
  const first = log.append(userCreated('alice'));
  const hashAfterFirst = log.logHash;
  const error = (() => {
    try {
      log.append(userCreated('alice')); // a crafted duplicate primary key
      return undefined;
    } catch (e) {
      return e as Error & { code?: string };
    }
  })();
  t.ok(error, 'append throws');
  t.equal(error?.code, 'SQLITE_CONSTRAINT_PRIMARYKEY', 'the SQLite constraint error reaches the caller');
  t.equal(log.seq, 1, 'seq unchanged');
  t.equal(log.logHash, hashAfterFirst, 'log_hash unchanged');
  t.ok(logStore.db.inTransaction, 'the batch is still open');
  const second = log.append(userCreated('bob'));
  t.equal(second.change.seq, 2, 'the next change takes the next seq');
  await Promise.all([first.durable, second.durable]);
  t.equal(batches.length, 1);
  t.same(batches[0]?.changes.map((c) => c.seq), [1, 2], 'the failed change is not part of the batch');
  await log.drain();
  t.same(reader(t, file).prepare('SELECT name FROM users ORDER BY name').pluck().all(), ['alice', 'bob']);
  const texts = reader(t, logFile).prepare('SELECT change FROM sync_log ORDER BY seq').pluck().all() as string[];
  t.same(texts.map((x) => decodeChange(x).seq), [1, 2], 'one log row per applied change, no gap');
  t.equal(log.logHash, independentHash(texts));
  t.equal(store.getMeta('log_hash'), log.logHash);
});

t.test('a change that throws half-way is undone whole; the changes before and after it in the batch stay', async (t) => {
  // request_accepted deletes the request, then inserts the member: here the insert fails (bob is a member
  // already, crafted), so the delete must be undone too, while the batch's other changes stay as
  // they were applied.
  const { state: live, log, file, logFile } = await openLog(t);
  log.append(userCreated('alice'));
  log.append(userCreated('bob'));
  log.append({ type: 'group_created', group: 'g', owner: 'alice', at: 1 });
  await log.append({ type: 'request_accepted', group: 'g', user: 'bob', at: 2 }).durable;
  const before = log.seq;
  const opened = log.append({ type: 'session_opened', session: '11', user: 'bob', at: 3, expires: 9000 });
  const requested = log.append({ type: 'join_requested', group: 'g', user: 'bob', at: 4 });
  const hashBefore = log.logHash;
  t.throws(() => log.append({ type: 'request_accepted', group: 'g', user: 'bob', at: 5 }), { code: 'SQLITE_CONSTRAINT_PRIMARYKEY' });
  t.equal(log.seq, before + 2, 'seq unchanged by the failed change');
  t.equal(log.logHash, hashBefore);
  t.ok(live.hasRequest('g', 'bob'), "the failed change's first write (deleting the request) was undone");
  t.same(live.session('11'), { id: '11', user: 'bob', expires_at: 9000 }, 'an earlier change of the batch stays');
  const closed = log.append({ type: 'session_closed', session: '11' });
  await Promise.all([opened.durable, requested.durable, closed.durable]);
  t.equal(live.session('11'), undefined, 'a later change of the batch applies on top');
  await log.drain();
  const state = reader(t, file);
  t.same(state.prepare('SELECT user FROM requests').pluck().all(), ['bob']);
  t.same(state.prepare('SELECT user FROM members ORDER BY user').pluck().all(), ['alice', 'bob']);
  t.equal(state.prepare('SELECT COUNT(*) FROM sessions').pluck().get(), 0);
  const texts = reader(t, logFile).prepare('SELECT change FROM sync_log ORDER BY seq').pluck().all() as string[];
  t.same(texts.map((x) => decodeChange(x).seq), [1, 2, 3, 4, 5, 6, 7], 'one log row per applied change, no gap');
  t.equal(log.logHash, independentHash(texts));
});

t.test('undoing a failed change takes back its own writes only, from memory, whatever the state file holds', async (t) => {
  // No state commit during the test: the state file is empty, and every batch before the
  // failing change lives only in memory and in the log.
  const { store, state: live, log, file } = await openLog(t, {}, undefined, { stateCommitMs: 60_000 });
  for (const name of ['alice', 'bob', 'carol']) await log.append(userCreated(name)).durable;
  await log.append({ type: 'group_created', group: 'g', owner: 'alice', at: 1 }).durable;
  t.equal(reader(t, file).prepare('SELECT COUNT(*) FROM users').pluck().get(), 0, 'nothing is in the state file yet');
  const dave = log.append(userCreated('dave'));
  t.throws(() => log.append({ type: 'group_created', group: 'g', owner: 'bob', at: 2 }), { code: 'SQLITE_CONSTRAINT_PRIMARYKEY' });
  t.same(live.listGroups(), [{ name: 'g', owner: 'alice', members: 1 }], 'the committed group is as it was, with its member');
  for (const name of ['alice', 'bob', 'carol', 'dave']) t.ok(live.user(name), `${name} is there`);
  await dave.durable;
  await log.drain();
  t.same(reader(t, file).prepare('SELECT name FROM users ORDER BY name').pluck().all(), ['alice', 'bob', 'carol', 'dave']);
  t.equal(store.getMeta('log_hash'), log.logHash, 'the state file ends on the log head');
});

t.test('a batch whose only change throws settles without committing anything or calling the hooks', async (t) => {
  // Regression: an empty batch used to crash the process (unhandled TypeError in finish()).
  const batches: CommittedBatch[] = [];
  const { store, logStore, log } = await openLog(t, { afterCommit: (b) => void batches.push(b), onDurable: (b) => void batches.push(b) });
  await log.append(userCreated('alice')).durable;
  const head = logStore.head();
  batches.length = 0;
  t.throws(() => log.append(userCreated('alice')), { code: 'SQLITE_CONSTRAINT_PRIMARYKEY' });
  t.equal(log.barrier(), undefined, 'nothing pending: no change was applied');
  await nextTick();
  await nextTick();
  t.notOk(logStore.db.inTransaction, 'the empty batch was closed');
  t.same(logStore.head(), head, 'the log head did not move');
  t.same(logStore.after(0, 10).map((r) => r.seq), [1], 'no log row was added');
  t.same(batches, [], 'no hook saw an empty batch');
  const next = log.append(userCreated('bob'));
  t.equal(next.change.seq, 2);
  await next.durable;
  await log.drain();
  t.equal(store.getMeta('seq'), '2');
});

t.test('a write lock held by another connection on the state file delays the file, not the changes', async (t) => {
  const fatals: unknown[] = [];
  const { store, log, file } = await openLog(t, { onFatal: (e) => fatals.push(e) }, undefined, { stateCommitMs: 10 });
  await log.append(userCreated('alice')).durable;
  await log.drain();
  const other = new Database(file);
  t.teardown(() => other.close());
  other.exec('BEGIN IMMEDIATE'); // e.g. an operator's sqlite3 shell in the middle of a write
  other.prepare("UPDATE meta SET value = value WHERE key = 'seq'").run();
  const bob = log.append(userCreated('bob'));
  await bob.durable;
  t.ok(log.state.user('bob'), 'the change is applied and answered: the state file is not in its way');
  t.equal(diskSeq(other), 1, 'the file is where it was');
  other.exec('ROLLBACK');
  await waitFor(() => log.stateFileSeq === 2, 'the writer to write the file once the lock is gone');
  t.equal(store.getMeta('seq'), '2');
  t.same(fatals, [], 'a lock is waited out, not fatal');
});

t.test('a write lock held by another connection on the log file fails the change and undoes its state', async (t) => {
  let rollbacks = 0;
  const { logStore, log, logFile } = await openLog(t, { onRollback: () => rollbacks++ });
  await log.append(userCreated('alice')).durable;
  const other = new Database(logFile);
  t.teardown(() => other.close());
  other.exec('BEGIN IMMEDIATE');
  logStore.db.pragma('busy_timeout = 20');
  t.throws(() => log.append(userCreated('bob')), { code: 'SQLITE_BUSY' }, 'the log row cannot be written');
  t.equal(log.state.user('bob'), undefined, 'the state change was undone with it: the log row is written last');
  t.equal(log.seq, 1, 'seq unchanged');
  t.equal(log.barrier(), undefined, 'nothing pending');
  await nextTick(); // the (empty) batch cannot commit either while the lock is held: it is rolled back
  t.notOk(logStore.db.inTransaction, 'the batch is closed');
  other.exec('ROLLBACK');
  const bob = log.append(userCreated('bob'));
  t.equal(bob.change.seq, 2, 'the seq was never used');
  await bob.durable;
  t.ok(log.state.user('bob'), 'writes resume once the lock is gone');
  t.same(logStore.after(0, 10).map((r) => r.seq), [1, 2]);
  t.equal(rollbacks, 1, 'the batch that could not commit was rolled back');
});

/**
 * A real COMMIT failure inside SQLite, in the log file: a deferred foreign
 * key, checked only at COMMIT, is violated by a trigger when the log row of
 * the user "poison" is inserted. The guard table and trigger exist only in
 * this test's log file.
 */
function poisonLog(logStore: LogStore): void {
  logStore.db.exec(`
    CREATE TABLE guard_parent (id INTEGER PRIMARY KEY);
    CREATE TABLE guard (parent INTEGER REFERENCES guard_parent(id) DEFERRABLE INITIALLY DEFERRED);
    CREATE TRIGGER poison AFTER INSERT ON sync_log WHEN NEW.change LIKE '%"user":"poison"%' BEGIN INSERT INTO guard (parent) VALUES (42); END;
  `);
  logStore.db.pragma('foreign_keys = ON');
}

t.test('a failed log COMMIT rolls the whole batch back, state included, and rejects its writers', async (t) => {
  let rollbacks = 0;
  const committed: CommittedBatch[] = [];
  const { state: live, logStore, log, file, logFile } = await openLog(t, { onRollback: () => rollbacks++, afterCommit: (b) => void committed.push(b) });
  poisonLog(logStore);
  await log.append(userCreated('alice')).durable;
  const committedHash = log.logHash;
  const logDb = reader(t, logFile);

  const bob = log.append(userCreated('bob'));
  const poison = log.append(userCreated('poison'));
  t.equal(log.seq, 3, 'both applied inside the open batch');
  t.ok(live.user('bob'));
  const results = await Promise.allSettled([bob.durable, poison.durable]);
  for (const r of results) {
    t.equal(r.status, 'rejected', 'every writer of the batch is rejected');
    if (r.status === 'rejected') {
      t.ok(r.reason instanceof TrackerError);
      t.equal((r.reason as TrackerError).code, 'INTERNAL');
    }
  }
  t.equal(rollbacks, 1, 'onRollback ran');
  t.equal(committed.length, 1, 'afterCommit never saw the failed batch');
  t.notOk(logStore.db.inTransaction, 'the log transaction was rolled back');
  t.equal(log.seq, 1, 'seq back to the last commit');
  t.equal(log.logHash, committedHash, 'log_hash back to the last commit');
  t.equal(log.barrier(), undefined, 'nothing pending');
  t.equal(live.user('bob'), undefined, "the batch's state is gone");
  t.equal(live.user('poison'), undefined);
  t.ok(live.user('alice'), 'the earlier batch stays');
  t.same(logDb.prepare('SELECT seq FROM sync_log').pluck().all(), [1], 'and so are its log rows');
  t.same(logStore.head(), { seq: 1, hash: committedHash }, 'the log head is the last committed batch');

  const carol = log.append(userCreated('carol'));
  t.equal(carol.change.seq, 2, 'the next change reuses the seq that was never committed');
  await carol.durable;
  const texts = logDb.prepare('SELECT change FROM sync_log ORDER BY seq').pluck().all() as string[];
  t.equal(texts.length, 2);
  t.equal(log.logHash, independentHash(texts), 'the chain continues from the committed history');
  await log.drain();
  const state = reader(t, file);
  t.same(state.prepare('SELECT name FROM users ORDER BY name').pluck().all(), ['alice', 'carol'], 'the state file never saw the failed batch');
  t.equal(diskSeq(state), 2);
  t.equal(state.prepare("SELECT value FROM meta WHERE key = 'log_hash'").pluck().get(), log.logHash);
});

t.test('sessions follow a rolled-back batch', async (t) => {
  // A batch that fails at the log COMMIT must leave no session it opened, closed
  // or touched as the batch had it (same poison as above).
  const { state: store, logStore, log } = await openLog(t);
  poisonLog(logStore);
  await log.append(userCreated('alice')).durable;
  await log.append({ type: 'session_opened', session: '7', user: 'alice', at: 1000, expires: 9000 }).durable;
  t.equal(store.session('7')?.expires_at, 9000, 'committed');

  const closed = log.append({ type: 'session_closed', session: '7' });
  const opened = log.append({ type: 'session_opened', session: '8', user: 'alice', at: 1000, expires: 9000 });
  const touched = log.append({ type: 'sessions_touched', sessions: [['9', 5]] });
  t.equal(store.session('7'), undefined, 'inside the batch the close is visible');
  t.ok(store.session('8'), 'and so is the new session');
  log.append(userCreated('poison'));
  const results = await Promise.allSettled([closed.durable, opened.durable, touched.durable]);
  t.same(results.map((r) => r.status), ['rejected', 'rejected', 'rejected']);

  t.same(store.session('7'), { id: '7', user: 'alice', expires_at: 9000 }, 'the closed session is back, as it was');
  t.equal(store.session('8'), undefined, 'the opened session is gone');
});

t.test('applyOne takes seq and epoch from elsewhere but only in order', async (t) => {
  const { logStore, log } = await openLog(t);
  const change: Change = { seq: 1, epoch: 4, body: userCreated('alice') };
  await log.applyOne(change).durable;
  t.same(log.entriesAfter(0, 10), [{ seq: 1, change: encodeChange(change) }]);
  t.same(logStore.after(0, 10), log.entriesAfter(0, 10), 'entriesAfter reads the log file');
  for (const seq of [1, 3]) {
    try {
      log.applyOne({ seq, epoch: 4, body: userCreated(`x${seq}`) });
      t.fail(`seq ${seq} accepted`);
    } catch (error) {
      t.ok(error instanceof TrackerError && error.code === 'INTERNAL', `seq ${seq} after 1 is refused`);
    }
  }
  t.equal(log.seq, 1);
  t.equal(log.barrier(), undefined, 'nothing was opened');
  t.notOk(logStore.db.inTransaction);
});

t.test('append after close() is refused', async (t) => {
  const { store, log } = await openLog(t);
  await log.append(userCreated('alice')).durable;
  await log.close();
  t.equal(store.getMeta('seq'), '1', 'close() writes the state file first');
  t.throws(() => log.append(userCreated('bob')), { code: 'INTERNAL' });
  await log.close(); // idempotent
});

/** A history touching every kind of change and every group rule. */
const HISTORY: ChangeBody[] = [
  userCreated('alice', 1),
  userCreated('bob', 2),
  userCreated('carol', 3),
  userCreated('dave', 4),
  { type: 'session_opened', session: '18446744073709551615', user: 'alice', at: 10, expires: 1000 },
  { type: 'session_opened', session: '9007199254740993', user: 'bob', at: 11, expires: 1001 },
  { type: 'session_opened', session: '42', user: 'carol', at: 12, expires: 500 },
  { type: 'group_created', group: 'g1', owner: 'alice', at: 20 },
  { type: 'group_created', group: 'g2', owner: 'bob', at: 21 },
  { type: 'join_requested', group: 'g1', user: 'dave', at: 22 },
  { type: 'join_requested', group: 'g1', user: 'bob', at: 23 },
  { type: 'join_requested', group: 'g1', user: 'carol', at: 24 },
  { type: 'request_accepted', group: 'g1', user: 'dave', at: 25 },
  { type: 'request_accepted', group: 'g1', user: 'bob', at: 26 },
  { type: 'request_rejected', group: 'g1', user: 'carol' },
  { type: 'join_requested', group: 'g2', user: 'carol', at: 27 },
  { type: 'sessions_touched', sessions: [['18446744073709551615', 2000], ['9007199254740993', 2001]] },
  { type: 'member_left', group: 'g1', user: 'alice' },
  { type: 'member_left', group: 'g2', user: 'bob' },
  { type: 'sessions_expired', sessions: ['42'], at: 600 },
  { type: 'session_closed', session: '9007199254740993' },
  { type: 'group_created', group: 'g2', owner: 'carol', at: 30 },
  { type: 'session_opened', session: '5', user: 'dave', at: 31, expires: 3000 },
  { type: 'file_shared', group: 'g1', file: 'f', size: 0, sha256: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855', piece_size: 1, hashes: '-', session: '5', user: 'dave', peer: '127.0.0.1:9000', at: 32 },
  { type: 'session_opened', session: '6', user: 'dave', at: 33, expires: 3001, evicted: ['5'] },
];

t.test('determinism: replaying the log into a fresh database gives the same state, seq, hash and events', async (t) => {
  const source = await openLog(t);
  const events: DomainEvent[][] = [];
  for (const [i, body] of HISTORY.entries()) {
    const a = source.log.append(body);
    events.push(a.events);
    if (i % 5 === 4) await a.durable; // several batches of several changes
  }
  await source.log.drain();
  const texts = source.log.entriesAfter(0, 1000).map((row) => row.change);
  t.equal(texts.length, HISTORY.length);

  const replica = await openLog(t);
  const replayedEvents: DomainEvent[][] = [];
  for (const text of texts) replayedEvents.push(replica.log.applyOne(decodeChange(text)).events);
  await replica.log.drain();

  t.equal(replica.log.seq, source.log.seq, 'same seq');
  t.equal(replica.log.logHash, source.log.logHash, 'same log_hash');
  t.equal(replica.log.logHash, independentHash(texts));
  t.same(replayedEvents, events, 'same events');
  t.same(dump(replica.store.db), dump(source.store.db), 'identical table contents');
  t.same(dumpLog(replica.logStore.db), dumpLog(source.logStore.db), 'identical log files');
  t.same(source.state.listGroups(), [
    { name: 'g1', owner: 'dave', members: 2 },
    { name: 'g2', owner: 'carol', members: 1 },
  ], 'the history did what it says');
  t.same(source.state.listRequests('g2'), [], "the deleted g2's pending request went with it");
  t.same(source.state.liveSessionsOf('dave', 0), ['6'], 'the login ended the session its change names');
  t.same(source.state.listLiveFiles('g1', 0), [], "and that session's share with it");

  // Replay once more, into files reopened between halves: the same again.
  const file = await tempDb(t);
  const first = openPair(file);
  for (const text of texts.slice(0, 9)) first.log.applyOne(decodeChange(text));
  await first.log.close();
  first.store.close();
  first.logStore.close();
  const second = await openLog(t, {}, file);
  t.equal(second.log.seq, 9, 'resumed after the first half');
  for (const text of texts.slice(9)) second.log.applyOne(decodeChange(text));
  await second.log.drain();
  t.equal(second.log.logHash, source.log.logHash, 'same hash across a restart');
  t.same(dump(second.store.db), dump(source.store.db), 'same tables across a restart');
  t.same(dumpLog(second.logStore.db).sync_log, dumpLog(source.logStore.db).sync_log, 'same log rows across a restart');
});

// --- applyChange: the rules of groups and sessions ------------------------

/** A log with the given users; `apply` appends a change and returns its events. */
async function world(t: Test, users: string[]) {
  const { state, log } = await openLog(t);
  for (const u of users) log.append(userCreated(u));
  const apply = (body: ChangeBody): DomainEvent[] => log.append(body).events;
  return { store: state, log, apply };
}

t.test('group_created: the creator is owner and first member, joined at the change seq', async (t) => {
  const { store, log, apply } = await world(t, ['alice']);
  t.same(apply({ type: 'group_created', group: 'g', owner: 'alice', at: 5 }), []);
  t.same(store.group('g'), { name: 'g', owner: 'alice' });
  t.same(store.listMembers('g'), [{ user: 'alice', joined_seq: log.seq }]);
  t.same(store.listGroups(), [{ name: 'g', owner: 'alice', members: 1 }]);
});

t.test('join requests: an event for the owner; accept and reject tell the requester', async (t) => {
  const { store, apply } = await world(t, ['alice', 'bob', 'carol']);
  apply({ type: 'group_created', group: 'g', owner: 'alice', at: 1 });
  t.same(apply({ type: 'join_requested', group: 'g', user: 'carol', at: 2 }), [{ users: ['alice'], text: 'join_request g carol' }]);
  t.same(apply({ type: 'join_requested', group: 'g', user: 'bob', at: 3 }), [{ users: ['alice'], text: 'join_request g bob' }]);
  t.same(store.listRequests('g'), ['carol', 'bob'], 'oldest first');
  t.same(apply({ type: 'request_accepted', group: 'g', user: 'bob', at: 4 }), [{ users: ['bob'], text: 'request_accepted g' }]);
  t.ok(store.isMember('g', 'bob'));
  t.notOk(store.hasRequest('g', 'bob'), 'the accepted request is gone');
  t.same(apply({ type: 'request_rejected', group: 'g', user: 'carol' }), [{ users: ['carol'], text: 'request_rejected g' }]);
  t.notOk(store.isMember('g', 'carol'), 'a rejected user is not a member');
  t.same(store.listRequests('g'), []);
});

t.test('the owner leaving hands ownership to the earliest-joined member, not the first by name', async (t) => {
  const { store, apply } = await world(t, ['mallory', 'zed', 'adam', 'bob']);
  apply({ type: 'group_created', group: 'g', owner: 'mallory', at: 1 });
  apply({ type: 'join_requested', group: 'g', user: 'adam', at: 2 });
  apply({ type: 'join_requested', group: 'g', user: 'zed', at: 3 });
  apply({ type: 'join_requested', group: 'g', user: 'bob', at: 4 });
  apply({ type: 'request_accepted', group: 'g', user: 'zed', at: 5 }); // zed joins first...
  apply({ type: 'request_accepted', group: 'g', user: 'adam', at: 6 }); // ...though adam asked first and sorts first
  const events = apply({ type: 'member_left', group: 'g', user: 'mallory' });
  t.same(events, [
    { users: ['adam', 'zed'], text: 'member_left g mallory' },
    { users: ['adam', 'zed'], text: 'owner_changed g zed' },
  ], 'member_left and owner_changed go to the remaining members');
  t.same(store.group('g'), { name: 'g', owner: 'zed' });
  t.same(store.listRequests('g'), ['bob'], 'pending requests survive a change of owner');

  t.same(apply({ type: 'member_left', group: 'g', user: 'adam' }), [{ users: ['zed'], text: 'member_left g adam' }], 'a member leaving: no owner change');
  t.equal(store.group('g')?.owner, 'zed');
  t.same(apply({ type: 'member_left', group: 'g', user: 'adam' }), [], 'leaving again changes nothing');
  t.same(apply({ type: 'member_left', group: 'nope', user: 'adam' }), [], 'leaving a missing group changes nothing');
});

t.test('the last member leaving deletes the group and its pending requests', async (t) => {
  const { store, apply } = await world(t, ['alice', 'bob', 'carol']);
  apply({ type: 'group_created', group: 'g', owner: 'alice', at: 1 });
  apply({ type: 'join_requested', group: 'g', user: 'bob', at: 2 });
  apply({ type: 'join_requested', group: 'g', user: 'carol', at: 3 });
  t.same(apply({ type: 'member_left', group: 'g', user: 'alice' }), [], 'nobody is left to tell');
  t.equal(store.group('g'), undefined, 'the group is gone');
  t.same(store.listMembers('g'), []);
  t.same(store.listRequests('g'), [], 'its pending requests are gone');
  t.same(store.listGroups(), []);
  apply({ type: 'group_created', group: 'g', owner: 'carol', at: 4 });
  t.same(store.listMembers('g').map((m) => m.user), ['carol'], 'the name can be taken again, from scratch');
  t.same(store.listRequests('g'), []);
});

t.test('session changes', async (t) => {
  const { store, apply } = await world(t, ['alice']);
  apply({ type: 'session_opened', session: '1', user: 'alice', at: 0, expires: 100 });
  apply({ type: 'session_opened', session: '2', user: 'alice', at: 0, expires: 100 });
  apply({ type: 'session_opened', session: '3', user: 'alice', at: 0, expires: 100 });
  apply({ type: 'sessions_touched', sessions: [['1', 300], ['2', 200]] });
  t.same(store.session('1'), { id: '1', user: 'alice', expires_at: 300 });
  t.equal(store.session('2')?.expires_at, 200);
  t.equal(store.liveSessionCount('alice', 150), 2);
  apply({ type: 'sessions_expired', sessions: ['3'], at: 150 });
  t.equal(store.session('3'), undefined);
  apply({ type: 'session_closed', session: '2' });
  t.same(store.liveSessionsOf('alice', 0), ['1']);
  apply({ type: 'group_created', group: 'g', owner: 'alice', at: 0 });
  apply({ type: 'file_shared', group: 'g', file: 'f', size: 0, sha256: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855', piece_size: 1, hashes: '-', session: '1', user: 'alice', peer: 'h:1', at: 0 });
  t.same(apply({ type: 'session_opened', session: '4', user: 'alice', at: 0, expires: 100, evicted: ['1'] }), [], 'an eviction, like a logout, tells nobody');
  t.same(store.liveSessionsOf('alice', 0), ['4'], 'a login ends the sessions its change names, and only those');
  t.equal(store.file('g', 'f'), undefined, "the ended session's share ended with it, as at logout");
});

t.test('applyChange is the same function the log uses and reads nothing but the store and the change', async (t) => {
  const { store } = await openLog(t);
  store.db.transaction(() => {
    t.same(applyChange(store, { seq: 1, epoch: 1, body: userCreated('alice') }), []);
    t.same(applyChange(store, { seq: 2, epoch: 1, body: { type: 'group_created', group: 'g', owner: 'alice', at: 9 } }), []);
  })();
  t.same(store.listMembers('g'), [{ user: 'alice', joined_seq: 2 }], 'joined_seq comes from the change, not a counter');
  const joinedAt = store.db.prepare('SELECT joined_at FROM members').pluck().get();
  t.equal(joinedAt, 9, 'times come from the change');
});

t.test('a batch holds at most MAX_BATCH_CHANGES changes, so one busy turn cannot make one huge commit', async (t) => {
  const sizes: number[] = [];
  const { log } = await openLog(t, { afterCommit: (b) => void sizes.push(b.changes.length) });
  const appended = [];
  for (let i = 0; i < 2 * MAX_BATCH_CHANGES + 500; i++) appended.push(log.append(userCreated(`u${i}`)));
  await Promise.all(appended.map((a) => a.durable));
  t.same(sizes, [MAX_BATCH_CHANGES, MAX_BATCH_CHANGES, 500], 'full batches commit at once; the rest on the next turn');
  t.equal(log.seq, 2 * MAX_BATCH_CHANGES + 500);
});

/**
 * The log's own WAL sync (store/wal-sync.ts): commits are made durable off
 * the event loop, concurrent callers share syncs, a replaced WAL file is
 * refused, and a failed sync stops the change log for good (fail-stop). The
 * log's sync is also what lets the state file move: the change log tells its
 * state writer (a worker thread) how far the log is synced, so a change
 * whose sync failed never reaches the state file. Real temporary files; the
 * failure is a real fdatasync on a closed descriptor.
 */
import { rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import t from 'tap';
import { LogStore, WalSync, logPathFor } from '@tracker-cluster/tracker-core';
import { tempDb, tempDir, waitFor } from './fixtures/env.js';
import { diskSeq, openPair, userCreated } from './fixtures/state.js';

t.test('sync() resolves; callers while a sync runs share the one after it', async (t) => {
  const file = path.join(await tempDir(t), 'x-wal');
  await writeFile(file, 'frames');
  const wal = new WalSync(file);
  t.teardown(() => wal.close());
  const first = wal.sync();
  const second = wal.sync();
  const third = wal.sync();
  t.not(first, second, 'a sync already running may predate the second caller’s writes: it gets the next one');
  t.equal(second, third, 'every caller during one sync shares the next');
  await Promise.all([first, second, third]);
  const later = wal.sync();
  t.not(later, third, 'after they finished, a new sync starts');
  await later;
  wal.syncNow();
});

t.test('syncNow() refuses a WAL file replaced under it: a stale descriptor syncs nothing', async (t) => {
  const dir = await tempDir(t);
  const file = path.join(dir, 'x-wal');
  await writeFile(file, 'frames');
  const wal = new WalSync(file);
  t.teardown(() => wal.close());
  await writeFile(path.join(dir, 'other'), 'other frames');
  await rename(path.join(dir, 'other'), file);
  t.throws(() => wal.syncNow(), /was replaced/);
});

t.test('the log syncs its own WAL with synchronous FULL or EXTRA, and leaves NORMAL to SQLite', async (t) => {
  for (const [mode, syncs] of [['FULL', true], ['EXTRA', true], ['NORMAL', false]] as const) {
    const logStore = LogStore.open(logPathFor(await tempDb(t, `${mode}.db`)), mode);
    t.equal(logStore.syncsItself, syncs, `${mode}: ${syncs ? 'synced by the log' : 'durable at checkpoints'}`);
    t.equal(logStore.db.pragma('synchronous', { simple: true }), 1, `${mode}: the connection itself runs NORMAL`);
    if (syncs) t.type(logStore.sync(), Promise);
    else t.equal(logStore.sync(), undefined);
    logStore.close();
  }
});

t.test('a failed sync of the log is fatal: the writers of the unsynced batch are refused, so is every later change, and the state file never gets it', async (t) => {
  const file = await tempDb(t);
  const fatals: unknown[] = [];
  // The state writer writes as soon as it is told the log is synced: a change it was told of would reach the file at once.
  const opened = openPair(file, { onFatal: (e) => fatals.push(e) }, { stateCommitMs: 0 });
  t.teardown(async () => {
    await opened.log.close();
    opened.store.close();
    opened.logStore.close();
  });
  await opened.log.append(userCreated('alice')).durable;
  await waitFor(() => opened.log.stateFileSeq === 1, 'the state writer to write the synced change');
  t.equal(diskSeq(opened.store.db), 1, 'the state file follows the log once it is synced');

  // The descriptor the log syncs through goes away: the next fdatasync fails for real.
  (opened.logStore as unknown as { wal: WalSync }).wal.close();
  const doomed = opened.log.append(userCreated('bob'));
  t.ok(opened.state.user('bob'), 'applied in memory at once');
  await t.rejects(doomed.durable, { code: 'INTERNAL' }, 'the writer of the batch is not told it is durable');
  t.equal(fatals.length, 1, 'onFatal ran once');
  t.throws(() => opened.log.append(userCreated('carol')), { code: 'INTERNAL' }, 'later changes are refused');
  await opened.log.drain(); // must return, not wait for a batch that will never be durable
  t.equal(fatals.length, 1);
  await opened.log.close();
  t.equal(opened.log.stateFileSeq, 1, 'the state writer was never told of the unsynced batch');
  t.equal(diskSeq(opened.store.db), 1, 'the state file holds only the synced change');
  t.same(opened.store.db.prepare('SELECT name FROM users ORDER BY name').pluck().all(), ['alice']);
});

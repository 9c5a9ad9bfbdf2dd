import t from 'tap';
import { StateWriter, Store } from '@tracker-cluster/tracker-core';
import type { StateWriterEvents } from '@tracker-cluster/tracker-core';
import { tempDb } from './fixtures/env.js';
import { diskSeq, dump, openLog, reader, userCreated } from './fixtures/state.js';

// The state writer replays the log into a state file from a worker thread.
// A ChangeLog writes a log (and its own state file, the reference); the writer
// brings a second, empty state file up to that log, only as far as it is told.

async function emptyStateFile(t: Parameters<typeof tempDb>[0]): Promise<string> {
  const file = await tempDb(t, 'follower.db');
  Store.open(file, 'NORMAL').close(); // the schema, at seq 0
  return file;
}

function startWriter(t: Parameters<typeof tempDb>[0], statePath: string, logPath: string, events: StateWriterEvents = {}): StateWriter {
  const writer = new StateWriter({ statePath, logPath, synchronous: 'NORMAL', commitMs: 20, maxRetryMs: 1000 }, events);
  t.teardown(() => writer.close());
  return writer;
}

t.test('the writer replays the log into the state file, up to the position it is given and no further', async (t) => {
  const { log, file, logFile } = await openLog(t, {}, undefined, { stateCommitMs: 0 });
  for (const name of ['ann', 'bob', 'cy']) await log.append(userCreated(name)).durable;
  const atThree = log.committedPosition;
  await log.append({ type: 'group_created', group: 'g', owner: 'ann', at: 5 }).durable;
  await log.append({ type: 'join_requested', group: 'g', user: 'bob', at: 6 }).durable;
  await log.drain();

  const follower = await emptyStateFile(t);
  const committed: number[] = [];
  const writer = startWriter(t, follower, logFile, { onCommitted: (seq) => committed.push(seq) });
  writer.advance(atThree);
  t.equal(await writer.drain(), true, 'drained');
  const view = reader(t, follower);
  t.equal(diskSeq(view), 3, 'the file is at the position given, not at the log head (5)');
  t.same(view.prepare('SELECT name FROM users ORDER BY name').pluck().all(), ['ann', 'bob', 'cy']);

  writer.advance(log.committedPosition);
  t.equal(await writer.drain(), true);
  t.same(dump(view), dump(reader(t, file)), 'every table and the position, as the change log has them');
  t.ok(committed.includes(5), 'onCommitted reported the new position');
});

t.test('without a drain, the writer commits by itself within commitMs', async (t) => {
  const { log, logFile } = await openLog(t, {}, undefined, { stateCommitMs: 0 });
  await log.append(userCreated('ann')).durable;
  await log.drain();
  const follower = await emptyStateFile(t);
  let resolveCommitted!: (seq: number) => void;
  const committed = new Promise<number>((resolve) => (resolveCommitted = resolve));
  const writer = startWriter(t, follower, logFile, { onCommitted: resolveCommitted });
  writer.advance(log.committedPosition);
  t.equal(await committed, 1, 'committed by its timer');
  t.equal(diskSeq(reader(t, follower)), 1);
});

t.test('a log that does not chain to the position it is given is fatal, and nothing is written', async (t) => {
  const { log, logFile } = await openLog(t, {}, undefined, { stateCommitMs: 0 });
  await log.append(userCreated('ann')).durable;
  await log.drain();
  const follower = await emptyStateFile(t);
  const fatals: Error[] = [];
  const writer = startWriter(t, follower, logFile, { onFatal: (e) => fatals.push(e) });
  writer.advance({ seq: 1, hash: 'f'.repeat(64) });
  t.equal(await writer.drain(), false, 'the drain reports the failure');
  t.equal(fatals.length, 1, 'onFatal once');
  t.equal(fatals[0]?.name, 'LogMismatchError');
  t.match(fatals[0]?.message, /another log_hash/);
  t.equal(diskSeq(reader(t, follower)), 0, 'the state file was not written');
  t.equal(await writer.drain(), false, 'nothing is written any more');
});

t.test('a state file ahead of the position is left as it is', async (t) => {
  const { log, file, logFile } = await openLog(t, {}, undefined, { stateCommitMs: 0 });
  for (const name of ['ann', 'bob']) await log.append(userCreated(name)).durable;
  await log.drain();
  const follower = await tempDb(t, 'copy.db');
  reader(t, file).prepare('VACUUM INTO ?').run(follower); // the reference state, at seq 2
  const writer = startWriter(t, follower, logFile);
  writer.advance({ seq: 1, hash: 'x' });
  t.equal(await writer.drain(), true);
  t.equal(diskSeq(reader(t, follower)), 2);
});

t.test('a worker that cannot open its files reports an error with a message, not a bare object', async (t) => {
  // An ES module worker's SqliteError reaches the parent as a plain { code } (structured clone);
  // the fail-stop message used to read "[object Object]".
  const follower = await emptyStateFile(t);
  let fatal: unknown;
  const writer = startWriter(t, follower, `${follower}-no-such-log`, { onFatal: (error) => (fatal = error) });
  t.equal(await writer.drain(), false, 'nothing can be drained');
  t.ok(fatal instanceof Error, 'onFatal gets an Error');
  t.match((fatal as Error).message, /^the state writer stopped: .*\S/, 'with a message that says what failed');
  t.match(fatal, { code: 'SQLITE_CANTOPEN' }, 'and the code');
});

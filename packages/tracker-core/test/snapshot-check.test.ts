// A replica checks a received snapshot (PRAGMA integrity_check, which reads
// every page: ~450 ms for a 40 MB state) in a worker thread: on the event
// loop the check held every client of the replica that long.
import { writeFileSync, readFileSync } from 'node:fs';
import t from 'tap';
import { Store, checkSnapshotFileInWorker } from '@tracker-cluster/tracker-core';
import { tempDb } from './fixtures/env.js';
import type { Test } from './fixtures/env.js';

async function stateFile(t: Test): Promise<string> {
  const path = await tempDb(t, 'snap.db');
  const store = Store.open(path, 'FULL');
  store.setMeta('seq', 7);
  store.db.pragma('wal_checkpoint(TRUNCATE)');
  store.close();
  return path;
}

t.test('the check lets the event loop turn before it settles', async (t) => {
  const path = await stateFile(t);
  const order: string[] = [];
  const checked = checkSnapshotFileInWorker(path).then(() => order.push('checked'));
  setImmediate(() => order.push('event loop turned'));
  await checked;
  t.strictSame(order, ['event loop turned', 'checked'], 'other work ran while the file was being checked');
});

t.test('a sound file passes; a damaged one is refused with the reason', async (t) => {
  const path = await stateFile(t);
  await t.resolves(checkSnapshotFileInWorker(path));
  const bytes = readFileSync(path);
  bytes.fill(0x5a, 100, 4096); // the header's tail and the first page's content
  writeFileSync(path, bytes);
  await t.rejects(checkSnapshotFileInWorker(path));
  const missing = `${path}.none`;
  await t.rejects(checkSnapshotFileInWorker(missing));
});

/**
 * Retention by size against the real tracker-primary: changes can be as
 * large as a frame (an `upload_file` of many piece hashes), so a count of
 * changes alone does not bound the log's disk; `--log-retention-bytes` does.
 */
import Database from 'better-sqlite3';
import t from 'tap';
import { expectAnswer, signUp } from './helpers/commands.js';
import { startTracker } from './helpers/tracker.js';
import { connect, waitFor } from './helpers/wire.js';

/** Bytes of change text the log file holds, and its first seq (read beside the running tracker: WAL readers do not block it). */
function logRows(dbPath: string): { bytes: number; first: number; rows: number } {
  const db = new Database(`${dbPath}-log`, { readonly: true });
  try {
    const row = db.prepare('SELECT COALESCE(SUM(length(change)), 0) AS bytes, COALESCE(MIN(seq), 0) AS first, COUNT(*) AS rows FROM sync_log').get() as {
      bytes: number;
      first: number;
      rows: number;
    };
    return row;
  } finally {
    db.close();
  }
}

t.test('--log-retention-bytes drops the oldest changes once the log passes it, well within --log-retention', async (t) => {
  const limit = 1024 * 1024;
  const tracker = await startTracker(t, { args: ['--log-retention-bytes', String(limit), '--max-frame', String(2 * 1024 * 1024)] });
  const c = await connect(tracker.port);
  t.teardown(() => c.close());
  const session = await signUp(c, 'ana');
  await expectAnswer(c, 'create_group g', 'OK group created', session);
  // 1,500 piece hashes: each upload_file is a change of ~100 KB; 40 of them ~4 MB, in ~90 changes.
  const hash = 'b'.repeat(64);
  const pieces = 1500;
  const hashes = Array.from({ length: pieces }, () => hash).join(',');
  for (let i = 0; i < 40; i++) {
    t.equal((await c.request(`upload_file g f${i} ${pieces} ${hash} 1 127.0.0.1:9 ${hashes}`, session)).payload, 'OK shared f' + i + ' seeders=1');
    t.equal((await c.request(`stop_share g f${i}`, session)).payload, `OK stopped sharing f${i}`);
  }
  await waitFor(() => logRows(tracker.dbPath).bytes <= limit, { message: 'the log to be trimmed to --log-retention-bytes', timeoutMs: 15_000 });
  const after = logRows(tracker.dbPath);
  t.ok(after.first > 1, `the oldest changes were dropped (the log starts at seq ${after.first})`);
  t.ok(after.rows > 0, `the newest ${after.rows} are kept`);
  const status = (await c.request('status')).payload;
  t.match(status, / seq=8\d\b/, 'the state goes on from the whole history');
  t.equal((await c.request('list_groups', session)).payload.split('\n')[0], 'OK 1');
});

/**
 * Runs in a worker thread (see checkpointer.ts): checkpoints the tracker's
 * WAL files from connections of its own, so that copying WAL frames into
 * the database files, and their fsyncs, never stall the event loop.
 * PASSIVE only: it never waits for, nor blocks, the tracker's writer.
 */
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';

const { paths, intervalMs } = workerData as { paths: string[]; intervalMs: number };
const dbs = paths.map((path) => {
  const db = new Database(path, { fileMustExist: true });
  db.pragma('busy_timeout = 0');
  db.pragma('synchronous = FULL');
  return db;
});

const timer = setInterval(() => {
  for (const db of dbs) {
    try {
      db.pragma('wal_checkpoint(PASSIVE)');
    } catch {
      // Busy (another checkpoint, or a snapshot being installed): the next tick tries again.
    }
  }
}, intervalMs);

parentPort?.on('message', (message) => {
  if (message !== 'stop') return;
  clearInterval(timer);
  for (const db of dbs) db.close();
  parentPort?.close();
});

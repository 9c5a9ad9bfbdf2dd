/**
 * Runs in a worker thread (see snapshot-check.ts): `PRAGMA integrity_check`
 * of a received snapshot file, from a connection of its own, and posts the
 * outcome: `{ ok: true }` or `{ ok: false, message }`.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { checkSnapshotFile } from './store.js';

const { path } = workerData as { path: string };
try {
  checkSnapshotFile(path);
  parentPort?.postMessage({ ok: true });
} catch (error) {
  parentPort?.postMessage({ ok: false, message: error instanceof Error ? error.message : String(error) });
}

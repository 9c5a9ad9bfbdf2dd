import { Worker } from 'node:worker_threads';
import { asWorkerError } from './worker-error.js';

/**
 * `checkSnapshotFile` (a readable SQLite database that passes
 * `PRAGMA integrity_check`) in a worker thread: the check reads every page
 * of the file, about 450 ms for a 40 MB state, and on the event loop it held
 * every client of the replica that long. Resolves when the file is sound,
 * rejects with the reason otherwise. The worker does not inherit the
 * process's `--import` loaders (`execArgv: []`): it is plain compiled JavaScript.
 */
export function checkSnapshotFileInWorker(path: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let settled = false;
    const settle = (error?: Error): void => {
      if (settled) return;
      settled = true;
      if (error) reject(error);
      else resolve();
    };
    const worker = new Worker(new URL('./snapshot-check-worker.js', import.meta.url), { workerData: { path }, execArgv: [] });
    worker.on('message', (outcome: { ok: boolean; message?: string }) => settle(outcome.ok ? undefined : new Error(outcome.message ?? 'snapshot failed its check')));
    worker.on('error', (error) => settle(asWorkerError(error, 'snapshot check worker')));
    worker.on('exit', (code) => settle(new Error(`the snapshot check worker exited (code ${code}) without an answer`)));
  });
}

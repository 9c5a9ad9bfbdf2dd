import { once } from 'node:events';
import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import { asWorkerError } from './worker-error.js';

/** How often the worker checkpoints; the WAL stays a few batches long. */
export const CHECKPOINT_INTERVAL_MS = 200;
/**
 * The tracker's own connections checkpoint only past this many WAL pages
 * (~40 MB): a safety net for when the worker cannot keep up or failed to
 * start. SQLite's default, 1,000 pages, put a checkpoint with its fsyncs on
 * the event loop every few thousand writes: the tail of the write latency
 * and of the replication lag.
 */
export const FALLBACK_AUTOCHECKPOINT_PAGES = 10_000;

/**
 * Checkpoints the state and log files from a worker thread (store/checkpoint-worker.ts).
 * The worker does not inherit the process's `--import` loaders (`execArgv: []`): it is plain compiled JavaScript.
 */
export class Checkpointer {
  private readonly worker: Worker;
  private stopped = false;

  constructor(paths: readonly string[], logger: Logger, intervalMs = CHECKPOINT_INTERVAL_MS) {
    this.worker = new Worker(new URL('./checkpoint-worker.js', import.meta.url), { workerData: { paths, intervalMs }, execArgv: [] });
    this.worker.unref();
    this.worker.on('error', (error) => {
      if (!this.stopped) logger.warn({ err: asWorkerError(error, 'checkpoint worker') }, 'WAL checkpoint worker failed; the tracker checkpoints by itself from now on');
    });
  }

  /** Stops the worker and closes its connections (before the tracker closes its own, so the last close tidies the WAL). */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    const exited = once(this.worker, 'exit').catch(() => undefined);
    this.worker.postMessage('stop');
    const timer = setTimeout(() => void this.worker.terminate(), 2000);
    await exited;
    clearTimeout(timer);
  }
}

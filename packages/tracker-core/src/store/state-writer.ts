import { once } from 'node:events';
import { Worker } from 'node:worker_threads';
import type { SqliteSynchronous } from '../options.js';
import type { LogPosition } from './log-store.js';
import { asWorkerError } from './worker-error.js';

/** Messages to the worker (store/state-writer-worker.ts). */
export type ToWriter = { type: 'advance'; seq: number; hash: string } | { type: 'drain'; id: number } | { type: 'close' };
/** Messages from it. */
export type FromWriter =
  | { type: 'committed'; seq: number }
  | { type: 'full'; message: string }
  | { type: 'busy'; message: string }
  | { type: 'writable'; seq: number; failedAttempts: number }
  | { type: 'fatal'; message: string; name: string }
  | { type: 'drained'; id: number; ok: boolean };

export interface StateWriterOptions {
  statePath: string;
  logPath: string;
  synchronous: SqliteSynchronous;
  /** Longest the state file may lag the position given to `advance` (ms). */
  commitMs: number;
  /** Longest wait between two attempts while the disk is full (ms). */
  maxRetryMs: number;
}

export interface StateWriterEvents {
  /** The state file now holds every change up to `seq`. */
  onCommitted?: (seq: number) => void;
  /** The file could not be written for want of space (`error`), or can be again (undefined). */
  onDiskFull?: (error: Error | undefined) => void;
  /** Another connection held the file's write lock past the busy timeout; the writer retries. */
  onBusy?: (error: Error) => void;
  /** The file can be neither written nor caught up with the log: nothing more will be written. */
  onFatal?: (error: Error) => void;
}

/**
 * Keeps the state file caught up with the log from a worker thread, so that
 * its SQLite work and fsyncs never run on the event loop. `advance` tells it
 * how far the log is on disk: the state file never leads the log.
 */
export class StateWriter {
  private readonly worker: Worker;
  private readonly drains = new Map<number, (ok: boolean) => void>();
  private nextId = 1;
  private closed = false;
  private fatal: Error | undefined;

  constructor(options: StateWriterOptions, events: StateWriterEvents = {}) {
    this.worker = new Worker(new URL('./state-writer-worker.js', import.meta.url), { workerData: options, execArgv: [] });
    // It keeps the process alive only while someone waits on it (drain, close): a tracker that forgot to close must still exit.
    this.worker.unref();
    this.worker.on('message', (message: FromWriter) => {
      switch (message.type) {
        case 'committed':
          events.onCommitted?.(message.seq);
          return;
        case 'full':
          events.onDiskFull?.(Object.assign(new Error(message.message), { code: 'SQLITE_FULL' }));
          return;
        case 'busy':
          events.onBusy?.(Object.assign(new Error(message.message), { code: 'SQLITE_BUSY' }));
          return;
        case 'writable':
          events.onDiskFull?.(undefined);
          return;
        case 'fatal':
          this.fatal = Object.assign(new Error(message.message), { name: message.name });
          events.onFatal?.(this.fatal);
          return;
        case 'drained':
          this.drains.get(message.id)?.(message.ok);
          this.drains.delete(message.id);
          if (this.drains.size === 0 && !this.closed) this.worker.unref();
          return;
      }
    });
    this.worker.on('error', (thrown) => {
      const error = asWorkerError(thrown, 'state writer');
      this.fatal = error;
      events.onFatal?.(error);
      this.settleDrains();
    });
    this.worker.on('exit', () => this.settleDrains());
  }

  /** The log is on disk up to `position`: the state file may follow it there. */
  advance(position: LogPosition): void {
    if (!this.closed) this.worker.postMessage({ type: 'advance', seq: position.seq, hash: position.hash } satisfies ToWriter);
  }

  /** Writes the state file up to the last `advance` now; resolves false when it could not. */
  drain(): Promise<boolean> {
    if (this.closed || this.fatal !== undefined) return Promise.resolve(false);
    const id = this.nextId++;
    this.worker.ref();
    return new Promise((resolve) => {
      this.drains.set(id, resolve);
      this.worker.postMessage({ type: 'drain', id } satisfies ToWriter);
    });
  }

  /** Stops the worker and closes its connections. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.worker.ref();
    const exited = once(this.worker, 'exit').catch(() => undefined);
    this.worker.postMessage({ type: 'close' } satisfies ToWriter);
    const timer = setTimeout(() => void this.worker.terminate(), 2000);
    await exited;
    clearTimeout(timer);
  }

  /** Stops the worker at once, writing nothing more, as a crash of the process would. */
  async terminate(): Promise<void> {
    this.closed = true;
    await this.worker.terminate();
  }

  private settleDrains(): void {
    for (const resolve of this.drains.values()) resolve(false);
    this.drains.clear();
  }
}

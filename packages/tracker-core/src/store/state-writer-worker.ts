/**
 * Runs in a worker thread (see state-writer.ts): keeps the state file caught
 * up with the log, so that the tracker's main thread holds the state in
 * memory and never writes it. It replays the log's rows, up to the position
 * the main thread says is on disk, from connections of its own: one to the
 * state file, one read-only to the log.
 */
import { readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';
import type { SqliteSynchronous } from '../options.js';
import { GENESIS_HASH, replayLog } from '../state/log-chain.js';
import type { LogEntry, LogPosition } from './log-store.js';
import { Store } from './store.js';
import type { FromWriter, ToWriter } from './state-writer.js';

const { statePath, logPath, synchronous, commitMs, maxRetryMs } = workerData as {
  statePath: string;
  logPath: string;
  synchronous: SqliteSynchronous;
  commitMs: number;
  maxRetryMs: number;
};
const port = parentPort as NonNullable<typeof parentPort>;
const post = (message: FromWriter): void => port.postMessage(message);

lowerOwnPriority();
const store = Store.open(statePath, synchronous);
const log = new Database(logPath, { readonly: true, fileMustExist: true });
const after = log.prepare('SELECT seq, change FROM sync_log WHERE seq > ? ORDER BY seq LIMIT ?');
const readRows = (seq: number, limit: number): LogEntry[] => after.all(seq, limit) as LogEntry[];

let target: LogPosition | undefined;
let timer: NodeJS.Timeout | undefined;
/** Commits that failed in a row (no disk space, or the file locked): the next is put off accordingly. */
let failures = 0;
/** Which fault of the moment was last reported, so that each is reported once, and its end too. */
let reported: 'full' | 'busy' | undefined;
let stopped = false;

/** Replays the rows up to `target` and commits them with the position; returns where the file stands. */
function catchUp(): number {
  let at = 0;
  store.db
    .transaction(() => {
      const from = { seq: Number(store.getMeta('seq') ?? 0), hash: store.getMeta('log_hash') ?? GENESIS_HASH };
      at = from.seq;
      if (target === undefined || target.seq <= from.seq) return;
      replayLog(store, readRows, logPath, from, target);
      store.setMeta('seq', target.seq);
      store.setMeta('log_hash', target.hash);
      at = target.seq;
    })
    .immediate();
  return at;
}

/** One attempt; true when the file is at `target`. Reports the outcome to the main thread. */
function attempt(): boolean {
  try {
    const seq = catchUp();
    if (reported !== undefined) post({ type: 'writable', seq, failedAttempts: failures });
    failures = 0;
    reported = undefined;
    post({ type: 'committed', seq });
    return true;
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    // No room, or another connection holding the file's write lock past the busy timeout: faults of the moment.
    const fault = code === 'SQLITE_FULL' ? 'full' : code === 'SQLITE_BUSY' ? 'busy' : undefined;
    if (fault !== undefined) {
      failures++;
      if (reported !== fault) post({ type: fault, message: (error as Error).message });
      reported = fault;
      return false;
    }
    stopped = true;
    post({ type: 'fatal', message: (error as Error).message, name: (error as Error).name });
    return false;
  }
}

function schedule(): void {
  if (timer !== undefined || stopped) return;
  const delay = Math.min(commitMs * 2 ** failures, Math.max(commitMs, maxRetryMs));
  timer = setTimeout(() => {
    timer = undefined;
    if (!attempt() && !stopped) schedule();
  }, delay);
}

port.on('message', (message: ToWriter) => {
  switch (message.type) {
    case 'advance':
      target = { seq: message.seq, hash: message.hash };
      schedule();
      return;
    case 'drain': {
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
      const ok = !stopped && attempt();
      post({ type: 'drained', id: message.id, ok });
      if (!ok && !stopped) schedule();
      return;
    }
    case 'close':
      if (timer !== undefined) clearTimeout(timer);
      stopped = true;
      store.close();
      log.close();
      port.close();
      return;
  }
});

/**
 * Background work: on Linux this thread gives way to the event loop when
 * both want a core (nice +10, this thread only). Its replays come in bursts
 * (100 ms of changes at once); at the same priority they took the core the
 * event loop needed and showed in the answers' tail latency. Where threads
 * cannot be told apart, it runs as it is.
 */
function lowerOwnPriority(): void {
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    if (Number.isSafeInteger(tid)) setPriority(tid, 10);
  } catch {
    // not Linux, or no /proc: nothing to do
  }
}

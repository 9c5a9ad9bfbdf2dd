import * as crypto from 'node:crypto';
import type { LogEntry, LogPosition } from '../store/log-store.js';
import type { StateStore } from '../store/store.js';
import { applyChange } from './apply.js';
import { decodeChange } from './changes.js';

/**
 * The log as a hash chain, and replaying it into a state: what the change
 * log does when it opens, and whoever else brings a state file up to the log.
 */

/** h_0 of the rolling log hash: 32 zero bytes. */
export const GENESIS_HASH = '0'.repeat(64);

/** `crypto.hash` (Node 20.12+; not in @types/node 20): a one-shot digest without a Hash object. */
const oneShot = (crypto as { hash?: (algorithm: string, data: Buffer, encoding: 'hex') => string }).hash;

/** h_n = SHA-256(h_{n-1} ‖ change_n), over the raw previous digest and the change's canonical text. */
export function nextLogHash(previousHex: string, changeText: string): string {
  // One buffer and one one-shot digest: a Hash object per change was a few percent of a write.
  const length = Buffer.byteLength(changeText, 'utf8');
  const input = Buffer.allocUnsafe(32 + length);
  if (oneShot === undefined || input.write(previousHex, 0, 32, 'hex') !== 32 || previousHex.length !== 64) {
    return crypto.createHash('sha256').update(Buffer.from(previousHex, 'hex')).update(changeText, 'utf8').digest('hex');
  }
  input.write(changeText, 32, length, 'utf8');
  return oneShot('sha256', input, 'hex');
}

/** The log and the state file do not belong together; the tracker must not start on them. */
export class LogMismatchError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LogMismatchError';
  }
}

/** Rows replayed per read. */
const REPLAY_CHUNK = 1000;

/**
 * Applies the log's rows after `from` up to `to` to a state, inside the
 * caller's transaction, checking that they follow on and that the hash
 * chain lands on `to.hash`. `rows(after, limit)` reads the log (`logName`
 * names it in errors). Throws LogMismatchError when they do not.
 */
export function replayLog(
  state: StateStore,
  rows: (after: number, limit: number) => LogEntry[],
  logName: string,
  from: LogPosition,
  to: LogPosition,
): void {
  let { seq, hash } = from;
  while (seq < to.seq) {
    const chunk = rows(seq, REPLAY_CHUNK);
    if (chunk.length === 0 || (chunk[0] as LogEntry).seq !== seq + 1) {
      throw new LogMismatchError(`the log ${logName} has no row for seq ${seq + 1}`);
    }
    for (const row of chunk) {
      if (row.seq > to.seq) break;
      applyChange(state, decodeChange(row.change));
      seq = row.seq;
      hash = nextLogHash(hash, row.change);
    }
  }
  if (hash !== to.hash) throw new LogMismatchError(`replaying the log to seq ${to.seq} gives another log_hash than it records`);
}

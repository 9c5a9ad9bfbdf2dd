/**
 * The worker thread behind `PieceSink` (./piece-sink.ts): checks each piece
 * against its SHA-256, writes it at its offset in the part file, and hashes
 * the whole file in piece order as the verified pieces become contiguous.
 * Runs off the downloader's main thread, which is left with the sockets.
 */
import { createHash } from 'node:crypto';
import { closeSync, constants, openSync, readSync, write } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import type { MessagePort } from 'node:worker_threads';
import type { SinkInit, SinkReply, SinkRequest } from './piece-sink.js';
import { pieceCount } from './pieces.js';

const init = workerData as SinkInit;
if (!parentPort) throw new Error('piece-sink-worker runs as a worker thread');
const port: MessagePort = parentPort;

const count = pieceCount(init.size, init.pieceSize);
/** Verified pieces on disk: the earlier run's (resume) and this run's. */
const onDisk = new Uint8Array(count);
for (let i = 0; i < count; i++) if ((init.have[i >> 3]! >> (7 - (i & 7))) & 1) onDisk[i] = 1;
// The download created this file; whatever replaced it by a symlink since is not written through.
const fd = openSync(init.path, constants.O_RDWR | constants.O_NOFOLLOW);
const whole = createHash('sha256');
/** The whole-file hash covers pieces 0 .. next-1. */
let next = 0;

/** A verified piece in this thread: freed once written and no longer needed for the whole-file hash. */
interface Held {
  data: Buffer;
  written: boolean;
  /** Hashed into the whole file already, or left to be read back from disk. */
  hashed: boolean;
}
/** Verified pieces past `next` kept in memory for the whole-file hash (at most `pendingLimit` bytes). */
const pending = new Map<number, Held>();
let pendingBytes = 0;
let writing = 0;
let finishAsked = false;
let closeAsked = false;
let fdOpen = true;
let scratch: Buffer | undefined;
/** Buffers done with, given back to the main thread with the next reply (it reuses them). */
let free: ArrayBuffer[] = [];

function lengthOf(index: number): number {
  return index === count - 1 ? init.size - index * init.pieceSize : init.pieceSize;
}

function reply(message: SinkReply): void {
  const given = free;
  free = [];
  port.postMessage({ ...message, free: given }, given);
}

function release(held: Held): void {
  if (held.written && held.hashed) free.push(held.data.buffer as ArrayBuffer);
}

/** Feeds the whole-file hash every piece contiguous with what it has: kept ones from memory, others read back from disk. */
function advance(): void {
  while (next < count) {
    const held = pending.get(next);
    if (held) {
      whole.update(held.data);
      pending.delete(next);
      pendingBytes -= held.data.length;
      held.hashed = true;
      release(held);
    } else if (onDisk[next] === 1) {
      const length = lengthOf(next);
      if (!scratch || scratch.length < length) scratch = Buffer.allocUnsafe(length);
      const into = scratch.subarray(0, length);
      let got = 0;
      while (got < length) {
        const n = readSync(fd, into, got, length - got, next * init.pieceSize + got);
        if (n === 0) throw new Error('the part file is shorter than the file');
        got += n;
      }
      whole.update(into);
    } else {
      return;
    }
    next++;
  }
}

/** Writes all of `data` at `offset` (in libuv's thread pool: the next piece is checked meanwhile). */
function writeAll(data: Buffer, offset: number, done: (error: NodeJS.ErrnoException | null) => void, from = 0): void {
  write(fd, data, from, data.length - from, offset + from, (error, n) => {
    if (error) done(error);
    else if (from + n < data.length) writeAll(data, offset, done, from + n);
    else done(null);
  });
}

function onPiece(index: number, data: Buffer): void {
  if (createHash('sha256').update(data).digest('hex') !== init.hashes[index]) {
    free.push(data.buffer as ArrayBuffer);
    reply({ type: 'piece', index, result: 'bad' });
    return;
  }
  const held: Held = { data, written: false, hashed: false };
  if (index === next) {
    whole.update(data);
    held.hashed = true;
    next++;
  } else if (index > next && pendingBytes + data.length <= init.pendingLimit) {
    pending.set(index, held);
    pendingBytes += data.length;
  } else {
    held.hashed = true; // read back from disk when its turn comes
  }
  writing++;
  writeAll(data, index * init.pieceSize, (error) => {
    writing--;
    held.written = true;
    if (error) {
      if (pending.delete(index)) pendingBytes -= data.length;
      held.hashed = true;
      release(held);
      reply({ type: 'piece', index, result: 'error', message: error.code ?? error.message });
    } else {
      onDisk[index] = 1;
      release(held);
      reply({ type: 'piece', index, result: 'ok' });
      // The whole-file hash may have been waiting for this piece to be on disk.
      try {
        advance();
      } catch {
        // a short part file: `finish` reports it
      }
    }
    if (writing === 0) {
      if (finishAsked) finish();
      if (closeAsked) close();
    }
  });
  try {
    advance();
  } catch {
    // a short part file: `finish` reports it
  }
}

function finish(): void {
  let message: SinkReply;
  try {
    advance();
    if (next < count) throw new Error(`piece ${next} is missing`);
    message = { type: 'finish', sha256: whole.digest('hex') };
  } catch (error) {
    message = { type: 'finish', error: (error as NodeJS.ErrnoException).code ?? (error instanceof Error ? error.message : String(error)) };
  }
  finishAsked = false;
  closeFile();
  reply(message);
}

function closeFile(): void {
  if (fdOpen) closeSync(fd);
  fdOpen = false;
}

/** Asked by `PieceSink.close`: once no write is under way, the file is closed and the thread ends. */
function close(): void {
  closeFile();
  port.close();
}

// The pieces verified by an earlier run (resume) that start the file are hashed now.
try {
  advance();
} catch {
  // left for `finish`, which reports it
}

port.on('message', (message: SinkRequest) => {
  if (message.type === 'piece') onPiece(message.index, Buffer.from(message.buffer, message.offset, message.length));
  else if (message.type === 'close') {
    closeAsked = true;
    if (writing === 0) close();
  } else if (writing > 0) finishAsked = true;
  else finish();
});

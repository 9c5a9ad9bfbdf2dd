import { Worker } from 'node:worker_threads';
import { sha256Hex } from './hashing.js';

/** What the worker is asked: the SHA-256 of `length` bytes of `buffer`, which it sends back. */
export interface HashRequest {
  id: number;
  buffer: ArrayBuffer;
  length: number;
}

export interface HashReply {
  id: number;
  sha256: string;
  buffer: ArrayBuffer;
}

/**
 * Pieces up to this size are hashed on the calling thread: measured here, a
 * round trip to the worker costs ~0.06–0.1 ms, what hashing 64 KiB costs
 * (a 64 MiB piece takes 40–80 ms, all of which the event loop would stop for).
 */
export const INLINE_HASH_MAX = 64 * 1024;

interface Waiter {
  resolve: (reply: HashReply) => void;
  reject: (error: Error) => void;
}

/**
 * SHA-256 of pieces in a worker thread (./piece-hasher-worker.ts), so that a
 * large piece does not stop the event loop of the process that checks it.
 * The bytes go to the worker by transfer and come back (no copy either way);
 * meanwhile the caller's buffer is unusable, so `sha256` resolves with the
 * buffer to use from then on. The worker starts on first use and does not
 * keep the process alive while it has nothing to do; if it dies, the pieces
 * it held are rejected and the next one starts another.
 */
export class PieceHasher {
  private worker: Worker | undefined;
  private closed = false;
  private readonly waiting = new Map<number, Waiter>();
  private nextId = 0;

  /** The piece's SHA-256 (hex), and its bytes (the same memory, given back). */
  async sha256(bytes: Buffer): Promise<{ sha256: string; bytes: Buffer }> {
    // Small, or sharing its memory with other buffers (which cannot be transferred): here.
    if (bytes.length <= INLINE_HASH_MAX || bytes.byteOffset !== 0 || bytes.buffer.byteLength !== bytes.length) {
      return { sha256: sha256Hex(bytes), bytes };
    }
    // A request still running when the server closed must not start a worker nobody will stop.
    if (this.closed) throw new Error('the piece hasher was closed');
    const worker = this.start();
    const id = this.nextId++;
    // Read now: once transferred, `bytes` is empty.
    const length = bytes.length;
    const reply = await new Promise<HashReply>((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      if (this.waiting.size === 1) worker.ref();
      const request: HashRequest = { id, buffer: bytes.buffer as ArrayBuffer, length };
      worker.postMessage(request, [request.buffer]);
    });
    return { sha256: reply.sha256, bytes: Buffer.from(reply.buffer, 0, length) };
  }

  /** Stops the worker; pieces being hashed are rejected. */
  async close(): Promise<void> {
    this.closed = true;
    const worker = this.worker;
    this.stopped(new Error('the piece hasher was closed'));
    await worker?.terminate();
  }

  private start(): Worker {
    if (this.worker) return this.worker;
    // Plain compiled JavaScript: not the process's `--import` loaders, which would only slow its start.
    const worker = new Worker(new URL('./piece-hasher-worker.js', import.meta.url), { execArgv: [] });
    worker.unref();
    worker.on('message', (reply: HashReply) => {
      const waiter = this.waiting.get(reply.id);
      this.waiting.delete(reply.id);
      if (this.waiting.size === 0) worker.unref();
      waiter?.resolve(reply);
    });
    worker.on('error', (error) => {
      if (this.worker === worker) this.stopped(error);
    });
    worker.once('exit', (code) => {
      if (this.worker === worker) this.stopped(new Error(`the piece hasher stopped (exit ${code})`));
    });
    this.worker = worker;
    return worker;
  }

  private stopped(error: Error): void {
    this.worker = undefined;
    for (const waiter of this.waiting.values()) waiter.reject(error);
    this.waiting.clear();
  }
}

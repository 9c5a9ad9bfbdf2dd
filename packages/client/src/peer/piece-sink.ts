import { Worker } from 'node:worker_threads';
import type { Bitfield } from './bitfield.js';

/** What the worker is started with. */
export interface SinkInit {
  /** The part file, already created at its full size. */
  path: string;
  size: number;
  pieceSize: number;
  /** SHA-256 of each piece (hex), from `file_peers`. */
  hashes: string[];
  /** Pieces already verified on disk (resume), as bitfield bytes. */
  have: Uint8Array;
  /** Bytes of verified pieces kept in memory, ahead of the whole-file hash. */
  pendingLimit: number;
}

export type SinkRequest = { type: 'piece'; index: number; buffer: ArrayBuffer; offset: number; length: number } | { type: 'finish' } | { type: 'close' };

export type SinkReply = (
  | { type: 'piece'; index: number; result: 'ok' | 'bad' | 'error'; message?: string }
  | { type: 'finish'; sha256?: string; error?: string }
) & { free?: ArrayBuffer[] };

interface Waiter {
  resolve: (reply: SinkReply) => void;
  reject: (error: Error) => void;
}

export type PieceVerdict = 'ok' | 'bad';

/** Default bound on the verified pieces held for the whole-file hash: 32 MiB. */
export const DEFAULT_PENDING_LIMIT = 32 * 1024 * 1024;

/**
 * Where a download's pieces go: a worker thread (./piece-sink-worker.ts)
 * that checks each piece's SHA-256, writes the good ones at their offset in
 * the part file, and computes the whole file's SHA-256 in piece order as the
 * pieces become contiguous — keeping at most `pendingLimit` bytes of pieces
 * that came early, reading back from the part file the ones it did not keep
 * (and those of an earlier run). Every byte is hashed once per check, and
 * none of it on the downloader's main thread.
 *
 * A piece's bytes are handed over by transfer: the buffer given to `put`
 * must own its whole `ArrayBuffer` (as `PeerFrameReader` payloads do) and is
 * unusable afterwards.
 */
export class PieceSink {
  private readonly worker: Worker;
  /** Pieces handed over, by index (answered as each is written, not necessarily in order). */
  private readonly waiting = new Map<number, Waiter>();
  private finishing: Waiter | undefined;
  private failure: Error | undefined;
  private readonly exited: Promise<void>;

  /** `reuse` gets back the buffers of the pieces the worker is done with. */
  constructor(
    path: string,
    meta: { size: number; pieceSize: number; hashes: string[] },
    have: Bitfield,
    options: { pendingLimit?: number; reuse?: (buffer: ArrayBuffer) => void } = {},
  ) {
    const pendingLimit = options.pendingLimit ?? DEFAULT_PENDING_LIMIT;
    const reuse = options.reuse;
    const init: SinkInit = { path, size: meta.size, pieceSize: meta.pieceSize, hashes: meta.hashes, have: Buffer.from(have.toHex(), 'hex'), pendingLimit };
    this.worker = new Worker(new URL('./piece-sink-worker.js', import.meta.url), { workerData: init });
    this.worker.on('message', (reply: SinkReply) => {
      if (reply.free && reuse) for (const buffer of reply.free) reuse(buffer);
      const waiter = reply.type === 'piece' ? this.waiting.get(reply.index) : this.finishing;
      if (reply.type === 'piece') this.waiting.delete(reply.index);
      else this.finishing = undefined;
      waiter?.resolve(reply);
    });
    this.worker.on('error', (error) => this.fail(error));
    this.exited = new Promise((resolve) =>
      this.worker.once('exit', (code) => {
        this.fail(new Error(`the piece writer stopped (exit ${code})`));
        resolve();
      }),
    );
  }

  /**
   * Checks piece `index` and, when good, writes it: 'ok' once it is on disk,
   * 'bad' when its SHA-256 is not the expected one (nothing written). Rejects
   * on a write error.
   */
  async put(index: number, data: Buffer): Promise<PieceVerdict> {
    const own = data.buffer as ArrayBuffer;
    const request: SinkRequest = { type: 'piece', index, buffer: own, offset: data.byteOffset, length: data.length };
    if (this.waiting.has(index)) throw new Error(`piece ${index} is being written already`);
    const reply = await this.send(request, [own], (waiter) => this.waiting.set(index, waiter));
    if (reply.type !== 'piece') throw new Error('the piece writer answered out of turn');
    if (reply.result === 'error') throw Object.assign(new Error(reply.message ?? 'write failed'), { code: reply.message });
    return reply.result;
  }

  /** The whole file's SHA-256, once every piece is in; the worker then closes the file. */
  async finish(): Promise<string> {
    const reply = await this.send({ type: 'finish' }, [], (waiter) => (this.finishing = waiter));
    if (reply.type !== 'finish' || reply.sha256 === undefined) throw new Error(`cannot hash the part file: ${reply.type === 'finish' ? reply.error : 'bad answer'}`);
    return reply.sha256;
  }

  /**
   * Stops the worker: it closes its file once the writes under way are done
   * and ends (terminated if it has not within `graceMs`). Pieces not yet
   * answered are rejected.
   */
  async close(graceMs = 5_000): Promise<void> {
    this.fail(new Error('the piece writer was closed'));
    this.worker.postMessage({ type: 'close' } satisfies SinkRequest);
    const timer = setTimeout(() => void this.worker.terminate(), graceMs);
    await this.exited;
    clearTimeout(timer);
  }

  private send(request: SinkRequest, transfer: ArrayBuffer[], register: (waiter: Waiter) => void): Promise<SinkReply> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      register({ resolve, reject });
      this.worker.postMessage(request, transfer);
    });
  }

  private fail(error: Error): void {
    const failure = (this.failure ??= error);
    for (const waiter of this.waiting.values()) waiter.reject(failure);
    this.waiting.clear();
    this.finishing?.reject(failure);
    this.finishing = undefined;
  }
}

import { LENGTH_BYTES, SESSION_BYTES, TrackerError } from '@tracker-cluster/protocol';

/**
 * The downloader's frame decoder for a peer link: the same frames and limits
 * as `FrameDecoder` of @tracker-cluster/protocol (`[u32 len][u64 session]
 * [payload]`, a bad length detected from the header alone, before anything
 * is allocated), but each payload is assembled in a buffer of its own, sized
 * from the header (from `allocate`, e.g. a `PieceBufferPool`). A payload
 * therefore has an `ArrayBuffer` to itself: a piece can be handed to a
 * worker thread by transfer, without a copy, and no payload keeps a
 * neighbour's bytes alive.
 *
 * Two ways in: `push(chunk)` copies what a socket delivered; or the socket
 * reads straight into `nextBuffer()` (`net.connect`'s `onread`) and
 * `filled(n)` is told how many bytes it wrote there — then a piece's bytes
 * are copied only by the kernel. Reads never go past the end of a frame.
 * Pure.
 */
export class PeerFrameReader {
  readonly maxPayload: number;
  /** Header bytes of the next frame seen so far. */
  private readonly header = Buffer.alloc(LENGTH_BYTES + SESSION_BYTES);
  private headerHave = 0;
  /** The payload being filled, once its header is complete. */
  private payload: Buffer | undefined;
  private payloadHave = 0;
  private failed: TrackerError | undefined;
  private readonly allocate: (size: number) => Buffer;

  /** `allocate(size)`: a buffer of `size` bytes whose `ArrayBuffer` no other buffer uses (default `Buffer.allocUnsafeSlow`). */
  constructor(options: { maxPayload: number; allocate?: (size: number) => Buffer }) {
    this.maxPayload = options.maxPayload;
    this.allocate = options.allocate ?? ((size) => Buffer.allocUnsafeSlow(size));
  }

  /** Bytes held for the frame not yet complete. */
  get bufferedBytes(): number {
    return this.headerHave + this.payloadHave;
  }

  /** Where the next bytes of the stream go (never empty, never past the current frame). */
  nextBuffer(): Buffer {
    if (this.failed) return this.header;
    if (this.payload === undefined) return this.header.subarray(this.headerHave);
    return this.payload.subarray(this.payloadHave);
  }

  /**
   * `n` bytes were written at the start of `nextBuffer()`. Returns the
   * payload the frame they complete, if any (the session field, 0 on peer
   * links, is skipped). A bad length throws; the reader is then failed for
   * good.
   */
  filled(n: number): Buffer | undefined {
    if (this.failed) throw this.failed;
    if (this.payload === undefined) {
      const before = this.headerHave;
      this.headerHave += n;
      // The length is checked as soon as its 4 bytes are in, before anything is allocated.
      if (before < LENGTH_BYTES && this.headerHave >= LENGTH_BYTES) this.checkLength(this.header.readUInt32BE(0));
      if (this.headerHave < this.header.length) return undefined;
      this.payload = this.allocate(this.header.readUInt32BE(0) - SESSION_BYTES);
      this.payloadHave = 0;
    } else {
      this.payloadHave += n;
    }
    if (this.payloadHave < this.payload.length) return undefined;
    const done = this.payload;
    this.payload = undefined;
    this.payloadHave = 0;
    this.headerHave = 0;
    return done;
  }

  /** Returns the payload of every frame the chunk completes (copying the chunk in). */
  push(chunk: Buffer): Buffer[] {
    const out: Buffer[] = [];
    let at = 0;
    while (at < chunk.length) {
      const into = this.nextBuffer();
      const take = Math.min(into.length, chunk.length - at);
      chunk.copy(into, 0, at, at + take);
      at += take;
      const payload = this.filled(take);
      if (payload) out.push(payload);
    }
    return out;
  }

  private checkLength(length: number): void {
    if (length < SESSION_BYTES) this.fail(new TrackerError('PROTOCOL', `frame length ${length} is below the minimum of ${SESSION_BYTES}`));
    if (length - SESSION_BYTES > this.maxPayload) {
      this.fail(new TrackerError('FRAME_TOO_LARGE', `frame payload of ${length - SESSION_BYTES} bytes exceeds the maximum of ${this.maxPayload}`));
    }
  }

  private fail(error: TrackerError): never {
    this.failed = error;
    this.payload = undefined;
    throw error;
  }
}

/**
 * Buffers of `capacity` bytes for piece answers, reused: the reader takes
 * one per large frame, the sink's worker gives it back once the piece is
 * written (and hashed into the whole file). At most `keep` idle buffers are
 * kept; smaller frames get buffers of their own.
 */
export class PieceBufferPool {
  readonly capacity: number;
  private readonly keep: number;
  private readonly free: ArrayBuffer[] = [];

  constructor(capacity: number, keep = 32) {
    this.capacity = capacity;
    this.keep = keep;
  }

  get idle(): number {
    return this.free.length;
  }

  take(size: number): Buffer {
    if (size > this.capacity || size < this.capacity / 2) return Buffer.allocUnsafeSlow(size);
    const reused = this.free.pop();
    return Buffer.from(reused ?? Buffer.allocUnsafeSlow(this.capacity).buffer, 0, size);
  }

  give(buffer: ArrayBuffer): void {
    if (buffer.byteLength === this.capacity && this.free.length < this.keep) this.free.push(buffer);
  }
}

import { Buffer } from 'node:buffer';
import { TrackerError } from './errors.js';
import type { SessionId } from './session.js';
import { MAX_SESSION } from './session.js';

/**
 * Wire frame: `[u32 BE length][u64 BE session][payload]`, where
 * `length = 8 + payload bytes` (PROTOCOL.md §1).
 */
export interface Frame {
  session: SessionId;
  payload: Buffer;
}

export const LENGTH_BYTES = 4;
export const SESSION_BYTES = 8;
export const HEADER_BYTES = LENGTH_BYTES + SESSION_BYTES;
/** Default maximum payload: 1 MiB. */
export const DEFAULT_MAX_PAYLOAD = 1024 * 1024;
/** The largest payload the u32 length field can describe. */
export const ABSOLUTE_MAX_PAYLOAD = 0xffff_ffff - SESSION_BYTES;

/** Answers up to this many characters are written byte by byte when they are ASCII: cheaper than a call into C++. */
const SHORT_TEXT = 128;

export function encodeFrame(session: SessionId, payload: Buffer | string): Buffer {
  if (session < 0n || session > MAX_SESSION) {
    throw new RangeError(`session id out of u64 range: ${session}`);
  }
  if (typeof payload === 'string' && payload.length <= SHORT_TEXT && isAscii(payload)) {
    const n = payload.length;
    const frame = Buffer.allocUnsafe(HEADER_BYTES + n);
    writeHeader(frame, session, n);
    for (let i = 0; i < n; i++) frame[HEADER_BYTES + i] = payload.charCodeAt(i);
    return frame;
  }
  // A string is written straight into the frame: no intermediate buffer and copy.
  const length = typeof payload === 'string' ? Buffer.byteLength(payload, 'utf8') : payload.length;
  if (length > ABSOLUTE_MAX_PAYLOAD) throw new RangeError('payload too large for a frame');
  const frame = Buffer.allocUnsafe(HEADER_BYTES + length);
  writeHeader(frame, session, length);
  if (typeof payload === 'string') frame.write(payload, HEADER_BYTES, 'utf8');
  else payload.copy(frame, HEADER_BYTES);
  return frame;
}

function isAscii(text: string): boolean {
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) >= 0x80) return false;
  return true;
}

function writeHeader(frame: Buffer, session: SessionId, payloadLength: number): void {
  frame.writeUInt32BE(SESSION_BYTES + payloadLength, 0);
  // Most answers carry no session; writing a zero u64 as two u32s skips the BigInt arithmetic.
  if (session === 0n) {
    frame.writeUInt32BE(0, LENGTH_BYTES);
    frame.writeUInt32BE(0, LENGTH_BYTES + 4);
  } else frame.writeBigUInt64BE(session, LENGTH_BYTES);
}

export interface FrameDecoderOptions {
  /** Largest accepted payload in bytes (default 1 MiB). */
  maxPayload?: number;
}

/**
 * Incremental frame decoder. `push()` takes whatever a socket delivered and
 * returns every frame completed by it. A bad length is detected from the
 * 4-byte header alone, before anything is allocated for the frame, so the
 * decoder never holds more than one maximal frame. After it throws, the
 * decoder is failed for good: the connection is to be closed.
 */
export class FrameDecoder {
  private limit: number;
  private chunks: Buffer[] = [];
  private buffered = 0;
  /** Total length of the frame being assembled (header included), once known. */
  private expected = -1;
  private failed: TrackerError | undefined;

  constructor(options: FrameDecoderOptions = {}) {
    this.limit = checkMaxPayload(options.maxPayload ?? DEFAULT_MAX_PAYLOAD);
  }

  /** Largest accepted payload in bytes. */
  get maxPayload(): number {
    return this.limit;
  }

  /** Raises the largest accepted payload (never lowers it): a peer that proved who it is may send more. */
  raiseMaxPayload(max: number): void {
    this.limit = Math.max(this.limit, checkMaxPayload(max));
  }

  /** Bytes held for the frame not yet complete. */
  get bufferedBytes(): number {
    return this.buffered;
  }

  /** The fault that ended this decoder, if any. */
  get error(): TrackerError | undefined {
    return this.failed;
  }

  /**
   * Returns every frame the chunk completes. A fault throws — unless whole
   * frames came before it in the same chunk: those are returned first (the
   * requests were sent in good faith and deserve their answers) and the fault
   * is left in `error`; the next `push` throws it.
   */
  push(chunk: Buffer): Frame[] {
    if (this.failed) throw this.failed;
    const frames: Frame[] = [];
    try {
      this.decodeInto(chunk, frames);
    } catch (error) {
      if (frames.length > 0 && error === this.failed) return frames;
      throw error;
    }
    return frames;
  }

  private decodeInto(chunk: Buffer, frames: Frame[]): void {
    let offset = 0;
    // Fast path: nothing buffered, so frames can be sliced straight out of the chunk.
    while (this.buffered === 0 && chunk.length - offset >= LENGTH_BYTES) {
      const total = this.checkLength(chunk.readUInt32BE(offset));
      if (chunk.length - offset < total) break;
      frames.push(sliceFrame(chunk, offset, total));
      offset += total;
    }
    if (offset === chunk.length) return;
    this.append(offset === 0 ? chunk : chunk.subarray(offset));
    for (;;) {
      if (this.expected < 0) {
        if (this.buffered < LENGTH_BYTES) break;
        this.expected = this.checkLength(this.peekLength());
      }
      if (this.buffered < this.expected) break;
      const joined = this.chunks.length === 1 ? (this.chunks[0] as Buffer) : Buffer.concat(this.chunks, this.buffered);
      frames.push(sliceFrame(joined, 0, this.expected));
      const rest = joined.subarray(this.expected);
      this.chunks = rest.length > 0 ? [rest] : [];
      this.buffered = rest.length;
      this.expected = -1;
    }
  }

  private append(part: Buffer): void {
    this.chunks.push(part);
    this.buffered += part.length;
  }

  private peekLength(): number {
    const first = this.chunks[0] as Buffer;
    if (first.length >= LENGTH_BYTES) return first.readUInt32BE(0);
    return Buffer.concat(this.chunks, this.buffered).readUInt32BE(0);
  }

  /** Validates a length field and returns the frame's total size on the wire. */
  private checkLength(length: number): number {
    if (length < SESSION_BYTES) {
      this.fail(new TrackerError('PROTOCOL', `frame length ${length} is below the minimum of ${SESSION_BYTES}`));
    }
    if (length - SESSION_BYTES > this.maxPayload) {
      this.fail(
        new TrackerError(
          'FRAME_TOO_LARGE',
          `frame payload of ${length - SESSION_BYTES} bytes exceeds the maximum of ${this.maxPayload}`,
        ),
      );
    }
    return LENGTH_BYTES + length;
  }

  private fail(error: TrackerError): never {
    this.failed = error;
    this.chunks = [];
    this.buffered = 0;
    throw error;
  }
}

function checkMaxPayload(max: number): number {
  if (!Number.isInteger(max) || max < 0 || max > ABSOLUTE_MAX_PAYLOAD) {
    throw new RangeError(`maxPayload must be an integer in 0..${ABSOLUTE_MAX_PAYLOAD}`);
  }
  return max;
}

function sliceFrame(buf: Buffer, offset: number, total: number): Frame {
  const at = offset + LENGTH_BYTES;
  // Session-less frames (pings, logins, tracker links) need no BigInt arithmetic.
  const none = buf.readUInt32BE(at) === 0 && buf.readUInt32BE(at + 4) === 0;
  return {
    session: none ? 0n : buf.readBigUInt64BE(at),
    payload: buf.subarray(offset + HEADER_BYTES, offset + total),
  };
}

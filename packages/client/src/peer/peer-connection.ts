import net from 'node:net';
import { encodeFrame, formatHostPort } from '@tracker-cluster/protocol';
import type { HostPort } from '@tracker-cluster/protocol';
import type { Bitfield } from './bitfield.js';
import { PeerFrameReader } from './frame-reader.js';
import { MAX_PIECE_SIZE } from './pieces.js';
import { formatHaveRequest, formatPieceRequest, maxPeerAnswer, parseHaveAnswer, parsePieceAnswer } from './wire.js';

/** The connection dropped, or the peer went quiet, with requests outstanding. */
export class PeerConnectionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PeerConnectionError';
  }
}

export interface PeerConnectionOptions {
  /** Largest piece expected. Default 64 MiB. */
  maxPieceSize?: number;
  /**
   * Pieces of the file: its `HAVE` answer grows with them. The frame limit is
   * the larger of the piece and that answer, plus room for the text line
   * (`maxPeerAnswer`). Default 0.
   */
  pieces?: number;
  connectTimeoutMs?: number;
  /** With requests outstanding, no byte for this long closes the connection. Default 30 s. */
  stallTimeoutMs?: number;
  /** Where answers are assembled (see `PeerFrameReader`); e.g. a `PieceBufferPool`'s `take`. */
  allocate?: (size: number) => Buffer;
}

interface Pending {
  resolve: (payload: Buffer) => void;
  reject: (error: Error) => void;
}

/**
 * The downloader's side of one peer connection: requests pipelined, answers
 * matched in order (each answer in a buffer of its own: ./frame-reader.ts). Any failure rejects every outstanding request with a
 * `PeerConnectionError`, and the connection is done.
 */
export class PeerConnection {
  readonly address: HostPort;
  private readonly socket: net.Socket;
  private readonly pending: Pending[] = [];
  private readonly stallTimeoutMs: number;
  private failure: Error | undefined;
  private closeHandlers: ((error: Error) => void)[] = [];

  private constructor(socket: net.Socket, address: HostPort, options: PeerConnectionOptions) {
    this.socket = socket;
    this.address = address;
    this.stallTimeoutMs = options.stallTimeoutMs ?? 30_000;
    socket.setNoDelay(true);
    socket.on('error', (error: Error) => this.fail(new PeerConnectionError(`${this.name}: ${(error as NodeJS.ErrnoException).code ?? error.message}`)));
    socket.on('close', () => this.fail(new PeerConnectionError(`${this.name}: connection closed`)));
    socket.on('timeout', () => {
      if (this.pending.length > 0) this.fail(new PeerConnectionError(`${this.name}: no data for ${this.stallTimeoutMs} ms`));
    });
    socket.setTimeout(this.stallTimeoutMs);
  }

  static connect(address: HostPort, options: PeerConnectionOptions = {}): Promise<PeerConnection> {
    const timeoutMs = options.connectTimeoutMs ?? 5_000;
    return new Promise((resolve, reject) => {
      // The socket reads straight into the frame being assembled (no 'data' chunks to copy from).
      const maxPayload = maxPeerAnswer(options.maxPieceSize ?? MAX_PIECE_SIZE, options.pieces ?? 0);
      const reader = new PeerFrameReader({ maxPayload, allocate: options.allocate });
      let conn: PeerConnection | undefined;
      const early: (Buffer | Error)[] = [];
      const onread = {
        buffer: () => reader.nextBuffer(),
        callback: (n: number): boolean => {
          let got: Buffer | Error | undefined;
          try {
            got = reader.filled(n);
          } catch (error) {
            got = error instanceof Error ? error : new Error(String(error));
          }
          if (got === undefined) return true;
          if (conn) conn.onFrame(got);
          else early.push(got);
          return true;
        },
      };
      const socket = net.connect({ host: address.host, port: address.port, onread });
      const timer = setTimeout(() => socket.destroy(Object.assign(new Error('connect timed out'), { code: 'ETIMEDOUT' })), timeoutMs);
      const onError = (error: NodeJS.ErrnoException): void => {
        clearTimeout(timer);
        socket.destroy();
        reject(new PeerConnectionError(`${formatHostPort(address)}: ${error.code ?? error.message}`));
      };
      socket.once('error', onError);
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.off('error', onError);
        conn = new PeerConnection(socket, address, options);
        for (const got of early.splice(0)) conn.onFrame(got);
        resolve(conn);
      });
    });
  }

  get name(): string {
    return formatHostPort(this.address);
  }

  get isOpen(): boolean {
    return this.failure === undefined;
  }

  get outstanding(): number {
    return this.pending.length;
  }

  /** Called once when the connection fails or is closed. */
  onClose(handler: (error: Error) => void): void {
    if (this.failure) handler(this.failure);
    else this.closeHandlers.push(handler);
  }

  async have(group: string, sha256: string, pieces: number): Promise<Bitfield> {
    return parseHaveAnswer(await this.request(formatHaveRequest(group, sha256)), pieces);
  }

  async piece(group: string, sha256: string, index: number, length: number): Promise<Buffer> {
    return parsePieceAnswer(await this.request(formatPieceRequest(group, sha256, index)), index, length);
  }

  close(): void {
    this.fail(new PeerConnectionError(`${this.name}: closed by us`));
  }

  private request(line: string): Promise<Buffer> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.pending.push({ resolve, reject });
      // Requests issued in the same tick (a pipeline being filled) leave in one write.
      if (this.socket.writableCorked === 0) {
        this.socket.cork();
        process.nextTick(() => this.socket.uncork());
      }
      this.socket.write(encodeFrame(0n, line));
    });
  }

  /** A whole answer from the reader, or its framing fault. */
  private onFrame(got: Buffer | Error): void {
    if (this.failure) return;
    if (got instanceof Error) {
      this.fail(new PeerConnectionError(`${this.name}: bad frame (${got.message})`));
      return;
    }
    const entry = this.pending.shift();
    if (!entry) {
      // An unasked answer: `ERR BUSY` before the peer closes, or a broken peer.
      const text = got.subarray(0, 200).toString('utf8');
      this.fail(new PeerConnectionError(`${this.name}: ${text.startsWith('ERR ') ? text.slice(4) : 'unexpected frame'}`));
      return;
    }
    entry.resolve(got);
  }

  private fail(error: Error): void {
    if (this.failure) return;
    this.failure = error;
    this.socket.destroy();
    for (const entry of this.pending.splice(0)) entry.reject(error);
    for (const handler of this.closeHandlers.splice(0)) handler(error);
  }
}

import net from 'node:net';
import { encodeFrame, formatHostPort, FrameDecoder } from '@tracker-cluster/protocol';
import type { HostPort } from '@tracker-cluster/protocol';
import type { Bitfield } from './bitfield.js';
import { MAX_PIECE_SIZE } from './pieces.js';
import { formatHaveRequest, formatPieceRequest, parseHaveAnswer, parsePieceAnswer, PIECE_HEADER_ROOM } from './wire.js';

/** The connection dropped, or the peer went quiet, with requests outstanding. */
export class PeerConnectionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PeerConnectionError';
  }
}

export interface PeerConnectionOptions {
  /** Largest piece expected (the frame limit is this plus room for the text line). Default 64 MiB. */
  maxPieceSize?: number;
  connectTimeoutMs?: number;
  /** With requests outstanding, no byte for this long closes the connection. Default 30 s. */
  stallTimeoutMs?: number;
}

interface Pending {
  resolve: (payload: Buffer) => void;
  reject: (error: Error) => void;
}

/**
 * The downloader's side of one peer connection: requests pipelined, answers
 * matched in order. Any failure rejects every outstanding request with a
 * `PeerConnectionError`, and the connection is done.
 */
export class PeerConnection {
  readonly address: HostPort;
  private readonly socket: net.Socket;
  private readonly decoder: FrameDecoder;
  private readonly pending: Pending[] = [];
  private readonly stallTimeoutMs: number;
  private failure: Error | undefined;
  private closeHandlers: ((error: Error) => void)[] = [];

  private constructor(socket: net.Socket, address: HostPort, options: PeerConnectionOptions) {
    this.socket = socket;
    this.address = address;
    this.decoder = new FrameDecoder({ maxPayload: (options.maxPieceSize ?? MAX_PIECE_SIZE) + PIECE_HEADER_ROOM });
    this.stallTimeoutMs = options.stallTimeoutMs ?? 30_000;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
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
      const socket = net.connect({ host: address.host, port: address.port });
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
        resolve(new PeerConnection(socket, address, options));
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
      this.socket.write(encodeFrame(0n, line));
    });
  }

  private onData(chunk: Buffer): void {
    let frames;
    try {
      frames = this.decoder.push(chunk);
    } catch (error) {
      this.fail(new PeerConnectionError(`${this.name}: bad frame (${error instanceof Error ? error.message : String(error)})`));
      return;
    }
    for (const frame of frames) {
      const entry = this.pending.shift();
      if (!entry) {
        // An unasked answer: `ERR BUSY` before the peer closes, or a broken peer.
        const text = frame.payload.subarray(0, 200).toString('utf8');
        this.fail(new PeerConnectionError(`${this.name}: ${text.startsWith('ERR ') ? text.slice(4) : 'unexpected frame'}`));
        return;
      }
      entry.resolve(frame.payload);
    }
  }

  private fail(error: Error): void {
    if (this.failure) return;
    this.failure = error;
    this.socket.destroy();
    for (const entry of this.pending.splice(0)) entry.reject(error);
    for (const handler of this.closeHandlers.splice(0)) handler(error);
  }
}

import net from 'node:net';
import { open } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { encodeFrame, FrameDecoder } from '@tracker-cluster/protocol';
import type { HostPort } from '@tracker-cluster/protocol';
import { pieceCount, pieceLength, pieceOffset } from './pieces.js';
import { RateLimiter } from './rate-limiter.js';
import type { ShareTable } from './share-table.js';
import { MAX_PEER_REQUEST, encodePieceAnswerHead, formatHaveAnswer, parsePeerRequest } from './wire.js';

export interface PieceServerOptions {
  /** Peer connections served at once (upload slots); one more gets `ERR BUSY` and is closed. Default 32. */
  maxConnections?: number;
  /** Upload limit in bytes per second over all peers; 0 = none (default). */
  uploadRate?: number;
  /** Requests read ahead per connection before the socket is paused (TCP backpressure). Default 16. */
  maxQueued?: number;
  /** A connection with no request for this long is closed. Default 120 s. */
  idleTimeoutMs?: number;
}

export const DEFAULT_MAX_UPLOAD_CONNECTIONS = 32;

export interface PieceServerStats {
  connections: number;
  piecesServed: number;
  bytesServed: number;
  refusedBusy: number;
}

/**
 * The peer side of the client: serves the pieces of the files in the
 * `ShareTable` over the peer protocol (./wire.ts). Each connection's
 * requests are answered one at a time, in order, reading only the piece
 * asked for from disk (`FileHandle.read` at its offset). Uploads are bounded
 * by the number of connections served at once.
 */
export class PieceServer {
  private readonly table: ShareTable;
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();
  private readonly maxConnections: number;
  private readonly maxQueued: number;
  private readonly idleTimeoutMs: number;
  private readonly limiter: RateLimiter;
  private bound: HostPort | undefined;
  readonly stats: PieceServerStats = { connections: 0, piecesServed: 0, bytesServed: 0, refusedBusy: 0 };

  constructor(table: ShareTable, options: PieceServerOptions = {}) {
    this.table = table;
    this.maxConnections = options.maxConnections ?? DEFAULT_MAX_UPLOAD_CONNECTIONS;
    this.maxQueued = options.maxQueued ?? 16;
    this.idleTimeoutMs = options.idleTimeoutMs ?? 120_000;
    this.limiter = new RateLimiter(options.uploadRate ?? 0);
    this.server = net.createServer((socket) => this.accept(socket));
  }

  /** Listens; resolves with the address bound (the real port when 0 was asked). */
  listen(address: HostPort): Promise<HostPort> {
    return new Promise((resolve, reject) => {
      const onError = (error: Error): void => reject(error);
      this.server.once('error', onError);
      this.server.listen(address.port, address.host, () => {
        this.server.off('error', onError);
        const info = this.server.address() as net.AddressInfo;
        this.bound = { host: address.host, port: info.port };
        resolve(this.bound);
      });
    });
  }

  get address(): HostPort | undefined {
    return this.bound;
  }

  close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    return new Promise((resolve) => {
      if (!this.server.listening) resolve();
      else this.server.close(() => resolve());
    });
  }

  private accept(socket: net.Socket): void {
    socket.setNoDelay(true);
    socket.on('error', () => undefined);
    if (this.sockets.size >= this.maxConnections) {
      this.stats.refusedBusy++;
      socket.end(encodeFrame(0n, `ERR BUSY this peer already serves ${this.maxConnections} peers; try later`));
      return;
    }
    this.sockets.add(socket);
    this.stats.connections++;
    socket.once('close', () => this.sockets.delete(socket));
    new ServeConnection(socket, this, this.maxQueued, this.idleTimeoutMs).start();
  }

  /**
   * The answer to one request: a text payload, or a piece to stream. `files`
   * keeps the file opened for the previous request of the same connection,
   * so that a burst of pipelined requests opens the file once (the caller
   * closes it when its queue runs empty).
   */
  async answer(payload: Buffer, files: OpenFiles = new OpenFiles()): Promise<{ text: string } | { index: number; bytes: Buffer }> {
    const parsed = parsePeerRequest(payload.toString('utf8'));
    if (!parsed.ok) return { text: `ERR ${parsed.code} ${parsed.message}` };
    const { request } = parsed;
    const served = this.table.get(request.group, request.sha256);
    if (!served) return { text: `ERR NO_SUCH_FILE this peer does not share that file in ${request.group}` };
    if (request.kind === 'have') return { text: formatHaveAnswer(served.have) };
    const count = pieceCount(served.size, served.pieceSize);
    if (request.index >= count) return { text: `ERR BAD_REQUEST piece ${request.index} out of 0..${count - 1}` };
    if (!served.have.get(request.index)) return { text: `ERR NO_SUCH_PIECE this peer does not hold piece ${request.index} yet` };
    const length = pieceLength(served, request.index);
    const bytes = Buffer.allocUnsafe(length);
    try {
      const handle = await files.open(served.path);
      let got = 0;
      const offset = pieceOffset(served, request.index);
      while (got < length) {
        const { bytesRead } = await handle.read(bytes, got, length - got, offset + got);
        if (bytesRead === 0) return { text: `ERR NO_SUCH_FILE the shared file is shorter than announced` };
        got += bytesRead;
      }
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return { text: 'ERR NO_SUCH_FILE the shared file is gone' };
      await files.close();
      return { text: `ERR INTERNAL cannot read the file (${code ?? 'error'})` };
    }
    await this.limiter.take(length);
    this.stats.piecesServed++;
    this.stats.bytesServed += length;
    return { index: request.index, bytes };
  }
}

/**
 * The file a connection read its last piece from, kept open between the
 * requests of a burst (one `open` per burst rather than per piece).
 */
export class OpenFiles {
  private path: string | undefined;
  private handle: Promise<FileHandle> | undefined;

  open(path: string): Promise<FileHandle> {
    if (this.handle === undefined || this.path !== path) {
      void this.close();
      this.path = path;
      this.handle = open(path, 'r');
      // A failed open is not kept: the next request tries again.
      this.handle.catch(() => {
        if (this.path === path) this.forget();
      });
    }
    return this.handle;
  }

  async close(): Promise<void> {
    const handle = this.handle;
    this.forget();
    await handle?.then((h) => h.close()).catch(() => undefined);
  }

  private forget(): void {
    this.path = undefined;
    this.handle = undefined;
  }
}

/** One peer connection: requests answered one at a time, in order. */
class ServeConnection {
  private readonly decoder = new FrameDecoder({ maxPayload: MAX_PEER_REQUEST });
  private readonly queue: Buffer[] = [];
  private readonly files = new OpenFiles();
  private working = false;
  private closed = false;

  constructor(
    private readonly socket: net.Socket,
    private readonly server: PieceServer,
    private readonly maxQueued: number,
    idleTimeoutMs: number,
  ) {
    if (idleTimeoutMs > 0) socket.setTimeout(idleTimeoutMs, () => socket.destroy());
  }

  start(): void {
    this.socket.on('data', (chunk: Buffer) => this.onData(chunk));
    this.socket.once('close', () => {
      this.closed = true;
    });
  }

  private onData(chunk: Buffer): void {
    let frames;
    try {
      frames = this.decoder.push(chunk);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      const code = (error as { code?: string }).code ?? 'PROTOCOL';
      this.socket.end(encodeFrame(0n, `ERR ${code} ${message}`));
      return;
    }
    for (const frame of frames) this.queue.push(Buffer.from(frame.payload));
    if (this.queue.length >= this.maxQueued) this.socket.pause();
    void this.work();
  }

  private async work(): Promise<void> {
    if (this.working) return;
    this.working = true;
    try {
      while (!this.closed && this.queue.length > 0) {
        const payload = this.queue.shift() as Buffer;
        if (this.queue.length < this.maxQueued && this.socket.isPaused()) this.socket.resume();
        const answer = await this.server.answer(payload, this.files);
        if (this.closed) return;
        let flushed: boolean;
        if ('text' in answer) {
          flushed = this.socket.write(encodeFrame(0n, answer.text));
        } else {
          // Header and piece leave together (one writev, no lone small segment), never copied into one buffer.
          this.socket.cork();
          this.socket.write(encodePieceAnswerHead(answer.index, answer.bytes.length));
          flushed = this.socket.write(answer.bytes);
          this.socket.uncork();
        }
        if (!flushed) await this.drained();
      }
    } finally {
      this.working = false;
      // Nothing queued: let the file go (reopened by the next burst).
      if (this.closed || this.queue.length === 0) void this.files.close();
    }
  }

  private drained(): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        this.socket.off('drain', done);
        this.socket.off('close', done);
        resolve();
      };
      this.socket.once('drain', done);
      this.socket.once('close', done);
    });
  }
}

import net from 'node:net';
import { open } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { counted, encodeFrame, FrameDecoder } from '@tracker-cluster/protocol';
import type { HostPort } from '@tracker-cluster/protocol';
import { ByteBudget } from './byte-budget.js';
import type { BudgetRelease } from './byte-budget.js';
import { PieceHasher } from './piece-hasher.js';
import { pieceCount, pieceLength, pieceOffset } from './pieces.js';
import { RateLimiter } from './rate-limiter.js';
import type { ServedFile, ShareTable } from './share-table.js';
import { MAX_PEER_REQUEST, encodePieceAnswerHead, formatHaveAnswer, parsePeerRequest } from './wire.js';

/** How long a peer refused with `ERR BUSY` may take to close its end before this one is cut off. */
const REFUSED_LINGER_MS = 5_000;

export interface PieceServerOptions {
  /** Peer connections served at once (upload slots); one more gets `ERR BUSY` and is closed. Default 32. */
  maxConnections?: number;
  /** Upload limit in bytes per second over all peers; 0 = none (default). */
  uploadRate?: number;
  /** Requests read ahead per connection before the socket is paused (TCP backpressure). Default 16. */
  maxQueued?: number;
  /** A connection with no request for this long is closed. Default 120 s. */
  idleTimeoutMs?: number;
  /**
   * Piece bytes read from disk and not yet taken by the peers' sockets, over
   * all connections; a piece is read only once its length fits (one larger
   * than this takes all of it). Default 64 MiB.
   */
  maxBufferedBytes?: number;
  /**
   * Called once when the content shared is gone from disk while serving it:
   * the file deleted (`missing`), shorter than announced (`truncated`), or a
   * piece read back that fails its SHA-256 (`changed`, the file was written
   * to since it was shared). The file has then been removed from the
   * `ShareTable`; the bad piece was not sent.
   */
  onFileGone?(served: ServedFile, reason: FileGoneReason): void;
}

export type FileGoneReason = 'missing' | 'truncated' | 'changed';

export const DEFAULT_MAX_UPLOAD_CONNECTIONS = 32;
export const DEFAULT_MAX_BUFFERED_BYTES = 64 * 1024 * 1024;

/** A text answer, or a piece to send: `release` gives its bytes back to the budget once they left the socket. */
export type PieceAnswer = { text: string } | { index: number; bytes: Buffer; release: BudgetRelease };

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
 * by the number of connections served at once, and the memory they take by
 * a budget of piece bytes shared by all connections (`maxBufferedBytes`):
 * one request at a time per connection does not bound it, since a peer
 * that never reads leaves its piece in its socket's buffer.
 */
export class PieceServer {
  private readonly table: ShareTable;
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();
  private readonly maxConnections: number;
  private readonly maxQueued: number;
  private readonly idleTimeoutMs: number;
  private readonly limiter: RateLimiter;
  private readonly budget: ByteBudget;
  private readonly onFileGone: PieceServerOptions['onFileGone'];
  private readonly hasher = new PieceHasher();
  private bound: HostPort | undefined;
  readonly stats: PieceServerStats = { connections: 0, piecesServed: 0, bytesServed: 0, refusedBusy: 0 };

  constructor(table: ShareTable, options: PieceServerOptions = {}) {
    this.table = table;
    this.maxConnections = options.maxConnections ?? DEFAULT_MAX_UPLOAD_CONNECTIONS;
    this.maxQueued = options.maxQueued ?? 16;
    this.idleTimeoutMs = options.idleTimeoutMs ?? 120_000;
    this.limiter = new RateLimiter(options.uploadRate ?? 0);
    this.budget = new ByteBudget(options.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED_BYTES);
    this.onFileGone = options.onFileGone;
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

  /** Piece bytes read and not yet taken by the peers' sockets (at most `maxBufferedBytes`). */
  get bufferedBytes(): number {
    return this.budget.held;
  }

  /** Piece requests waiting for room in the budget (one per connection at most). */
  get waitingForBudget(): number {
    return this.budget.waiting;
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => {
      if (!this.server.listening) resolve();
      else this.server.close(() => resolve());
    });
    await this.hasher.close();
  }

  private accept(socket: net.Socket): void {
    socket.setNoDelay(true);
    socket.on('error', () => undefined);
    if (this.sockets.size >= this.maxConnections) {
      this.stats.refusedBusy++;
      socket.end(encodeFrame(0n, `ERR BUSY this peer already serves ${counted(this.maxConnections, 'peer')}; try later`));
      // Read (and drop) what it sends, so that its close is seen: a socket never read never learns that its
      // peer left, and every refused downloader's retry held a descriptor until this process ended. One that
      // does not leave is cut off.
      socket.resume();
      const cut = setTimeout(() => socket.destroy(), REFUSED_LINGER_MS).unref();
      socket.once('close', () => clearTimeout(cut));
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
   * closes it when its queue runs empty). A piece holds its length in the
   * budget until the caller calls its `release`. `undefined` when `signal`
   * aborted (the connection closed) while the piece waited for the budget.
   */
  async answer(payload: Buffer, files: OpenFiles = new OpenFiles(), signal?: AbortSignal): Promise<PieceAnswer | undefined> {
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
    const release = await this.budget.acquire(length, signal);
    if (!release) return undefined;
    // Granted just as the connection closed: nothing will be sent.
    if (signal?.aborted) {
      release();
      return undefined;
    }
    const read = await this.readPiece(served, request.index, length, files);
    if (typeof read === 'string') {
      release();
      return { text: read };
    }
    await this.limiter.take(length);
    this.stats.piecesServed++;
    this.stats.bytesServed += length;
    return { index: request.index, bytes: read, release };
  }

  /** The piece's `length` bytes, checked against its SHA-256; the error answer if it cannot. */
  private async readPiece(served: ServedFile, index: number, length: number, files: OpenFiles): Promise<Buffer | string> {
    const path = served.path;
    let bytes: Buffer = Buffer.allocUnsafe(length);
    try {
      const handle = await files.open(path);
      let got = 0;
      const offset = pieceOffset(served, index);
      while (got < bytes.length) {
        const { bytesRead } = await handle.read(bytes, got, bytes.length - got, offset + got);
        if (bytesRead === 0) {
          this.fileGone(served, path, 'truncated');
          return `ERR NO_SUCH_FILE the shared file is shorter than announced`;
        }
        got += bytesRead;
      }
      // A piece that is not the one announced would get this peer banned by its downloader, and nobody would tell
      // our user: said here instead. Off the event loop (a 64 MiB piece stopped it for 40-80 ms): the other
      // connections, the prompt and the tracker link go on meanwhile.
      const checked = await this.hasher.sha256(bytes);
      bytes = checked.bytes;
      if (checked.sha256 !== served.hashes[index]) {
        this.fileGone(served, path, 'changed');
        return 'ERR NO_SUCH_FILE the shared file changed on disk since it was shared';
      }
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') {
        this.fileGone(served, path, 'missing');
        return 'ERR NO_SUCH_FILE the shared file is gone';
      }
      await files.close();
      return `ERR INTERNAL cannot read the file (${code ?? 'error'})`;
    }
    return bytes;
  }

  /** Stops offering a file that cannot be served any more, so that peers stop being sent there. */
  private fileGone(served: ServedFile, path: string, reason: FileGoneReason): void {
    // Only if the entry is still the one that was read: a completed download
    // moves its entry to the renamed file, and a share may have been replaced
    // meanwhile (and several connections may find the same file gone).
    if (this.table.get(served.group, served.sha256) !== served || served.path !== path) return;
    this.table.remove(served.group, served.sha256);
    try {
      this.onFileGone?.(served, reason);
    } catch {
      // The owner's failure must not take the answer (or the server) down with it.
    }
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
  /** So that a connection that closes while waiting for the budget gives up its place at once. */
  private readonly closing = new AbortController();
  /** Pieces written and not yet taken by the socket: given back on close even if a write is never called back. */
  private readonly unsent = new Set<BudgetRelease>();
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
      this.closing.abort();
      // A destroyed socket may not call back every write; its buffers are let go now anyway.
      for (const release of this.unsent) release();
      this.unsent.clear();
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
        const answer = await this.server.answer(payload, this.files, this.closing.signal);
        if (answer === undefined || this.closed) {
          // Closed while the piece was read or waited for the upload rate: it will not be sent.
          if (answer !== undefined && 'release' in answer) answer.release();
          return;
        }
        let flushed: boolean;
        if ('text' in answer) {
          flushed = this.socket.write(encodeFrame(0n, answer.text));
        } else {
          const { release } = answer;
          this.unsent.add(release);
          // Header and piece leave together (one writev, no lone small segment), never copied into one buffer.
          this.socket.cork();
          this.socket.write(encodePieceAnswerHead(answer.index, answer.bytes.length));
          // Called once the piece is out of the socket's own buffer (in the kernel's, or dropped on error), not when merely queued.
          flushed = this.socket.write(answer.bytes, () => {
            this.unsent.delete(release);
            release();
          });
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

import net from 'node:net';
import { encodeFrame, FrameDecoder, isEvent } from '@tracker-cluster/protocol';
import type { SessionId } from '@tracker-cluster/protocol';
import { formatAddress } from './address.js';
import type { TrackerAddress } from './address.js';
import { AbandonedError, ConnectionLostError, RequestTimeoutError } from './errors.js';
import type { Reply, TrackerEvent } from './types.js';

/** Default request timeout: how long to wait for one answer. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;
/** Default connect timeout per tracker. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;
/**
 * Largest answer payload the client accepts. Far larger than the tracker's
 * request limit: list answers grow with the state (16 MiB was reached by one
 * user's 215,000 groups, and by a file of 300,000 pieces), and an answer the
 * client refuses is refused again at every retry. Still bounded, so that
 * something that is not a tracker cannot make the client buffer without end.
 */
export const DEFAULT_CLIENT_MAX_PAYLOAD = 256 * 1024 * 1024;

export interface ConnectionHandlers {
  /** Called for every `EVENT …` frame, as it arrives. */
  onEvent?: (event: TrackerEvent) => void;
  /**
   * Called once when the connection has closed: with the reason when it was
   * not closed by `close()`/`destroy()` here, undefined otherwise.
   */
  onClose?: (error: ConnectionLostError | undefined) => void;
}

export interface ConnectionOptions extends ConnectionHandlers {
  /** Milliseconds to wait for each answer; 0 waits for ever. Default 30 s. */
  requestTimeoutMs?: number;
  /** Largest accepted payload in bytes. Default 256 MiB. */
  maxPayload?: number;
}

export interface ConnectOptions extends ConnectionOptions {
  /** Milliseconds to wait for the TCP connection. Default 5 s. */
  connectTimeoutMs?: number;
}

interface Pending {
  resolve: (reply: Reply) => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout | undefined;
  /** The caller stopped waiting: the answer, when it comes, is dropped. */
  abandoned: boolean;
  /** Removes the abort listener. */
  release: () => void;
}

/**
 * One client connection to a tracker: frames out, frames in. Answers are
 * matched to requests in order (PROTOCOL.md §2), so requests may be
 * pipelined; `EVENT` frames are passed to `onEvent` and never taken for
 * answers. When the connection drops, every pending request is rejected
 * with a `ConnectionLostError`. A request whose caller stops waiting (its
 * `AbortSignal`) keeps its place in the queue, so that its answer, when it
 * comes, is matched to it and dropped rather than taken for the answer of
 * a later request; its timeout still runs (an answer that never comes
 * still means a dead connection).
 */
export class TrackerConnection {
  readonly address: TrackerAddress;
  private readonly socket: net.Socket;
  private readonly decoder: FrameDecoder;
  private readonly pending: Pending[] = [];
  private readonly requestTimeoutMs: number;
  private readonly handlers: ConnectionHandlers;
  private closed = false;
  /** Set when the close is our own doing (close(), destroy(), a timeout). */
  private failure: ConnectionLostError | undefined;
  private closingByUs = false;
  private socketError: Error | undefined;
  /** An answer nobody asked for, e.g. `ERR BUSY` before the tracker closes. */
  private unsolicited: string | undefined;
  /** Whether a whole frame has come: until then, bytes that are no frame suggest the address is not a tracker. */
  private framed = false;
  private readonly closedPromise: Promise<void>;

  /** Wraps a socket that is already connected. */
  constructor(socket: net.Socket, address: TrackerAddress, options: ConnectionOptions = {}) {
    this.socket = socket;
    this.address = address;
    this.decoder = new FrameDecoder({ maxPayload: options.maxPayload ?? DEFAULT_CLIENT_MAX_PAYLOAD });
    this.requestTimeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    this.handlers = { onEvent: options.onEvent, onClose: options.onClose };
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (error: Error) => {
      this.socketError ??= error;
    });
    this.closedPromise = new Promise((resolve) => {
      socket.once('close', () => {
        this.onSocketClose();
        resolve();
      });
    });
  }

  /** Opens a TCP connection to one tracker. Rejects with the socket error (its `code`, e.g. `ECONNREFUSED`, tells why). */
  static connect(address: TrackerAddress, options: ConnectOptions = {}): Promise<TrackerConnection> {
    const timeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: address.host, port: address.port });
      const timer =
        timeoutMs > 0
          ? setTimeout(() => {
              const error = Object.assign(new Error(`connect timed out after ${timeoutMs} ms`), { code: 'ETIMEDOUT' });
              socket.destroy(error);
            }, timeoutMs)
          : undefined;
      const onError = (error: Error): void => {
        clearTimeout(timer);
        socket.destroy();
        reject(error);
      };
      socket.once('error', onError);
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.off('error', onError);
        resolve(new TrackerConnection(socket, address, options));
      });
    });
  }

  /** `host:port` of the tracker, for messages. */
  get name(): string {
    return formatAddress(this.address);
  }

  get isOpen(): boolean {
    return !this.closed && !this.closingByUs && this.failure === undefined;
  }

  /** Requests sent and not answered yet. */
  get pendingCount(): number {
    return this.pending.length;
  }

  /** Resolves once the socket has closed. */
  get closedSignal(): Promise<void> {
    return this.closedPromise;
  }

  /**
   * Sends one command line with a session and resolves with its answer.
   * When `signal` aborts first, rejects with an `AbandonedError` (`sent`
   * true: the line was written) and drops the answer when it comes.
   */
  request(session: SessionId, line: string, signal?: AbortSignal): Promise<Reply> {
    if (!this.isOpen) {
      return Promise.reject(this.failure ?? new ConnectionLostError(this.name, `connection to ${this.name} is closed`));
    }
    if (signal?.aborted === true) return Promise.reject(new AbandonedError(undefined, false));
    const frame = encodeFrame(session, line);
    return new Promise<Reply>((resolve, reject) => {
      const onAbort = (): void => {
        entry.abandoned = true;
        entry.release();
        reject(new AbandonedError(undefined, true));
      };
      const entry: Pending = {
        resolve,
        reject,
        timer: undefined,
        abandoned: false,
        release: () => signal?.removeEventListener('abort', onAbort),
      };
      if (this.requestTimeoutMs > 0) {
        entry.timer = setTimeout(() => this.fail(new RequestTimeoutError(this.name, this.requestTimeoutMs)), this.requestTimeoutMs);
      }
      signal?.addEventListener('abort', onAbort, { once: true });
      this.pending.push(entry);
      this.socket.write(frame);
    });
  }

  /** Ends the connection politely; pending requests are rejected. Resolves once closed. */
  close(): Promise<void> {
    if (!this.closed && !this.closingByUs) {
      this.closingByUs = true;
      this.rejectPending(new ConnectionLostError(this.name, `connection to ${this.name} was closed by the client`));
      this.socket.end();
      // A tracker that never closes its side must not keep us waiting.
      const timer = setTimeout(() => this.socket.destroy(), 1000);
      timer.unref();
    }
    return this.closedPromise;
  }

  /** Drops the connection at once; pending requests are rejected. */
  destroy(): void {
    this.closingByUs = true;
    this.rejectPending(new ConnectionLostError(this.name, `connection to ${this.name} was closed by the client`));
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    let frames;
    try {
      frames = this.decoder.push(chunk);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      // Another kind of server (HTTP, say) answers something that is not a frame at all: say what that suggests.
      const hint = this.framed ? '' : ` — is ${this.name} a tracker?`;
      this.fail(new ConnectionLostError(this.name, `bad frame from ${this.name} (${message}); connection closed${hint}`));
      return;
    }
    if (frames.length > 0) this.framed = true;
    for (const frame of frames) {
      const payload = frame.payload.toString('utf8');
      if (isEvent(payload)) {
        this.handlers.onEvent?.({ session: frame.session, payload });
        continue;
      }
      const entry = this.pending.shift();
      if (entry === undefined) {
        this.unsolicited = payload;
        continue;
      }
      clearTimeout(entry.timer);
      entry.release();
      // The answer of an abandoned request: nobody waits for it any more.
      if (!entry.abandoned) entry.resolve({ session: frame.session, payload });
    }
  }

  /** Closes the connection because of `error`, which every pending request gets. */
  private fail(error: ConnectionLostError): void {
    if (this.closed || this.failure !== undefined) return;
    this.failure = error;
    this.rejectPending(error);
    this.socket.destroy();
  }

  private rejectPending(error: Error): void {
    for (const entry of this.pending.splice(0)) {
      clearTimeout(entry.timer);
      entry.release();
      if (!entry.abandoned) entry.reject(error);
    }
  }

  private onSocketClose(): void {
    this.closed = true;
    let error: ConnectionLostError | undefined = this.failure;
    if (error === undefined && !this.closingByUs) {
      error = new ConnectionLostError(this.name, `connection to ${this.name} lost (${this.closeReason()})`);
    }
    this.rejectPending(error ?? new ConnectionLostError(this.name, `connection to ${this.name} was closed by the client`));
    this.handlers.onClose?.(error);
  }

  private closeReason(): string {
    if (this.unsolicited !== undefined) return `the tracker said: ${this.unsolicited.split('\n', 1)[0] ?? ''}`;
    if (this.socketError !== undefined) return errorReason(this.socketError);
    return 'closed by the tracker';
  }
}

/** A short reason for a socket error: its errno code when it has one. */
export function errorReason(error: unknown): string {
  if (error instanceof AggregateError) {
    const codes = [...new Set(error.errors.map(errorReason))];
    if (codes.length > 0) return codes.join(', ');
  }
  if (error instanceof Error) {
    const code = (error as NodeJS.ErrnoException).code;
    return typeof code === 'string' && code.length > 0 ? code : error.message;
  }
  return String(error);
}

/**
 * A small frame client over a real TCP socket, for integration tests.
 *
 *   const c = await connect(tracker.port);
 *   t.teardown(() => c.close());
 *   const { payload, session } = await c.request('login alice pw');
 *
 * Responses are matched to requests in FIFO order (the tracker answers in
 * request order). Frames whose payload starts with `EVENT ` are never
 * responses: they go to `events` (payload text) and `eventFrames`.
 */
import net from 'node:net';
import { encodeFrame, FrameDecoder } from '@tracker-cluster/protocol';
import type { Frame } from '@tracker-cluster/protocol';

export interface Reply {
  session: bigint;
  payload: string;
}

export interface WireClient {
  readonly socket: net.Socket;
  /** Sends one request frame and resolves with its response (FIFO). */
  request(payload: string, session?: bigint): Promise<Reply>;
  /** Writes raw bytes (bad frames, split frames...). Responses to them arrive via `nextFrame()`. */
  sendRaw(buf: Buffer): void;
  /**
   * The next non-event frame not claimed by a pending `request()`.
   * Rejects if the connection closes first.
   */
  nextFrame(timeoutMs?: number): Promise<Frame>;
  /** Payloads of the EVENT frames received so far, in order. */
  readonly events: string[];
  readonly eventFrames: Frame[];
  /** Resolves with the first event (already received or future) matching `pred`. */
  waitForEvent(pred: (payload: string, frame: Frame) => boolean, timeoutMs?: number): Promise<string>;
  /** Resolves when the socket has closed (either side). Never rejects. */
  readonly closed: Promise<void>;
  /** True once the socket has closed. */
  readonly isClosed: boolean;
  /** Ends the connection and waits until it is closed. */
  close(): Promise<void>;
}

const DEFAULT_TIMEOUT_MS = 10_000;

export async function connect(port: number, host = '127.0.0.1', options: { maxPayload?: number } = {}): Promise<WireClient> {
  const socket = net.connect({ port, host, noDelay: true });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => {
      socket.off('error', reject);
      resolve();
    });
    socket.once('error', reject);
  });
  return new Client(socket, options.maxPayload ?? 64 * 1024 * 1024);
}

interface Waiter {
  resolve(frame: Frame): void;
  reject(err: Error): void;
}

class Client implements WireClient {
  readonly events: string[] = [];
  readonly eventFrames: Frame[] = [];
  readonly closed: Promise<void>;
  isClosed = false;
  private readonly decoder: FrameDecoder;
  /** Waiters for responses of `request()`, in send order. */
  private readonly pending: Waiter[] = [];
  /** Waiters of `nextFrame()`. */
  private readonly frameWaiters: Waiter[] = [];
  /** Non-event frames nobody was waiting for. */
  private readonly unclaimed: Frame[] = [];
  private readonly eventWatchers = new Set<() => void>();
  private failure: Error | undefined;

  constructor(
    readonly socket: net.Socket,
    maxPayload: number,
  ) {
    this.decoder = new FrameDecoder({ maxPayload });
    socket.on('data', (chunk: Buffer) => {
      let frames: Frame[];
      try {
        frames = this.decoder.push(chunk);
      } catch (err) {
        this.failure = err as Error;
        socket.destroy();
        return;
      }
      for (const frame of frames) this.onFrame(frame);
    });
    socket.on('error', (err) => {
      this.failure ??= err;
    });
    this.closed = new Promise((resolve) => {
      socket.once('close', () => {
        this.isClosed = true;
        const err = this.failure ?? new Error('connection closed');
        for (const w of this.pending.splice(0)) w.reject(err);
        for (const w of this.frameWaiters.splice(0)) w.reject(err);
        for (const wake of this.eventWatchers) wake();
        resolve();
      });
    });
  }

  private onFrame(frame: Frame): void {
    // Copy: the decoder may hand out views into a shared buffer.
    const copy: Frame = { session: frame.session, payload: Buffer.from(frame.payload) };
    const text = copy.payload.toString('utf8');
    if (text.startsWith('EVENT ')) {
      this.events.push(text);
      this.eventFrames.push(copy);
      for (const wake of this.eventWatchers) wake();
      return;
    }
    const waiter = this.pending.shift() ?? this.frameWaiters.shift();
    if (waiter) waiter.resolve(copy);
    else this.unclaimed.push(copy);
  }

  request(payload: string, session = 0n): Promise<Reply> {
    if (this.isClosed) return Promise.reject(this.failure ?? new Error('connection closed'));
    const answer = new Promise<Frame>((resolve, reject) => this.pending.push({ resolve, reject }));
    this.socket.write(encodeFrame(session, payload));
    return answer.then((f) => ({ session: f.session, payload: f.payload.toString('utf8') }));
  }

  sendRaw(buf: Buffer): void {
    this.socket.write(buf);
  }

  nextFrame(timeoutMs = DEFAULT_TIMEOUT_MS): Promise<Frame> {
    const ready = this.unclaimed.shift();
    if (ready) return Promise.resolve(ready);
    if (this.isClosed) return Promise.reject(this.failure ?? new Error('connection closed'));
    return new Promise<Frame>((resolve, reject) => {
      const waiter: Waiter = {
        resolve: (f) => {
          clearTimeout(timer);
          resolve(f);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      const timer = setTimeout(() => {
        const i = this.frameWaiters.indexOf(waiter);
        if (i >= 0) this.frameWaiters.splice(i, 1);
        reject(new Error(`no frame within ${timeoutMs} ms`));
      }, timeoutMs);
      this.frameWaiters.push(waiter);
    });
  }

  waitForEvent(pred: (payload: string, frame: Frame) => boolean, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<string> {
    const find = (): string | undefined => {
      for (let i = 0; i < this.events.length; i++) {
        const text = this.events[i] as string;
        if (pred(text, this.eventFrames[i] as Frame)) return text;
      }
      return undefined;
    };
    const now = find();
    if (now !== undefined) return Promise.resolve(now);
    return new Promise<string>((resolve, reject) => {
      const done = (): void => {
        clearTimeout(timer);
        this.eventWatchers.delete(check);
      };
      const check = (): void => {
        const found = find();
        if (found !== undefined) {
          done();
          resolve(found);
        } else if (this.isClosed) {
          done();
          reject(new Error(`connection closed before the event; events: ${JSON.stringify(this.events)}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`no matching event within ${timeoutMs} ms; events: ${JSON.stringify(this.events)}`));
      }, timeoutMs);
      this.eventWatchers.add(check);
    });
  }

  async close(): Promise<void> {
    if (!this.isClosed) {
      this.socket.end();
      // A peer that never closes its side must not hold the test up.
      const timer = setTimeout(() => this.socket.destroy(), 2000);
      await this.closed;
      clearTimeout(timer);
    }
  }
}

/**
 * Polls `cond` (sync or async) until it returns a truthy value, which is
 * returned; rejects after `timeoutMs`. For conditions with no event to wait
 * on (a row replicated, a status field changed).
 */
export async function waitFor<T>(
  cond: () => T | Promise<T>,
  { timeoutMs = DEFAULT_TIMEOUT_MS, intervalMs = 20, message = 'condition' }: { timeoutMs?: number; intervalMs?: number; message?: string } = {},
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await cond();
      if (value) return value as NonNullable<T>;
    } catch (err) {
      last = err;
    }
    if (Date.now() >= deadline) {
      const why = last instanceof Error ? `: last error: ${last.message}` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${message}${why}`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

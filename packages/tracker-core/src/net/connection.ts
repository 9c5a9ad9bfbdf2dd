import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import type { Frame } from '@tracker-cluster/protocol';
import { FATAL_CODES, FrameDecoder, TrackerError, encodeFrame, err } from '@tracker-cluster/protocol';
import type { Outcome, Reply } from '../services.js';
import { OrderedReply } from '../services.js';
import { TokenBucket } from '../limits/rate-limit.js';
import type { EventSink } from './session-hub.js';
import { ByteBudget } from './byte-budget.js';

export interface ConnectionLimits {
  maxPayload: number;
  frameTimeoutMs: number;
  idleTimeoutMs: number;
  /** Requests per second (0: unlimited). */
  rateLimit: number;
  maxPipeline: number;
}

/** Handles one request frame; `rateLimited` asks for a RATE_LIMITED answer. */
export type FrameHandler = (frame: Frame, rateLimited: boolean, connection: Connection) => Outcome;

/** A request held behind an ordered one, or the framing fault that ends the connection. */
type Held = { frame: Frame; rateLimited: boolean } | TrackerError;

/**
 * Events written to a peer that is not reading (since its socket last
 * drained) at most: past this the connection is dropped. A peer that reads
 * drains its socket long before (events are small); one that stopped would
 * otherwise cost the tracker ~1.7 bytes of memory per byte held.
 */
export const MAX_EVENT_BACKLOG_BYTES = 1024 * 1024;
/** The same, for every connection together (the tracker's default ByteBudget). */
export const MAX_EVENT_BACKLOG_TOTAL_BYTES = 64 * 1024 * 1024;
/**
 * Past this much written and not yet taken by the peer, no further request
 * of the connection is run until it drains: a few small requests can ask
 * for megabytes of answers each (`file_peers` of a file of many pieces).
 * One answer always goes out whole, so the most held is this plus one answer.
 */
const MAX_PENDING_ANSWER_BYTES = 1024 * 1024;
/**
 * How long the peer may take to close its side once ours is ended, and how
 * long a tracker shutting down waits for a connection's answers to go out.
 * A connection closing for any other reason (the peer's half-close, a framing
 * fault) first answers everything pending, however long that takes, as long
 * as the peer reads: one that does not is dropped after the idle timeout.
 */
const CLOSE_GRACE_MS = 5000;

interface Slot {
  frame: Buffer | undefined;
}

/**
 * One client or peer connection over any duplex stream. Requests are decoded
 * as they arrive and may complete out of order; answers are written strictly
 * in request order. When too many answers are outstanding, or the peer does
 * not read what is written, the connection stops reading (backpressure)
 * instead of buffering without bound.
 */
export class Connection implements EventSink {
  readonly id: number;
  readonly remote: string;
  readonly closed: Promise<void>;
  private readonly stream: Duplex;
  private readonly limits: ConnectionLimits;
  private readonly handle: FrameHandler;
  private readonly log: Logger;
  private readonly decoder: FrameDecoder;
  private readonly bucket: TokenBucket | undefined;
  private readonly queue: Slot[] = [];
  /** Bytes of the answers in `queue` that are ready and not yet written (behind a pending one, or before a flush). */
  private answerBytes = 0;
  /**
   * Requests that arrived while an ordered request (login, create_user) was
   * undecided, or while the connection was saturated (`saturated()`): run,
   * in order, once neither holds.
   */
  private readonly held: Held[] = [];
  private ordered: Promise<unknown> | undefined;
  /** Set once the connection became a tracker link: frames go here, unanswered. */
  private link: ((frame: Frame) => void) | undefined;
  private closing = false;
  private isClosed = false;
  /** `closeAfterAnswer` was called: the close follows once this turn's answers are queued. */
  private closeRequested = false;
  private paused = false;
  private lastActivity = Date.now();
  /** Since when the socket has held more than it takes without blocking (until its next 'drain'): a peer that reads nothing for the idle timeout is dropped. */
  private stalledSince: number | undefined;
  private frameTimer: NodeJS.Timeout | undefined;
  private idleTimer: NodeJS.Timeout | undefined;
  /** `--idle-timeout`, or a tracker link's own, longer, silence limit once upgraded. */
  private idleTimeoutMs: number;
  /** Event bytes written since the socket last drained, held in `eventBudget` until it does. */
  private eventBacklog = 0;
  private readonly eventBudget: ByteBudget;

  constructor(
    id: number,
    stream: Duplex,
    remote: string,
    limits: ConnectionLimits,
    handle: FrameHandler,
    logger: Logger,
    eventBudget: ByteBudget = new ByteBudget(MAX_EVENT_BACKLOG_TOTAL_BYTES),
  ) {
    this.id = id;
    this.stream = stream;
    this.remote = remote;
    this.limits = limits;
    this.handle = handle;
    this.log = logger;
    this.eventBudget = eventBudget;
    this.decoder = new FrameDecoder({ maxPayload: limits.maxPayload });
    this.bucket = limits.rateLimit > 0 ? new TokenBucket(limits.rateLimit, Date.now()) : undefined;
    this.closed = new Promise((resolve) => stream.once('close', () => resolve()));
    stream.on('data', (chunk: Buffer) => this.onData(chunk));
    // The peer finished sending: answer what it asked, then close our side.
    stream.on('end', () => this.closeAfterFlush());
    stream.on('error', (error) => this.log.debug({ err: error }, 'connection error'));
    stream.once('close', () => this.onClose());
    stream.on('drain', () => {
      this.stalledSince = undefined;
      this.releaseEventBacklog();
      if (this.held.length > 0 && !this.ordered) this.releaseHeld();
      else this.maybeResume();
    });
    this.idleTimeoutMs = limits.idleTimeoutMs;
    this.armIdleTimer(limits.idleTimeoutMs);
  }

  /**
   * Sends an unasked EVENT frame (never a response). While the peer is not
   * taking what was written, each event counts against this connection's
   * backlog and the tracker's budget; past either, the connection is dropped
   * (once: later events find it destroyed).
   */
  sendEvent(session: bigint, payload: string): void {
    if (this.isClosed || this.closing || this.stream.destroyed) return;
    const frame = encodeFrame(session, payload);
    if (this.stream.writableNeedDrain) {
      const ownCap = this.eventBacklog + frame.length > MAX_EVENT_BACKLOG_BYTES;
      if (ownCap || !this.eventBudget.take(frame.length)) {
        this.log.warn(
          { unsent: this.stream.writableLength, eventBacklog: this.eventBacklog, allBacklogs: this.eventBudget.inUse },
          ownCap ? 'peer does not read its events; dropping the connection' : 'peers that do not read hold the tracker\'s whole event budget; dropping this one',
        );
        this.stream.destroy();
        return;
      }
      this.eventBacklog += frame.length;
    }
    this.stream.write(frame);
    this.noteStall();
  }

  /**
   * Turns this connection into a tracker link: from now on its frames go to
   * `onFrame` and are not answered (docs/protocol.md §6). The link's own
   * limits replace the clients': frames up to `maxPayload`, and silence of
   * at least `minIdleMs` (a few of its heartbeats) before it counts as idle.
   */
  upgrade(onFrame: (frame: Frame) => void, limits: { maxPayload: number; minIdleMs: number }): void {
    this.link = onFrame;
    this.decoder.raiseMaxPayload(limits.maxPayload);
    this.idleTimeoutMs = Math.max(this.idleTimeoutMs, limits.minIdleMs);
  }

  get isLink(): boolean {
    return this.link !== undefined;
  }

  /** Sends an unasked frame on a tracker link; false when the peer is not keeping up. */
  push(payload: string | Buffer): boolean {
    if (this.isClosed) return false;
    const ready = this.stream.write(encodeFrame(0n, payload));
    this.noteStall();
    return ready;
  }

  onDrain(callback: () => void): void {
    this.stream.once('drain', callback);
  }

  /**
   * Closes once the answers already queued are written (a refused tracker
   * link, a probe answered): the answer being made now is the last frame.
   * Requests behind it, held or in the same chunk, are dropped unrun and
   * unanswered, and nothing read later is run.
   */
  closeAfterAnswer(): void {
    this.closeRequested = true;
    this.held.length = 0;
    setImmediate(() => this.closeAfterFlush());
  }

  /** Whether the connection is closing, or will once its queued answers are written. */
  get closingSoon(): boolean {
    return this.closeRequested || this.closing || this.isClosed;
  }

  /** Answers `fault` (a closing code) after what is pending, then closes: a connection the tracker does not keep. */
  refuse(fault: TrackerError): void {
    if (this.closingSoon) return;
    this.fail(fault);
  }

  destroy(): void {
    this.stream.destroy();
  }

  /** Stops reading, answers what is pending, then closes (graceful shutdown): within CLOSE_GRACE_MS. */
  shutdown(): Promise<void> {
    this.closeAfterFlush();
    this.destroyAfterGrace();
    return this.closed;
  }

  private onData(chunk: Buffer): void {
    if (this.closingSoon) return;
    this.lastActivity = Date.now();
    let frames: Frame[];
    try {
      frames = this.decoder.push(chunk);
    } catch (error) {
      const fault = error instanceof TrackerError ? error : new TrackerError('PROTOCOL', 'undecodable frame');
      this.log.info({ code: fault.code }, fault.message);
      this.fail(fault);
      return;
    }
    // Answers to the frames of one chunk leave in one write; a lone frame's answer needs no corking.
    const cork = frames.length > 1;
    if (cork) this.stream.cork();
    for (const frame of frames) {
      if (this.closingSoon) break;
      if (this.link) this.link(frame);
      else this.onFrame(frame);
    }
    // A fault after whole frames in the same chunk: those are answered first.
    if (this.decoder.error && !this.closingSoon) this.fail(this.decoder.error);
    this.flush();
    if (cork) this.stream.uncork();
    this.updateFrameTimer(frames.length > 0);
    this.applyBackpressure();
  }

  private onFrame(frame: Frame): void {
    const limited = this.bucket !== undefined && !this.bucket.take(this.lastActivity);
    if (this.ordered || this.held.length > 0 || this.saturated()) this.held.push({ frame, rateLimited: limited });
    else this.run(frame, limited);
  }

  private run(frame: Frame, limited: boolean): void {
    let reply: Outcome;
    try {
      reply = this.handle(frame, limited, this);
    } catch (error) {
      this.log.error({ err: error }, 'request handler threw');
      reply = { payload: err('INTERNAL', 'internal error'), session: 0n };
    }
    if (reply instanceof OrderedReply) {
      const gate = reply.reply.finally(() => {
        if (this.ordered === gate) this.ordered = undefined;
        this.releaseHeld();
      });
      gate.catch(() => undefined); // settled through `reply` below; never an unhandled rejection
      this.ordered = gate;
      reply = reply.reply;
    }
    if (reply instanceof Promise) {
      const slot: Slot = { frame: undefined };
      this.queue.push(slot);
      reply.then(
        (r) => this.complete(slot, r),
        (error: unknown) => {
          this.log.error({ err: error }, 'request handler rejected');
          this.complete(slot, { payload: err('INTERNAL', 'internal error'), session: 0n });
        },
      );
    } else {
      this.enqueue(encodeReply(reply));
    }
  }

  /**
   * Too much is outstanding to run another request now: as many answers
   * pending as `maxPipeline` allows, or more written than the peer has taken.
   * Answers count from when they are ready, written or queued behind a pending
   * one. A request held for this runs when answers complete or the socket drains.
   */
  private saturated(): boolean {
    return this.queue.length >= this.limits.maxPipeline || this.answerBytes + this.stream.writableLength >= MAX_PENDING_ANSWER_BYTES;
  }

  /** Queues a ready answer behind the pending ones. */
  private enqueue(frame: Buffer): void {
    this.answerBytes += frame.length;
    this.queue.push({ frame });
  }

  /** Runs held requests in arrival order until one of them is ordered again, or the connection is saturated. */
  private releaseHeld(): void {
    if (this.isClosed) return;
    this.stream.cork();
    while (this.held.length > 0 && !this.ordered && !this.saturated()) {
      const next = this.held.shift() as Held;
      if (next instanceof TrackerError) this.enqueue(encodeFrame(0n, next.toPayload()));
      else this.run(next.frame, next.rateLimited);
    }
    this.flush();
    this.stream.uncork();
    this.maybeResume();
  }

  private complete(slot: Slot, reply: Reply): void {
    slot.frame = encodeReply(reply);
    this.answerBytes += slot.frame.length;
    if (this.queue[0] === slot) {
      this.flush();
      // Requests held for a full pipeline may run now that answers went out.
      if (this.held.length > 0 && !this.ordered) this.releaseHeld();
      this.applyBackpressure();
      this.maybeResume();
    }
  }

  /** Writes every answer at the head of the queue that is ready. */
  private flush(): void {
    if (this.isClosed) return;
    let head = this.queue[0];
    while (head !== undefined && head.frame !== undefined) {
      this.stream.write(head.frame);
      this.answerBytes -= head.frame.length;
      this.queue.shift();
      head = this.queue[0];
    }
    this.noteStall();
    if (this.queue.length > 0) this.lastActivity = Date.now();
    if (this.closing && this.queue.length === 0 && this.held.length === 0) this.endNow();
  }

  private applyBackpressure(): void {
    if (this.paused || this.closing) return;
    if (this.queue.length + this.held.length >= this.limits.maxPipeline || this.stream.writableNeedDrain) {
      this.paused = true;
      this.stream.pause();
      // The rest of a frame begun may be waiting unread in the socket: while this side does not read, it is not late.
      this.clearFrameTimer();
    }
  }

  private maybeResume(): void {
    if (!this.paused || this.closing) return;
    if (this.queue.length + this.held.length < Math.max(1, this.limits.maxPipeline / 2) && !this.stream.writableNeedDrain) {
      this.paused = false;
      this.stream.resume();
      this.updateFrameTimer(false);
    }
  }

  /** A framing fault: answer it after what is pending, then close (PROTOCOL.md §1). */
  private fail(fault: TrackerError): void {
    if (!FATAL_CODES.has(fault.code)) throw fault;
    // Behind held requests, the fault waits its turn too: it is always the last answer.
    if (this.ordered || this.held.length > 0) this.held.push(fault);
    else this.enqueue(encodeFrame(0n, fault.toPayload()));
    this.closeAfterFlush();
  }

  private closeAfterFlush(): void {
    if (this.closing || this.isClosed) return;
    this.closing = true;
    this.clearFrameTimer();
    // Keep reading but ignore what arrives (onData returns early): the peer's
    // FIN must still be seen, or the socket lingers until the grace timer.
    this.paused = false;
    this.stream.resume();
    this.flush();
  }

  private endNow(): void {
    if (this.stream.writableEnded) return;
    this.stream.end();
    this.destroyAfterGrace();
  }

  private destroyAfterGrace(): void {
    setTimeout(() => this.stream.destroy(), CLOSE_GRACE_MS).unref();
  }

  private updateFrameTimer(completedAny: boolean): void {
    if (completedAny || this.decoder.bufferedBytes === 0) this.clearFrameTimer();
    if (this.decoder.bufferedBytes > 0 && this.frameTimer === undefined && !this.closingSoon) {
      this.frameTimer = setTimeout(() => {
        this.frameTimer = undefined;
        this.log.info({ buffered: this.decoder.bufferedBytes }, 'frame timeout');
        this.fail(new TrackerError('PROTOCOL', `frame not completed within ${this.limits.frameTimeoutMs} ms`));
      }, this.limits.frameTimeoutMs);
    }
  }

  private clearFrameTimer(): void {
    if (this.frameTimer !== undefined) clearTimeout(this.frameTimer);
    this.frameTimer = undefined;
  }

  /** The socket drained or closed: the events it held no longer count against the budget. */
  private releaseEventBacklog(): void {
    this.eventBudget.give(this.eventBacklog);
    this.eventBacklog = 0;
  }

  /** After a write: the socket now holds more than it takes without blocking, and this is when that began. */
  private noteStall(): void {
    if (this.stalledSince === undefined && this.stream.writableNeedDrain) this.stalledSince = Date.now();
  }

  private armIdleTimer(delay: number): void {
    this.idleTimer = setTimeout(() => {
      const timeout = this.idleTimeoutMs;
      const now = Date.now();
      const idle = now - this.lastActivity;
      // Answers written and not taken: how long the peer has left them there.
      const stalled = this.stalledSince !== undefined && this.stream.writableNeedDrain ? now - this.stalledSince : 0;
      if (stalled >= timeout) {
        this.log.warn({ stalledMs: stalled, unsent: this.stream.writableLength }, 'peer has not read its answers for the idle timeout; closing');
        this.stream.destroy();
      } else if (this.queue.length === 0 && this.held.length === 0 && idle >= timeout) {
        this.log.info({ idleMs: idle }, 'idle timeout; closing');
        this.stream.destroy();
      } else {
        // Busy past the timeout counts as activity: look again a whole period later.
        let next = idle >= timeout ? timeout : timeout - idle;
        if (stalled > 0) next = Math.min(next, timeout - stalled);
        this.armIdleTimer(Math.max(1, next));
      }
    }, delay);
  }

  private onClose(): void {
    this.isClosed = true;
    this.closing = true;
    this.releaseEventBacklog();
    this.clearFrameTimer();
    if (this.idleTimer !== undefined) clearTimeout(this.idleTimer);
    this.queue.length = 0;
    this.answerBytes = 0;
    this.held.length = 0;
  }
}

function encodeReply(reply: Reply): Buffer {
  return encodeFrame(reply.session ?? 0n, reply.payload);
}

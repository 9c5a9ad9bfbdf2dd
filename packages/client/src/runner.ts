import { NO_SESSION, parseResponse } from '@tracker-cluster/protocol';
import { untilAborted } from './abort.js';
import { formatAddress } from './address.js';
import type { TrackerAddress } from './address.js';
import { backoffDelay, tryOrder } from './backoff.js';
import type { BackoffOptions } from './backoff.js';
import { classifyLine, defaultCommandTable } from './commands.js';
import type { CommandTable, LocalContext } from './commands.js';
import { KnownNames } from './completion.js';
import { errorReason, TrackerConnection } from './connection.js';
import type { ConnectOptions } from './connection.js';
import { AbandonedError, ConnectionLostError, UnreachableError } from './errors.js';
import type { ConnectAttempt } from './errors.js';
import { commandName } from './format.js';
import type { FailoverInfo, JsonRow } from './format.js';
import type { ClientOptions } from './options.js';
import { RequestIds, withRequestId } from './request-id.js';
import type { RequestId } from './request-id.js';
import { applyReply, INITIAL_STATE } from './state.js';
import type { ClientState } from './state.js';
import type { Reply, TrackerEvent } from './types.js';

/** What running one line gave. */
export type Outcome =
  | { kind: 'skip' }
  | { kind: 'quit' }
  /** Handled by the client (`help`, …); `ok` false for a failure such as help on an unknown command. */
  | { kind: 'local'; command: string; text: string | undefined; ok: boolean }
  /**
   * The tracker's answer (or a client command's in the tracker's form). `rows`: the answer's rows as data when the
   * client has them so (its own lists, `show_downloads`), for `--json`; otherwise they are read from the text.
   */
  | { kind: 'reply'; command: string; reply: Reply; ok: boolean; rows?: readonly JsonRow[] };

export interface RunnerHooks {
  /** An `EVENT` frame arrived. */
  onEvent?: (event: TrackerEvent) => void;
  /**
   * The client moved to a new connection after losing one: to the next
   * tracker, or the same one again with a command to retry. One notice per
   * failover. (A quiet reconnection to the same tracker after an idle close
   * is not reported.)
   */
  onFailover?: (info: FailoverInfo) => void;
  /**
   * A reconnection started in the background (no command waiting) gave up;
   * the next command tries again. Not called when a command was waiting for
   * that reconnection: the command fails with the error instead.
   */
  onReconnectFailed?: (error: UnreachableError) => void;
  /** The tracker no longer knows the session the client held (expired, or logged out elsewhere). */
  onSessionEnded?: (user: string | undefined) => void;
  /** A client-side command wants to tell the user something while it runs. */
  onNotice?: (text: string) => void;
}

export interface RunnerOptions {
  /** The trackers, in the order to try them. */
  trackers: readonly TrackerAddress[];
  /** Milliseconds to wait for each answer; a timeout counts as a lost connection. Default 30 s. */
  requestTimeoutMs?: number;
  connectTimeoutMs?: number;
  /** How long to keep trying the trackers after losing one; 0 tries each once. Default 15 s. */
  failoverTimeoutMs?: number;
  backoff?: BackoffOptions;
  /** Request numbering (and the client id); a fresh random id by default. */
  requestIds?: RequestIds;
  /** The command table; the default commands when absent. */
  commands?: CommandTable;
  /** Passed on to client-side commands. */
  clientOptions?: ClientOptions;
  /** Opens one connection; `TrackerConnection.connect` by default (tests inject others). */
  open?: (address: TrackerAddress, options: ConnectOptions) => Promise<TrackerConnection>;
  sleep?: (ms: number) => Promise<void>;
  now?: () => number;
}

/** How many times one request is sent at most (the first try and the retries after failovers). */
export const MAX_SENDS_PER_REQUEST = 4;

interface Loss {
  /** Index of the tracker lost. */
  index: number;
  reason: string;
  /** Start the next round at the tracker after it (it failed a request), rather than at it (an idle close). */
  skip: boolean;
}

/**
 * Runs command lines for the prompt and scripts, and owns the connection.
 *
 * - Every tracker request carries the current session and a request id
 *   `@<client-id>:<n>` (see `request-id.ts`); a fresh number per request.
 * - When the connection is lost or a request times out, the runner fails
 *   over: it tries the trackers in turn, starting after the one it lost,
 *   round after round with backoff for up to `failoverTimeoutMs`; on the
 *   new connection it presents the same session (a `status` request, which
 *   also tells the role and whether the session is still alive), reports
 *   one notice, and sends the waiting request again with the same request
 *   id, so a write the lost tracker had already applied is answered from
 *   the trackers' replicated request record instead of running twice.
 * - A connection that drops while no command waits is replaced at once in
 *   the background, so events keep arriving.
 * - Requests are sent one at a time (in the order asked), since the
 *   trackers keep only the last write number per client id.
 * - A request (or a whole command) given an `AbortSignal` is abandoned when
 *   it aborts: it rejects at once with an `AbandonedError`, is never sent if
 *   it had not been yet, and its answer, if it comes, is dropped.
 */
export class Runner {
  readonly trackers: readonly TrackerAddress[];
  readonly commands: CommandTable;
  readonly requestIds: RequestIds;
  /** Group and user names seen, for completion. */
  readonly known = new KnownNames();
  hooks: RunnerHooks;
  private readonly options: RunnerOptions;
  private current: TrackerConnection | undefined;
  private index = 0;
  private roleValue: string | undefined;
  private stateValue: ClientState = INITIAL_STATE;
  private everConnected = false;
  private inFlight = false;
  private closing = false;
  private loss: Loss | undefined;
  private reconnecting: Promise<TrackerConnection> | undefined;
  /** Commands waiting for the background reconnection: its failure is theirs to report. */
  private waitingForReconnect = 0;
  private queue: Promise<unknown> = Promise.resolve();
  /** Aborted by `close()`: stops connection attempts at once. */
  private readonly closeController = new AbortController();
  /** Signals under which a request was written to a tracker (see `wasSent`). */
  private readonly sentUnder = new WeakSet<AbortSignal>();

  constructor(options: RunnerOptions, hooks: RunnerHooks = {}) {
    if (options.trackers.length === 0) throw new RangeError('a runner needs at least one tracker');
    this.options = options;
    this.trackers = options.trackers;
    this.commands = options.commands ?? defaultCommandTable();
    this.requestIds = options.requestIds ?? new RequestIds();
    this.hooks = hooks;
  }

  get state(): ClientState {
    return this.stateValue;
  }

  /** The tracker of the open connection, if any. */
  get address(): TrackerAddress | undefined {
    return this.current?.isOpen === true ? this.current.address : undefined;
  }

  /** `primary` or `replica`, from the tracker's `status` when the connection was opened. */
  get role(): string | undefined {
    return this.current?.isOpen === true ? this.roleValue : undefined;
  }

  get connection(): TrackerConnection | undefined {
    return this.current;
  }

  /**
   * Opens the first connection: each tracker once, in order. Throws
   * `UnreachableError` when none accepts, `AbandonedError` when `signal`
   * aborts first.
   */
  async connect(signal?: AbortSignal): Promise<TrackerConnection> {
    if (this.current?.isOpen) return this.current;
    const connection = await this.establish(0, 0, signal);
    this.everConnected = true;
    return connection;
  }

  /** Whether a request made under `signal` was written to a tracker (so the tracker may apply it even if its answer is dropped). */
  wasSent(signal: AbortSignal): boolean {
    return this.sentUnder.has(signal);
  }

  /**
   * Runs one line. Throws `UnreachableError` when no tracker can be reached
   * within the failover time, and `AbandonedError` when `signal` aborts
   * while a tracker request of the line waits (see `request`).
   */
  async execute(line: string, signal?: AbortSignal): Promise<Outcome> {
    const action = classifyLine(line, this.commands);
    switch (action.kind) {
      case 'skip':
        return action;
      case 'local': {
        const context: LocalContext = {
          args: action.args,
          line: action.line,
          state: this.stateValue,
          options: this.options.clientOptions,
          commands: this.commands,
          signal,
          request: (requestLine) => this.request(requestLine, signal),
          notice: (text) => this.hooks.onNotice?.(text),
        };
        const result = await action.spec.run(context);
        if (result.quit === true) return { kind: 'quit' };
        return { kind: 'local', command: action.spec.name, text: result.text, ok: result.ok };
      }
      case 'remote': {
        const reply = await this.request(action.line, signal);
        return { kind: 'reply', command: action.command, reply, ok: parseResponse(reply.payload).ok };
      }
    }
  }

  /**
   * Sends one command line to the tracker with the session and a new
   * request id; fails over and retries (same id) when the connection is
   * lost. The answer updates the session state.
   *
   * When `signal` aborts before the answer, rejects at once with an
   * `AbandonedError`: a request still waiting its turn (or for a tracker to
   * fail over to) is never sent, and the answer of one already sent is
   * dropped when it comes (the tracker may still apply it).
   */
  request(line: string, signal?: AbortSignal): Promise<Reply> {
    let started = false;
    const run = this.queue.then(() => {
      started = true;
      return this.send(line, signal);
    });
    this.queue = run.catch(() => undefined);
    // A request still waiting its turn is let go at once; `send` then sees the abort and never sends it.
    return untilAborted(run, signal, () => new AbandonedError(commandName(line), started && signal !== undefined && this.wasSent(signal)));
  }

  private async send(line: string, signal: AbortSignal | undefined): Promise<Reply> {
    const command = commandName(line);
    if (isAborted(signal)) throw new AbandonedError(command, false);
    const id: RequestId = this.requestIds.next();
    const wire = withRequestId(id, line);
    let retrying: string | undefined;
    let sent = false;
    for (let sends = 1; ; sends++) {
      let connection: TrackerConnection;
      try {
        connection = await this.ensure(retrying, signal);
      } catch (error) {
        if (error instanceof AbandonedError) throw new AbandonedError(command, sent);
        throw error;
      }
      const before = this.stateValue;
      let reply: Reply;
      this.inFlight = true;
      try {
        if (!isAborted(signal)) {
          sent = true;
          if (signal !== undefined) this.sentUnder.add(signal);
        }
        reply = await connection.request(before.session, wire, signal);
      } catch (error) {
        if (error instanceof AbandonedError) throw new AbandonedError(command, sent);
        if (!(error instanceof ConnectionLostError) || this.closing || sends >= MAX_SENDS_PER_REQUEST) throw error;
        this.dropCurrent(connection, { index: this.index, reason: error.message, skip: true });
        retrying = command;
        continue;
      } finally {
        this.inFlight = false;
      }
      this.stateValue = applyReply(before, command, reply);
      this.known.learnFromReply(line, reply.payload);
      // The tracker's role changes under an open connection when it is promoted: `status` tells it afresh.
      if (command === 'status' && connection === this.current) this.roleValue = roleOf(reply.payload) ?? this.roleValue;
      if (before.session !== NO_SESSION && reply.session === NO_SESSION && command !== 'logout') this.sessionEnded(before.user);
      return reply;
    }
  }

  /** The open connection, or a new one (reconnecting or failing over). */
  private async ensure(retrying: string | undefined, signal: AbortSignal | undefined): Promise<TrackerConnection> {
    if (this.current?.isOpen) return this.current;
    if (this.reconnecting !== undefined) {
      // When the background attempt gives up (UnreachableError), so does this command: it fails now,
      // and is not sent by a second attempt when a tracker comes back later.
      this.waitingForReconnect++;
      let connection: TrackerConnection;
      try {
        connection = await untilAborted(this.reconnecting, signal, () => new AbandonedError(undefined, false));
      } finally {
        this.waitingForReconnect--;
      }
      if (connection.isOpen) return connection;
    }
    if (this.current?.isOpen) return this.current;
    if (!this.everConnected) return this.connect(signal);
    return this.reconnect(retrying, signal);
  }

  private async reconnect(retrying: string | undefined, signal?: AbortSignal): Promise<TrackerConnection> {
    const loss = this.loss ?? { index: this.index, reason: `connection to ${formatAddress(this.trackerAt(this.index))} closed`, skip: false };
    const start = loss.skip ? loss.index + 1 : loss.index;
    const connection = await this.establish(start, this.options.failoverTimeoutMs ?? 15_000, signal);
    this.loss = undefined;
    if (retrying !== undefined || this.index !== loss.index) {
      this.hooks.onFailover?.({
        from: this.trackerAt(loss.index),
        reason: loss.reason,
        to: connection.address,
        role: this.roleValue,
        session: this.stateValue.session !== NO_SESSION,
        retrying,
      });
    }
    return connection;
  }

  /**
   * Tries the trackers in turn from `start`, round after round with backoff
   * until `budgetMs` has passed (one round when 0). On each new connection
   * it sends `status` with the session: the answer gives the role, presents
   * the session (events follow it), and tells whether it is still alive.
   * Stops at once when `signal` aborts (`AbandonedError`) or the runner
   * closes (`UnreachableError`).
   */
  private async establish(start: number, budgetMs: number, signal?: AbortSignal): Promise<TrackerConnection> {
    const now = this.options.now ?? Date.now;
    const sleep = this.options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
    const stop = signal === undefined ? this.closeController.signal : AbortSignal.any([signal, this.closeController.signal]);
    const deadline = now() + budgetMs;
    let attempts: ConnectAttempt[] = [];
    const stopped = (): Error => (this.closing ? new UnreachableError(attempts) : new AbandonedError(undefined, false));
    for (let round = 0; ; round++) {
      const pause = Math.min(backoffDelay(round, this.options.backoff), Math.max(0, deadline - now()));
      if (pause > 0) await untilAborted(sleep(pause), stop, stopped);
      attempts = [];
      for (const index of tryOrder(this.trackers.length, start)) {
        if (stop.aborted) throw stopped();
        const address = this.trackerAt(index);
        const name = formatAddress(address);
        let connection: TrackerConnection;
        try {
          connection = await untilAborted(this.open(address, index), stop, stopped, (late) => late.destroy());
        } catch (error) {
          if (stop.aborted) throw stopped();
          attempts.push({ address: name, reason: errorReason(error) });
          continue;
        }
        let status: Reply;
        try {
          status = await connection.request(this.stateValue.session, 'status', stop);
        } catch (error) {
          connection.destroy();
          if (stop.aborted) throw stopped();
          attempts.push({ address: name, reason: error instanceof Error ? error.message : String(error) });
          continue;
        }
        if (this.closing) {
          connection.destroy();
          throw new UnreachableError(attempts);
        }
        this.current = connection;
        this.index = index;
        this.roleValue = roleOf(status.payload);
        const before = this.stateValue;
        this.stateValue = applyReply(before, 'status', status);
        if (before.session !== NO_SESSION && status.session === NO_SESSION) this.sessionEnded(before.user);
        return connection;
      }
      if (now() >= deadline) throw new UnreachableError(attempts);
    }
  }

  private async open(address: TrackerAddress, index: number): Promise<TrackerConnection> {
    const open = this.options.open ?? ((a: TrackerAddress, o: ConnectOptions) => TrackerConnection.connect(a, o));
    const connection: TrackerConnection = await open(address, {
      requestTimeoutMs: this.options.requestTimeoutMs,
      connectTimeoutMs: this.options.connectTimeoutMs,
      onEvent: (event) => {
        this.known.learnFromEvent(event.payload);
        this.hooks.onEvent?.(event);
      },
      onClose: (error) => {
        if (this.current !== connection) return;
        this.current = undefined;
        if (error === undefined) return;
        this.loss = { index, reason: error.message, skip: this.inFlight };
        if (!this.inFlight && !this.closing) this.reconnectInBackground();
      },
    });
    return connection;
  }

  /** The tracker no longer knows the session the client held (found out by any request). */
  protected sessionEnded(user: string | undefined): void {
    this.hooks.onSessionEnded?.(user);
  }

  /**
   * Keeps the session alive while the client has nothing else to say: every
   * `intervalMs`, when logged in, a `whoami` (any request that presents a
   * session extends it, PROTOCOL.md §3). If the session has ended anyway,
   * that request finds out (`sessionEnded`). Returns the function that stops it.
   */
  keepSessionAlive(intervalMs: number): () => void {
    let busy = false;
    const timer = setInterval(() => {
      if (busy || this.closing || this.stateValue.session === NO_SESSION) return;
      busy = true;
      // A tracker down is reported by the failover machinery; the next tick tries again.
      this.request('whoami')
        .catch(() => undefined)
        .finally(() => {
          busy = false;
        });
    }, intervalMs);
    // The piece server keeps the process up; this timer alone must not.
    timer.unref();
    return () => clearInterval(timer);
  }

  private reconnectInBackground(): void {
    if (this.reconnecting !== undefined) return;
    const attempt = this.reconnect(undefined);
    this.reconnecting = attempt;
    attempt.then(
      () => {
        if (this.reconnecting === attempt) this.reconnecting = undefined;
      },
      (error: unknown) => {
        if (this.reconnecting === attempt) this.reconnecting = undefined;
        // A command waiting for this attempt fails with the error and says so itself.
        if (error instanceof UnreachableError && !this.closing && this.waitingForReconnect === 0) this.hooks.onReconnectFailed?.(error);
      },
    );
  }

  private dropCurrent(connection: TrackerConnection, loss: Loss): void {
    if (this.current === connection) this.current = undefined;
    this.loss = loss;
    connection.destroy();
  }

  private trackerAt(index: number): TrackerAddress {
    const n = this.trackers.length;
    return this.trackers[((index % n) + n) % n] as TrackerAddress;
  }

  /** Closes the connection (without logging out) and stops reconnecting. */
  async close(): Promise<void> {
    this.closing = true;
    this.closeController.abort();
    const connection = this.current;
    this.current = undefined;
    await this.reconnecting?.catch(() => undefined);
    await connection?.close();
    if (this.current !== undefined) await (this.current as TrackerConnection).close();
  }
}

/** A function, not `signal.aborted` inline: the type checker would take it as unchanged across `await`s. */
function isAborted(signal: AbortSignal | undefined): boolean {
  return signal?.aborted === true;
}

/** The `role=` of a `status` answer. */
function roleOf(payload: string): string | undefined {
  return /(?:^|\s)role=([^\s]+)/.exec(payload)?.[1];
}

/**
 * The client's own errors (not the tracker's `ERR` answers, which are
 * ordinary responses). Each carries the process exit status it leads to, so
 * the command line maps failures to exit codes in one place.
 */

/** Exit statuses of `tracker-client` (documented in the README). */
export const EXIT = {
  /** Every command answered `OK` (or the interactive session ended normally). */
  OK: 0,
  /** At least one command was answered `ERR` (script mode). */
  COMMAND_FAILED: 1,
  /** Bad command-line options. */
  USAGE: 2,
  /** No tracker could be reached, or the connection was lost while a command was in flight. */
  UNREACHABLE: 3,
  /** A script stopped by SIGHUP before its end (128 + 1). */
  SIGHUP: 129,
  /** A script stopped by SIGINT before its end (128 + 2). */
  SIGINT: 130,
  /** A script stopped by SIGTERM before its end (128 + 15). */
  SIGTERM: 143,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** The signals that make the client leave cleanly (withdrawing its shares). */
export const STOP_SIGNALS = ['SIGTERM', 'SIGINT', 'SIGHUP'] as const;
export type StopSignal = (typeof STOP_SIGNALS)[number];

/** The exit status of a script stopped by `signal` before its end: 128 + the signal's number, as a shell reports it. */
export function signalExitCode(signal: StopSignal): ExitCode {
  return EXIT[signal];
}

/** The signal a stop `AbortSignal` was aborted with (its reason), SIGTERM when it names none. */
export function stopSignalOf(signal: AbortSignal): StopSignal {
  const reason: unknown = signal.reason;
  return typeof reason === 'string' && (STOP_SIGNALS as readonly string[]).includes(reason) ? (reason as StopSignal) : 'SIGTERM';
}

export class ClientError extends Error {
  readonly exitCode: ExitCode;

  constructor(message: string, exitCode: ExitCode) {
    super(message);
    this.name = new.target.name;
    this.exitCode = exitCode;
  }
}

/** A bad option or option value. */
export class UsageError extends ClientError {
  constructor(message: string) {
    super(message, EXIT.USAGE);
  }
}

export interface ConnectAttempt {
  /** `host:port` as written for people (`[::1]:7001` for IPv6). */
  address: string;
  /** A short reason: an errno code such as `ECONNREFUSED`, or a message. */
  reason: string;
}

/** None of the trackers accepted a TCP connection. */
export class UnreachableError extends ClientError {
  readonly attempts: readonly ConnectAttempt[];

  constructor(attempts: readonly ConnectAttempt[]) {
    const list = attempts.map((a) => `${a.address} (${a.reason})`).join(', ');
    super(`cannot reach any tracker: ${list.length > 0 ? list : 'no tracker given'}`, EXIT.UNREACHABLE);
    this.attempts = attempts;
  }
}

/** The connection ended (or could not be used) while the client still needed it. */
export class ConnectionLostError extends ClientError {
  readonly address: string;

  constructor(address: string, message: string) {
    super(message, EXIT.UNREACHABLE);
    this.address = address;
  }
}

/** A request got no answer within the request timeout; the connection is closed, since later answers could no longer be matched to their requests. */
export class RequestTimeoutError extends ConnectionLostError {
  constructor(address: string, timeoutMs: number) {
    super(address, `no answer from ${address} within ${timeoutMs} ms; connection closed`);
  }
}

/**
 * The caller stopped waiting for a request (Ctrl-C at the prompt, or the
 * client is leaving). `sent` tells whether the request had been written to
 * a tracker: if so the tracker may still apply it; its answer, should it
 * come, is dropped.
 */
export class AbandonedError extends ClientError {
  readonly command: string | undefined;
  readonly sent: boolean;

  constructor(command: string | undefined, sent: boolean) {
    const what = command ?? 'the request';
    super(sent ? `${what} abandoned; it was sent, so the tracker may still apply it` : `${what} abandoned before it was sent`, EXIT.COMMAND_FAILED);
    this.command = command;
    this.sent = sent;
  }
}

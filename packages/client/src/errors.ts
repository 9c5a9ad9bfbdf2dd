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
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

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

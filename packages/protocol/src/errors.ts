/**
 * The stable error codes of the wire protocol (PROTOCOL.md §2). The message
 * that follows a code on the wire is free text for people; programs branch on
 * the code only.
 */
export const ERROR_CODES = [
  'BAD_REQUEST',
  'UNKNOWN_COMMAND',
  'AUTH_REQUIRED',
  'ALREADY_LOGGED_IN',
  'USER_EXISTS',
  'INVALID_CREDENTIALS',
  'GROUP_EXISTS',
  'NO_SUCH_GROUP',
  'NOT_OWNER',
  'NOT_MEMBER',
  'ALREADY_MEMBER',
  'REQUEST_PENDING',
  'NO_SUCH_REQUEST',
  'NO_SUCH_FILE',
  'FILE_CONFLICT',
  'QUOTA_EXCEEDED',
  'RATE_LIMITED',
  'PRIMARY_UNAVAILABLE',
  'FORBIDDEN',
  'PROTOCOL',
  'FRAME_TOO_LARGE',
  'BUSY',
  'INTERNAL',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

const CODE_SET: ReadonlySet<string> = new Set(ERROR_CODES);

export function isErrorCode(value: string): value is ErrorCode {
  return CODE_SET.has(value);
}

/** Codes after which the tracker closes the connection (framing faults and overload). */
export const FATAL_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>(['PROTOCOL', 'FRAME_TOO_LARGE', 'BUSY']);

/**
 * An error that travels to the peer as `ERR <code> <message>`. Everything a
 * handler rejects is one of these; anything else that escapes a handler is a
 * bug and is answered `ERR INTERNAL`.
 */
export class TrackerError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string) {
    super(message);
    this.name = 'TrackerError';
    this.code = code;
  }

  /** The response payload line for this error. */
  toPayload(): string {
    return formatError(this.code, this.message);
  }
}

/** `ERR <CODE> <message>`, with the message kept on one line. */
export function formatError(code: ErrorCode, message: string): string {
  const oneLine = message.replace(/[\r\n]+/g, ' ').trim();
  return oneLine.length > 0 ? `ERR ${code} ${oneLine}` : `ERR ${code}`;
}

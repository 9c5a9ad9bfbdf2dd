import { randomBytes } from 'node:crypto';

/**
 * Request ids for exactly-once writes (docs/protocol.md, "Request ids").
 * Every request the client sends starts with `@<client-id>:<n> `: the
 * client id is 16 lowercase hex digits picked once per process, `n` a
 * request number that only grows. The trackers remember, in replicated
 * state, the last write number of each client id and its answer, so a
 * write retried with the same id and number after a failover is answered
 * from that record instead of running twice. Pure, apart from
 * `newClientId`'s random source.
 */

/** The largest request number (`Number.MAX_SAFE_INTEGER`, 2^53 − 1). */
export const MAX_REQUEST_NUMBER = Number.MAX_SAFE_INTEGER;

const CLIENT_ID = /^[0-9a-f]{16}$/;

/** A fresh client id: 64 random bits as 16 lowercase hex digits. */
export function newClientId(random: (size: number) => Buffer = randomBytes): string {
  return random(8).toString('hex');
}

export function isClientId(text: string): boolean {
  return CLIENT_ID.test(text);
}

/** One request's id: the client's id and this request's number. */
export interface RequestId {
  readonly clientId: string;
  readonly n: number;
}

/** `@9f86d081884c7d65:42 create_group team` */
export function withRequestId(id: RequestId, line: string): string {
  return `@${id.clientId}:${id.n} ${line}`;
}

/** Reads the prefix back: the id and the command line after it, or undefined when the payload has none. */
export function parseRequestId(payload: string): { id: RequestId; line: string } | undefined {
  const m = /^@([0-9a-f]{16}):([1-9][0-9]{0,15}) (.*)$/s.exec(payload);
  if (!m) return undefined;
  const n = Number(m[2]);
  if (n > MAX_REQUEST_NUMBER) return undefined;
  return { id: { clientId: m[1] as string, n }, line: m[3] as string };
}

/**
 * Hands out request numbers 1, 2, 3, … for one client id. A number is
 * never handed out twice; a retry reuses the `RequestId` it was given.
 */
export class RequestIds {
  readonly clientId: string;
  private last: number;

  constructor(clientId: string = newClientId(), last = 0) {
    if (!isClientId(clientId)) throw new RangeError(`a client id is 16 lowercase hex digits, not "${clientId}"`);
    if (!Number.isSafeInteger(last) || last < 0) throw new RangeError(`bad last request number ${last}`);
    this.clientId = clientId;
    this.last = last;
  }

  /** The number given out most recently (0 before the first). */
  get lastNumber(): number {
    return this.last;
  }

  next(): RequestId {
    if (this.last >= MAX_REQUEST_NUMBER) throw new RangeError('request numbers exhausted for this client id');
    this.last += 1;
    return { clientId: this.clientId, n: this.last };
  }
}

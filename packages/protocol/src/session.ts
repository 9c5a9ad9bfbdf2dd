/**
 * Session ids are unsigned 64-bit values carried as `bigint` end to end:
 * a `number` would silently lose ids above 2^53.
 */
export type SessionId = bigint;

export const NO_SESSION: SessionId = 0n;
export const MAX_SESSION: SessionId = (1n << 64n) - 1n;

export function isValidSessionId(value: bigint): boolean {
  return value > 0n && value <= MAX_SESSION;
}

/** Decimal text form, as stored in databases and logs. */
export function formatSessionId(id: SessionId): string {
  return id.toString(10);
}

/** Parses the decimal form; returns undefined for anything that is not a u64. */
export function parseSessionId(text: string): SessionId | undefined {
  if (!/^[0-9]{1,20}$/.test(text)) return undefined;
  const id = BigInt(text);
  return id <= MAX_SESSION ? id : undefined;
}

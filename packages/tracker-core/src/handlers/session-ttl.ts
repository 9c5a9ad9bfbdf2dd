/**
 * The sliding session TTL. A session's expiry is written (and replicated)
 * only when it moves by at least a granularity — a tenth of the TTL, at most
 * a minute — so that a busy session costs one small change a minute, not one
 * per request. Every expiry therefore carries one granularity of slack: a
 * request that skips its write may come up to a granularity after the last
 * written one, and the session must still last a whole TTL after it.
 * A session thus ends between TTL and TTL + granularity after its last use.
 */

/** How far an expiry must move before it is written: a tenth of the TTL, at most a minute. */
export function touchGranularity(ttlMs: number): number {
  return Math.min(60_000, Math.floor(ttlMs / 10));
}

/** The expiry of a session used at `now`. */
export function sessionExpiry(now: number, ttlMs: number): number {
  return now + ttlMs + touchGranularity(ttlMs);
}

/** Whether a session expiring at `expiresAt`, used at `now`, needs its new expiry written. */
export function touchDue(expiresAt: number, now: number, ttlMs: number): boolean {
  return sessionExpiry(now, ttlMs) - expiresAt >= touchGranularity(ttlMs);
}

import { byBytes } from '../state/memory-state.js';

/** A live session of the user who logs in, with the expiry the state holds for it. */
export interface LiveSession {
  id: string;
  expires_at: number;
}

/**
 * The sessions a login must end so that the user holds at most `max` live
 * sessions, the new one included: the least recently active first. Every
 * written expiry is the last use plus the same TTL and slack
 * (session-ttl.ts), so the earliest expiry is the session used longest ago;
 * equal expiries go by id, so that the choice never depends on map order.
 */
export function sessionsToEvict(live: readonly LiveSession[], max: number): string[] {
  const excess = live.length + 1 - max;
  if (excess <= 0) return [];
  return [...live]
    .sort((a, b) => a.expires_at - b.expires_at || byBytes(a.id, b.id))
    .slice(0, excess)
    .map((s) => s.id);
}

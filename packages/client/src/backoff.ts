/**
 * When to try which tracker again after a connection is lost. Pure: the
 * runner does the waiting.
 */

export interface BackoffOptions {
  /** Pause after the first round in which every tracker failed. Default 100 ms. */
  initialMs?: number;
  /** Each further round waits this many times longer. Default 2. */
  factor?: number;
  /** The longest pause between rounds. Default 2000 ms. */
  maxMs?: number;
}

export const DEFAULT_BACKOFF: Required<BackoffOptions> = Object.freeze({ initialMs: 100, factor: 2, maxMs: 2000 });

/**
 * The pause before round `round` (0-based) of connection attempts: none
 * before the first round, then `initialMs`, growing by `factor` up to `maxMs`.
 */
export function backoffDelay(round: number, options: BackoffOptions = {}): number {
  if (round <= 0) return 0;
  const { initialMs, factor, maxMs } = { ...DEFAULT_BACKOFF, ...options };
  return Math.min(maxMs, Math.round(initialMs * factor ** (round - 1)));
}

/**
 * The order in which to try the trackers in one round: starting at index
 * `start` (wrapping around), each once. After a lost connection the runner
 * starts at the tracker after the one it lost, so a dead tracker is tried
 * last; after an idle close it starts at the same one.
 */
export function tryOrder(count: number, start: number): number[] {
  if (count <= 0) return [];
  const first = ((start % count) + count) % count;
  return Array.from({ length: count }, (_, k) => (first + k) % count);
}

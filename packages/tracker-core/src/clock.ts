import { randomBytes } from 'node:crypto';

/**
 * Where handlers get time and randomness. Passed in, so tests can pin both;
 * `apply` never uses either: the values it needs travel inside the Change.
 */
export interface Clock {
  now(): number;
}

export interface Entropy {
  /** A uniformly random non-zero u64 from a cryptographic source. */
  sessionId(): bigint;
}

export const systemClock: Clock = { now: () => Date.now() };

export const cryptoEntropy: Entropy = {
  sessionId(): bigint {
    for (;;) {
      const id = randomBytes(8).readBigUInt64BE(0);
      if (id !== 0n) return id;
    }
  },
};

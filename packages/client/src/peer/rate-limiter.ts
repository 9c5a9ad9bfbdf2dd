/**
 * An upload rate limit shared by every peer connection: each piece waits
 * its turn so that the bytes sent stay at `bytesPerSecond` on average.
 * 0 means no limit.
 */
export class RateLimiter {
  private readonly bytesPerSecond: number;
  private nextFreeMs = 0;

  constructor(bytesPerSecond: number) {
    this.bytesPerSecond = bytesPerSecond;
  }

  /** Resolves when `bytes` may be sent. */
  async take(bytes: number): Promise<void> {
    if (this.bytesPerSecond <= 0) return;
    const now = Date.now();
    const start = Math.max(now, this.nextFreeMs);
    this.nextFreeMs = start + (bytes * 1000) / this.bytesPerSecond;
    const wait = start - now;
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
  }
}

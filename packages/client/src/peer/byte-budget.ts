/** Gives back what `ByteBudget.acquire` took; calling it again does nothing. */
export type BudgetRelease = () => void;

interface Waiter {
  weight: number;
  resolve(release: BudgetRelease | undefined): void;
  signal: AbortSignal | undefined;
  onAbort: () => void;
}

/**
 * A number of bytes shared by many users (the piece server's connections):
 * each takes what it is about to hold in memory and gives it back once the
 * memory is let go, so that together they never hold more than `capacity`.
 *
 * Not async-mutex's `Semaphore`, which fits otherwise: a waiter there
 * cannot leave the queue on its own, so a connection that closed while
 * waiting would still hold up every connection queued behind it.
 *
 * First come, first served: a waiter is never overtaken, even by a smaller
 * request that would fit now, so a large piece cannot be starved by small
 * ones. A request larger than the capacity takes the whole capacity: it
 * waits until nothing else is held, rather than forever.
 */
export class ByteBudget {
  readonly capacity: number;
  private free: number;
  private readonly queue: Waiter[] = [];

  constructor(capacity: number) {
    if (!Number.isSafeInteger(capacity) || capacity <= 0) throw new RangeError(`byte budget must be a positive whole number, not ${capacity}`);
    this.capacity = capacity;
    this.free = capacity;
  }

  /** Bytes taken and not given back yet. */
  get held(): number {
    return this.capacity - this.free;
  }

  /** Requests waiting for their turn. */
  get waiting(): number {
    return this.queue.length;
  }

  /**
   * Resolves with the `BudgetRelease` once `bytes` (at most the capacity) are
   * free and every earlier request has been served; with `undefined` if
   * `signal` aborts first (the place in the queue is given up at once).
   */
  acquire(bytes: number, signal?: AbortSignal): Promise<BudgetRelease | undefined> {
    if (!Number.isSafeInteger(bytes) || bytes < 0) throw new RangeError(`cannot take ${bytes} bytes`);
    if (signal?.aborted) return Promise.resolve(undefined);
    const weight = Math.min(bytes, this.capacity);
    if (this.queue.length === 0 && weight <= this.free) return Promise.resolve(this.take(weight));
    return new Promise((resolve) => {
      const waiter: Waiter = {
        weight,
        resolve,
        signal,
        onAbort: () => {
          const at = this.queue.indexOf(waiter);
          if (at < 0) return;
          this.queue.splice(at, 1);
          resolve(undefined);
          // It may have been the head that held back smaller requests that fit.
          this.dispatch();
        },
      };
      signal?.addEventListener('abort', waiter.onAbort, { once: true });
      this.queue.push(waiter);
    });
  }

  private take(weight: number): BudgetRelease {
    this.free -= weight;
    let given = false;
    return () => {
      if (given) return;
      given = true;
      this.free += weight;
      this.dispatch();
    };
  }

  private dispatch(): void {
    while (this.queue.length > 0 && (this.queue[0] as Waiter).weight <= this.free) {
      const waiter = this.queue.shift() as Waiter;
      waiter.signal?.removeEventListener('abort', waiter.onAbort);
      waiter.resolve(this.take(waiter.weight));
    }
  }
}

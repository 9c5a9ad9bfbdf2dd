import { Semaphore } from 'async-mutex';

/**
 * Bounds how many password hashes run at once.
 *
 * scrypt runs on libuv's thread pool (4 threads unless UV_THREADPOOL_SIZE
 * says otherwise), and so does the `fdatasync` that makes the change log's
 * commits durable before anyone is answered. The pool is one FIFO queue:
 * unbounded, a burst of sign-ups or logins from many connections (each
 * connection has one in flight) queued ahead of the log's sync, and every
 * durable write waited for all of them: 400 `create_user` over 100
 * connections held writes for 3–5 s here. Hashes past the bound wait in
 * this queue instead, in order, so that pool threads stay free for the log.
 */
export class HashSlots {
  private readonly semaphore: Semaphore;
  private queued = 0;

  constructor(readonly slots: number) {
    this.semaphore = new Semaphore(slots);
  }

  /** Runs `hash` once a slot is free; `hash` must start its thread-pool work only when called. */
  async run<T>(hash: () => Promise<T>): Promise<T> {
    this.queued++;
    const [, release] = await this.semaphore.acquire();
    this.queued--;
    try {
      return await hash();
    } finally {
      release();
    }
  }

  /** Hashes waiting for a slot now. */
  get waiting(): number {
    return this.queued;
  }
}

/**
 * Hashes at once: as many as there are cores (more do not hash faster, they
 * only share them), leaving at least two pool threads for the log's sync
 * and the other file work; never less than one.
 */
export function hashSlotsFor(threadPoolSize: number, cores: number): number {
  return Math.max(1, Math.min(cores, threadPoolSize - 2));
}

/** libuv's thread pool size when UV_THREADPOOL_SIZE does not set it. */
export const DEFAULT_THREAD_POOL_SIZE = 4;

/** libuv's thread pool size: UV_THREADPOOL_SIZE when it is a number (libuv clamps it to 1–1024), else 4. */
export function threadPoolSize(env: NodeJS.ProcessEnv): number {
  const n = Number.parseInt(env['UV_THREADPOOL_SIZE'] ?? '', 10);
  return Number.isInteger(n) && n > 0 ? Math.min(n, 1024) : DEFAULT_THREAD_POOL_SIZE;
}

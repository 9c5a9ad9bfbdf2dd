/**
 * Waits for `promise` unless `signal` aborts first; then rejects at once
 * with `onAbort()`. The work behind `promise` is not stopped: a value it
 * gives after the abort goes to `late` (e.g. to close a connection nobody
 * will use), and a failure after the abort is ignored.
 */
export function untilAborted<T>(
  promise: Promise<T>,
  signal: AbortSignal | undefined,
  onAbort: () => Error,
  late?: (value: T) => void,
): Promise<T> {
  if (signal === undefined) return promise;
  if (signal.aborted) {
    promise.then((value) => late?.(value), () => undefined);
    return Promise.reject(onAbort());
  }
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    const abort = (): void => {
      settled = true;
      reject(onAbort());
    };
    signal.addEventListener('abort', abort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', abort);
        if (settled) late?.(value);
        else resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', abort);
        if (!settled) reject(error instanceof Error ? error : new Error(String(error)));
      },
    );
  });
}

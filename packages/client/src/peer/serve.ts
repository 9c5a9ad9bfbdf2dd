import { stopSignalOf } from '../errors.js';
import type { StopSignal } from '../errors.js';

/** Resolves when `stop` aborts (the `--serve` mode's end), with the signal that stopped it. */
export function waitForStop(stop: AbortSignal): Promise<StopSignal> {
  return new Promise((resolve) => {
    if (stop.aborted) resolve(stopSignalOf(stop));
    else stop.addEventListener('abort', () => resolve(stopSignalOf(stop)), { once: true });
  });
}

import { STOP_SIGNALS } from './errors.js';
import type { StopSignal } from './errors.js';

export interface StopListener {
  /** Aborted at the first stop signal, with the signal's name (`SIGTERM`) as its reason. */
  signal: AbortSignal;
  /** Removes the handlers (the signals' default actions apply again). */
  dispose(): void;
}

/**
 * Turns SIGTERM, SIGINT and SIGHUP (the terminal went away) into an
 * `AbortSignal`, so that the client leaves the way `quit` does — stopping
 * downloads and withdrawing its shares — instead of dying on the spot.
 * While the handlers are installed, later signals are ignored: leaving is
 * bounded in time (each `stop_share` waits at most 2 s).
 */
export function listenForStopSignals(signals: readonly StopSignal[] = STOP_SIGNALS): StopListener {
  const controller = new AbortController();
  const onSignal = (signal: NodeJS.Signals): void => {
    if (!controller.signal.aborted) controller.abort(signal);
  };
  for (const signal of signals) process.on(signal, onSignal);
  return {
    signal: controller.signal,
    dispose: () => {
      for (const signal of signals) process.off(signal, onSignal);
    },
  };
}

import type { Writable } from 'node:stream';
import { untilAborted } from './abort.js';
import { AbandonedError, ClientError, EXIT, signalExitCode, stopSignalOf } from './errors.js';
import type { ExitCode } from './errors.js';
import {
  commandName,
  formatClientError,
  formatEvent,
  formatFailover,
  formatLocal,
  formatReply,
  formatSessionEnded,
  formatUnanswered,
  PLAIN_VIEW,
} from './format.js';
import type { View } from './format.js';
import type { Runner } from './runner.js';

export interface ScriptIo {
  stdout: Writable;
  stderr: Writable;
  /** How answers and events are shown; the tracker's raw text by default. */
  view?: View;
  /** Run on after an `ERR` answer (the exit status still says a command failed). */
  keepGoing?: boolean;
  /**
   * Aborted (reason: a signal name) to stop the script: the command running
   * is abandoned, no other one runs, and the status is 128 + the signal's
   * number (143 for SIGTERM).
   */
  stop?: AbortSignal;
}

/**
 * Runs commands one after the other (each waits for the previous answer, so
 * a `login` is in effect for the next command), printing each answer and
 * every event on stdout, and the client's own notices (failover, a session
 * that ended) on stderr. Stops at the first `ERR` with `EXIT.COMMAND_FAILED`
 * unless `keepGoing`; `quit` stops early. A lost tracker is failed over
 * (see `Runner`); only when no tracker can be reached within the failover
 * time does the script stop, with `EXIT.UNREACHABLE`. `io.stop` stops it
 * at once (see `ScriptIo.stop`).
 */
export async function runScript(
  runner: Runner,
  commands: Iterable<string> | AsyncIterable<string>,
  io: ScriptIo,
): Promise<ExitCode> {
  const view = io.view ?? PLAIN_VIEW;
  runner.hooks = {
    onEvent: (event) => io.stdout.write(`${formatEvent(event.payload, view)}\n`),
    onFailover: (info) => io.stderr.write(`${formatFailover(info)}\n`),
    onReconnectFailed: (error) => io.stderr.write(`${formatClientError(`${error.message}; the next command tries again`)}\n`),
    onSessionEnded: (user) => io.stderr.write(`${formatSessionEnded(user)}\n`),
    onNotice: (text) => io.stderr.write(`${text}\n`),
  };
  let failed = false;
  const stop = io.stop;
  const lines = toAsyncIterator(commands);
  let finished = false;
  /** The command running, and its signal, for the message if it fails. */
  let running: { line: string; signal: AbortSignal } | undefined;
  try {
    for (;;) {
      const next = await untilAborted(Promise.resolve(lines.next()), stop, () => new AbandonedError(undefined, false));
      if (next.done === true) {
        finished = true;
        break;
      }
      const line = next.value;
      // One signal per command, so that `wasSent` speaks of this command alone.
      const signal = stop === undefined ? new AbortController().signal : AbortSignal.any([stop]);
      const abandoned = (): AbandonedError => new AbandonedError(commandName(line), runner.wasSent(signal));
      running = { line, signal };
      // Raced too: a client-side command may be busy with something other than a request (hashing a file).
      const outcome = await untilAborted(runner.execute(line, signal), signal, abandoned);
      if (outcome.kind === 'quit') break;
      if (outcome.kind === 'skip') continue;
      if (outcome.kind === 'local') {
        if (outcome.text !== undefined) {
          // A client-side refusal is the client's own message: on stderr, prefixed like the others (docs/client.md).
          if (outcome.ok || view.mode === 'json') io.stdout.write(`${formatLocal(outcome.ok, outcome.text, view)}\n`);
          else io.stderr.write(`${formatClientError(outcome.text)}\n`);
        }
      } else {
        io.stdout.write(`${formatReply(outcome.reply.payload, view, outcome.command, outcome.rows)}\n`);
      }
      if (!outcome.ok) {
        failed = true;
        if (io.keepGoing !== true) break;
      }
    }
  } catch (error) {
    if (error instanceof AbandonedError && stop?.aborted === true) {
      const signal = stopSignalOf(stop);
      io.stderr.write(`${formatClientError(`stopped by ${signal}${error.command !== undefined ? ` (${error.message})` : ''}`)}\n`);
      return signalExitCode(signal);
    }
    if (error instanceof ClientError) {
      const text =
        error.exitCode === EXIT.UNREACHABLE && running !== undefined
          ? formatUnanswered(error.message, commandName(running.line), runner.wasSent(running.signal))
          : error.message;
      io.stderr.write(`${formatClientError(text)}\n`);
      return error.exitCode;
    }
    throw error;
  } finally {
    // Ends the input (a stdin script's readline). Not awaited: after a stop, a read may still be pending on it.
    if (!finished && lines.return !== undefined) Promise.resolve(lines.return(undefined)).catch(() => undefined);
  }
  return failed ? EXIT.COMMAND_FAILED : EXIT.OK;
}

function toAsyncIterator(commands: Iterable<string> | AsyncIterable<string>): AsyncIterator<string> | Iterator<string> {
  return Symbol.asyncIterator in commands ? commands[Symbol.asyncIterator]() : commands[Symbol.iterator]();
}

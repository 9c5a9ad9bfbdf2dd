import type { Writable } from 'node:stream';
import { ClientError, EXIT } from './errors.js';
import type { ExitCode } from './errors.js';
import { formatClientError, formatEvent, formatFailover, formatLocal, formatReply, formatSessionEnded, PLAIN_VIEW } from './format.js';
import type { View } from './format.js';
import type { Runner } from './runner.js';

export interface ScriptIo {
  stdout: Writable;
  stderr: Writable;
  /** How answers and events are shown; the tracker's raw text by default. */
  view?: View;
  /** Run on after an `ERR` answer (the exit status still says a command failed). */
  keepGoing?: boolean;
}

/**
 * Runs commands one after the other (each waits for the previous answer, so
 * a `login` is in effect for the next command), printing each answer and
 * every event on stdout, and the client's own notices (failover, a session
 * that ended) on stderr. Stops at the first `ERR` with `EXIT.COMMAND_FAILED`
 * unless `keepGoing`; `quit` stops early. A lost tracker is failed over
 * (see `Runner`); only when no tracker can be reached within the failover
 * time does the script stop, with `EXIT.UNREACHABLE`.
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
  try {
    for await (const line of commands) {
      const outcome = await runner.execute(line);
      if (outcome.kind === 'quit') break;
      if (outcome.kind === 'skip') continue;
      if (outcome.kind === 'local') {
        if (outcome.text !== undefined) {
          const out = outcome.ok || view.mode === 'json' ? io.stdout : io.stderr;
          out.write(`${formatLocal(outcome.ok, outcome.text, view)}\n`);
        }
      } else {
        io.stdout.write(`${formatReply(outcome.reply.payload, view, outcome.command)}\n`);
      }
      if (!outcome.ok) {
        failed = true;
        if (io.keepGoing !== true) break;
      }
    }
  } catch (error) {
    if (error instanceof ClientError) {
      io.stderr.write(`${formatClientError(error.message)}\n`);
      return error.exitCode;
    }
    throw error;
  }
  return failed ? EXIT.COMMAND_FAILED : EXIT.OK;
}

import type { Writable } from 'node:stream';
import { ClientError, EXIT } from './errors.js';
import type { ExitCode } from './errors.js';
import { formatClientError, formatEvent, formatIdleDisconnect, formatReply } from './format.js';
import type { Runner } from './runner.js';

export interface ScriptIo {
  stdout: Writable;
  stderr: Writable;
}

/**
 * Runs commands one after the other (each waits for the previous answer, so
 * a `login` is in effect for the next command), printing each answer and
 * every event on stdout. Every command is run even when some fail; the
 * result is `EXIT.COMMAND_FAILED` if any got `ERR`. `quit` stops early.
 * Losing the tracker mid-command stops the script with `EXIT.UNREACHABLE`;
 * a connection dropped between commands (e.g. the tracker's idle timeout)
 * is noted on stderr and reopened for the next command, same session.
 */
export async function runScript(
  runner: Runner,
  commands: Iterable<string> | AsyncIterable<string>,
  io: ScriptIo,
): Promise<ExitCode> {
  runner.hooks = {
    onEvent: (event) => io.stdout.write(`${formatEvent(event.payload)}\n`),
    onIdleDisconnect: (error) => io.stderr.write(`${formatIdleDisconnect(error.message)}\n`),
  };
  let failed = false;
  try {
    for await (const line of commands) {
      const outcome = await runner.execute(line);
      if (outcome.kind === 'quit') break;
      if (outcome.kind === 'skip') continue;
      if (outcome.kind === 'local') {
        (outcome.ok ? io.stdout : io.stderr).write(`${outcome.text}\n`);
      } else {
        io.stdout.write(`${formatReply(outcome.reply.payload)}\n`);
      }
      if (!outcome.ok) failed = true;
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

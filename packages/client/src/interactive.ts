import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import readline from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { untilAborted } from './abort.js';
import { complete } from './completion.js';
import { AbandonedError, ClientError, EXIT } from './errors.js';
import type { ExitCode } from './errors.js';
import {
  commandName,
  formatClientError,
  formatEvent,
  formatFailover,
  formatLocal,
  formatPrompt,
  formatReply,
  formatSessionEnded,
  formatTracker,
  formatUnanswered,
  PLAIN_VIEW,
  withHelpHint,
} from './format.js';
import type { View } from './format.js';
import { formatHistoryFile, HISTORY_SIZE, isSecretLine, parseHistoryFile } from './history.js';
import type { Runner } from './runner.js';

export interface InteractiveIo {
  input: Readable;
  output: Writable;
  /** Whether the streams are a terminal (cursor movement, line editing). Default true. */
  terminal?: boolean;
  /** How answers are shown (tables and colours on a terminal). */
  view?: View;
  /** The history file to read at start and keep up to date; none when undefined. */
  historyFile?: string;
  /**
   * Aborted (SIGTERM, SIGHUP, SIGINT sent to the process) to leave as
   * `quit` does: the command running is abandoned, and the status is 0.
   */
  stop?: AbortSignal;
}

/**
 * The prompt: reads a line, runs it, prints the answer, until `quit`,
 * `exit` or Ctrl-D (none of which logs out). Ctrl-C clears the line being
 * typed; while a command waits, Ctrl-C abandons it (see `Runner.request`:
 * its answer, if it comes, is dropped) and gives the prompt back. Tab completes command names, and group and user names the client
 * has seen. Events and the client's notices (a failover, a session that
 * ended) are printed above the prompt as they arrive, and the line being
 * typed is redrawn intact below them. Errors (no tracker to fail over to)
 * are reported and the prompt carries on: the next command tries again.
 * History is kept in `historyFile`, without the lines that carry passwords.
 * `io.stop` leaves at once, as `quit` does.
 */
export async function runInteractive(runner: Runner, io: InteractiveIo): Promise<ExitCode> {
  const terminal = io.terminal ?? true;
  const view = io.view ?? PLAIN_VIEW;
  const history = io.historyFile !== undefined ? loadHistory(io.historyFile) : [];
  const rl = readline.createInterface({
    input: io.input,
    output: io.output,
    terminal,
    history,
    historySize: HISTORY_SIZE,
    removeHistoryDuplicates: true,
    completer: (line: string) => complete(line, runner.commands, runner.known),
  });
  let busy = false;
  let closed = false;
  /** Aborts the command running now (Ctrl-C). */
  let current: AbortController | undefined;
  rl.on('close', () => {
    closed = true;
  });
  const stop = io.stop;
  // A stop signal ends the loop below like Ctrl-D: the caller then leaves as after `quit`.
  const leave = (): void => {
    if (!closed) rl.close();
  };
  if (stop?.aborted === true) leave();
  else stop?.addEventListener('abort', leave, { once: true });
  rl.on('history', (lines: string[]) => {
    // The listener may change the array: lines with passwords never stay.
    if (lines.length > 0 && isSecretLine(lines[0] as string)) lines.shift();
    else if (lines.length > 0) lines[0] = (lines[0] as string).trim();
    if (io.historyFile !== undefined) saveHistory(io.historyFile, lines);
  });

  const prompt = (): void => {
    rl.setPrompt(formatPrompt(runner.state, runner.address, runner.role));
    rl.prompt();
  };
  /** Prints a line above the prompt and redraws the prompt and what is being typed, cursor included. */
  const printAbove = (text: string): void => {
    if (terminal && !busy) {
      // A prompt and line longer than the terminal is wide wraps: clear from its first row, not the cursor's.
      readline.moveCursor(io.output, 0, -rl.getCursorPos().rows);
      readline.cursorTo(io.output, 0);
      readline.clearScreenDown(io.output);
    }
    io.output.write(`${text}\n`);
    if (!busy && !closed) {
      rl.setPrompt(formatPrompt(runner.state, runner.address, runner.role));
      rl.prompt(true);
    }
  };

  runner.hooks = {
    onEvent: (event) => printAbove(formatEvent(event.payload, view)),
    onFailover: (info) => printAbove(formatFailover(info)),
    onReconnectFailed: (error) => printAbove(formatClientError(`${error.message}; the next command tries again`)),
    onSessionEnded: (user) => printAbove(formatSessionEnded(user)),
    onNotice: (text) => printAbove(text),
  };
  rl.on('SIGINT', () => {
    if (busy) {
      // Ctrl-C while a command waits: stop waiting for it; the loop says so and gives the prompt back.
      current?.abort();
      return;
    }
    // Like a shell: Ctrl-C drops the line being typed and gives a fresh prompt.
    rl.write(null, { ctrl: true, name: 'e' });
    rl.write(null, { ctrl: true, name: 'u' });
    io.output.write('^C\n');
    prompt();
  });

  const connection = runner.connection;
  if (connection?.isOpen === true) {
    io.output.write(`connected to ${formatTracker(connection.address, runner.role)}; type "help" for the commands, Tab completes\n`);
  }
  prompt();
  for await (const line of rl) {
    busy = true;
    // One signal per command (so that `wasSent` speaks of this command alone), aborted by Ctrl-C or a stop signal.
    const controller = new AbortController();
    current = controller;
    const signal = stop === undefined ? controller.signal : AbortSignal.any([stop, controller.signal]);
    const abandoned = (): AbandonedError => new AbandonedError(commandName(line), runner.wasSent(signal));
    try {
      // Raced too: a client-side command may be busy with something other than a request (hashing a file).
      const outcome = await untilAborted(runner.execute(line, signal), signal, abandoned);
      if (outcome.kind === 'quit') break;
      if (outcome.kind === 'local' && outcome.text !== undefined) io.output.write(`${formatLocal(outcome.ok, outcome.text, view)}\n`);
      else if (outcome.kind === 'reply') {
        // JSON is for programs, which have no use for the hint.
        const payload = view.mode === 'json' ? outcome.reply.payload : withHelpHint(outcome.reply.payload);
        io.output.write(`${formatReply(payload, view, outcome.command, outcome.rows)}\n`);
      }
    } catch (error) {
      if (!(error instanceof ClientError)) throw error;
      if (!(error instanceof AbandonedError)) {
        // No tracker: the command failed, and is not sent later; the prompt carries on.
        const text = error.exitCode === EXIT.UNREACHABLE ? `${formatUnanswered(error.message, commandName(line), runner.wasSent(signal))}; the next command tries again` : error.message;
        io.output.write(`${formatClientError(text)}\n`);
      }
      // Ctrl-C: `^C (whoami abandoned; it was sent, so the tracker may still apply it)`. Leaving on a stop signal: nothing to say.
      else if (stop?.aborted !== true) io.output.write(`^C (${error.message})\n`);
    } finally {
      busy = false;
      current = undefined;
    }
    if (closed) break;
    prompt();
  }
  stop?.removeEventListener('abort', leave);
  if (!closed) rl.close();
  else if (terminal) io.output.write('\n');
  return EXIT.OK;
}

function loadHistory(file: string): string[] {
  try {
    return parseHistoryFile(readFileSync(file, 'utf8'));
  } catch {
    return [];
  }
}

function saveHistory(file: string, lines: readonly string[]): void {
  try {
    writeFileSync(file, formatHistoryFile(lines), { mode: 0o600 });
    chmodSync(file, 0o600);
  } catch {
    // A read-only home must not break the prompt.
  }
}

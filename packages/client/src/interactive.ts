import readline from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { ClientError, EXIT } from './errors.js';
import type { ExitCode } from './errors.js';
import { formatClientError, formatEvent, formatIdleDisconnect, formatPrompt, formatReply } from './format.js';
import type { Runner } from './runner.js';

export interface InteractiveIo {
  input: Readable;
  output: Writable;
  /** Whether the streams are a terminal (cursor movement, line editing). Default true. */
  terminal?: boolean;
}

/**
 * The prompt: reads a line, runs it, prints the answer, until `quit`,
 * `exit`, Ctrl-D, or Ctrl-C on an empty line. Events are printed above the
 * prompt as they arrive, and the line being typed is redrawn below them.
 * Errors (a lost connection, no tracker to reconnect to) are reported and
 * the prompt carries on: the next command tries the trackers again with the
 * same session. Quitting does not log out.
 */
export async function runInteractive(runner: Runner, io: InteractiveIo): Promise<ExitCode> {
  const terminal = io.terminal ?? true;
  const rl = readline.createInterface({ input: io.input, output: io.output, terminal, historySize: 1000 });
  let busy = false;
  let closed = false;
  rl.on('close', () => {
    closed = true;
  });

  const prompt = (): void => {
    rl.setPrompt(formatPrompt(runner.state, runner.address));
    rl.prompt();
  };
  /** Prints a line above the prompt and redraws what is being typed. */
  const printAbove = (text: string): void => {
    if (terminal) {
      readline.cursorTo(io.output, 0);
      readline.clearLine(io.output, 0);
    }
    io.output.write(`${text}\n`);
    if (!busy && !closed) rl.prompt(true);
  };

  runner.hooks = {
    onEvent: (event) => printAbove(formatEvent(event.payload)),
    onIdleDisconnect: (error) => printAbove(formatIdleDisconnect(error.message)),
    onConnect: (connection) => {
      if (!closed) printAbove(`connected to ${connection.name}`);
    },
  };
  rl.on('SIGINT', () => {
    if (rl.line.length > 0) {
      // Like a shell: Ctrl-C drops the line being typed.
      io.output.write('^C\n');
      rl.write(null, { ctrl: true, name: 'e' });
      rl.write(null, { ctrl: true, name: 'u' });
      if (!busy) prompt();
    } else {
      io.output.write('\n');
      rl.close();
    }
  });

  if (runner.connection) io.output.write(`connected to ${runner.connection.name}; type "help" for the commands\n`);
  prompt();
  for await (const line of rl) {
    busy = true;
    try {
      const outcome = await runner.execute(line);
      if (outcome.kind === 'quit') break;
      if (outcome.kind === 'local') io.output.write(`${outcome.text}\n`);
      else if (outcome.kind === 'reply') io.output.write(`${formatReply(outcome.reply.payload)}\n`);
    } catch (error) {
      if (!(error instanceof ClientError)) throw error;
      io.output.write(`${formatClientError(error.message)}\n`);
    } finally {
      busy = false;
    }
    if (closed) break;
    prompt();
  }
  if (!closed) rl.close();
  return EXIT.OK;
}

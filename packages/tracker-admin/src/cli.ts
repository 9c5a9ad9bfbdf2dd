import { readFileSync } from 'node:fs';
import yargs from 'yargs';
import { AdminError } from './backup.js';
import { COMMANDS } from './commands/index.js';
import type { AdminIo } from './commands/command.js';
import { UsageError } from './commands/command.js';

export const PROGRAM = 'tracker-admin';
/** Exit codes: done, failed (the operation could not be done), bad command line. */
export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

function packageVersion(): string {
  try {
    return (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version?: string }).version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}

/** Runs one `tracker-admin` command line and returns its exit code (never exits the process). */
export async function runAdmin(argv: readonly string[], io: AdminIo): Promise<number> {
  let code = EXIT_OK;
  let usage: string | undefined;
  let output = '';
  let parser = yargs()
    .scriptName(PROGRAM)
    .usage(`Usage: $0 <command> [options]`)
    .parserConfiguration({ 'parse-numbers': false, 'parse-positional-numbers': false, 'duplicate-arguments-array': false })
    .strict()
    .demandCommand(1, 'give a command: ' + COMMANDS.map((c) => c.command).join(', '))
    .version(packageVersion())
    .help()
    .wrap(null)
    .fail((message, error) => {
      // yargs' own complaints (unknown option, missing --db, no command) are usage errors.
      if (error) throw error;
      throw new UsageError(message);
    });
  for (const command of COMMANDS) {
    parser = parser.command(command.command, command.describe, (y) => command.builder(y), async (args) => {
      code = await command.run(args as Record<string, unknown>, io);
    });
  }
  try {
    await parser.parseAsync([...argv], {}, (_err, _args, out) => {
      if (out) output = out;
    });
  } catch (error) {
    if (error instanceof UsageError) usage = error.message;
    else if (error instanceof AdminError) {
      io.err(`${PROGRAM}: ${error.message}\n`);
      return EXIT_FAILURE;
    } else throw error;
  }
  if (usage !== undefined) {
    io.err(`${PROGRAM}: ${usage}\nTry '${PROGRAM} --help' for more information.\n`);
    return EXIT_USAGE;
  }
  if (output) io.out(output.endsWith('\n') ? output : `${output}\n`);
  return code;
}

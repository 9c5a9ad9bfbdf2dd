import type { Argv } from 'yargs';

/** Where a subcommand writes (stdout for results, stderr for progress); injectable for tests. */
export interface AdminIo {
  out(text: string): void;
  err(text: string): void;
  env: Readonly<Record<string, string | undefined>>;
}

/**
 * One `tracker-admin` subcommand, one file under `src/commands/`: its yargs
 * definition and what it does. `run` returns the exit code (0 done, 1 failed);
 * it throws `UsageError` for a bad command line (exit 2) and `AdminError`
 * for an operation that could not be done (exit 1, message printed).
 */
export interface AdminCommand {
  /** yargs command string, e.g. `backup`. */
  command: string;
  describe: string;
  builder(yargs: Argv): Argv;
  run(argv: Record<string, unknown>, io: AdminIo): Promise<number>;
}

/** A bad command line: `tracker-admin: <message>` and exit 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** A required string option (yargs has checked presence; this narrows the type). */
export function stringOption(argv: Record<string, unknown>, name: string): string {
  const value = argv[name];
  if (typeof value !== 'string' || value.trim() === '') throw new UsageError(`--${name} needs a value`);
  return value;
}

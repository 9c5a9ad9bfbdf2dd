import { EXIT_FAILURE, PROGRAM, runAdmin } from './cli.js';

let code: number;
try {
  code = await runAdmin(process.argv.slice(2), {
    out: (text) => process.stdout.write(text),
    err: (text) => process.stderr.write(text),
    env: process.env,
  });
} catch (error) {
  process.stderr.write(`${PROGRAM}: internal error: ${(error as Error)?.stack ?? String(error)}\n`);
  code = EXIT_FAILURE;
}
process.exitCode = code;

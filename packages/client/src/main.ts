/** Entry point of the `tracker-client` bin. */
import { run } from './cli.js';

function flush(stream: NodeJS.WriteStream): Promise<void> {
  return new Promise((resolve) => {
    if (stream.destroyed || !stream.writable) resolve();
    else stream.write('', () => resolve());
  });
}

// A closed pipe (`tracker-client ... | head`) or a terminal that went away
// (EIO, with SIGHUP: the client is leaving, withdrawing its shares) is not an
// error worth a stack trace.
const READER_GONE = new Set(['EPIPE', 'EIO']);
for (const stream of [process.stdout, process.stderr, process.stdin]) {
  stream.on('error', (error: NodeJS.ErrnoException) => {
    if (!READER_GONE.has(error.code ?? '')) throw error;
  });
}

let code: number;
try {
  code = await run({
    argv: process.argv.slice(2),
    env: process.env,
    stdin: process.stdin,
    stdout: process.stdout,
    stderr: process.stderr,
  });
} catch (error) {
  process.stderr.write(`tracker-client: internal error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  code = 70;
}
await flush(process.stdout);
await flush(process.stderr);
// Exit explicitly: a paused stdin or a half-closed socket must not keep the process alive.
process.exit(code);

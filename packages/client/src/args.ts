import { readFileSync } from 'node:fs';
import yargs from 'yargs';
import { EXIT } from './errors.js';
import type { ExitCode } from './errors.js';
import { UsageError } from './errors.js';
import { resolveOptions } from './options.js';
import type { ClientOptions, Env } from './options.js';

/** What the command line asks for: run with these options, or print something and exit. */
export type ParsedArgs =
  | { kind: 'run'; options: ClientOptions }
  | { kind: 'exit'; code: ExitCode; stdout: string; stderr: string };

const USAGE = `$0 [--tracker HOST:PORT ...] [--exec "cmd; cmd"]

Talks to a tracker of the cluster. Connects to the first tracker that accepts
a connection. With --exec, runs the commands and exits; with commands on
stdin (not a terminal), runs them line by line and exits; otherwise shows a
prompt. Type "help" at the prompt for the tracker commands.`;

const EPILOG = `Exit status: 0 all commands answered OK, 1 some command was answered ERR
(all commands are still run), 2 bad options, 3 no tracker could be reached
or the connection was lost during a command.
Every option can also be set through TRACKER_<OPTION>, e.g. TRACKER_TRACKER="127.0.0.1:7001,127.0.0.1:7002".`;

/** Parses `process.argv.slice(2)`. Never prints and never exits; the caller does. */
export function parseArgs(argv: readonly string[], env: Env = {}): ParsedArgs {
  let result: ParsedArgs | undefined;
  const parser = yargs()
    .scriptName('tracker-client')
    .usage(USAGE)
    .option('tracker', {
      type: 'string',
      array: true,
      requiresArg: true,
      describe: 'a tracker to connect to; repeat to give several, tried in order. IPv6: [::1]:7001',
      defaultDescription: '127.0.0.1:7001 then 127.0.0.1:7002',
    })
    .option('exec', {
      type: 'string',
      requiresArg: true,
      describe: 'run these commands, separated by ";" (outside double quotes), then exit',
    })
    .option('timeout-ms', {
      type: 'string',
      requiresArg: true,
      describe: 'how long to wait for each answer, in milliseconds (0 = no limit)',
      defaultDescription: '30000',
    })
    .option('connect-timeout-ms', {
      type: 'string',
      requiresArg: true,
      describe: 'how long to wait for each TCP connection, in milliseconds (0 = no limit)',
      defaultDescription: '5000',
    })
    // peer: file-sharing options (docs/client.md "File sharing")
    .option('listen', {
      type: 'string',
      requiresArg: true,
      describe: 'HOST:PORT where this client serves file pieces to other peers (port 0: any free port)',
      defaultDescription: '127.0.0.1:0',
    })
    .option('data-dir', { type: 'string', requiresArg: true, describe: 'where the client remembers your shares', defaultDescription: '~/.tracker-client' })
    .option('serve', { type: 'boolean', describe: 'after the script, keep serving shared files until SIGTERM or SIGINT' })
    .option('upload-rate', { type: 'string', requiresArg: true, describe: 'upload limit in bytes per second (0 = none)', defaultDescription: '0' })
    .option('max-downloads', { type: 'string', requiresArg: true, describe: 'downloads run at once; more wait their turn', defaultDescription: '2' })
    // end peer
    .strict()
    .help()
    .alias('help', 'h')
    .version(readVersion())
    .epilog(EPILOG)
    .exitProcess(false)
    .wrap(null);
  parser.parseSync([...argv], {}, (error, args, output) => {
    if (error) {
      result = { kind: 'exit', code: EXIT.USAGE, stdout: '', stderr: usageMessage(error.message) };
      return;
    }
    if (output.length > 0) {
      // --help or --version
      result = { kind: 'exit', code: EXIT.OK, stdout: `${output}\n`, stderr: '' };
      return;
    }
    try {
      const options = resolveOptions(
        {
          tracker: args.tracker,
          exec: args.exec as string | string[] | undefined,
          timeoutMs: args.timeoutMs,
          connectTimeoutMs: args.connectTimeoutMs,
          // peer
          listen: args.listen,
          dataDir: args.dataDir,
          serve: args.serve,
          uploadRate: args.uploadRate,
          maxDownloads: args.maxDownloads,
        },
        env,
      );
      result = { kind: 'run', options };
    } catch (caught) {
      if (!(caught instanceof UsageError)) throw caught;
      result = { kind: 'exit', code: EXIT.USAGE, stdout: '', stderr: usageMessage(caught.message) };
    }
  });
  if (result === undefined) throw new Error('command-line parser gave no result');
  return result;
}

function usageMessage(message: string): string {
  return `tracker-client: ${message}\nTry "tracker-client --help".\n`;
}

function readVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : 'unknown';
  } catch {
    return 'unknown';
  }
}

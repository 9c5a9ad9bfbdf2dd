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

const USAGE = `$0 [--tracker HOST:PORT ...] [--exec "cmd; cmd"] [--json] [--keep-going]
$0 <own_ip>:<own_port> <tracker_info file>     (classic form)

Talks to the trackers of the cluster. Connects to the first tracker that
accepts a connection; when it is lost (or stops answering), carries on at the
next one with the same session, retrying the command that was waiting. With
--exec, runs the commands and exits; with commands on stdin (not a terminal),
runs them line by line and exits; otherwise shows a prompt. Type "help" at
the prompt for the commands.

In the classic form the first argument is the address this client serves
file pieces on (as --listen), and the file lists the trackers, one HOST:PORT
a line.`;

const EPILOG = `Exit status: 0 all commands answered OK, 1 a command was answered ERR
(the script stops there unless --keep-going), 2 bad options, 3 no tracker
could be reached, 143/130/129 a script stopped by SIGTERM/SIGINT/SIGHUP
(the client withdraws its shares first; at the prompt these leave like quit).
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
    .option('json', {
      type: 'boolean',
      describe: 'print one JSON object per answer ({"ok","code","message","rows"}) and per event',
    })
    .option('keep-going', {
      type: 'boolean',
      describe: 'in scripts, run the remaining commands after an ERR answer (the exit status is still 1)',
    })
    .option('failover-timeout-ms', {
      type: 'string',
      requiresArg: true,
      describe: 'after losing a tracker, how long to keep trying the trackers in turn, in milliseconds (0 = one round, each tracker once)',
      defaultDescription: '15000',
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
      describe: "HOST:PORT where this client serves file pieces to other peers (the classic form's first argument; port 0: any free port)",
      defaultDescription: '127.0.0.1:0',
    })
    .option('data-dir', { type: 'string', requiresArg: true, describe: 'where the client remembers your shares', defaultDescription: '~/.tracker-client' })
    .option('serve', { type: 'boolean', describe: 'after the script, keep serving shared files until SIGTERM or SIGINT' })
    .option('upload-rate', { type: 'string', requiresArg: true, describe: 'upload limit in bytes per second (0 = none)', defaultDescription: '0' })
    .option('max-downloads', { type: 'string', requiresArg: true, describe: 'downloads run at once; more wait their turn', defaultDescription: '2' })
    .option('keepalive-ms', {
      type: 'string',
      requiresArg: true,
      describe: "with --serve, how often to present the session (whoami) so that it and the shares do not expire; under the trackers' --session-ttl (0 = never)",
      defaultDescription: '60000',
    })
    // end peer
    .strict()
    .help()
    .alias('help', 'h')
    .version(readVersion())
    .epilog(EPILOG)
    .exitProcess(false)
    .wrap(null);
  parser.command('$0 [own_address] [tracker_info]', false, (y) =>
    y
      .positional('own_address', { type: 'string', describe: 'classic form: <own_ip>:<own_port>, where this client serves pieces' })
      .positional('tracker_info', { type: 'string', describe: 'classic form: a file listing the trackers, one HOST:PORT a line' }),
  );
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
      const infoPath = args['tracker_info'] as string | undefined;
      const options = resolveOptions(
        {
          tracker: args.tracker,
          exec: args.exec as string | string[] | undefined,
          timeoutMs: args.timeoutMs,
          connectTimeoutMs: args.connectTimeoutMs,
          failoverTimeoutMs: args['failoverTimeoutMs'] as string | undefined,
          json: args['json'] as boolean | undefined,
          keepGoing: args['keepGoing'] as boolean | undefined,
          listen: args['listen'] as string | undefined,
          ownAddress: args['own_address'] as string | undefined,
          trackerInfo: infoPath === undefined ? undefined : { path: infoPath, text: readTrackerInfo(infoPath) },
          // peer
          dataDir: args.dataDir as string | undefined,
          serve: args.serve as boolean | undefined,
          uploadRate: args.uploadRate as string | undefined,
          maxDownloads: args.maxDownloads as string | undefined,
          keepaliveMs: args['keepaliveMs'] as string | undefined,
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

function readTrackerInfo(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    throw new UsageError(`cannot read the tracker_info file "${path}": ${code}`);
  }
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

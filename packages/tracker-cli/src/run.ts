import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { availableParallelism } from 'node:os';
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import { formatHostPort } from '@tracker-cluster/protocol';
import { SchemaError, StoreOpenError, Tracker, hashSlotsFor, threadPoolSize } from '@tracker-cluster/tracker-core';
import type { Role } from '@tracker-cluster/tracker-core';
import { describeOptions, parseTrackerArgs, programName, UsageError, usesDevelopmentSecret } from './args.js';
import type { CliConfig } from './args.js';
import { createLogger, logColor } from './logger.js';
import { createTrackerMetrics, startAdminServer } from './admin.js';
import type { AdminServer } from './admin.js';

/** Exit codes of a tracker process. */
export const EXIT_OK = 0;
/** Runtime failure: database, listening socket, uncaught error, forced stop. */
export const EXIT_FAILURE = 1;
/** Bad command line or option value. */
export const EXIT_USAGE = 2;

/**
 * Runs a tracker process to the end and exits it: parses `argv` (and the
 * `TRACKER_*` environment), opens the database, listens, prints one ready
 * line on stdout, and on SIGTERM/SIGINT stops accepting, closes the tracker
 * and exits 0. Never resolves: the process exits with
 * 0 (clean stop, --help, --version), 1 (runtime failure) or 2 (usage error).
 */
export async function runTracker(role: Role, argv: string[]): Promise<void> {
  let code: number;
  try {
    code = await serve(role, argv);
  } catch (err) {
    process.stderr.write(`${programName(role)}: internal error: ${(err as Error)?.stack ?? String(err)}\n`);
    code = EXIT_FAILURE;
  }
  process.exit(code);
}

function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}

function formatAddress(host: string, port: number): string {
  return formatHostPort({ host, port });
}

const LISTEN_ERRORS: Record<string, string> = {
  EADDRINUSE: 'address already in use',
  EACCES: 'permission denied',
  EADDRNOTAVAIL: 'address not available on this host',
  ENOTFOUND: 'host name not found',
  EAI_AGAIN: 'host name lookup failed',
};

async function serve(role: Role, argv: string[]): Promise<number> {
  const program = programName(role);
  const fail = (message: string): void => {
    process.stderr.write(`${program}: ${message}\n`);
  };

  let config: CliConfig;
  const version = packageVersion();
  try {
    const parsed = parseTrackerArgs(role, argv, process.env, version);
    if (parsed.kind === 'exit') {
      process.stdout.write(parsed.output.endsWith('\n') ? parsed.output : `${parsed.output}\n`);
      return EXIT_OK;
    }
    config = parsed.config;
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    fail(`${err.message}\nTry '${program} --help' for more information.`);
    return EXIT_USAGE;
  }

  const logger = createLogger({
    level: config.logLevel,
    format: config.logFormat,
    name: program,
    isTTY: process.stderr.isTTY === true,
    color: logColor(process.stderr.isTTY === true, process.env),
  });
  installCrashHandlers(program, logger);

  if (config.secretSource === 'default' || usesDevelopmentSecret(config)) {
    logger.warn(
      'INSECURE: no cluster secret configured (--secret or TRACKER_SECRET); using the built-in development secret. ' +
        'Anyone who knows it can act as a tracker. Never run like this outside development.',
    );
  }
  if (config.options.role === 'primary' && config.options.peer === undefined) {
    // Without the probe, a promotion this primary did not hear about (it was down) cannot fence it on restart.
    logger.warn(
      'no --replica: this primary does not ask its replica for its role, so after a promotion it missed it would ' +
        'take writes beside the new primary. Give the replica\'s address (--replica HOST:PORT) outside development.',
    );
  }
  if (config.options.role === 'replica' && config.options.peer === undefined) {
    // A replica forwards writes to its primary; with none to forward to, a client's every write fails.
    logger.warn(
      'no --primary: this replica serves reads only, and every write is answered PRIMARY_UNAVAILABLE. ' +
        'Give the primary\'s address (--primary HOST:PORT), or promote this tracker (tracker-admin promote) to take writes.',
    );
  }
  if (config.unknownEnv.length > 0) {
    logger.warn({ variables: config.unknownEnv }, 'ignoring environment variables that name no option');
  }
  logger.info({ options: describeOptions(config) }, 'starting');

  // Signals: the first asks for a graceful stop, a second forces exit 1.
  let signalled: NodeJS.Signals | undefined;
  let onStop: ((signal: NodeJS.Signals) => void) | undefined;
  const stopRequested = new Promise<NodeJS.Signals>((resolve) => {
    onStop = resolve;
  });
  const onSignal = (signal: NodeJS.Signals): void => {
    if (signalled) {
      logger.warn({ signal }, 'second signal: exiting now without finishing the shutdown');
      process.exit(EXIT_FAILURE);
    }
    signalled = signal;
    logger.info({ signal }, 'stopping: no new connections, answering what is pending');
    onStop?.(signal);
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);

  const metrics = config.admin ? createTrackerMetrics(role, version) : undefined;
  let tracker: Tracker;
  try {
    tracker = Tracker.open(config.options, logger, {
      ...(metrics ? { observer: metrics.observer } : {}),
      hashSlots: hashSlotsFor(threadPoolSize(process.env), availableParallelism()),
      // Fail-stop: a tracker that can no longer store changes must not linger;
      // its clients go to the other tracker. Everything answered is in the log.
      onFatal: (err) => {
        fail(`cannot store changes any more: ${(err as Error)?.message ?? String(err)}; stopping`);
        process.exit(EXIT_FAILURE);
      },
    });
  } catch (err) {
    const message = (err as Error)?.message ?? String(err);
    if (isDatabaseError(err)) {
      const text = /^cannot open database/i.test(message)
        ? message
        : `cannot open database ${config.options.dbPath}: ${message}`;
      logger.fatal({ err, db: config.options.dbPath }, 'cannot open database');
      fail(text);
    } else {
      logger.fatal({ err }, 'cannot start the tracker');
      fail(`cannot start: ${message}`);
    }
    return EXIT_FAILURE;
  }
  // Fencing before the first client: a primary whose peer is primary of a higher epoch must not take a write.
  await tracker.checkPeer();

  let stopping = false;
  let listening = false;
  let admin: AdminServer | undefined;
  if (config.admin && metrics) {
    metrics.attach(tracker);
    const adminWhere = formatAddress(config.admin.host, config.admin.port);
    try {
      admin = await startAdminServer({
        host: config.admin.host,
        port: config.admin.port,
        metrics,
        logger: logger.child({ component: 'admin' }),
        readiness: () => {
          if (stopping) return { ready: false, reason: 'stopping' };
          if (!listening) return { ready: false, reason: 'starting' };
          return tracker.readiness();
        },
      });
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      const reason = (e.code && LISTEN_ERRORS[e.code]) ?? e.message;
      logger.fatal({ err, admin: adminWhere }, 'cannot listen (admin)');
      fail(`cannot listen on ${adminWhere} (--admin-port): ${reason}`);
      await closeTracker(tracker, logger);
      return EXIT_FAILURE;
    }
    logger.info({ address: formatAddress(admin.address.host, admin.address.port) }, 'admin listener: /metrics /healthz /readyz');
  }

  // allowHalfOpen: a client may send its requests and shut down its side; it still gets every answer.
  const server = net.createServer({ noDelay: true, allowHalfOpen: true }, (socket) => {
    if (stopping) {
      socket.destroy();
      return;
    }
    tracker.handleConnection(socket, formatAddress(socket.remoteAddress ?? '?', socket.remotePort ?? 0));
  });

  const where = formatAddress(config.listen.host, config.listen.port);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: config.listen.host, port: config.listen.port }, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const reason = (e.code && LISTEN_ERRORS[e.code]) ?? e.message;
    logger.fatal({ err, listen: where }, 'cannot listen');
    fail(`cannot listen on ${where}: ${reason}`);
    await admin?.close();
    await closeTracker(tracker, logger);
    return EXIT_FAILURE;
  }
  server.on('error', (err) => {
    // After listening, errors are per accept (e.g. EMFILE): log and carry on.
    logger.error({ err }, 'listening socket error');
  });

  const address = server.address() as AddressInfo;
  const actual = formatAddress(address.address, address.port);
  logger.info({ address: actual }, 'listening');
  listening = true;
  // The admin address goes inside the parentheses, so that readers of `ready on HOST:PORT (…)` need no change.
  const adminPart = admin ? ` admin=${formatAddress(admin.address.host, admin.address.port)}` : '';
  if (!signalled) process.stdout.write(`${program} ready on ${actual} (${tracker.describe()}${adminPart})\n`);

  await stopRequested;
  stopping = true;
  server.close();
  const ok = await closeTracker(tracker, logger);
  await admin?.close();
  logger.info('stopped');
  return ok ? EXIT_OK : EXIT_FAILURE;
}

/** Errors of `Tracker.open` that are about the database file rather than a bug. */
function isDatabaseError(err: unknown): boolean {
  if (err instanceof StoreOpenError || err instanceof SchemaError) return true;
  const code = (err as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' && code.startsWith('SQLITE_');
}

async function closeTracker(tracker: Tracker, logger: Logger): Promise<boolean> {
  try {
    await tracker.close();
    return true;
  } catch (err) {
    logger.error({ err }, 'error while closing the tracker');
    return false;
  }
}

function installCrashHandlers(program: string, logger: Logger): void {
  const crash = (kind: string) => (err: unknown) => {
    try {
      logger.fatal({ err }, kind);
    } finally {
      process.stderr.write(`${program}: ${kind}: ${(err as Error)?.message ?? String(err)}\n`);
      process.exit(EXIT_FAILURE);
    }
  };
  process.on('uncaughtException', crash('uncaught exception'));
  process.on('unhandledRejection', crash('unhandled rejection'));
}

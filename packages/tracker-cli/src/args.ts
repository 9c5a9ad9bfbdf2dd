import { readFileSync } from 'node:fs';
import path from 'node:path';
import yargs from 'yargs';
import {
  DEFAULT_PRIMARY_PORT,
  DEFAULT_REPLICA_PORT,
  DEVELOPMENT_SECRET,
  OptionsError,
  parseDuration,
  parseHostPort,
  parseOptions,
} from '@tracker-cluster/tracker-core';
import type { HostPort, OptionsInput, Role, TrackerOptions } from '@tracker-cluster/tracker-core';
import { formatHostPort, isLoopbackHost, isUnspecifiedHost } from '@tracker-cluster/protocol';

/**
 * Command-line parsing shared by `tracker-primary` and `tracker-replica`.
 *
 * Takes the arguments and the environment, returns either what to run or
 * the text to print (`--help`, `--version`), or throws `UsageError`. The only
 * I/O is reading the `--config` file, through a function that can be passed in;
 * nothing here opens databases, sockets or loggers.
 */

export type LogFormat = 'auto' | 'json' | 'pretty';
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export const LOG_FORMATS: readonly LogFormat[] = ['auto', 'json', 'pretty'];

/** Everything a tracker process needs to start. */
export interface CliConfig {
  role: Role;
  /** `tracker-primary` or `tracker-replica`: the prefix of every message. */
  program: string;
  /** Where to listen for clients (port 0 = ephemeral). */
  listen: HostPort;
  options: TrackerOptions;
  /** The HTTP admin listener (`/metrics`, `/healthz`, `/readyz`); undefined unless `--admin-port` is set. */
  admin: HostPort | undefined;
  /** The `--config` file that was read, if any. */
  configFile: string | undefined;
  logLevel: LogLevel;
  logFormat: LogFormat;
  /** `default` means no secret was configured and DEVELOPMENT_SECRET is in use. */
  secretSource: 'option' | 'env' | 'config' | 'default';
  /** `TRACKER_*` variables that name no option: ignored, reported as a warning. */
  unknownEnv: string[];
}

export type ParsedArgs =
  | { kind: 'run'; config: CliConfig }
  /** `--help` or `--version`: print `output` to stdout and exit 0. */
  | { kind: 'exit'; output: string };

/** A bad command line: print `<program>: <message>`, a hint to --help, exit 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export const ENV_PREFIX = 'TRACKER_';

/** `sync-timeout-ms` → `TRACKER_SYNC_TIMEOUT_MS`. */
export function envName(option: string): string {
  return ENV_PREFIX + option.toUpperCase().replace(/-/g, '_');
}

export function programName(role: Role): string {
  return `tracker-${role}`;
}

interface OptionSpec {
  /** One line for `--help`. */
  describe: string;
  group: string;
  default?: string;
  /** The meaning in the operator's options table (docs/operations.md), when longer than `describe`. */
  doc?: string;
}

const NETWORK = 'Network:';
const REPLICATION = 'Replication:';
const STORAGE = 'Storage and security:';
const LIMITS = 'Limits (durations: 500ms, 30s, 10m, 24h, 7d; a bare number is milliseconds):';
const LOGGING = 'Logging:';
const ADMIN = 'Admin and configuration:';

/** The admin listener's address when only `--admin-port` is given: loopback, so metrics are not public by accident. */
export const DEFAULT_ADMIN_HOST = '127.0.0.1';

function optionSpecs(role: Role): Record<string, OptionSpec> {
  const peerOption = role === 'primary' ? 'replica' : 'primary';
  return {
    host: { group: NETWORK, describe: 'address to listen on for clients', default: '127.0.0.1', doc: 'address to listen on for clients (`0.0.0.0` for all)' },
    port: {
      group: NETWORK,
      describe: 'port to listen on for clients (0 = any free port)',
      default: String(role === 'primary' ? DEFAULT_PRIMARY_PORT : DEFAULT_REPLICA_PORT),
      doc: 'port for clients (and for the replica\'s `SYNC:` link, on the primary); `0` picks a free port',
    },
    [peerOption]: {
      group: REPLICATION,
      describe: role === 'primary' ? 'the replica tracker, HOST:PORT' : 'the primary tracker, HOST:PORT',
      doc:
        role === 'primary'
          ? "the replica's `HOST:PORT`: the replica dials the primary, and the primary asks this address for its role and epoch (fencing: a primary of a higher epoch there makes this one step down)"
          : "the primary's `HOST:PORT`, which the replica follows over the `SYNC:` link (without it the replica serves reads only and answers writes `PRIMARY_UNAVAILABLE`)",
    },
    'sync-mode': {
      group: REPLICATION,
      describe: 'semi-sync (answer writes after the replica acked or a timeout) or async',
      default: 'semi-sync',
      doc: '`semi-sync`: answer a write once the replica acknowledged it (or after the timeout, then degraded); `async`: after the local commit',
    },
    'sync-timeout-ms': { group: REPLICATION, describe: 'semi-sync: longest wait for the replica (ms)', default: '1000', doc: 'semi-sync: longest wait for the replica\'s acknowledgement before going degraded' },
    'log-retention': {
      group: REPLICATION,
      describe: 'changes the log keeps behind its head; a replica further behind gets a snapshot',
      default: '100000',
      doc: 'changes the change log keeps behind its head (and always what the state file and a connected replica still need); a replica further behind is sent a snapshot',
    },
    'log-retention-bytes': {
      group: REPLICATION,
      describe: 'bytes the log\'s rows may take; past it the oldest go, even within --log-retention',
      default: '1073741824',
      doc: 'bytes the change log\'s rows may take (at least 1048576): past it the oldest are dropped even within `--log-retention` (a change can be as large as a frame), never what the state file or a connected replica still needs',
    },
    db: { group: STORAGE, describe: 'SQLite database file', default: `tracker-${role}.db`, doc: 'SQLite state file (created if missing); the change log is `<db>-log` beside it' },
    'db-synchronous': {
      group: STORAGE,
      describe: 'SQLite synchronous pragma: FULL, NORMAL or EXTRA',
      default: 'FULL',
      doc: 'durability of the change log: `FULL` (an answered write survives power loss: the tracker fsyncs the log after each batch, off the event loop, before answering), `EXTRA` (the same), `NORMAL` (SQLite syncs the log only at checkpoints); the state file always uses `FULL` (its commits are few, ~10 a second at most, off the event loop; retention drops the log rows it holds, so it must keep them through a power loss)',
    },
    secret: {
      group: STORAGE,
      describe: 'cluster secret shared by both trackers (prefer TRACKER_SECRET)',
      default: 'an insecure development secret',
      doc: 'cluster secret of the `SYNC:` link, the same on both trackers; prefer `TRACKER_SECRET`; never logged',
    },
    'scrypt-cost': { group: STORAGE, describe: 'scrypt N for new password hashes (a power of two)', default: '16384' },
    'max-frame': { group: LIMITS, describe: 'largest frame payload accepted (bytes, at least 256)', default: '1048576' },
    'frame-timeout': { group: LIMITS, describe: 'a started frame must complete within this', default: '30s' },
    'idle-timeout': {
      group: LIMITS,
      describe: 'close connections idle this long',
      default: '10m',
      doc: 'close connections idle this long, and those whose peer leaves its answers unread this long',
    },
    'max-connections': { group: LIMITS, describe: 'more connections get ERR BUSY', default: '1024' },
    'max-pipeline': { group: LIMITS, describe: 'unanswered requests per connection before reading pauses', default: '1024' },
    'rate-limit': { group: LIMITS, describe: 'requests per second per connection (0 = unlimited)', default: '5000' },
    'max-login-failures': { group: LIMITS, describe: 'failed logins per user and per connection within --login-window', default: '5' },
    'login-window': { group: LIMITS, describe: 'window of --max-login-failures', default: '1m' },
    'session-ttl': { group: LIMITS, describe: 'sessions idle this long expire', default: '24h' },
    'session-purge-interval': { group: LIMITS, describe: 'how often expired sessions are purged', default: '1m' },
    'max-shares-per-user': { group: LIMITS, describe: 'files one user may share', default: '1000', doc: "files one user may share at once (from live sessions; a file shared from several of the user's sessions counts once)" },
    'max-sessions-per-user': {
      group: LIMITS,
      describe: "live sessions one user may hold; a login past it ends the user's least recently active one (at least 1)",
      default: '100',
      doc: "live sessions one user may hold, at least 1; a login past it still succeeds and ends the user's least recently active session, as `logout` would (its shares end with it)",
    },
    'max-groups-per-user': {
      group: LIMITS,
      describe: 'groups one user may own (0 = nobody may create one)',
      default: '1000',
      doc: 'groups one user may own; `create_group` past it is `QUOTA_EXCEEDED` (groups inherited when an owner leaves count, but are never refused); `0`: nobody may create a group',
    },
    'max-requests-per-user': {
      group: LIMITS,
      describe: 'pending join requests one user may have (0 = nobody may ask)',
      default: '100',
      doc: 'pending join requests one user may have, across groups; `join_group` past it is `QUOTA_EXCEEDED` until an owner accepts or rejects one; `0`: nobody may ask to join',
    },
    'log-level': { group: LOGGING, describe: LOG_LEVELS.join(', '), default: 'info', doc: '`fatal`, `error`, `warn`, `info`, `debug`, `trace`, `silent`' },
    'log-format': { group: LOGGING, describe: 'auto (pretty on a terminal, else JSON), json or pretty', default: 'auto', doc: '`auto` (pretty on a terminal, else JSON lines), `json`, `pretty`' },
    'admin-port': {
      group: ADMIN,
      describe: 'HTTP admin port for /metrics, /healthz, /readyz (0 = any free port; off unless set)',
      doc: 'HTTP admin listener: `/metrics` (Prometheus), `/healthz`, `/readyz`; off unless set; `0` picks a free port (the ready line shows it as `admin=HOST:PORT`)',
    },
    'admin-host': {
      group: ADMIN,
      describe: 'address of the admin listener',
      default: DEFAULT_ADMIN_HOST,
      doc: 'address of the admin listener; loopback by default, `0.0.0.0` in a container so Prometheus can reach it',
    },
    config: {
      group: ADMIN,
      describe: 'JSON file of options ({"port": 7001, ...}); flags and TRACKER_* variables win over it',
      doc: 'JSON file whose keys are option names (`{"port": 7001, "db": "/data/primary.db"}`); a flag, then a `TRACKER_*` variable, wins over it; an unknown key is an error',
    },
  };
}

/** One row of the operator's options table: every option of either tracker. */
export interface OptionRow {
  flag: string;
  env: string;
  default: string;
  /** `both`, `primary` or `replica`. */
  roles: 'both' | Role;
  meaning: string;
}

/** Every option of both trackers, in `--help` order, for the table in docs/operations.md. */
export function optionRows(): OptionRow[] {
  const primary = optionSpecs('primary');
  const replica = optionSpecs('replica');
  const names = [...new Set([...Object.keys(primary), ...Object.keys(replica)])];
  // Role-specific options sit where the other role has its own (the peer address).
  names.sort((a, b) => order(a) - order(b));
  function order(name: string): number {
    const i = Object.keys(primary).indexOf(name);
    return i >= 0 ? i : Object.keys(replica).indexOf(name) + 0.5;
  }
  return names.map((name) => {
    const p = primary[name];
    const r = replica[name];
    const spec = (p ?? r) as OptionSpec;
    let def = '—';
    if (p?.default !== undefined && r?.default !== undefined && p.default !== r.default) {
      def = `\`${p.default}\` (replica \`${r.default}\`)`;
    } else if (spec.default !== undefined) {
      def = spec.default.includes(' ') ? spec.default : `\`${spec.default}\``;
    }
    return {
      flag: `--${name}`,
      env: envName(name),
      default: def,
      roles: p && r ? 'both' : p ? 'primary' : 'replica',
      meaning: spec.doc ?? spec.describe,
    };
  });
}

/** The options table as Markdown (what `npm run docs:options` writes into docs/operations.md). */
export function optionsMarkdown(): string {
  const lines = ['| flag | environment variable | default | tracker | meaning |', '|---|---|---|---|---|'];
  for (const row of optionRows()) {
    lines.push(`| \`${row.flag}\` | \`${row.env}\` | ${row.default} | ${row.roles} | ${row.meaning.replace(/\|/g, '\\|')} |`);
  }
  return lines.join('\n') + '\n';
}

/** The names of every option the role accepts (without the leading dashes). */
export function optionNames(role: Role): string[] {
  return Object.keys(optionSpecs(role));
}

/**
 * Parses a tracker command line. Precedence: command-line flag, then the
 * `TRACKER_<OPTION>` environment variable, then the default. The classic
 * positional form (PROTOCOL §6) sets the listen and peer addresses and may not
 * be combined with the flags it replaces.
 */
export function parseTrackerArgs(
  role: Role,
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>> = {},
  version = '0.0.0',
  readConfig: (file: string) => string = (file) => readFileSync(file, 'utf8'),
): ParsedArgs {
  const program = programName(role);
  const specs = optionSpecs(role);
  const peerOption = role === 'primary' ? 'replica' : 'primary';
  const classic =
    role === 'primary'
      ? '<bind_ip> <bind_port> <peer_ip> <peer_port>'
      : '<peer_ip> <peer_port> <bind_ip> <bind_port>';

  let parser = yargs()
    .scriptName(program)
    .usage(`Usage:\n  $0 [options]\n  $0 ${classic}    (the classic form)`)
    .parserConfiguration({
      'parse-numbers': false,
      'parse-positional-numbers': false,
      'duplicate-arguments-array': false,
      'strip-aliased': true,
    })
    .strictOptions()
    .version(version)
    .help()
    .epilogue(
      `Every option can also be set by an environment variable TRACKER_<OPTION>, ` +
        `e.g. TRACKER_SECRET or TRACKER_SYNC_TIMEOUT_MS, or in the --config file; ` +
        `a command-line flag wins over the variable, and the variable over the file.`,
    )
    .wrap(null);
  for (const [name, spec] of Object.entries(specs)) {
    parser = parser.option(name, {
      type: 'string',
      describe: spec.describe,
      group: spec.group,
      ...(spec.default !== undefined ? { defaultDescription: spec.default } : {}),
    });
  }

  let failure: Error | undefined;
  let output = '';
  const parsed = parser.parse([...argv], {}, (err, _argv, out) => {
    failure = err ?? undefined;
    output = out;
  }) as Record<string, unknown>;
  if (failure) throw new UsageError(failure.message);
  if (parsed['help'] === true || parsed['version'] === true) return { kind: 'exit', output };

  /** A flag's, variable's or config file's text (first found, in that order), with the name to use in messages. */
  const fromArgs = (name: string): { text: string; label: string; source: 'option' | 'env' } | undefined => {
    const value = parsed[name];
    if (value !== undefined) {
      if (typeof value !== 'string') throw new UsageError(`--${name} needs a value`);
      return { text: value, label: `--${name}`, source: 'option' };
    }
    const variable = envName(name);
    const fromEnv = env[variable];
    if (fromEnv !== undefined) return { text: fromEnv, label: variable, source: 'env' };
    return undefined;
  };
  const configSource = fromArgs('config');
  const configFile = configSource?.text.trim() || undefined;
  const fileOptions = configFile ? loadConfigFile(configFile, specs, readConfig) : {};
  const read = (name: string): { text: string; label: string; source: 'option' | 'env' | 'config' } | undefined => {
    const found = fromArgs(name);
    if (found) return found;
    const fromFile = fileOptions[name];
    if (fromFile !== undefined) return { text: fromFile, label: `${configFile}: "${name}"`, source: 'config' };
    return undefined;
  };
  const text = (name: string): string | undefined => read(name)?.text;
  const integer = (name: string): number | undefined => {
    const v = read(name);
    if (!v) return undefined;
    if (!/^\s*\d+\s*$/.test(v.text)) throw new UsageError(`${v.label} must be a whole number, got "${v.text}"`);
    return Number(v.text);
  };
  const duration = (name: string): number | undefined => {
    const v = read(name);
    if (!v) return undefined;
    try {
      return parseDuration(v.text);
    } catch (err) {
      throw new UsageError(`${v.label}: ${(err as Error).message}`);
    }
  };
  const hostPort = (name: string): HostPort | undefined => {
    const v = read(name);
    if (!v) return undefined;
    try {
      return parseHostPort(v.text.trim());
    } catch (err) {
      throw new UsageError(`${v.label}: ${(err as Error).message}`);
    }
  };
  const choice = <T extends string>(name: string, choices: readonly T[], fallback: T): T => {
    const v = read(name);
    if (!v) return fallback;
    const lower = v.text.trim().toLowerCase();
    const found = choices.find((c) => c === lower);
    if (!found) throw new UsageError(`${v.label} must be one of ${choices.join(', ')}, got "${v.text}"`);
    return found;
  };

  // Listen and peer addresses: flags/variables, or the classic positional form.
  const positionals = (parsed['_'] as unknown[]).map(String);
  let listen: HostPort;
  let peer: HostPort | undefined;
  if (positionals.length === 4) {
    const clash = ['host', 'port', peerOption].filter((name) => parsed[name] !== undefined);
    if (clash.length > 0) {
      throw new UsageError(
        `the classic form ${classic} cannot be combined with ${clash.map((n) => `--${n}`).join(', ')}`,
      );
    }
    const [a, b, c, d] = positionals as [string, string, string, string];
    const bind = role === 'primary' ? { host: a, port: b } : { host: c, port: d };
    const other = role === 'primary' ? { host: c, port: d } : { host: a, port: b };
    listen = { host: nonEmpty('bind_ip', bind.host), port: portNumber('bind_port', bind.port) };
    peer = { host: nonEmpty('peer_ip', other.host), port: portNumber('peer_port', other.port) };
  } else if (positionals.length === 0) {
    const host = read('host');
    const port = read('port');
    listen = {
      host: host ? nonEmpty(host.label, host.text.trim()) : '127.0.0.1',
      port: port ? portNumber(port.label, port.text) : role === 'primary' ? DEFAULT_PRIMARY_PORT : DEFAULT_REPLICA_PORT,
    };
    peer = hostPort(peerOption);
  } else {
    throw new UsageError(
      `expected no positional arguments or exactly 4 (${classic}), got ${positionals.length}: ${positionals.join(' ')}`,
    );
  }

  if (peer && isOwnAddress(listen, peer)) {
    throw new UsageError(`the peer address ${formatHostPort(peer)} is this tracker's own (it listens on ${formatHostPort(listen)}): give the other tracker's address`);
  }

  const secret = read('secret');
  const dbPath = text('db') ?? `tracker-${role}.db`;
  if (dbPath.length === 0) throw new UsageError('--db must name a database file');
  const syncMode = text('sync-mode');
  const dbSynchronous = text('db-synchronous');

  const input: OptionsInput = {
    role,
    dbPath: path.resolve(dbPath),
    peer,
    secret: secret?.text,
    syncMode: syncMode?.trim() as TrackerOptions['syncMode'] | undefined,
    syncTimeoutMs: duration('sync-timeout-ms'),
    maxPayload: integer('max-frame'),
    frameTimeoutMs: duration('frame-timeout'),
    idleTimeoutMs: duration('idle-timeout'),
    loginWindowMs: duration('login-window'),
    sessionTtlMs: duration('session-ttl'),
    sessionPurgeIntervalMs: duration('session-purge-interval'),
    maxConnections: integer('max-connections'),
    rateLimit: integer('rate-limit'),
    maxLoginFailures: integer('max-login-failures'),
    maxSharesPerUser: integer('max-shares-per-user'),
    maxSessionsPerUser: integer('max-sessions-per-user'),
    maxGroupsPerUser: integer('max-groups-per-user'),
    maxRequestsPerUser: integer('max-requests-per-user'),
    maxPipeline: integer('max-pipeline'),
    logRetention: integer('log-retention'),
    logRetentionBytes: integer('log-retention-bytes'),
    scryptCost: integer('scrypt-cost'),
    dbSynchronous: dbSynchronous?.trim().toUpperCase() as TrackerOptions['dbSynchronous'] | undefined,
  };
  if (secret?.text === '') throw new UsageError(`${secret.label} must not be empty`);

  let options: TrackerOptions;
  try {
    options = parseOptions(input);
  } catch (err) {
    if (err instanceof OptionsError) throw new UsageError(err.message);
    throw err;
  }

  let admin: HostPort | undefined;
  const adminPort = read('admin-port');
  if (adminPort) {
    const adminHost = read('admin-host');
    admin = {
      host: adminHost ? nonEmpty(adminHost.label, adminHost.text.trim()) : DEFAULT_ADMIN_HOST,
      port: portNumber(adminPort.label, adminPort.text),
    };
  }

  const known = new Set(Object.keys(specs).map(envName));
  const unknownEnv = Object.keys(env)
    .filter((k) => k.startsWith(ENV_PREFIX) && !known.has(k))
    .sort();

  return {
    kind: 'run',
    config: {
      role,
      program,
      listen,
      options,
      admin,
      configFile,
      logLevel: choice('log-level', LOG_LEVELS, 'info'),
      logFormat: choice('log-format', LOG_FORMATS, 'auto'),
      secretSource: secret ? secret.source : 'default',
      unknownEnv,
    },
  };
}

/**
 * Reads a `--config` file: one JSON object whose keys are option names (as
 * on the command line, without dashes) and whose values are strings, numbers
 * or booleans. An unknown key, or a file that is not such an object, is a
 * usage error, so that a typo never silently falls back to a default.
 */
function loadConfigFile(file: string, specs: Record<string, OptionSpec>, readConfig: (file: string) => string): Record<string, string> {
  let text: string;
  try {
    text = readConfig(file);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new UsageError(`cannot read config file ${file}: ${e.code === 'ENOENT' ? 'no such file' : e.message}`);
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new UsageError(`config file ${file} is not valid JSON: ${(err as Error).message}`);
  }
  if (data === null || typeof data !== 'object' || Array.isArray(data)) {
    throw new UsageError(`config file ${file} must hold one JSON object of options, e.g. {"port": 7001}`);
  }
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(data as Record<string, unknown>)) {
    if (key === 'config' || !Object.hasOwn(specs, key)) {
      const known = Object.keys(specs).filter((k) => k !== 'config');
      throw new UsageError(`config file ${file}: unknown option "${key}" (known: ${known.join(', ')})`);
    }
    if (typeof value === 'string') out[key] = value;
    else if ((typeof value === 'number' && Number.isFinite(value)) || typeof value === 'boolean') out[key] = String(value);
    else throw new UsageError(`config file ${file}: "${key}" must be a string or a number`);
  }
  return out;
}

function nonEmpty(label: string, value: string): string {
  if (value.length === 0) throw new UsageError(`${label} must not be empty`);
  return value;
}

function portNumber(label: string, text: string): number {
  const port = /^\s*\d+\s*$/.test(text) ? Number(text) : NaN;
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new UsageError(`${label} must be a port number from 0 to 65535, got "${text}"`);
  }
  return port;
}

/** The effective options without the secret, for the startup log line. */
export function describeOptions(config: CliConfig): Record<string, unknown> {
  const { secret: _secret, ...rest } = config.options;
  return {
    ...rest,
    secretFrom: config.secretSource === 'default' ? 'development default' : config.secretSource,
    listen: `${config.listen.host}:${config.listen.port}`,
    admin: config.admin ? `${config.admin.host}:${config.admin.port}` : 'off',
    ...(config.configFile ? { configFile: config.configFile } : {}),
  };
}

/** True when the configured secret is the insecure built-in one. */
export function usesDevelopmentSecret(config: CliConfig): boolean {
  return config.options.secret === DEVELOPMENT_SECRET;
}

/**
 * A peer address that names this tracker itself: the same port, and the same
 * host or two names of this machine's loopback (an unspecified listen host
 * answers on loopback too). Another machine may well use the same port.
 */
function isOwnAddress(listen: HostPort, peer: HostPort): boolean {
  if (listen.port === 0 || listen.port !== peer.port) return false;
  if (listen.host.toLowerCase() === peer.host.toLowerCase()) return true;
  return (isLoopbackHost(listen.host) || isUnspecifiedHost(listen.host)) && isLoopbackHost(peer.host);
}

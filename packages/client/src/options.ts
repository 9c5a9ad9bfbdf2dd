import { AddressError, excerpt, parseHostPort } from '@tracker-cluster/protocol';
import { DEFAULT_TRACKERS, formatAddress, parseAddress } from './address.js';
import type { TrackerAddress } from './address.js';
import { DEFAULT_CONNECT_TIMEOUT_MS, DEFAULT_REQUEST_TIMEOUT_MS } from './connection.js';
import { UsageError } from './errors.js';
// peer: file-sharing options (--listen, --data-dir, --serve, ...), resolved in ./peer/options.ts
import { resolvePeerOptions } from './peer/options.js';
import type { PeerOptions, RawPeerOptions } from './peer/options.js';

/** The client's validated settings. */
export interface ClientOptions {
  /** Trackers to try, in order. */
  trackers: TrackerAddress[];
  /** `--exec` text: run these commands and exit. Undefined when not given. */
  exec: string | undefined;
  /** Milliseconds to wait for each answer; 0 waits for ever. */
  requestTimeoutMs: number;
  /** Milliseconds to wait for each TCP connection attempt; 0 waits for ever. */
  connectTimeoutMs: number;
  /** peer: the file-sharing side (piece server address, data dir, --serve). */
  peer: PeerOptions;
  /**
   * After a lost connection, how long to keep trying the trackers (every
   * address in turn, with backoff) before giving up; 0 tries each once.
   */
  failoverTimeoutMs: number;
  /** `--json`: one JSON object per answer and per event. */
  json: boolean;
  /** `--keep-going`: in scripts, run on after an `ERR` (the exit status still says a command failed). */
  keepGoing: boolean;
  /**
   * Where this client serves file pieces to other peers (`--listen`, or the
   * first argument of the classic form `tracker-client <own_ip>:<own_port>
   * tracker_info.txt`). Undefined when not given. Used by file sharing.
   */
  peerAddress: TrackerAddress | undefined;
}

/** Option values as the command-line parser read them, before validation. */
export interface RawOptions extends RawPeerOptions {
  tracker?: readonly string[] | string | undefined;
  exec?: readonly string[] | string | undefined;
  timeoutMs?: string | number | undefined;
  connectTimeoutMs?: string | number | undefined;
  failoverTimeoutMs?: string | number | undefined;
  json?: boolean | undefined;
  keepGoing?: boolean | undefined;
  listen?: string | undefined;
  /** The classic form's first positional argument, `<own_ip>:<own_port>`. */
  ownAddress?: string | undefined;
  /** The classic form's tracker_info file: its name and its text. */
  trackerInfo?: { path: string; text: string } | undefined;
}

export type Env = Readonly<Record<string, string | undefined>>;

/** Environment variables read for each option (PROTOCOL.md §6); the command line wins. */
export const ENV_VARS = {
  tracker: 'TRACKER_TRACKER',
  exec: 'TRACKER_EXEC',
  timeoutMs: 'TRACKER_TIMEOUT_MS',
  connectTimeoutMs: 'TRACKER_CONNECT_TIMEOUT_MS',
  failoverTimeoutMs: 'TRACKER_FAILOVER_TIMEOUT_MS',
  json: 'TRACKER_JSON',
  keepGoing: 'TRACKER_KEEP_GOING',
  listen: 'TRACKER_LISTEN',
} as const;

/** Default for `--failover-timeout-ms`: keep trying the trackers for 15 s after losing one. */
export const DEFAULT_FAILOVER_TIMEOUT_MS = 15_000;

/** setTimeout's largest delay. */
const MAX_TIMEOUT_MS = 2 ** 31 - 1;

/**
 * Validates raw option values, falling back to the environment and then to
 * the defaults. Throws a `UsageError` naming the bad option.
 */
export function resolveOptions(raw: RawOptions, env: Env = {}): ClientOptions {
  const trackerValues = toList(raw.tracker) ?? splitEnvList(env[ENV_VARS.tracker]);
  if (raw.trackerInfo !== undefined && toList(raw.tracker) !== undefined) {
    throw new UsageError('give the trackers either with --tracker or in a tracker_info file, not both');
  }
  if ((raw.ownAddress === undefined) !== (raw.trackerInfo === undefined)) {
    throw new UsageError('the classic form takes two arguments: <own_ip>:<own_port> <tracker_info file>');
  }
  if (raw.ownAddress !== undefined && raw.listen !== undefined) {
    throw new UsageError('give the own address either as the first argument or with --listen, not both');
  }
  const trackers =
    raw.trackerInfo !== undefined
      ? parseTrackerInfo(raw.trackerInfo.text, raw.trackerInfo.path)
      : trackerValues === undefined
        ? DEFAULT_TRACKERS.map((a) => ({ ...a }))
        : trackerValues.flatMap((value) => value.split(',')).map((value) => parseTrackerOption(value));
  if (trackers.length === 0) throw new UsageError('--tracker needs a value HOST:PORT');
  const listen = raw.ownAddress ?? raw.listen ?? env[ENV_VARS.listen];
  const peerAddress = listen === undefined ? undefined : parseListen(listen, raw.ownAddress !== undefined);
  const execValues = toList(raw.exec) ?? (env[ENV_VARS.exec] !== undefined ? [env[ENV_VARS.exec] as string] : undefined);
  return {
    trackers,
    exec: execValues?.join(';'),
    requestTimeoutMs: parseMs('--timeout-ms', raw.timeoutMs ?? env[ENV_VARS.timeoutMs], DEFAULT_REQUEST_TIMEOUT_MS),
    connectTimeoutMs: parseMs(
      '--connect-timeout-ms',
      raw.connectTimeoutMs ?? env[ENV_VARS.connectTimeoutMs],
      DEFAULT_CONNECT_TIMEOUT_MS,
    ),
    failoverTimeoutMs: parseMs(
      '--failover-timeout-ms',
      raw.failoverTimeoutMs ?? env[ENV_VARS.failoverTimeoutMs],
      DEFAULT_FAILOVER_TIMEOUT_MS,
      'one round, each tracker once',
    ),
    json: raw.json ?? parseFlag('TRACKER_JSON', env[ENV_VARS.json]),
    keepGoing: raw.keepGoing ?? parseFlag('TRACKER_KEEP_GOING', env[ENV_VARS.keepGoing]),
    peerAddress,
    // peer: the piece server listens where the classic form or --listen says (checked above).
    peer: resolvePeerOptions({ ...raw, listen: peerAddress === undefined ? undefined : formatAddress(peerAddress) }, env),
  };
}

/**
 * The classic form's tracker_info file: one tracker a line, as `HOST:PORT`
 * or `HOST PORT`; blank lines and `#` comments skipped.
 */
export function parseTrackerInfo(text: string, source = 'tracker_info'): TrackerAddress[] {
  const addresses: TrackerAddress[] = [];
  const lines = text.split(/\r?\n/);
  lines.forEach((raw, index) => {
    const line = raw.trim();
    if (line.length === 0 || line.startsWith('#')) return;
    const words = line.split(/\s+/);
    const text = words.length === 2 && /^[0-9]+$/.test(words[1] as string) ? `${words[0] as string}:${words[1] as string}` : line;
    try {
      addresses.push(parseAddress(text));
    } catch (error) {
      if (error instanceof UsageError) throw new UsageError(`${source} line ${index + 1}: ${error.message}`);
      throw error;
    }
  });
  if (addresses.length === 0) throw new UsageError(`${source} lists no tracker (one HOST:PORT a line)`);
  return addresses;
}

/** The piece server's address; port 0 (any free port) is allowed, as for any listening address. */
function parseListen(value: string, positional: boolean): TrackerAddress {
  try {
    return parseHostPort(value, { allowPortZero: true });
  } catch (error) {
    if (error instanceof AddressError) {
      const what = positional ? 'own address (first argument)' : '--listen value';
      throw new UsageError(`bad ${what}: invalid address "${excerpt(value)}": ${error.message}`);
    }
    throw error;
  }
}

function parseFlag(name: string, value: string | undefined): boolean {
  if (value === undefined || value === '') return false;
  if (/^(1|true|yes|on)$/i.test(value)) return true;
  if (/^(0|false|no|off)$/i.test(value)) return false;
  throw new UsageError(`bad ${name} value "${value}": expected 1/0, true/false, yes/no`);
}

function parseTrackerOption(value: string): TrackerAddress {
  try {
    return parseAddress(value);
  } catch (error) {
    if (error instanceof UsageError) throw new UsageError(`bad --tracker value: ${error.message}`);
    throw error;
  }
}

function toList(value: readonly string[] | string | undefined): string[] | undefined {
  if (value === undefined) return undefined;
  return typeof value === 'string' ? [value] : [...value];
}

/** `TRACKER_TRACKER="a:1,b:2"` or `"a:1 b:2"`. */
function splitEnvList(value: string | undefined): string[] | undefined {
  if (value === undefined || value.trim().length === 0) return undefined;
  return value.split(/[\s,]+/).filter((v) => v.length > 0);
}

function parseMs(option: string, value: string | number | undefined, fallback: number, zero = 'no limit'): number {
  if (value === undefined) return fallback;
  const text = String(value).trim();
  if (!/^[0-9]+$/.test(text) || Number(text) > MAX_TIMEOUT_MS) {
    throw new UsageError(`bad ${option} value "${String(value)}": expected a whole number of milliseconds (0 = ${zero})`);
  }
  return Number(text);
}

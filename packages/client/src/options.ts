import { DEFAULT_TRACKERS, parseAddress } from './address.js';
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
}

/** Option values as the command-line parser read them, before validation. */
export interface RawOptions extends RawPeerOptions {
  tracker?: readonly string[] | string | undefined;
  exec?: readonly string[] | string | undefined;
  timeoutMs?: string | number | undefined;
  connectTimeoutMs?: string | number | undefined;
}

export type Env = Readonly<Record<string, string | undefined>>;

/** Environment variables read for each option (PROTOCOL.md §6); the command line wins. */
export const ENV_VARS = {
  tracker: 'TRACKER_TRACKER',
  exec: 'TRACKER_EXEC',
  timeoutMs: 'TRACKER_TIMEOUT_MS',
  connectTimeoutMs: 'TRACKER_CONNECT_TIMEOUT_MS',
} as const;

/** setTimeout's largest delay. */
const MAX_TIMEOUT_MS = 2 ** 31 - 1;

/**
 * Validates raw option values, falling back to the environment and then to
 * the defaults. Throws a `UsageError` naming the bad option.
 */
export function resolveOptions(raw: RawOptions, env: Env = {}): ClientOptions {
  const trackerValues = toList(raw.tracker) ?? splitEnvList(env[ENV_VARS.tracker]);
  const trackers =
    trackerValues === undefined
      ? DEFAULT_TRACKERS.map((a) => ({ ...a }))
      : trackerValues.flatMap((value) => value.split(',')).map((value) => parseTrackerOption(value));
  if (trackers.length === 0) throw new UsageError('--tracker needs a value HOST:PORT');
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
    peer: resolvePeerOptions(raw, env), // peer
  };
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

function parseMs(option: string, value: string | number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const text = String(value).trim();
  if (!/^[0-9]+$/.test(text) || Number(text) > MAX_TIMEOUT_MS) {
    throw new UsageError(`bad ${option} value "${String(value)}": expected a whole number of milliseconds (0 = no limit)`);
  }
  return Number(text);
}

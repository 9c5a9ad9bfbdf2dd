import { ABSOLUTE_MAX_PAYLOAD, AddressError, DEFAULT_MAX_PAYLOAD, excerpt, parseHostPort as parseAddress } from '@tracker-cluster/protocol';
import type { HostPort } from '@tracker-cluster/protocol';

export type { HostPort };

/**
 * Every tunable of a tracker, with its default. The CLIs map flags and
 * `TRACKER_*` variables onto a partial of this; `parseOptions` fills in the
 * defaults and rejects what cannot work, so nothing downstream re-checks.
 */
export type Role = 'primary' | 'replica';
export type SyncMode = 'semi-sync' | 'async';
export type SqliteSynchronous = 'FULL' | 'NORMAL' | 'EXTRA';

export interface TrackerOptions {
  role: Role;
  /** SQLite database file. */
  dbPath: string;
  /** Cluster secret shared by the two trackers (HMAC key of the SYNC: link). */
  secret: string;
  /** The other tracker: the replica's address on a primary, the primary's on a replica. */
  peer: HostPort | undefined;
  syncMode: SyncMode;
  syncTimeoutMs: number;
  /** Largest frame payload accepted (bytes). */
  maxPayload: number;
  /** A frame started but not completed within this is a protocol fault (ms). */
  frameTimeoutMs: number;
  /** A connection with no traffic for this long is closed (ms). */
  idleTimeoutMs: number;
  /** Connections beyond this are answered `ERR BUSY` and closed. */
  maxConnections: number;
  /** Requests per second per connection (token bucket, burst = one second's worth); 0 disables. */
  rateLimit: number;
  /** Failed logins allowed per user and per connection within `loginWindowMs`. */
  maxLoginFailures: number;
  loginWindowMs: number;
  /** Sliding session lifetime (ms); every authenticated request extends it. */
  sessionTtlMs: number;
  /** How often expired sessions are purged by a replicated change (ms). */
  sessionPurgeIntervalMs: number;
  maxSharesPerUser: number;
  /** Live sessions one user may hold; a login past it ends the user's least recently active one. */
  maxSessionsPerUser: number;
  /** Groups one user may own; `create_group` past it is QUOTA_EXCEEDED. */
  maxGroupsPerUser: number;
  /** Pending join requests one user may have; `join_group` past it is QUOTA_EXCEEDED. */
  maxRequestsPerUser: number;
  /** SQLite `synchronous` pragma, set explicitly on every open. */
  dbSynchronous: SqliteSynchronous;
  /** scrypt cost parameter N for new password hashes (power of two). */
  scryptCost: number;
  /** Unanswered requests one connection may have before the tracker stops reading from it. */
  maxPipeline: number;
  /**
   * Changes the log keeps (at least) behind its head. A replica further
   * behind than this is sent a snapshot instead of the log.
   */
  logRetention: number;
  /**
   * Bytes the log's rows may take at most: past it the oldest are dropped
   * even within `logRetention` (changes can be up to a frame each), never
   * what the state file or a connected replica still needs.
   */
  logRetentionBytes: number;
}

export const DEFAULT_PRIMARY_PORT = 7001;
export const DEFAULT_REPLICA_PORT = 7002;
export const DEFAULT_SYNC_TIMEOUT_MS = 1000;
/** The smallest `--max-frame`: the longest message of a tracker link's handshake (~200 bytes) fits. */
export const MIN_MAX_PAYLOAD = 256;
export const DEFAULT_FRAME_TIMEOUT_MS = 30_000;
export const DEFAULT_IDLE_TIMEOUT_MS = 10 * 60_000;
export const DEFAULT_MAX_CONNECTIONS = 1024;
export const DEFAULT_RATE_LIMIT = 5000;
export const DEFAULT_MAX_LOGIN_FAILURES = 5;
export const DEFAULT_LOGIN_WINDOW_MS = 60_000;
export const DEFAULT_SESSION_TTL_MS = 24 * 3600_000;
export const DEFAULT_SESSION_PURGE_INTERVAL_MS = 60_000;
export const DEFAULT_MAX_SHARES_PER_USER = 1000;
export const DEFAULT_MAX_SESSIONS_PER_USER = 100;
export const DEFAULT_MAX_GROUPS_PER_USER = 1000;
export const DEFAULT_MAX_REQUESTS_PER_USER = 100;
export const DEFAULT_SCRYPT_COST = 16384;
export const DEFAULT_MAX_PIPELINE = 1024;
export const DEFAULT_LOG_RETENTION = 100_000;
export const DEFAULT_LOG_RETENTION_BYTES = 1024 * 1024 * 1024;
/** The smallest `--log-retention-bytes`: below it a few large changes would leave the log nothing to resume from. */
export const MIN_LOG_RETENTION_BYTES = 1024 * 1024;
/** Used only when no secret is configured; the trackers log a loud warning. */
export const DEVELOPMENT_SECRET = 'tracker-cluster-INSECURE-development-secret';

export const DEFAULTS: Omit<TrackerOptions, 'role' | 'dbPath' | 'peer'> = {
  secret: DEVELOPMENT_SECRET,
  syncMode: 'semi-sync',
  syncTimeoutMs: DEFAULT_SYNC_TIMEOUT_MS,
  maxPayload: DEFAULT_MAX_PAYLOAD,
  frameTimeoutMs: DEFAULT_FRAME_TIMEOUT_MS,
  idleTimeoutMs: DEFAULT_IDLE_TIMEOUT_MS,
  maxConnections: DEFAULT_MAX_CONNECTIONS,
  rateLimit: DEFAULT_RATE_LIMIT,
  maxLoginFailures: DEFAULT_MAX_LOGIN_FAILURES,
  loginWindowMs: DEFAULT_LOGIN_WINDOW_MS,
  sessionTtlMs: DEFAULT_SESSION_TTL_MS,
  sessionPurgeIntervalMs: DEFAULT_SESSION_PURGE_INTERVAL_MS,
  maxSharesPerUser: DEFAULT_MAX_SHARES_PER_USER,
  maxSessionsPerUser: DEFAULT_MAX_SESSIONS_PER_USER,
  maxGroupsPerUser: DEFAULT_MAX_GROUPS_PER_USER,
  maxRequestsPerUser: DEFAULT_MAX_REQUESTS_PER_USER,
  dbSynchronous: 'FULL',
  scryptCost: DEFAULT_SCRYPT_COST,
  maxPipeline: DEFAULT_MAX_PIPELINE,
  logRetention: DEFAULT_LOG_RETENTION,
  logRetentionBytes: DEFAULT_LOG_RETENTION_BYTES,
};

/** Raised for an option that cannot work; the CLIs print the message and exit 2. */
export class OptionsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'OptionsError';
  }
}

export type OptionsInput = Partial<TrackerOptions> & Pick<TrackerOptions, 'role' | 'dbPath'>;

export function parseOptions(input: OptionsInput): TrackerOptions {
  const o: TrackerOptions = { ...DEFAULTS, peer: undefined, ...stripUndefined(input), role: input.role, dbPath: input.dbPath };
  if (o.role !== 'primary' && o.role !== 'replica') throw new OptionsError(`role must be primary or replica, not ${String(o.role)}`);
  if (typeof o.dbPath !== 'string' || o.dbPath.length === 0) throw new OptionsError('--db must name a database file');
  if (typeof o.secret !== 'string' || o.secret.length === 0) throw new OptionsError('--secret must not be empty');
  if (o.syncMode !== 'semi-sync' && o.syncMode !== 'async') throw new OptionsError(`--sync-mode must be semi-sync or async, not ${String(o.syncMode)}`);
  if (!['FULL', 'NORMAL', 'EXTRA'].includes(o.dbSynchronous)) throw new OptionsError('--db-synchronous must be FULL, NORMAL or EXTRA');
  integer('--sync-timeout-ms', o.syncTimeoutMs, 1);
  // Below this not even the replica's SYNC:AUTH fits (and 0 refuses every request): a mistake, not a limit.
  integer('--max-frame', o.maxPayload, MIN_MAX_PAYLOAD, ABSOLUTE_MAX_PAYLOAD);
  integer('--frame-timeout', o.frameTimeoutMs, 1);
  integer('--idle-timeout', o.idleTimeoutMs, 1);
  integer('--max-connections', o.maxConnections, 1);
  integer('--rate-limit', o.rateLimit, 0);
  integer('--max-login-failures', o.maxLoginFailures, 1);
  integer('--login-window', o.loginWindowMs, 1);
  integer('--session-ttl', o.sessionTtlMs, 1000);
  integer('--session-purge-interval', o.sessionPurgeIntervalMs, 10);
  integer('--max-shares-per-user', o.maxSharesPerUser, 0);
  // At least 1: a login always succeeds (it ends older sessions instead), so its own session is one.
  integer('--max-sessions-per-user', o.maxSessionsPerUser, 1);
  integer('--max-groups-per-user', o.maxGroupsPerUser, 0);
  integer('--max-requests-per-user', o.maxRequestsPerUser, 0);
  integer('--max-pipeline', o.maxPipeline, 1);
  integer('--log-retention', o.logRetention, 1);
  integer('--log-retention-bytes', o.logRetentionBytes, MIN_LOG_RETENTION_BYTES);
  integer('--scrypt-cost', o.scryptCost, 2, 1 << 20);
  if ((o.scryptCost & (o.scryptCost - 1)) !== 0) throw new OptionsError('--scrypt-cost must be a power of two');
  if (o.peer) hostPort('peer', o.peer);
  return o;
}

function integer(name: string, value: number, min: number, max = Number.MAX_SAFE_INTEGER): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new OptionsError(`${name} must be an integer from ${min} to ${max}, got ${String(value)}`);
  }
}

function hostPort(name: string, hp: HostPort): void {
  if (typeof hp.host !== 'string' || hp.host.length === 0) throw new OptionsError(`${name} host must not be empty`);
  integer(`${name} port`, hp.port, 0, 65535);
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** `HOST:PORT` (IPv6 as `[::1]:7001`; port 0 allowed for listening); refusals are OptionsErrors. */
export function parseHostPort(text: string): HostPort {
  try {
    return parseAddress(text, { allowPortZero: true });
  } catch (error) {
    if (error instanceof AddressError) throw new OptionsError(`invalid address "${excerpt(text)}": ${error.message}`);
    throw error;
  }
}

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * A duration for the command line: `500ms`, `30s`, `10m`, `24h`, `7d`, or a
 * bare number in the given default unit.
 */
export function parseDuration(text: string | number, defaultUnit: 'ms' | 's' = 'ms'): number {
  if (typeof text === 'number') return Math.round(text * (UNITS[defaultUnit] as number));
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/.exec(text);
  if (!m) throw new OptionsError(`not a duration: "${text}" (use e.g. 500ms, 30s, 10m, 24h)`);
  return Math.round(Number(m[1]) * (UNITS[m[2] ?? defaultUnit] as number));
}

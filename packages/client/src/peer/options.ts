import os from 'node:os';
import path from 'node:path';
import { AddressError, parseHostPort } from '@tracker-cluster/protocol';
import type { HostPort } from '@tracker-cluster/protocol';
import { UsageError } from '../errors.js';
import { expandHome } from './local-path.js';

/** The peer side's settings (file sharing). */
export interface PeerOptions {
  /** Where the piece server listens and what is announced to the tracker. Port 0: any free port. */
  listen: HostPort;
  /** Where the share registry is kept (`shares-<user>.json`). */
  dataDir: string;
  /** Keep running after the script while sharing, until SIGTERM/SIGINT. */
  serve: boolean;
  /** Upload limit in bytes per second over all peers; 0 = none. */
  uploadRate: number;
  /** Downloads run at once. */
  maxDownloads: number;
  /**
   * With `serve`: milliseconds between two `whoami`s that keep the session
   * (and with it the shares) alive while the client serves; 0 = never.
   */
  keepaliveMs: number;
}

export interface RawPeerOptions {
  listen?: string | undefined;
  dataDir?: string | undefined;
  serve?: boolean | string | undefined;
  uploadRate?: string | number | undefined;
  maxDownloads?: string | number | undefined;
  keepaliveMs?: string | number | undefined;
}

export const PEER_ENV_VARS = {
  listen: 'TRACKER_LISTEN',
  dataDir: 'TRACKER_DATA_DIR',
  serve: 'TRACKER_SERVE',
  uploadRate: 'TRACKER_UPLOAD_RATE',
  maxDownloads: 'TRACKER_MAX_DOWNLOADS',
  keepaliveMs: 'TRACKER_KEEPALIVE_MS',
} as const;

/**
 * Default for `--keepalive-ms`: a `whoami` a minute. A session lasts at
 * least one `--session-ttl` after its last request, so this keeps it alive
 * whenever the trackers' TTL is above a minute; below that, set
 * `--keepalive-ms` comfortably under the TTL.
 */
export const DEFAULT_KEEPALIVE_MS = 60_000;

/** setTimeout's largest delay. */
const MAX_DELAY_MS = 2 ** 31 - 1;

export const DEFAULT_LISTEN: HostPort = { host: '127.0.0.1', port: 0 };

export function defaultDataDir(): string {
  return path.join(os.homedir(), '.tracker-client');
}

/** Validates the peer options, falling back to `TRACKER_*` and then the defaults. */
export function resolvePeerOptions(raw: RawPeerOptions, env: Readonly<Record<string, string | undefined>> = {}): PeerOptions {
  const listenText = raw.listen ?? env[PEER_ENV_VARS.listen];
  let listen = { ...DEFAULT_LISTEN };
  if (listenText !== undefined) {
    try {
      listen = parseHostPort(listenText, { allowPortZero: true });
    } catch (error) {
      if (error instanceof AddressError) throw new UsageError(`bad --listen value "${listenText}": ${error.message}`);
      throw error;
    }
  }
  const dataDir = raw.dataDir ?? env[PEER_ENV_VARS.dataDir] ?? defaultDataDir();
  const serveRaw = raw.serve ?? env[PEER_ENV_VARS.serve];
  const serve = serveRaw === true || (typeof serveRaw === 'string' && /^(1|true|yes)$/i.test(serveRaw));
  return {
    listen,
    dataDir: path.resolve(expandHome(dataDir)),
    serve,
    uploadRate: wholeNumber('--upload-rate', raw.uploadRate ?? env[PEER_ENV_VARS.uploadRate], 0, 0),
    maxDownloads: wholeNumber('--max-downloads', raw.maxDownloads ?? env[PEER_ENV_VARS.maxDownloads], 2, 1),
    keepaliveMs: wholeNumber('--keepalive-ms', raw.keepaliveMs ?? env[PEER_ENV_VARS.keepaliveMs], DEFAULT_KEEPALIVE_MS, 0, MAX_DELAY_MS),
  };
}

function wholeNumber(option: string, value: string | number | undefined, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (value === undefined) return fallback;
  const text = String(value).trim();
  if (!/^[0-9]+$/.test(text) || !Number.isSafeInteger(Number(text)) || Number(text) < min || Number(text) > max) {
    const range = `${min > 0 ? ` of at least ${min}` : ''}${max < Number.MAX_SAFE_INTEGER ? ` and at most ${max}` : ''}`;
    throw new UsageError(`bad ${option} value "${String(value)}": expected a whole number${range}`);
  }
  return Number(text);
}

import os from 'node:os';
import path from 'node:path';
import { AddressError, parseHostPort } from '@tracker-cluster/protocol';
import type { HostPort } from '@tracker-cluster/protocol';
import { UsageError } from '../errors.js';

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
}

export interface RawPeerOptions {
  listen?: string | undefined;
  dataDir?: string | undefined;
  serve?: boolean | string | undefined;
  uploadRate?: string | number | undefined;
  maxDownloads?: string | number | undefined;
}

export const PEER_ENV_VARS = {
  listen: 'TRACKER_LISTEN',
  dataDir: 'TRACKER_DATA_DIR',
  serve: 'TRACKER_SERVE',
  uploadRate: 'TRACKER_UPLOAD_RATE',
  maxDownloads: 'TRACKER_MAX_DOWNLOADS',
} as const;

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
    dataDir: path.resolve(dataDir),
    serve,
    uploadRate: wholeNumber('--upload-rate', raw.uploadRate ?? env[PEER_ENV_VARS.uploadRate], 0, 0),
    maxDownloads: wholeNumber('--max-downloads', raw.maxDownloads ?? env[PEER_ENV_VARS.maxDownloads], 2, 1),
  };
}

function wholeNumber(option: string, value: string | number | undefined, fallback: number, min: number): number {
  if (value === undefined) return fallback;
  const text = String(value).trim();
  if (!/^[0-9]+$/.test(text) || !Number.isSafeInteger(Number(text)) || Number(text) < min) {
    throw new UsageError(`bad ${option} value "${String(value)}": expected a whole number${min > 0 ? ` of at least ${min}` : ''}`);
  }
  return Number(text);
}

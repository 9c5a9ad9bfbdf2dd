import { AddressError, excerpt, formatHostPort, parseHostPort } from '@tracker-cluster/protocol';
import type { HostPort } from '@tracker-cluster/protocol';
import { UsageError } from './errors.js';

/** Where a tracker listens for clients. */
export type TrackerAddress = HostPort;

/** Used when no `--tracker` is given: the primary's and the replica's usual ports. */
export const DEFAULT_TRACKERS: readonly TrackerAddress[] = Object.freeze([
  { host: '127.0.0.1', port: 7001 },
  { host: '127.0.0.1', port: 7002 },
]);

/**
 * Parses `HOST:PORT`; an IPv6 host is written in brackets, `[::1]:7001`.
 * Throws a `UsageError` that names the value and what is wrong with it.
 */
export function parseAddress(text: string): TrackerAddress {
  try {
    return parseHostPort(text);
  } catch (error) {
    if (error instanceof AddressError) throw new UsageError(`invalid tracker address "${excerpt(text)}": ${error.message}`);
    throw error;
  }
}

/** The inverse of `parseAddress`: `127.0.0.1:7001`, `[::1]:7001`. */
export const formatAddress: (address: TrackerAddress) => string = formatHostPort;

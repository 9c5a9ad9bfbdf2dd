import { isIPv6 } from 'node:net';
import { UsageError } from './errors.js';

/** Where a tracker listens for clients. */
export interface TrackerAddress {
  host: string;
  port: number;
}

/** Used when no `--tracker` is given: the primary's and the replica's usual ports. */
export const DEFAULT_TRACKERS: readonly TrackerAddress[] = Object.freeze([
  { host: '127.0.0.1', port: 7001 },
  { host: '127.0.0.1', port: 7002 },
]);

const HOSTNAME = /^[A-Za-z0-9_.-]+$/;
const PORT = /^[0-9]{1,5}$/;

/**
 * Parses `HOST:PORT`; an IPv6 host is written in brackets, `[::1]:7001`.
 * Throws a `UsageError` that names the value and what is wrong with it.
 */
export function parseAddress(text: string): TrackerAddress {
  const value = text.trim();
  const bad = (why: string): never => {
    throw new UsageError(`invalid tracker address "${text}": ${why}`);
  };
  if (value.length === 0) bad('empty (expected HOST:PORT)');
  let host: string;
  let portText: string;
  if (value.startsWith('[')) {
    const close = value.indexOf(']');
    if (close < 0) bad('missing "]" after an IPv6 address (expected [ADDRESS]:PORT)');
    host = value.slice(1, close);
    if (!isIPv6(host)) bad(`"${host}" is not an IPv6 address`);
    const rest = value.slice(close + 1);
    if (!rest.startsWith(':')) bad('missing port (expected [ADDRESS]:PORT)');
    portText = rest.slice(1);
  } else {
    const colon = value.lastIndexOf(':');
    if (colon < 0) bad('missing port (expected HOST:PORT)');
    host = value.slice(0, colon);
    portText = value.slice(colon + 1);
    if (host.includes(':')) bad('an IPv6 address must be written in brackets, e.g. [::1]:7001');
    if (host.length === 0) bad('missing host (expected HOST:PORT)');
    if (!HOSTNAME.test(host)) bad(`"${host}" is not a valid host name or address`);
  }
  if (portText.length === 0) bad('missing port (expected HOST:PORT)');
  if (!PORT.test(portText)) bad(`port "${portText}" is not a number`);
  const port = Number(portText);
  if (port < 1 || port > 65535) bad(`port ${port} is out of range 1-65535`);
  return { host, port };
}

/** The inverse of `parseAddress`: `127.0.0.1:7001`, `[::1]:7001`. */
export function formatAddress(address: TrackerAddress): string {
  return address.host.includes(':') ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`;
}

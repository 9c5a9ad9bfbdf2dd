/**
 * `HOST:PORT` addresses as people write them on command lines and in files:
 * `127.0.0.1:7001`, `tracker-1.example.org:7001`, and IPv6 in brackets,
 * `[::1]:7001`. One parser for the trackers and the client, so an address
 * that one accepts the other accepts too.
 */
export interface HostPort {
  host: string;
  port: number;
}

/** Why an address was refused; callers wrap it in their own usage error. */
export class AddressError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AddressError';
  }
}

export interface ParseHostPortOptions {
  /** Accept port 0 ("any free port"), which makes sense only for listening. */
  allowPortZero?: boolean;
}

/**
 * The longest host a `HOST:PORT` may hold: a DNS name is at most 253
 * characters as text (RFC 1035's 255 octets on the wire), and an IPv6
 * literal, zone included, is far shorter. Without it, `upload_file` stored
 * whatever length of `peer` a frame could carry, and handed it to every
 * client that asked for the file.
 */
export const MAX_HOST_LENGTH = 253;
/** Longest part of a refused input that a message repeats: enough to recognise it. */
const SHOWN = 40;

const HOSTNAME = /^[A-Za-z0-9_.-]+$/;
const IPV6 = /^[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*(%[A-Za-z0-9_.-]+)?$/;
const PORT = /^[0-9]{1,5}$/;

export function parseHostPort(text: string, options: ParseHostPortOptions = {}): HostPort {
  const value = text.trim();
  const bad = (why: string): never => {
    throw new AddressError(why);
  };
  if (value.length === 0) bad('empty (expected HOST:PORT)');
  let host: string;
  let portText: string;
  if (value.startsWith('[')) {
    const close = value.indexOf(']');
    if (close < 0) bad('missing "]" after an IPv6 address (expected [ADDRESS]:PORT)');
    host = value.slice(1, close);
    tooLong('an IPv6 address', host);
    if (!IPV6.test(host)) bad(`"${host}" is not an IPv6 address`);
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
    tooLong('a host name', host);
    if (!HOSTNAME.test(host)) bad(`"${host}" is not a valid host name or address`);
  }
  if (portText.length === 0) bad('missing port (expected HOST:PORT)');
  if (!PORT.test(portText)) bad(`port "${excerpt(portText)}" is not a number`);
  const port = Number(portText);
  const min = options.allowPortZero ? 0 : 1;
  if (port < min || port > 65535) bad(`port ${port} is out of range ${min}-65535`);
  return { host, port };
}

function tooLong(what: string, host: string): void {
  if (host.length > MAX_HOST_LENGTH) {
    throw new AddressError(`${what} is at most ${MAX_HOST_LENGTH} characters; this one has ${host.length} ("${excerpt(host)}")`);
  }
}

/** The first 40 characters of a refused input, for a message that repeats it: enough to recognise it, never a frame's worth. */
export function excerpt(text: string): string {
  if (text.length <= SHOWN) return text;
  // Never half a surrogate pair: the message goes out as UTF-8.
  const end = /[\uD800-\uDBFF]/.test(text.charAt(SHOWN - 1)) ? SHOWN - 1 : SHOWN;
  return `${text.slice(0, end)}…`;
}

/** The inverse of `parseHostPort`: `127.0.0.1:7001`, `[::1]:7001`. */
export function formatHostPort(address: HostPort): string {
  return address.host.includes(':') ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`;
}

/** 0.0.0.0, ::, 0:0:0:0:0:0:0:0: every interface to listen on, but no address to connect to. */
export function isUnspecifiedHost(host: string): boolean {
  return host === '0.0.0.0' || (host.includes(':') && /^[0:]+$/.test(host));
}

/** A name of this machine's loopback: `localhost`, 127.x.y.z, `::1`. */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\./.test(h);
}

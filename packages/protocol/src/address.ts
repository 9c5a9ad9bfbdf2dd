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

/** The longest label of a DNS name (RFC 1035 §2.3.4). */
export const MAX_LABEL_LENGTH = 63;

/**
 * RFC 1123 §2.1: letters, digits and hyphens, neither first nor last; and `_`, which RFC 1123 does not
 * allow but resolvers do, and names people run do have (Docker Compose v1's `app_primary_1`).
 */
const LABEL = /^[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?$/;
/** A dotted-decimal byte, without leading zeros, which some resolvers read as octal. */
const BYTE = /^(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])$/;
const HEX_GROUP = /^[0-9A-Fa-f]{1,4}$/;
/** An RFC 4007 zone, as interface names are written: `fe80::1%eth0`. */
const ZONE = /^[A-Za-z0-9_.-]+$/;
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
    if (!isIPv6Literal(host)) bad(`"${excerpt(host)}" is not an IPv6 address (eight groups of 1-4 hex digits, one "::" for a run of zeros)`);
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
    checkHostName(host);
  }
  if (portText.length === 0) bad('missing port (expected HOST:PORT)');
  if (!PORT.test(portText)) bad(`port "${excerpt(portText)}" is not a number`);
  const port = Number(portText);
  const min = options.allowPortZero ? 0 : 1;
  if (port < min || port > 65535) bad(`port ${port} is out of range ${min}-65535`);
  return { host, port };
}

/**
 * A host outside brackets: an IPv4 address, or a DNS name as RFC 1123 §2.1
 * writes it (with `_` and a final dot, which resolvers take). A name whose last label is all digits can only be an IPv4
 * address (top-level domains are alphabetic), so `999.1.1.1` is refused
 * rather than looked up.
 */
function checkHostName(host: string): void {
  // One trailing dot makes a name absolute (`example.org.`): resolvers take it, and so do we.
  const labels = (host.length > 1 && host.endsWith('.') ? host.slice(0, -1) : host).split('.');
  if (/^[0-9]+$/.test(labels[labels.length - 1] as string)) {
    if (!isIPv4(host)) throw new AddressError(`"${excerpt(host)}" is not an IPv4 address (four numbers 0-255, without leading zeros)`);
    return;
  }
  for (const label of labels) {
    if (label.length > MAX_LABEL_LENGTH) {
      throw new AddressError(`a label of a host name is at most ${MAX_LABEL_LENGTH} characters; "${excerpt(label)}" has ${label.length}`);
    }
    if (!LABEL.test(label)) {
      throw new AddressError(`"${excerpt(host)}" is not a valid host name or address (labels of letters, digits, \`_\` and inner hyphens, joined by dots)`);
    }
  }
}

function isIPv4(text: string): boolean {
  const parts = text.split('.');
  return parts.length === 4 && parts.every((p) => BYTE.test(p));
}

/**
 * RFC 4291 §2.2's text form: eight groups of 1-4 hex digits, the last two of
 * which may be written as an IPv4 address, and at most one "::" standing for
 * one or more groups of zeros; then an optional zone.
 */
function isIPv6Literal(text: string): boolean {
  const percent = text.indexOf('%');
  if (percent >= 0 && !ZONE.test(text.slice(percent + 1))) return false;
  const halves = (percent >= 0 ? text.slice(0, percent) : text).split('::');
  if (halves.length > 2) return false;
  const groups = halves.flatMap((half) => (half === '' ? [] : half.split(':')));
  // The IPv4 form ends the address: not before a trailing "::".
  const ipv4At = (halves[halves.length - 1] as string) === '' ? -1 : groups.length - 1;
  let count = 0;
  for (const [i, group] of groups.entries()) {
    if (HEX_GROUP.test(group)) count++;
    else if (i === ipv4At && isIPv4(group)) count += 2;
    else return false;
  }
  return halves.length === 2 ? count <= 7 : count === 8;
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

import { HEADER_BYTES, LENGTH_BYTES, SESSION_BYTES, counted, formatCommand, tokenize } from '@tracker-cluster/protocol';
import { Bitfield } from './bitfield.js';

/**
 * The peer protocol (docs/protocol.md "Peer protocol"): the codec, pure.
 *
 * Same frames as the trackers' (`[u32 len][u64 session][payload]`); the
 * session field is 0 both ways and ignored. Requests are UTF-8 command lines
 * (PROTOCOL.md §2 quoting); each gets exactly one answer, in request order,
 * so a downloader may pipeline.
 *
 *   HAVE <group> <sha256>            -> OK <pieces> <bitfield-hex | ->
 *   PIECE <group> <sha256> <index>   -> OK <index> <length>\n<length raw bytes>
 *   errors                           -> ERR <CODE> <message>
 *
 * Codes: BAD_REQUEST, UNKNOWN_COMMAND, NO_SUCH_FILE (not shared here in that
 * group — also the answer to a wrong share context), NO_SUCH_PIECE (this
 * peer does not hold that piece yet), BUSY (too many uploads; try later or
 * elsewhere), INTERNAL (a disk error on the serving side).
 */

/** Largest request a piece server accepts: requests are one short line. */
export const MAX_PEER_REQUEST = 4096;
/** Room for the text line in front of a piece's bytes. */
export const PIECE_HEADER_ROOM = 256;

/** Bytes of the `HAVE` answer for a file of `pieces` pieces: `OK <pieces> <bitfield hex>` (`OK 0 -` for none). */
export function haveAnswerBytes(pieces: number): number {
  return `OK ${pieces} `.length + (pieces === 0 ? 1 : 2 * Math.ceil(pieces / 8));
}

/**
 * The largest answer payload a downloader can legitimately get for a file of
 * `pieces` pieces of `pieceSize` bytes: a piece, or the `HAVE` bitfield (which
 * grows with the piece count, and is the larger one for small pieces), plus
 * `PIECE_HEADER_ROOM` for the text line.
 */
export function maxPeerAnswer(pieceSize: number, pieces: number): number {
  return Math.max(pieceSize, haveAnswerBytes(pieces)) + PIECE_HEADER_ROOM;
}

export type PeerRequest =
  | { kind: 'have'; group: string; sha256: string }
  | { kind: 'piece'; group: string; sha256: string; index: number };

export type PeerRequestParse = { ok: true; request: PeerRequest } | { ok: false; code: string; message: string };

const SHA256 = /^[0-9a-f]{64}$/;
const INDEX = /^(0|[1-9][0-9]{0,15})$/;

export function formatHaveRequest(group: string, sha256: string): string {
  return formatCommand(['HAVE', group, sha256]);
}

export function formatPieceRequest(group: string, sha256: string, index: number): string {
  return formatCommand(['PIECE', group, sha256, String(index)]);
}

export function parsePeerRequest(line: string): PeerRequestParse {
  let words: string[];
  try {
    words = tokenize(line);
  } catch {
    return { ok: false, code: 'BAD_REQUEST', message: 'unterminated quote' };
  }
  const name = (words[0] ?? '').toUpperCase();
  const bad = (message: string): PeerRequestParse => ({ ok: false, code: 'BAD_REQUEST', message });
  if (name === 'HAVE') {
    if (words.length !== 3) return bad('usage: HAVE <group> <sha256>');
    if (!SHA256.test(words[2] as string)) return bad('sha256 must be 64 lowercase hex digits');
    return { ok: true, request: { kind: 'have', group: words[1] as string, sha256: words[2] as string } };
  }
  if (name === 'PIECE') {
    if (words.length !== 4) return bad('usage: PIECE <group> <sha256> <index>');
    if (!SHA256.test(words[2] as string)) return bad('sha256 must be 64 lowercase hex digits');
    if (!INDEX.test(words[3] as string)) return bad('index must be a whole number');
    return { ok: true, request: { kind: 'piece', group: words[1] as string, sha256: words[2] as string, index: Number(words[3]) } };
  }
  return { ok: false, code: 'UNKNOWN_COMMAND', message: `no such peer command: ${name.slice(0, 32)}` };
}

export function formatHaveAnswer(have: Bitfield): string {
  return `OK ${have.length} ${have.length === 0 ? '-' : have.toHex()}`;
}

/** Thrown by the answer parsers for an `ERR` answer or a malformed one (code `PROTOCOL`). */
export class PeerAnswerError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(`${code} ${message}`);
    this.name = 'PeerAnswerError';
    this.code = code;
  }
}

function errorFrom(first: string): PeerAnswerError {
  if (first.startsWith('ERR ')) {
    const rest = first.slice(4);
    const sp = rest.indexOf(' ');
    return new PeerAnswerError(sp < 0 ? rest : rest.slice(0, sp), sp < 0 ? '' : rest.slice(sp + 1));
  }
  return new PeerAnswerError('PROTOCOL', `unexpected answer: ${first.slice(0, 80)}`);
}

/** The bitfield of a HAVE answer, checked against the piece count the tracker gave. */
export function parseHaveAnswer(payload: Buffer, pieces: number): Bitfield {
  const text = payload.toString('utf8');
  const m = /^OK ([0-9]+) ([0-9a-f]+|-)$/.exec(text);
  if (!m) throw errorFrom(text.split('\n', 1)[0] ?? '');
  if (Number(m[1]) !== pieces) throw new PeerAnswerError('PROTOCOL', `peer has ${counted(Number(m[1]), 'piece')}, expected ${pieces}`);
  if (pieces === 0) return new Bitfield(0);
  const have = Bitfield.fromHex(pieces, m[2] as string);
  if (!have) throw new PeerAnswerError('PROTOCOL', 'malformed bitfield');
  return have;
}

/**
 * The frame header and text line of a PIECE answer; the piece's bytes follow
 * on the wire (written separately, so they are never copied).
 */
export function encodePieceAnswerHead(index: number, length: number): Buffer {
  const line = Buffer.from(`OK ${index} ${length}\n`, 'utf8');
  const head = Buffer.allocUnsafe(HEADER_BYTES + line.length);
  head.writeUInt32BE(SESSION_BYTES + line.length + length, 0);
  head.writeBigUInt64BE(0n, LENGTH_BYTES);
  line.copy(head, HEADER_BYTES);
  return head;
}

/** The bytes of a PIECE answer; throws a `PeerAnswerError` for `ERR` or a malformed answer. */
export function parsePieceAnswer(payload: Buffer, index: number, length: number): Buffer {
  const nl = payload.indexOf(0x0a);
  const firstEnd = nl < 0 ? Math.min(payload.length, PIECE_HEADER_ROOM) : nl;
  const first = payload.subarray(0, firstEnd).toString('utf8');
  const m = /^OK ([0-9]+) ([0-9]+)$/.exec(first);
  if (!m || nl < 0) throw errorFrom(first);
  if (Number(m[1]) !== index) throw new PeerAnswerError('PROTOCOL', `asked for piece ${index}, got ${m[1]}`);
  const data = payload.subarray(nl + 1);
  if (Number(m[2]) !== data.length) throw new PeerAnswerError('PROTOCOL', `piece says ${counted(Number(m[2]), 'byte')}, carries ${data.length}`);
  if (data.length !== length) throw new PeerAnswerError('PROTOCOL', `piece ${index} has ${counted(data.length, 'byte')}, expected ${length}`);
  return data;
}

import type { ErrorCode } from './errors.js';
import { formatError } from './errors.js';

/**
 * Response payloads (PROTOCOL.md §2): `OK`, `OK <text>`, `ERR <CODE> <message>`,
 * and list answers `OK <n>` followed by exactly n lines. Frames whose payload
 * starts with `EVENT ` are unasked notifications, never responses (§4).
 */
export function ok(text?: string): string {
  return text === undefined || text === '' ? 'OK' : `OK ${text}`;
}

export function okList(rows: readonly string[]): string {
  return rows.length === 0 ? 'OK 0' : `OK ${rows.length}\n${rows.join('\n')}`;
}

export function err(code: ErrorCode, message: string): string {
  return formatError(code, message);
}

export type Response =
  | { ok: true; text: string; lines: string[] }
  | { ok: false; code: string; message: string };

/** Splits a response payload into its first line and the lines after it. */
export function parseResponse(payload: string): Response {
  const nl = payload.indexOf('\n');
  const first = nl < 0 ? payload : payload.slice(0, nl);
  const lines = nl < 0 ? [] : payload.slice(nl + 1).split('\n');
  if (first === 'OK' || first.startsWith('OK ')) {
    return { ok: true, text: first.slice(3), lines };
  }
  if (first.startsWith('ERR ')) {
    const rest = first.slice(4);
    const sp = rest.indexOf(' ');
    const code = sp < 0 ? rest : rest.slice(0, sp);
    return { ok: false, code, message: sp < 0 ? '' : rest.slice(sp + 1) };
  }
  return { ok: false, code: 'PROTOCOL', message: `unrecognised response: ${first.slice(0, 80)}` };
}

export const EVENT_PREFIX = 'EVENT ';

export function isEvent(payload: string): boolean {
  return payload.startsWith(EVENT_PREFIX);
}

import { styleText } from 'node:util';
import { EVENT_PREFIX, parseResponse, parseRow, tokenize } from '@tracker-cluster/protocol';
import { formatAddress } from './address.js';
import type { TrackerAddress } from './address.js';
import type { ClientState } from './state.js';

/**
 * Everything the client shows, pure: answers (raw protocol text, aligned
 * tables, or JSON), events, the prompt, and the client's own messages. The
 * rest of the client never builds output itself.
 */

/**
 * How answers are shown: `raw` is the tracker's text as sent (scripts),
 * `pretty` shows list answers as aligned tables (the prompt on a terminal),
 * `json` one JSON object per answer or event (`--json`).
 */
export type OutputMode = 'raw' | 'pretty' | 'json';

export interface View {
  mode: OutputMode;
  /** ANSI colours (a terminal, and `NO_COLOR` unset). Never in `json` mode. */
  color: boolean;
}

export const PLAIN_VIEW: View = Object.freeze({ mode: 'raw', color: false });

/** Whether to use colours: stdout is a terminal and `NO_COLOR` is unset or empty (https://no-color.org). */
export function useColor(isTTY: boolean | undefined, env: Readonly<Record<string, string | undefined>>): boolean {
  return isTTY === true && (env['NO_COLOR'] === undefined || env['NO_COLOR'] === '');
}

type Style = Parameters<typeof styleText>[0];

function paint(view: View, style: Style, text: string): string {
  // Whether to colour is decided once (useColor), not per stream by styleText.
  return view.color ? styleText(style, text, { validateStream: false }) : text;
}

/** Commands whose `OK <n>` answer is followed by `<name> key=value ...` rows, and the title of the name column. */
export const LIST_COMMANDS: Readonly<Record<string, string>> = Object.freeze({
  list_groups: 'group',
  list_members: 'user',
  list_requests: 'user',
  list_files: 'file',
});

/**
 * A row of an answer in `--json`: the words of a tracker's row, as text; or
 * a row the client has as data (`show_downloads`), with numbers as numbers.
 */
export type JsonRow = Readonly<Record<string, string | number | null>>;

/** One answer as data: what `--json` prints. */
export interface JsonAnswer {
  ok: boolean;
  /** The error code of an `ERR` answer; null for `OK`. */
  code: string | null;
  /** The text after `OK` (for a list, the count), or the error message. */
  message: string;
  /** The rows of a list answer (`{"name": ..., key: value, ...}`), or the client's own rows; empty for other answers. */
  rows: JsonRow[];
}

/** Parses an answer payload into `JsonAnswer` form; rows are read for list commands and for any `OK <n>` with `n` rows. */
export function answerData(payload: string, command = ''): JsonAnswer {
  const [first = '', ...rest] = payload.replace(/\n+$/, '').split('\n');
  const response = parseResponse(first);
  if (!response.ok) return { ok: false, code: response.code, message: response.message, rows: [] };
  const rows: Record<string, string>[] = [];
  const isList = command in LIST_COMMANDS || (/^[0-9]+$/.test(response.text) && Number(response.text) === rest.length && rest.length > 0);
  const lines = isList ? rest : command === 'file_peers' ? rest : [];
  for (const line of lines) {
    try {
      const row = parseRow(line);
      rows.push({ name: row.name, ...row.fields });
    } catch {
      rows.push({ name: line });
    }
  }
  return { ok: true, code: null, message: response.text, rows };
}

/** `--json`: one line per answer; `rows`, when the client has the answer's rows as data, instead of those read from the text. */
export function formatJsonAnswer(payload: string, command = '', rows?: readonly JsonRow[]): string {
  const data = answerData(payload, command);
  return JSON.stringify(rows === undefined ? data : { ...data, rows });
}

/** `--json` for a client-side command (`help`, …): the same shape, with the text as the message. */
export function formatJsonLocal(ok: boolean, text: string): string {
  const answer: JsonAnswer = { ok, code: ok ? null : 'CLIENT', message: text, rows: [] };
  return JSON.stringify(answer);
}

/** Aligned columns with an upper-case header; every line trimmed at the end. */
export function formatTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd();
  return [line(header.map((h) => h.toUpperCase())), ...rows.map(line)].join('\n');
}

/**
 * An answer for people. `raw`: as the tracker sent it. `pretty`: `OK`/`ERR`
 * coloured, and a list answer's rows as a table with a header.
 */
export function formatReply(payload: string, view: View = PLAIN_VIEW, command = '', rows?: readonly JsonRow[]): string {
  const text = payload.replace(/\n+$/, '');
  if (view.mode === 'json') return formatJsonAnswer(payload, command, rows);
  if (view.mode === 'raw' && !view.color) return text;
  const [first = '', ...rest] = text.split('\n');
  const response = parseResponse(first);
  const head = response.ok
    ? `${paint(view, 'green', 'OK')}${first.slice(2)}`
    : `${paint(view, 'red', `ERR ${response.code}`)}${first.slice(4 + response.code.length)}`;
  if (view.mode === 'raw' || !response.ok || rest.length === 0 || !(command in LIST_COMMANDS)) {
    return [head, ...rest].join('\n');
  }
  const data = answerData(payload, command);
  const keys: string[] = [];
  for (const row of data.rows) for (const key of Object.keys(row)) if (key !== 'name' && !keys.includes(key)) keys.push(key);
  const table = formatTable(
    [LIST_COMMANDS[command] ?? 'name', ...keys],
    data.rows.map((row) => [String(row['name'] ?? ''), ...keys.map((k) => String(row[k] ?? ''))]),
  );
  return `${head}\n${table}`;
}

/** Whether a response payload is an `OK` answer. */
export function isOk(payload: string): boolean {
  return parseResponse(payload).ok;
}

/** An unasked `EVENT …` frame: `[event] join_request g1 bob`, or `{"event":"join_request","args":["g1","bob"]}` in json mode. */
export function formatEvent(payload: string, view: View = PLAIN_VIEW): string {
  const body = (payload.startsWith(EVENT_PREFIX) ? payload.slice(EVENT_PREFIX.length) : payload).replace(/\n+$/, '');
  if (view.mode === 'json') {
    let words: string[];
    try {
      words = tokenize(body);
    } catch {
      words = body.split(' ');
    }
    return JSON.stringify({ event: words[0] ?? '', args: words.slice(1) });
  }
  return `${paint(view, 'yellow', '[event]')} ${body}`;
}

/** A message from the client itself (not from a tracker), for stderr. */
export function formatClientError(message: string): string {
  return `tracker-client: ${message}`;
}

/**
 * At the prompt, an `ERR UNKNOWN_COMMAND` answer also says where the list
 * is: the tracker's own text names a few of its commands and cannot know
 * the client's (`help` among them). Any other answer is returned as is.
 */
export function withHelpHint(payload: string): string {
  const response = parseResponse(payload);
  if (response.ok || response.code !== 'UNKNOWN_COMMAND') return payload;
  return `${payload.replace(/\n+$/, '')}; type "help" for the list of commands`;
}

/** `help foo` for a command that does not exist. */
export function formatUnknownHelpTopic(topic: string): string {
  return `help: no such command "${topic}" (type "help" for the list)`;
}

/** The answer of a client-side command, for people. */
export function formatLocal(ok: boolean, text: string, view: View = PLAIN_VIEW): string {
  if (view.mode === 'json') return formatJsonLocal(ok, text);
  return ok ? text : paint(view, 'red', text);
}

/** A tracker and its role as shown: `127.0.0.1:7001 (primary)`. */
export function formatTracker(address: TrackerAddress, role: string | undefined): string {
  return role === undefined ? formatAddress(address) : `${formatAddress(address)} (${role})`;
}

/**
 * The prompt: `alice@127.0.0.1:7001 (primary)> ` when logged in,
 * `127.0.0.1:7001 (primary)> ` when not, `tracker> ` with no connection.
 */
export function formatPrompt(state: ClientState, address: TrackerAddress | undefined, role?: string): string {
  if (address === undefined) return state.user !== undefined && state.session !== 0n ? `${state.user}@(disconnected)> ` : 'tracker> ';
  const where = formatTracker(address, role);
  if (state.session !== 0n && state.user !== undefined) return `${state.user}@${where}> `;
  return `${where}> `;
}

/** What happened when the client moved to another connection. */
export interface FailoverInfo {
  /** The tracker lost, and why. */
  from: TrackerAddress;
  reason: string;
  /** The tracker now in use, and its role from `status`. */
  to: TrackerAddress;
  role: string | undefined;
  /** Whether a session was carried over. */
  session: boolean;
  /** The command being retried with the same request id, if one was waiting for its answer. */
  retrying: string | undefined;
}

/** The one-line notice after a failover: `lost 127.0.0.1:7001 (…); now on 127.0.0.1:7002 (replica) with the same session; retrying create_group`. */
export function formatFailover(info: FailoverInfo): string {
  const same = formatAddress(info.from) === formatAddress(info.to);
  const where = same ? `reconnected to ${formatTracker(info.to, info.role)}` : `now on ${formatTracker(info.to, info.role)}`;
  const session = info.session ? ' with the same session' : '';
  const retry = info.retrying !== undefined ? `; retrying ${info.retrying}` : '';
  return formatClientError(`${info.reason}; ${where}${session}${retry}`);
}

/**
 * A command that failed for want of a tracker (`cannot reach any tracker …`,
 * a connection lost for good), with its fate: never sent, or sent and not
 * answered — then the tracker may have applied it.
 */
export function formatUnanswered(message: string, command: string, sent: boolean): string {
  return `${message}; ${command} ${sent ? 'got no answer (it was sent, so the tracker may have applied it)' : 'was not sent'}`;
}

/** The session the client held is no longer known to the tracker (expired, or logged out elsewhere). */
export function formatSessionEnded(user: string | undefined): string {
  const whose = user !== undefined ? `${user}'s session` : 'the session';
  return formatClientError(`${whose} has ended at the tracker (expired or logged out); log in again`);
}

/** The first word of a command line, lower case: for messages (`retrying create_group`). */
export function commandName(line: string): string {
  return (line.trim().split(/[ \t]/, 1)[0] ?? '').toLowerCase();
}

import { homedir } from 'node:os';
import path from 'node:path';

/**
 * The prompt's history file, pure parts: where it lives, which lines it
 * never keeps, and how it is read and written.
 */

/** At most this many lines are kept (in memory and in the file). */
export const HISTORY_SIZE = 1000;

/** Default file name, in the home directory. */
export const HISTORY_FILE_NAME = '.tracker_client_history';

/**
 * `TRACKER_CLIENT_HISTORY` when set (empty: no history file), else
 * `~/.tracker_client_history` with `HOME` respected. Undefined means no file.
 */
export function historyPath(env: Readonly<Record<string, string | undefined>>, home: () => string = homedir): string | undefined {
  const override = env['TRACKER_CLIENT_HISTORY'];
  if (override !== undefined) return override.length > 0 ? override : undefined;
  const dir = env['HOME'] !== undefined && env['HOME'].length > 0 ? env['HOME'] : safeHome(home);
  return dir === undefined ? undefined : path.join(dir, HISTORY_FILE_NAME);
}

function safeHome(home: () => string): string | undefined {
  try {
    const dir = home();
    return dir.length > 0 ? dir : undefined;
  } catch {
    return undefined;
  }
}

/** Commands whose lines carry a password: never kept in history, in memory or on disk. */
const SECRET_COMMANDS = new Set(['login', 'create_user']);

/** Whether a typed line carries a password (`login …`, `create_user …`, any case). */
export function isSecretLine(line: string): boolean {
  const first = line.trim().split(/[ \t]/, 1)[0] ?? '';
  return SECRET_COMMANDS.has(first.toLowerCase());
}

/** The file's text as readline's history array: newest first, at most `HISTORY_SIZE`, secret lines dropped. */
export function parseHistoryFile(text: string): string[] {
  return text
    .split('\n')
    .map((l) => l.replace(/\r$/, ''))
    .filter((l) => l.trim().length > 0 && !isSecretLine(l))
    .slice(-HISTORY_SIZE)
    .reverse();
}

/** readline's history array (newest first) as the file's text: oldest first, one a line. */
export function formatHistoryFile(history: readonly string[]): string {
  const lines = history
    .map((l) => l.trim())
    .filter((l) => l.length > 0 && !isSecretLine(l))
    .slice(0, HISTORY_SIZE)
    .reverse();
  return lines.length > 0 ? `${lines.join('\n')}\n` : '';
}

import { parseResponse, parseRow, quote, tokenize } from '@tracker-cluster/protocol';
import { argNames } from './commands.js';
import type { CommandTable } from './commands.js';

/**
 * Tab completion, pure: what to offer for a line, from the command table
 * and the names the client has seen (groups and users in answers, in the
 * lines the user sent, and in events).
 */

/** Names seen so far in this process, for completion. */
export class KnownNames {
  readonly groups = new Set<string>();
  readonly users = new Set<string>();

  /** Learns from a command the tracker answered `OK`, and from the rows of a list answer. */
  learnFromReply(line: string, payload: string): void {
    const response = parseResponse(payload);
    if (!response.ok) return;
    const words = safeTokenize(line);
    const command = (words[0] ?? '').toLowerCase();
    const arg1 = words[1];
    const arg2 = words[2];
    switch (command) {
      case 'create_group':
      case 'join_group':
      case 'list_members':
      case 'list_requests':
      case 'list_files':
        if (arg1 !== undefined) this.groups.add(arg1);
        break;
      case 'leave_group':
        // Still a name one may type (join it again); keep it.
        break;
      case 'accept_request':
      case 'reject_request':
        if (arg1 !== undefined) this.groups.add(arg1);
        if (arg2 !== undefined) this.users.add(arg2);
        break;
      case 'login':
      case 'create_user':
        if (arg1 !== undefined) this.users.add(arg1);
        break;
    }
    const rows = payload.split('\n').slice(1).filter((l) => l.length > 0);
    for (const row of rows) {
      let parsed;
      try {
        parsed = parseRow(row);
      } catch {
        continue;
      }
      if (command === 'list_groups') {
        this.groups.add(parsed.name);
        if (parsed.fields['owner'] !== undefined) this.users.add(parsed.fields['owner']);
      } else if (command === 'list_members' || command === 'list_requests') {
        this.users.add(parsed.name);
      }
    }
  }

  /** Learns from an `EVENT <name> <group> [<user>|<file> <user>]` payload. */
  learnFromEvent(payload: string): void {
    const words = safeTokenize(payload);
    if (words[0] !== 'EVENT') return;
    const group = words[2];
    if (group !== undefined) this.groups.add(group);
    const user = words[1] === 'file_shared' ? words[4] : words[3];
    if (user !== undefined) this.users.add(user);
  }
}

/** The values to complete for a placeholder name (`group`, `user`, `command`), if the client knows any. */
function candidatesFor(placeholder: string, table: CommandTable, known: KnownNames): string[] {
  switch (placeholder) {
    case 'group':
      return [...known.groups].sort();
    case 'user':
      return [...known.users].sort();
    case 'command':
      return table.all().map((s) => s.name);
    default:
      return [];
  }
}

/**
 * readline's completer result for `line` (the text left of the cursor):
 * the matching words and the part of the line they replace. The first
 * word completes to a command name (case-insensitive); later words to the
 * names the placeholder at that position asks for.
 */
export function complete(line: string, table: CommandTable, known: KnownNames): [string[], string] {
  const match = /(^|[ \t])([^ \t]*)$/.exec(line);
  const current = match?.[2] ?? '';
  const before = line.slice(0, line.length - current.length);
  const previous = before.split(/[ \t]+/).filter((w) => w.length > 0);
  let candidates: string[];
  if (previous.length === 0) {
    const lower = current.toLowerCase();
    candidates = table.names().filter((n) => n.startsWith(lower));
    // A lone exact command completes to itself plus a space.
    return [candidates.map((c) => (candidates.length === 1 ? `${c} ` : c)), current];
  }
  const spec = table.find(previous[0] as string);
  if (spec === undefined) return [[], current];
  const placeholder = argNames(spec)[previous.length - 1];
  if (placeholder === undefined) return [[], current];
  const typed = current.startsWith('"') ? current.slice(1) : current;
  candidates = candidatesFor(placeholder, table, known)
    .filter((c) => c.startsWith(typed))
    .map((c) => quote(c));
  return [candidates.length === 1 ? [`${candidates[0]} `] : candidates, current];
}

function safeTokenize(text: string): string[] {
  try {
    return tokenize(text);
  } catch {
    return [];
  }
}

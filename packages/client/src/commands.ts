import { tokenize } from '@tracker-cluster/protocol';
// peer: file-sharing commands (issue 5), defined in ./peer/commands.ts
import { PEER_COMMANDS } from './peer/commands.js';

/**
 * Every command the client knows about: the tracker's (PROTOCOL.md §3) and
 * the client-local ones. One table feeds `help`, and later Tab completion.
 */

/** Who may run a command: no session, any session, the group owner, a group member, or handled by the client itself. */
export type CommandAuth = 'none' | 'session' | 'owner' | 'member' | 'local';

export interface CommandSpec {
  /** The name as typed (lower case; the tracker matches names case-insensitively). */
  name: string;
  /** Argument synopsis, e.g. `<user> <password>`; empty when there are none. */
  args: string;
  summary: string;
  auth: CommandAuth;
  /** Other names for the same command. */
  aliases?: readonly string[];
}

export const COMMANDS: readonly CommandSpec[] = [
  { name: 'ping', args: '', summary: 'check that the tracker answers (OK PONG)', auth: 'none' },
  { name: 'status', args: '', summary: "show the tracker's role, epoch, sequence and replication state", auth: 'none' },
  { name: 'create_user', args: '<user> <password>', summary: 'create an account', auth: 'none' },
  { name: 'login', args: '<user> <password>', summary: 'log in; the client keeps the new session', auth: 'none' },
  { name: 'logout', args: '', summary: 'end this session', auth: 'session' },
  { name: 'whoami', args: '', summary: "show this session's user and how many sessions it has", auth: 'session' },
  { name: 'create_group', args: '<group>', summary: 'create a group; you become its owner and first member', auth: 'session' },
  { name: 'join_group', args: '<group>', summary: 'ask the owner to let you join a group', auth: 'session' },
  { name: 'leave_group', args: '<group>', summary: 'leave a group (ownership passes to the earliest member)', auth: 'session' },
  { name: 'list_requests', args: '<group>', summary: 'list pending join requests, oldest first', auth: 'owner' },
  { name: 'accept_request', args: '<group> <user>', summary: 'let a user join your group', auth: 'owner' },
  { name: 'reject_request', args: '<group> <user>', summary: "turn down a user's join request", auth: 'owner' },
  { name: 'list_groups', args: '', summary: 'list every group with its owner and member count', auth: 'session' },
  { name: 'list_members', args: '<group>', summary: "list a group's members and their roles", auth: 'member' },
  { name: 'list_files', args: '<group>', summary: 'list the files shared in a group that have a seeder', auth: 'member' },
  { name: 'file_peers', args: '<group> <file>', summary: "show a file's pieces and the peers that share it", auth: 'member' },
  { name: 'stop_share', args: '<group> <file>', summary: 'stop sharing a file', auth: 'session' },
  { name: 'help', args: '[command]', summary: 'list the commands, or describe one', auth: 'local' },
  { name: 'quit', args: '', summary: 'leave the client (the session stays logged in)', auth: 'local', aliases: ['exit'] },
  // peer: upload_file <path> <group>, download_file, show_downloads, wait_downloads
  ...PEER_COMMANDS,
];

const BY_NAME: ReadonlyMap<string, CommandSpec> = new Map(
  COMMANDS.flatMap((spec) => [spec.name, ...(spec.aliases ?? [])].map((name) => [name, spec] as const)),
);

/** Looks a command up by name or alias, case-insensitively. */
export function findCommand(name: string): CommandSpec | undefined {
  return BY_NAME.get(name.toLowerCase());
}

/** `login <user> <password>` */
export function usage(spec: CommandSpec): string {
  return spec.args.length > 0 ? `${spec.name} ${spec.args}` : spec.name;
}

const AUTH_NOTE: Record<CommandAuth, string> = {
  none: 'no login needed',
  session: 'needs a login',
  owner: "needs a login; the group's owner only",
  member: "needs a login; the group's members only",
  local: 'handled by the client',
};

/** What a line typed at the prompt (or in a script) asks for. */
export type LineAction =
  | { kind: 'skip' }
  | { kind: 'help'; topic: string | undefined }
  | { kind: 'quit' }
  /** Sent to the tracker as written (trimmed); `command` is the lower-cased first word. */
  | { kind: 'remote'; line: string; command: string };

/**
 * Decides whether a line is handled by the client (`help`, `quit`, `exit`)
 * or sent to the tracker. Anything that is not a local command goes to the
 * tracker unchanged — the tracker validates arguments and quoting.
 */
export function classifyLine(line: string): LineAction {
  const trimmed = line.trim();
  if (trimmed.length === 0) return { kind: 'skip' };
  let words: string[];
  try {
    words = tokenize(trimmed);
  } catch {
    // Bad quoting: the tracker answers it with ERR BAD_REQUEST.
    words = [];
  }
  const first = (words[0] ?? trimmed.split(/[ \t]/, 1)[0] ?? '').toLowerCase();
  const spec = findCommand(first);
  if (spec?.auth === 'local' && words.length > 0) {
    if (spec.name === 'help') return { kind: 'help', topic: words[1] };
    if (spec.name === 'quit') return { kind: 'quit' };
  }
  return { kind: 'remote', line: trimmed, command: first };
}

/** Usage column width in `help`; longer usages put their summary on the next line. */
const HELP_COLUMN = 32;

/** The answer to `help`: every command with its usage, one a line. */
export function formatHelp(): string {
  const lines = ['Commands (names are case-insensitive; quote arguments with spaces: "my file.txt"):'];
  for (const spec of COMMANDS) {
    const text = usage(spec);
    const aliases = spec.aliases && spec.aliases.length > 0 ? ` (also: ${spec.aliases.join(', ')})` : '';
    const summary = `${spec.summary}${aliases}`;
    if (text.length <= HELP_COLUMN) lines.push(`  ${text.padEnd(HELP_COLUMN)}  ${summary}`);
    else lines.push(`  ${text}`, `  ${''.padEnd(HELP_COLUMN)}  ${summary}`);
  }
  lines.push('Type "help <command>" for more about one command.');
  return lines.join('\n');
}

/** The answer to `help <command>`, or undefined for an unknown command. */
export function formatCommandHelp(name: string): string | undefined {
  const spec = findCommand(name);
  if (!spec) return undefined;
  const lines = [`usage: ${usage(spec)}`, `  ${spec.summary}`, `  (${AUTH_NOTE[spec.auth]})`];
  if (spec.aliases && spec.aliases.length > 0) lines.push(`  also: ${spec.aliases.join(', ')}`);
  return lines.join('\n');
}

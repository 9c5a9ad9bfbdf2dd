import { tokenize } from '@tracker-cluster/protocol';
import type { CommandAuth, CommandCatalogue, CommandSpec, LocalHandler } from './command-spec.js';
import { formatUnknownHelpTopic } from './format.js';
// peer: file-sharing commands (issue 5), defined in ./peer/commands.ts; run by PeerRunner
import { PEER_COMMANDS } from './peer/commands.js';

export type { CommandAuth, CommandCatalogue, CommandSpec, LocalContext, LocalHandler, LocalResult } from './command-spec.js';

/**
 * Every command the client knows about: the tracker's (PROTOCOL.md §3) and
 * the client-local ones. One table feeds `help`, Tab completion and the
 * runner.
 *
 * Extension point: a client-side command is a `CommandSpec` with `run`.
 * Register it with `CommandTable.register` (a spec of the same name, even a
 * tracker command, is replaced). Its handler gets a `LocalContext` whose
 * `request()` sends tracker requests through the runner — with the session,
 * a request id, and failover — so a local command never opens its own
 * tracker connection.
 */

/** The tracker's commands (PROTOCOL.md §3). */
export const TRACKER_COMMANDS: readonly CommandSpec[] = [
  { name: 'ping', args: '', summary: 'check that the tracker answers (OK PONG)', auth: 'none', examples: ['ping'] },
  {
    name: 'status',
    args: '',
    summary: "show the tracker's role, epoch, sequence and replication state",
    auth: 'none',
    examples: ['status'],
  },
  { name: 'create_user', args: '<user> <password>', summary: 'create an account', auth: 'none', examples: ['create_user alice s3cret', 'create_user bob "two words"'] },
  { name: 'login', args: '<user> <password>', summary: 'log in; the client keeps the new session', auth: 'none', examples: ['login alice s3cret'] },
  { name: 'logout', args: '', summary: 'end this session (other sessions of the user stay)', auth: 'session', examples: ['logout'] },
  { name: 'whoami', args: '', summary: "show this session's user and how many sessions the user has", auth: 'session', examples: ['whoami'] },
  { name: 'create_group', args: '<group>', summary: 'create a group; you become its owner and first member', auth: 'session', examples: ['create_group climbers'] },
  { name: 'join_group', args: '<group>', summary: 'ask the owner to let you join a group', auth: 'session', examples: ['join_group climbers'] },
  { name: 'leave_group', args: '<group>', summary: 'leave a group (ownership passes to the earliest member)', auth: 'session', examples: ['leave_group climbers'] },
  { name: 'list_requests', args: '<group>', summary: 'list pending join requests, oldest first', auth: 'owner', examples: ['list_requests climbers'] },
  { name: 'accept_request', args: '<group> <user>', summary: 'let a user join your group', auth: 'owner', examples: ['accept_request climbers bob'] },
  { name: 'reject_request', args: '<group> <user>', summary: "turn down a user's join request", auth: 'owner', examples: ['reject_request climbers carol'] },
  { name: 'list_groups', args: '', summary: 'list every group with its owner and member count', auth: 'session', examples: ['list_groups'] },
  { name: 'list_members', args: '<group>', summary: "list a group's members and their roles", auth: 'member', examples: ['list_members climbers'] },
  {
    name: 'upload_file',
    args: '<group> <file> <size> <sha256> <piece_size> <peer> <hashes>',
    summary: 'register a file you share (metadata only; files stay with peers)',
    auth: 'member',
    examples: [`upload_file climbers notes.txt 5 ${'2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824'} 1024 127.0.0.1:9001 2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824`],
  },
  { name: 'list_files', args: '<group>', summary: 'list the files shared in a group that have a seeder', auth: 'member', examples: ['list_files climbers'] },
  { name: 'file_peers', args: '<group> <file>', summary: "show a file's pieces and the peers that share it", auth: 'member', examples: ['file_peers climbers notes.txt'] },
  { name: 'stop_share', args: '<group> <file>', summary: 'stop sharing a file', auth: 'session', examples: ['stop_share climbers notes.txt'] },
];

/** `help` and `quit`, handled by the client. */
export const CLIENT_COMMANDS: readonly CommandSpec[] = [
  {
    name: 'help',
    args: '[command]',
    summary: 'list the commands, or describe one',
    auth: 'local',
    examples: ['help', 'help login'],
    run: ({ args, commands }) => {
      const topic = args[0];
      if (topic === undefined) return { ok: true, text: formatHelp(commands) };
      const text = formatCommandHelp(topic, commands);
      return text === undefined
        ? { ok: false, text: formatUnknownHelpTopic(topic) }
        : { ok: true, text };
    },
  },
  {
    name: 'quit',
    args: '',
    summary: 'leave the client (the session stays logged in; "logout" ends it)',
    auth: 'local',
    aliases: ['exit'],
    examples: ['quit'],
    run: () => ({ ok: true, quit: true }),
  },
];

/** A set of commands by name and alias. `register` adds or replaces one. */
export class CommandTable implements CommandCatalogue {
  private readonly specs: CommandSpec[] = [];
  private byName = new Map<string, CommandSpec>();

  constructor(specs: Iterable<CommandSpec> = []) {
    for (const spec of specs) this.register(spec);
  }

  /** Adds a command; one with the same name is replaced (keeping its place in `help`). */
  register(spec: CommandSpec): this {
    const at = this.specs.findIndex((s) => s.name === spec.name);
    if (at >= 0) this.specs[at] = spec;
    else this.specs.push(spec);
    this.byName = new Map(
      this.specs.flatMap((s) => [s.name, ...(s.aliases ?? [])].map((name) => [name.toLowerCase(), s] as const)),
    );
    return this;
  }

  /** Looks a command up by name or alias, case-insensitively. */
  find(name: string): CommandSpec | undefined {
    return this.byName.get(name.toLowerCase());
  }

  /** Every command, in `help` order. */
  all(): readonly CommandSpec[] {
    return this.specs;
  }

  /** Every name and alias, sorted (for completion). */
  names(): string[] {
    return [...this.byName.keys()].sort();
  }
}

/**
 * A fresh table with the tracker's commands, the client's own, and file
 * sharing's (whose `upload_file <path> <group>` replaces the tracker's
 * seven-argument form in `help`; that form is still sent as written).
 * `help` lists them by topic, as docs/client.md does: file sharing's
 * commands beside the tracker's `upload_file`, `help` and `quit` last.
 */
export function defaultCommandTable(): CommandTable {
  const byTopic = TRACKER_COMMANDS.flatMap((spec) => (spec.name === 'upload_file' ? [spec, ...PEER_COMMANDS] : [spec]));
  return new CommandTable([...byTopic, ...CLIENT_COMMANDS]);
}

/** The default commands, in `help` order. */
export const COMMANDS: readonly CommandSpec[] = defaultCommandTable().all();

const DEFAULT_TABLE = defaultCommandTable();

/** Looks a default command up by name or alias, case-insensitively. */
export function findCommand(name: string): CommandSpec | undefined {
  return DEFAULT_TABLE.find(name);
}

/** `login <user> <password>` */
export function usage(spec: CommandSpec): string {
  return spec.args.length > 0 ? `${spec.name} ${spec.args}` : spec.name;
}

/** The placeholders of a synopsis without brackets: `<group> <user>` → `['group', 'user']`. */
export function argNames(spec: CommandSpec): string[] {
  return spec.args
    .split(/\s+/)
    .filter((a) => a.length > 0)
    .map((a) => a.replace(/^[<[]|[>\]]$/g, ''));
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
  /** A client-side command: `args` are the words after its name. */
  | { kind: 'local'; spec: CommandSpec & { run: LocalHandler }; args: string[]; line: string }
  /** Sent to the tracker as written (trimmed); `command` is the lower-cased first word. */
  | { kind: 'remote'; line: string; command: string };

/**
 * Decides whether a line is handled by the client (a command with `run`:
 * `help`, `quit`, `exit`, and any registered) or sent to the tracker.
 * Anything else goes to the tracker unchanged — the tracker validates
 * arguments and quoting.
 */
export function classifyLine(line: string, table: CommandTable = DEFAULT_TABLE): LineAction {
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
  const spec = table.find(first);
  if (spec?.run !== undefined && words.length > 0) {
    return { kind: 'local', spec: spec as CommandSpec & { run: LocalHandler }, args: words.slice(1), line: trimmed };
  }
  return { kind: 'remote', line: trimmed, command: first };
}

/** Usage column width in `help`; longer usages put their summary on the next line. */
const HELP_COLUMN = 32;

/** The answer to `help`: every command with its usage, one a line. */
export function formatHelp(table: CommandCatalogue = DEFAULT_TABLE): string {
  const lines = ['Commands (names are case-insensitive; quote arguments with spaces: "my file.txt"):'];
  for (const spec of table.all()) {
    const text = usage(spec);
    const aliases = spec.aliases && spec.aliases.length > 0 ? ` (also: ${spec.aliases.join(', ')})` : '';
    const summary = `${spec.summary}${aliases}`;
    if (text.length <= HELP_COLUMN) lines.push(`  ${text.padEnd(HELP_COLUMN)}  ${summary}`);
    else lines.push(`  ${text}`, `  ${''.padEnd(HELP_COLUMN)}  ${summary}`);
  }
  lines.push('Type "help <command>" for more about one command. Tab completes commands and names seen.');
  return lines.join('\n');
}

/** The answer to `help <command>`, or undefined for an unknown command. */
export function formatCommandHelp(name: string, table: CommandCatalogue = DEFAULT_TABLE): string | undefined {
  const spec = table.find(name);
  if (!spec) return undefined;
  const lines = [`usage: ${usage(spec)}`, `  ${spec.summary}`, `  (${AUTH_NOTE[spec.auth]})`];
  if (spec.aliases && spec.aliases.length > 0) lines.push(`  also: ${spec.aliases.join(', ')}`);
  if (spec.examples && spec.examples.length > 0) {
    lines.push('examples:');
    for (const example of spec.examples) lines.push(`  ${example}`);
  }
  return lines.join('\n');
}

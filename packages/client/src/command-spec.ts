import type { ClientOptions } from './options.js';
import type { ClientState } from './state.js';
import type { Reply } from './types.js';

/**
 * The shape of a client command (docs/client.md "Commands"), apart from the
 * table that holds them (commands.ts), so that other parts of the client —
 * file sharing's commands — can define commands without importing the table.
 */

/** Looking commands up: what a client-side command's handler may ask of the table. */
export interface CommandCatalogue {
  find(name: string): CommandSpec | undefined;
  all(): readonly CommandSpec[];
  names(): string[];
}

/** Who may run a command: no session, any session, the group owner, a group member, or handled by the client itself. */
export type CommandAuth = 'none' | 'session' | 'owner' | 'member' | 'local';

/** What a client-side command's handler is given. */
export interface LocalContext {
  /** The words after the command name, unquoted. */
  readonly args: readonly string[];
  /** The whole line as typed (trimmed). */
  readonly line: string;
  /** The session and user as they are now. */
  readonly state: ClientState;
  /** The client's options (e.g. `peerAddress` for file sharing); undefined when the runner was made without them. */
  readonly options: ClientOptions | undefined;
  readonly commands: CommandCatalogue;
  /** Aborts when the user stops waiting for the command (Ctrl-C) or the client leaves; `request` then gives up by itself. */
  readonly signal?: AbortSignal | undefined;
  /**
   * Sends one command line to the tracker, as a typed command would be:
   * with the current session and a fresh request id, failing over (and
   * retrying with the same id) when the tracker is lost. The answer
   * updates the session state. Throws `ClientError`s like `execute`.
   */
  request(line: string): Promise<Reply>;
  /** Shows a line to the user (above the prompt, or on stderr in scripts) while the command runs. */
  notice(text: string): void;
}

/** What a client-side command gives back: shown like an answer; `ok` false counts as a failed command. */
export interface LocalResult {
  ok: boolean;
  /** Text to show; nothing when absent. */
  text?: string;
  /** Leave the client after this command (`quit`). */
  quit?: boolean;
}

export type LocalHandler = (context: LocalContext) => LocalResult | Promise<LocalResult>;

export interface CommandSpec {
  /** The name as typed (lower case; the tracker matches names case-insensitively). */
  name: string;
  /** Argument synopsis, e.g. `<user> <password>`; empty when there are none. */
  args: string;
  summary: string;
  auth: CommandAuth;
  /** Other names for the same command. */
  aliases?: readonly string[];
  /** Example lines for `help <command>`. */
  examples?: readonly string[];
  /** Client-side commands only: what running it does. Without `run` the line goes to the tracker. */
  run?: LocalHandler;
}

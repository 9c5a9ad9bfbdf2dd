import { NO_SESSION, parseResponse, tokenize } from '@tracker-cluster/protocol';
import type { SessionId } from '@tracker-cluster/protocol';
import type { Reply } from './types.js';

/** What the client remembers between commands. */
export interface ClientState {
  /** The session to send with the next request; `0n` when logged out. */
  readonly session: SessionId;
  /** The user of that session, when the tracker has told us (login, whoami). */
  readonly user: string | undefined;
}

export const INITIAL_STATE: ClientState = Object.freeze({ session: NO_SESSION, user: undefined });

/** The user named by `logged in as <user> sessions=<n>` (login's answer text), if it is one. */
export function userFromLogin(text: string): string | undefined {
  const words = safeTokenize(text);
  if (words.length === 5 && words[0] === 'logged' && words[1] === 'in' && words[2] === 'as' && words[4]?.startsWith('sessions=')) {
    return words[3];
  }
  return undefined;
}

/** The user named by `<user> sessions=<n>` (whoami's answer text), if it is one. */
export function userFromWhoami(text: string): string | undefined {
  const words = safeTokenize(text);
  if (words.length === 2 && words[1]?.startsWith('sessions=')) return words[0];
  return undefined;
}

/**
 * The state after a response (PROTOCOL.md §2): the response's session field
 * is the session to use from now on, whatever the answer was. The user name
 * comes from `login` and `whoami` answers and is forgotten when the session
 * becomes 0 or changes to one we have not been told about.
 *
 * @param command the request's command name, lower case
 */
export function applyReply(state: ClientState, command: string, reply: Reply): ClientState {
  const session = reply.session;
  if (session === NO_SESSION) return { session, user: undefined };
  let user = session === state.session ? state.user : undefined;
  const response = parseResponse(reply.payload);
  if (response.ok) {
    const named =
      command === 'login' ? userFromLogin(response.text) : command === 'whoami' ? userFromWhoami(response.text) : undefined;
    if (named !== undefined) user = named;
  }
  return { session, user };
}

function safeTokenize(text: string): string[] {
  try {
    return tokenize(text);
  } catch {
    return [];
  }
}

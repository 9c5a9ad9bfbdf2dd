import { EVENT_PREFIX, parseResponse } from '@tracker-cluster/protocol';
import { formatAddress } from './address.js';
import type { TrackerAddress } from './address.js';
import type { ClientState } from './state.js';

/**
 * Everything the client shows. Plain text for now; colours, tables and
 * `--json` are to be added here, so the rest of the client never builds
 * output itself.
 */

/** A response as the tracker sent it: its first line, then each list row on its own line. */
export function formatReply(payload: string): string {
  return payload.replace(/\n+$/, '');
}

/** Whether a response payload is an `OK` answer. */
export function isOk(payload: string): boolean {
  return parseResponse(payload).ok;
}

/** An unasked `EVENT …` frame: `[event] join_request g1 bob`. */
export function formatEvent(payload: string): string {
  const body = payload.startsWith(EVENT_PREFIX) ? payload.slice(EVENT_PREFIX.length) : payload;
  return `[event] ${body.replace(/\n+$/, '')}`;
}

/** A message from the client itself (not from a tracker), for stderr. */
export function formatClientError(message: string): string {
  return `tracker-client: ${message}`;
}

/** The connection dropped between commands; the next command reconnects. */
export function formatIdleDisconnect(message: string): string {
  return formatClientError(`${message}; the next command reconnects`);
}

/** `help foo` for a command that does not exist. */
export function formatUnknownHelpTopic(topic: string): string {
  return `help: no such command "${topic}" (type "help" for the list)`;
}

/** `tracker> ` when logged out, `<user>@<host>:<port>> ` when logged in. */
export function formatPrompt(state: ClientState, address: TrackerAddress | undefined): string {
  if (state.session !== 0n && state.user !== undefined && address !== undefined) {
    return `${state.user}@${formatAddress(address)}> `;
  }
  return 'tracker> ';
}

import { isUtf8 } from 'node:buffer';
import { createHash } from 'node:crypto';
import { NO_SESSION, TrackerError, err, formatSessionId, tokenize } from '@tracker-cluster/protocol';
import type { Outcome, Reply, RequestContext, RequestId, Services } from '../services.js';
import { OrderedReply } from '../services.js';
import { createUser, login, logout, whoami } from './account.js';
import { ping, status } from './basic.js';
import type { Command } from './command.js';
import { usage } from './command.js';
import { filePeers, listFiles, stopShare, uploadFile } from './files.js';
import {
  acceptRequest,
  createGroup,
  joinGroup,
  leaveGroup,
  listGroups,
  listMembers,
  listRequests,
  rejectRequest,
} from './groups.js';
import { sessionExpiry, touchDue } from './session-ttl.js';

export const COMMANDS: ReadonlyMap<string, Command> = new Map(
  [
    ping,
    status,
    createUser,
    login,
    logout,
    whoami,
    createGroup,
    joinGroup,
    leaveGroup,
    listRequests,
    acceptRequest,
    rejectRequest,
    listGroups,
    listMembers,
    uploadFile,
    listFiles,
    filePeers,
    stopShare,
  ].map((c) => [c.name, c]),
);

/** A first word of the tracker-to-tracker link (`SYNC:`, in any case); never honoured on a client connection. */
function isSyncWord(word: string): boolean {
  // The colon is tested first: it rejects every command name at once.
  return word.length >= 5 && word.charCodeAt(4) === 0x3a && word.slice(0, 4).toUpperCase() === 'SYNC';
}

/** The request as dispatch sees it, before a handler runs. */
export interface Request {
  /**
   * The client connection that asked, as failed logins are counted per
   * connection: this tracker's connection id, or for a write a replica
   * forwarded, the link's and the replica's own connection id.
   */
  origin: string;
  session: bigint;
  payload: Buffer;
  /** The connection is over its request rate: answer RATE_LIMITED without running anything. */
  rateLimited?: boolean;
}

/**
 * Turns one request frame into its response: decodes and tokenizes the
 * payload, resolves the session, checks authentication and the argument
 * count once for every command, and runs the handler. Never throws: every
 * failure becomes an `ERR` reply. Synchronous answers are returned as they
 * are unless state they may have seen is not yet durable; commands that
 * decide late come back as an `OrderedReply`.
 */
export function dispatch(services: Services, request: Request, onSession?: (key: string) => void): Outcome {
  const ctx: RequestContext = { services, origin: request.origin, session: undefined };
  let answerSession = NO_SESSION;
  let expiresAt = 0;
  // Read only for a request with a session: the clock is not free, and most requests of a ping-heavy client have none.
  let now = 0;
  try {
    if (request.session !== NO_SESSION) {
      now = services.clock.now();
      const key = formatSessionId(request.session);
      const row = services.store.session(key);
      if (row && row.expires_at > now) {
        ctx.session = { id: request.session, key, user: row.user };
        answerSession = request.session;
        expiresAt = row.expires_at;
      }
    }
    if (request.rateLimited) throw new TrackerError('RATE_LIMITED', 'too many requests on this connection; slow down');
    // Any request carrying a live session presents and extends it, whatever comes of the request
    // (docs/protocol.md §4): an unknown command or a bad argument count is still the client's activity.
    if (ctx.session) {
      onSession?.(ctx.session.key);
      extendSession(services, ctx.session.key, expiresAt, now);
    }
    const { command, requestId } = splitRequestId(parse(request.payload), request.session);
    if (requestId) ctx.requestId = requestId;
    if (isSyncWord(command[0] as string)) {
      throw new TrackerError('FORBIDDEN', 'SYNC: messages are only accepted on an authenticated tracker link');
    }
    const spec = COMMANDS.get((command[0] as string).toLowerCase());
    if (!spec) throw new TrackerError('UNKNOWN_COMMAND', `unknown command ${JSON.stringify((command[0] as string).slice(0, 64))}; try ping, login, list_groups`);
    // Before the session check: a retried logout finds its session already ended.
    if (spec.write && requestId) {
      const earlier = rememberedAnswer(services, requestId);
      if (earlier) return earlier;
    }
    if (spec.auth && !ctx.session) throw new TrackerError('AUTH_REQUIRED', `${spec.name} needs a session: log in first`);
    const args = command.length === 1 ? [] : command.slice(1);
    if (args.length !== spec.args.length) throw new TrackerError('BAD_REQUEST', `usage: ${usage(spec)}`);
    if (spec.write && services.options.role !== 'primary') {
      if (!services.forward) throw new TrackerError('PRIMARY_UNAVAILABLE', `this tracker is a replica with no primary: send ${spec.name} to the primary`);
      // Held like a late-deciding command: later requests on this connection see its effect.
      return new OrderedReply(
        services.forward(request.session, request.payload, request.origin).then((r) => {
          if (r.session !== undefined && r.session !== NO_SESSION && r.session !== answerSession) onSession?.(formatSessionId(r.session));
          return r;
        }, failure(services, answerSession)),
      );
    }
    const result = spec.run(ctx, args);
    if (result instanceof Promise) {
      const reply = result.then(withSession(answerSession), failure(services, answerSession));
      if (requestId && spec.write) services.inFlight.start(requestId, reply);
      if (!spec.decidesLate) return reply;
      // A new session belongs to the connection that asked for it: its events start flowing at once.
      return new OrderedReply(
        reply.then((r) => {
          if (r.session !== undefined && r.session !== NO_SESSION && r.session !== answerSession) onSession?.(formatSessionId(r.session));
          return r;
        }),
      );
    }
    const reply = sessioned(result, answerSession);
    const barrier = services.log.barrier();
    return barrier ? barrier.then(() => reply, failure(services, answerSession)) : reply;
  } catch (error) {
    return failure(services, answerSession)(error);
  }
}

/** `@<client>:<n>`: 16 lowercase hex digits, a request number from 1 to 2^53-1 (docs/protocol.md §2). */
const REQUEST_ID = /^@([0-9a-f]{16}):([1-9][0-9]{0,15})$/;

/**
 * Takes the optional request id off the front of a request's words. Its
 * digest covers the frame's session id too: a retry is the same command under
 * the same session, so nobody else can replay a stored answer (which carries
 * the session it was given, a login's new one included).
 */
export function splitRequestId(words: string[], session: bigint): { command: string[]; requestId?: RequestId } {
  const first = words[0] as string;
  if (!first.startsWith('@')) return { command: words };
  const match = REQUEST_ID.exec(first);
  const n = match ? Number(match[2]) : 0;
  if (!match || !Number.isSafeInteger(n)) {
    throw new TrackerError('BAD_REQUEST', 'a request id is @<16 lowercase hex digits>:<number from 1 to 2^53-1>');
  }
  const command = words.slice(1);
  if (command.length === 0) throw new TrackerError('BAD_REQUEST', 'a request id must be followed by a command');
  const digest = createHash('sha256').update(JSON.stringify([session.toString(), ...command])).digest('hex').slice(0, 32);
  return { command, requestId: { client: match[1] as string, n, digest } };
}

/**
 * The stored answer when this request already ran (a retry), an error when
 * its number is stale or was used for another command or session, else
 * undefined. A retry that arrives while the first attempt is still running
 * waits for it.
 */
function rememberedAnswer(services: Services, id: RequestId): Outcome | undefined {
  const running = services.inFlight.find(id);
  if (running) {
    if (running.digest !== id.digest) throw reused(id);
    return new OrderedReply(running.reply);
  }
  const seen = services.store.clientRequest(id.client);
  if (!seen || seen.n < id.n) return undefined;
  if (seen.n > id.n) throw new TrackerError('BAD_REQUEST', `stale request number ${id.n}: this client's last write was ${seen.n}`);
  if (seen.digest !== id.digest) throw reused(id);
  const reply: Reply = { payload: seen.answer, session: BigInt(seen.session) };
  const barrier = services.log.barrier();
  return barrier ? barrier.then(() => reply) : reply;
}

function reused(id: RequestId): TrackerError {
  return new TrackerError('BAD_REQUEST', `request number ${id.n} was already used for another command or session`);
}

function parse(payload: Buffer): string[] {
  const line = requestLine(payload);
  const words = tokenize(line);
  if (words.length === 0) throw new TrackerError('BAD_REQUEST', 'empty request');
  return words;
}

/**
 * The request's one line of text, without a final `\n` or `\r\n`. Requests
 * are short and nearly always ASCII: one pass over the bytes checks that and
 * finds line breaks, and the text is then copied as Latin-1, which is the same
 * for ASCII; anything else goes through the full UTF-8 check and decoder.
 */
function requestLine(payload: Buffer): string {
  let end = payload.length;
  if (end > 0 && payload[end - 1] === 0x0a) end -= end > 1 && payload[end - 2] === 0x0d ? 2 : 1;
  let ascii = true;
  let breaks = false;
  for (let i = 0; i < end; i++) {
    const b = payload[i] as number;
    if (b >= 0x80) ascii = false;
    else if (b === 0x0a || b === 0x0d) breaks = true;
  }
  if (!ascii && !isUtf8(payload)) throw new TrackerError('BAD_REQUEST', 'payload is not valid UTF-8');
  if (breaks) throw new TrackerError('BAD_REQUEST', 'a request is one line');
  return payload.toString(ascii ? 'latin1' : 'utf8', 0, end);
}

/** The reply with the request's session when the handler named none (login and logout name theirs). */
function sessioned(reply: Reply, session: bigint): Reply {
  return reply.session === undefined ? { payload: reply.payload, session } : reply;
}

function withSession(session: bigint): (reply: Reply) => Reply {
  return (reply) => sessioned(reply, session);
}

function failure(services: Services, session: bigint): (error: unknown) => Reply {
  return (error) => {
    if (error instanceof TrackerError) return { payload: error.toPayload(), session };
    services.logger.error({ err: error }, 'request failed with an unexpected error');
    return { payload: err('INTERNAL', 'internal error; see the tracker log'), session };
  };
}

/** Sliding TTL (session-ttl.ts): any request carrying the session pushes its expiry out. */
function extendSession(services: Services, key: string, expiresAt: number, now: number): void {
  const { options, log } = services;
  if (!touchDue(expiresAt, now, options.sessionTtlMs)) return;
  const expires = sessionExpiry(now, options.sessionTtlMs);
  // Not awaited: a lost touch leaves the session its slack of one granularity (session-ttl.ts).
  if (options.role === 'primary') log.append({ type: 'sessions_touched', sessions: [[key, expires]] });
  else services.touch?.(key, expires);
}

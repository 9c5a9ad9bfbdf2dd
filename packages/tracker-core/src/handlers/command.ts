import { NO_SESSION } from '@tracker-cluster/protocol';
import type { Reply, RequestContext } from '../services.js';
import type { ChangeBody, RequestRecord } from '../state/changes.js';

/**
 * One command of PROTOCOL.md §3. `auth` is checked once by dispatch, before
 * `run`, as is the argument count, so a handler starts from valid input.
 */
export interface Command {
  name: string;
  /** Needs a live session. */
  auth: boolean;
  /** Argument names, for the count check and the usage text. */
  args: readonly string[];
  summary: string;
  /**
   * The handler awaits (scrypt) before it chooses its change. Later requests
   * on the same connection are held until it is answered, so that pipelined
   * requests take effect in the order they were sent (`create_user x p` then
   * `login x p` must find the user).
   */
  decidesLate?: boolean;
  /** Changes state: only the primary runs it (a replica answers PRIMARY_UNAVAILABLE until writes are forwarded). */
  write?: boolean;
  run(ctx: RequestContext, args: string[]): Reply | Promise<Reply>;
}

export function usage(command: Command): string {
  return [command.name, ...command.args.map((a) => `<${a}>`)].join(' ');
}

/** The session of a command that has `auth: true` (dispatch guarantees it). */
export function sessionOf(ctx: RequestContext): NonNullable<RequestContext['session']> {
  return ctx.session as NonNullable<RequestContext['session']>;
}

/** The user of a command that has `auth: true`. */
export function userOf(ctx: RequestContext): string {
  return sessionOf(ctx).user;
}

/**
 * Applies a write's change and answers once it is durable. The answer is
 * worked out before the change is appended because, when the client named
 * its request (`@<client>:<n>`), it is stored with the change: a retry of
 * that request, at either tracker, gets this answer instead of a second run.
 */
export async function commit(ctx: RequestContext, body: ChangeBody, reply: Reply): Promise<Reply> {
  await ctx.services.log.append(body, requestRecord(ctx, reply)).durable;
  return reply;
}

function requestRecord(ctx: RequestContext, reply: Reply): RequestRecord | undefined {
  const id = ctx.requestId;
  if (id === undefined) return undefined;
  const session = reply.session ?? ctx.session?.id ?? NO_SESSION;
  return { client: id.client, n: id.n, digest: id.digest, answer: reply.payload, session: session.toString(), at: ctx.services.clock.now() };
}

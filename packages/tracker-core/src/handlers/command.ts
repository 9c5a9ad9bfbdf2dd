import type { Reply, RequestContext } from '../services.js';

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

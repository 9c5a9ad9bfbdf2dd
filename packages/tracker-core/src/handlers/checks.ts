import { TrackerError, isValidName, isValidPassword } from '@tracker-cluster/protocol';
import type { RequestContext } from '../services.js';
import { userOf } from './command.js';

/**
 * The checks every handler family shares: argument syntax (BAD_REQUEST) and
 * the group and role checks (NO_SUCH_GROUP, NOT_OWNER, NOT_MEMBER), in the
 * order docs/protocol.md §2 gives.
 */

export function checkName(kind: string, name: string): void {
  if (!isValidName(name)) throw new TrackerError('BAD_REQUEST', `invalid ${kind} name: 1-32 characters of A-Z a-z 0-9 _ . -`);
}

export function checkPassword(password: string): void {
  if (!isValidPassword(password)) throw new TrackerError('BAD_REQUEST', 'invalid password: 1-256 characters');
}

/** The group, or NO_SUCH_GROUP. */
export function existingGroup(ctx: RequestContext, group: string): { name: string; owner: string } {
  checkName('group', group);
  const row = ctx.services.store.group(group);
  if (!row) throw new TrackerError('NO_SUCH_GROUP', `no group ${group}`);
  return row;
}

export function requireOwner(ctx: RequestContext, group: string): void {
  const row = existingGroup(ctx, group);
  if (row.owner !== userOf(ctx)) throw new TrackerError('NOT_OWNER', `only the owner of ${group} may do that`);
}

export function requireMember(ctx: RequestContext, group: string): void {
  existingGroup(ctx, group);
  if (!ctx.services.store.isMember(group, userOf(ctx))) throw new TrackerError('NOT_MEMBER', `you are not a member of ${group}`);
}

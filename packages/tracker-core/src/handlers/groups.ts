import { TrackerError, counted, formatRow, ok, okList } from '@tracker-cluster/protocol';
import type { Reply, RequestContext } from '../services.js';
import { checkName, existingGroup, requireMember, requireOwner } from './checks.js';
import type { Command } from './command.js';
import { commit, userOf } from './command.js';

export const createGroup: Command = {
  name: 'create_group',
  auth: true,
  args: ['group'],
  summary: 'create a group; you become its owner and first member',
  write: true,
  async run(ctx, [group]): Promise<Reply> {
    checkName('group', group as string);
    const { store, clock, options } = ctx.services;
    if (store.group(group as string)) throw new TrackerError('GROUP_EXISTS', `group ${group} already exists`);
    const user = userOf(ctx);
    const owned = store.ownedGroupCount(user);
    if (owned >= options.maxGroupsPerUser) throw new TrackerError('QUOTA_EXCEEDED', groupQuotaMessage(owned, options.maxGroupsPerUser));
    return commit(ctx, { type: 'group_created', group: group as string, owner: user, at: clock.now() }, { payload: ok('group created') });
  },
};

/**
 * A user may own more than the limit (ownership passes to the earliest member
 * when an owner leaves), so the message gives both counts.
 */
function groupQuotaMessage(owned: number, max: number): string {
  if (max === 0) return 'this tracker lets no user create groups (--max-groups-per-user 0)';
  return `you already own ${counted(owned, 'group')} and a user may own at most ${max}; leave one first`;
}

/** No command withdraws a request: the way out is an owner's answer. */
function requestQuotaMessage(pending: number, max: number): string {
  if (max === 0) return 'this tracker lets no user ask to join groups (--max-requests-per-user 0)';
  return `you already have ${counted(pending, 'pending join request')} and a user may have at most ${max}; wait until an owner accepts or rejects one`;
}

export const joinGroup: Command = {
  name: 'join_group',
  auth: true,
  args: ['group'],
  summary: 'ask the owner of a group to let you in',
  write: true,
  async run(ctx, [group]): Promise<Reply> {
    existingGroup(ctx, group as string);
    const { store, clock, options } = ctx.services;
    const user = userOf(ctx);
    if (store.isMember(group as string, user)) throw new TrackerError('ALREADY_MEMBER', `you are already a member of ${group}`);
    if (store.hasRequest(group as string, user)) throw new TrackerError('REQUEST_PENDING', `your request to join ${group} is pending`);
    const pending = store.pendingRequestCount(user);
    if (pending >= options.maxRequestsPerUser) throw new TrackerError('QUOTA_EXCEEDED', requestQuotaMessage(pending, options.maxRequestsPerUser));
    return commit(ctx, { type: 'join_requested', group: group as string, user, at: clock.now() }, { payload: ok('request sent') });
  },
};

export const leaveGroup: Command = {
  name: 'leave_group',
  auth: true,
  args: ['group'],
  summary: 'leave a group (ownership passes to the earliest-joined member)',
  write: true,
  async run(ctx, [group]): Promise<Reply> {
    requireMember(ctx, group as string);
    return commit(ctx, { type: 'member_left', group: group as string, user: userOf(ctx) }, { payload: ok(`left ${group}`) });
  },
};

export const listRequests: Command = {
  name: 'list_requests',
  auth: true,
  args: ['group'],
  summary: 'pending join requests, oldest first (owner only)',
  run(ctx, [group]): Reply {
    requireOwner(ctx, group as string);
    return { payload: okList(ctx.services.store.listRequests(group as string).map((u) => formatRow(u))) };
  },
};

function pendingRequest(ctx: RequestContext, group: string, user: string): void {
  checkName('user', user);
  requireOwner(ctx, group);
  if (!ctx.services.store.hasRequest(group, user)) throw new TrackerError('NO_SUCH_REQUEST', `no pending request from ${user} to join ${group}`);
}

export const acceptRequest: Command = {
  name: 'accept_request',
  auth: true,
  args: ['group', 'user'],
  summary: 'let a user into your group (owner only)',
  write: true,
  async run(ctx, [group, user]): Promise<Reply> {
    pendingRequest(ctx, group as string, user as string);
    const at = ctx.services.clock.now();
    return commit(ctx, { type: 'request_accepted', group: group as string, user: user as string, at }, { payload: ok(`${user} joined ${group}`) });
  },
};

export const rejectRequest: Command = {
  name: 'reject_request',
  auth: true,
  args: ['group', 'user'],
  summary: 'turn down a join request (owner only)',
  write: true,
  async run(ctx, [group, user]): Promise<Reply> {
    pendingRequest(ctx, group as string, user as string);
    return commit(ctx, { type: 'request_rejected', group: group as string, user: user as string }, { payload: ok('request rejected') });
  },
};

export const listGroups: Command = {
  name: 'list_groups',
  auth: true,
  args: [],
  summary: 'every group with its owner and member count, by name',
  run(ctx): Reply {
    const { cache, store } = ctx.services;
    const payload = cache.get('list_groups', () =>
      okList(store.listGroups().map((g) => formatRow(g.name, { owner: g.owner, members: g.members }))),
    );
    return { payload };
  },
};

export const listMembers: Command = {
  name: 'list_members',
  auth: true,
  args: ['group'],
  summary: 'members of a group with their role, by name (members only)',
  run(ctx, [group]): Reply {
    requireMember(ctx, group as string);
    const { store } = ctx.services;
    const owner = (store.group(group as string) as { owner: string }).owner;
    const rows = store.listMembers(group as string).map((m) => formatRow(m.user, { role: m.user === owner ? 'owner' : 'member' }));
    return { payload: okList(rows) };
  },
};

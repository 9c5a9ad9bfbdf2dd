import { quote } from '@tracker-cluster/protocol';
import type { StateStore } from '../store/store.js';
import type { Change } from './changes.js';

/** An event for the live sessions of some users (PROTOCOL.md §4); `text` follows `EVENT `. */
export interface DomainEvent {
  users: string[];
  text: string;
}

/**
 * Applies one change to the tables. Deterministic: it reads only the store
 * and the change — never the clock or a random source — so the primary and
 * the replica reach the same state from the same log. The caller owns the
 * transaction. Returns the events the change implies.
 */
export function applyChange(store: StateStore, change: Change): DomainEvent[] {
  const events = applyBody(store, change);
  if (change.req !== undefined) store.putClientRequest(change.req);
  return events;
}

function applyBody(store: StateStore, change: Change): DomainEvent[] {
  const c = change.body;
  switch (c.type) {
    case 'user_created':
      store.insertUser(c.user, c.salt, c.hash, c.params, c.at);
      return [];
    case 'session_opened':
      for (const id of c.evicted ?? []) endSession(store, id);
      store.insertSession(c.session, c.user, c.at, c.expires);
      return [];
    case 'session_closed':
      endSession(store, c.session);
      return [];
    case 'sessions_touched':
      for (const [id, expires] of c.sessions) store.touchSession(id, expires);
      return [];
    case 'sessions_expired':
      for (const id of c.sessions) endSession(store, id);
      return [];
    case 'promoted':
      store.setMeta('epoch', change.epoch);
      store.setMeta('history_id', c.history);
      return [];
    case 'requests_forgotten':
      store.forgetClientRequests(c.before);
      return [];
    case 'group_created':
      store.insertGroup(c.group, c.owner, c.at);
      store.insertMember(c.group, c.owner, change.seq, c.at);
      return [];
    case 'join_requested': {
      store.insertRequest(c.group, c.user, change.seq, c.at);
      const owner = store.group(c.group)?.owner;
      return owner ? [{ users: [owner], text: `join_request ${c.group} ${c.user}` }] : [];
    }
    case 'request_accepted':
      store.deleteRequest(c.group, c.user);
      store.insertMember(c.group, c.user, change.seq, c.at);
      return [{ users: [c.user], text: `request_accepted ${c.group}` }];
    case 'request_rejected':
      store.deleteRequest(c.group, c.user);
      return [{ users: [c.user], text: `request_rejected ${c.group}` }];
    case 'member_left':
      return applyLeave(store, c.group, c.user);
    case 'file_shared': {
      if (!store.file(c.group, c.file)) {
        store.insertFile(c.group, { name: c.file, size: c.size, sha256: c.sha256, piece_size: c.piece_size, hashes: c.hashes });
      }
      store.upsertShare(c.session, c.group, c.file, c.user, c.peer, change.seq);
      const others = store.listMembers(c.group).map((m) => m.user).filter((u) => u !== c.user);
      return others.length > 0 ? [{ users: others, text: `file_shared ${c.group} ${quote(c.file)} ${c.user}` }] : [];
    }
    case 'share_stopped':
      store.deleteShare(c.session, c.group, c.file);
      return [];
  }
}

/** Logout, expiry and eviction end a session alike: its shares end with it, and nobody is told. */
function endSession(store: StateStore, session: string): void {
  store.deleteSharesOfSession(session);
  store.deleteSession(session);
}

function applyLeave(store: StateStore, group: string, user: string): DomainEvent[] {
  const before = store.group(group);
  if (!before || !store.deleteMember(group, user)) return [];
  store.deleteSharesOfMember(group, user);
  const remaining = store.listMembers(group).map((m) => m.user);
  if (remaining.length === 0) {
    store.deleteGroup(group);
    return [];
  }
  const events: DomainEvent[] = [{ users: remaining, text: `member_left ${group} ${user}` }];
  if (before.owner === user) {
    const heir = store.earliestMember(group) as string;
    store.setOwner(group, heir);
    events.push({ users: remaining, text: `owner_changed ${group} ${heir}` });
  }
  return events;
}

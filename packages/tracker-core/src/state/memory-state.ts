import type { FileListRow, FileRow, GroupRow, MemberRow, SessionRow, StateStore, Store, UserRow } from '../store/store.js';
import type { RequestRecord } from './changes.js';

/** Sessions a replica extends on its own at most (~100 bytes each); past it the least recently used is dropped. */
const MAX_LOCAL_EXPIRIES = 100_000;

/** Raised where SQLite would fail a statement on a PRIMARY KEY: the change is wrong for this state. */
export class StateConstraintError extends Error {
  readonly code = 'SQLITE_CONSTRAINT_PRIMARYKEY';
  constructor(table: string, key: string) {
    super(`UNIQUE constraint failed: ${table} (${key})`);
    this.name = 'StateConstraintError';
  }
}

interface UserEntry extends UserRow {
  created_at: number;
}
interface SessionEntry extends SessionRow {
  created_at: number;
}
interface ShareEntry {
  session: string;
  grp: string;
  name: string;
  user: string;
  peer: string;
  seq: number;
}

/**
 * The state's rows in maps, with the answers of every `Store` query: the
 * same rows in the same order. Nothing here touches a file: whoever holds
 * one loads it with `MemoryState.load` and keeps it written.
 *
 * Each table is its own map, as in SQLite, where no foreign key ties a
 * member, request, file or share to its group: `apply` keeps them
 * consistent, and this class must end where SQLite would whatever the
 * changes. Orders follow SQLite's BINARY collation (UTF-8 bytes, which is
 * code point order), not JavaScript's UTF-16 order.
 */
export class MemoryState implements StateStore {
  private readonly meta = new Map<string, string>();
  private readonly users = new Map<string, UserEntry>();
  private readonly sessions = new Map<string, SessionEntry>();
  private readonly sessionsByUser = new Map<string, Set<string>>();
  private readonly groups = new Map<string, { owner: string; created_at: number }>();
  /** Group names by owner: --max-groups-per-user is checked at every create_group. */
  private readonly groupsByOwner = new Map<string, Set<string>>();
  /** By group, then user; a joined_seq is unique (one change, one seq). */
  private readonly members = new Map<string, Map<string, { joined_seq: number; joined_at: number }>>();
  /** By group, then user. */
  private readonly requests = new Map<string, Map<string, { seq: number; requested_at: number }>>();
  /** The groups of each user's pending requests: --max-requests-per-user is checked at every join_group. */
  private readonly requestsByUser = new Map<string, Set<string>>();
  /** By group, then file name. */
  private readonly files = new Map<string, Map<string, FileRow>>();
  /** Shares by `group \0 file`, then session. */
  private readonly sharesByFile = new Map<string, Map<string, ShareEntry>>();
  /** Shares by session, then `group \0 file`. */
  private readonly sharesBySession = new Map<string, Map<string, ShareEntry>>();
  /**
   * How many of each user's shares name each file, and sit in each session:
   * --max-shares-per-user is checked at every upload_file, so counting a
   * user's files must not walk the user's shares (see `liveSharedFileCount`).
   */
  private readonly sharedFilesByUser = new Map<string, Map<string, number>>();
  private readonly shareSessionsByUser = new Map<string, Map<string, number>>();
  private readonly sharesByGroup = new Map<string, Set<ShareEntry>>();
  private readonly clientRequests = new Map<string, RequestRecord>();
  /** `listGroups`' names in order, until a group is added or removed. */
  private sortedGroupNames: string[] | undefined;
  /** How to undo each write since `begin()`, oldest first; undefined when not recording. */
  private journal: Array<() => void> | undefined;
  /**
   * Session extensions granted here that the log does not hold (yet): a
   * replica keeps its clients' sessions alive with them while its primary
   * cannot be reached (docs/protocol.md §6). Reads count a session live until
   * the later of its row's expiry and this one. No table holds them and no
   * change makes them, so the tables stay the log's. In order of last
   * extension, so that the first is the one to drop when full.
   */
  private readonly localExpiries = new Map<string, number>();

  /** Reads every row of a state file. */
  static load(store: Store): MemoryState {
    const state = new MemoryState();
    state.fill(store);
    return state;
  }

  /**
   * Forgets every row and reads a state file again (a snapshot was
   * installed). The object stays the same one: the handlers hold it.
   */
  reload(store: Store): void {
    if (this.journal !== undefined) throw new Error('MemoryState.reload inside begin()/end()');
    for (const table of [this.meta, this.users, this.sessions, this.sessionsByUser, this.groups, this.members, this.requests, this.files]) table.clear();
    for (const index of [this.groupsByOwner, this.requestsByUser]) index.clear();
    for (const table of [this.sharesByFile, this.sharesBySession, this.sharedFilesByUser, this.shareSessionsByUser, this.sharesByGroup, this.clientRequests]) table.clear();
    this.sortedGroupNames = undefined;
    this.fill(store);
  }

  private fill(store: Store): void {
    const rows = <T>(sql: string): Iterable<T> => store.db.prepare(sql).iterate() as Iterable<T>;
    for (const r of rows<{ key: string; value: string }>('SELECT key, value FROM meta')) this.meta.set(r.key, r.value);
    for (const r of rows<UserEntry>('SELECT name, salt, hash, params, created_at FROM users')) {
      this.insertUser(r.name, r.salt, r.hash, r.params, r.created_at);
    }
    for (const r of rows<SessionEntry>('SELECT id, user, created_at, expires_at FROM sessions')) {
      this.insertSession(r.id, r.user, r.created_at, r.expires_at);
    }
    for (const r of rows<{ name: string; owner: string; created_at: number }>('SELECT name, owner, created_at FROM groups')) {
      this.insertGroup(r.name, r.owner, r.created_at);
    }
    for (const r of rows<{ grp: string; user: string; joined_seq: number; joined_at: number }>('SELECT grp, user, joined_seq, joined_at FROM members')) {
      this.insertMember(r.grp, r.user, r.joined_seq, r.joined_at);
    }
    for (const r of rows<{ grp: string; user: string; seq: number; requested_at: number }>(
      'SELECT grp, user, seq, requested_at FROM requests ORDER BY seq',
    )) {
      this.insertRequest(r.grp, r.user, r.seq, r.requested_at);
    }
    for (const r of rows<FileRow & { grp: string }>('SELECT grp, name, size, sha256, piece_size, hashes FROM files')) {
      this.insertFile(r.grp, { name: r.name, size: r.size, sha256: r.sha256, piece_size: r.piece_size, hashes: r.hashes });
    }
    for (const r of rows<ShareEntry>('SELECT session, grp, name, user, peer, seq FROM shares ORDER BY seq')) {
      this.upsertShare(r.session, r.grp, r.name, r.user, r.peer, r.seq);
    }
    for (const r of rows<RequestRecord>('SELECT client, n, digest, answer, session, at FROM client_requests')) this.putClientRequest(r);
  }

  getMeta(key: string): string | undefined {
    return this.meta.get(key);
  }

  // --- reads ------------------------------------------------------------

  user(name: string): UserRow | undefined {
    const u = this.users.get(name);
    return u && { name: u.name, salt: u.salt, hash: u.hash, params: u.params };
  }
  session(id: string): SessionRow | undefined {
    const s = this.sessions.get(id);
    return s && { id: s.id, user: s.user, expires_at: this.expiryOf(s) };
  }
  liveSessionCount(user: string, now: number): number {
    let n = 0;
    for (const id of this.sessionsByUser.get(user) ?? []) if (this.isLive(id, now)) n++;
    return n;
  }
  liveSessionsOf(user: string, now: number): string[] {
    const ids: string[] = [];
    for (const id of this.sessionsByUser.get(user) ?? []) if (this.isLive(id, now)) ids.push(id);
    return ids.sort(byBytes);
  }
  /**
   * The `limit` sessions that expired first (by expiry, then id), oldest first. Runs on the event
   * loop at every purge: only those `limit` are kept (a bounded heap) and sorted, never every
   * expired session, since 100,000 sessions that expire together would otherwise be sorted again
   * at each purge until the last of them is gone.
   */
  expiredSessions(now: number, limit: number): string[] {
    if (limit <= 0) return [];
    const heap = new ExpiryHeap();
    for (const s of this.sessions.values()) {
      const expires = this.expiryOf(s);
      if (expires > now) continue;
      if (heap.size < limit) heap.push({ id: s.id, expires });
      else if (expiresBefore({ id: s.id, expires }, heap.top)) heap.replaceTop({ id: s.id, expires });
    }
    return heap
      .items()
      .sort((a, b) => (expiresBefore(a, b) ? -1 : 1))
      .map((e) => e.id);
  }
  clientRequest(client: string): RequestRecord | undefined {
    const r = this.clientRequests.get(client);
    return r && { ...r };
  }
  oldestClientRequest(): number | undefined {
    let oldest: number | undefined;
    for (const r of this.clientRequests.values()) if (oldest === undefined || r.at < oldest) oldest = r.at;
    return oldest;
  }
  group(name: string): { name: string; owner: string } | undefined {
    const g = this.groups.get(name);
    return g && { name, owner: g.owner };
  }
  isMember(group: string, user: string): boolean {
    return this.members.get(group)?.has(user) ?? false;
  }
  hasRequest(group: string, user: string): boolean {
    return this.requests.get(group)?.has(user) ?? false;
  }
  ownedGroupCount(user: string): number {
    return this.groupsByOwner.get(user)?.size ?? 0;
  }
  pendingRequestCount(user: string): number {
    return this.requestsByUser.get(user)?.size ?? 0;
  }
  listGroups(): GroupRow[] {
    this.sortedGroupNames ??= [...this.groups.keys()].sort(byBytes);
    return this.sortedGroupNames.map((name) => ({
      name,
      owner: (this.groups.get(name) as { owner: string }).owner,
      members: this.members.get(name)?.size ?? 0,
    }));
  }
  listMembers(group: string): MemberRow[] {
    const rows = [...(this.members.get(group) ?? [])].map(([user, m]) => ({ user, joined_seq: m.joined_seq }));
    return rows.sort((a, b) => byBytes(a.user, b.user));
  }
  listRequests(group: string): string[] {
    const rows = [...(this.requests.get(group) ?? [])];
    return rows.sort((a, b) => a[1].seq - b[1].seq).map(([user]) => user);
  }
  earliestMember(group: string): string | undefined {
    let earliest: string | undefined;
    let seq = Infinity;
    for (const [user, m] of this.members.get(group) ?? []) {
      if (m.joined_seq < seq) {
        seq = m.joined_seq;
        earliest = user;
      }
    }
    return earliest;
  }
  file(group: string, name: string): FileRow | undefined {
    const f = this.files.get(group)?.get(name);
    return f && { ...f };
  }
  hasShare(session: string, group: string, name: string): boolean {
    return this.sharesBySession.get(session)?.has(shareKey(group, name)) ?? false;
  }
  /**
   * The files the user shares from a live session. Each file counts once,
   * however many sessions share it. While every session holding the user's
   * shares is live, this costs one look per session; only between a
   * session's expiry and its purge does it walk that session's shares.
   */
  liveSharedFileCount(user: string, now: number): number {
    const files = this.sharedFilesByUser.get(user);
    if (files === undefined) return 0;
    const dead: string[] = [];
    for (const session of this.shareSessionsByUser.get(user)?.keys() ?? []) if (!this.isLive(session, now)) dead.push(session);
    if (dead.length === 0) return files.size;
    // A file still counts if one of its shares is in a live session: fewer shares in dead ones than in all.
    const inDead = new Map<string, number>();
    for (const session of dead) {
      for (const [key, sh] of this.sharesBySession.get(session) ?? []) if (sh.user === user) inDead.set(key, (inDead.get(key) ?? 0) + 1);
    }
    let n = files.size;
    for (const [key, k] of inDead) if (files.get(key) === k) n--;
    return n;
  }
  userSharesLive(user: string, group: string, name: string, now: number): boolean {
    for (const sh of this.sharesByFile.get(shareKey(group, name))?.values() ?? []) if (sh.user === user && this.isLive(sh.session, now)) return true;
    return false;
  }
  liveSeeders(group: string, name: string, now: number): number {
    let n = 0;
    for (const sh of this.sharesByFile.get(shareKey(group, name))?.values() ?? []) if (this.isLive(sh.session, now)) n++;
    return n;
  }
  listLiveFiles(group: string, now: number): FileListRow[] {
    const rows: FileListRow[] = [];
    for (const [name, f] of this.files.get(group) ?? []) {
      const seeders = this.liveSeeders(group, name, now);
      if (seeders > 0) rows.push({ name, size: f.size, sha256: f.sha256, seeders });
    }
    return rows.sort((a, b) => byBytes(a.name, b.name));
  }
  livePeers(group: string, name: string, now: number): Array<{ user: string; peer: string }> {
    const peers: ShareEntry[] = [];
    for (const sh of this.sharesByFile.get(shareKey(group, name))?.values() ?? []) {
      if (this.isLive(sh.session, now)) peers.push(sh);
    }
    return peers.sort((a, b) => a.seq - b.seq).map((sh) => ({ user: sh.user, peer: sh.peer }));
  }
  counts(): { users: number; sessions: number; groups: number } {
    return { users: this.users.size, sessions: this.sessions.size, groups: this.groups.size };
  }
  /** For metrics: the sessions live at `now`, and the shares held by them. */
  liveCounts(now: number): { users: number; groups: number; liveSessions: number; shares: number } {
    let liveSessions = 0;
    let shares = 0;
    for (const s of this.sessions.values()) {
      if (this.expiryOf(s) <= now) continue;
      liveSessions++;
      shares += this.sharesBySession.get(s.id)?.size ?? 0;
    }
    return { users: this.users.size, groups: this.groups.size, liveSessions, shares };
  }

  // --- local extensions ---------------------------------------------------

  /** Extends a session here, outside the log (see `localExpiries`). */
  extendLocally(id: string, expires: number): void {
    const s = this.sessions.get(id);
    if (s === undefined || expires <= this.expiryOf(s)) return;
    this.localExpiries.delete(id);
    if (this.localExpiries.size >= MAX_LOCAL_EXPIRIES) {
      const first = this.localExpiries.keys().next();
      if (!first.done) this.localExpiries.delete(first.value);
    }
    this.localExpiries.set(id, expires);
  }

  /**
   * The local extensions still ahead of their session's row, in order of
   * last extension; forgets those the log has caught up with or whose
   * session ended.
   */
  settleLocalExtensions(): Array<[session: string, expires: number]> {
    const ahead: Array<[string, number]> = [];
    for (const [id, expires] of this.localExpiries) {
      const s = this.sessions.get(id);
      if (s !== undefined && expires > s.expires_at) ahead.push([id, expires]);
      else this.localExpiries.delete(id);
    }
    return ahead;
  }

  // --- undo ---------------------------------------------------------------

  /**
   * Starts recording how to undo every write, until `end()`: a batch that
   * cannot be committed, or a change that throws halfway, is taken back with
   * `undoTo` instead of rebuilding the state from its file and the log.
   */
  begin(): void {
    this.journal = [];
  }
  /** Where the journal stands: `undoTo` this to take back what follows. */
  mark(): number {
    return this.journal?.length ?? 0;
  }
  /** Undoes the writes recorded since `mark`, newest first. */
  undoTo(mark: number): void {
    const journal = this.journal;
    if (journal === undefined) throw new Error('MemoryState.undoTo outside begin()/end()');
    while (journal.length > mark) (journal.pop() as () => void)();
  }
  /** Keeps every write so far for good and stops recording. */
  end(): void {
    this.journal = undefined;
  }

  // --- writes (only `apply` and `load` call these) -------------------------

  setMeta(key: string, value: string | number): void {
    this.setIn(this.meta, key, String(value));
  }
  insertUser(name: string, salt: string, hash: string, params: string, at: number): void {
    if (this.users.has(name)) throw new StateConstraintError('users', name);
    this.users.set(name, { name, salt, hash, params, created_at: at });
    this.journal?.push(() => this.users.delete(name));
  }
  insertSession(id: string, user: string, at: number, expires: number): void {
    if (this.sessions.has(id)) throw new StateConstraintError('sessions', id);
    const s: SessionEntry = { id, user, created_at: at, expires_at: expires };
    this.linkSession(s);
    this.journal?.push(() => this.unlinkSession(s));
  }
  deleteSession(id: string): boolean {
    const s = this.sessions.get(id);
    if (s === undefined) return false;
    this.unlinkSession(s);
    this.journal?.push(() => this.linkSession(s));
    return true;
  }
  touchSession(id: string, expires: number): void {
    const s = this.sessions.get(id);
    if (s === undefined) return;
    this.assign(s, 'expires_at', expires);
  }
  insertGroup(name: string, owner: string, at: number): void {
    if (this.groups.has(name)) throw new StateConstraintError('groups', name);
    const g = { owner, created_at: at };
    this.groups.set(name, g);
    this.sortedGroupNames = undefined;
    this.journal?.push(() => {
      this.groups.delete(name);
      this.sortedGroupNames = undefined;
    });
    this.indexAdd(this.groupsByOwner, owner, name);
  }
  setOwner(group: string, owner: string): void {
    const g = this.groups.get(group);
    if (g === undefined) return;
    this.indexRemove(this.groupsByOwner, g.owner, group);
    this.assign(g, 'owner', owner);
    this.indexAdd(this.groupsByOwner, owner, group);
  }
  /** The group, its requests, shares and files; its members are left, as `Store.deleteGroup` leaves them. */
  deleteGroup(group: string): void {
    const g = this.groups.get(group);
    if (g !== undefined) {
      this.groups.delete(group);
      this.sortedGroupNames = undefined;
      this.journal?.push(() => {
        this.groups.set(group, g);
        this.sortedGroupNames = undefined;
      });
      this.indexRemove(this.groupsByOwner, g.owner, group);
    }
    for (const user of this.requests.get(group)?.keys() ?? []) this.indexRemove(this.requestsByUser, user, group);
    this.detach(this.requests, group);
    for (const sh of [...(this.sharesByGroup.get(group) ?? [])]) this.deleteShareEntry(sh);
    this.detach(this.files, group);
  }
  insertMember(group: string, user: string, seq: number, at: number): void {
    if (this.members.get(group)?.has(user)) throw new StateConstraintError('members', `${group}, ${user}`);
    this.putIn(this.members, group, user, { joined_seq: seq, joined_at: at });
  }
  deleteMember(group: string, user: string): boolean {
    return this.deleteIn(this.members, group, user);
  }
  insertFile(group: string, file: FileRow): void {
    if (this.files.get(group)?.has(file.name)) throw new StateConstraintError('files', `${group}, ${file.name}`);
    this.putIn(this.files, group, file.name, { name: file.name, size: file.size, sha256: file.sha256, piece_size: file.piece_size, hashes: file.hashes });
  }
  upsertShare(session: string, group: string, name: string, user: string, peer: string, seq: number): void {
    const existing = this.sharesBySession.get(session)?.get(shareKey(group, name));
    if (existing !== undefined) {
      this.assign(existing, 'peer', peer);
      return;
    }
    const share: ShareEntry = { session, grp: group, name, user, peer, seq };
    this.linkShare(share);
    this.journal?.push(() => this.unlinkShare(share));
  }
  /** Ends one share; drops the file when nobody shares it any more. */
  deleteShare(session: string, group: string, name: string): void {
    const share = this.sharesBySession.get(session)?.get(shareKey(group, name));
    if (share !== undefined) this.deleteShareEntry(share);
    if (!this.sharesByFile.has(shareKey(group, name))) this.deleteIn(this.files, group, name);
  }
  deleteSharesOfSession(session: string): void {
    for (const sh of [...(this.sharesBySession.get(session)?.values() ?? [])]) this.deleteShare(session, sh.grp, sh.name);
  }
  deleteSharesOfMember(group: string, user: string): void {
    for (const sh of [...(this.sharesByGroup.get(group) ?? [])]) if (sh.user === user) this.deleteShare(sh.session, group, sh.name);
  }
  insertRequest(group: string, user: string, seq: number, at: number): void {
    if (this.requests.get(group)?.has(user)) throw new StateConstraintError('requests', `${group}, ${user}`);
    this.putIn(this.requests, group, user, { seq, requested_at: at });
    this.indexAdd(this.requestsByUser, user, group);
  }
  deleteRequest(group: string, user: string): boolean {
    if (!this.deleteIn(this.requests, group, user)) return false;
    this.indexRemove(this.requestsByUser, user, group);
    return true;
  }
  putClientRequest(r: RequestRecord): void {
    this.setIn(this.clientRequests, r.client, { client: r.client, n: r.n, digest: r.digest, answer: r.answer, session: r.session, at: r.at });
  }
  forgetClientRequests(before: number): void {
    for (const [client, r] of this.clientRequests) {
      if (r.at >= before) continue;
      this.clientRequests.delete(client);
      this.journal?.push(() => this.clientRequests.set(client, r));
    }
  }

  // --- the maps ---------------------------------------------------------------

  private isLive(session: string, now: number): boolean {
    const s = this.sessions.get(session);
    return s !== undefined && this.expiryOf(s) > now;
  }

  private expiryOf(s: SessionEntry): number {
    const local = this.localExpiries.get(s.id);
    return local !== undefined && local > s.expires_at ? local : s.expires_at;
  }

  private linkSession(s: SessionEntry): void {
    this.sessions.set(s.id, s);
    entry(this.sessionsByUser, s.user, newSet).add(s.id);
  }
  private unlinkSession(s: SessionEntry): void {
    this.sessions.delete(s.id);
    removeFrom(this.sessionsByUser, s.user, s.id);
  }

  private deleteShareEntry(share: ShareEntry): void {
    this.unlinkShare(share);
    this.journal?.push(() => this.linkShare(share));
  }
  private linkShare(share: ShareEntry): void {
    const key = shareKey(share.grp, share.name);
    entry(this.sharesByFile, key, newMap).set(share.session, share);
    entry(this.sharesBySession, share.session, newMap).set(key, share);
    addCount(this.sharedFilesByUser, share.user, key);
    addCount(this.shareSessionsByUser, share.user, share.session);
    entry(this.sharesByGroup, share.grp, newSet).add(share);
  }
  private unlinkShare(share: ShareEntry): void {
    const key = shareKey(share.grp, share.name);
    deleteFrom(this.sharesByFile, key, share.session);
    deleteFrom(this.sharesBySession, share.session, key);
    removeCount(this.sharedFilesByUser, share.user, key);
    removeCount(this.shareSessionsByUser, share.user, share.session);
    removeFrom(this.sharesByGroup, share.grp, share);
  }

  /** Adds a value to a secondary index, recording its undo. */
  private indexAdd(index: Map<string, Set<string>>, key: string, value: string): void {
    entry(index, key, newSet<string>).add(value);
    this.journal?.push(() => removeFrom(index, key, value));
  }
  /** Removes a value from a secondary index, recording its undo. */
  private indexRemove(index: Map<string, Set<string>>, key: string, value: string): void {
    if (!index.get(key)?.has(value)) return;
    removeFrom(index, key, value);
    this.journal?.push(() => entry(index, key, newSet<string>).add(value));
  }

  /** Sets a key of a map, recording its undo (the value before, or no key). */
  private setIn<V>(map: Map<string, V>, key: string, value: V): void {
    const before = map.get(key);
    map.set(key, value);
    this.journal?.push(() => (before === undefined ? map.delete(key) : map.set(key, before)));
  }
  /** Sets one field of an entry, recording its undo. */
  private assign<T, K extends keyof T>(target: T, key: K, value: T[K]): void {
    const before = target[key];
    target[key] = value;
    this.journal?.push(() => (target[key] = before));
  }
  /** Sets a row of a per-group table, recording its undo. */
  private putIn<V>(table: Map<string, Map<string, V>>, group: string, key: string, value: V): void {
    entry(table, group, newMap).set(key, value);
    this.journal?.push(() => deleteFrom(table, group, key));
  }
  /** Deletes a row of a per-group table, recording its undo. */
  private deleteIn<V>(table: Map<string, Map<string, V>>, group: string, key: string): boolean {
    const value = table.get(group)?.get(key);
    if (value === undefined) return false;
    deleteFrom(table, group, key);
    this.journal?.push(() => entry(table, group, newMap).set(key, value));
    return true;
  }
  /** Deletes every row of a group from a per-group table, recording its undo. */
  private detach<V>(table: Map<string, Map<string, V>>, group: string): void {
    const rows = table.get(group);
    if (rows === undefined) return;
    table.delete(group);
    this.journal?.push(() => table.set(group, rows));
  }
}

function shareKey(group: string, name: string): string {
  return `${group}\0${name}`;
}

const SURROGATE = /[\uD800-\uDFFF]/;

/** SQLite's BINARY order for TEXT: UTF-8 bytes, that is code points (JavaScript compares UTF-16 units). */
export function byBytes(a: string, b: string): number {
  if (SURROGATE.test(a) || SURROGATE.test(b)) return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
  return a < b ? -1 : a > b ? 1 : 0;
}

const newMap = <K, V>(): Map<K, V> => new Map<K, V>();
const newSet = <V>(): Set<V> => new Set<V>();

/** The value under `key`, made first if there is none. */
function entry<K, V>(map: Map<K, V>, key: K, make: () => V): V {
  let value = map.get(key);
  if (value === undefined) {
    value = make();
    map.set(key, value);
  }
  return value;
}

/** Deletes `inner` from the map under `key`, and the map once it is empty. */
function deleteFrom<K, I, V>(map: Map<K, Map<I, V>>, key: K, inner: I): boolean {
  const m = map.get(key);
  if (m === undefined || !m.delete(inner)) return false;
  if (m.size === 0) map.delete(key);
  return true;
}

function removeFrom<K, V>(map: Map<K, Set<V>>, key: K, value: V): void {
  const set = map.get(key);
  if (set === undefined) return;
  set.delete(value);
  if (set.size === 0) map.delete(key);
}

/** Counts one more `inner` under `key`. */
function addCount<K, I>(map: Map<K, Map<I, number>>, key: K, inner: I): void {
  const counts = entry(map, key, newMap<I, number>);
  counts.set(inner, (counts.get(inner) ?? 0) + 1);
}

/** Counts one `inner` fewer under `key`, forgetting counts that reach 0 and maps that become empty. */
function removeCount<K, I>(map: Map<K, Map<I, number>>, key: K, inner: I): void {
  const n = map.get(key)?.get(inner) ?? 0;
  if (n > 1) (map.get(key) as Map<I, number>).set(inner, n - 1);
  else deleteFrom(map, key, inner);
}

interface Expiry {
  id: string;
  expires: number;
}

/** The purge order: the earlier expiry first, then the lower id (bytewise). */
function expiresBefore(a: Expiry, b: Expiry): boolean {
  return a.expires !== b.expires ? a.expires < b.expires : byBytes(a.id, b.id) < 0;
}

/** A binary max-heap by purge order: its top is the entry that would be purged last. */
class ExpiryHeap {
  private readonly a: Expiry[] = [];
  get size(): number {
    return this.a.length;
  }
  get top(): Expiry {
    return this.a[0] as Expiry;
  }
  items(): Expiry[] {
    return this.a;
  }
  push(e: Expiry): void {
    const a = this.a;
    a.push(e);
    let i = a.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!expiresBefore(a[parent] as Expiry, e)) break;
      a[i] = a[parent] as Expiry;
      i = parent;
    }
    a[i] = e;
  }
  replaceTop(e: Expiry): void {
    const a = this.a;
    const n = a.length;
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= n) break;
      const right = left + 1;
      const child = right < n && expiresBefore(a[left] as Expiry, a[right] as Expiry) ? right : left;
      if (!expiresBefore(e, a[child] as Expiry)) break;
      a[i] = a[child] as Expiry;
      i = child;
    }
    a[i] = e;
  }
}

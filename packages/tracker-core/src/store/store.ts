import Database from 'better-sqlite3';
import type { Database as Db, Statement } from 'better-sqlite3';
import type { SqliteSynchronous } from '../options.js';
import type { RequestRecord } from '../state/changes.js';
import { FALLBACK_AUTOCHECKPOINT_PAGES } from './checkpointer.js';
import { MIGRATIONS, migrate } from './schema.js';

export interface UserRow {
  name: string;
  salt: string;
  hash: string;
  params: string;
}
export interface SessionRow {
  id: string;
  user: string;
  expires_at: number;
}
export interface GroupRow {
  name: string;
  owner: string;
  members: number;
}
export interface FileRow {
  name: string;
  size: number;
  sha256: string;
  piece_size: number;
  hashes: string;
}
export interface FileListRow {
  name: string;
  size: number;
  sha256: string;
  seeders: number;
}
export interface MemberRow {
  user: string;
  joined_seq: number;
}

/**
 * What `applyChange` and the handlers use of the state: the reads and writes
 * of `Store`, whatever holds the rows. `Store` is the SQLite state file;
 * `MemoryState` (state/memory-state.ts) holds the same rows in maps.
 */
export type StateStore = Pick<
  Store,
  | 'getMeta'
  | 'setMeta'
  | 'user'
  | 'session'
  | 'liveSessionCount'
  | 'liveSessionsOf'
  | 'expiredSessions'
  | 'clientRequest'
  | 'oldestClientRequest'
  | 'putClientRequest'
  | 'forgetClientRequests'
  | 'group'
  | 'isMember'
  | 'hasRequest'
  | 'ownedGroupCount'
  | 'pendingRequestCount'
  | 'listGroups'
  | 'listMembers'
  | 'listRequests'
  | 'earliestMember'
  | 'file'
  | 'hasShare'
  | 'liveSharedFileCount'
  | 'userSharesLive'
  | 'liveSeeders'
  | 'listLiveFiles'
  | 'livePeers'
  | 'counts'
  | 'insertUser'
  | 'insertSession'
  | 'deleteSession'
  | 'touchSession'
  | 'insertGroup'
  | 'setOwner'
  | 'deleteGroup'
  | 'insertMember'
  | 'deleteMember'
  | 'insertFile'
  | 'upsertShare'
  | 'deleteShare'
  | 'deleteSharesOfSession'
  | 'deleteSharesOfMember'
  | 'insertRequest'
  | 'deleteRequest'
>;

/** Raised when the database cannot be opened or is not ours. */
export class StoreOpenError extends Error {
  constructor(path: string, cause: unknown) {
    super(`cannot open database ${path}: ${cause instanceof Error ? cause.message : String(cause)}`);
    this.name = 'StoreOpenError';
  }
}

/**
 * The state file: users, sessions, groups and requests, as the change log
 * describes them. Connection setup and one prepared statement per query;
 * callers decide what is a transaction. The log itself is in `LogStore`.
 */
export class Store {
  readonly db: Db;
  readonly path: string;
  private readonly s: ReturnType<typeof prepare>;

  private constructor(db: Db, path: string) {
    this.db = db;
    this.path = path;
    this.s = prepare(db);
  }

  static open(path: string, synchronous: SqliteSynchronous = 'FULL'): Store {
    const db = openDatabase(path, synchronous, MIGRATIONS);
    // The state writer replays up to 100 ms of changes in one transaction:
    // the statement journals SQLite keeps inside it stay in memory rather than in temporary files.
    db.pragma('temp_store = MEMORY');
    return new Store(db, path);
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  getMeta(key: string): string | undefined {
    return (this.s.getMeta.get(key) as { value: string } | undefined)?.value;
  }
  setMeta(key: string, value: string | number): void {
    this.s.setMeta.run(key, String(value));
  }

  // --- reads ------------------------------------------------------------

  user(name: string): UserRow | undefined {
    return this.s.user.get(name) as UserRow | undefined;
  }
  session(id: string): SessionRow | undefined {
    return this.s.session.get(id) as SessionRow | undefined;
  }
  liveSessionCount(user: string, now: number): number {
    return (this.s.liveSessionCount.get(user, now) as { n: number }).n;
  }
  liveSessionsOf(user: string, now: number): string[] {
    return this.s.liveSessionsOf.pluck().all(user, now) as string[];
  }
  expiredSessions(now: number, limit: number): string[] {
    return this.s.expiredSessions.pluck().all(now, limit) as string[];
  }
  /** The last remembered write of a client id (request ids: docs/protocol.md §2). */
  clientRequest(client: string): RequestRecord | undefined {
    return this.s.clientRequest.get(client) as RequestRecord | undefined;
  }
  /** The oldest remembered request's time, if any (the purge's cue). */
  oldestClientRequest(): number | undefined {
    return (this.s.oldestClientRequest.pluck().get() as number | null) ?? undefined;
  }
  putClientRequest(r: RequestRecord): void {
    this.s.putClientRequest.run(r.client, r.n, r.digest, r.answer, r.session, r.at);
  }
  forgetClientRequests(before: number): void {
    this.s.forgetClientRequests.run(before);
  }
  group(name: string): { name: string; owner: string } | undefined {
    return this.s.group.get(name) as { name: string; owner: string } | undefined;
  }
  isMember(group: string, user: string): boolean {
    return this.s.member.get(group, user) !== undefined;
  }
  hasRequest(group: string, user: string): boolean {
    return this.s.request.get(group, user) !== undefined;
  }
  /** Groups a user owns (what --max-groups-per-user counts). */
  ownedGroupCount(user: string): number {
    return (this.s.ownedGroupCount.get(user) as { n: number }).n;
  }
  /** Join requests of a user still pending, across groups (what --max-requests-per-user counts). */
  pendingRequestCount(user: string): number {
    return (this.s.pendingRequestCount.get(user) as { n: number }).n;
  }
  listGroups(): GroupRow[] {
    return this.s.listGroups.all() as GroupRow[];
  }
  /** Members by name. */
  listMembers(group: string): MemberRow[] {
    return this.s.listMembers.all(group) as MemberRow[];
  }
  /** Requesting users, oldest request first. */
  listRequests(group: string): string[] {
    return this.s.listRequests.pluck().all(group) as string[];
  }
  /** The member who joined earliest, if any. */
  earliestMember(group: string): string | undefined {
    return this.s.earliestMember.pluck().get(group) as string | undefined;
  }
  file(group: string, name: string): FileRow | undefined {
    return this.s.file.get(group, name) as FileRow | undefined;
  }
  hasShare(session: string, group: string, name: string): boolean {
    return this.s.share.get(session, group, name) !== undefined;
  }
  /** Files a user shares from live sessions, each counted once whatever its sessions (what the quota counts). */
  liveSharedFileCount(user: string, now: number): number {
    return (this.s.liveSharedFileCount.get(user, now) as { n: number }).n;
  }
  /** Whether a live session of `user` shares this file. */
  userSharesLive(user: string, group: string, name: string, now: number): boolean {
    return this.s.userSharesLive.get(user, group, name, now) !== undefined;
  }
  liveSeeders(group: string, name: string, now: number): number {
    return (this.s.liveSeeders.get(group, name, now) as { n: number }).n;
  }
  /** Files of a group with at least one live seeder, by name. */
  listLiveFiles(group: string, now: number): FileListRow[] {
    return this.s.listLiveFiles.all(now, group) as FileListRow[];
  }
  /** Live shares of a file, oldest first. */
  livePeers(group: string, name: string, now: number): Array<{ user: string; peer: string }> {
    return this.s.livePeers.all(group, name, now) as Array<{ user: string; peer: string }>;
  }
  counts(): { users: number; sessions: number; groups: number } {
    return this.s.counts.get() as { users: number; sessions: number; groups: number };
  }

  // --- writes (only `apply` calls these) -----------------------------------

  insertUser(name: string, salt: string, hash: string, params: string, at: number): void {
    this.s.insertUser.run(name, salt, hash, params, at);
  }
  insertSession(id: string, user: string, at: number, expires: number): void {
    this.s.insertSession.run(id, user, at, expires);
  }
  deleteSession(id: string): boolean {
    return this.s.deleteSession.run(id).changes > 0;
  }
  touchSession(id: string, expires: number): void {
    this.s.touchSession.run(expires, id);
  }
  insertGroup(name: string, owner: string, at: number): void {
    this.s.insertGroup.run(name, owner, at);
  }
  setOwner(group: string, owner: string): void {
    this.s.setOwner.run(owner, group);
  }
  deleteGroup(group: string): void {
    this.s.deleteGroup.run(group);
    this.s.deleteGroupRequests.run(group);
    this.s.deleteGroupShares.run(group);
    this.s.deleteGroupFiles.run(group);
  }
  insertMember(group: string, user: string, seq: number, at: number): void {
    this.s.insertMember.run(group, user, seq, at);
  }
  deleteMember(group: string, user: string): boolean {
    return this.s.deleteMember.run(group, user).changes > 0;
  }
  insertFile(group: string, file: FileRow): void {
    this.s.insertFile.run(group, file.name, file.size, file.sha256, file.piece_size, file.hashes);
  }
  upsertShare(session: string, group: string, name: string, user: string, peer: string, seq: number): void {
    this.s.upsertShare.run(session, group, name, user, peer, seq);
  }
  /** Ends one share; drops the file when nobody shares it any more. */
  deleteShare(session: string, group: string, name: string): void {
    this.s.deleteShare.run(session, group, name);
    this.s.deleteFileIfUnshared.run(group, name, group, name);
  }
  /** Ends every share of a session (logout, expiry). */
  deleteSharesOfSession(session: string): void {
    for (const f of this.s.sharesOfSession.all(session) as Array<{ grp: string; name: string }>) this.deleteShare(session, f.grp, f.name);
  }
  /** Ends every share of a user in a group (the user left it). */
  deleteSharesOfMember(group: string, user: string): void {
    for (const s of this.s.sharesOfMember.all(group, user) as Array<{ session: string; name: string }>) this.deleteShare(s.session, group, s.name);
  }
  insertRequest(group: string, user: string, seq: number, at: number): void {
    this.s.insertRequest.run(group, user, seq, at);
  }
  deleteRequest(group: string, user: string): boolean {
    return this.s.deleteRequest.run(group, user).changes > 0;
  }
}

function prepare(db: Db) {
  const p = (sql: string): Statement => db.prepare(sql);
  return {
    getMeta: p('SELECT value FROM meta WHERE key = ?'),
    setMeta: p('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value'),
    user: p('SELECT name, salt, hash, params FROM users WHERE name = ?'),
    session: p('SELECT id, user, expires_at FROM sessions WHERE id = ?'),
    liveSessionCount: p('SELECT COUNT(*) AS n FROM sessions WHERE user = ? AND expires_at > ?'),
    liveSessionsOf: p('SELECT id FROM sessions WHERE user = ? AND expires_at > ?'),
    expiredSessions: p('SELECT id FROM sessions WHERE expires_at <= ? ORDER BY expires_at LIMIT ?'),
    group: p('SELECT name, owner FROM groups WHERE name = ?'),
    clientRequest: p('SELECT client, n, digest, answer, session, at FROM client_requests WHERE client = ?'),
    oldestClientRequest: p('SELECT MIN(at) FROM client_requests'),
    putClientRequest: p(
      'INSERT INTO client_requests (client, n, digest, answer, session, at) VALUES (?, ?, ?, ?, ?, ?) ' +
        'ON CONFLICT(client) DO UPDATE SET n = excluded.n, digest = excluded.digest, answer = excluded.answer, session = excluded.session, at = excluded.at',
    ),
    forgetClientRequests: p('DELETE FROM client_requests WHERE at < ?'),
    member: p('SELECT 1 FROM members WHERE grp = ? AND user = ?'),
    request: p('SELECT 1 FROM requests WHERE grp = ? AND user = ?'),
    ownedGroupCount: p('SELECT COUNT(*) AS n FROM groups WHERE owner = ?'),
    pendingRequestCount: p('SELECT COUNT(*) AS n FROM requests WHERE user = ?'),
    listGroups: p(
      'SELECT g.name AS name, g.owner AS owner, (SELECT COUNT(*) FROM members m WHERE m.grp = g.name) AS members FROM groups g ORDER BY g.name',
    ),
    listMembers: p('SELECT user, joined_seq FROM members WHERE grp = ? ORDER BY user'),
    listRequests: p('SELECT user FROM requests WHERE grp = ? ORDER BY seq'),
    earliestMember: p('SELECT user FROM members WHERE grp = ? ORDER BY joined_seq LIMIT 1'),
    counts: p(
      'SELECT (SELECT COUNT(*) FROM users) AS users, (SELECT COUNT(*) FROM sessions) AS sessions, (SELECT COUNT(*) FROM groups) AS groups',
    ),
    file: p('SELECT name, size, sha256, piece_size, hashes FROM files WHERE grp = ? AND name = ?'),
    share: p('SELECT 1 FROM shares WHERE session = ? AND grp = ? AND name = ?'),
    liveSharedFileCount: p(
      'SELECT COUNT(*) AS n FROM (SELECT DISTINCT sh.grp, sh.name FROM shares sh JOIN sessions se ON se.id = sh.session WHERE sh.user = ? AND se.expires_at > ?)',
    ),
    userSharesLive: p('SELECT 1 FROM shares sh JOIN sessions se ON se.id = sh.session WHERE sh.user = ? AND sh.grp = ? AND sh.name = ? AND se.expires_at > ? LIMIT 1'),
    liveSeeders: p(
      'SELECT COUNT(*) AS n FROM shares sh JOIN sessions se ON se.id = sh.session WHERE sh.grp = ? AND sh.name = ? AND se.expires_at > ?',
    ),
    listLiveFiles: p(
      'SELECT f.name AS name, f.size AS size, f.sha256 AS sha256, COUNT(*) AS seeders FROM files f ' +
        'JOIN shares sh ON sh.grp = f.grp AND sh.name = f.name JOIN sessions se ON se.id = sh.session AND se.expires_at > ? ' +
        'WHERE f.grp = ? GROUP BY f.name ORDER BY f.name',
    ),
    livePeers: p(
      'SELECT sh.user AS user, sh.peer AS peer FROM shares sh JOIN sessions se ON se.id = sh.session ' +
        'WHERE sh.grp = ? AND sh.name = ? AND se.expires_at > ? ORDER BY sh.seq',
    ),
    insertFile: p('INSERT INTO files (grp, name, size, sha256, piece_size, hashes) VALUES (?, ?, ?, ?, ?, ?)'),
    upsertShare: p(
      'INSERT INTO shares (session, grp, name, user, peer, seq) VALUES (?, ?, ?, ?, ?, ?) ' +
        'ON CONFLICT(session, grp, name) DO UPDATE SET peer = excluded.peer',
    ),
    deleteShare: p('DELETE FROM shares WHERE session = ? AND grp = ? AND name = ?'),
    deleteFileIfUnshared: p('DELETE FROM files WHERE grp = ? AND name = ? AND NOT EXISTS (SELECT 1 FROM shares WHERE grp = ? AND name = ?)'),
    sharesOfSession: p('SELECT grp, name FROM shares WHERE session = ?'),
    sharesOfMember: p('SELECT session, name FROM shares WHERE grp = ? AND user = ?'),
    deleteGroupShares: p('DELETE FROM shares WHERE grp = ?'),
    deleteGroupFiles: p('DELETE FROM files WHERE grp = ?'),
    insertUser: p('INSERT INTO users (name, salt, hash, params, created_at) VALUES (?, ?, ?, ?, ?)'),
    insertSession: p('INSERT INTO sessions (id, user, created_at, expires_at) VALUES (?, ?, ?, ?)'),
    deleteSession: p('DELETE FROM sessions WHERE id = ?'),
    touchSession: p('UPDATE sessions SET expires_at = ? WHERE id = ?'),
    insertGroup: p('INSERT INTO groups (name, owner, created_at) VALUES (?, ?, ?)'),
    setOwner: p('UPDATE groups SET owner = ? WHERE name = ?'),
    deleteGroup: p('DELETE FROM groups WHERE name = ?'),
    deleteGroupRequests: p('DELETE FROM requests WHERE grp = ?'),
    insertMember: p('INSERT INTO members (grp, user, joined_seq, joined_at) VALUES (?, ?, ?, ?)'),
    deleteMember: p('DELETE FROM members WHERE grp = ? AND user = ?'),
    insertRequest: p('INSERT INTO requests (grp, user, seq, requested_at) VALUES (?, ?, ?, ?)'),
    deleteRequest: p('DELETE FROM requests WHERE grp = ? AND user = ?'),
  };
}

/**
 * Opens a SQLite file in WAL mode with an explicit `synchronous` (it is per
 * connection, and better-sqlite3's default would differ between the first
 * start and a restart) and brings its schema up to date.
 */
export function openDatabase(path: string, synchronous: SqliteSynchronous, migrations: readonly string[]): Db {
  let db: Db | undefined;
  try {
    db = new Database(path);
    db.pragma('journal_mode = WAL');
    db.pragma(`synchronous = ${synchronous}`);
    db.pragma('busy_timeout = 5000');
    // Checkpoints run in a worker (Checkpointer); ours only as a safety net.
    db.pragma(`wal_autocheckpoint = ${FALLBACK_AUTOCHECKPOINT_PAGES}`);
    migrate(db, migrations);
    return db;
  } catch (error) {
    db?.close();
    throw new StoreOpenError(path, error);
  }
}

/**
 * Checks a received snapshot file before it is installed: a readable SQLite
 * database that passes `PRAGMA integrity_check`. Throws with the reason.
 */
export function checkSnapshotFile(path: string): void {
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    const result = db.pragma('integrity_check', { simple: true }) as string;
    if (result !== 'ok') throw new Error(`snapshot failed its integrity check: ${result}`);
  } finally {
    db.close();
  }
}

import type { Database } from 'better-sqlite3';

/**
 * Schema migrations, applied in order inside one transaction at open.
 * `PRAGMA user_version` records how many have run. Never edit a migration
 * that has shipped: add the next one.
 */

/** The state file: what the change log describes, derived by applying it. */
export const MIGRATIONS: readonly string[] = [
  // 1: users, sessions, groups, membership, join requests.
  `
  CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
  ) WITHOUT ROWID;

  CREATE TABLE users (
    name       TEXT PRIMARY KEY,
    salt       TEXT NOT NULL,
    hash       TEXT NOT NULL,
    params     TEXT NOT NULL,
    created_at INTEGER NOT NULL
  ) WITHOUT ROWID;

  CREATE TABLE sessions (
    id         TEXT PRIMARY KEY,
    user       TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
  ) WITHOUT ROWID;
  CREATE INDEX sessions_by_user ON sessions(user);
  CREATE INDEX sessions_by_expiry ON sessions(expires_at);

  CREATE TABLE groups (
    name       TEXT PRIMARY KEY,
    owner      TEXT NOT NULL,
    created_at INTEGER NOT NULL
  ) WITHOUT ROWID;

  CREATE TABLE members (
    grp        TEXT NOT NULL,
    user       TEXT NOT NULL,
    joined_seq INTEGER NOT NULL,
    joined_at  INTEGER NOT NULL,
    PRIMARY KEY (grp, user)
  ) WITHOUT ROWID;
  CREATE INDEX members_by_user ON members(user);

  CREATE TABLE requests (
    grp          TEXT NOT NULL,
    user         TEXT NOT NULL,
    seq          INTEGER NOT NULL,
    requested_at INTEGER NOT NULL,
    PRIMARY KEY (grp, user)
  ) WITHOUT ROWID;
  `,
  // 2: files shared in groups (metadata only: the bytes stay with the peers) and
  // who shares them: a share belongs to the session that made it.
  `
  CREATE TABLE files (
    grp        TEXT NOT NULL,
    name       TEXT NOT NULL,
    size       INTEGER NOT NULL,
    sha256     TEXT NOT NULL,
    piece_size INTEGER NOT NULL,
    hashes     TEXT NOT NULL,
    PRIMARY KEY (grp, name)
  ) WITHOUT ROWID;

  CREATE TABLE shares (
    session TEXT NOT NULL,
    grp     TEXT NOT NULL,
    name    TEXT NOT NULL,
    user    TEXT NOT NULL,
    peer    TEXT NOT NULL,
    seq     INTEGER NOT NULL,
    PRIMARY KEY (session, grp, name)
  ) WITHOUT ROWID;
  CREATE INDEX shares_by_file ON shares(grp, name, seq);
  CREATE INDEX shares_by_user ON shares(user);
  `,
  // 3: the last write of each client id and its answer, so that a request
  // retried after a failover is answered, not run twice.
  `
  CREATE TABLE client_requests (
    client  TEXT PRIMARY KEY,
    n       INTEGER NOT NULL,
    digest  TEXT NOT NULL,
    answer  TEXT NOT NULL,
    session TEXT NOT NULL,
    at      INTEGER NOT NULL
  ) WITHOUT ROWID;
  CREATE INDEX client_requests_by_age ON client_requests(at);
  `,
  // 4: no query reads members by user alone (every one names the group), and
  // the index cost a third b-tree insert on every create_group and accept.
  `
  DROP INDEX IF EXISTS members_by_user;
  `,
];

export const SCHEMA_VERSION = MIGRATIONS.length;

/** The log file: the durable, append-only record of every change. */
export const LOG_MIGRATIONS: readonly string[] = [
  // 1: the change log, each row with the rolling log_hash after it, and where the log
  // stands (seq and log_hash after its last row, and before its first).
  `
  CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
  ) WITHOUT ROWID;

  CREATE TABLE sync_log (
    seq    INTEGER PRIMARY KEY,
    epoch  INTEGER NOT NULL,
    change TEXT NOT NULL,
    hash   TEXT NOT NULL
  );
  `,
];

export const LOG_SCHEMA_VERSION = LOG_MIGRATIONS.length;

export class SchemaError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SchemaError';
  }
}

/** Brings a database to the last of `migrations`; returns the version it found. */
export function migrate(db: Database, migrations: readonly string[] = MIGRATIONS): number {
  const latest = migrations.length;
  const found = db.pragma('user_version', { simple: true }) as number;
  if (found > latest) {
    throw new SchemaError(`database schema version ${found} is newer than this tracker's ${latest}; upgrade the tracker`);
  }
  if (found < latest) {
    db.transaction(() => {
      for (let v = found; v < latest; v++) db.exec(migrations[v] as string);
      db.pragma(`user_version = ${latest}`);
    }).immediate();
  }
  return found;
}

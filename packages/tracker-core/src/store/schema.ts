import type { Database } from 'better-sqlite3';

/**
 * Schema migrations, applied in order inside one transaction at open.
 * `PRAGMA user_version` records how many have run. Never edit a migration
 * that has shipped: add the next one.
 */
export const MIGRATIONS: readonly string[] = [
  // 1: users, sessions, groups, membership, join requests, the change log.
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

  CREATE TABLE sync_log (
    seq    INTEGER PRIMARY KEY,
    epoch  INTEGER NOT NULL,
    change TEXT NOT NULL
  );
  `,
];

export const SCHEMA_VERSION = MIGRATIONS.length;

export class SchemaError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SchemaError';
  }
}

/** Brings the database to SCHEMA_VERSION; returns the version it found. */
export function migrate(db: Database): number {
  const found = db.pragma('user_version', { simple: true }) as number;
  if (found > SCHEMA_VERSION) {
    throw new SchemaError(`database schema version ${found} is newer than this tracker's ${SCHEMA_VERSION}; upgrade the tracker`);
  }
  if (found < SCHEMA_VERSION) {
    db.transaction(() => {
      for (let v = found; v < SCHEMA_VERSION; v++) db.exec(MIGRATIONS[v] as string);
      db.pragma(`user_version = ${SCHEMA_VERSION}`);
    }).immediate();
  }
  return found;
}

import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import Database from 'better-sqlite3';
import t from 'tap';
import { GENESIS_HASH, LOG_SCHEMA_VERSION, LogStore, MIGRATIONS, SCHEMA_VERSION, Store, StoreOpenError, logPathFor } from '@tracker-cluster/tracker-core';
import { tempDb, tempDir } from './fixtures/env.js';

/** Opens a second, independent connection to inspect a database file. */
function inspect(file: string): Database.Database {
  return new Database(file, { readonly: true, fileMustExist: true });
}

t.test('a fresh database is migrated to SCHEMA_VERSION, in WAL mode, with synchronous as asked', async (t) => {
  const file = await tempDb(t);
  const store = Store.open(file);
  t.teardown(() => store.close());
  t.ok(SCHEMA_VERSION >= 1, 'there is at least one migration');
  t.equal(store.db.pragma('user_version', { simple: true }), SCHEMA_VERSION, 'user_version is SCHEMA_VERSION');
  t.equal(store.db.pragma('journal_mode', { simple: true }), 'wal', 'journal_mode is wal');
  t.equal(store.db.pragma('synchronous', { simple: true }), 2, 'synchronous defaults to FULL (2)');
  const tables = store.db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").pluck().all();
  t.same(tables, ['client_requests', 'files', 'groups', 'members', 'meta', 'requests', 'sessions', 'shares', 'users'], 'every table exists; the log is in its own file');
  t.equal(store.path, file);
  t.same(store.counts(), { users: 0, sessions: 0, groups: 0 });
});

t.test('synchronous is set on every open, including a reopen that asks for something else', async (t) => {
  const file = await tempDb(t);
  const expected = { FULL: 2, NORMAL: 1, EXTRA: 3 } as const;
  for (const mode of ['NORMAL', 'FULL', 'EXTRA', 'NORMAL'] as const) {
    const store = Store.open(file, mode);
    t.equal(store.db.pragma('synchronous', { simple: true }), expected[mode], `synchronous = ${mode}`);
    t.equal(store.db.pragma('journal_mode', { simple: true }), 'wal', `still wal after reopening with ${mode}`);
    store.close();
  }
});

t.test('reopening keeps the data and does not migrate again', async (t) => {
  const file = await tempDb(t);
  const first = Store.open(file, 'FULL');
  first.db.transaction(() => {
    first.insertUser('alice', 'salt', 'hash', 'scrypt:N=1024,r=8,p=1,len=32', 1);
    first.insertGroup('g', 'alice', 2);
    first.insertMember('g', 'alice', 1, 2);
    first.setMeta('seq', 7);
  })();
  first.close();
  t.notOk(first.db.open, 'close() closes the connection');
  first.close(); // idempotent

  const second = Store.open(file, 'NORMAL');
  t.teardown(() => second.close());
  t.same(second.user('alice'), { name: 'alice', salt: 'salt', hash: 'hash', params: 'scrypt:N=1024,r=8,p=1,len=32' });
  t.same(second.group('g'), { name: 'g', owner: 'alice' });
  t.ok(second.isMember('g', 'alice'));
  t.equal(second.getMeta('seq'), '7', 'meta values come back as text');
  t.equal(second.getMeta('nope'), undefined);
  t.equal(second.db.pragma('user_version', { simple: true }), SCHEMA_VERSION);
  t.equal(second.db.pragma('synchronous', { simple: true }), 1, 'the reopen has synchronous NORMAL (1)');
});

t.test('a database from a newer tracker is refused', async (t) => {
  const file = await tempDb(t);
  Store.open(file).close();
  const raw = new Database(file);
  raw.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
  raw.close();
  t.throws(() => Store.open(file), StoreOpenError, 'StoreOpenError');
  try {
    Store.open(file);
  } catch (error) {
    t.ok(error instanceof StoreOpenError);
    t.equal((error as Error).name, 'StoreOpenError');
    t.match((error as Error).message, file, 'the message names the file');
    t.match((error as Error).message, /newer/, 'the message says why');
  }
  const check = inspect(file);
  t.equal(check.pragma('user_version', { simple: true }), SCHEMA_VERSION + 1, 'the refused database is left as it was');
  check.close();
});

t.test('a file that is not a database is refused and left untouched', async (t) => {
  const file = await tempDb(t, 'garbage.db');
  const garbage = Buffer.alloc(8192);
  for (let i = 0; i < garbage.length; i++) garbage[i] = (i * 131 + 7) & 0xff;
  await writeFile(file, garbage);
  t.throws(() => Store.open(file), StoreOpenError);
  t.same(await readFile(file), garbage, 'the file is unchanged');

  const text = await tempDb(t, 'notes.txt');
  await writeFile(text, 'this is not an SQLite database\n'.repeat(200));
  t.throws(() => Store.open(text), StoreOpenError, 'a text file is refused too');
});

t.test('a path that cannot be created is refused with StoreOpenError', async (t) => {
  const dir = await tempDir(t);
  t.throws(() => Store.open(path.join(dir, 'missing', 'sub', 'tracker.db')), StoreOpenError);
});

t.test('reads and writes of the store', async (t) => {
  const store = Store.open(await tempDb(t));
  t.teardown(() => store.close());
  store.insertUser('bob', 's', 'h', 'p', 1);
  store.insertUser('alice', 's', 'h', 'p', 1);
  store.insertSession('11', 'alice', 0, 100);
  store.insertSession('12', 'alice', 0, 200);
  store.insertSession('13', 'bob', 0, 50);
  t.equal(store.liveSessionCount('alice', 100), 1, 'a session expiring exactly now is not live');
  t.equal(store.liveSessionCount('alice', 99), 2);
  t.same(store.liveSessionsOf('alice', 150), ['12']);
  t.same(store.expiredSessions(100, 10), ['13', '11'], 'expired sessions, soonest first');
  t.same(store.expiredSessions(1000, 1), ['13'], 'limited');
  store.touchSession('13', 500);
  t.same(store.session('13'), { id: '13', user: 'bob', expires_at: 500 });
  t.ok(store.deleteSession('13'));
  t.notOk(store.deleteSession('13'), 'deleting twice reports nothing deleted');

  store.insertGroup('zeta', 'bob', 1);
  store.insertMember('zeta', 'bob', 5, 1);
  store.insertMember('zeta', 'alice', 9, 1);
  store.insertGroup('alpha', 'alice', 1);
  store.insertMember('alpha', 'alice', 6, 1);
  t.same(store.listGroups(), [
    { name: 'alpha', owner: 'alice', members: 1 },
    { name: 'zeta', owner: 'bob', members: 2 },
  ], 'groups by name with member counts');
  t.same(store.listMembers('zeta'), [
    { user: 'alice', joined_seq: 9 },
    { user: 'bob', joined_seq: 5 },
  ], 'members by name');
  t.equal(store.earliestMember('zeta'), 'bob', 'earliest by joined_seq');
  store.insertRequest('alpha', 'zed', 20, 1);
  store.insertRequest('alpha', 'amy', 21, 1);
  t.same(store.listRequests('alpha'), ['zed', 'amy'], 'requests oldest first, not by name');
  t.ok(store.hasRequest('alpha', 'amy'));
  store.deleteGroup('alpha');
  t.equal(store.group('alpha'), undefined);
  t.same(store.listRequests('alpha'), [], "a deleted group's requests go with it");
});

t.test('the log file: migrated to LOG_SCHEMA_VERSION, in WAL mode, FULL by default', async (t) => {
  const file = logPathFor(await tempDb(t));
  t.equal(path.basename(file), 'tracker.db-log', 'the log file sits beside the state file');
  const logStore = LogStore.open(file);
  t.teardown(() => logStore.close());
  t.ok(LOG_SCHEMA_VERSION >= 1);
  t.equal(logStore.db.pragma('user_version', { simple: true }), LOG_SCHEMA_VERSION);
  t.equal(logStore.db.pragma('journal_mode', { simple: true }), 'wal');
  // FULL by default, as the durable record; the WAL is synced by the log itself, off the event loop.
  t.ok(logStore.syncsItself, 'synchronous defaults to FULL: every commit is synced before it counts');
  t.equal(logStore.db.pragma('synchronous', { simple: true }), 1, 'by the log, not by SQLite inside COMMIT (NORMAL: 1)');
  const tables = logStore.db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").pluck().all();
  t.same(tables, ['meta', 'sync_log']);
  t.equal(logStore.path, file);
  t.equal(logStore.head(), undefined, 'a log that was never written has no head');
  t.equal(logStore.base(), undefined, '... and no base');
  t.same(logStore.after(0, 10), []);
});

t.test('log file positions and rows survive a reopen', async (t) => {
  const file = logPathFor(await tempDb(t));
  const first = LogStore.open(file, 'FULL');
  const start = { seq: 5, hash: 'ab'.repeat(32) };
  first.resetTo(start, '');
  t.same(first.head(), start, 'resetTo sets the head...');
  t.same(first.base(), start, '... and the base');
  first.db.transaction(() => {
    first.append(6, 1, 'six', '06'.repeat(32));
    first.append(7, 1, 'seven', '07'.repeat(32));
    first.append(8, 2, 'eight', 'cd'.repeat(32));
    first.setHead({ seq: 8, hash: 'cd'.repeat(32) });
  })();
  t.throws(() => first.append(8, 2, 'again', 'ee'.repeat(32)), { code: 'SQLITE_CONSTRAINT_PRIMARYKEY' }, 'a seq is logged once');
  first.close();
  first.close(); // idempotent

  const second = LogStore.open(file, 'NORMAL');
  t.teardown(() => second.close());
  t.equal(second.db.pragma('synchronous', { simple: true }), 1, 'synchronous as asked on every open');
  t.same(second.head(), { seq: 8, hash: 'cd'.repeat(32) });
  t.same(second.base(), start, 'the base does not move with the head');
  t.same(second.after(6, 10), [{ seq: 7, change: 'seven' }, { seq: 8, change: 'eight' }], 'rows after a seq, oldest first');
  t.same(second.after(0, 1), [{ seq: 6, change: 'six' }], 'limited');
  t.same(second.db.prepare('SELECT epoch FROM sync_log ORDER BY seq').pluck().all(), [1, 1, 2], 'with their epochs');
  t.not(second.head()?.hash, GENESIS_HASH);
  t.equal(second.hashAt(7), '07'.repeat(32), 'each row keeps the hash after it');
  t.equal(second.hashAt(5), start.hash, 'the base position has the base hash');
  t.equal(second.hashAt(4), undefined, 'before the base: not held');
  t.equal(second.hashAt(9), undefined, 'past the head: not held');
});

t.test('a log file from a newer tracker, or not a database, is refused', async (t) => {
  const file = logPathFor(await tempDb(t));
  LogStore.open(file).close();
  const raw = new Database(file);
  raw.pragma(`user_version = ${LOG_SCHEMA_VERSION + 1}`);
  raw.close();
  t.throws(() => LogStore.open(file), StoreOpenError);
  t.throws(() => LogStore.open(file), /newer/);

  const garbage = await tempDb(t, 'garbage.db-log');
  await writeFile(garbage, 'this is not an SQLite database\n'.repeat(200));
  t.throws(() => LogStore.open(garbage), StoreOpenError);
});

t.test('migration 4 drops the unused members_by_user index of a version-3 database and keeps its members', async (t) => {
  const file = await tempDb(t);
  const raw = new Database(file);
  raw.pragma('journal_mode = WAL');
  for (const sql of MIGRATIONS.slice(0, 3)) raw.exec(sql);
  raw.pragma('user_version = 3');
  raw.prepare('INSERT INTO groups (name, owner, created_at) VALUES (?, ?, ?)').run('alpha', 'alice', 1);
  raw.prepare('INSERT INTO members (grp, user, joined_seq, joined_at) VALUES (?, ?, ?, ?)').run('alpha', 'alice', 1, 1);
  t.ok(raw.prepare("SELECT 1 FROM sqlite_master WHERE name = 'members_by_user'").get(), 'version 3 has the index');
  raw.close();

  const store = Store.open(file);
  t.teardown(() => store.close());
  t.equal(store.db.pragma('user_version', { simple: true }), SCHEMA_VERSION);
  t.notOk(store.db.prepare("SELECT 1 FROM sqlite_master WHERE name = 'members_by_user'").get(), 'the index is gone');
  t.same(store.listMembers('alpha'), [{ user: 'alice', joined_seq: 1 }], 'the members are kept');
  t.ok(store.isMember('alpha', 'alice'));
  // Every query on members names the group: they all search the primary key.
  for (const sql of [
    'SELECT 1 FROM members WHERE grp = ? AND user = ?',
    'SELECT user, joined_seq FROM members WHERE grp = ? ORDER BY user',
    'SELECT user FROM members WHERE grp = ? ORDER BY joined_seq LIMIT 1',
    'DELETE FROM members WHERE grp = ? AND user = ?',
  ]) {
    const params = ['alpha', 'alice'].slice(0, sql.split('?').length - 1);
    const plan = (store.db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...params) as Array<{ detail: string }>).map((r) => r.detail).join(' | ');
    t.match(plan, /SEARCH members USING PRIMARY KEY \(grp=\?/, `${sql}: ${plan}`);
  }
});

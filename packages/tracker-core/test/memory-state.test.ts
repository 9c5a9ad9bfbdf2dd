import t from 'tap';
import { MemoryState, Store, applyChange, byBytes } from '@tracker-cluster/tracker-core';
import type { Change, ChangeBody, StateStore } from '@tracker-cluster/tracker-core';
import { tempDb } from './fixtures/env.js';

// MemoryState must answer every query as the SQLite state file does, for any
// sequence of changes: the same changes go to both, and every read is
// compared after each one. Small pools of names make conflicts, re-use and
// deletions frequent; times straddle the `now`s the live/expired reads use.

const USERS = ['ann', 'bob', 'cy', 'dee'];
const GROUPS = ['g1', 'g2', 'G1', 'g-3'];
// Code point order and UTF-16 order differ for the last two: SQLite sorts by the former.
const FILES = ['a.txt', 'B.bin', 'space name', '\u{1F600}.png', '\uFF5E.doc'];
const SESSIONS = ['1', '2', '18446744073709551615', '9007199254740993', '42', '7'];
const CLIENTS = ['00000000000000aa', '00000000000000bb', '00000000000000cc'];
const NOWS = [0, 50, 100, 150, 1000];

/** A deterministic PRNG, so that a failure names the seed that reproduces it. */
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let x = Math.imul(s ^ (s >>> 15), 1 | s);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

function randomBody(rand: () => number): ChangeBody {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)] as T;
  const at = Math.floor(rand() * 200);
  const group = pick(GROUPS);
  const user = pick(USERS);
  switch (Math.floor(rand() * 15)) {
    case 0:
      return { type: 'user_created', user, salt: `s-${user}`, hash: `h-${at}`, params: 'p', at };
    case 1: {
      const opened: ChangeBody = { type: 'session_opened', session: pick(SESSIONS), user, at, expires: at + Math.floor(rand() * 150) };
      // Some logins end sessions (--max-sessions-per-user): any ids, the login's own or unknown ones included.
      if (rand() < 0.3) opened.evicted = [pick(SESSIONS), pick(SESSIONS)];
      return opened;
    }
    case 2:
      return { type: 'session_closed', session: pick(SESSIONS) };
    case 3:
      return { type: 'sessions_touched', sessions: [[pick(SESSIONS), Math.floor(rand() * 400)], [pick(SESSIONS), Math.floor(rand() * 400)]] };
    case 4:
      return { type: 'sessions_expired', sessions: [pick(SESSIONS)], at };
    case 5:
      return { type: 'requests_forgotten', before: at };
    case 6:
    case 7:
      return { type: 'group_created', group, owner: user, at };
    case 8:
      return { type: 'join_requested', group, user, at };
    case 9:
      return { type: 'request_accepted', group, user, at };
    case 10:
      return { type: 'request_rejected', group, user };
    case 11:
      return { type: 'member_left', group, user };
    case 12:
    case 13: {
      const file = pick(FILES);
      return {
        type: 'file_shared',
        group,
        file,
        size: file.length,
        sha256: `sha-${file}`,
        piece_size: 4,
        hashes: '-',
        session: pick(SESSIONS),
        user,
        peer: `10.0.0.${Math.floor(rand() * 3)}:${7000 + at}`,
        at,
      };
    }
    default:
      return { type: 'share_stopped', session: pick(SESSIONS), group, file: pick(FILES) };
  }
}

/** Every query of the state, over every name of the pools. */
function everything(s: StateStore): unknown {
  const out: Record<string, unknown> = {
    counts: s.counts(),
    groups: s.listGroups(),
    oldestClientRequest: s.oldestClientRequest(),
    meta: ['epoch', 'history_id'].map((k) => s.getMeta(k)),
  };
  for (const now of NOWS) {
    out[`expired@${now}`] = [s.expiredSessions(now, 2), s.expiredSessions(now, 100)];
    for (const u of USERS) {
      out[`user ${u}@${now}`] = [s.liveSessionCount(u, now), s.liveSessionsOf(u, now), s.liveSharedFileCount(u, now)];
      for (const g of GROUPS) for (const f of FILES) out[`user ${u} shares ${g}/${f}@${now}`] = s.userSharesLive(u, g, f, now);
    }
    for (const g of GROUPS) {
      out[`files ${g}@${now}`] = s.listLiveFiles(g, now);
      for (const f of FILES) out[`file ${g}/${f}@${now}`] = [s.liveSeeders(g, f, now), s.livePeers(g, f, now)];
    }
  }
  for (const u of USERS) out[`user ${u}`] = [s.user(u), s.ownedGroupCount(u), s.pendingRequestCount(u)];
  for (const id of SESSIONS) out[`session ${id}`] = s.session(id);
  for (const c of CLIENTS) out[`client ${c}`] = s.clientRequest(c);
  for (const g of GROUPS) {
    out[`group ${g}`] = [s.group(g), s.listMembers(g), s.listRequests(g), s.earliestMember(g)];
    for (const u of USERS) out[`in ${g} ${u}`] = [s.isMember(g, u), s.hasRequest(g, u)];
    for (const f of FILES) {
      out[`file ${g}/${f}`] = s.file(g, f);
      for (const id of SESSIONS) out[`share ${id} ${g}/${f}`] = s.hasShare(id, g, f);
    }
  }
  return out;
}

/** Applies to one state; the error's class and message stand for "it failed here" (undefined when it did not). */
function tryApply(s: StateStore, change: Change): string | undefined {
  try {
    return JSON.stringify(applyChange(s, change));
  } catch (error) {
    return `threw: ${(error as Error).message.replace(/: .*/, '')}`;
  }
}

t.test('MemoryState answers every query as the SQLite state does, over random changes, undone or kept', async (t) => {
  // As the ChangeLog uses it: changes in batches; a change that throws is undone, and so are
  // some that did not; some whole batches are undone (a failed commit). SQLite does the same
  // with savepoints, so both must agree on every read after every step.
  const runs = 40;
  const changesPerRun = 150;
  let undone = 0;
  let failed = 0;
  for (let seed = 1; seed <= runs; seed++) {
    const store = Store.open(await tempDb(t, `diff-${seed}.db`), 'NORMAL');
    t.teardown(() => store.close());
    const memory = new MemoryState();
    const rand = prng(seed);
    const mismatches: string[] = [];
    const compare = (what: string): void => {
      if (JSON.stringify(everything(store)) === JSON.stringify(everything(memory))) return;
      t.same(everything(memory), everything(store), `seed ${seed}: ${what}`);
      mismatches.push(`seed ${seed}: ${what}`);
    };
    store.db.exec('BEGIN');
    let inBatch = false;
    for (let seq = 1; seq <= changesPerRun && mismatches.length === 0; seq++) {
      if (!inBatch) {
        memory.begin();
        store.db.exec('SAVEPOINT batch');
        inBatch = true;
      }
      const change: Change = { seq, epoch: 1, body: randomBody(rand) };
      if (rand() < 0.3) {
        change.req = { client: CLIENTS[seq % CLIENTS.length] as string, n: seq, digest: 'd', answer: 'OK', session: '0', at: Math.floor(rand() * 200) };
      }
      const mark = memory.mark();
      store.db.exec('SAVEPOINT change');
      const inSql = tryApply(store, change);
      const inMemory = tryApply(memory, change);
      if (inSql !== inMemory) {
        mismatches.push(`seed ${seed} seq ${seq} ${JSON.stringify(change)}: SQLite ${inSql}, memory ${inMemory}`);
        break;
      }
      if (inSql?.startsWith('threw') || rand() < 0.1) {
        if (inSql?.startsWith('threw')) failed++;
        else undone++;
        memory.undoTo(mark);
        store.db.exec('ROLLBACK TO change');
      }
      store.db.exec('RELEASE change');
      compare(`after seq ${seq}: ${JSON.stringify(change)}`);
      if (rand() < 0.15) {
        if (rand() < 0.25) {
          memory.undoTo(0);
          store.db.exec('ROLLBACK TO batch');
          compare(`after undoing the batch ending at seq ${seq}`);
        }
        memory.end();
        store.db.exec('RELEASE batch');
        inBatch = false;
      }
    }
    if (inBatch) {
      memory.end();
      store.db.exec('RELEASE batch');
    }
    store.db.exec('COMMIT');
    t.same(mismatches, [], `seed ${seed}: the same results and the same answers after every step`);
    t.strictSame(everything(MemoryState.load(store)), everything(memory), `seed ${seed}: loading the state file gives the same state`);
    // A snapshot install reloads the same object from another file: nothing of the old rows may stay.
    const other = Store.open(await tempDb(t, `other-${seed}.db`), 'NORMAL');
    t.teardown(() => other.close());
    const before = everything(MemoryState.load(other));
    memory.reload(other);
    t.strictSame(everything(memory), before, `seed ${seed}: reload() from another file holds that file's rows only`);
    memory.reload(store);
    t.strictSame(everything(memory), everything(MemoryState.load(store)), `seed ${seed}: and reload() back gives this one's`);
    for (const now of NOWS) {
      const live = store.db.prepare('SELECT COUNT(*) FROM sessions WHERE expires_at > ?').pluck().get(now);
      const shares = store.db.prepare('SELECT COUNT(*) FROM shares s JOIN sessions x ON x.id = s.session WHERE x.expires_at > ?').pluck().get(now);
      const { users, groups } = store.counts();
      t.same(memory.liveCounts(now), { users, groups, liveSessions: live, shares }, `seed ${seed}: liveCounts(${now}) as SQL counts them`);
    }
  }
  t.ok(undone > 100 && failed > 100, `changes undone: ${undone} kept out on purpose, ${failed} that threw`);
});

t.test('byBytes orders as SQLite BINARY does (UTF-8 bytes), not as JavaScript compares strings', async (t) => {
  const names = ['b', 'a', 'B', '\u{1F600}', '\uFF5E', 'ab', '', 'a\u0000'];
  const store = Store.open(await tempDb(t), 'NORMAL');
  t.teardown(() => store.close());
  store.db.exec('CREATE TEMP TABLE names (n TEXT)');
  const insert = store.db.prepare('INSERT INTO names VALUES (?)');
  for (const n of names) insert.run(n);
  const sqlite = store.db.prepare('SELECT n FROM names ORDER BY n').pluck().all();
  t.strictSame([...names].sort(byBytes), sqlite);
  t.notSame([...names].sort(), sqlite, 'the default sort differs, so the test can tell');
});

t.test('undoTo outside begin()/end() is a bug, and says so', async (t) => {
  const memory = new MemoryState();
  t.throws(() => memory.undoTo(0), /outside begin/);
  memory.begin();
  memory.insertUser('ann', 's', 'h', 'p', 1);
  memory.end();
  memory.begin();
  memory.undoTo(0);
  t.ok(memory.user('ann'), 'what end() kept stays');
});

t.test('the constraints SQLite enforces are enforced, and nothing changes when one fails', async (t) => {
  const memory = new MemoryState();
  memory.insertUser('ann', 's', 'h', 'p', 1);
  t.throws(() => memory.insertUser('ann', 's2', 'h2', 'p', 2), { name: 'StateConstraintError' });
  t.strictSame(memory.user('ann'), { name: 'ann', salt: 's', hash: 'h', params: 'p' });
  memory.insertGroup('g', 'ann', 1);
  t.throws(() => memory.insertGroup('g', 'bob', 2), { name: 'StateConstraintError' });
  memory.insertMember('g', 'ann', 1, 1);
  t.throws(() => memory.insertMember('g', 'ann', 2, 2), { name: 'StateConstraintError' });
  memory.insertRequest('g', 'bob', 3, 3);
  t.throws(() => memory.insertRequest('g', 'bob', 4, 4), { name: 'StateConstraintError' });
  memory.insertSession('5', 'ann', 1, 100);
  t.throws(() => memory.insertSession('5', 'bob', 1, 100), { name: 'StateConstraintError' });
  memory.insertFile('g', { name: 'f', size: 1, sha256: 'x', piece_size: 1, hashes: '-' });
  t.throws(() => memory.insertFile('g', { name: 'f', size: 2, sha256: 'y', piece_size: 1, hashes: '-' }), { name: 'StateConstraintError' });
  t.strictSame(memory.listGroups(), [{ name: 'g', owner: 'ann', members: 1 }]);
  t.strictSame(memory.listRequests('g'), ['bob']);
  t.strictSame(memory.session('5'), { id: '5', user: 'ann', expires_at: 100 });
  t.strictSame(memory.file('g', 'f'), { name: 'f', size: 1, sha256: 'x', piece_size: 1, hashes: '-' });
});

t.test('rows handed out are copies: changing one does not change the state', async (t) => {
  const memory = new MemoryState();
  memory.insertSession('9', 'ann', 0, 10);
  const row = memory.session('9') as { expires_at: number };
  row.expires_at = 99;
  t.equal(memory.session('9')?.expires_at, 10);
  const groups = memory.listGroups();
  groups.push({ name: 'x', owner: 'y', members: 0 });
  t.same(memory.listGroups(), []);
});

t.test('a local extension keeps a session live past its row, touches no table, and settles once the log holds it', async (t) => {
  const memory = new MemoryState();
  memory.insertUser('ann', 's', 'h', 'p', 1);
  memory.insertSession('5', 'ann', 1, 100);
  memory.insertSession('6', 'ann', 1, 100);
  memory.extendLocally('5', 50);
  t.strictSame(memory.settleLocalExtensions(), [], 'an extension behind the row is none');
  memory.extendLocally('5', 300);
  memory.extendLocally('nobody', 300);
  t.equal(memory.session('5')?.expires_at, 300, 'reads see the later expiry');
  t.equal(memory.liveSessionCount('ann', 150), 1, 'and count the session live');
  t.strictSame(memory.liveSessionsOf('ann', 150), ['5']);
  t.strictSame(memory.expiredSessions(150, 10), ['6'], 'the purge spares it');
  t.equal(memory.liveCounts(150).liveSessions, 1);
  t.strictSame(memory.settleLocalExtensions(), [['5', 300]], 'only extensions of known sessions, ahead of their row');

  memory.touchSession('5', 300); // the log caught up
  t.strictSame(memory.settleLocalExtensions(), [], 'forgotten once the row holds it');
  memory.extendLocally('6', 400);
  memory.deleteSession('6');
  t.strictSame(memory.settleLocalExtensions(), [], 'and once the session ended');
  t.equal(memory.session('6'), undefined);
});

t.test("liveSharedFileCount agrees with a scan of the user's shares through shares, session ends, expiry, local extensions and undo", async (t) => {
  // The count is kept in indexes, so every path that adds or removes a share must keep them:
  // changes kept and undone, whole batches undone, sessions extended here outside the log.
  const scan = (s: MemoryState, user: string, now: number): number => {
    let n = 0;
    for (const g of GROUPS) for (const f of FILES) if (s.userSharesLive(user, g, f, now)) n++;
    return n;
  };
  const mismatches: string[] = [];
  let positives = 0;
  let partlyLive = 0;
  for (let seed = 1; seed <= 60 && mismatches.length === 0; seed++) {
    const memory = new MemoryState();
    const rand = prng(1000 + seed);
    const check = (what: string): void => {
      for (const u of USERS) {
        for (const now of NOWS) {
          const counted = memory.liveSharedFileCount(u, now);
          const scanned = scan(memory, u, now);
          if (counted !== scanned) mismatches.push(`seed ${seed} ${what}: ${u}@${now} counted ${counted}, scanned ${scanned}`);
          if (scanned > 0) positives++;
          if (scanned > 0 && scanned < scan(memory, u, -1)) partlyLive++;
        }
      }
    };
    memory.begin();
    for (let seq = 1; seq <= 200 && mismatches.length === 0; seq++) {
      if (rand() < 0.05) memory.extendLocally(SESSIONS[Math.floor(rand() * SESSIONS.length)] as string, Math.floor(rand() * 1200));
      if (rand() < 0.02) memory.settleLocalExtensions();
      const mark = memory.mark();
      const failed = tryApply(memory, { seq, epoch: 1, body: randomBody(rand) })?.startsWith('threw') ?? true;
      if (failed || rand() < 0.1) memory.undoTo(mark);
      check(`after seq ${seq}`);
      if (rand() < 0.1) {
        if (rand() < 0.3) memory.undoTo(0);
        memory.end();
        check(`after the batch ending at seq ${seq}`);
        memory.begin();
      }
    }
    memory.end();
  }
  t.strictSame(mismatches, [], 'the same count after every step');
  t.ok(positives > 1000 && partlyLive > 100, `checked ${positives} non-zero counts, ${partlyLive} with some of the user's shares in dead sessions`);
});

t.test('a purge sorts only the sessions it takes, not every expired one', async (t) => {
  // The purge runs on the event loop every --session-purge-interval and takes PURGE_BATCH sessions;
  // when 100,000 expired at once, sorting all of them at every purge held the loop ~50-230 ms each time.
  const memory = new MemoryState();
  memory.insertUser('ann', 's', 'h', 'p', 1);
  const expiries = new Map<string, number>();
  let x = 12345;
  for (let i = 0; i < 5000; i++) {
    x = (x * 1103515245 + 12345) % 2147483648;
    const id = String(1000 + ((x >> 4) % 1_000_000) * 7 + i);
    if (expiries.has(id)) continue;
    const expires = 100 + (x % 300);
    expiries.set(id, expires);
    memory.insertSession(id, 'ann', 1, expires);
  }
  const sorted: number[] = [];
  const sort = Array.prototype.sort;
  t.teardown(() => {
    Array.prototype.sort = sort;
  });
  Array.prototype.sort = function (this: unknown[], ...args: Parameters<typeof sort>) {
    sorted.push(this.length);
    return sort.apply(this, args);
  } as typeof sort;
  const taken = memory.expiredSessions(300, 50);
  Array.prototype.sort = sort;
  t.ok(Math.max(0, ...sorted) <= 50, `arrays sorted: ${sorted.join(', ')} (no more than the 50 taken)`);
  const want = [...expiries]
    .filter(([, e]) => e <= 300)
    .sort(([a, ea], [b, eb]) => ea - eb || byBytes(a, b))
    .slice(0, 50)
    .map(([id]) => id);
  t.strictSame(taken, want, 'the 50 that expired first, by expiry then id');
  const expired = [...expiries.values()].filter((e) => e <= 300).length;
  t.equal(memory.expiredSessions(300, 100_000).length, expired, 'a limit past them: all of them');
  t.strictSame(memory.expiredSessions(50, 10), [], 'none expired yet: none');
});

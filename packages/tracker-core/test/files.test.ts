/**
 * File metadata and shares (PROTOCOL.md §3, docs/protocol.md "File rules"),
 * in process on a real SQLite file and a FakeClock: upload_file argument
 * checks and their order, FILE_CONFLICT, QUOTA_EXCEEDED, list_files,
 * file_peers, stop_share, the file_shared event, every way a share ends
 * (logout, expiry and its purge, stop_share, leave_group, group deletion),
 * and that replaying the log rebuilds the files and shares tables exactly.
 *
 * Absence of events is checked without sleeping: a tracker writes an event
 * to a connection before it answers the request that caused it, so once a
 * later request on that connection is answered, any such event is in.
 */
import { createHash } from 'node:crypto';
import Database from 'better-sqlite3';
import t from 'tap';
import { formatCommand, parseRow, tokenize } from '@tracker-cluster/protocol';
import type { Row } from '@tracker-cluster/protocol';
import { LogStore, Store, decodeChange, logPathFor } from '@tracker-cluster/tracker-core';
import type { Change } from '@tracker-cluster/tracker-core';
import type { Test } from './fixtures/env.js';
import { tempDb, waitFor } from './fixtures/env.js';
import type { FrameClient } from './fixtures/frame-client.js';
import { dump, openLog } from './fixtures/state.js';
import type { Running } from './fixtures/tracker.js';
import { logIn, signUp, startTracker } from './fixtures/tracker.js';

// --- helpers ---------------------------------------------------------------

interface Meta {
  size: number;
  sha256: string;
  pieceSize: number;
  hashes: string;
}

const sha = (data: string | Buffer): string => createHash('sha256').update(data).digest('hex');

/** The metadata a client would compute for `content` cut into pieces of `pieceSize`. */
function meta(content: string | Buffer, pieceSize = 4): Meta {
  const bytes = Buffer.from(content);
  const hashes: string[] = [];
  for (let at = 0; at < bytes.length; at += pieceSize) hashes.push(sha(bytes.subarray(at, at + pieceSize)));
  return { size: bytes.length, sha256: sha(bytes), pieceSize, hashes: hashes.length === 0 ? '-' : hashes.join(',') };
}

/** An `upload_file` line, the file name quoted when it needs it. */
function upload(group: string, file: string, m: Meta, peer = '127.0.0.1:9000'): string {
  return formatCommand(['upload_file', group, file, String(m.size), m.sha256, String(m.pieceSize), peer, m.hashes]);
}

function line(...words: string[]): string {
  return formatCommand(words);
}

/** The error code of an answer, or the whole answer when it is not an error. */
function code(text: string): string {
  return /^ERR ([A-Z_]+) /.exec(text)?.[1] ?? text;
}

/** The rows of an `OK <n>` list answer, parsed with the protocol's parseRow. */
function rows(text: string): Row[] {
  const [head, ...rest] = text.split('\n');
  const n = Number(/^OK (\d+)$/.exec(head ?? '')?.[1] ?? NaN);
  if (!Number.isInteger(n)) throw new Error(`not a list answer: ${JSON.stringify(text)}`);
  if (n === 0 ? rest.length !== 0 : rest.length !== n) throw new Error(`list of ${n} has ${rest.length} rows: ${JSON.stringify(text)}`);
  return rest.map(parseRow);
}

interface Peers {
  head: Row;
  hashes: string;
  peers: Array<[user: string, peer: string]>;
}

/** A `file_peers` answer: its first line after `OK `, the hashes line, the peer lines. */
function peersOf(text: string): Peers {
  const [first, hashLine, ...peerLines] = text.split('\n');
  if (!first?.startsWith('OK ')) throw new Error(`file_peers answered ${JSON.stringify(text)}`);
  const hashWords = tokenize(hashLine ?? '');
  if (hashWords.length !== 2 || hashWords[0] !== 'hashes') throw new Error(`bad hashes line in ${JSON.stringify(text)}`);
  const peers = peerLines.map((l): [string, string] => {
    const words = tokenize(l);
    if (words.length !== 3 || words[0] !== 'peer') throw new Error(`bad peer line ${JSON.stringify(l)} in ${JSON.stringify(text)}`);
    return [words[1] as string, words[2] as string];
  });
  return { head: parseRow(first.slice(3)), hashes: hashWords[1] as string, peers };
}

function seq(status: string): number {
  return Number(/ seq=(\d+)/.exec(status)?.[1]);
}

/** Answers a ping on `client` under `session`: every event sent to it before is then in `client.events`. */
async function sync(client: FrameClient, session: bigint): Promise<void> {
  if ((await client.text('ping', session)) !== 'OK PONG') throw new Error('ping failed');
}

interface Member {
  c: FrameClient;
  s: bigint;
  name: string;
}

/** Signs `names` up, each on its own connection; the first creates `group` and accepts the others. */
async function groupOf(run: Running, group: string, names: string[]): Promise<Member[]> {
  const members: Member[] = [];
  for (const name of names) {
    const c = await run.connect();
    members.push({ c, s: await signUp(c, name), name });
  }
  const [owner, ...others] = members as [Member, ...Member[]];
  await expect(owner, `create_group ${group}`, 'OK group created');
  for (const m of others) {
    await expect(m, `join_group ${group}`, 'OK request sent');
    await expect(owner, `accept_request ${group} ${m.name}`, `OK ${m.name} joined ${group}`);
  }
  // Drain the join/accept events so that tests see only their own.
  for (const m of members) {
    await sync(m.c, m.s);
    m.c.events.length = 0;
  }
  return members;
}

async function expect(m: Member, payload: string, answer: string): Promise<void> {
  const got = await m.c.text(payload, m.s);
  if (got !== answer) throw new Error(`${payload} answered ${JSON.stringify(got)}, expected ${JSON.stringify(answer)}`);
}

/** Ask on the member's own connection and session. */
function ask(m: Member, payload: string): Promise<string> {
  return m.c.text(payload, m.s);
}

const FILE_TABLES: Record<string, string> = {
  files: 'SELECT * FROM files ORDER BY grp, name',
  shares: 'SELECT * FROM shares ORDER BY session, grp, name',
};

function dumpFiles(db: Database.Database): Record<string, unknown[]> {
  return Object.fromEntries(Object.entries(FILE_TABLES).map(([name, sql]) => [name, db.prepare(sql).all()]));
}

/** A read-only view of the tracker's state file, as another process sees it (it follows within a state commit). */
function stateFile(t: Test, run: Running): Database.Database {
  const db = new Database(run.dbPath, { readonly: true });
  t.teardown(() => db.close());
  return db;
}

/**
 * Waits until the tracker's state file holds every committed change (its
 * writer follows the log by about a state commit) and `check` holds of it.
 */
async function waitForFile(run: Running, check: () => boolean, what: string): Promise<void> {
  await waitFor(() => run.tracker.gauges().stateFileLag === 0 && check(), what);
}

function count(db: Database.Database, sql: string, ...params: unknown[]): number {
  return db.prepare(`SELECT COUNT(*) FROM ${sql}`).pluck().get(...params) as number;
}

const A = meta('hello, world'); // 12 bytes, 3 pieces of 4
const B = meta('another file entirely, longer than the first', 16);
const EMPTY = meta('');
const HEX = 'a'.repeat(64);

// --- upload_file: arguments ------------------------------------------------

t.test('upload_file checks every argument before any state (BAD_REQUEST)', async (t) => {
  const run = await startTracker(t, { maxSharesPerUser: 1 });
  const [alice, bob] = await groupOf(run, 'g', ['alice', 'bob']);
  const carol = (await groupOf(run, 'other', ['carol']))[0] as Member;
  const valid = ['upload_file', 'g', 'f.bin', '10', HEX, '4', '127.0.0.1:9000', `${HEX},${HEX},${HEX}`];
  const seqBefore = seq(await alice!.c.text('status'));

  const cases: Array<[index: number, value: string, why: string]> = [
    [1, 'bad/group', 'a group name with a slash'],
    [1, 'x'.repeat(33), 'a 33-character group name'],
    [1, '', 'an empty group name'],
    [2, '', 'an empty file name'],
    [2, 'a/b', 'a file name with a slash'],
    [2, '/', 'a file name that is a slash'],
    [2, 'x'.repeat(256), 'a 256-byte file name'],
    [2, 'é'.repeat(128), 'a file name of 128 characters but 256 bytes'],
    [2, 'tab\there', 'a file name with a tab'],
    [2, 'nul\u0000', 'a file name with NUL'],
    [2, 'bell\u0007', 'a file name with a C0 control'],
    [2, 'del\u007f', 'a file name with DEL'],
    [2, 'c1\u0085', 'a file name with a C1 control'],
    [3, '-1', 'a negative size'],
    [3, '1.5', 'a fractional size'],
    [3, 'ten', 'a size in words'],
    [3, '', 'an empty size'],
    [3, '1e1', 'a size in exponent form'],
    [3, '0x0a', 'a hex size'],
    [3, '+10', 'a size with a sign'],
    [3, '99999999999999999999', 'a 20-digit size'],
    [3, '9007199254740993', 'a size past the largest safe integer'],
    [4, HEX.toUpperCase(), 'an uppercase sha256'],
    [4, 'a'.repeat(63), 'a 63-digit sha256'],
    [4, 'a'.repeat(65), 'a 65-digit sha256'],
    [4, 'g'.repeat(64), 'a non-hex sha256'],
    [4, '', 'an empty sha256'],
    [5, '0', 'piece_size 0'],
    [5, '67108865', 'piece_size 64 MiB + 1'],
    [5, '-4', 'a negative piece_size'],
    [5, 'four', 'a piece_size in words'],
    [5, '4.0', 'a fractional piece_size'],
    [5, '', 'an empty piece_size'],
    [6, '127.0.0.1', 'a peer without a port'],
    [6, '127.0.0.1:0', 'peer port 0'],
    [6, '127.0.0.1:65536', 'peer port 65536'],
    [6, '127.0.0.1:', 'a peer with an empty port'],
    [6, ':9000', 'a peer without a host'],
    [6, '127.0.0.1:http', 'a peer port in words'],
    [6, '::1:9000', 'an IPv6 peer without brackets'],
    [6, '[::1]', 'a bracketed IPv6 peer without a port'],
    [6, 'a host:9000', 'a peer host with a space'],
    [6, '', 'an empty peer'],
    [6, `${'h'.repeat(254)}:9000`, 'a peer host of 254 characters'],
    [6, `${'h'.repeat(100_000)}:9000`, 'a peer host of 100,000 characters'],
    [6, `[${'0:'.repeat(127)}1]:9000`, 'a peer IPv6 literal of 255 characters'],
    [7, `${HEX},${HEX}`, 'one piece hash too few'],
    [7, `${HEX},${HEX},${HEX},${HEX}`, 'one piece hash too many'],
    [7, '-', '"-" for a non-empty file'],
    [7, `${HEX},${HEX},${HEX.toUpperCase()}`, 'an uppercase piece hash'],
    [7, `${HEX},${HEX},${'a'.repeat(63)}`, 'a short piece hash'],
    [7, `${HEX},${HEX},${HEX},`, 'a trailing comma'],
    [7, `${HEX},,${HEX}`, 'an empty piece hash'],
    [7, `${HEX};${HEX};${HEX}`, 'hashes separated by semicolons'],
    [7, '', 'empty hashes'],
  ];
  for (const [index, value, why] of cases) {
    const words = [...valid];
    words[index] = value;
    const answer = await alice!.c.request(formatCommand(words), alice!.s);
    t.equal(code(answer.text), 'BAD_REQUEST', why);
    t.equal(answer.session, alice!.s, `${why}: the session stays`);
    if (index === 3 && /^[0-9]{16,}$/.test(value)) t.match(answer.text, /size must be at most 2\^53-1 bytes/, `${why}: the message says why`);
    if (index === 6 && value.length > 253) {
      t.match(answer.text, /^ERR BAD_REQUEST peer must be HOST:PORT where your client serves pieces: an? (host name|IPv6 address) is at most 253 characters; this one has \d+ /, `${why}: the message says why`);
      t.ok(answer.text.length < 200, `${why}: and does not repeat it whole`);
    }
  }
  const hashCount = (size: string, hashes: string): Promise<string> => ask(alice!, line('upload_file', 'g', 'f.bin', size, HEX, '4', '127.0.0.1:9000', hashes));
  t.equal(await hashCount('10', HEX), 'ERR BAD_REQUEST a file of 10 bytes in pieces of 4 has 3 pieces; 1 hash given', 'the counts in the message: one hash');
  t.equal(await hashCount('1', `${HEX},${HEX}`), 'ERR BAD_REQUEST a file of 1 byte in pieces of 4 has 1 piece; 2 hashes given', 'one byte, one piece');
  t.equal(code(await ask(alice!, line('upload_file', 'g', 'e', '0', EMPTY.sha256, '4', '127.0.0.1:9000', HEX))), 'BAD_REQUEST', 'a piece hash for an empty file');
  t.equal(code(await ask(alice!, line('upload_file', 'g', 'e', '0', EMPTY.sha256, '4', '127.0.0.1:9000', ''))), 'BAD_REQUEST', 'no "-" for an empty file');
  t.equal(code(await ask(alice!, valid.slice(0, -1).join(' '))), 'BAD_REQUEST', 'six arguments');
  t.equal(code(await ask(alice!, [...valid, 'x'].join(' '))), 'BAD_REQUEST', 'eight arguments');
  t.match(await ask(alice!, 'upload_file g'), /^ERR BAD_REQUEST usage: upload_file <group> <file> <size> <sha256> <piece_size> <peer> <hashes>$/, 'the usage');
  for (const cmd of ['list_files', 'file_peers g', 'stop_share g']) {
    t.equal(code(await ask(alice!, cmd)), 'BAD_REQUEST', `${cmd}: too few arguments`);
    t.equal(code(await ask(alice!, `${cmd} g x y`)), 'BAD_REQUEST', `${cmd}: too many arguments`);
  }
  t.equal(seq(await alice!.c.text('status')), seqBefore, 'no refused upload changed anything');
  t.equal(await ask(alice!, 'list_files g'), 'OK 0');

  await t.test('syntax before state', async (t) => {
    const badSize = [...valid];
    badSize[1] = 'nosuch';
    badSize[3] = '1.5';
    t.equal(code(await ask(alice!, formatCommand(badSize))), 'BAD_REQUEST', 'a bad size in a group that does not exist');
    badSize[3] = '10';
    t.equal(code(await ask(alice!, formatCommand(badSize))), 'NO_SUCH_GROUP', 'the same line with a good size');

    const badPeer = [...valid];
    badPeer[6] = 'nowhere';
    t.equal(code(await ask(carol, formatCommand(badPeer))), 'BAD_REQUEST', 'a bad peer from a non-member');
    t.equal(code(await ask(carol, formatCommand(valid))), 'NOT_MEMBER', 'the same line with a good peer');

    t.equal(await ask(alice!, upload('g', 'taken', A)), 'OK shared taken seeders=1');
    t.equal(await ask(bob!, upload('g', 'bobs', B)), 'OK shared bobs seeders=1', 'bob is at his quota of 1 now');
    const conflicting = meta('other contents');
    t.equal(code(await ask(bob!, upload('g', 'taken', { ...conflicting, hashes: `${HEX}` }))), 'BAD_REQUEST', 'a bad hash count on a name that would conflict');
    t.equal(code(await ask(bob!, upload('g', 'taken', conflicting))), 'FILE_CONFLICT', 'the same name with good hashes: FILE_CONFLICT before QUOTA_EXCEEDED');

    t.equal(code(await ask(alice!, upload('g', 'more', { ...B, sha256: 'X'.repeat(64) }))), 'BAD_REQUEST', 'a bad sha256 from a user at the quota');
    t.equal(code(await ask(alice!, upload('g', 'more', B))), 'QUOTA_EXCEEDED', 'the same line with a good sha256');
    t.equal(code(await ask(alice!, upload('g', 'f.bin', { ...A, pieceSize: 0 }))), 'BAD_REQUEST', 'a bad piece_size from a user at the quota');
    t.equal(code(await ask(carol, upload('nosuch', 'x', A))), 'NO_SUCH_GROUP', 'NO_SUCH_GROUP before NOT_MEMBER');
    t.equal(code(await ask(carol, upload('g', 'taken', conflicting))), 'NOT_MEMBER', 'NOT_MEMBER before FILE_CONFLICT');
    t.equal(code(await ask(bob!, upload('g', 'taken', A))), 'QUOTA_EXCEEDED', 'bob sharing the same contents is a new share past his quota');
  });

  await t.test('every file command needs a session', async (t) => {
    for (const cmd of [upload('g', 'f', A), 'list_files g', 'file_peers g f', 'stop_share g f']) {
      const answer = await alice!.c.request(cmd);
      t.equal(code(answer.text), 'AUTH_REQUIRED', cmd);
      t.equal(answer.session, 0n);
    }
    const auth = await alice!.c.request('list_files "bad group"');
    t.equal(code(auth.text), 'AUTH_REQUIRED', 'the session before argument syntax');
  });

  await t.test('list_files, file_peers and stop_share check their arguments before state', async (t) => {
    t.equal(code(await ask(carol, 'list_files bad/group')), 'BAD_REQUEST');
    t.equal(code(await ask(carol, 'file_peers bad/group f')), 'BAD_REQUEST');
    t.equal(code(await ask(carol, 'file_peers nosuch a/b')), 'BAD_REQUEST', 'a bad file name in a group that does not exist');
    t.equal(code(await ask(carol, line('file_peers', 'g', 'x'.repeat(256)))), 'BAD_REQUEST', 'a bad file name from a non-member');
    t.equal(code(await ask(carol, 'stop_share nosuch a/b')), 'BAD_REQUEST', 'stop_share: a bad file name in a group that does not exist');
    t.equal(code(await ask(carol, line('stop_share', 'g', ''))), 'BAD_REQUEST', 'stop_share: an empty file name');
    t.equal(code(await ask(carol, 'list_files nosuch')), 'NO_SUCH_GROUP');
    t.equal(code(await ask(carol, 'file_peers nosuch f')), 'NO_SUCH_GROUP');
    t.equal(code(await ask(carol, 'stop_share nosuch f')), 'NO_SUCH_GROUP');
    t.equal(code(await ask(carol, 'list_files g')), 'NOT_MEMBER');
    t.equal(code(await ask(carol, 'file_peers g taken')), 'NOT_MEMBER', 'even for a file that exists');
    t.equal(code(await ask(carol, 'file_peers g nothing')), 'NOT_MEMBER', 'and for one that does not');
    t.equal(code(await ask(carol, 'stop_share g taken')), 'NO_SUCH_FILE', 'stop_share is not members-only: this session shares nothing there');
  });
});

t.test('upload_file accepts the edges of every range', async (t) => {
  const run = await startTracker(t);
  const [alice] = await groupOf(run, 'g', ['alice']);
  const max = 64 * 1024 * 1024;
  const cases: Array<[string[], string]> = [
    [['upload_file', 'g', 'big', String(max + 1), HEX, String(max), '127.0.0.1:1', `${HEX},${HEX}`], 'piece_size 64 MiB, two pieces, port 1'],
    [['upload_file', 'g', 'bytes', '3', HEX, '1', 'peer.example.org:65535', `${HEX},${HEX},${HEX}`], 'piece_size 1, port 65535, a host name'],
    [['upload_file', 'g', 'exact', '8', HEX, '4', '[::1]:9000', `${HEX},${HEX}`], 'a size that is a whole number of pieces, an IPv6 peer'],
    [['upload_file', 'g', 'one', '1', HEX, String(max), '10.0.0.1:9000', HEX], 'one byte in one big piece'],
    [['upload_file', 'g', `${'é'.repeat(127)}a`, '1', HEX, '1', '127.0.0.1:9000', HEX], 'a 255-byte file name'],
    [['upload_file', 'g', 'large', String(100 * max), HEX, String(max), '127.0.0.1:9000', Array.from({ length: 100 }, () => HEX).join(',')], 'a 6.25 GiB file in 100 pieces'],
  ];
  for (const [words, why] of cases) {
    t.match(await ask(alice!, formatCommand(words)), /^OK shared .* seeders=1$/, why);
  }
  const big = peersOf(await ask(alice!, 'file_peers g big'));
  t.same(big.head.fields, { size: String(max + 1), sha256: HEX, piece_size: String(max), pieces: '2', peers: '1' });
  t.same(big.peers, [['alice', '127.0.0.1:1']]);
  t.same(peersOf(await ask(alice!, 'file_peers g exact')).peers, [['alice', '[::1]:9000']], 'the IPv6 peer as given');
  t.equal(rows(await ask(alice!, 'list_files g')).length, cases.length);
});

// --- the answers ------------------------------------------------------------

t.test('two users and two sessions sharing: answers, seeders, peers order, list_files', async (t) => {
  const run = await startTracker(t);
  const [alice, bob] = await groupOf(run, 'g', ['alice', 'bob']);
  const alice2: Member = { c: await run.connect(), s: 0n, name: 'alice' };
  alice2.s = await logIn(alice2.c, 'alice');

  t.same(await alice!.c.request(upload('g', 'a.txt', A, '10.0.0.1:7000'), alice!.s), { text: 'OK shared a.txt seeders=1', session: alice!.s });
  t.equal(await ask(bob!, upload('g', 'a.txt', A, '10.0.0.2:7000')), 'OK shared a.txt seeders=2', 'another user, same contents');
  t.equal(await ask(alice2, upload('g', 'a.txt', A, '10.0.0.3:7000')), 'OK shared a.txt seeders=3', 'another session of the same user counts too');
  t.equal(await ask(bob!, upload('g', 'b.txt', B, '10.0.0.2:7000')), 'OK shared b.txt seeders=1');
  t.equal(await ask(alice!, upload('g', 'empty', EMPTY, '10.0.0.1:7000')), 'OK shared empty seeders=1', 'an empty file with "-"');

  const listed = await ask(bob!, 'list_files g');
  t.equal(
    listed,
    [
      'OK 3',
      `a.txt size=12 sha256=${A.sha256} seeders=3`,
      `b.txt size=${B.size} sha256=${B.sha256} seeders=1`,
      `empty size=0 sha256=${EMPTY.sha256} seeders=1`,
    ].join('\n'),
    'by name, with seeders',
  );
  t.equal(await ask(alice!, 'list_files g'), listed, 'the same for every member');

  const peers = await ask(bob!, 'file_peers g a.txt');
  t.equal(
    peers,
    [
      `OK a.txt size=12 sha256=${A.sha256} piece_size=4 pieces=3 peers=3`,
      `hashes ${A.hashes}`,
      'peer alice 10.0.0.1:7000',
      'peer bob 10.0.0.2:7000',
      'peer alice 10.0.0.3:7000',
    ].join('\n'),
    'file_peers: metadata, hashes, peers oldest share first',
  );
  t.equal(A.hashes.split(',').length, 3);
  t.equal(
    await ask(alice!, 'file_peers g empty'),
    [`OK empty size=0 sha256=${EMPTY.sha256} piece_size=4 pieces=0 peers=1`, 'hashes -', 'peer alice 10.0.0.1:7000'].join('\n'),
    'an empty file: no pieces, hashes -',
  );
  t.equal(code(await ask(alice!, 'file_peers g nothing')), 'NO_SUCH_FILE', 'a file nobody ever shared');

  // Re-uploading from a session that already shares the file moves its peer only.
  const seqBefore = seq(await bob!.c.text('status'));
  t.equal(await ask(alice!, upload('g', 'a.txt', A, '10.0.0.9:7001')), 'OK shared a.txt seeders=3', 'a re-upload adds no seeder');
  t.equal(seq(await bob!.c.text('status')), seqBefore + 1, 'it is one change');
  t.same(
    peersOf(await ask(bob!, 'file_peers g a.txt')).peers,
    [
      ['alice', '10.0.0.9:7001'],
      ['bob', '10.0.0.2:7000'],
      ['alice', '10.0.0.3:7000'],
    ],
    'the share keeps its place; its peer moved',
  );
  t.equal(await ask(bob!, 'list_files g'), listed, 'list_files unchanged');
});

t.test('FILE_CONFLICT: the same name with other contents, whoever asks', async (t) => {
  const run = await startTracker(t);
  const [alice, bob] = await groupOf(run, 'g', ['alice', 'bob']);
  const other = (await groupOf(run, 'h', ['carol']))[0] as Member;
  t.equal(await ask(alice!, upload('g', 'f', A)), 'OK shared f seeders=1');
  const [h0, h1, h2] = A.hashes.split(',') as [string, string, string];
  const variants: Array<[Meta, string]> = [
    [{ ...A, sha256: B.sha256 }, 'another sha256'],
    [{ ...A, size: 11 }, 'another size (same piece count)'],
    [{ ...A, pieceSize: 5 }, 'another piece_size (same piece count)'],
    [{ ...A, hashes: [h0, h2, h1].join(',') }, 'other piece hashes'],
    [B, 'entirely other contents'],
    [EMPTY, 'an empty file'],
  ];
  for (const [m, why] of variants) {
    t.equal(code(await ask(bob!, upload('g', 'f', m))), 'FILE_CONFLICT', `${why}, from another user`);
    t.equal(code(await ask(alice!, upload('g', 'f', m))), 'FILE_CONFLICT', `${why}, from the session that shares it`);
  }
  t.match(await ask(bob!, upload('g', 'f', B)), /^ERR FILE_CONFLICT .*f/, 'the message names the file');
  t.equal(
    await ask(bob!, 'file_peers g f'),
    [`OK f size=12 sha256=${A.sha256} piece_size=4 pieces=3 peers=1`, `hashes ${A.hashes}`, 'peer alice 127.0.0.1:9000'].join('\n'),
    'the file is unchanged',
  );
  t.equal(await ask(other, upload('h', 'f', B)), 'OK shared f seeders=1', 'the same name in another group is another file');
  t.equal(await ask(bob!, upload('g', 'f', A)), 'OK shared f seeders=2', 'the same contents are no conflict');
});

t.test('QUOTA_EXCEEDED with maxSharesPerUser 2: files the user shares live, across groups and sessions', async (t) => {
  const run = await startTracker(t, { maxSharesPerUser: 2 });
  const [alice, bob] = await groupOf(run, 'g', ['alice', 'bob']);
  await expect(alice!, 'create_group h', 'OK group created');
  const alice2: Member = { c: await run.connect(), s: 0n, name: 'alice' };
  alice2.s = await logIn(alice2.c, 'alice');

  t.equal(await ask(alice!, upload('g', 'one', A)), 'OK shared one seeders=1');
  t.equal(await ask(alice!, upload('h', 'two', B)), 'OK shared two seeders=1', 'a second share, in another group');
  const quota = await ask(alice!, upload('g', 'three', EMPTY));
  t.equal(quota, 'ERR QUOTA_EXCEEDED you already share 2 files; stop sharing one first', 'a third share is past the quota');
  t.equal(await ask(alice!, upload('g', 'one', A, '127.0.0.1:9001')), 'OK shared one seeders=1', 're-uploading a file this session shares uses no quota');
  t.equal(await ask(alice!, upload('h', 'two', B, '127.0.0.1:9001')), 'OK shared two seeders=1');
  t.equal(await ask(alice2, upload('g', 'one', A)), 'OK shared one seeders=2', 'another session of the user sharing the same file is not one more file');
  t.equal(code(await ask(alice2, upload('g', 'three', EMPTY))), 'QUOTA_EXCEEDED', 'the quota is per user, not per session');
  t.equal(await ask(bob!, upload('g', 'three', EMPTY)), 'OK shared three seeders=1', 'other users have their own quota');
  t.equal(await ask(bob!, upload('g', 'one', A)), 'OK shared one seeders=3');
  t.equal(code(await ask(bob!, upload('g', 'four', meta('4')))), 'QUOTA_EXCEEDED');

  t.equal(await ask(alice!, 'stop_share h two'), 'OK stopped sharing two');
  t.equal(await ask(alice2, upload('g', 'three', EMPTY)), 'OK shared three seeders=2', 'stop_share frees a place');
  t.equal(code(await ask(alice!, upload('h', 'two', B))), 'QUOTA_EXCEEDED', 'and it is taken again');
  t.equal(await ask(alice!, 'stop_share g one'), 'OK stopped sharing one');
  t.equal(code(await ask(alice!, upload('h', 'two', B))), 'QUOTA_EXCEEDED', 'a file still shared by another session of the user still counts');

  t.equal((await alice2.c.request('logout', alice2.s)).text, 'OK logged out sessions=1');
  t.equal(await ask(alice!, upload('h', 'two', B)), 'OK shared two seeders=1', 'a logout frees its shares');
  t.equal(await ask(alice!, upload('g', 'one', A)), 'OK shared one seeders=2', 'the second file');
  t.equal(rows(await ask(bob!, 'list_files g')).map((r) => `${r.name}:${r.fields['seeders']}`).join(' '), 'one:2 three:1');
});

t.test('QUOTA_EXCEEDED with maxSharesPerUser 0: nobody may share', async (t) => {
  const run = await startTracker(t, { maxSharesPerUser: 0 });
  const [alice] = await groupOf(run, 'g', ['alice']);
  t.equal(code(await ask(alice!, upload('g', 'f', A))), 'QUOTA_EXCEEDED');
  t.equal(await ask(alice!, 'list_files g'), 'OK 0');
});

// --- names and events -------------------------------------------------------

t.test('a file name with spaces, quotes and backslashes round-trips through every answer and the event', async (t) => {
  const run = await startTracker(t);
  const [alice, bob] = await groupOf(run, 'g', ['alice', 'bob']);
  const names = ['my file.txt', 'say "hi" \\ bye.txt', 'tab-free ünïcödé 🎵.mp3', 'back\\slash', 'a=b c=d'];
  for (const name of names) {
    const m = meta(`contents of ${name}`, 8);
    const shared = await ask(alice!, upload('g', name, m));
    t.same(tokenize(shared), ['OK', 'shared', name, 'seeders=1'], `OK shared: ${name}`);
    if (/[ "]/.test(name)) t.ok(shared.startsWith('OK shared "'), 'quoted in the answer');

    const event = await bob!.c.event();
    t.equal(event.session, bob!.s);
    t.same(tokenize(event.text), ['EVENT', 'file_shared', 'g', name, 'alice'], `the event names ${name}`);

    const row = rows(await ask(bob!, 'list_files g')).find((r) => r.name === name);
    t.same(row, { name, fields: { size: String(m.size), sha256: m.sha256, seeders: '1' } }, `list_files row: ${name}`);

    const peers = peersOf(await ask(bob!, line('file_peers', 'g', name)));
    t.equal(peers.head.name, name, `file_peers: ${name}`);
    t.same(peers.head.fields, { size: String(m.size), sha256: m.sha256, piece_size: '8', pieces: String(m.hashes.split(',').length), peers: '1' });
    t.equal(peers.hashes, m.hashes);
    t.same(peers.peers, [['alice', '127.0.0.1:9000']]);
  }
  t.same(
    rows(await ask(bob!, 'list_files g')).map((r) => r.name),
    [...names].sort(),
    'list_files by name',
  );
  for (const name of names) {
    t.same(tokenize(await ask(alice!, line('stop_share', 'g', name))), ['OK', 'stopped', 'sharing', name], `stop_share: ${name}`);
  }
  t.equal(await ask(bob!, 'list_files g'), 'OK 0');
});

t.test('file_shared goes to the other members\' sessions only', async (t) => {
  const run = await startTracker(t);
  const [alice, bob, carol] = await groupOf(run, 'g', ['alice', 'bob', 'carol']);
  const alice2: Member = { c: await run.connect(), s: 0n, name: 'alice' };
  alice2.s = await logIn(alice2.c, 'alice');
  const bob2: Member = { c: await run.connect(), s: 0n, name: 'bob' };
  bob2.s = await logIn(bob2.c, 'bob');
  const dave: Member = { c: await run.connect(), s: 0n, name: 'dave' };
  dave.s = await signUp(dave.c, 'dave');
  t.equal(await ask(dave, 'join_group g'), 'OK request sent', 'dave is only asking to join');
  t.equal(code(await ask(dave, upload('g', 'f', A))), 'NOT_MEMBER', 'a pending request is no membership');
  t.equal(code(await ask(dave, 'list_files g')), 'NOT_MEMBER');
  const erin = (await groupOf(run, 'elsewhere', ['erin']))[0] as Member;
  for (const m of [alice!, alice2, bob!, bob2, carol!]) {
    await sync(m.c, m.s);
    m.c.events.length = 0;
  }

  t.equal(await ask(alice!, upload('g', 'f', A)), 'OK shared f seeders=1');
  t.same(await bob!.c.event(), { text: 'EVENT file_shared g f alice', session: bob!.s }, 'to a member');
  t.same(await bob2.c.event(), { text: 'EVENT file_shared g f alice', session: bob2.s }, 'to each of their live sessions');
  t.same(await carol!.c.event(), { text: 'EVENT file_shared g f alice', session: carol!.s });
  for (const [m, who] of [
    [alice!, "the uploader's own session"],
    [alice2, "the uploader's other session"],
    [dave, 'a user with a pending request'],
    [erin, 'a user of another group'],
  ] as const) {
    await sync(m.c, m.s);
    t.same(m.c.events, [], `nothing to ${who}`);
  }
  for (const m of [bob!, bob2, carol!]) {
    await sync(m.c, m.s);
    t.same(m.c.events, [], 'exactly one event each');
  }

  t.equal(await ask(bob!, upload('g', 'f', A, '127.0.0.1:9100')), 'OK shared f seeders=2');
  t.same(await alice!.c.event(), { text: 'EVENT file_shared g f bob', session: alice!.s }, 'a second seeder is announced too');
  t.same(await alice2.c.event(), { text: 'EVENT file_shared g f bob', session: alice2.s });
  t.same(await carol!.c.event(), { text: 'EVENT file_shared g f bob', session: carol!.s });
  await sync(bob2.c, bob2.s);
  t.same(bob2.c.events, [], "not to the uploader's other session");

  t.equal((await bob2.c.request('logout', bob2.s)).text, 'OK logged out sessions=1');
  t.equal(await ask(carol!, upload('g', 'c', B)), 'OK shared c seeders=1');
  t.same(await bob!.c.event(), { text: 'EVENT file_shared g c carol', session: bob!.s });
  await sync(bob2.c, 0n);
  t.same(bob2.c.events, [], 'not to a logged-out session');

  for (const m of [alice!, alice2, bob!, carol!]) {
    await sync(m.c, m.s);
    m.c.events.length = 0;
  }
  t.equal(code(await ask(carol!, upload('g', 'f', B))), 'FILE_CONFLICT');
  for (const m of [alice!, alice2, bob!]) {
    await sync(m.c, m.s);
    t.same(m.c.events, [], 'a refused upload announces nothing');
  }
});

// --- how shares end -----------------------------------------------------------

t.test('stop_share ends only this session\'s share; the last one forgets the file', async (t) => {
  const run = await startTracker(t);
  const [alice, bob] = await groupOf(run, 'g', ['alice', 'bob']);
  const alice2: Member = { c: await run.connect(), s: 0n, name: 'alice' };
  alice2.s = await logIn(alice2.c, 'alice');
  const db = stateFile(t, run);

  t.equal(await ask(alice!, upload('g', 'f', A, '10.0.0.1:1')), 'OK shared f seeders=1');
  t.equal(await ask(bob!, upload('g', 'f', A, '10.0.0.2:1')), 'OK shared f seeders=2');
  t.match(await ask(alice2, 'stop_share g f'), /^ERR NO_SUCH_FILE /, 'another session of the same user cannot stop it');
  t.equal(rows(await ask(bob!, 'list_files g'))[0]?.fields['seeders'], '2', 'the share is still there');
  const stopped = await alice!.c.request('stop_share g f', alice!.s);
  t.same(stopped, { text: 'OK stopped sharing f', session: alice!.s });
  t.same(peersOf(await ask(bob!, 'file_peers g f')).peers, [['bob', '10.0.0.2:1']], "bob's share goes on");
  t.equal(code(await ask(alice!, 'stop_share g f')), 'NO_SUCH_FILE', 'a second stop_share');
  t.equal(code(await ask(alice!, 'stop_share g never')), 'NO_SUCH_FILE', 'a file nobody shares');
  t.equal(await ask(bob!, 'stop_share g f'), 'OK stopped sharing f');
  t.equal(await ask(alice!, 'list_files g'), 'OK 0', 'the last share ended');
  t.equal(code(await ask(alice!, 'file_peers g f')), 'NO_SUCH_FILE');
  await waitForFile(run, () => count(db, 'files') === 0 && count(db, 'shares') === 0, 'the file row to go');
  t.equal(await ask(bob!, upload('g', 'f', B)), 'OK shared f seeders=1', 'the name is free for other contents');
});

t.test('logout ends the shares of that session only', async (t) => {
  const run = await startTracker(t);
  const [alice, bob] = await groupOf(run, 'g', ['alice', 'bob']);
  await expect(alice!, 'create_group h', 'OK group created');
  const alice2: Member = { c: await run.connect(), s: 0n, name: 'alice' };
  alice2.s = await logIn(alice2.c, 'alice');
  const db = stateFile(t, run);

  t.equal(await ask(alice!, upload('g', 'f', A, '10.0.0.1:1')), 'OK shared f seeders=1');
  t.equal(await ask(alice!, upload('h', 'only-mine', B, '10.0.0.1:1')), 'OK shared only-mine seeders=1');
  t.equal(await ask(alice2, upload('g', 'f', A, '10.0.0.3:1')), 'OK shared f seeders=2');
  t.equal(await ask(bob!, upload('g', 'f', A, '10.0.0.2:1')), 'OK shared f seeders=3');

  t.same(await alice!.c.request('logout', alice!.s), { text: 'OK logged out sessions=1', session: 0n });
  t.same(
    peersOf(await ask(bob!, 'file_peers g f')).peers,
    [
      ['alice', '10.0.0.3:1'],
      ['bob', '10.0.0.2:1'],
    ],
    "the other session's share and bob's go on",
  );
  t.equal(await ask(alice2, 'list_files h'), 'OK 0', 'a file in another group shared by that session alone is gone');
  await waitForFile(run, () => count(db, 'shares') === 2 && count(db, 'files') === 1, 'the state file to drop the shares');
  t.equal(await ask(alice2, upload('h', 'only-mine', A)), 'OK shared only-mine seeders=1', 'its name is free again');

  t.same(await alice2.c.request('logout', alice2.s), { text: 'OK logged out sessions=0', session: 0n });
  t.equal(rows(await ask(bob!, 'list_files g'))[0]?.fields['seeders'], '1');
  t.same(await bob!.c.request('logout', bob!.s), { text: 'OK logged out sessions=0', session: 0n });
  await waitForFile(run, () => count(db, 'shares') === 0 && count(db, 'files') === 0, 'every share and file to go');
});

t.test('leave_group ends the leaver\'s shares in that group only; deleting a group removes its files', async (t) => {
  const run = await startTracker(t);
  const [alice, bob, carol] = await groupOf(run, 'g', ['alice', 'bob', 'carol']);
  await expect(bob!, 'create_group h', 'OK group created');
  const bob2: Member = { c: await run.connect(), s: 0n, name: 'bob' };
  bob2.s = await logIn(bob2.c, 'bob');
  const db = stateFile(t, run);

  t.equal(await ask(bob!, upload('g', 'shared', A, '10.0.0.2:1')), 'OK shared shared seeders=1');
  t.equal(await ask(carol!, upload('g', 'shared', A, '10.0.0.3:1')), 'OK shared shared seeders=2');
  t.equal(await ask(bob2, upload('g', 'shared', A, '10.0.0.22:1')), 'OK shared shared seeders=3', 'bob shares it from a second session too');
  t.equal(await ask(bob!, upload('g', 'bobs', B, '10.0.0.2:1')), 'OK shared bobs seeders=1');
  t.equal(await ask(bob!, upload('h', 'kept', B, '10.0.0.2:1')), 'OK shared kept seeders=1');
  t.equal(await ask(alice!, upload('g', 'owners', EMPTY, '10.0.0.1:1')), 'OK shared owners seeders=1');

  t.equal(await ask(bob!, 'leave_group g'), 'OK left g', "bob leaves: the shares of all his sessions in g end");
  t.equal(
    await ask(carol!, 'list_files g'),
    ['OK 2', `owners size=0 sha256=${EMPTY.sha256} seeders=1`, `shared size=12 sha256=${A.sha256} seeders=1`].join('\n'),
    "bob's shares in g ended; his file there is forgotten",
  );
  t.same(peersOf(await ask(carol!, 'file_peers g shared')).peers, [['carol', '10.0.0.3:1']]);
  t.equal(await ask(bob!, 'list_files h'), `OK 1\nkept size=${B.size} sha256=${B.sha256} seeders=1`, 'his share in another group goes on');
  t.equal(code(await ask(bob!, 'stop_share g shared')), 'NO_SUCH_FILE', 'nothing left for him to stop in g');
  t.equal(code(await ask(bob2, 'stop_share g shared')), 'NO_SUCH_FILE', 'nor for his other session');
  t.equal(code(await ask(bob2, upload('g', 'shared', A))), 'NOT_MEMBER', 'and he may not share there any more');
  t.equal(await ask(carol!, upload('g', 'bobs', A)), 'OK shared bobs seeders=1', 'the forgotten name is free for other contents');

  t.equal(await ask(alice!, 'leave_group g'), 'OK left g', 'the owner leaves');
  t.equal(await ask(carol!, 'list_files g'), `OK 2\nbobs size=12 sha256=${A.sha256} seeders=1\nshared size=12 sha256=${A.sha256} seeders=1`);

  t.equal(await ask(carol!, 'leave_group g'), 'OK left g', 'the last member leaves: g is deleted');
  await waitForFile(run, () => count(db, "files WHERE grp = 'g'") === 0 && count(db, "shares WHERE grp = 'g'") === 0 && count(db, "groups WHERE name = 'g'") === 0, 'g and its files to go');
  t.equal(code(await ask(carol!, 'list_files g')), 'NO_SUCH_GROUP');
  t.equal(code(await ask(carol!, 'stop_share g shared')), 'NO_SUCH_GROUP');
  t.equal(await ask(carol!, 'create_group g'), 'OK group created', 'a new g');
  t.equal(await ask(carol!, 'list_files g'), 'OK 0', 'has none of the old files');
  t.equal(await ask(carol!, upload('g', 'shared', B)), 'OK shared shared seeders=1', 'and takes any contents under the old names');
  await waitForFile(run, () => true, 'the state file to catch up');
  t.equal(count(db, "files WHERE grp = 'h'"), 1, 'h is untouched');
});

t.test('session expiry: its shares stop counting at once and end with the purge', async (t) => {
  const ttl = 10_000;
  const slack = ttl / 10; // a written expiry is the use plus one TTL and this slack
  const run = await startTracker(t, { sessionTtlMs: ttl, maxSharesPerUser: 2, sessionPurgeIntervalMs: 3_600_000 });
  const [alice, bob] = await groupOf(run, 'g', ['alice', 'bob']);
  const db = stateFile(t, run);
  t.equal(await ask(alice!, upload('g', 'both', A, '10.0.0.1:1')), 'OK shared both seeders=1');
  t.equal(await ask(bob!, upload('g', 'both', A, '10.0.0.2:1')), 'OK shared both seeders=2');
  t.equal(await ask(alice!, upload('g', 'hers', B, '10.0.0.1:1')), 'OK shared hers seeders=1');

  run.clock.advance(6000);
  t.equal(await bob!.c.text('whoami', bob!.s), 'OK bob sessions=1', "bob's session slides on");
  run.clock.advance(ttl + slack - 6000 + 1); // alice's session expired a millisecond ago; bob's lives
  t.equal(await ask(bob!, 'list_files g'), `OK 1\nboth size=12 sha256=${A.sha256} seeders=1`, 'seeders count live sessions only');
  t.same(peersOf(await ask(bob!, 'file_peers g both')).peers, [['bob', '10.0.0.2:1']]);
  t.equal(code(await ask(bob!, 'file_peers g hers')), 'NO_SUCH_FILE', 'a file with no live seeder');
  t.equal(await ask(bob!, upload('g', 'both', A, '10.0.0.2:2')), 'OK shared both seeders=1', 'the upload answer counts live seeders too');
  await waitForFile(run, () => count(db, 'shares') === 3, 'the state file to hold the shares');
  t.equal(count(db, 'shares'), 3, 'the expired session\'s rows stay until the purge');
  // Per the rules, the file is forgotten only when its last share ends, at the purge.
  t.equal(code(await ask(bob!, upload('g', 'hers', A))), 'FILE_CONFLICT', 'so its name is still taken until then');

  const again: Member = { c: await run.connect(), s: 0n, name: 'alice' };
  again.s = await logIn(again.c, 'alice');
  t.equal(await ask(again, upload('g', 'hers', B, '10.0.0.1:2')), 'OK shared hers seeders=1', "expired shares do not count against alice's quota");
  t.equal(await ask(again, upload('g', 'both', A, '10.0.0.1:2')), 'OK shared both seeders=2');
  t.equal(code(await ask(again, upload('g', 'third', EMPTY))), 'QUOTA_EXCEEDED', 'her live shares do');
  t.equal(code(await alice!.c.text('stop_share g hers', alice!.s)), 'AUTH_REQUIRED', 'the expired session can stop nothing');
});

t.test('the purge deletes an expired session\'s shares and forgets files left without one', async (t) => {
  const ttl = 10_000;
  const slack = ttl / 10; // a written expiry is the use plus one TTL and this slack
  const run = await startTracker(t, { sessionTtlMs: ttl, sessionPurgeIntervalMs: 20 });
  const [alice, bob] = await groupOf(run, 'g', ['alice', 'bob']);
  const db = stateFile(t, run);
  const logDb = new Database(logPathFor(run.dbPath), { readonly: true });
  t.teardown(() => logDb.close());
  t.equal(await ask(alice!, upload('g', 'f', A)), 'OK shared f seeders=1');
  t.equal(await ask(alice!, upload('g', 'both', B, '10.0.0.1:1')), 'OK shared both seeders=1');
  t.equal(await ask(bob!, upload('g', 'both', B, '10.0.0.2:1')), 'OK shared both seeders=2');
  await waitForFile(run, () => count(db, 'shares') === 3, 'the state file to hold the shares');

  run.clock.advance(6000);
  t.equal(await bob!.c.text('whoami', bob!.s), 'OK bob sessions=1');
  run.clock.advance(ttl + slack - 6000 + 1);
  t.equal(await ask(bob!, 'list_files g'), `OK 1\nboth size=${B.size} sha256=${B.sha256} seeders=1`, 'seeders drop at once');
  await waitForFile(run, () => count(db, 'shares') === 1 && count(db, 'files') === 1 && count(db, 'sessions') === 1, 'the purge to delete the rows');
  t.same(db.prepare('SELECT name, user, peer FROM shares').all(), [{ name: 'both', user: 'bob', peer: '10.0.0.2:1' }]);
  const changes = (logDb.prepare('SELECT change FROM sync_log ORDER BY seq').pluck().all() as string[]).map(decodeChange);
  const purge = changes.find((c) => c.body.type === 'sessions_expired');
  t.same(purge?.body, { type: 'sessions_expired', sessions: [alice!.s.toString()], at: run.clock.t }, 'one replicated change did it');
  t.equal(await ask(bob!, upload('g', 'f', B)), 'OK shared f seeders=1', 'the forgotten name takes other contents');
  t.same(peersOf(await ask(bob!, 'file_peers g both')).peers, [['bob', '10.0.0.2:1']]);
});

// --- determinism ----------------------------------------------------------------

t.test('replaying the log into a fresh store reproduces the files and shares tables', async (t) => {
  const ttl = 10_000;
  const slack = ttl / 10; // a written expiry is the use plus one TTL and this slack
  const run = await startTracker(t, { sessionTtlMs: ttl, sessionPurgeIntervalMs: 20 });
  const [alice, bob, carol] = await groupOf(run, 'g', ['alice', 'bob', 'carol']);
  await expect(carol!, 'create_group solo', 'OK group created');
  const db = stateFile(t, run);
  const bob2: Member = { c: await run.connect(), s: 0n, name: 'bob' };
  bob2.s = await logIn(bob2.c, 'bob');

  t.equal(await ask(alice!, upload('g', 'spaced name.txt', A, '10.0.0.1:1')), 'OK shared "spaced name.txt" seeders=1');
  t.equal(await ask(bob!, upload('g', 'spaced name.txt', A, '10.0.0.2:1')), 'OK shared "spaced name.txt" seeders=2');
  t.equal(await ask(bob2, upload('g', 'spaced name.txt', A, '10.0.0.22:1')), 'OK shared "spaced name.txt" seeders=3');
  t.equal(await ask(bob!, upload('g', 'spaced name.txt', A, '10.0.0.2:2')), 'OK shared "spaced name.txt" seeders=3');
  t.equal(await ask(carol!, upload('g', 'empty', EMPTY, '[::1]:3')), 'OK shared empty seeders=1');
  t.equal(await ask(carol!, upload('solo', 'gone-with-group', B, '10.0.0.3:1')), 'OK shared gone-with-group seeders=1');
  t.equal(await ask(bob2, upload('g', 'stopped', B, '10.0.0.22:1')), 'OK shared stopped seeders=1');
  t.equal(await ask(bob2, 'stop_share g stopped'), 'OK stopped sharing stopped');
  t.equal(await ask(carol!, 'leave_group solo'), 'OK left solo');
  t.equal((await bob2.c.request('logout', bob2.s)).text, 'OK logged out sessions=1');
  t.equal(await ask(alice!, upload('g', 'alices', B, '10.0.0.1:1')), 'OK shared alices seeders=1');
  // alice's session expires and is purged; bob and carol stay live.
  run.clock.advance(6000);
  t.equal(await bob!.c.text('whoami', bob!.s), 'OK bob sessions=1');
  t.equal(await carol!.c.text('whoami', carol!.s), 'OK carol sessions=1');
  run.clock.advance(ttl + slack - 6000 + 1);
  await waitForFile(run, () => count(db, 'sessions') === 2, 'the purge');
  t.equal(await ask(carol!, upload('g', 'alices', A, '10.0.0.3:9')), 'OK shared alices seeders=1', 'a name reused after the purge');
  t.equal(await ask(carol!, 'leave_group g'), 'OK left g');
  t.equal(await ask(bob!, upload('g', 'last', meta('x'.repeat(100), 7), '10.0.0.2:1')), 'OK shared last seeders=1');

  const final = await bob!.c.text('status');
  const lastSeq = seq(final);
  const logHash = /log_hash=([0-9a-f]{64})/.exec(final)?.[1];
  await run.stop();

  const store = Store.open(run.dbPath);
  t.teardown(() => store.close());
  const logStore = LogStore.open(logPathFor(run.dbPath));
  t.teardown(() => logStore.close());
  const texts = logStore.after(0, 100_000).map((r) => r.change);
  t.equal(texts.length, lastSeq);
  const types = new Set(texts.map((x) => decodeChange(x).body.type));
  for (const type of ['file_shared', 'share_stopped', 'session_closed', 'sessions_expired', 'member_left'] as Array<Change['body']['type']>) {
    t.ok(types.has(type), `the history has ${type}`);
  }
  const original = dumpFiles(store.db);
  t.same(
    original['files']?.map((f) => (f as { name: string }).name),
    ['last', 'spaced name.txt'],
    'what is left: files with a share',
  );
  t.equal(original['shares']?.length, 2, "bob's two shares");

  const copy = await openLog(t, {}, await tempDb(t, 'replay.db'));
  for (const text of texts) copy.log.applyOne(decodeChange(text));
  await copy.log.drain();
  t.equal(copy.log.seq, lastSeq);
  t.equal(copy.log.logHash, logHash, 'the same log_hash');
  t.same(dumpFiles(copy.store.db), original, 'the same files and shares, row for row');
  t.same(dump(copy.store.db), dump(store.db), 'and the same other tables');
});

// --- peers are stored in canonical form ------------------------------------------

t.test('a peer with surrounding blanks is stored trimmed: file_peers hands out a usable address', async (t) => {
  const run = await startTracker(t);
  const [alice] = await groupOf(run, 'g', ['alice']);
  for (const [peer, what] of [
    [' 127.0.0.1:9000', 'a leading space'],
    ['127.0.0.1:9000 ', 'a trailing space'],
    ['\t127.0.0.1:9000', 'a leading tab'],
    ['127.0.0.1:9000\u00a0', 'a trailing no-break space'],
  ] as const) {
    const answer = await ask(alice!, upload('g', 'f', A, peer));
    if (code(answer) === 'BAD_REQUEST') {
      t.pass(`${what}: refused`);
      continue;
    }
    t.equal(answer, 'OK shared f seeders=1', `${what}: accepted`);
    const peerLine = (await ask(alice!, 'file_peers g f')).split('\n')[2];
    t.equal(peerLine, 'peer alice 127.0.0.1:9000', `${what}: the peer line is exactly "peer <user> <host:port>"`);
    t.equal(await ask(alice!, 'stop_share g f'), 'OK stopped sharing f');
  }
});

/**
 * File metadata and shares against the real tracker-primary process
 * (PROTOCOL.md §3, docs/protocol.md "File rules"): two members sharing and
 * listing, the file_peers answer, the file_shared event, FILE_CONFLICT,
 * QUOTA_EXCEEDED (`--max-shares-per-user 1`), NOT_MEMBER, stop_share, a
 * share ending at logout, and shares surviving kill -9 and a restart (they
 * belong to sessions, and sessions are durable).
 */
import { createHash } from 'node:crypto';
import t from 'tap';
import { parseRow, tokenize } from '@tracker-cluster/protocol';
import { startTracker } from './helpers/tracker.js';
import type { RunningTracker, TeardownHost } from './helpers/tracker.js';
import { connect } from './helpers/wire.js';
import type { WireClient } from './helpers/wire.js';
import { expectAnswer, login, parseList, send, settle, signUp, status } from './helpers/commands.js';

interface Meta {
  size: number;
  sha256: string;
  pieceSize: number;
  hashes: string;
}

const sha = (data: string | Buffer): string => createHash('sha256').update(data).digest('hex');

/** What a client computes for `content` in pieces of `pieceSize`. */
function meta(content: string, pieceSize = 4): Meta {
  const bytes = Buffer.from(content);
  const hashes: string[] = [];
  for (let at = 0; at < bytes.length; at += pieceSize) hashes.push(sha(bytes.subarray(at, at + pieceSize)));
  return { size: bytes.length, sha256: sha(bytes), pieceSize, hashes: hashes.length === 0 ? '-' : hashes.join(',') };
}

function uploadWords(group: string, file: string, m: Meta, peer: string): string[] {
  return ['upload_file', group, file, String(m.size), m.sha256, String(m.pieceSize), peer, m.hashes];
}

async function upload(c: WireClient, session: bigint, group: string, file: string, m: Meta, peer = '127.0.0.1:9000'): Promise<string> {
  return (await send(c, uploadWords(group, file, m, peer), session)).payload;
}

async function ask(c: WireClient, session: bigint, ...words: string[]): Promise<string> {
  return (await send(c, words, session)).payload;
}

async function open(t: TeardownHost, tracker: RunningTracker): Promise<WireClient> {
  const c = await connect(tracker.port);
  t.teardown(() => c.close());
  return c;
}

interface Party {
  c: WireClient;
  s: bigint;
}

/** alice owns `g`, bob is a member, carol is neither; each on a connection of their own. */
async function party(t: TeardownHost, tracker: RunningTracker): Promise<{ alice: Party; bob: Party; carol: Party }> {
  const alice = { c: await open(t, tracker), s: 0n };
  const bob = { c: await open(t, tracker), s: 0n };
  const carol = { c: await open(t, tracker), s: 0n };
  alice.s = await signUp(alice.c, 'alice');
  bob.s = await signUp(bob.c, 'bob');
  carol.s = await signUp(carol.c, 'carol');
  await expectAnswer(alice.c, 'create_group g', 'OK group created', alice.s);
  await expectAnswer(bob.c, 'join_group g', 'OK request sent', bob.s);
  await expectAnswer(alice.c, 'accept_request g bob', 'OK bob joined g', alice.s);
  for (const p of [alice, bob, carol]) {
    await settle(p.c);
    p.c.events.length = 0;
    p.c.eventFrames.length = 0;
  }
  return { alice, bob, carol };
}

const SONG = meta('la la la, a song of some length', 8);
const NOTES = meta('notes');
const EMPTY = meta('');

t.test('two members share and list files; file_peers and file_shared as the protocol says', async (t) => {
  const tracker = await startTracker(t);
  const { alice, bob, carol } = await party(t, tracker);

  t.equal(await upload(alice.c, alice.s, 'g', 'song one.mp3', SONG, '10.0.0.1:6881'), 'OK shared "song one.mp3" seeders=1', 'a name with a space is quoted');
  const event = await bob.c.waitForEvent((p) => p.startsWith('EVENT file_shared '));
  t.equal(event, 'EVENT file_shared g "song one.mp3" alice');
  t.same(tokenize(event), ['EVENT', 'file_shared', 'g', 'song one.mp3', 'alice'], 'and reads back with the request syntax');
  t.equal(bob.c.eventFrames[0]?.session, bob.s, "the event carries bob's session");
  await settle(alice.c);
  await settle(carol.c);
  t.same(alice.c.events, [], 'the uploader is not told');
  t.same(carol.c.events, [], 'nor is a non-member');

  t.equal(await upload(bob.c, bob.s, 'g', 'song one.mp3', SONG, '10.0.0.2:6881'), 'OK shared "song one.mp3" seeders=2', 'a second seeder');
  t.equal(
    await alice.c.waitForEvent((p) => p.startsWith('EVENT file_shared ')),
    'EVENT file_shared g "song one.mp3" bob',
  );
  t.equal(await upload(bob.c, bob.s, 'g', 'notes.txt', NOTES, '10.0.0.2:6881'), 'OK shared notes.txt seeders=1');
  t.equal(await upload(alice.c, alice.s, 'g', 'empty', EMPTY, '[::1]:6881'), 'OK shared empty seeders=1', 'an empty file, hashes -');

  const listed = await ask(alice.c, alice.s, 'list_files', 'g');
  t.equal(
    listed,
    [
      'OK 3',
      `empty size=0 sha256=${EMPTY.sha256} seeders=1`,
      `notes.txt size=5 sha256=${NOTES.sha256} seeders=1`,
      `"song one.mp3" size=${SONG.size} sha256=${SONG.sha256} seeders=2`,
    ].join('\n'),
    'list_files: by name, with seeders',
  );
  t.same(
    parseList(listed).map(parseRow),
    [
      { name: 'empty', fields: { size: '0', sha256: EMPTY.sha256, seeders: '1' } },
      { name: 'notes.txt', fields: { size: '5', sha256: NOTES.sha256, seeders: '1' } },
      { name: 'song one.mp3', fields: { size: String(SONG.size), sha256: SONG.sha256, seeders: '2' } },
    ],
  );
  t.equal(await ask(bob.c, bob.s, 'list_files', 'g'), listed, 'the same for bob');

  const pieces = Math.ceil(SONG.size / 8);
  t.equal(SONG.hashes.split(',').length, pieces);
  t.equal(
    await ask(bob.c, bob.s, 'file_peers', 'g', 'song one.mp3'),
    [
      `OK "song one.mp3" size=${SONG.size} sha256=${SONG.sha256} piece_size=8 pieces=${pieces} peers=2`,
      `hashes ${SONG.hashes}`,
      'peer alice 10.0.0.1:6881',
      'peer bob 10.0.0.2:6881',
    ].join('\n'),
    'file_peers: metadata, hashes, then peers oldest share first',
  );
  t.equal(
    await ask(bob.c, bob.s, 'file_peers', 'g', 'empty'),
    [`OK empty size=0 sha256=${EMPTY.sha256} piece_size=4 pieces=0 peers=1`, 'hashes -', 'peer alice [::1]:6881'].join('\n'),
  );
  t.match(await ask(bob.c, bob.s, 'file_peers', 'g', 'nothing'), /^ERR NO_SUCH_FILE /);

  await t.test('FILE_CONFLICT', async (t) => {
    const other = meta('a different song entirely', 8);
    t.match(await upload(bob.c, bob.s, 'g', 'song one.mp3', other), /^ERR FILE_CONFLICT /, 'another sha256 under a taken name');
    t.match(await upload(alice.c, alice.s, 'g', 'song one.mp3', { ...SONG, pieceSize: 9 }), /^ERR FILE_CONFLICT /, 'another piece size');
    t.match(await upload(alice.c, alice.s, 'g', 'notes.txt', { ...NOTES, size: 6 }), /^ERR FILE_CONFLICT /, 'another size');
    t.equal((await ask(alice.c, alice.s, 'list_files', 'g')), listed, 'nothing changed');
  });

  await t.test('NOT_MEMBER for a non-member', async (t) => {
    t.match(await ask(carol.c, carol.s, 'list_files', 'g'), /^ERR NOT_MEMBER /, 'list_files');
    t.match(await upload(carol.c, carol.s, 'g', 'mine', NOTES), /^ERR NOT_MEMBER /, 'upload_file');
    t.match(await ask(carol.c, carol.s, 'file_peers', 'g', 'notes.txt'), /^ERR NOT_MEMBER /, 'file_peers');
    t.match(await ask(carol.c, carol.s, 'stop_share', 'g', 'notes.txt'), /^ERR NO_SUCH_FILE /, 'stop_share is not members-only: she shares nothing');
    t.match(await ask(carol.c, carol.s, 'list_files', 'nosuch'), /^ERR NO_SUCH_GROUP /);
    t.match(await upload(carol.c, carol.s, 'nosuch', 'x', { ...NOTES, size: -1 }), /^ERR BAD_REQUEST /, 'syntax before state');
    t.match(await ask(carol.c, 0n, 'list_files', 'g'), /^ERR AUTH_REQUIRED /);
  });
});

t.test('peer: a host of at most 253 characters; a 100,000-character one is BAD_REQUEST and not stored', async (t) => {
  const tracker = await startTracker(t);
  const { alice, bob } = await party(t, tracker);
  const before = (await status(alice.c))['seq'];
  const answer = await upload(alice.c, alice.s, 'g', 'notes.txt', NOTES, `${'h'.repeat(100_000)}:6881`);
  t.match(answer, /^ERR BAD_REQUEST peer must be HOST:PORT where your client serves pieces: a host name is at most 253 characters; this one has 100000 \("h{40}…"\)$/);
  t.equal((await status(alice.c))['seq'], before, 'nothing was stored');
  t.match(await ask(bob.c, bob.s, 'file_peers', 'g', 'notes.txt'), /^ERR NO_SUCH_FILE /);

  const longest = ['a'.repeat(63), 'b'.repeat(63), 'c'.repeat(63), 'd'.repeat(61)].join('.');
  t.equal(await upload(alice.c, alice.s, 'g', 'notes.txt', NOTES, `${longest}:6881`), 'OK shared notes.txt seeders=1', 'the longest DNS name is a valid peer');
  t.equal((await ask(bob.c, bob.s, 'file_peers', 'g', 'notes.txt')).split('\n')[2], `peer alice ${longest}:6881`);
});

t.test('peer: an IPv6 literal must be one, a DNS label is at most 63 characters; both are BAD_REQUEST and not stored', async (t) => {
  const tracker = await startTracker(t);
  const { alice, bob } = await party(t, tracker);
  const before = (await status(alice.c))['seq'];
  const label = 'a'.repeat(64);
  t.equal(
    await upload(alice.c, alice.s, 'g', 'notes.txt', NOTES, '[1::2::3]:6881'),
    'ERR BAD_REQUEST peer must be HOST:PORT where your client serves pieces: "1::2::3" is not an IPv6 address (eight groups of 1-4 hex digits, one "::" for a run of zeros)',
  );
  t.equal(
    await upload(alice.c, alice.s, 'g', 'notes.txt', NOTES, `${label}.example.org:6881`),
    `ERR BAD_REQUEST peer must be HOST:PORT where your client serves pieces: a label of a host name is at most 63 characters; "${'a'.repeat(40)}…" has 64`,
  );
  t.equal((await status(alice.c))['seq'], before, 'nothing was stored');
  t.match(await ask(bob.c, bob.s, 'file_peers', 'g', 'notes.txt'), /^ERR NO_SUCH_FILE /);

  t.equal(await upload(alice.c, alice.s, 'g', 'notes.txt', NOTES, `[::ffff:192.0.2.1]:6881`), 'OK shared notes.txt seeders=1', 'an IPv6 literal with an IPv4 tail is one');
  t.equal((await ask(bob.c, bob.s, 'file_peers', 'g', 'notes.txt')).split('\n')[2], 'peer alice [::ffff:192.0.2.1]:6881');
});

t.test('QUOTA_EXCEEDED with --max-shares-per-user 1', async (t) => {
  const tracker = await startTracker(t, { args: ['--max-shares-per-user', '1'] });
  const { alice, bob } = await party(t, tracker);
  t.equal(await upload(alice.c, alice.s, 'g', 'one', NOTES), 'OK shared one seeders=1');
  t.equal(await upload(alice.c, alice.s, 'g', 'two', SONG), 'ERR QUOTA_EXCEEDED you already share 1 file; stop sharing one first', 'a second share; the count in the singular');
  t.equal(await upload(alice.c, alice.s, 'g', 'one', NOTES, '127.0.0.1:9001'), 'OK shared one seeders=1', 're-uploading her own share uses no quota');
  const alice2 = await login(alice.c, 'alice', 'alice-pw');
  t.equal(await upload(alice.c, alice2, 'g', 'one', NOTES), 'OK shared one seeders=2', 'her other session sharing the same file: still one file');
  t.equal(await upload(bob.c, bob.s, 'g', 'one', NOTES), 'OK shared one seeders=3', 'bob has a quota of his own');
  t.equal(await ask(alice.c, alice.s, 'stop_share', 'g', 'one'), 'OK stopped sharing one');
  t.match(await upload(alice.c, alice2, 'g', 'two', SONG), /^ERR QUOTA_EXCEEDED /, 'her other session still shares it');
  t.equal(await ask(alice.c, alice2, 'stop_share', 'g', 'one'), 'OK stopped sharing one');
  t.equal(await upload(alice.c, alice2, 'g', 'two', SONG), 'OK shared two seeders=1', 'stop_share freed her place');
  t.equal(
    await ask(bob.c, bob.s, 'list_files', 'g'),
    `OK 2\none size=5 sha256=${NOTES.sha256} seeders=1\ntwo size=${SONG.size} sha256=${SONG.sha256} seeders=1`,
  );
});

t.test('stop_share and logout end a share; the last one forgets the file', async (t) => {
  const tracker = await startTracker(t);
  const { alice, bob } = await party(t, tracker);
  const alice2 = await login(alice.c, 'alice', 'alice-pw');
  t.equal(await upload(alice.c, alice.s, 'g', 'f', NOTES, '10.0.0.1:1'), 'OK shared f seeders=1');
  t.equal(await upload(alice.c, alice2, 'g', 'f', NOTES, '10.0.0.11:1'), 'OK shared f seeders=2');
  t.equal(await upload(bob.c, bob.s, 'g', 'f', NOTES, '10.0.0.2:1'), 'OK shared f seeders=3');
  t.equal(await upload(bob.c, bob.s, 'g', 'b', SONG, '10.0.0.2:1'), 'OK shared b seeders=1');

  t.match(await ask(alice.c, alice2, 'stop_share', 'g', 'b'), /^ERR NO_SUCH_FILE /, 'a file this session does not share');
  t.match(await ask(bob.c, bob.s, 'stop_share', 'nosuch', 'f'), /^ERR NO_SUCH_GROUP /);
  t.equal(await ask(bob.c, bob.s, 'stop_share', 'g', 'f'), 'OK stopped sharing f');
  t.match(await ask(bob.c, bob.s, 'stop_share', 'g', 'f'), /^ERR NO_SUCH_FILE /, 'twice');
  t.equal(
    await ask(bob.c, bob.s, 'file_peers', 'g', 'f'),
    [`OK f size=5 sha256=${NOTES.sha256} piece_size=4 pieces=2 peers=2`, `hashes ${NOTES.hashes}`, 'peer alice 10.0.0.1:1', 'peer alice 10.0.0.11:1'].join('\n'),
  );

  t.same(await alice.c.request('logout', alice.s), { session: 0n, payload: 'OK logged out sessions=1' });
  t.equal(
    await ask(bob.c, bob.s, 'file_peers', 'g', 'f'),
    [`OK f size=5 sha256=${NOTES.sha256} piece_size=4 pieces=2 peers=1`, `hashes ${NOTES.hashes}`, 'peer alice 10.0.0.11:1'].join('\n'),
    'the logged-out session no longer seeds; the other session of alice does',
  );
  t.same(await alice.c.request('logout', alice2), { session: 0n, payload: 'OK logged out sessions=0' });
  t.equal(await ask(bob.c, bob.s, 'list_files', 'g'), `OK 1\nb size=${SONG.size} sha256=${SONG.sha256} seeders=1`, 'f had no seeder left');
  t.match(await ask(bob.c, bob.s, 'file_peers', 'g', 'f'), /^ERR NO_SUCH_FILE /);
  t.equal(await upload(bob.c, bob.s, 'g', 'f', SONG), 'OK shared f seeders=1', 'its name is free for other contents');
  t.equal(await ask(bob.c, bob.s, 'stop_share', 'g', 'b'), 'OK stopped sharing b');
  t.equal(await ask(bob.c, bob.s, 'list_files', 'g'), `OK 1\nf size=${SONG.size} sha256=${SONG.sha256} seeders=1`);
});

t.test('shares survive kill -9 and a restart, with seq and log_hash unchanged', async (t) => {
  const first = await startTracker(t);
  const { alice, bob } = await party(t, first);
  t.equal(await upload(alice.c, alice.s, 'g', 'song one.mp3', SONG, '10.0.0.1:6881'), 'OK shared "song one.mp3" seeders=1');
  t.equal(await upload(bob.c, bob.s, 'g', 'song one.mp3', SONG, '10.0.0.2:6881'), 'OK shared "song one.mp3" seeders=2');
  t.equal(await upload(bob.c, bob.s, 'g', 'notes.txt', NOTES, '10.0.0.2:6881'), 'OK shared notes.txt seeders=1');
  t.equal(await upload(alice.c, alice.s, 'g', 'stopped', EMPTY), 'OK shared stopped seeders=1');
  t.equal(await ask(alice.c, alice.s, 'stop_share', 'g', 'stopped'), 'OK stopped sharing stopped');
  const listed = await ask(bob.c, bob.s, 'list_files', 'g');
  const peers = await ask(bob.c, bob.s, 'file_peers', 'g', 'song one.mp3');
  t.equal(parseList(listed).length, 2);
  const before = await status(bob.c);

  await first.kill9();
  t.equal(first.proc.signalCode, 'SIGKILL', 'crashed');
  const second = await first.restart();
  t.match(second.description, new RegExp(`seq=${before['seq']}$`), 'the ready line shows the same seq');
  const c = await open(t, second);
  const after = await status(c);
  t.equal(after['seq'], before['seq'], 'seq unchanged');
  t.equal(after['log_hash'], before['log_hash'], 'log_hash unchanged');

  t.equal(await ask(c, bob.s, 'list_files', 'g'), listed, 'list_files still shows the shares: their sessions survived');
  t.equal(await ask(c, alice.s, 'file_peers', 'g', 'song one.mp3'), peers, 'file_peers too, in the same order');
  t.match(await ask(c, alice.s, 'file_peers', 'g', 'stopped'), /^ERR NO_SUCH_FILE /, 'a stopped share stays stopped');
  t.equal(await upload(c, alice.s, 'g', 'song one.mp3', SONG, '10.0.0.1:6882'), 'OK shared "song one.mp3" seeders=2', 'the old session still owns its share');
  t.match(await upload(c, alice.s, 'g', 'notes.txt', SONG), /^ERR FILE_CONFLICT /, 'the metadata survived');
  t.equal(await ask(c, bob.s, 'stop_share', 'g', 'notes.txt'), 'OK stopped sharing notes.txt', 'and can stop it after the restart');
  t.same(await c.request('logout', alice.s), { session: 0n, payload: 'OK logged out sessions=0' });
  t.equal(
    await ask(c, bob.s, 'file_peers', 'g', 'song one.mp3'),
    [`OK "song one.mp3" size=${SONG.size} sha256=${SONG.sha256} piece_size=8 pieces=${Math.ceil(SONG.size / 8)} peers=1`, `hashes ${SONG.hashes}`, 'peer bob 10.0.0.2:6881'].join('\n'),
  );
  const { code: exit } = await second.stop();
  t.equal(exit, 0, 'SIGTERM exits 0');
});

/**
 * The pure parts of the peer side: piece arithmetic, bitfields, the piece
 * picker, the peer protocol codec, file_peers parsing. No I/O.
 */
import t from 'tap';
import { encodeFrame, FrameDecoder } from '@tracker-cluster/protocol';
import {
  Bitfield,
  encodePieceAnswerHead,
  expandHome,
  formatHaveAnswer,
  formatPieceRequest,
  parseFilePeers,
  parseHaveAnswer,
  parsePeerRequest,
  parsePieceAnswer,
  parsePieceSize,
  PeerAnswerError,
  PeerFrameReader,
  PieceBufferPool,
  PiecePicker,
  unspecifiedListenWarning,
  tieBlock,
  pieceCount,
  pieceLength,
  pieceOffset,
  progressBar,
  stallReason,
  noPeerReason,
  downloadsFailedLine,
  downloadListing,
  formatReply,
} from '@tracker-cluster/client';
import type { DownloadView } from '@tracker-cluster/client';

t.test('piece arithmetic', async (t) => {
  t.equal(pieceCount(0, 10), 0, 'an empty file has no pieces');
  t.equal(pieceCount(1, 10), 1);
  t.equal(pieceCount(10, 10), 1);
  t.equal(pieceCount(11, 10), 2);
  const layout = { size: 25, pieceSize: 10 };
  t.same([0, 1, 2].map((i) => pieceLength(layout, i)), [10, 10, 5], 'the last piece is shorter');
  t.equal(pieceOffset(layout, 2), 20);
  t.throws(() => pieceLength(layout, 3), RangeError);
  t.throws(() => pieceLength({ size: 1, pieceSize: 4 }, 1), { name: 'RangeError', message: /^no piece 1 in 1 piece$/ }, 'the count in the singular');
  t.throws(() => pieceLength({ size: 0, pieceSize: 10 }, 0), RangeError);
  t.equal(parsePieceSize('65536'), 65536);
  t.equal(parsePieceSize('512k'), 512 * 1024);
  t.equal(parsePieceSize('4MiB'), 4 * 1024 * 1024);
  t.equal(parsePieceSize('64m'), 64 * 1024 * 1024);
  t.equal(parsePieceSize('65m'), undefined, 'over 64 MiB');
  t.equal(parsePieceSize('0'), undefined);
  t.equal(parsePieceSize('1.5k'), undefined);
});

t.test('bitfield: MSB first, hex round trip, strict parse', async (t) => {
  const b = new Bitfield(10);
  b.set(0);
  b.set(9);
  b.set(9);
  t.equal(b.count, 2, 'setting twice counts once');
  t.equal(b.toHex(), '8040');
  t.ok(Bitfield.fromHex(10, '8040')?.get(9));
  t.equal(Bitfield.fromHex(10, '8040')?.count, 2);
  t.equal(Bitfield.fromHex(10, '8041'), undefined, 'a spare bit set is refused');
  t.equal(Bitfield.fromHex(10, '80'), undefined, 'wrong length');
  t.equal(Bitfield.fromHex(10, '80zz'), undefined, 'not hex');
  b.clear(0);
  t.equal(b.count, 1);
  t.notOk(b.get(0));
  t.ok(Bitfield.full(9).complete);
  t.equal(Bitfield.full(9).toHex(), 'ff80');
  t.ok(new Bitfield(0).complete, 'zero pieces is complete');
  t.throws(() => b.set(10), RangeError);
});

t.test('picker: rarest first, ties random, one request per piece, release and complete', async (t) => {
  let seed = 1;
  const random = (): number => ((seed = (seed * 16807) % 2147483647) / 2147483647);
  const picker = new PiecePicker(6, undefined, random);
  const all = Bitfield.full(6);
  const partial = new Bitfield(6);
  partial.set(4);
  partial.set(5);
  picker.addPeer(all);
  picker.addPeer(partial);
  // Pieces 0-3 are held by one peer, 4-5 by two: 0-3 are rarer.
  const first = [picker.pick(all), picker.pick(all), picker.pick(all), picker.pick(all)];
  t.same([...first].sort(), [0, 1, 2, 3], 'the rare pieces first');
  const fromPartial = picker.pick(partial);
  t.ok(fromPartial >= 4, 'the partial peer gets what it has');
  t.equal(picker.unrequested, 1);
  picker.release(first[0] as number);
  t.equal(picker.pick(partial), 9 - fromPartial, 'the partial peer has nothing else but the other one');
  t.equal(picker.pick(partial), -1);
  t.equal(picker.pick(all), first[0], 'a released piece is asked again');
  for (let i = 0; i < 6; i++) picker.complete(i);
  t.equal(picker.remaining, 0);
  t.equal(picker.pick(all), -1);

  const done = new Bitfield(3);
  done.set(1);
  const resumed = new PiecePicker(3, done);
  t.equal(resumed.remaining, 2, 'resume starts from the verified pieces');
  const one = Bitfield.full(3);
  resumed.addPeer(one);
  t.not(resumed.pick(one), 1);

  // Random tie-break: two pickers with other seeds order equal pieces differently.
  const orders = new Set<string>();
  for (let s = 1; s < 20; s++) {
    let x = s * 7919;
    const p = new PiecePicker(8, undefined, () => ((x = (x * 16807) % 2147483647) / 2147483647));
    const f = Bitfield.full(8);
    p.addPeer(f);
    orders.add(String(p.pick(f)));
  }
  t.ok(orders.size > 1, 'ties are broken at random');
});

t.test('picker: the end game asks a second peer for pieces outstanding elsewhere, once every piece was asked for', async (t) => {
  const picker = new PiecePicker(3);
  const all = Bitfield.full(3);
  picker.addPeer(all);
  picker.addPeer(all);
  const slow = [picker.pick(all), picker.pick(all)];
  t.equal(picker.pickAgain(all, () => false), -1, 'not while a piece was never asked for');
  const last = picker.pick(all);
  t.equal(picker.unrequested, 0);
  const mine = new Set([last]);
  const again = [picker.pickAgain(all, (i) => mine.has(i)), picker.pickAgain(all, (i) => mine.has(i))];
  t.same([...again].sort(), [...slow].sort(), 'the pieces outstanding at the other peer, not its own');
  t.equal(picker.pickAgain(all, (i) => mine.has(i)), -1, 'at most two copies of a piece');
  const [a, b] = again as [number, number];
  picker.release(a);
  t.equal(picker.unrequested, 0, 'one copy of a failed: the other is still in play');
  picker.release(a);
  t.equal(picker.unrequested, 1, 'both failed: needed again');
  t.equal(picker.pick(all), a);
  picker.complete(b);
  picker.release(b);
  t.equal(picker.remaining, 2, 'a late copy of a done piece changes nothing');
  const third = picker.pickAgain(all, () => false);
  t.ok(third === a || third === last, 'a piece still outstanding is asked again, never one done');
});

t.test('picker: with blocks, equally rare pieces come block by block, random within each', async (t) => {
  let x = 12345;
  const random = (): number => ((x = (x * 16807) % 2147483647) / 2147483647);
  const picker = new PiecePicker(12, undefined, random, 4);
  const all = Bitfield.full(12);
  picker.addPeer(all);
  const order = Array.from({ length: 12 }, () => picker.pick(all));
  t.same(order.slice(0, 4).sort((a, b) => a - b), [0, 1, 2, 3], 'block 0 first');
  t.same(order.slice(4, 8).sort((a, b) => a - b), [4, 5, 6, 7], 'then block 1');
  t.same(order.slice(8).sort((a, b) => a - b), [8, 9, 10, 11], 'then block 2');
  const orders = new Set<string>();
  for (let s = 1; s < 20; s++) {
    let y = s * 7919;
    const p = new PiecePicker(8, undefined, () => ((y = (y * 16807) % 2147483647) / 2147483647), 4);
    p.addPeer(all);
    orders.add(String(p.pick(all)));
  }
  t.ok(orders.size > 1, 'random within a block');
  // Rarity still comes first: a piece of a later block held by fewer peers goes before.
  const rare = new PiecePicker(8, undefined, random, 4);
  const some = new Bitfield(8);
  for (let i = 0; i < 7; i++) some.set(i);
  rare.addPeer(Bitfield.full(8));
  rare.addPeer(some);
  t.equal(rare.pick(Bitfield.full(8)), 7, 'the rarest piece, though in the last block');
  t.equal(tieBlock(512 * 1024), 32, '16 MiB blocks of 512 KiB pieces');
  t.equal(tieBlock(64 * 1024 * 1024), 1, 'one piece when pieces are larger than a block');
});

t.test('peer frame reader: frames split anywhere, each payload in a buffer of its own', async (t) => {
  const frames = [encodeFrame(0n, 'OK 0 5\nhello'), encodeFrame(0n, ''), encodeFrame(0n, Buffer.alloc(3000, 7)), encodeFrame(0n, 'OK 1')];
  const wire = Buffer.concat(frames);
  for (const step of [1, 2, 5, 11, 12, 13, 100, 4096, wire.length]) {
    const reader = new PeerFrameReader({ maxPayload: 4096 });
    const got: Buffer[] = [];
    for (let at = 0; at < wire.length; at += step) got.push(...reader.push(wire.subarray(at, at + step)));
    t.same(
      got.map((p) => p.toString('latin1')),
      ['OK 0 5\nhello', '', Buffer.alloc(3000, 7).toString('latin1'), 'OK 1'],
      `chunks of ${step} bytes`,
    );
    t.equal(reader.bufferedBytes, 0);
    const big = got[2] as Buffer;
    t.ok(big.byteOffset === 0 && big.buffer.byteLength === 3000, 'the payload owns its ArrayBuffer');
  }

  // Reading in place: the socket writes into nextBuffer(), never past a frame.
  const reader = new PeerFrameReader({ maxPayload: 4096 });
  const out: Buffer[] = [];
  let at = 0;
  while (at < wire.length) {
    const into = reader.nextBuffer();
    t.ok(into.length > 0, 'never an empty buffer');
    const n = Math.min(into.length, 700, wire.length - at);
    wire.copy(into, 0, at, at + n);
    at += n;
    const payload = reader.filled(n);
    if (payload) out.push(payload);
  }
  t.same(out.map((p) => p.length), [12, 0, 3000, 4], 'the same frames, read in place');

  const allocated: number[] = [];
  const custom = new PeerFrameReader({ maxPayload: 4096, allocate: (size) => (allocated.push(size), Buffer.allocUnsafeSlow(size)) });
  custom.push(encodeFrame(0n, 'abc'));
  t.same(allocated, [3], 'payloads come from allocate');

  const tooBig = new PeerFrameReader({ maxPayload: 10 });
  const header = Buffer.alloc(4);
  header.writeUInt32BE(8 + 11);
  t.throws(() => tooBig.push(header), { code: 'FRAME_TOO_LARGE' }, 'refused from the 4 length bytes alone');
  t.throws(() => tooBig.push(Buffer.alloc(1)), { code: 'FRAME_TOO_LARGE' }, 'and failed for good');
  const tooSmall = new PeerFrameReader({ maxPayload: 10 });
  t.throws(() => tooSmall.push(Buffer.from([0, 0, 0, 7])), { code: 'PROTOCOL' });
});

t.test('piece buffer pool: reuses whole buffers of its capacity, bounded', async (t) => {
  const pool = new PieceBufferPool(1000, 2);
  const a = pool.take(900);
  t.equal(a.length, 900);
  t.equal(a.buffer.byteLength, 1000, 'a large frame gets a pool-sized buffer');
  t.equal(pool.take(100).buffer.byteLength, 100, 'a small frame a buffer of its own');
  t.equal(pool.take(2000).length, 2000, 'a frame over the capacity too');
  pool.give(a.buffer as ArrayBuffer);
  pool.give(new ArrayBuffer(500));
  t.equal(pool.idle, 1, 'only buffers of its capacity are kept');
  t.equal(pool.take(1000).buffer, a.buffer, 'and reused');
  for (let i = 0; i < 5; i++) pool.give(new ArrayBuffer(1000));
  t.equal(pool.idle, 2, 'at most `keep` idle buffers');
});

t.test('peer requests parse', async (t) => {
  const sha = 'a'.repeat(64);
  t.same(parsePeerRequest(`HAVE g ${sha}`), { ok: true, request: { kind: 'have', group: 'g', sha256: sha } });
  t.same(parsePeerRequest(formatPieceRequest('g', sha, 12)), { ok: true, request: { kind: 'piece', group: 'g', sha256: sha, index: 12 } });
  t.same(parsePeerRequest(`piece g ${sha} 0`), { ok: true, request: { kind: 'piece', group: 'g', sha256: sha, index: 0 } }, 'case-insensitive');
  t.match(parsePeerRequest('HAVE g nothex'), { ok: false, code: 'BAD_REQUEST' });
  t.match(parsePeerRequest(`PIECE g ${sha} -1`), { ok: false, code: 'BAD_REQUEST' });
  t.match(parsePeerRequest(`PIECE g ${sha} 01`), { ok: false, code: 'BAD_REQUEST' });
  t.match(parsePeerRequest('GET x'), { ok: false, code: 'UNKNOWN_COMMAND' });
  t.match(parsePeerRequest('HAVE "g'), { ok: false, code: 'BAD_REQUEST' });
});

t.test('HAVE answers', async (t) => {
  const have = new Bitfield(10);
  have.set(3);
  const text = formatHaveAnswer(have);
  t.equal(text, 'OK 10 1000');
  t.ok(parseHaveAnswer(Buffer.from(text), 10).get(3));
  t.equal(formatHaveAnswer(new Bitfield(0)), 'OK 0 -');
  t.equal(parseHaveAnswer(Buffer.from('OK 0 -'), 0).length, 0);
  t.throws(() => parseHaveAnswer(Buffer.from(text), 11), { code: 'PROTOCOL' });
  t.throws(() => parseHaveAnswer(Buffer.from('OK 1 80'), 2), { code: 'PROTOCOL', message: 'PROTOCOL peer has 1 piece, expected 2' }, 'the count in the singular');
  t.throws(() => parseHaveAnswer(Buffer.from('ERR NO_SUCH_FILE nope'), 10), { code: 'NO_SUCH_FILE' });
});

t.test('PIECE answers: text line, newline, raw bytes; one frame', async (t) => {
  const bytes = Buffer.from([0, 10, 255, 13, 10]);
  const head = encodePieceAnswerHead(7, bytes.length);
  const decoder = new FrameDecoder({ maxPayload: 1000 });
  const wire = Buffer.concat([head, bytes]);
  // fed one byte at a time
  const frames = [];
  for (const byte of wire) frames.push(...decoder.push(Buffer.from([byte])));
  t.equal(frames.length, 1);
  const payload = frames[0]?.payload as Buffer;
  t.same(parsePieceAnswer(payload, 7, 5), bytes);
  t.throws(() => parsePieceAnswer(payload, 8, 5), PeerAnswerError, 'another index');
  t.throws(() => parsePieceAnswer(payload, 7, 6), { code: 'PROTOCOL' }, 'wrong length');
  t.throws(() => parsePieceAnswer(Buffer.from('OK 7 1\nab'), 7, 2), { code: 'PROTOCOL', message: 'PROTOCOL piece says 1 byte, carries 2' }, 'says one byte');
  t.throws(() => parsePieceAnswer(Buffer.from('OK 7 1\na'), 7, 2), { code: 'PROTOCOL', message: 'PROTOCOL piece 7 has 1 byte, expected 2' }, 'carries one byte');
  const err = encodeFrame(0n, 'ERR BUSY later').subarray(12);
  t.throws(() => parsePieceAnswer(err, 7, 5), { code: 'BUSY' });
});

t.test('file_peers answers', async (t) => {
  const h = 'b'.repeat(64);
  const payload = [
    `OK "my file" size=10 sha256=${'c'.repeat(64)} piece_size=8 pieces=2 peers=2`,
    `hashes ${h},${h}`,
    'peer alice 127.0.0.1:9000',
    'peer bob [::1]:9001',
  ].join('\n');
  const parsed = parseFilePeers(payload);
  t.equal(parsed?.file, 'my file');
  t.equal(parsed?.pieceSize, 8);
  t.equal(parsed?.hashes.length, 2);
  t.same(parsed?.peers.map((p) => p.address), [{ host: '127.0.0.1', port: 9000 }, { host: '::1', port: 9001 }]);
  const empty = parseFilePeers(`OK e size=0 sha256=${'c'.repeat(64)} piece_size=8 pieces=0 peers=1\nhashes -\npeer a h:1`);
  t.same(empty?.hashes, []);
  t.equal(parseFilePeers('ERR NOT_MEMBER no'), undefined);
  const older = parseFilePeers(`OK e size=0 sha256=${'c'.repeat(64)} piece_size=8 pieces=0 peers=3\nhashes -\npeer a my..host:1\npeer b [1::2::3]:1\npeer c h:2`);
  t.same(older?.peers.map((p) => p.text), ['h:2'], 'peers stored under older, looser address rules are skipped, not the whole answer');
  t.equal(parseFilePeers(`OK f size=10 sha256=${'c'.repeat(64)} piece_size=8 pieces=2 peers=0\nhashes ${h}`), undefined, 'hash count must match');
});

t.test('progress bar', async (t) => {
  t.equal(progressBar(0, 10), '[..........]');
  t.equal(progressBar(0.5, 10), '[#####.....]');
  t.equal(progressBar(1, 10), '[##########]');
});

t.test('show_downloads and wait_downloads: the text lines, and the same downloads as rows for --json', async (t) => {
  const view = (over: Partial<DownloadView>): DownloadView => ({
    group: 'g',
    file: 'f.bin',
    status: 'queued',
    reason: '',
    meta: { size: 1000 },
    bytesDone: 0,
    rate: 0,
    activePeers: 0,
    resumedPieces: 0,
    banned: new Set(),
    sources: new Set(),
    ...over,
  });
  const list = [
    view({ file: 'my file.bin', status: 'running', bytesDone: 420, rate: 12_345_678.9, activePeers: 3, banned: new Set(['x']), sources: new Set(['a', 'b']) }),
    view({ group: 'h', status: 'complete', bytesDone: 1000, rate: 2_000_000, sources: new Set(['a']), resumedPieces: 2 }),
    view({ status: 'failed', bytesDone: 100, reason: 'stalled: no peer could be reached for 60 s' }),
    view({ file: 'later.bin' }),
  ];
  const shown = downloadListing(list);
  t.equal(
    shown.payload,
    [
      'OK 4',
      '[D] [g] "my file.bin"  42% [########............] 12.3 MB/s peers=3 banned=1',
      '[C] [h] f.bin 100% size=1000 2.0 MB/s sources=1 resumed=2',
      '[F] [g] f.bin failed: stalled: no peer could be reached for 60 s',
      '[Q] [g] later.bin queued',
    ].join('\n'),
  );
  const row = { percent: 0, size: 1000, bytes_per_second: 0, peers: 0, sources: 0, resumed: 0, banned: 0, reason: null };
  t.same(shown.rows, [
    { ...row, group: 'g', file: 'my file.bin', state: 'downloading', percent: 42, bytes_per_second: 12_345_679, peers: 3, sources: 2, banned: 1 },
    { ...row, group: 'h', file: 'f.bin', state: 'complete', percent: 100, bytes_per_second: 2_000_000, sources: 1, resumed: 2 },
    { ...row, group: 'g', file: 'f.bin', state: 'failed', percent: 10, reason: 'stalled: no peer could be reached for 60 s' },
    { ...row, group: 'g', file: 'later.bin', state: 'queued' },
  ]);
  const keys = ['group', 'file', 'state', 'percent', 'size', 'bytes_per_second', 'peers', 'sources', 'resumed', 'banned', 'reason'];
  for (const r of shown.rows) t.same(Object.keys(r), keys, 'every key in every row, in one order');

  const json = { mode: 'json', color: false } as const;
  t.same(JSON.parse(formatReply(shown.payload, json, 'show_downloads', shown.rows)), { ok: true, code: null, message: '4', rows: shown.rows }, '--json: the rows as data');
  t.equal(formatReply(shown.payload, { mode: 'raw', color: false }, 'show_downloads', shown.rows), shown.payload, 'the text form is unchanged');

  const waited = downloadListing(list, true);
  t.equal(waited.payload.split('\n')[0], 'ERR DOWNLOAD_FAILED 1 of 4 downloads failed');
  t.same(waited.payload.split('\n').slice(1), shown.payload.split('\n').slice(1));
  t.same(
    JSON.parse(formatReply(waited.payload, json, 'wait_downloads', waited.rows)),
    { ok: false, code: 'DOWNLOAD_FAILED', message: '1 of 4 downloads failed', rows: shown.rows },
    'a failed wait keeps its rows',
  );
  t.equal(downloadListing([list[1] as DownloadView], true).payload.split('\n')[0], 'OK 1', 'none failed: OK');
});

t.test('why a stalled download failed', async (t) => {
  t.equal(stallReason(0, 0, 60_000), 'stalled: no peer could be reached for 60 s');
  t.equal(
    stallReason(0, 1, 60_000, 'piece 13 failed its SHA-256 check'),
    'stalled: no usable peer (1 dropped for sending bad data; no other could be reached) for 60 s (last peer error: piece 13 failed its SHA-256 check)',
    'peers dropped for bad data are not "unreachable"',
  );
  t.equal(stallReason(2, 1, 30_000), 'stalled: the peers sent no usable piece for 30 s', 'connected peers that sent nothing useful');
});

t.test('why a download with no peer failed', async (t) => {
  const base = { seconds: 20, failed: [], othersListed: 2, trackerError: undefined, banned: 0 };
  const refused = (port: number): { peer: string; error: string } => ({ peer: `127.0.0.1:${port}`, error: 'ECONNREFUSED' });
  t.equal(
    noPeerReason({ ...base, failed: [refused(1), refused(2)] }),
    'no usable peer for 20 s: none of the 2 peers the tracker lists could be reached (127.0.0.1:1: ECONNREFUSED; 127.0.0.1:2: ECONNREFUSED)',
  );
  t.equal(
    noPeerReason({ ...base, failed: [{ peer: 'h:1', error: 'NO_SUCH_FILE this peer does not share that file in g' }] }),
    'no usable peer for 20 s: the only peer the tracker lists does not have the file (h:1: NO_SUCH_FILE this peer does not share that file in g)',
  );
  t.equal(
    noPeerReason({ ...base, failed: [refused(1), { peer: 'h:2', error: 'NO_SUCH_FILE gone' }], banned: 1 }),
    'no usable peer for 20 s: none of the 2 peers the tracker lists could be used (127.0.0.1:1: ECONNREFUSED; h:2: NO_SUCH_FILE gone); 1 dropped for sending bad data',
    'a mix; and the banned ones counted',
  );
  t.equal(
    noPeerReason({ ...base, failed: [1, 2, 3, 4, 5].map(refused) }),
    'no usable peer for 20 s: none of the 5 peers the tracker lists could be reached (127.0.0.1:1: ECONNREFUSED; 127.0.0.1:2: ECONNREFUSED; 127.0.0.1:3: ECONNREFUSED; 2 more)',
    'at most 3 shown',
  );
  t.equal(
    noPeerReason({ ...base, failed: [refused(1)], trackerError: 'ERR NO_SUCH_FILE nobody shares f in g' }),
    'no usable peer for 20 s: nobody shares it any more (tracker: ERR NO_SUCH_FILE nobody shares f in g)',
    "the tracker's latest word first",
  );
  t.equal(noPeerReason({ ...base, othersListed: 0 }), 'no usable peer for 20 s: the tracker lists no peer but this client');
  t.equal(noPeerReason({ ...base, trackerError: 'no tracker reachable' }), 'no usable peer for 20 s: the tracker could not tell who shares it (tracker: no tracker reachable)');
  t.equal(noPeerReason({ ...base, banned: 2 }), 'no usable peer for 20 s: 2 peers dropped for sending bad data, no other to try');
});

t.test('wait_downloads: how many of the downloads failed', async (t) => {
  t.equal(downloadsFailedLine(1, 1), 'ERR DOWNLOAD_FAILED 1 of 1 download failed', 'the count in the singular');
  t.equal(downloadsFailedLine(1, 3), 'ERR DOWNLOAD_FAILED 1 of 3 downloads failed');
  t.equal(downloadsFailedLine(2, 2), 'ERR DOWNLOAD_FAILED 2 of 2 downloads failed');
});

t.test('expandHome: a leading ~ or ~/ is the home directory; nothing else changes', async (t) => {
  const home = (): string => '/home/ann';
  t.equal(expandHome('~', home), '/home/ann');
  t.equal(expandHome('~/', home), '/home/ann');
  t.equal(expandHome('~/Downloads', home), '/home/ann/Downloads');
  t.equal(expandHome('~/a b/c', home), '/home/ann/a b/c');
  t.equal(expandHome('~bob/x', home), '~bob/x', '~user is not expanded');
  t.equal(expandHome('dl/~/x', home), 'dl/~/x');
  t.equal(expandHome('./~', home), './~');
  t.equal(expandHome('/abs', home), '/abs');
});

t.test('unspecifiedListenWarning: only for an address no peer can connect to', async (t) => {
  for (const host of ['0.0.0.0', '::', '0:0:0:0:0:0:0:0']) {
    t.match(unspecifiedListenWarning({ host, port: 0 }, undefined), /cannot connect to; give --listen this machine's address/, host);
  }
  t.match(unspecifiedListenWarning({ host: '0.0.0.0', port: 0 }, '0.0.0.0:4000'), /announced to the other peers as 0\.0\.0\.0:4000,/);
  for (const host of ['127.0.0.1', '192.168.1.10', '::1', 'example.org']) t.equal(unspecifiedListenWarning({ host, port: 0 }, undefined), undefined, host);
});

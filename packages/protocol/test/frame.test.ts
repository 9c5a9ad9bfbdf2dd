import t from 'tap';
import {
  ABSOLUTE_MAX_PAYLOAD,
  DEFAULT_MAX_PAYLOAD,
  encodeFrame,
  FrameDecoder,
  HEADER_BYTES,
  SESSION_BYTES,
  MAX_SESSION,
} from '@tracker-cluster/protocol';
import type { Frame } from '@tracker-cluster/protocol';
import { Prng, randomSplit, testSeed } from './fixtures/random.js';
import { throwsTrackerError } from './fixtures/assert.js';
import type { Test } from './fixtures/assert.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

/** Golden fixtures: the exact bytes on the wire for known frames. */
const GOLDEN: { name: string; session: bigint; payload: string; wire: string }[] = [
  {
    name: 'session 0, "ping"',
    session: 0n,
    payload: 'ping',
    wire: '0000000c 0000000000000000 70696e67',
  },
  {
    name: 'session 1, empty payload',
    session: 1n,
    payload: '',
    wire: '00000008 0000000000000001',
  },
  {
    name: 'session 2^53+1 (not representable as a number), "OK"',
    session: 2n ** 53n + 1n,
    payload: 'OK',
    wire: '0000000a 0020000000000001 4f4b',
  },
  {
    name: 'session 2^63, "OK PONG"',
    session: 2n ** 63n,
    payload: 'OK PONG',
    wire: '0000000f 8000000000000000 4f4b20504f4e47',
  },
  {
    name: 'session 2^64-1, "logout"',
    session: 2n ** 64n - 1n,
    payload: 'logout',
    wire: '0000000e ffffffffffffffff 6c6f676f7574',
  },
  {
    name: 'UTF-8 payload (2-, 3- and 4-byte characters)',
    session: 0x0102030405060708n,
    payload: 'héllo ✓ 😀',
    wire: '00000017 0102030405060708 68c3a96c6c6f20e29c9320f09f9880',
  },
];

/** A frame header with any value in its length field. */
function header(lengthField: number, session = 0n): Buffer {
  const h = Buffer.alloc(HEADER_BYTES);
  h.writeUInt32BE(lengthField, 0);
  h.writeBigUInt64BE(session, 4);
  return h;
}

function sameFrames(t: Test, got: Frame[], want: { session: bigint; payload: Buffer }[], msg: string): void {
  t.equal(got.length, want.length, `${msg}: frame count`);
  const n = Math.min(got.length, want.length);
  for (let i = 0; i < n; i++) {
    const g = got[i] as Frame;
    const w = want[i] as { session: bigint; payload: Buffer };
    if (g.session !== w.session || !g.payload.equals(w.payload)) {
      t.fail(`${msg}: frame ${i} differs`, { got: g, wanted: w });
      return;
    }
  }
  t.pass(`${msg}: frames equal`);
}

t.test('golden frames: encode gives the exact bytes, decode gives them back', async (t) => {
  for (const g of GOLDEN) {
    const wire = hex(g.wire);
    t.same(encodeFrame(g.session, g.payload), wire, `encode string: ${g.name}`);
    t.same(encodeFrame(g.session, Buffer.from(g.payload, 'utf8')), wire, `encode Buffer: ${g.name}`);
    const frames = new FrameDecoder().push(wire);
    t.equal(frames.length, 1, `one frame: ${g.name}`);
    const f = frames[0] as Frame;
    t.equal(typeof f.session, 'bigint', `session is a bigint: ${g.name}`);
    t.equal(f.session, g.session, `session: ${g.name}`);
    t.equal(f.payload.toString('utf8'), g.payload, `payload: ${g.name}`);
  }
});

t.test('a string payload encodes as its UTF-8 bytes at every length, ASCII or not', async (t) => {
  // Short ASCII text takes another path than the rest: both must give the same bytes.
  const samples = ['', 'a', '\u0000\u007f', 'OK PONG', 'é', 'a\u0080', '😀'];
  for (let n = 100; n <= 160; n++) samples.push('x'.repeat(n), `${'x'.repeat(n - 1)}é`, `é${'x'.repeat(n - 1)}`);
  let bad = 0;
  for (const text of samples) {
    for (const session of [0n, 5n]) {
      const want = Buffer.concat([header(SESSION_BYTES + Buffer.byteLength(text), session), Buffer.from(text, 'utf8')]);
      if (!encodeFrame(session, text).equals(want)) bad++;
      const frames = new FrameDecoder().push(want);
      if (frames[0]?.session !== session || frames[0].payload.toString('utf8') !== text) bad++;
    }
  }
  t.equal(bad, 0, `${samples.length} texts encode and decode exactly`);
});

t.test('length field counts the session and the payload', async (t) => {
  for (const size of [0, 1, 255, 256, 65536]) {
    const frame = encodeFrame(7n, Buffer.alloc(size, 0x61));
    t.equal(frame.length, HEADER_BYTES + size);
    t.equal(frame.readUInt32BE(0), 8 + size);
  }
});

t.test('decoding fed one byte at a time', async (t) => {
  const wire = Buffer.concat(GOLDEN.map((g) => hex(g.wire)));
  const d = new FrameDecoder();
  const frames: Frame[] = [];
  let maxBuffered = 0;
  for (let i = 0; i < wire.length; i++) {
    frames.push(...d.push(wire.subarray(i, i + 1)));
    maxBuffered = Math.max(maxBuffered, d.bufferedBytes);
  }
  sameFrames(
    t,
    frames,
    GOLDEN.map((g) => ({ session: g.session, payload: Buffer.from(g.payload, 'utf8') })),
    'byte by byte',
  );
  t.equal(d.bufferedBytes, 0, 'nothing left over');
  t.ok(maxBuffered < HEADER_BYTES + 15 + 1, 'never held more than one frame');
});

t.test('a frame is returned on exactly the byte that completes it', async (t) => {
  const wire = encodeFrame(42n, 'hello');
  const d = new FrameDecoder();
  for (let i = 0; i < wire.length - 1; i++) {
    t.same(d.push(wire.subarray(i, i + 1)), [], `byte ${i}: no frame yet`);
    t.equal(d.bufferedBytes, i + 1);
  }
  const frames = d.push(wire.subarray(wire.length - 1));
  t.equal(frames.length, 1);
  t.equal(frames[0]?.session, 42n);
  t.equal(frames[0]?.payload.toString(), 'hello');
  t.equal(d.bufferedBytes, 0);
});

t.test('decoding fed at random split points (seeded)', async (t) => {
  const seed = testSeed(0x5eed_f4a3);
  t.comment(`seed ${seed} (rerun with PROTOCOL_TEST_SEED=${seed})`);
  const rng = new Prng(seed);
  for (let round = 0; round < 300; round++) {
    const want: { session: bigint; payload: Buffer }[] = [];
    const count = rng.range(1, 20);
    for (let i = 0; i < count; i++) {
      const size = rng.chance(0.2) ? 0 : rng.range(1, rng.chance(0.1) ? 3000 : 40);
      want.push({ session: rng.chance(0.1) ? 0n : rng.u64(), payload: rng.bytes(size) });
    }
    const wire = Buffer.concat(want.map((w) => encodeFrame(w.session, w.payload)));
    const d = new FrameDecoder();
    const got: Frame[] = [];
    for (const chunk of randomSplit(rng, wire, rng.pick([1, 3, 13, 64, 1000, 5000]))) {
      got.push(...d.push(chunk));
    }
    const exact =
      d.bufferedBytes === 0 &&
      got.length === want.length &&
      got.every((f, i) => {
        const w = want[i];
        return w !== undefined && f.session === w.session && f.payload.equals(w.payload);
      });
    if (!exact) {
      t.fail(`round ${round} (seed ${seed}): ${got.length} frames decoded for ${want.length} encoded`);
      return;
    }
  }
  t.pass(`300 random streams decoded exactly (seed ${seed})`);
});

t.test('many frames in one chunk', async (t) => {
  const want = Array.from({ length: 1000 }, (_, i) => ({
    session: BigInt(i) * 0x1_0000_0001n,
    payload: Buffer.from(`req ${i} ${'x'.repeat(i % 17)}`),
  }));
  const wire = Buffer.concat(want.map((w) => encodeFrame(w.session, w.payload)));
  const d = new FrameDecoder();
  sameFrames(t, d.push(wire), want, 'one chunk');
  t.equal(d.bufferedBytes, 0);

  // The same stream with a partial frame at the end: the tail waits for the rest.
  const d2 = new FrameDecoder();
  const cut = wire.length - 3;
  const first = d2.push(wire.subarray(0, cut));
  t.equal(first.length, 999, 'all complete frames returned');
  t.equal(d2.bufferedBytes, (want[999]?.payload.length ?? 0) + HEADER_BYTES - 3, 'tail buffered');
  const rest = d2.push(wire.subarray(cut));
  sameFrames(t, [...first, ...rest], want, 'split tail');
});

t.test('a frame split across chunks, then several frames in the completing chunk', async (t) => {
  const a = encodeFrame(1n, 'first');
  const b = encodeFrame(2n, 'second');
  const c = encodeFrame(3n, '');
  const d = new FrameDecoder();
  t.same(d.push(a.subarray(0, 2)), [], 'half a length field');
  const frames = d.push(Buffer.concat([a.subarray(2), b, c, encodeFrame(4n, 'x').subarray(0, 5)]));
  t.same(
    frames.map((f) => [f.session, f.payload.toString()]),
    [
      [1n, 'first'],
      [2n, 'second'],
      [3n, ''],
    ],
  );
  t.equal(d.bufferedBytes, 5);
});

t.test('empty chunks are harmless', async (t) => {
  const d = new FrameDecoder();
  t.same(d.push(Buffer.alloc(0)), []);
  d.push(encodeFrame(1n, 'ab').subarray(0, 6));
  t.same(d.push(Buffer.alloc(0)), []);
  t.equal(d.bufferedBytes, 6);
});

t.test('length < 8 is PROTOCOL, detected from the 4-byte length alone', async (t) => {
  for (let length = 0; length < 8; length++) {
    const h = header(length);
    const d = new FrameDecoder();
    for (let i = 0; i < 3; i++) t.same(d.push(h.subarray(i, i + 1)), [], `length ${length}: byte ${i} accepted`);
    throwsTrackerError(t, () => d.push(h.subarray(3, 4)), 'PROTOCOL', `length ${length}: 4th byte`);
    t.equal(d.bufferedBytes, 0, 'nothing kept after the error');

    // The same header arriving whole, with nothing after it.
    throwsTrackerError(t, () => new FrameDecoder().push(h.subarray(0, 4)), 'PROTOCOL', `length ${length}: whole`);
  }
  // After a good frame in the same chunk: the frame comes back, the fault waits in `error`.
  const fast = new FrameDecoder();
  t.equal(fast.push(Buffer.concat([encodeFrame(1n, 'ok'), header(3)])).length, 1, 'after a good frame: frame returned');
  t.equal(fast.error?.code, 'PROTOCOL', 'after a good frame: fault kept');
  throwsTrackerError(t, () => fast.push(Buffer.alloc(0)), 'PROTOCOL', 'after a good frame: next push throws');
  // After a good frame split across chunks.
  const d = new FrameDecoder();
  const good = encodeFrame(1n, 'ok');
  d.push(good.subarray(0, 5));
  t.equal(d.push(Buffer.concat([good.subarray(5), header(7)])).length, 1, 'slow path: frame returned');
  t.equal(d.error?.code, 'PROTOCOL', 'slow path: fault kept');
  throwsTrackerError(t, () => d.push(Buffer.alloc(0)), 'PROTOCOL', 'slow path: next push throws');
});

t.test('payload over maxPayload is FRAME_TOO_LARGE, detected from the header alone', async (t) => {
  const max = 16;
  for (const length of [8 + max + 1, 8 + max + 1000, 0x7fff_ffff, 0xffff_ffff]) {
    const h = header(length);
    const d = new FrameDecoder({ maxPayload: max });
    for (let i = 0; i < 3; i++) {
      t.same(d.push(h.subarray(i, i + 1)), []);
      t.ok(d.bufferedBytes <= 3, `length ${length}: buffered ${d.bufferedBytes} <= 3`);
    }
    throwsTrackerError(t, () => d.push(h.subarray(3, 4)), 'FRAME_TOO_LARGE', `length ${length}: 4th byte`);
    t.equal(d.bufferedBytes, 0, `length ${length}: nothing kept after the error`);

    // Header plus part of the payload in one chunk: refused before any of it is kept.
    const d2 = new FrameDecoder({ maxPayload: max });
    throwsTrackerError(
      t,
      () => d2.push(Buffer.concat([h, Buffer.alloc(100)])),
      'FRAME_TOO_LARGE',
      `length ${length}: with payload`,
    );
    t.equal(d2.bufferedBytes, 0);
  }

  // Default limit: 1 MiB.
  const def = new FrameDecoder();
  t.equal(def.maxPayload, DEFAULT_MAX_PAYLOAD);
  t.equal(DEFAULT_MAX_PAYLOAD, 1048576);
  throwsTrackerError(t, () => def.push(header(8 + 1048576 + 1)), 'FRAME_TOO_LARGE', 'default limit + 1');
});

t.test('a payload of exactly maxPayload is accepted', async (t) => {
  for (const max of [0, 1, 16, 4096]) {
    const payload = Buffer.alloc(max, 0x7a);
    const wire = encodeFrame(9n, payload);
    const d = new FrameDecoder({ maxPayload: max });
    const frames: Frame[] = [];
    let maxBuffered = 0;
    for (let i = 0; i < wire.length; i++) {
      frames.push(...d.push(wire.subarray(i, i + 1)));
      maxBuffered = Math.max(maxBuffered, d.bufferedBytes);
    }
    t.equal(frames.length, 1, `max ${max}: one frame`);
    t.ok(frames[0]?.payload.equals(payload), `max ${max}: payload intact`);
    t.ok(maxBuffered <= max + HEADER_BYTES, `max ${max}: buffered at most ${max + HEADER_BYTES}`);
    t.equal(new FrameDecoder({ maxPayload: max }).push(wire).length, 1, `max ${max}: whole`);
  }
  // Exactly 1 MiB under the default limit.
  const big = Buffer.alloc(DEFAULT_MAX_PAYLOAD, 1);
  const frames = new FrameDecoder().push(encodeFrame(5n, big));
  t.equal(frames[0]?.payload.length, DEFAULT_MAX_PAYLOAD);
});

t.test('after an error the decoder stays failed', async (t) => {
  const d = new FrameDecoder({ maxPayload: 10 });
  throwsTrackerError(t, () => d.push(header(8 + 11)), 'FRAME_TOO_LARGE', 'first error');
  throwsTrackerError(t, () => d.push(encodeFrame(1n, 'fine')), 'FRAME_TOO_LARGE', 'valid frame after failure');
  throwsTrackerError(t, () => d.push(Buffer.alloc(0)), 'FRAME_TOO_LARGE', 'empty chunk after failure');
  t.equal(d.bufferedBytes, 0);

  const p = new FrameDecoder();
  throwsTrackerError(t, () => p.push(header(0)), 'PROTOCOL', 'first error');
  throwsTrackerError(t, () => p.push(encodeFrame(1n, 'fine')), 'PROTOCOL', 'still failed');
});

t.test('whole frames before a fault in the same chunk are returned first', async (t) => {
  const d = new FrameDecoder({ maxPayload: 10 });
  const chunk = Buffer.concat([encodeFrame(1n, 'ping'), encodeFrame(2n, 'pong'), header(8 + 11)]);
  const frames = d.push(chunk);
  t.same(
    frames.map((f) => [f.session, f.payload.toString()]),
    [
      [1n, 'ping'],
      [2n, 'pong'],
    ],
  );
  t.equal(d.error?.code, 'FRAME_TOO_LARGE', 'the fault waits in error');
  t.equal(d.bufferedBytes, 0);
  throwsTrackerError(t, () => d.push(encodeFrame(3n, 'x')), 'FRAME_TOO_LARGE', 'the next push throws it');

  const clean = new FrameDecoder();
  clean.push(encodeFrame(1n, 'ok'));
  t.equal(clean.error, undefined, 'no error on a healthy decoder');
});

t.test('encodeFrame rejects session ids outside u64', async (t) => {
  t.throws(() => encodeFrame(-1n, 'x'), RangeError);
  t.throws(() => encodeFrame(MAX_SESSION + 1n, 'x'), RangeError);
  t.throws(() => encodeFrame(2n ** 100n, 'x'), RangeError);
  t.doesNotThrow(() => encodeFrame(0n, 'x'));
  t.doesNotThrow(() => encodeFrame(MAX_SESSION, 'x'));
});

t.test('raiseMaxPayload lets larger frames in, and never lowers the limit', async (t) => {
  const decoder = new FrameDecoder({ maxPayload: 16 });
  decoder.raiseMaxPayload(8);
  t.equal(decoder.maxPayload, 16, 'not lowered');
  decoder.raiseMaxPayload(64);
  t.equal(decoder.maxPayload, 64);
  const frames = decoder.push(encodeFrame(3n, 'x'.repeat(64)));
  t.equal(frames[0]?.payload.length, 64, 'a 64-byte payload is accepted now');
  t.throws(() => decoder.raiseMaxPayload(-1), RangeError);
  t.throws(() => decoder.raiseMaxPayload(ABSOLUTE_MAX_PAYLOAD + 1), RangeError);
});

t.test('FrameDecoder rejects a bad maxPayload', async (t) => {
  for (const bad of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, ABSOLUTE_MAX_PAYLOAD + 1]) {
    t.throws(() => new FrameDecoder({ maxPayload: bad }), RangeError, `maxPayload ${bad}`);
  }
  t.equal(new FrameDecoder({ maxPayload: ABSOLUTE_MAX_PAYLOAD }).maxPayload, ABSOLUTE_MAX_PAYLOAD);
  t.equal(new FrameDecoder({ maxPayload: 0 }).maxPayload, 0);
});

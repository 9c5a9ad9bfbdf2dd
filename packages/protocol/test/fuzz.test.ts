/**
 * Fuzz of the frame decoder, in the manner of mqtt-packet's testRandom.js:
 * whatever bytes arrive, in whatever pieces, the decoder either yields frames
 * or throws a TrackerError PROTOCOL / FRAME_TOO_LARGE, and never holds more
 * than one maximal frame. Seeded: a failure prints the seed to replay with
 * `PROTOCOL_TEST_SEED=<seed>`.
 */
import t from 'tap';
import { encodeFrame, FrameDecoder, HEADER_BYTES, MAX_SESSION, TrackerError } from '@tracker-cluster/protocol';
import type { Frame } from '@tracker-cluster/protocol';
import { Prng, randomSplit, testSeed } from './fixtures/random.js';
import type { Test } from './fixtures/assert.js';

const SEED = testSeed(0x0c0f_fee5);
const rng = new Prng(SEED);
const SMALL_MAX = 4096;

t.comment(`fuzz seed ${SEED} (rerun with PROTOCOL_TEST_SEED=${SEED})`);

interface Outcome {
  frames: Frame[];
  error: unknown;
  /** Index of the chunk that threw, or -1. */
  errorAt: number;
}

/** Running totals over every chunk pushed, checked once per subtest to keep the TAP output small. */
class Stats {
  chunks = 0;
  frames = 0;
  errors: Record<string, number> = {};
  violations: string[] = [];

  violation(msg: string): void {
    if (this.violations.length < 10) this.violations.push(`${msg} (seed ${SEED})`);
  }

  report(t: Test, minChunks: number): void {
    t.same(this.violations, [], 'no invariant violations');
    t.ok(this.chunks >= minChunks, `${this.chunks} chunks pushed (>= ${minChunks})`);
    t.comment(`chunks=${this.chunks} frames=${this.frames} errors=${JSON.stringify(this.errors)}`);
  }
}

/**
 * Pushes chunks into `decoder` until they run out or it throws, checking the
 * invariants after every push.
 */
function feed(decoder: FrameDecoder, chunks: readonly Buffer[], stats: Stats, label: string): Outcome {
  const limit = decoder.maxPayload + HEADER_BYTES;
  const frames: Frame[] = [];
  for (let i = 0; i < chunks.length; i++) {
    stats.chunks++;
    let got: Frame[];
    try {
      got = decoder.push(chunks[i] as Buffer);
    } catch (error) {
      if (!(error instanceof TrackerError)) {
        stats.violation(`${label}: chunk ${i} threw a non-TrackerError: ${String(error)}`);
      } else if (error.code !== 'PROTOCOL' && error.code !== 'FRAME_TOO_LARGE') {
        stats.violation(`${label}: chunk ${i} threw TrackerError ${error.code}`);
      } else {
        stats.errors[error.code] = (stats.errors[error.code] ?? 0) + 1;
      }
      if (decoder.bufferedBytes !== 0) stats.violation(`${label}: ${decoder.bufferedBytes} bytes kept after an error`);
      // Failed for good: the next push throws the same error.
      try {
        decoder.push(Buffer.from([0, 0, 0, 8]));
        stats.violation(`${label}: decoder accepted input after failing`);
      } catch (again) {
        if (again !== error) stats.violation(`${label}: a failed decoder threw something new`);
      }
      return { frames, error, errorAt: i };
    }
    if (decoder.bufferedBytes > limit) {
      stats.violation(`${label}: chunk ${i}: bufferedBytes ${decoder.bufferedBytes} > ${limit}`);
    }
    for (const f of got) {
      if (f.payload.length > decoder.maxPayload) stats.violation(`${label}: ${f.payload.length}-byte payload yielded`);
      if (typeof f.session !== 'bigint' || f.session < 0n || f.session > MAX_SESSION) {
        stats.violation(`${label}: bad session ${String(f.session)}`);
      }
    }
    stats.frames += got.length;
    frames.push(...got);
    // A fault after whole frames in one chunk: the frames come back, the fault waits in `error`.
    const late = decoder.error;
    if (late) {
      if (late.code !== 'PROTOCOL' && late.code !== 'FRAME_TOO_LARGE') stats.violation(`${label}: late error ${late.code}`);
      else stats.errors[late.code] = (stats.errors[late.code] ?? 0) + 1;
      if (got.length === 0) stats.violation(`${label}: chunk ${i} returned normally with a fault and no frames`);
      try {
        decoder.push(Buffer.from([0, 0, 0, 8]));
        stats.violation(`${label}: decoder accepted input after failing`);
      } catch (again) {
        if (again !== late) stats.violation(`${label}: a failed decoder threw something new`);
      }
      return { frames, error: late, errorAt: i };
    }
  }
  return { frames, error: undefined, errorAt: -1 };
}

/** A header whose length field is often plausible, so garbage reaches past the header check. */
function plausibleHeader(max: number): Buffer {
  const h = rng.bytes(HEADER_BYTES);
  const r = rng.int(10);
  let length: number;
  if (r < 5) length = 8 + (rng.chance(0.8) ? rng.int(48) : rng.int(max + 1)); // valid
  else if (r < 7) length = rng.int(8); // below the minimum
  else if (r < 9) length = 8 + max + 1 + rng.int(64); // just too large
  else length = rng.nextU32(); // anything
  h.writeUInt32BE(length >>> 0, 0);
  return h;
}

function randomValidFrames(count: number, max: number): { session: bigint; payload: Buffer }[] {
  return Array.from({ length: count }, () => {
    const size = rng.chance(0.15) ? 0 : rng.chance(0.05) ? rng.range(0, max) : rng.range(1, Math.min(max, 200));
    return { session: rng.chance(0.2) ? 0n : rng.u64(), payload: rng.bytes(size) };
  });
}

function framesEqual(a: Frame, b: { session: bigint; payload: Buffer }): boolean {
  return a.session === b.session && a.payload.equals(b.payload);
}

t.test('random bytes in random chunks (maxPayload 4096)', async (t) => {
  const stats = new Stats();
  let decoder = new FrameDecoder({ maxPayload: SMALL_MAX });
  for (let i = 0; i < 40_000; i++) {
    // Random bytes: almost every length field is huge, so this mostly tests the header check.
    const chunk = rng.bytes(rng.range(0, 64));
    const out = feed(decoder, [chunk], stats, `random bytes #${i}`);
    if (out.error) decoder = new FrameDecoder({ maxPayload: SMALL_MAX });
  }
  stats.report(t, 40_000);
});

t.test('plausible headers followed by random bytes (maxPayload 4096)', async (t) => {
  const stats = new Stats();
  let decoder = new FrameDecoder({ maxPayload: SMALL_MAX });
  while (stats.chunks < 30_000) {
    const parts: Buffer[] = [];
    const count = rng.range(1, 6);
    for (let k = 0; k < count; k++) {
      parts.push(plausibleHeader(SMALL_MAX), rng.bytes(rng.chance(0.8) ? rng.int(32) : rng.int(SMALL_MAX + 32)));
    }
    const stream = Buffer.concat(parts);
    const out = feed(decoder, randomSplit(rng, stream, rng.pick([3, 16, 100, 2000, 9000])), stats, 'plausible');
    if (out.error) decoder = new FrameDecoder({ maxPayload: SMALL_MAX });
  }
  stats.report(t, 30_000);
});

t.test('valid frame streams mixed with garbage, split at random points', async (t) => {
  const stats = new Stats();
  let mismatches = 0;
  let streams = 0;
  while (stats.chunks < 30_000) {
    streams++;
    const want = randomValidFrames(rng.range(1, 8), SMALL_MAX);
    const valid = Buffer.concat(want.map((w) => encodeFrame(w.session, w.payload)));
    const garbage = rng.chance(0.5) ? rng.bytes(rng.range(1, 40)) : Buffer.concat([plausibleHeader(SMALL_MAX), rng.bytes(rng.int(40))]);
    const tail = rng.chance(0.5) ? Buffer.concat(randomValidFrames(2, SMALL_MAX).map((w) => encodeFrame(w.session, w.payload))) : Buffer.alloc(0);
    const stream = Buffer.concat([valid, garbage, tail]);
    const decoder = new FrameDecoder({ maxPayload: SMALL_MAX });
    const out = feed(decoder, randomSplit(rng, stream, rng.pick([1, 5, 50, 500, 5000])), stats, `mixed stream ${streams}`);
    // Every valid frame before the garbage comes out, unchanged and in order, however the stream was split.
    if (out.frames.length < want.length) {
      stats.violation(`mixed stream ${streams}: only ${out.frames.length} of ${want.length} valid frames came out`);
    }
    const n = Math.min(out.frames.length, want.length);
    for (let i = 0; i < n; i++) {
      if (!framesEqual(out.frames[i] as Frame, want[i] as { session: bigint; payload: Buffer })) {
        mismatches++;
        stats.violation(`mixed stream ${streams}: frame ${i} differs from the one encoded`);
        break;
      }
    }
  }
  t.equal(mismatches, 0, 'valid prefixes decode unchanged');
  stats.report(t, 30_000);
});

t.test('valid streams split at random points decode to exactly the frames encoded', async (t) => {
  const stats = new Stats();
  let streams = 0;
  let bad = 0;
  while (stats.chunks < 20_000) {
    streams++;
    const want = randomValidFrames(rng.range(1, 30), SMALL_MAX);
    const stream = Buffer.concat(want.map((w) => encodeFrame(w.session, w.payload)));
    const decoder = new FrameDecoder({ maxPayload: SMALL_MAX });
    const out = feed(decoder, randomSplit(rng, stream, rng.pick([1, 2, 11, 64, 700, 10_000])), stats, `valid ${streams}`);
    const exact =
      out.error === undefined &&
      decoder.bufferedBytes === 0 &&
      out.frames.length === want.length &&
      out.frames.every((f, i) => framesEqual(f, want[i] as { session: bigint; payload: Buffer }));
    if (!exact) {
      bad++;
      stats.violation(`valid stream ${streams} did not decode exactly (error: ${String(out.error)})`);
    }
  }
  t.equal(bad, 0, `${streams} streams decoded exactly`);
  stats.report(t, 20_000);
});

t.test('random bytes under the default 1 MiB limit', async (t) => {
  const stats = new Stats();
  let decoder = new FrameDecoder();
  for (let i = 0; i < 5_000; i++) {
    // Bias the first byte of a fresh decoder's input to 0 so some lengths fit under 1 MiB
    // and the decoder actually buffers a partial frame.
    const chunk = rng.bytes(rng.range(1, 256));
    if (decoder.bufferedBytes === 0 && rng.chance(0.5)) {
      chunk[0] = 0;
      if (chunk.length > 1 && rng.chance(0.5)) chunk[1] = rng.int(0x11);
    }
    const out = feed(decoder, [chunk], stats, `default-limit #${i}`);
    if (out.error) decoder = new FrameDecoder();
  }
  stats.report(t, 5_000);
});

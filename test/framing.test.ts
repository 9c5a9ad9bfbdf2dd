/**
 * Framing faults and connection limits (PROTOCOL.md §1, docs/protocol.md §1)
 * against the real tracker-primary process: short lengths, oversized
 * payloads, split and coalesced frames, a fault after good requests in the
 * same write, the frame and idle timeouts, and --max-connections. After
 * every fault, other connections keep working and nothing stored is lost.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import t from 'tap';
import type { Test } from 'tap';
import { encodeFrame } from '@tracker-cluster/protocol';
import type { Frame } from '@tracker-cluster/protocol';
import { CLUSTER_SECRET, startReplica } from './helpers/cluster.js';
import { startTracker } from './helpers/tracker.js';
import type { RunningTracker, TeardownHost } from './helpers/tracker.js';
import { connect, waitFor } from './helpers/wire.js';
import type { WireClient } from './helpers/wire.js';
import { createUser, login, settlesWithin, signUp, status } from './helpers/commands.js';

const KEEPER = 'keeper';
const KEEPER_PW = 'keeper secret';

async function open(t: TeardownHost, tracker: RunningTracker): Promise<WireClient> {
  const c = await connect(tracker.port);
  t.teardown(() => c.close());
  return c;
}

/** A tracker with a user created before any fault, and a witness connection logged in as that user. */
async function setUp(t: TeardownHost, args: string[] = []): Promise<Setup> {
  const tracker = await startTracker(t, { args });
  const witness = await open(t, tracker);
  await createUser(witness, KEEPER, KEEPER_PW);
  const session = await login(witness, KEEPER, KEEPER_PW);
  await witness.request('create_group keepers', session);
  return { tracker, witness, session };
}

type Setup = { tracker: RunningTracker; witness: WireClient; session: bigint };
let sharedSetup: Promise<Setup> | undefined;
/** One tracker with default options for the subtests that need none (they use distinct names). */
function defaultSetUp(): Promise<Setup> {
  sharedSetup ??= setUp(t);
  return sharedSetup;
}

/** Other connections keep working and nothing stored was lost: a new connection logs the keeper in. */
async function stillServing(t: Test, tracker: RunningTracker, witness?: { c: WireClient; session: bigint }): Promise<void> {
  if (witness) {
    t.same(await witness.c.request('whoami', witness.session), { session: witness.session, payload: `OK ${KEEPER} sessions=1` },
      'the witness connection still works');
  }
  const fresh = await open(t, tracker);
  const r = await fresh.request(`login ${KEEPER} "${KEEPER_PW}"`);
  t.match(r.payload, new RegExp(`^OK logged in as ${KEEPER} sessions=\\d+$`), 'the keeper still logs in on a new connection');
  t.equal((await fresh.request('list_members keepers', r.session)).payload, `OK 1\n${KEEPER} role=owner`, 'its group is intact');
  await fresh.request('logout', r.session);
  await fresh.close();
}

/** A header with any length value and a session. */
function header(length: number, session = 0n): Buffer {
  const b = Buffer.alloc(12);
  b.writeUInt32BE(length, 0);
  b.writeBigUInt64BE(session, 4);
  return b;
}

function text(f: Frame): string {
  return f.payload.toString('utf8');
}

/** Expects the fatal `ERR <code>` as the last frame, with session 0, then the close. */
async function expectFatal(t: Test, c: WireClient, code: string): Promise<void> {
  const f = await c.nextFrame();
  t.match(text(f), new RegExp(`^ERR ${code} `), `ERR ${code}`);
  t.equal(f.session, 0n, 'with session 0');
  t.ok(await settlesWithin(c.closed, 10_000), 'then the tracker closes the connection');
  await t.rejects(c.nextFrame(100), 'nothing after the fault');
}

t.test('length < 8 is ERR PROTOCOL, then close', async (t) => {
  const { tracker, witness, session } = await defaultSetUp();
  for (const length of [0, 1, 7]) {
    const c = await open(t, tracker);
    c.sendRaw(header(length).subarray(0, 4 + Math.min(length, 8)));
    await expectFatal(t, c, 'PROTOCOL');
    await stillServing(t, tracker, { c: witness, session });
  }
  // A short length after a valid session: the length alone decides.
  const c = await open(t, tracker);
  c.sendRaw(Buffer.concat([header(4, session), Buffer.from('ping')]));
  await expectFatal(t, c, 'PROTOCOL');
  await stillServing(t, tracker, { c: witness, session });
});

t.test('payload over --max-frame is ERR FRAME_TOO_LARGE, then close', async (t) => {
  const { tracker, witness, session } = await setUp(t, ['--max-frame', '1024']);
  // Exactly the maximum is fine: `ping` padded with blanks to 1024 bytes.
  const c = await open(t, tracker);
  t.equal((await c.request('ping' + ' '.repeat(1020))).payload, 'OK PONG', 'a 1024-byte payload is accepted');

  // The header alone is enough: the tracker does not wait for (or buffer) the body.
  const big = await open(t, tracker);
  big.sendRaw(header(8 + 1025));
  await expectFatal(t, big, 'FRAME_TOO_LARGE');
  await stillServing(t, tracker, { c: witness, session });

  // A whole oversized frame in one write.
  const whole = await open(t, tracker);
  whole.sendRaw(encodeFrame(0n, 'ping' + ' '.repeat(2000)));
  await expectFatal(t, whole, 'FRAME_TOO_LARGE');

  // The largest length the field can hold.
  const huge = await open(t, tracker);
  huge.sendRaw(header(0xffffffff));
  await expectFatal(t, huge, 'FRAME_TOO_LARGE');
  await stillServing(t, tracker, { c: witness, session });
  t.equal((await c.request('ping')).payload, 'OK PONG', 'the first connection was not affected');
});

t.test('frames split into 1-byte writes, and many frames in one write', async (t) => {
  const { tracker, witness, session } = await defaultSetUp();
  const c = await open(t, tracker);
  const writeByByte = async (buf: Buffer): Promise<void> => {
    for (const byte of buf) {
      // Each byte is handed to the kernel before the next is written.
      await new Promise<void>((resolve, reject) => c.socket.write(Buffer.from([byte]), (err) => (err ? reject(err) : resolve())));
    }
  };
  await writeByByte(encodeFrame(0n, 'ping'));
  t.same(await c.nextFrame(), { session: 0n, payload: Buffer.from('OK PONG') }, 'a ping written byte by byte');
  await writeByByte(encodeFrame(session, 'whoami'));
  const who = await c.nextFrame();
  t.equal(text(who), `OK ${KEEPER} sessions=1`, 'the session field split across writes');
  t.equal(who.session, session);
  await writeByByte(Buffer.concat([encodeFrame(0n, 'create_user splitter "split pw"'), encodeFrame(0n, 'ping')]));
  t.equal(text(await c.nextFrame()), 'OK user created');
  t.equal(text(await c.nextFrame()), 'OK PONG');

  // Many frames in one write, answered in order.
  const requests: Array<[bigint, string, string]> = [];
  for (let i = 0; i < 100; i++) {
    requests.push(
      i % 3 === 0 ? [0n, 'ping', 'OK PONG']
      : i % 3 === 1 ? [session, 'whoami', `OK ${KEEPER} sessions=1`]
      : [session, `join_group nosuch${i}`, `nosuch${i}`],
    );
  }
  c.sendRaw(Buffer.concat(requests.map(([s, p]) => encodeFrame(s, p))));
  const got: string[] = [];
  for (let i = 0; i < requests.length; i++) got.push(text(await c.nextFrame()));
  // NO_SUCH_GROUP messages are free text, but name the group: enough to tie them to their request.
  const misplaced = got.filter((g, i) => {
    const want = requests[i]?.[2] as string;
    return want.startsWith('nosuch') ? !new RegExp(`^ERR NO_SUCH_GROUP .*\\b${want}\\b`).test(g) : g !== want;
  });
  t.same(misplaced, [], 'every answer in request order');

  // Frames straddling writes: each write ends in the middle of a frame.
  const stream = Buffer.concat(Array.from({ length: 20 }, (_, i) => encodeFrame(0n, i % 2 ? 'ping' : 'PING ')));
  for (let off = 0; off < stream.length; off += 7) c.sendRaw(stream.subarray(off, off + 7));
  for (let i = 0; i < 20; i++) t.equal(text(await c.nextFrame()), 'OK PONG');
  await stillServing(t, tracker, { c: witness, session });
  t.match(await login(c, 'splitter', 'split pw'), /./, 'the user created byte by byte logs in');
});

t.test('a good request then a bad header in the same write: answer, ERR PROTOCOL, close', async (t) => {
  const { tracker, witness, session } = await defaultSetUp();
  const c = await open(t, tracker);
  c.sendRaw(Buffer.concat([encodeFrame(0n, 'ping'), header(3), Buffer.from('xyz')]));
  t.equal(text(await c.nextFrame()), 'OK PONG', 'the good one is answered first');
  await expectFatal(t, c, 'PROTOCOL');

  // A write (answered asynchronously) before the fault is still answered, and applied.
  const before = Number((await status(witness))['seq']);
  const w = await open(t, tracker);
  w.sendRaw(Buffer.concat([
    encodeFrame(0n, 'create_user beforefault pw'),
    encodeFrame(session, 'create_group faultG'),
    encodeFrame(0n, 'ping'),
    header(5),
  ]));
  t.equal(text(await w.nextFrame()), 'OK user created');
  t.equal(text(await w.nextFrame()), 'OK group created');
  t.equal(text(await w.nextFrame()), 'OK PONG');
  await expectFatal(t, w, 'PROTOCOL');
  t.equal(Number((await status(witness))['seq']), before + 2, 'both writes applied');
  t.equal((await witness.request('list_members faultG', session)).payload, `OK 1\n${KEEPER} role=owner`);

  // Too large after a good one.
  const big = await open(t, tracker);
  big.sendRaw(Buffer.concat([encodeFrame(session, 'whoami'), header(8 + 2 * 1024 * 1024)]));
  const who = await big.nextFrame();
  t.equal(text(who), `OK ${KEEPER} sessions=1`);
  await expectFatal(t, big, 'FRAME_TOO_LARGE');
  await stillServing(t, tracker, { c: witness, session });
  t.match(await login(witness, 'beforefault', 'pw'), /./, 'the user created before the fault logs in');
});

t.test('half-close: requests sent before the client shuts its side are all answered', async (t) => {
  const { tracker, witness, session } = await defaultSetUp();
  const c = await open(t, tracker);
  c.socket.end(Buffer.concat([
    encodeFrame(0n, 'ping'),
    encodeFrame(0n, 'create_user halfclose pw'),
    encodeFrame(session, 'whoami'),
  ]));
  t.equal(text(await c.nextFrame()), 'OK PONG');
  t.equal(text(await c.nextFrame()), 'OK user created');
  t.equal(text(await c.nextFrame()), `OK ${KEEPER} sessions=1`);
  t.ok(await settlesWithin(c.closed, 10_000), 'then the tracker closes');
  t.match(await login(witness, 'halfclose', 'pw'), /./, 'the write was applied');
  await stillServing(t, tracker, { c: witness, session });
});

t.test('non-UTF-8 payload: ERR BAD_REQUEST and the connection stays open', async (t) => {
  const { tracker, witness, session } = await defaultSetUp();
  const c = await open(t, tracker);
  c.sendRaw(Buffer.concat([encodeFrame(0n, Buffer.from([0x80, 0x81])), encodeFrame(0n, 'ping')]));
  t.match(text(await c.nextFrame()), /^ERR BAD_REQUEST /);
  t.equal(text(await c.nextFrame()), 'OK PONG');
  t.notOk(c.isClosed);
  await stillServing(t, tracker, { c: witness, session });
});

t.test('frame timeout (--frame-timeout 300ms): a partial frame gets ERR PROTOCOL and close', async (t) => {
  const { tracker, witness, session } = await setUp(t, ['--frame-timeout', '300ms']);
  for (const partial of [
    encodeFrame(0n, 'ping').subarray(0, 1), // one byte of the length
    encodeFrame(0n, 'ping').subarray(0, 6), // inside the session field
    encodeFrame(0n, 'ping').subarray(0, 14), // inside the payload
  ]) {
    const c = await open(t, tracker);
    const started = Date.now();
    c.sendRaw(partial);
    await expectFatal(t, c, 'PROTOCOL');
    t.ok(Date.now() - started >= 250, `not before the timeout (${Date.now() - started} ms, ${partial.length} bytes sent)`);
  }
  // A trickle of bytes does not restart the timer: the whole frame must arrive in time.
  const slow = await open(t, tracker);
  const slowFrame = encodeFrame(0n, 'ping' + ' '.repeat(200));
  let sent = 0;
  const started = Date.now();
  const trickle = setInterval(() => {
    if (slow.isClosed || sent >= slowFrame.length) return;
    slow.sendRaw(slowFrame.subarray(sent, sent + 1));
    sent++;
  }, 25);
  t.teardown(() => clearInterval(trickle));
  await expectFatal(t, slow, 'PROTOCOL');
  clearInterval(trickle);
  t.ok(sent < slowFrame.length, `cut off after ${Date.now() - started} ms, ${sent} of ${slowFrame.length} bytes`);

  // A connection with nothing buffered is not subject to the frame timeout.
  const quiet = await open(t, tracker);
  t.equal((await quiet.request('ping')).payload, 'OK PONG');
  t.notOk(await settlesWithin(quiet.closed, 900), 'an idle connection with no partial frame stays open');
  t.equal((await quiet.request('ping')).payload, 'OK PONG');
  await stillServing(t, tracker, { c: witness, session });
});

t.test('idle timeout (--idle-timeout 500ms): an idle connection is closed silently', async (t) => {
  const tracker = await startTracker(t, { args: ['--idle-timeout', '500ms'] });
  const setup = await open(t, tracker);
  await createUser(setup, KEEPER, KEEPER_PW);
  const s0 = await login(setup, KEEPER, KEEPER_PW);
  await setup.request('create_group keepers', s0);
  await setup.request('logout', s0);

  const c = await open(t, tracker);
  const started = Date.now();
  t.equal((await c.request('ping')).payload, 'OK PONG');
  t.ok(await settlesWithin(c.closed, 10_000), 'closed after the idle timeout');
  t.ok(Date.now() - started >= 400, `not too early (${Date.now() - started} ms)`);
  t.same(c.events, [], 'no frame was sent');
  await t.rejects(c.nextFrame(100), 'nothing was left unread');

  // A connection that never sent anything is closed too.
  const silent = await open(t, tracker);
  t.ok(await settlesWithin(silent.closed, 10_000), 'a silent connection is closed');
  // Idle connections do not end sessions: log in on a new connection.
  await stillServing(t, tracker);
});

t.test('--max-connections full of clients: the replica still links and a status probe is answered; a client past it runs nothing', async (t) => {
  const tracker = await startTracker(t, { args: ['--max-connections', '2', '--secret', CLUSTER_SECRET] });
  const first = await open(t, tracker);
  await createUser(first, KEEPER, KEEPER_PW);
  const session = await login(first, KEEPER, KEEPER_PW);
  const second = await open(t, tracker);
  t.equal((await second.request('ping')).payload, 'OK PONG', 'two client connections: full');

  // A client past the limit that sends at once, pipelined: its first request is BUSY, and none runs.
  const eager = await open(t, tracker);
  const answers = await Promise.allSettled([eager.request(`create_user intruder "${KEEPER_PW}"`), eager.request(`create_group taken`, session)]);
  t.match(answers[0].status === 'fulfilled' && answers[0].value.payload, /^ERR BUSY too many connections \(max 2\)/, 'BUSY');
  t.ok(await settlesWithin(eager.closed, 10_000), 'then closed');
  t.ok(answers[1].status === 'rejected' || /^ERR BUSY /.test(answers[1].value.payload), 'the request behind it is BUSY too, or unanswered at the close');
  t.match((await first.request(`login intruder "${KEEPER_PW}"`)).payload, /^ERR INVALID_CREDENTIALS /, 'the user was not created');
  t.equal((await first.request('create_group taken', session)).payload, 'OK group created', 'nor the group');

  // The fencing probe's question is answered, then the connection is closed.
  const probe = await open(t, tracker);
  t.match((await probe.request('status')).payload, /^OK role=primary /, 'a status probe is answered');
  t.ok(await settlesWithin(probe.closed, 10_000), 'then closed');

  // The replica dials in while every client slot is taken, and streams.
  const replica = await startReplica(t, tracker, { args: ['--secret', CLUSTER_SECRET] });
  const r = await open(t, replica);
  t.equal((await first.request('create_group after', session)).payload, 'OK group created');
  const seq = (await status(first))['seq'];
  await waitFor(async () => {
    const s = await status(r);
    return s['primary'] === 'connected' && s['seq'] === seq ? true : undefined;
  }, { message: `the replica to link and catch up; primary:\n${tracker.stderr().slice(-3000)}\nreplica:\n${replica.stderr().slice(-3000)}` });
  t.match((await status(first))['replica'], 'connected', 'the primary streams to it');
  t.equal((await second.request('ping')).payload, 'OK PONG', 'the clients are still served');
});

t.test('--max-connections 2: the third gets ERR BUSY and is closed', async (t) => {
  const tracker = await startTracker(t, { args: ['--max-connections', '2'] });
  const first = await open(t, tracker);
  await createUser(first, KEEPER, KEEPER_PW);
  const session = await login(first, KEEPER, KEEPER_PW);
  await first.request('create_group keepers', session);
  const second = await open(t, tracker);
  t.equal((await second.request('ping')).payload, 'OK PONG', 'the second is served');

  const third = await open(t, tracker);
  await expectFatal(t, third, 'BUSY');
  const fourth = await open(t, tracker);
  await expectFatal(t, fourth, 'BUSY');

  t.same(await first.request('whoami', session), { session, payload: `OK ${KEEPER} sessions=1` }, 'the first still works');
  t.equal((await second.request('ping')).payload, 'OK PONG', 'the second still works');
  const sessionOnSecond = await login(second, KEEPER, KEEPER_PW);
  t.equal((await second.request('list_members keepers', sessionOnSecond)).payload, `OK 1\n${KEEPER} role=owner`);

  // Once one closes, a new connection is served again.
  await second.close();
  const served = await waitFor(async () => {
    const c = await connect(tracker.port);
    const r = await c.request('ping').catch((err: unknown) => ({ payload: String(err), session: 0n }));
    if (r.payload === 'OK PONG') return c;
    await c.close();
    return undefined;
  }, { message: 'a free connection slot' });
  t.teardown(() => served.close());
  const r = await served.request(`login ${KEEPER} "${KEEPER_PW}"`);
  t.match(r.payload, /^OK logged in as keeper sessions=\d+$/, 'nothing stored was lost');
  t.match((await first.request('whoami', session)).payload, /^OK keeper sessions=\d+$/);
});

/** Resident memory of a process, from /proc: now (VmRSS) and its peak (VmHWM), in MiB. */
async function memoryOf(pid: number): Promise<{ rss: number; peak: number }> {
  const text = await readFile(`/proc/${pid}/status`, 'utf8');
  const kib = (key: string): number => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN);
  return { rss: kib('VmRSS') / 1024, peak: kib('VmHWM') / 1024 };
}

t.test('a client that asks for large answers and reads none: the tracker holds its requests, not gigabytes of answers', async (t) => {
  // 1,600 requests of 40 bytes, each answered with ~1 MB: answered at once, they would be 1.5 GB in memory.
  const { tracker, witness, session } = await setUp(t);
  const pieces = 15_000;
  const hashes = Array.from({ length: pieces }, (_, i) => createHash('sha256').update(String(i)).digest('hex')).join(',');
  const upload = `upload_file keepers big.bin ${pieces} ${'a'.repeat(64)} 1 127.0.0.1:9 ${hashes}`;
  t.match((await witness.request(upload, session)).payload, /^OK shared big\.bin seeders=1$/, 'a file of 15,000 pieces');
  const answerBytes = Buffer.byteLength((await witness.request('file_peers keepers big.bin', session)).payload);
  t.ok(answerBytes > 900_000, `file_peers answers ${answerBytes} bytes`);
  const pid = tracker.proc.pid as number;
  const before = await memoryOf(pid);

  const greedy = await connect(tracker.port, '127.0.0.1', { maxPayload: 2 * 1024 * 1024 });
  t.teardown(() => greedy.close());
  greedy.socket.pause(); // reads nothing
  greedy.sendRaw(Buffer.concat(Array.from({ length: 1600 }, () => encodeFrame(session, 'file_peers keepers big.bin'))));
  // Each ping is answered after the tracker's previous turns, which read the greedy requests (65 KB: one or two reads).
  for (let i = 0; i < 5; i++) t.equal((await witness.request('ping')).payload, 'OK PONG');
  const after = await memoryOf(pid);
  t.ok(after.peak - before.peak < 300, `peak RSS grew ${Math.round(after.peak - before.peak)} MiB (from ${Math.round(before.peak)}), not ~1,500`);

  // Reading again, it gets its answers, in order: what was held runs as the socket drains.
  greedy.socket.resume();
  for (let i = 0; i < 20; i++) {
    const frame = await greedy.nextFrame(30_000);
    if (!frame.payload.subarray(0, 40).toString('utf8').startsWith('OK big.bin size=15000 ')) t.fail(`answer ${i}: ${frame.payload.subarray(0, 60).toString('utf8')}`);
  }
  t.pass('the first 20 answers arrive once it reads');
  greedy.socket.destroy();
  await stillServing(t, tracker, { c: witness, session });
});

t.test('answers held back while a client reads slowly: no frame timeout, and a half-close or a fault still gets them all', async (t) => {
  // A frame timeout far shorter than the time the clients below read nothing.
  const { tracker, witness, session } = await setUp(t, ['--frame-timeout', '300ms']);
  const pieces = 2_000;
  const hashes = Array.from({ length: pieces }, (_, i) => createHash('sha256').update(String(i)).digest('hex')).join(',');
  t.match((await witness.request(`upload_file keepers big.bin ${pieces} ${'a'.repeat(64)} 1 127.0.0.1:9 ${hashes}`, session)).payload, /^OK shared /);
  const answer = (await witness.request('file_peers keepers big.bin', session)).payload;
  // Padded requests: 200 of them are more than one read, so a frame is cut in two when the tracker stops reading.
  const request = encodeFrame(session, 'file_peers keepers big.bin' + ' '.repeat(1000));
  const count = 200;
  const many = Buffer.concat(Array.from({ length: count }, () => request));

  const reading = async (name: string): Promise<WireClient> => {
    const c = await connect(tracker.port, '127.0.0.1', { maxPayload: 2 * 1024 * 1024 });
    t.teardown(() => c.close());
    c.socket.pause(); // reads nothing for now: the tracker's answers back up and it stops reading the requests
    t.comment(`${name}: ${count} requests of ~${answer.length} bytes of answer each`);
    return c;
  };
  const pipelined = await reading('pipelined');
  pipelined.sendRaw(many);
  const halfClosed = await reading('half-closed');
  halfClosed.socket.end(many);
  const faulted = await reading('faulted');
  faulted.sendRaw(Buffer.concat([many, header(3)]));

  // Longer than the frame timeout, and than the 5 s a closing connection has once its side is ended.
  // (Time passing is the condition here.)
  const quiet = Date.now() + 6_000;
  while (Date.now() < quiet) {
    if ((await witness.request('ping')).payload !== 'OK PONG') t.fail('the tracker serves others meanwhile');
    await new Promise((resolve) => setTimeout(resolve, 500));
  }

  const readAll = async (c: WireClient, what: string): Promise<void> => {
    c.socket.resume();
    let whole = 0;
    for (let i = 0; i < count; i++) if (text(await c.nextFrame(30_000)) === answer) whole++;
    t.equal(whole, count, `${what}: every request answered`);
  };
  await readAll(pipelined, 'pipelined');
  t.notOk(pipelined.isClosed, 'pipelined: still open, no frame timeout for a frame the tracker had not read');
  t.equal((await pipelined.request('ping')).payload, 'OK PONG', 'and it still answers');
  await readAll(halfClosed, 'half-closed');
  t.ok(await settlesWithin(halfClosed.closed, 10_000), 'half-closed: then closed');
  await readAll(faulted, 'faulted');
  await expectFatal(t, faulted, 'PROTOCOL');
  await stillServing(t, tracker, { c: witness, session });
});

t.test('a client that leaves its answers unread for the idle timeout is closed, pending requests or not', async (t) => {
  const { tracker, witness, session } = await setUp(t, ['--idle-timeout', '500ms']);
  const hashes = Array.from({ length: 15_000 }, (_, i) => createHash('sha256').update(String(i)).digest('hex')).join(',');
  t.match((await witness.request(`upload_file keepers big.bin 15000 ${'a'.repeat(64)} 1 127.0.0.1:9 ${hashes}`, session)).payload, /^OK shared /);
  const greedy = await connect(tracker.port, '127.0.0.1', { maxPayload: 2 * 1024 * 1024 });
  t.teardown(() => greedy.close());
  greedy.socket.pause();
  greedy.sendRaw(Buffer.concat(Array.from({ length: 100 }, () => encodeFrame(session, 'file_peers keepers big.bin'))));
  // The witness keeps its own connection alive meanwhile; the greedy one stalls with ~100 MB asked for.
  await waitFor(async () => ((await witness.request('ping')).payload === 'OK PONG' && /peer has not read its answers/.test(tracker.stderr()) ? true : undefined), {
    timeoutMs: 10_000,
    message: 'the tracker to drop the connection that reads nothing',
  });
  greedy.socket.resume(); // take what was sent before the close, then see the close
  t.ok(await settlesWithin(greedy.closed, 10_000), 'closed');
  await stillServing(t, tracker, { c: witness, session });
});

t.test('a user created before the faults survives them all', async (t) => {
  const { tracker, witness, session } = await setUp(t, ['--max-frame', '256']);
  const extra = await signUp(witness, 'survivor');
  for (const bad of [header(2), header(8 + 257), Buffer.concat([encodeFrame(0n, 'ping'), header(0)])]) {
    const c = await open(t, tracker);
    c.sendRaw(bad);
    await c.closed;
  }
  await stillServing(t, tracker, { c: witness, session });
  t.equal((await witness.request('whoami', extra)).payload, 'OK survivor sessions=1');
});

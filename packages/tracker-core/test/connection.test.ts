import t from 'tap';
import { encodeFrame } from '@tracker-cluster/protocol';
import { Store } from '@tracker-cluster/tracker-core';
import { waitFor } from './fixtures/env.js';
import { signUp, startTracker } from './fixtures/tracker.js';

/** A frame header announcing `length` (session field + payload bytes). */
function header(length: number, session = 0n): Buffer {
  const h = Buffer.alloc(12);
  h.writeUInt32BE(length, 0);
  h.writeBigUInt64BE(session, 4);
  return h;
}

t.test('a frame length below 8 is answered ERR PROTOCOL, then the connection is closed', async (t) => {
  const run = await startTracker(t);
  const c = await run.connect();
  t.equal(await c.text('ping'), 'OK PONG');
  c.sendRaw(Buffer.from([0, 0, 0, 7, 1, 2, 3, 4, 5, 6, 7]));
  const answer = await c.response();
  t.match(answer.text, /^ERR PROTOCOL /);
  t.equal(answer.session, 0n);
  await c.waitEnded();
  t.same(c.responses, [], 'nothing after the fault');
});

t.test('whole frames before a framing fault in the same read are answered first', async (t) => {
  const run = await startTracker(t);
  const c = await run.connect();
  c.sendRaw(Buffer.concat([encodeFrame(0n, 'ping'), encodeFrame(0n, 'PING'), header(3)]));
  t.equal((await c.response()).text, 'OK PONG');
  t.equal((await c.response()).text, 'OK PONG');
  t.match((await c.response()).text, /^ERR PROTOCOL /);
  await c.waitEnded();
});

t.test('a frame over the maximum is answered ERR FRAME_TOO_LARGE from its header alone, then closed', async (t) => {
  const run = await startTracker(t, { maxPayload: 256 });
  const c = await run.connect();
  t.equal(await c.text(`ping${' '.repeat(252)}`), 'OK PONG', 'a payload of exactly the maximum is accepted');
  c.sendRaw(Buffer.concat([header(8 + 257), Buffer.from('ping ')])); // the rest is never sent
  const answer = await c.response();
  t.match(answer.text, /^ERR FRAME_TOO_LARGE /, 'answered before the payload arrived: nothing of it is buffered');
  t.equal(answer.session, 0n);
  await c.waitEnded();
  t.same(c.responses, [], 'nothing else is answered');

  const d = await run.connect();
  d.sendRaw(header(0xffff_ffff));
  t.match((await d.response()).text, /^ERR FRAME_TOO_LARGE /, 'a 4 GiB header is refused the same way');
  await d.waitEnded();
});

t.test('a framing fault is answered after the requests already pending', async (t) => {
  const run = await startTracker(t, { scryptCost: 16384 });
  const c = await run.connect();
  const calls = run.clock.calls;
  c.send('create_user zoe pw');
  await waitFor(() => run.clock.calls > calls, 'the request to be dispatched');
  c.sendRaw(header(3));
  t.same(await c.response(), { text: 'OK user created', session: 0n }, 'the pending request is answered first');
  t.match((await c.response()).text, /^ERR PROTOCOL /, 'then the fault');
  await c.waitEnded();
});

t.test('a frame not completed within the frame timeout is a protocol fault', async (t) => {
  const run = await startTracker(t, { frameTimeoutMs: 100 });
  const c = await run.connect();
  c.sendRaw(encodeFrame(0n, 'ping').subarray(0, 6));
  const answer = await c.response();
  t.match(answer.text, /^ERR PROTOCOL .*100 ms/);
  await c.waitEnded();
});

t.test('an idle connection is closed after the idle timeout', async (t) => {
  const run = await startTracker(t, { idleTimeoutMs: 500 });
  const c = await run.connect();
  t.equal(await c.text('ping'), 'OK PONG');
  await c.waitEnded(5000);
  t.same(c.responses, [], 'closed without a word');
  await waitFor(() => run.tracker.connectionCount === 0, 'the tracker to forget the connection');
});

t.test('past --max-connections a new connection gets ERR BUSY and is closed', async (t) => {
  const run = await startTracker(t, { maxConnections: 1 });
  const first = await run.connect();
  t.equal(await first.text('ping'), 'OK PONG');
  const second = await run.connect();
  const busy = await second.response();
  t.match(busy.text, /^ERR BUSY /);
  t.equal(busy.session, 0n);
  await second.waitEnded();
  t.equal(await first.text('ping'), 'OK PONG', 'the first connection is unaffected');
  t.equal(run.tracker.connectionCount, 1);
  await first.close();
  await waitFor(() => run.tracker.connectionCount === 0, 'the slot to free up');
  const third = await run.connect();
  t.equal(await third.text('ping'), 'OK PONG', 'a freed slot is taken again');
});

t.test('half-close: requests followed by end-of-stream are all answered, then the tracker closes', async (t) => {
  const run = await startTracker(t);
  const c = await run.connect();
  t.equal(await c.text('create_user zoe pw'), 'OK user created');
  c.sendRaw(Buffer.concat([encodeFrame(0n, 'login zoe pw'), encodeFrame(0n, 'ping')]));
  c.socket.end();
  const login = await c.response();
  t.equal(login.text, 'OK logged in as zoe sessions=1');
  t.not(login.session, 0n);
  t.equal((await c.response()).text, 'OK PONG');
  await c.waitEnded();
  await waitFor(() => run.tracker.connectionCount === 0, 'the connection to be gone');
});

t.test('a decoder fed one byte at a time', async (t) => {
  const run = await startTracker(t);
  const c = await run.connect();
  const bytes = Buffer.concat([encodeFrame(0n, 'ping'), encodeFrame(0n, 'status')]);
  for (let i = 0; i < bytes.length; i++) {
    c.sendRaw(bytes.subarray(i, i + 1));
    await new Promise((resolve) => setImmediate(resolve));
  }
  t.equal((await c.response()).text, 'OK PONG');
  t.match((await c.response()).text, /^OK role=primary /);
});

t.test('1,000 pipelined requests are answered in order', async (t) => {
  const run = await startTracker(t);
  const c = await run.connect();
  const session = await signUp(c, 'alice');
  const N = 1000;
  /** What each answer must be; the free-text messages must name what the request named. */
  const expected: Array<(text: string) => boolean> = [];
  const frames: Buffer[] = [];
  for (let i = 0; i < N; i++) {
    let line: string;
    switch (i % 4) {
      case 0:
        line = `create_group g${i}`; // a write: answered only once durable
        expected.push((x) => x === 'OK group created');
        break;
      case 1:
        line = 'whoami'; // a read: waits for the writes before it
        expected.push((x) => x === 'OK alice sessions=1');
        break;
      case 2:
        line = `frob${i}`; // answered at once, but still in its place
        expected.push((x) => x.startsWith('ERR UNKNOWN_COMMAND ') && x.includes(`"frob${i}"`));
        break;
      default:
        line = `join_group g${i - 3}`; // sees the group created three requests earlier
        expected.push((x) => x.startsWith('ERR ALREADY_MEMBER ') && x.endsWith(` g${i - 3}`));
    }
    frames.push(encodeFrame(session, line));
  }
  c.sendRaw(Buffer.concat(frames));
  let wrong = 0;
  for (let i = 0; i < N; i++) {
    const answer = await c.response();
    if (answer.session !== session || !(expected[i] as (text: string) => boolean)(answer.text)) {
      if (wrong++ < 5) t.fail(`answer ${i} out of place: ${answer.text} (session ${answer.session})`);
    }
  }
  t.equal(wrong, 0, `all ${N} answers in request order, each on the request's session`);
  t.equal((await c.text('list_groups', session)).split('\n')[0], `OK ${N / 4}`);
});

t.test('backpressure: more requests than --max-pipeline are still all answered, in order', async (t) => {
  const run = await startTracker(t, { maxPipeline: 4 });
  const c = await run.connect();
  const session = await signUp(c, 'alice');
  const frames = Array.from({ length: 200 }, (_, i) => encodeFrame(session, i % 2 === 0 ? `create_group g${i}` : `nope${i}`));
  c.sendRaw(Buffer.concat(frames));
  for (let i = 0; i < 200; i++) {
    const text = (await c.response()).text;
    if (i % 2 === 0 ? text !== 'OK group created' : !text.startsWith(`ERR UNKNOWN_COMMAND unknown command "nope${i}"`)) {
      t.fail(`answer ${i}: ${text}`);
    }
  }
  t.pass('200 answers in order');
});

t.test('close() stops accepting, answers what is pending, commits and closes the database', async (t) => {
  const run = await startTracker(t, { scryptCost: 16384 }); // slow enough to still be hashing at close()
  const c = await run.connect();
  const calls = run.clock.calls;
  c.send('create_user zoe pw');
  c.send('ping');
  await waitFor(() => run.clock.calls >= calls + 2, 'both requests to be dispatched');
  const closing = run.stop();
  t.same(await c.response(), { text: 'OK user created', session: 0n }, 'the pending write is answered');
  t.same(await c.response(), { text: 'OK PONG', session: 0n }, 'and so is the request after it');
  await c.waitEnded();
  await closing;
  t.equal(run.tracker.connectionCount, 0);
  const late = await run.connect();
  t.match((await late.response()).text, /^ERR BUSY .*shutting down/, 'a connection after close() is refused');
  await late.waitEnded();
  const store = Store.open(run.dbPath);
  t.teardown(() => store.close());
  t.ok(store.user('zoe'), 'the answered write is in the database');
  t.equal(store.getMeta('seq'), '1');
});

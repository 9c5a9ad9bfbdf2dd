// Worker processes of the replication benchmark (bench/replication.js), run
// with child_process.fork. The first message is the config; `mode` picks:
//
//   paced  open-loop writer: `connections` connections, each sending
//          `create_group` at rate/connections per second on a fixed schedule
//          (requests due in the same 1 ms tick are pipelined in one write),
//          whatever the answers do. Measures after `warmupMs` for `durationMs`.
//   probe  polls `status` on the primary and on the replica every `intervalMs`
//          (one request outstanding per tracker) and records, for each seq,
//          the first time each tracker's answer showed it; the lag of a seq is
//          t_replica(seq) − t_primary(seq).
//   fill   writes `total` create_groups as fast as it can: `connections`
//          connections with `window` requests outstanding on each.
//
// paced and probe answer { type: 'ready' } once connected and start on
// { type: 'go' }; paced reports { type: 'phase', phase: 'measure-start' |
// 'measure-end' }; probe takes { type: 'mark', phase: 'start' | 'end' } (the
// writer's window) and { type: 'finish' }. Every mode ends with one
// { type: 'result', ... } message and exits.
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { encodeFrame, FrameDecoder } from '@tracker-cluster/protocol';
import { Samples } from './samples.js';

const CH_O = 0x4f;
const CH_K = 0x4b;
const CH_E = 0x45;
const CH_V = 0x56;
const CH_R = 0x52;

function connect(host, port) {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port, noDelay: true });
    socket.once('connect', () => {
      socket.off('error', reject);
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

/** Resolves with the next message of type `type` from the orchestrator. */
function nextMessage(type) {
  return new Promise((resolve) => {
    const on = (msg) => {
      if (msg?.type !== type) return;
      process.off('message', on);
      resolve(msg);
    };
    process.on('message', on);
  });
}

/** 'ok' | 'err' | 'event' | 'other' for an answer payload. */
function kind(p) {
  if (p.length >= 5 && p[0] === CH_E && p[1] === CH_V) return 'event';
  if (p.length >= 2 && p[0] === CH_O && p[1] === CH_K) return 'ok';
  if (p.length >= 4 && p[0] === CH_E && p[1] === CH_R && p[2] === CH_R) return 'err';
  return 'other';
}

class ErrorCount {
  constructor() {
    this.count = 0;
    this.codes = Object.create(null);
    this.samples = [];
  }
  add(p) {
    this.count++;
    const text = p.toString('utf8');
    const code = text.slice(4).split(' ', 1)[0];
    this.codes[code] = (this.codes[code] ?? 0) + 1;
    if (this.samples.length < 5) this.samples.push(text.slice(0, 200));
  }
}

// ---------------------------------------------------------------------------

async function paced(cfg) {
  const { host, port, connections, rate, warmupMs, durationMs } = cfg;
  const maxOutstanding = cfg.maxOutstanding ?? 1000;
  const sessions = cfg.sessions.map((s) => BigInt(s));
  const sockets = await Promise.all(Array.from({ length: connections }, () => connect(host, port)));
  process.send({ type: 'ready' });
  await nextMessage('go');

  const perConn = rate / connections; // requests per second on each connection
  const periodMs = 1000 / perConn;
  const latency = new Samples();
  const slip = new Samples();
  const errors = new ErrorCount();
  let ok = 0;
  let unexpected = 0;
  let socketFaults = 0;
  let sentInWindow = 0;
  let skipped = 0;
  let outstandingTotal = 0;
  let stopping = false;
  let finish;
  const finished = new Promise((resolve) => {
    finish = resolve;
  });
  const maybeFinish = () => {
    if (stopping && outstandingTotal === 0) finish();
  };

  const t0 = performance.now();
  const measureStart = t0 + warmupMs;
  const measureEnd = measureStart + durationMs;

  const conns = sockets.map((socket, i) => {
    const c = {
      socket,
      session: sessions[i % sessions.length],
      // Connections are spread evenly over one period, so they do not all send in the same tick.
      phaseMs: (i / connections) * periodMs,
      scheduled: 0,
      n: 0,
      sentAt: [],
      dead: false,
    };
    const decoder = new FrameDecoder();
    const die = () => {
      if (c.dead) return;
      c.dead = true;
      if (!stopping) socketFaults++;
      outstandingTotal -= c.sentAt.length;
      c.sentAt.length = 0;
      maybeFinish();
    };
    socket.on('error', die);
    socket.on('close', die);
    socket.on('data', (chunk) => {
      const now = performance.now();
      let frames;
      try {
        frames = decoder.push(chunk);
      } catch {
        unexpected++;
        socket.destroy();
        return;
      }
      const inWindow = now >= measureStart && now < measureEnd;
      for (const f of frames) {
        const k = kind(f.payload);
        if (k === 'event') continue;
        const started = c.sentAt.shift();
        outstandingTotal--;
        if (!inWindow) continue;
        if (k === 'ok') {
          ok++;
          latency.add(now - started);
        } else if (k === 'err') errors.add(f.payload);
        else unexpected++;
      }
      maybeFinish();
    });
    return { c, i };
  });

  const tick = () => {
    const now = performance.now();
    if (now >= measureEnd) return;
    for (const { c, i } of conns) {
      if (c.dead || now - t0 < c.phaseMs) continue;
      // Request k (1-based) is due at t0 + phase + (k − 1) × period.
      const due = Math.floor((now - t0 - c.phaseMs) / periodMs) + 1;
      const n = due - c.scheduled;
      if (n <= 0) continue;
      const room = Math.max(0, maxOutstanding - c.sentAt.length);
      const send = Math.min(n, room);
      skipped += n - send;
      const frames = new Array(send);
      for (let k = 0; k < send; k++) {
        const intended = t0 + c.phaseMs + (c.scheduled + (n - send) + k) * periodMs;
        if (now >= measureStart) {
          slip.add(now - intended);
          sentInWindow++;
        }
        frames[k] = encodeFrame(c.session, `create_group p${i}_${c.n++}`);
        c.sentAt.push(now);
      }
      c.scheduled = due;
      outstandingTotal += send;
      if (send > 0) c.socket.write(send === 1 ? frames[0] : Buffer.concat(frames));
    }
  };
  const timer = setInterval(tick, 1);
  tick();

  let cpuAtStart;
  setTimeout(() => {
    cpuAtStart = process.cpuUsage();
    process.send({ type: 'phase', phase: 'measure-start' });
  }, Math.max(0, measureStart - performance.now()));
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, measureEnd - performance.now())));
  clearInterval(timer);
  const cpu = process.cpuUsage(cpuAtStart);
  process.send({ type: 'phase', phase: 'measure-end' });
  stopping = true;
  maybeFinish();
  const drained = await Promise.race([finished.then(() => true), new Promise((resolve) => setTimeout(() => resolve(false), 5000))]);
  for (const s of sockets) s.destroy();

  const seconds = durationMs / 1000;
  return {
    type: 'result',
    mode: 'paced',
    rate,
    connections,
    ok,
    okPerSec: ok / seconds,
    sentPerSec: sentInWindow / seconds,
    skipped,
    errors: errors.count,
    errorCodes: errors.codes,
    errorSamples: errors.samples,
    unexpected,
    socketFaults,
    undrained: drained ? 0 : outstandingTotal,
    latencyMs: latency.summary(),
    slipMs: slip.summary(),
    cpuPercent: ((cpu.user + cpu.system) / 1000 / durationMs) * 100,
  };
}

// ---------------------------------------------------------------------------

const SEQ_RE = / seq=(\d+)/;
const LAG_RE = / replica_lag=(\d+)/;

/** One tracker polled by the probe. */
class Poller {
  constructor(socket, name) {
    this.socket = socket;
    this.name = name;
    this.decoder = new FrameDecoder();
    this.outstanding = false;
    this.sentAt = 0;
    this.lastAnswerAt = undefined;
    this.maxSeq = 0;
    this.base = 0;
    /** times[s − base − 1]: first answer time that showed seq ≥ s. */
    this.times = [];
    this.rtt = new Samples();
    this.gap = new Samples();
    this.replicaLag = new Samples();
    this.polls = 0;
    this.inWindow = () => false;
    this.onAnswer = undefined;
    socket.on('data', (chunk) => {
      const now = performance.now();
      for (const f of this.decoder.push(chunk)) {
        const text = f.payload.toString('latin1');
        if (text.startsWith('EVENT ')) continue;
        this.outstanding = false;
        const m = SEQ_RE.exec(text);
        if (!m) throw new Error(`${name}: unexpected status answer ${text.slice(0, 120)}`);
        this.record(Number(m[1]), now, text);
      }
    });
    socket.on('error', (err) => {
      throw new Error(`${name}: ${err.message}`);
    });
  }

  record(seq, now, text) {
    if (this.inWindow(now)) {
      this.rtt.add(now - this.sentAt);
      if (this.lastAnswerAt !== undefined) this.gap.add(now - this.lastAnswerAt);
      const lag = LAG_RE.exec(text);
      if (lag) this.replicaLag.add(Number(lag[1]));
      this.polls++;
    }
    this.lastAnswerAt = now;
    for (let s = Math.max(this.maxSeq, this.base) + 1; s <= seq; s++) this.times[s - this.base - 1] = now;
    if (seq > this.maxSeq) this.maxSeq = seq;
    const cb = this.onAnswer;
    this.onAnswer = undefined;
    cb?.(seq);
  }

  poll() {
    if (this.outstanding) return;
    this.outstanding = true;
    this.sentAt = performance.now();
    this.socket.write(STATUS_FRAME);
  }

  /** One status round trip, outside the polling schedule; resolves with its seq. */
  once() {
    return new Promise((resolve) => {
      this.onAnswer = resolve;
      if (!this.outstanding) this.poll();
    });
  }
}
const STATUS_FRAME = encodeFrame(0n, 'status');

async function probe(cfg) {
  const { primary, replica, intervalMs } = cfg;
  const p = new Poller(await connect(primary.host, primary.port), 'primary');
  const r = new Poller(await connect(replica.host, replica.port), 'replica');
  const p0 = await p.once();
  const r0 = await r.once();
  p.base = r.base = p0;
  p.maxSeq = p0;
  r.maxSeq = r0;
  process.send({ type: 'ready', primarySeq: p0, replicaSeq: r0 });

  let windowStart = Infinity;
  let windowEnd = Infinity;
  const inWindow = (t) => t >= windowStart && t < windowEnd;
  p.inWindow = r.inWindow = inWindow;
  process.on('message', (msg) => {
    if (msg?.type === 'mark' && msg.phase === 'start') windowStart = performance.now();
    if (msg?.type === 'mark' && msg.phase === 'end') windowEnd = performance.now();
  });
  await nextMessage('go');
  const timer = setInterval(() => {
    p.poll();
    r.poll();
  }, intervalMs);
  await nextMessage('finish');
  if (windowEnd === Infinity) windowEnd = performance.now();

  // The writer has stopped: wait until the replica shows the primary's last seq (at most 10 s).
  await new Promise((resolve) => setTimeout(resolve, 5 * intervalMs));
  const last = p.maxSeq;
  const deadline = performance.now() + 10_000;
  while (r.maxSeq < last && performance.now() < deadline) await new Promise((resolve) => setTimeout(resolve, intervalMs));
  clearInterval(timer);
  p.socket.destroy();
  r.socket.destroy();

  const lag = new Samples();
  let counted = 0;
  let missing = 0;
  let negative = 0;
  let firstSeq;
  let lastSeq;
  for (let i = 0; i < p.times.length; i++) {
    const tp = p.times[i];
    if (!inWindow(tp)) continue;
    counted++;
    firstSeq ??= p.base + i + 1;
    lastSeq = p.base + i + 1;
    const tr = r.times[i];
    if (tr === undefined) {
      missing++;
      continue;
    }
    if (tr < tp) negative++;
    lag.add(tr - tp);
  }
  const windowMs = windowEnd - windowStart;
  return {
    type: 'result',
    mode: 'probe',
    intervalMs,
    windowMs,
    seqs: counted,
    firstSeq,
    lastSeq,
    changesPerSec: counted / (windowMs / 1000),
    missing,
    negative,
    lagMs: lag.summary(),
    primary: { polls: p.polls, rttMs: p.rtt.summary(), gapMs: p.gap.summary(), replicaLagChanges: p.replicaLag.summary(), lastSeq: p.maxSeq },
    replica: { polls: r.polls, rttMs: r.rtt.summary(), gapMs: r.gap.summary(), lastSeq: r.maxSeq },
  };
}

// ---------------------------------------------------------------------------

async function fill(cfg) {
  const { host, port, connections, total, window } = cfg;
  const sessions = cfg.sessions.map((s) => BigInt(s));
  const sockets = await Promise.all(Array.from({ length: connections }, () => connect(host, port)));
  const errors = new ErrorCount();
  let ok = 0;
  let unexpected = 0;
  const t0 = performance.now();
  await Promise.all(
    sockets.map(
      (socket, i) =>
        new Promise((resolve, reject) => {
          const quota = Math.floor(total / connections) + (i < total % connections ? 1 : 0);
          const session = sessions[i % sessions.length];
          const decoder = new FrameDecoder();
          let sent = 0;
          let answered = 0;
          const send = (n) => {
            const k = Math.min(n, quota - sent);
            if (k <= 0) return;
            const frames = new Array(k);
            for (let j = 0; j < k; j++) frames[j] = encodeFrame(session, `create_group f${i}_${sent++}`);
            socket.write(k === 1 ? frames[0] : Buffer.concat(frames));
          };
          socket.on('error', reject);
          socket.on('close', () => (answered < quota ? reject(new Error(`connection ${i} closed after ${answered} of ${quota} answers`)) : undefined));
          socket.on('data', (chunk) => {
            let released = 0;
            for (const f of decoder.push(chunk)) {
              const k = kind(f.payload);
              if (k === 'event') continue;
              answered++;
              released++;
              if (k === 'ok') ok++;
              else if (k === 'err') errors.add(f.payload);
              else unexpected++;
            }
            if (answered >= quota) {
              resolve();
              return;
            }
            send(released);
          });
          if (quota === 0) resolve();
          else send(window);
        }),
    ),
  );
  const seconds = (performance.now() - t0) / 1000;
  for (const s of sockets) s.destroy();
  return {
    type: 'result',
    mode: 'fill',
    total,
    ok,
    errors: errors.count,
    errorCodes: errors.codes,
    errorSamples: errors.samples,
    unexpected,
    seconds,
    perSec: total / seconds,
  };
}

// ---------------------------------------------------------------------------

const MODES = { paced, probe, fill };

process.once('message', (cfg) => {
  const run = MODES[cfg?.mode];
  const work = run ? run(cfg) : Promise.reject(new Error(`unknown mode ${cfg?.mode}`));
  work.then(
    (result) => process.send(result, () => process.exit(0)),
    (err) => process.send({ type: 'error', message: err?.stack ?? String(err) }, () => process.exit(1)),
  );
});
// A fault in a socket handler: report it rather than dying silently.
process.on('uncaughtException', (err) => {
  process.send?.({ type: 'error', message: err?.stack ?? String(err) }, () => process.exit(1));
});
// The orchestrator went away: stop at once.
process.on('disconnect', () => process.exit(1));

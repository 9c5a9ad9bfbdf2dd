// Closed-loop load generator, run as its own process by bench/run.js
// (child_process.fork). It receives one message
//   { host, port, scenario, connections, pipeline, warmupMs, durationMs, sessions: string[] }
// opens `connections` TCP connections, keeps exactly `pipeline` requests
// outstanding on each (1 = strict closed loop: the next request leaves when
// the previous answer arrived), and after the warm-up measures for
// `durationMs`. It answers with one message { type: 'result', ... } and exits.
//
// Only answers that arrive inside the measuring window are counted. An `OK`
// answer is a success; an `ERR` answer is counted separately (by code) and is
// never a success. `EVENT` frames are not answers and are skipped.
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { encodeFrame, FrameDecoder } from '@tracker-cluster/protocol';
import { Samples } from './samples.js';

const CH_O = 0x4f;
const CH_K = 0x4b;
const CH_E = 0x45;
const CH_V = 0x56;
const CH_R = 0x52;

function requestMaker(scenario, connIndex, session) {
  switch (scenario) {
    case 'ping':
    case 'baseline': {
      const frame = encodeFrame(0n, 'ping');
      return () => frame;
    }
    case 'read': {
      const frame = encodeFrame(session, 'list_groups');
      return () => frame;
    }
    case 'write': {
      let n = 0;
      // Unique per request: b<conn>_<n> (1–32 chars of [A-Za-z0-9_.-]).
      return () => encodeFrame(session, `create_group b${connIndex}_${n++}`);
    }
    default:
      throw new Error(`unknown scenario ${scenario}`);
  }
}

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

async function run(cfg) {
  const { host, port, scenario, connections, pipeline, warmupMs, durationMs } = cfg;
  const sessions = (cfg.sessions ?? []).map((s) => BigInt(s));
  if ((scenario === 'read' || scenario === 'write') && sessions.length === 0) throw new Error(`scenario ${scenario} needs sessions`);

  const sockets = await Promise.all(Array.from({ length: connections }, () => connect(host, port)));

  const samples = new Samples();
  let ok = 0;
  let errors = 0;
  let unexpected = 0;
  let socketFaults = 0;
  const errorCodes = Object.create(null);
  const errorSamples = [];
  let okSample;
  let sent = 0;
  let outstandingTotal = 0;

  const t0 = performance.now();
  const measureStart = t0 + warmupMs;
  const measureEnd = measureStart + durationMs;
  let stopping = false;
  let cpuAtStart;
  let cpuAtEnd;
  let finish;
  const finished = new Promise((resolve) => {
    finish = resolve;
  });
  const maybeFinish = () => {
    if (stopping && outstandingTotal === 0) finish();
  };

  sockets.forEach((socket, i) => {
    const next = requestMaker(scenario, i, sessions[i % Math.max(1, sessions.length)] ?? 0n);
    const decoder = new FrameDecoder();
    const sentAt = [];
    let dead = false;

    const die = () => {
      if (dead) return;
      dead = true;
      if (!stopping) socketFaults++;
      outstandingTotal -= sentAt.length;
      sentAt.length = 0;
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
      let toSend = 0;
      for (let f = 0; f < frames.length; f++) {
        const p = frames[f].payload;
        if (p.length >= 5 && p[0] === CH_E && p[1] === CH_V) continue; // EVENT: not an answer
        const started = sentAt.shift();
        outstandingTotal--;
        if (inWindow) {
          if (p.length >= 2 && p[0] === CH_O && p[1] === CH_K) {
            ok++;
            samples.add(now - started);
            if (okSample === undefined) okSample = p.subarray(0, 200).toString('utf8');
          } else if (p.length >= 4 && p[0] === CH_E && p[1] === CH_R && p[2] === CH_R) {
            errors++;
            const text = p.toString('utf8');
            const code = text.slice(4).split(' ', 1)[0];
            errorCodes[code] = (errorCodes[code] ?? 0) + 1;
            if (errorSamples.length < 5) errorSamples.push(text.slice(0, 200));
          } else {
            unexpected++;
          }
        }
        if (!stopping) toSend++;
      }
      if (toSend === 0) {
        maybeFinish();
        return;
      }
      // One write per data event, however many requests it releases.
      const out = new Array(toSend);
      for (let k = 0; k < toSend; k++) {
        out[k] = next();
        sentAt.push(now);
      }
      sent += toSend;
      outstandingTotal += toSend;
      socket.write(toSend === 1 ? out[0] : Buffer.concat(out));
    });

    // Prime the loop: `pipeline` requests outstanding.
    const first = [];
    for (let k = 0; k < pipeline; k++) {
      first.push(next());
      sentAt.push(performance.now());
    }
    sent += pipeline;
    outstandingTotal += pipeline;
    socket.write(first.length === 1 ? first[0] : Buffer.concat(first));
  });

  setTimeout(() => {
    cpuAtStart = process.cpuUsage();
    process.send?.({ type: 'phase', phase: 'measure-start' });
  }, Math.max(0, measureStart - performance.now()));
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, measureEnd - performance.now())));
  cpuAtEnd = process.cpuUsage(cpuAtStart);
  process.send?.({ type: 'phase', phase: 'measure-end' });
  stopping = true;
  maybeFinish();
  // Let the requests still in flight come back (not counted), so the tracker
  // is not left with half-answered connections; give up after 5 s.
  const drained = await Promise.race([
    finished.then(() => true),
    new Promise((resolve) => setTimeout(() => resolve(false), 5000)),
  ]);
  for (const s of sockets) s.destroy();

  const seconds = durationMs / 1000;
  return {
    type: 'result',
    scenario,
    connections,
    pipeline,
    warmupMs,
    durationMs,
    sent,
    ok,
    errors,
    errorCodes,
    errorSamples,
    unexpected,
    socketFaults,
    undrained: drained ? 0 : outstandingTotal,
    reqPerSec: ok / seconds,
    latencyMs: samples.summary(),
    okSample,
    loadCpuPercent: ((cpuAtEnd.user + cpuAtEnd.system) / 1000 / durationMs) * 100,
  };
}

process.once('message', (cfg) => {
  run(cfg).then(
    (result) => process.send(result, () => process.exit(0)),
    (err) => process.send({ type: 'error', message: err?.stack ?? String(err) }, () => process.exit(1)),
  );
});
// The orchestrator went away: stop at once.
process.on('disconnect', () => process.exit(1));

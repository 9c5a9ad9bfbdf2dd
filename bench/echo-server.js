// Baseline for `npm run bench`: the smallest useful Node server speaking the
// tracker's framing. It answers every frame with `OK PONG` on the same
// session, one write per socket read, and does nothing else (no parsing, no
// sessions, no database). Its req/s is what this machine allows a single
// Node process to answer over loopback; the tracker cannot beat it.
import net from 'node:net';
import { encodeFrame } from '@tracker-cluster/protocol';
import { onFrames, serveUntilSignal } from './frames.js';

const PONG = encodeFrame(0n, 'OK PONG');

const server = net.createServer({ noDelay: true }, (socket) => {
  onFrames(socket, (frames) => {
    if (frames.length === 1) socket.write(PONG);
    else socket.write(Buffer.concat(frames.map(() => PONG)));
  });
});

serveUntilSignal(server, 'echo-server');

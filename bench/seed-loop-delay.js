// `node bench/seed-loop-delay.js`: how long the piece server's event loop
// stops while the client hashes, measured with perf_hooks.monitorEventLoopDelay
// (1 ms resolution) in the process that hashes.
//
// 1. A seeder serves a file of 64 MiB pieces (the largest piece size) to a
//    downloader in another process, which asks for every piece ROUNDS times,
//    one request at a time; every piece read is checked against its SHA-256
//    before it is sent (docs/client.md "A shared file gone or changed").
// 2. `hashFile` (what `upload_file` runs, and a login for a share changed on
//    disk) over the same file.
// Printed: the worst and the 99th percentile delay of the event loop, and
// how long each took. Nothing is written to docs: figures for a report.
//
// Flags: --size-mb N (default 256), --rounds N (default 3).
import { spawn } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { Bitfield, PieceServer, ShareTable, hashFile } from '@tracker-cluster/client';
import { makeTempDir, removeTempDir } from './lib.js';

const args = process.argv.slice(2);
const flag = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : fallback;
};
const PIECE = 64 * 1024 * 1024;
const SIZE = Number(flag('--size-mb', '256')) * 1024 * 1024;
const ROUNDS = Number(flag('--rounds', '3'));

// The downloader: plain frames, one PIECE request at a time, bytes dropped.
const DOWNLOADER = `
import net from 'node:net';
const [port, group, sha, pieces, rounds] = process.argv.slice(1);
const socket = net.connect(Number(port), '127.0.0.1');
let want = 0, asked = 0, buffered = 0, frameLeft = -1;
const ask = () => {
  const line = Buffer.from('PIECE ' + group + ' ' + sha + ' ' + (asked % Number(pieces)));
  const head = Buffer.alloc(12);
  head.writeUInt32BE(line.length + 8, 0);
  socket.write(Buffer.concat([head, line]));
  asked++;
};
let head = Buffer.alloc(0);
socket.on('connect', ask);
socket.on('data', (chunk) => {
  while (chunk.length > 0) {
    if (frameLeft < 0) {
      head = Buffer.concat([head, chunk]);
      if (head.length < 4) return;
      frameLeft = head.readUInt32BE(0);
      chunk = head.subarray(4);
      head = Buffer.alloc(0);
    }
    const take = Math.min(frameLeft, chunk.length);
    frameLeft -= take;
    chunk = chunk.subarray(take);
    if (frameLeft === 0) {
      frameLeft = -1;
      if (asked >= Number(pieces) * Number(rounds)) { socket.end(); return; }
      ask();
    }
  }
});
`;

function histogram() {
  const h = monitorEventLoopDelay({ resolution: 1 });
  h.enable();
  return h;
}

function report(name, h, ms) {
  h.disable();
  const max = h.max / 1e6;
  const p99 = h.percentile(99) / 1e6;
  console.log(`${name}: ${ms.toFixed(0)} ms; event loop delay max ${max.toFixed(1)} ms, p99 ${p99.toFixed(1)} ms`);
}

const dir = makeTempDir('seed-loop-delay-');
try {
  const file = path.join(dir, 'big.bin');
  const chunk = Buffer.alloc(16 * 1024 * 1024);
  const fd = fs.openSync(file, 'w');
  for (let at = 0; at < SIZE; at += chunk.length) fs.writeSync(fd, randomFillSync(chunk));
  fs.closeSync(fd);

  let h = histogram();
  let start = performance.now();
  const digest = await hashFile(file, PIECE);
  report(`hashFile ${SIZE / 2 ** 20} MiB`, h, performance.now() - start);

  const table = new ShareTable();
  table.set({ group: 'g', file: 'big.bin', sha256: digest.sha256, size: digest.size, pieceSize: PIECE, path: file, have: Bitfield.full(digest.hashes.length), hashes: digest.hashes });
  const server = new PieceServer(table);
  const { port } = await server.listen({ host: '127.0.0.1', port: 0 });
  h = histogram();
  start = performance.now();
  const child = spawn(process.execPath, ['--input-type=module', '-e', DOWNLOADER, String(port), 'g', digest.sha256, String(digest.hashes.length), String(ROUNDS)], { stdio: 'inherit' });
  await new Promise((resolve) => child.once('close', resolve));
  const ms = performance.now() - start;
  report(`served ${server.stats.piecesServed} pieces of 64 MiB (${((server.stats.bytesServed / 1e6) / (ms / 1000)).toFixed(0)} MB/s)`, h, ms);
  await server.close();
} finally {
  removeTempDir(dir);
}

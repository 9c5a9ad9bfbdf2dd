// The plain loopback copy that bench/p2p.js compares against: one TCP
// stream of the file, read from disk by one process and written to disk by
// another.
//   node bench/p2p-copy.js send FILE          prints "listening PORT", serves FILE to one connection
//   node bench/p2p-copy.js recv PORT DEST     prints {"bytes":N,"ms":T}
import fs from 'node:fs';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { pipeline } from 'node:stream/promises';

const [mode, a, b] = process.argv.slice(2);
if (mode === 'send') {
  const server = net.createServer(async (socket) => {
    await pipeline(fs.createReadStream(a, { highWaterMark: 1024 * 1024 }), socket).catch(() => undefined);
    server.close();
  });
  server.listen(0, '127.0.0.1', () => process.stdout.write(`listening ${server.address().port}\n`));
} else if (mode === 'recv') {
  const start = performance.now();
  const socket = net.connect({ host: '127.0.0.1', port: Number(a) });
  let bytes = 0;
  socket.on('data', (d) => (bytes += d.length));
  await pipeline(socket, fs.createWriteStream(b));
  process.stdout.write(`${JSON.stringify({ bytes, ms: performance.now() - start })}\n`);
} else {
  process.stderr.write('usage: p2p-copy.js send FILE | recv PORT DEST\n');
  process.exit(2);
}

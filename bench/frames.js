// What the baseline servers of `npm run bench` (bench/echo-server.js,
// bench/durable-server.js) share: frame reading, and listening until a signal.
// They answer what arrives and nothing else.
import { FrameDecoder } from '@tracker-cluster/protocol';

/** Calls `onFrames` with the whole frames of each chunk `socket` receives; a framing fault closes it. */
export function onFrames(socket, onFrames) {
  const decoder = new FrameDecoder();
  socket.on('error', () => {});
  socket.on('data', (chunk) => {
    let frames;
    try {
      frames = decoder.push(chunk);
    } catch {
      socket.destroy();
      return;
    }
    if (frames.length > 0) onFrames(frames);
  });
}

/** Listens on an ephemeral loopback port, prints `<name> ready on HOST:PORT`, and exits 0 on SIGTERM or SIGINT. */
export function serveUntilSignal(server, name) {
  server.listen({ host: '127.0.0.1', port: 0 }, () => {
    const { address, port } = server.address();
    process.stdout.write(`${name} ready on ${address}:${port}\n`);
  });
  const stop = () => server.close(() => process.exit(0)) && setTimeout(() => process.exit(0), 1000).unref();
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

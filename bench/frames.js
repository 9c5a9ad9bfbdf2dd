// Frame reading for the baseline servers of `npm run bench` (bench/echo-server.js,
// bench/durable-server.js): they answer what arrives and nothing else.
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

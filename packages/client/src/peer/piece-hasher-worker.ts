/**
 * The worker thread behind `PieceHasher` (./piece-hasher.ts): hashes each
 * piece it is sent and sends the bytes back with the SHA-256, in the order
 * asked.
 */
import { parentPort } from 'node:worker_threads';
import type { MessagePort } from 'node:worker_threads';
import { sha256Hex } from './hashing.js';
import type { HashReply, HashRequest } from './piece-hasher.js';

if (!parentPort) throw new Error('piece-hasher-worker runs as a worker thread');
const port: MessagePort = parentPort;

port.on('message', (request: HashRequest) => {
  const sha256 = sha256Hex(Buffer.from(request.buffer, 0, request.length));
  const reply: HashReply = { id: request.id, sha256, buffer: request.buffer };
  port.postMessage(reply, [request.buffer]);
});

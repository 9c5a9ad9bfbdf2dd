/** The worker thread behind `hashFile` (./hashing.ts): hashes one file, answers once, ends. */
import { parentPort, workerData } from 'node:worker_threads';
import { hashFileHere } from './hashing.js';
import type { FileHashJob, FileHashReply } from './hashing.js';

if (!parentPort) throw new Error('file-hash-worker runs as a worker thread');
const port = parentPort;
const job = workerData as FileHashJob;

let reply: FileHashReply;
try {
  reply = { digest: await hashFileHere(job.path, job.pieceSize) };
} catch (error) {
  const code = (error as NodeJS.ErrnoException).code;
  reply = { error: { message: error instanceof Error ? error.message : String(error), ...(code === undefined ? {} : { code }) } };
}
port.postMessage(reply);

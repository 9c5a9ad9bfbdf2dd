import net from 'node:net';
import type { Frame, HostPort } from '@tracker-cluster/protocol';
import { FrameDecoder, encodeFrame, formatHostPort } from '@tracker-cluster/protocol';

/** What to do after an answer: send another payload, or finish with a result. */
export type Step<T> = { send: string } | { done: T };

/**
 * A short exchange with a tracker on its client port (the admin tool, the
 * fencing probe): dial, send `first`, hand each answer (events skipped) to
 * `next`, until it is done. Rejects when the tracker cannot be reached,
 * closes first, sends an undecodable frame, or takes longer than `timeoutMs`.
 */
export function converse<T>(address: HostPort, timeoutMs: number, first: string, next: (answer: string) => Step<T>): Promise<T> {
  const where = formatHostPort(address);
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: address.host, port: address.port });
    const decoder = new FrameDecoder({ maxPayload: 1024 * 1024 });
    const timer = setTimeout(() => finish(new Error(`no answer from ${where} within ${timeoutMs} ms`)), timeoutMs);
    let settled = false;
    const finish = (result: { done: T } | Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (result instanceof Error) reject(result);
      else resolve(result.done);
    };
    socket.on('error', (error) => finish(new Error(`cannot reach ${where}: ${error.message}`)));
    socket.on('close', () => finish(new Error(`${where} closed the connection`)));
    socket.on('connect', () => socket.write(encodeFrame(0n, first)));
    socket.on('data', (chunk: Buffer) => {
      let frames: Frame[];
      try {
        frames = decoder.push(chunk);
      } catch (error) {
        finish(error as Error);
        return;
      }
      for (const frame of frames) {
        const text = frame.payload.toString('utf8');
        if (text.startsWith('EVENT ')) continue;
        const step = next(text);
        if ('done' in step) {
          finish(step);
          return;
        }
        socket.write(encodeFrame(0n, step.send));
      }
    });
  });
}

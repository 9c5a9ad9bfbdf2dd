import net from 'node:net';
import type { Frame, HostPort } from '@tracker-cluster/protocol';
import { FrameDecoder, encodeFrame } from '@tracker-cluster/protocol';

/** What a tracker says of itself in `status`. */
export interface PeerStatus {
  role: string;
  epoch: number;
}

/**
 * Asks a tracker for `status` and reads its role and epoch (fencing: a
 * primary that sees a primary of a higher epoch steps down). Rejects when
 * the peer cannot be reached or answers nonsense within `timeoutMs`.
 */
export function probePeer(address: HostPort, timeoutMs: number): Promise<PeerStatus> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: address.host, port: address.port });
    const decoder = new FrameDecoder({ maxPayload: 64 * 1024 });
    const timer = setTimeout(() => done(new Error('timed out')), timeoutMs);
    const done = (result: PeerStatus | Error): void => {
      clearTimeout(timer);
      socket.destroy();
      if (result instanceof Error) reject(result);
      else resolve(result);
    };
    socket.on('error', done);
    socket.on('close', () => done(new Error('closed')));
    socket.on('connect', () => socket.write(encodeFrame(0n, 'status')));
    socket.on('data', (chunk: Buffer) => {
      let frames: Frame[];
      try {
        frames = decoder.push(chunk);
      } catch (error) {
        done(error as Error);
        return;
      }
      const first = frames[0];
      if (!first) return;
      const text = first.payload.toString('utf8');
      const role = /(?:^| )role=(\w+)/.exec(text)?.[1];
      const epoch = Number(/(?:^| )epoch=(\d+)/.exec(text)?.[1]);
      if (!text.startsWith('OK ') || role === undefined || !Number.isSafeInteger(epoch)) done(new Error(`unexpected status answer: ${text.slice(0, 80)}`));
      else done({ role, epoch });
    });
  });
}

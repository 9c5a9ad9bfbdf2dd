import type { HostPort } from '@tracker-cluster/protocol';
import { converse } from './converse.js';

/** What a tracker says of itself in `status`. */
export interface PeerStatus {
  role: string;
  epoch: number;
  seq: number;
  /** Undefined for trackers that predate cluster ids. */
  cluster: string | undefined;
}

/**
 * Asks a tracker for `status` and reads its role and epoch (fencing: a
 * primary that sees a primary of a higher epoch steps down). Rejects when
 * the peer cannot be reached or answers nonsense within `timeoutMs`.
 */
export async function probePeer(address: HostPort, timeoutMs: number): Promise<PeerStatus> {
  const text = await converse<string>(address, timeoutMs, 'status', (answer) => ({ done: answer }));
  const role = /(?:^| )role=(\w+)/.exec(text)?.[1];
  const epoch = Number(/(?:^| )epoch=(\d+)/.exec(text)?.[1]);
  const seq = Number(/(?:^| )seq=(\d+)/.exec(text)?.[1] ?? 0);
  const cluster = /(?:^| )cluster=([0-9a-f]+)/.exec(text)?.[1];
  if (!text.startsWith('OK ') || role === undefined || !Number.isSafeInteger(epoch)) throw new Error(`unexpected status answer: ${text.slice(0, 80)}`);
  return { role, epoch, seq, cluster };
}

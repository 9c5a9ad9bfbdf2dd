import net from 'node:net';
import type { Frame, HostPort } from '@tracker-cluster/protocol';
import { FrameDecoder, encodeFrame, err, formatHostPort, ok, tokenize } from '@tracker-cluster/protocol';
import type { Reply } from '../services.js';
import { NONCE, checkProof, newNonce, proof } from './auth.js';

/**
 * Admin actions (docs/protocol.md §6, "Admin actions"): an operator's tool
 * proves the cluster secret by answering the tracker's challenge, on any
 * tracker, either role:
 *
 *   SYNC:ADMIN <nonce_a>          -> OK SYNC:CHALLENGE <nonce_t>
 *   SYNC:PROMOTE <proof>          -> OK promoted epoch=<n> history=<id>
 *
 * where proof = HMAC(secret, "tracker-sync/1 admin <nonce_t> <nonce_a>").
 * The secret never crosses the wire, and a proof answers one challenge only.
 */
export type AdminAction = 'promote';

/** What the tracker does when an authenticated admin asks; resolves to the answer text after `OK `. */
export type AdminRunner = (action: AdminAction) => Promise<string>;

export class AdminServer {
  /** Our nonce and the tool's, per connection between SYNC:ADMIN and the action. */
  private readonly challenges = new Map<number, { mine: string; theirs: string }>();

  constructor(
    private readonly secret: string,
    private readonly run: AdminRunner,
    private readonly onRefused: (remote: string) => void,
  ) {}

  /** True for the payloads this server answers. */
  static handles(name: string): boolean {
    return name === 'SYNC:ADMIN' || name === 'SYNC:PROMOTE';
  }

  handle(connection: { id: number; remote: string }, frame: Frame): Reply | Promise<Reply> {
    let words: string[];
    try {
      words = tokenize(frame.payload.toString('utf8'));
    } catch {
      return { payload: err('FORBIDDEN', 'malformed admin message'), session: 0n };
    }
    const [command, arg, ...rest] = words;
    const name = (command ?? '').toUpperCase();
    if (name === 'SYNC:ADMIN') {
      if (!NONCE.test(arg ?? '') || rest.length > 0) return { payload: err('FORBIDDEN', 'usage: SYNC:ADMIN <nonce: 32 hex digits>'), session: 0n };
      const mine = newNonce();
      this.challenges.set(connection.id, { mine, theirs: arg as string });
      return { payload: ok(`SYNC:CHALLENGE ${mine}`), session: 0n };
    }
    const challenge = this.challenges.get(connection.id);
    this.challenges.delete(connection.id);
    if (!challenge || rest.length > 0 || !checkProof(this.secret, 'admin', challenge.mine, challenge.theirs, arg ?? '')) {
      this.onRefused(connection.remote);
      return { payload: err('FORBIDDEN', 'admin authentication failed (wrong secret?)'), session: 0n };
    }
    return this.run('promote').then(
      (text) => ({ payload: ok(text), session: 0n }),
      (error: unknown) => ({ payload: err('INTERNAL', `promotion failed: ${(error as Error).message}`), session: 0n }),
    );
  }

  forget(connectionId: number): void {
    this.challenges.delete(connectionId);
  }
}

/**
 * The operator's side: dials a tracker, proves the secret, asks it to
 * promote itself. Resolves to the tracker's answer (`OK promoted ...`,
 * `OK already primary ...` or an `ERR`), rejects when it cannot be reached.
 */
export function requestPromotion(address: HostPort, secret: string, timeoutMs = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: address.host, port: address.port });
    const decoder = new FrameDecoder({ maxPayload: 1024 * 1024 });
    const nonce = newNonce();
    const timer = setTimeout(() => finish(new Error(`no answer from ${formatHostPort(address)} within ${timeoutMs} ms`)), timeoutMs);
    const finish = (result: string | Error): void => {
      clearTimeout(timer);
      socket.destroy();
      if (result instanceof Error) reject(result);
      else resolve(result);
    };
    socket.on('error', (error) => finish(new Error(`cannot reach ${formatHostPort(address)}: ${error.message}`)));
    socket.on('close', () => finish(new Error(`${formatHostPort(address)} closed the connection`)));
    socket.on('connect', () => socket.write(encodeFrame(0n, `SYNC:ADMIN ${nonce}`)));
    let challenged = false;
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
        if (challenged) {
          finish(text);
          return;
        }
        const m = /^OK SYNC:CHALLENGE ([0-9a-f]{32})$/.exec(text);
        if (!m) {
          finish(text);
          return;
        }
        challenged = true;
        socket.write(encodeFrame(0n, `SYNC:PROMOTE ${proof(secret, 'admin', m[1] as string, nonce)}`));
      }
    });
  });
}

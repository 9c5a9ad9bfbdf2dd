import type { Frame, HostPort } from '@tracker-cluster/protocol';
import { err, ok, tokenize } from '@tracker-cluster/protocol';
import type { Reply } from '../services.js';
import { NONCE, checkProof, newNonce, proof } from './auth.js';
import { converse } from './converse.js';

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
  const nonce = newNonce();
  let challenged = false;
  return converse<string>(address, timeoutMs, `SYNC:ADMIN ${nonce}`, (answer) => {
    const m = /^OK SYNC:CHALLENGE ([0-9a-f]{32})$/.exec(answer);
    if (challenged || !m) return { done: answer };
    challenged = true;
    return { send: `SYNC:PROMOTE ${proof(secret, 'admin', m[1] as string, nonce)}` };
  });
}

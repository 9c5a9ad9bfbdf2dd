import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * The mutual challenge–response of the SYNC: link (docs/protocol.md §6).
 * Each side proves it knows the cluster secret by an HMAC over both nonces
 * and its role; the secret itself never crosses the wire.
 */
export const SYNC_VERSION = '1';
const CONTEXT = 'tracker-sync/1';

export type SyncRole = 'primary' | 'replica' | 'admin';

export function newNonce(): string {
  return randomBytes(16).toString('hex');
}

/** The proof a side of the given role sends: over its peer's nonce first, then its own. */
export function proof(secret: string, role: SyncRole, peerNonce: string, ownNonce: string): string {
  return createHmac('sha256', secret).update(`${CONTEXT} ${role} ${peerNonce} ${ownNonce}`).digest('hex');
}

/** Constant-time check of a proof received from a peer of `role`. */
export function checkProof(secret: string, role: SyncRole, ownNonce: string, peerNonce: string, received: string): boolean {
  const expected = Buffer.from(proof(secret, role, ownNonce, peerNonce), 'hex');
  const got = /^[0-9a-f]{64}$/.test(received) ? Buffer.from(received, 'hex') : Buffer.alloc(0);
  return got.length === expected.length && timingSafeEqual(got, expected);
}

export const NONCE = /^[0-9a-f]{32}$/;

/**
 * The largest frame either side of an authenticated link accepts from the
 * other, whatever `--max-frame` says: that option bounds what clients send.
 * Two trackers configured with different limits must not cut their link over
 * a forwarded write or a big stream batch.
 */
export const LINK_MAX_PAYLOAD = 64 * 1024 * 1024;

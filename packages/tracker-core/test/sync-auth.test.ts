import { createHmac } from 'node:crypto';
import t from 'tap';
import { checkProof, newNonce, proof } from '@tracker-cluster/tracker-core';

t.test('proofs are HMAC-SHA256 over the role and both nonces, as docs/protocol.md §6 says', async (t) => {
  const nonceR = newNonce();
  const nonceP = newNonce();
  t.match(nonceR, /^[0-9a-f]{32}$/, 'nonces are 16 random bytes in hex');
  t.not(nonceR, nonceP);
  const expected = createHmac('sha256', 'secret').update(`tracker-sync/1 primary ${nonceR} ${nonceP}`).digest('hex');
  t.equal(proof('secret', 'primary', nonceR, nonceP), expected);
});

t.test('each side checks the other with its own nonce first', async (t) => {
  const nonceR = newNonce();
  const nonceP = newNonce();
  // The primary proves itself over (replica nonce, primary nonce); the replica checks it.
  const fromPrimary = proof('s', 'primary', nonceR, nonceP);
  t.ok(checkProof('s', 'primary', nonceR, nonceP, fromPrimary), 'the replica accepts the right proof');
  // The replica proves itself over (primary nonce, replica nonce); the primary checks it.
  const fromReplica = proof('s', 'replica', nonceP, nonceR);
  t.ok(checkProof('s', 'replica', nonceP, nonceR, fromReplica), 'the primary accepts the right proof');
});

t.test('a wrong secret, a swapped role, a replayed proof or garbage is refused', async (t) => {
  const nonceR = newNonce();
  const nonceP = newNonce();
  const good = proof('s', 'replica', nonceP, nonceR);
  const honest = proof('other', 'replica', nonceP, nonceR);
  // Flip the first digit (replacing it with a fixed one would leave it unchanged one time in 16).
  const tampered = (honest[0] === 'f' ? '0' : 'f') + honest.slice(1);
  t.notOk(checkProof('other', 'replica', nonceP, nonceR, tampered), 'tampered');
  t.notOk(checkProof('s', 'replica', nonceP, nonceR, proof('wrong', 'replica', nonceP, nonceR)), 'wrong secret');
  t.notOk(checkProof('s', 'replica', nonceP, nonceR, proof('s', 'primary', nonceP, nonceR)), 'the other role cannot be reflected back');
  t.notOk(checkProof('s', 'replica', newNonce(), nonceR, good), 'a proof for another challenge does not replay');
  for (const junk of ['', 'zz', good.toUpperCase(), `${good}00`, good.slice(2)]) {
    t.notOk(checkProof('s', 'replica', nonceP, nonceR, junk), `garbage ${JSON.stringify(junk.slice(0, 8))}… refused`);
  }
});

import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto';

/**
 * Password hashing with scrypt and a per-user random salt. The parameters
 * travel with the hash (`params`) so that the cost can be raised later
 * without invalidating stored hashes. Hashing runs on libuv's thread pool,
 * never on the event loop.
 */
export interface PasswordHash {
  salt: string; // base64
  hash: string; // base64
  params: string; // "scrypt:N=16384,r=8,p=1,len=32"
}

const KEY_LENGTH = 32;
const SALT_BYTES = 16;
const R = 8;
const P = 1;

interface ScryptParams {
  N: number;
  r: number;
  p: number;
  len: number;
}

function derive(password: string, salt: Buffer, params: ScryptParams): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(password, salt, params.len, { N: params.N, r: params.r, p: params.p, maxmem: 256 * params.N * params.r + 1024 * 1024 }, (error, key) =>
      error ? reject(error) : resolve(key),
    );
  });
}

function formatParams(params: ScryptParams): string {
  return `scrypt:N=${params.N},r=${params.r},p=${params.p},len=${params.len}`;
}

function parseParams(text: string): ScryptParams {
  const m = /^scrypt:N=(\d+),r=(\d+),p=(\d+),len=(\d+)$/.exec(text);
  if (!m) throw new Error(`unknown password hash parameters: ${text}`);
  return { N: Number(m[1]), r: Number(m[2]), p: Number(m[3]), len: Number(m[4]) };
}

export async function hashPassword(password: string, cost: number, salt: Buffer = randomBytes(SALT_BYTES)): Promise<PasswordHash> {
  const params = { N: cost, r: R, p: P, len: KEY_LENGTH };
  const key = await derive(password, salt, params);
  return { salt: salt.toString('base64'), hash: key.toString('base64'), params: formatParams(params) };
}

/** Constant-time check of a password against a stored hash. */
export async function verifyPassword(password: string, stored: PasswordHash): Promise<boolean> {
  const params = parseParams(stored.params);
  const expected = Buffer.from(stored.hash, 'base64');
  const key = await derive(password, Buffer.from(stored.salt, 'base64'), params);
  return key.length === expected.length && timingSafeEqual(key, expected);
}

/**
 * Burns the same work as a real check, so that an unknown user takes as long
 * to refuse as a wrong password (the answer is the same for both).
 */
export async function dummyVerify(password: string, cost: number): Promise<void> {
  await derive(password, Buffer.alloc(SALT_BYTES), { N: cost, r: R, p: P, len: KEY_LENGTH });
}

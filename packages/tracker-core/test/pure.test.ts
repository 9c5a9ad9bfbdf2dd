/**
 * The pure parts of tracker-core: rate limits, options, durations, addresses
 * and password hashing. No sockets, no database.
 */
import { scryptSync } from 'node:crypto';
import t from 'tap';
import {
  ConnectionSlots,
  DEFAULTS,
  DEVELOPMENT_SECRET,
  FailureWindow,
  OptionsError,
  TokenBucket,
  hashPassword,
  parseDuration,
  parseHostPort,
  decodeChange,
  encodeChange,
  parseOptions,
  probationAllows,
  RESERVED_CONNECTIONS,
  splitRequestId,
  sessionsToEvict,
  primaryOfAnotherCluster,
  replicaOfAnotherCluster,
  startingRole,
  verifyPassword,
} from '@tracker-cluster/tracker-core';
import type { OptionsInput } from '@tracker-cluster/tracker-core';

t.test('TokenBucket: a burst of one second, refilled at the rate', async (t) => {
  const bucket = new TokenBucket(2, 1000);
  t.ok(bucket.take(1000));
  t.ok(bucket.take(1000));
  t.notOk(bucket.take(1000), 'empty after the burst');
  t.notOk(bucket.take(1499), 'not quite one token after 499 ms at 2/s');
  t.ok(bucket.take(1500), 'one token after 500 ms');
  t.notOk(bucket.take(1500));
  t.ok(bucket.take(100_000), 'a long pause refills...');
  t.ok(bucket.take(100_000));
  t.notOk(bucket.take(100_000), '...but never beyond one second worth');
  t.notOk(bucket.take(50_000), 'time going backwards refills nothing');
  t.ok(bucket.take(100_500), 'and does not disturb the refill later');

  const fractional = new TokenBucket(1, 0);
  t.ok(fractional.take(0));
  for (let ms = 250; ms < 1000; ms += 250) t.notOk(fractional.take(ms), `partial refill at ${ms} ms is not a token`);
  t.ok(fractional.take(1000), 'fractions add up to a token');
});

t.test('FailureWindow: a sliding window per key', async (t) => {
  const w = new FailureWindow(3, 1000);
  t.equal(w.retryAfter('u', 0), 0, 'an unknown key is not blocked');
  w.record('u', 0);
  w.record('u', 100);
  t.notOk(w.isBlocked('u', 100));
  t.equal(w.retryAfter('u', 100), 0);
  w.record('u', 200);
  t.ok(w.isBlocked('u', 200), 'blocked at the limit');
  t.equal(w.retryAfter('u', 200), 800, 'until the oldest counted failure leaves the window');
  t.equal(w.retryAfter('u', 999), 1);
  t.notOk(w.isBlocked('other', 200), 'keys are independent');
  t.notOk(w.isBlocked('u', 1000), 'the failure at 0 slid out of the window at 1000');
  t.equal(w.retryAfter('u', 1000), 0);
  w.record('u', 1000);
  t.ok(w.isBlocked('u', 1000), 'three failures in (0, 1000] again');
  t.equal(w.retryAfter('u', 1000), 100, 'now the failure at 100 is the one to wait for');
  t.notOk(w.isBlocked('u', 5000), 'all gone after a whole window');

  for (let i = 0; i < 5; i++) w.record('v', 10_000 + i);
  t.equal(w.retryAfter('v', 10_004), 1000 - 2, 'with more failures than the limit, the wait counts from the limit-th newest');
  w.clear('v');
  t.notOk(w.isBlocked('v', 10_004), 'clear() forgets a key');
});

t.test('FailureWindow: forget() takes back one failure counted ahead of its outcome', async (t) => {
  const w = new FailureWindow(2, 1000);
  w.record('c', 10);
  w.record('c', 20);
  t.ok(w.isBlocked('c', 20));
  w.forget('c', 20);
  t.notOk(w.isBlocked('c', 20), 'the one at 20 is gone');
  t.equal(w.retryAfter('c', 20), 0);
  w.record('c', 30);
  t.equal(w.retryAfter('c', 30), 980, 'the one at 10 is still counted');
  w.forget('c', 999);
  t.ok(w.isBlocked('c', 30), 'a time never recorded takes nothing back');
  w.forget('c', 10);
  w.forget('c', 30);
  w.forget('unknown', 1);
  t.notOk(w.isBlocked('c', 30), 'the last one taken back forgets the key');
});

t.test('FailureWindow: bounded keys, least recently failed forgotten first', async (t) => {
  const w = new FailureWindow(1, 60_000, 2);
  w.record('a', 0);
  w.record('b', 1);
  w.record('a', 2); // a becomes the most recent
  w.record('c', 3); // over the bound: b, the least recently failed, goes
  t.ok(w.isBlocked('a', 3));
  t.notOk(w.isBlocked('b', 3), 'b was forgotten');
  t.ok(w.isBlocked('c', 3));
  for (let i = 0; i < 10_000; i++) w.record(`flood${i}`, 10);
  t.ok(w.isBlocked('flood9999', 10));
  t.ok(w.isBlocked('flood9998', 10));
  t.notOk(w.isBlocked('flood9997', 10), 'a flood of names keeps only maxKeys of them');
  t.notOk(w.isBlocked('a', 10));
});

const base: OptionsInput = { role: 'primary', dbPath: '/tmp/x.db' };

t.test('parseOptions fills in the defaults', async (t) => {
  const o = parseOptions(base);
  t.same(o, { ...DEFAULTS, role: 'primary', dbPath: '/tmp/x.db', peer: undefined });
  t.equal(o.secret, DEVELOPMENT_SECRET);
  t.equal(o.syncMode, 'semi-sync');
  t.equal(o.syncTimeoutMs, 1000);
  t.equal(o.maxPayload, 1048576);
  t.equal(o.frameTimeoutMs, 30_000);
  t.equal(o.idleTimeoutMs, 600_000);
  t.equal(o.sessionTtlMs, 24 * 3600_000);
  t.equal(o.maxSharesPerUser, 1000);
  t.equal(o.maxSessionsPerUser, 100);
  t.equal(o.maxGroupsPerUser, 1000);
  t.equal(o.maxRequestsPerUser, 100);
  t.equal(o.dbSynchronous, 'FULL');
  const r = parseOptions({ role: 'replica', dbPath: 'r.db', maxConnections: undefined, peer: { host: '::1', port: 7001 }, syncMode: 'async' });
  t.equal(r.maxConnections, DEFAULTS.maxConnections, 'an undefined value means the default');
  t.same(r.peer, { host: '::1', port: 7001 });
  t.equal(r.syncMode, 'async');
  t.equal(parseOptions({ ...base, maxPayload: 256, rateLimit: 0, maxSharesPerUser: 0, maxGroupsPerUser: 0, maxRequestsPerUser: 0, maxSessionsPerUser: 1, scryptCost: 2 }).maxPayload, 256, 'lower bounds are inclusive');
});

t.test('every bad option is an OptionsError naming the option', async (t) => {
  const cases: Array<[Record<string, unknown>, RegExp]> = [
    [{ role: 'leader' }, /role/],
    [{ dbPath: '' }, /--db\b/],
    [{ secret: '' }, /--secret/],
    [{ syncMode: 'sync' }, /--sync-mode/],
    [{ dbSynchronous: 'OFF' }, /--db-synchronous/],
    [{ syncTimeoutMs: 0 }, /--sync-timeout-ms/],
    [{ maxPayload: -1 }, /--max-frame/],
    [{ maxPayload: 0 }, /--max-frame must be an integer from 256 /],
    [{ maxPayload: 255 }, /--max-frame/],
    [{ maxPayload: 2 ** 32 }, /--max-frame/],
    [{ frameTimeoutMs: 0 }, /--frame-timeout/],
    [{ idleTimeoutMs: 1.5 }, /--idle-timeout/],
    [{ maxConnections: 0 }, /--max-connections/],
    [{ rateLimit: -1 }, /--rate-limit/],
    [{ maxLoginFailures: 0 }, /--max-login-failures/],
    [{ loginWindowMs: 0 }, /--login-window/],
    [{ sessionTtlMs: 999 }, /--session-ttl/],
    [{ sessionPurgeIntervalMs: 9 }, /--session-purge-interval/],
    [{ maxSharesPerUser: -1 }, /--max-shares-per-user/],
    [{ maxSessionsPerUser: 0 }, /--max-sessions-per-user must be an integer from 1 /],
    [{ maxGroupsPerUser: -1 }, /--max-groups-per-user must be an integer from 0 /],
    [{ maxRequestsPerUser: 0.5 }, /--max-requests-per-user must be an integer from 0 /],
    [{ maxPipeline: 0 }, /--max-pipeline/],
    [{ scryptCost: 1 }, /--scrypt-cost/],
    [{ scryptCost: 1000 }, /--scrypt-cost.*power of two/],
    [{ scryptCost: 2 ** 21 }, /--scrypt-cost/],
    [{ maxConnections: Number.NaN }, /--max-connections/],
    [{ rateLimit: '5' }, /--rate-limit/],
    [{ peer: { host: '', port: 1 } }, /peer host/],
    [{ peer: { host: 'h', port: 65536 } }, /peer port/],
  ];
  for (const [bad, flag] of cases) {
    const label = JSON.stringify(bad);
    try {
      parseOptions({ ...base, ...bad } as unknown as OptionsInput);
      t.fail(`${label} was accepted`);
    } catch (error) {
      t.ok(error instanceof OptionsError, `${label}: OptionsError`);
      t.equal((error as Error).name, 'OptionsError');
      t.match((error as Error).message, flag, `${label}: names ${flag.source}`);
    }
  }
});

t.test('sessionsToEvict: room for the new session, least recently active (earliest expiry) first, ties by id', async (t) => {
  const live = [
    { id: '30', expires_at: 500 },
    { id: '4', expires_at: 100 },
    { id: '12', expires_at: 300 },
    { id: '2', expires_at: 300 },
  ];
  t.same(sessionsToEvict(live, 5), [], 'under the cap: nothing ends');
  t.same(sessionsToEvict(live, 4), ['4'], 'at the cap: one ends, the earliest expiry');
  t.same(sessionsToEvict(live, 3), ['4', '12'], "equal expiries go by id's bytes, whatever the input order");
  t.same(sessionsToEvict([...live].reverse(), 3), ['4', '12'], 'the input order does not matter');
  t.same(sessionsToEvict(live, 1), ['4', '12', '2', '30'], 'a cap lowered below the count: as many as it takes');
  t.same(sessionsToEvict([], 1), []);
  t.same(live.map((s) => s.id), ['30', '4', '12', '2'], 'the input is left as it was');
});

t.test('parseDuration', async (t) => {
  const good: Array<[string | number, 'ms' | 's' | undefined, number]> = [
    ['500ms', undefined, 500],
    ['30s', undefined, 30_000],
    ['10m', undefined, 600_000],
    ['24h', undefined, 86_400_000],
    ['7d', undefined, 604_800_000],
    ['1.5s', undefined, 1500],
    [' 42 ', undefined, 42],
    ['42', 's', 42_000],
    ['250ms', 's', 250],
    ['0', undefined, 0],
    [2, 's', 2000],
    [2.5, undefined, 3],
  ];
  for (const [text, unit, ms] of good) t.equal(parseDuration(text, unit), ms, `${JSON.stringify(text)} ${unit ?? 'ms'} = ${ms} ms`);
  for (const bad of ['', 'abc', '-5s', '5x', '5 s s', 's', '1e3', '5 sec']) {
    t.throws(() => parseDuration(bad), OptionsError, `${JSON.stringify(bad)} is refused`);
  }
});

t.test('parseHostPort', async (t) => {
  t.same(parseHostPort('localhost:7001'), { host: 'localhost', port: 7001 });
  t.same(parseHostPort('127.0.0.1:0'), { host: '127.0.0.1', port: 0 });
  t.same(parseHostPort('[::1]:7001'), { host: '::1', port: 7001 }, 'IPv6 in brackets');
  t.same(parseHostPort('[fe80::1%eth0]:65535'), { host: 'fe80::1%eth0', port: 65535 });
  for (const bad of ['localhost', ':7001', 'host:', 'host:65536', 'host:port', '::1:7001', '[::1]', '[::1]:', 'a:b:1', 'host:-1']) {
    t.throws(() => parseHostPort(bad), OptionsError, `${JSON.stringify(bad)} is refused`);
  }
});

t.test('hash and verify', async (t) => {
  const stored = await hashPassword('correct horse', 1024);
  t.equal(stored.params, 'scrypt:N=1024,r=8,p=1,len=32');
  t.equal(Buffer.from(stored.salt, 'base64').length, 16, '16-byte salt');
  t.equal(Buffer.from(stored.hash, 'base64').length, 32, '32-byte key');
  t.not(stored.hash, 'correct horse');
  t.equal(await verifyPassword('correct horse', stored), true, 'the right password');
  t.equal(await verifyPassword('correct horsE', stored), false, 'a wrong password');
  t.equal(await verifyPassword('', stored), false, 'an empty password');
  const again = await hashPassword('correct horse', 1024);
  t.not(again.salt, stored.salt, 'a random salt per hash');
  t.not(again.hash, stored.hash, 'so equal passwords give different hashes');
});

t.test('the hash is scrypt with the parameters it records', async (t) => {
  const salt = Buffer.from('00112233445566778899aabbccddeeff', 'hex');
  const stored = await hashPassword('pässwörd', 2048, salt);
  const expected = scryptSync('pässwörd', salt, 32, { N: 2048, r: 8, p: 1 });
  t.equal(stored.hash, expected.toString('base64'), 'matches node:crypto scrypt computed independently');
  t.equal(stored.salt, salt.toString('base64'));
  t.equal(stored.params, 'scrypt:N=2048,r=8,p=1,len=32');
});

t.test('verify reads the parameters from the stored params string', async (t) => {
  const salt = Buffer.alloc(16, 7);
  const foreign = {
    salt: salt.toString('base64'),
    hash: scryptSync('pw', salt, 24, { N: 512, r: 4, p: 2 }).toString('base64'),
    params: 'scrypt:N=512,r=4,p=2,len=24',
  };
  t.equal(await verifyPassword('pw', foreign), true, 'other N, r, p and length are honoured');
  t.equal(await verifyPassword('pW', foreign), false);
  t.equal(await verifyPassword('pw', { ...foreign, params: 'scrypt:N=1024,r=4,p=2,len=24' }), false, 'a different N gives a different key');
  await t.rejects(verifyPassword('pw', { ...foreign, params: 'bcrypt:12' }), /unknown password hash parameters/);
  await t.rejects(verifyPassword('pw', { ...foreign, params: 'scrypt:N=512,r=4' }), /unknown password hash parameters/);
});

t.test('splitRequestId: an optional @<client>:<n> before the command', async (t) => {
  t.same(splitRequestId(['ping'], 0n), { command: ['ping'] });
  const a = splitRequestId(['@00000000000000ff:42', 'create_group', 'team'], 7n);
  t.same(a.command, ['create_group', 'team']);
  t.equal(a.requestId?.client, '00000000000000ff');
  t.equal(a.requestId?.n, 42);
  const b = splitRequestId(['@00000000000000ff:42', 'create_group', 'other'], 7n);
  t.not(b.requestId?.digest, a.requestId?.digest, 'the digest tells commands apart');
  const c = splitRequestId(['@00000000000000ff:42', 'create_group', 'team'], 8n);
  t.not(c.requestId?.digest, a.requestId?.digest, 'and sessions');
  t.equal(splitRequestId(['@00000000000000ff:42', 'create_group', 'team'], 7n).requestId?.digest, a.requestId?.digest, 'the same request, the same digest');
  t.equal(splitRequestId(['@00000000000000ff:9007199254740991', 'ping'], 0n).requestId?.n, 2 ** 53 - 1);
  for (const bad of [['@'], ['@00000000000000ff:1'], ['@00000000000000ff:0', 'ping'], ['@00000000000000ff:9007199254740992', 'ping'], ['@ff:1', 'ping'], ['@00000000000000FF:1', 'ping']]) {
    t.throws(() => splitRequestId(bad, 0n), { code: 'BAD_REQUEST' }, bad.join(' '));
  }
});

t.test('a change with a request record round-trips through its canonical text', async (t) => {
  const req = { client: '00000000000000ff', n: 3, digest: 'ab', answer: 'OK group created', session: '18446744073709551615', at: 5 };
  const change = { seq: 7, epoch: 1, body: { type: 'group_created', group: 'g', owner: 'o', at: 5 } as const, req };
  t.same(decodeChange(encodeChange(change)), change);
  const plain = { seq: 8, epoch: 1, body: { type: 'member_left', group: 'g', user: 'o' } as const };
  t.same(decodeChange(encodeChange(plain)), plain, 'no req field when there is none');
  t.notMatch(encodeChange(plain), /req/);
  // A body field named like an envelope field (seq, epoch, req) would be lost: promoted carries its epoch in the envelope.
  const promoted = { seq: 9, epoch: 2, body: { type: 'promoted', history: 'h', at: 1 } as const };
  t.same(decodeChange(encodeChange(promoted)), promoted);
});

t.test('startingRole: the command line, unless the log knows better', async (t) => {
  t.same(startingRole('primary', 1, undefined), { role: 'primary' }, 'nothing recorded (a new or older database): as configured');
  t.same(startingRole('replica', 3, undefined), { role: 'replica' });
  t.same(startingRole('primary', 2, 2), { role: 'primary' }, 'the primary of its own epoch');
  t.same(startingRole('replica', 2, 1), { role: 'replica' }, 'a replica that once led an older epoch');
  const followed = startingRole('primary', 2, 1);
  t.equal(followed.role, 'replica', 'an old primary that has followed the primary of a later epoch');
  t.match(followed.reason, /last primary of epoch 1 and has since followed the primary of epoch 2/);
  t.same(startingRole('replica', 1, 1), { role: 'replica' }, 'the original primary brought back as a replica: nobody is promoted to epoch 1');
  const promoted = startingRole('replica', 2, 2);
  t.equal(promoted.role, 'primary', 'a promoted tracker restarted with its tracker-replica line');
  t.match(promoted.reason, /promoted to epoch 2/);
});

t.test('ConnectionSlots: the limit, then a few on probation, then refused; a slot freed is taken again', async (t) => {
  const slots = new ConnectionSlots(2);
  t.same([slots.take(), slots.take()], ['ordinary', 'ordinary']);
  const reserved = Array.from({ length: RESERVED_CONNECTIONS }, () => slots.take());
  t.same(new Set(reserved), new Set(['probation']), `${RESERVED_CONNECTIONS} on probation`);
  t.equal(slots.take(), 'refused');
  slots.release('ordinary');
  t.equal(slots.take(), 'ordinary', 'a client slot freed goes to the next client');
  slots.release('probation');
  t.equal(slots.take(), 'probation');
  t.equal(slots.take(), 'refused');
});

t.test('probationAllows: SYNC: messages and a bare status, nothing else', async (t) => {
  const cases: Array<[string, ReturnType<typeof probationAllows>]> = [
    ['SYNC:HELLO 1 00', 'sync'],
    ['sync:admin ab', 'sync'],
    ['status', 'status'],
    ['STATUS\n', 'status'],
    ['status\r\n', 'status'],
    ['status x', undefined],
    ['statuses', undefined],
    ['ping', undefined],
    ['login a b', undefined],
    ['@0123456789abcdef:1 status', undefined],
    ['', undefined],
  ];
  for (const [payload, expected] of cases) t.equal(probationAllows(Buffer.from(payload)), expected, JSON.stringify(payload));
});

t.test('cluster ids: who is a stranger', async (t) => {
  const a = (seq: number, cluster: string | null = 'aa') => ({ cluster: cluster ?? undefined, seq });
  t.notOk(replicaOfAnotherCluster(a(5), a(3)), 'same cluster');
  t.ok(replicaOfAnotherCluster(a(5), a(3, 'bb')), 'a replica with data of another cluster');
  t.ok(replicaOfAnotherCluster(a(0), a(3, 'bb')), 'even facing an empty primary (a new --db by mistake)');
  t.notOk(replicaOfAnotherCluster(a(5), a(0, 'bb')), 'an empty replica is nobody\'s yet');
  t.notOk(replicaOfAnotherCluster(a(5), a(3, null)), 'an unknown id is no stranger');
  t.notOk(replicaOfAnotherCluster(a(5, null), a(3, 'bb')), 'nor on the primary\'s side');
  t.ok(primaryOfAnotherCluster(a(5), a(3, 'bb')), 'two primaries with data of two clusters');
  t.notOk(primaryOfAnotherCluster(a(0), a(3, 'bb')), 'an empty primary may be fenced');
  t.notOk(primaryOfAnotherCluster(a(5), a(0, 'bb')), 'nor does an empty peer count');
  t.notOk(primaryOfAnotherCluster(a(5), a(3)), 'same cluster');
});

t.test('a refused address option repeats only the first 40 characters of it, whatever its length', async (t) => {
  const long = `${'x'.repeat(300)}:7002`;
  t.throws(() => parseHostPort(long), OptionsError);
  t.throws(() => parseHostPort(long), { message: new RegExp(`^invalid address "${'x'.repeat(40)}…": a host name is at most 253 characters; this one has 300 \\("x{40}…"\\)$`) });
});

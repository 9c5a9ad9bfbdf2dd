import path from 'node:path';
import t from 'tap';
import { envName, optionNames, parseTrackerArgs, UsageError } from '@tracker-cluster/tracker-cli';
import type { CliConfig } from '@tracker-cluster/tracker-cli';
import { DEFAULTS, DEVELOPMENT_SECRET } from '@tracker-cluster/tracker-core';

function run(role: 'primary' | 'replica', argv: string[], env: Record<string, string> = {}): CliConfig {
  const parsed = parseTrackerArgs(role, argv, env, '1.2.3');
  if (parsed.kind !== 'run') throw new Error(`expected a run, got output ${parsed.output}`);
  return parsed.config;
}

t.test('defaults per role', async (t) => {
  const p = run('primary', []);
  t.same(p.listen, { host: '127.0.0.1', port: 7001 });
  t.equal(p.options.dbPath, path.resolve('tracker-primary.db'));
  t.equal(p.options.peer, undefined);
  t.equal(p.options.secret, DEVELOPMENT_SECRET);
  t.equal(p.secretSource, 'default');
  t.equal(p.logLevel, 'info');
  t.equal(p.logFormat, 'auto');
  t.equal(p.program, 'tracker-primary');
  t.equal(p.options.syncTimeoutMs, DEFAULTS.syncTimeoutMs);

  const r = run('replica', []);
  t.same(r.listen, { host: '127.0.0.1', port: 7002 });
  t.equal(r.options.dbPath, path.resolve('tracker-replica.db'));
  t.equal(r.program, 'tracker-replica');
});

t.test('every option, as flags', async (t) => {
  const c = run('primary', [
    '--host', '0.0.0.0', '--port', '0', '--replica', '10.0.0.2:7002', '--db', '/tmp/x.db', '--secret', 's3',
    '--sync-mode', 'async', '--sync-timeout-ms', '250', '--max-frame', '4096', '--frame-timeout', '500ms',
    '--idle-timeout', '10m', '--login-window', '30s', '--session-ttl', '7d', '--session-purge-interval', '2s',
    '--max-connections', '10', '--rate-limit', '0', '--max-login-failures', '3', '--max-shares-per-user', '7',
    '--max-sessions-per-user', '3', '--max-groups-per-user', '0', '--max-requests-per-user', '9', '--max-pipeline', '16', '--scrypt-cost', '1024', '--db-synchronous', 'normal', '--log-level', 'debug',
    '--log-format', 'json',
  ]);
  t.same(c.listen, { host: '0.0.0.0', port: 0 });
  t.match(c.options, {
    role: 'primary',
    dbPath: '/tmp/x.db',
    secret: 's3',
    peer: { host: '10.0.0.2', port: 7002 },
    syncMode: 'async',
    syncTimeoutMs: 250,
    maxPayload: 4096,
    frameTimeoutMs: 500,
    idleTimeoutMs: 600_000,
    loginWindowMs: 30_000,
    sessionTtlMs: 7 * 86_400_000,
    sessionPurgeIntervalMs: 2000,
    maxConnections: 10,
    rateLimit: 0,
    maxLoginFailures: 3,
    maxSharesPerUser: 7,
    maxSessionsPerUser: 3,
    maxGroupsPerUser: 0,
    maxRequestsPerUser: 9,
    maxPipeline: 16,
    scryptCost: 1024,
    dbSynchronous: 'NORMAL',
  });
  t.equal(c.secretSource, 'option');
  t.equal(c.logLevel, 'debug');
  t.equal(c.logFormat, 'json');
});

t.test('TRACKER_* variables, and flags win over them', async (t) => {
  const env = {
    TRACKER_HOST: '::1',
    TRACKER_PORT: '9000',
    TRACKER_REPLICA: '[::1]:9001',
    TRACKER_SECRET: 'from-env',
    TRACKER_SYNC_TIMEOUT_MS: '2s',
    TRACKER_IDLE_TIMEOUT: '1500',
  };
  const c = run('primary', [], env);
  t.same(c.listen, { host: '::1', port: 9000 });
  t.same(c.options.peer, { host: '::1', port: 9001 });
  t.equal(c.options.secret, 'from-env');
  t.equal(c.secretSource, 'env');
  t.equal(c.options.syncTimeoutMs, 2000);
  t.equal(c.options.idleTimeoutMs, 1500, 'a bare number is milliseconds');

  const flags = run('primary', ['--port', '1', '--secret', 'flag'], env);
  t.equal(flags.listen.port, 1);
  t.equal(flags.options.secret, 'flag');
  t.equal(flags.secretSource, 'option');
});

t.test('the per-user limits: flags and TRACKER_* variables, the same on both trackers', async (t) => {
  const env = { TRACKER_MAX_SESSIONS_PER_USER: '4', TRACKER_MAX_GROUPS_PER_USER: '5', TRACKER_MAX_REQUESTS_PER_USER: '6' };
  for (const role of ['primary', 'replica'] as const) {
    t.match(run(role, [], env).options, { maxSessionsPerUser: 4, maxGroupsPerUser: 5, maxRequestsPerUser: 6 }, `${role}: from the variables`);
    const flags = ['--max-sessions-per-user', '7', '--max-groups-per-user', '8', '--max-requests-per-user', '9'];
    t.match(run(role, flags, env).options, { maxSessionsPerUser: 7, maxGroupsPerUser: 8, maxRequestsPerUser: 9 }, `${role}: the flags win`);
    t.match(run(role, []).options, { maxSessionsPerUser: 100, maxGroupsPerUser: 1000, maxRequestsPerUser: 100 }, `${role}: the defaults`);
  }
  t.throws(() => run('primary', ['--max-sessions-per-user', '0']), { name: 'UsageError', message: /--max-sessions-per-user must be an integer from 1 / });
  t.throws(() => run('primary', ['--max-groups-per-user', '-1']), { name: 'UsageError', message: /--max-groups-per-user must be a whole number/ });
  t.throws(() => run('primary', ['--max-requests-per-user', '1.5']), { name: 'UsageError', message: /--max-requests-per-user/ });
});

t.test('every option has a TRACKER_ variable name', async (t) => {
  t.equal(envName('sync-timeout-ms'), 'TRACKER_SYNC_TIMEOUT_MS');
  t.ok(optionNames('primary').includes('replica'));
  t.notOk(optionNames('primary').includes('primary'));
  t.ok(optionNames('replica').includes('primary'));
});

t.test('unknown TRACKER_* variables are reported, not fatal', async (t) => {
  const c = run('primary', [], { TRACKER_SECERT: 'typo', TRACKER_PORT: '1', OTHER: 'x' });
  t.same(c.unknownEnv, ['TRACKER_SECERT']);
});

t.test('the classic positional forms', async (t) => {
  const p = run('primary', ['10.0.0.1', '7001', '10.0.0.2', '7002']);
  t.same(p.listen, { host: '10.0.0.1', port: 7001 });
  t.same(p.options.peer, { host: '10.0.0.2', port: 7002 });

  const r = run('replica', ['10.0.0.1', '7001', '10.0.0.2', '7002']);
  t.same(r.options.peer, { host: '10.0.0.1', port: 7001 }, 'replica: the peer comes first');
  t.same(r.listen, { host: '10.0.0.2', port: 7002 });

  const env = run('primary', ['10.0.0.1', '7001', '10.0.0.2', '7002'], { TRACKER_PORT: '5' });
  t.equal(env.listen.port, 7001, 'positionals win over variables');
});

t.test('usage errors', async (t) => {
  const bad: [string, string[], RegExp][] = [
    ['primary', ['--nope'], /Unknown argument: nope/],
    ['replica', ['--replica', 'a:1'], /Unknown argument: replica/],
    ['primary', ['a'], /exactly 4/],
    ['primary', ['a', '1', 'b', '2', 'c'], /exactly 4/],
    ['primary', ['a', '1', 'b', '2', '--replica', 'x:1'], /cannot be combined with --replica/],
    ['replica', ['a', '1', 'b', 'x'], /bind_port must be a port number/],
    ['primary', ['--port'], /--port must be a port number/],
    ['primary', ['--no-host'], /--host needs a value/],
    ['primary', ['--sync-mode', 'sometimes'], /--sync-mode must be semi-sync or async/],
    ['primary', ['--max-frame', '1k'], /--max-frame must be a whole number/],
    ['primary', ['--session-ttl', '10 years'], /--session-ttl: not a duration/],
    ['primary', ['--session-ttl', '10ms'], /--session-ttl must be an integer from 1000/],
    ['primary', ['--db-synchronous', 'off'], /--db-synchronous must be FULL, NORMAL or EXTRA/],
    ['primary', ['--log-level', 'loud'], /--log-level must be one of/],
    ['primary', ['--db', ''], /--db must name a database file/],
    ['replica', ['--port', '7002', '--primary', '127.0.0.1:7002'], /the peer address 127\.0\.0\.1:7002 is this tracker's own/],
    ['primary', ['--host', '0.0.0.0', '--port', '7001', '--replica', 'localhost:7001'], /is this tracker's own/],
    ['primary', ['127.0.0.1', '7001', '127.0.0.1', '7001'], /is this tracker's own/],
  ];
  for (const [role, argv, message] of bad) {
    t.throws(() => parseTrackerArgs(role as 'primary' | 'replica', argv, {}), UsageError, argv.join(' '));
    t.throws(() => parseTrackerArgs(role as 'primary' | 'replica', argv, {}), { message }, argv.join(' '));
  }
});

t.test('--help and --version give output to print', async (t) => {
  const help = parseTrackerArgs('replica', ['--help'], {}, '1.2.3');
  t.equal(help.kind, 'exit');
  if (help.kind === 'exit') {
    t.match(help.output, /tracker-replica <peer_ip> <peer_port> <bind_ip> <bind_port>/);
    t.match(help.output, /--primary/);
  }
  const version = parseTrackerArgs('primary', ['--version'], {}, '1.2.3');
  t.same(version, { kind: 'exit', output: '1.2.3' });
});

t.test('--config: a JSON file of options; flag > TRACKER_* > file > default', async (t) => {
  const files: Record<string, string> = {
    'tracker.json': JSON.stringify({ port: 7101, 'idle-timeout': '5m', secret: 'from-file', 'admin-port': 9101, 'log-level': 'warn', db: '/data/p.db' }),
    'bad-key.json': JSON.stringify({ port: 1, prot: 2 }),
    'nested.json': JSON.stringify({ config: 'other.json' }),
    'array.json': '[1, 2]',
    'broken.json': '{ "port": ',
    'object-value.json': JSON.stringify({ port: { n: 1 } }),
  };
  const read = (file: string): string => {
    const text = files[file];
    if (text === undefined) throw Object.assign(new Error(`ENOENT: ${file}`), { code: 'ENOENT' });
    return text;
  };
  const parse = (argv: string[], env: Record<string, string> = {}): CliConfig => {
    const parsed = parseTrackerArgs('primary', argv, env, '1.2.3', read);
    if (parsed.kind !== 'run') throw new Error('expected a run');
    return parsed.config;
  };

  const c = parse(['--config', 'tracker.json']);
  t.equal(c.configFile, 'tracker.json');
  t.equal(c.listen.port, 7101);
  t.equal(c.options.idleTimeoutMs, 300_000);
  t.equal(c.options.secret, 'from-file');
  t.equal(c.secretSource, 'config');
  t.same(c.admin, { host: '127.0.0.1', port: 9101 }, 'admin on loopback unless --admin-host says otherwise');
  t.equal(c.logLevel, 'warn');
  t.equal(c.options.dbPath, '/data/p.db');

  const e = parse(['--config', 'tracker.json', '--port', '7201'], { TRACKER_PORT: '7301', TRACKER_IDLE_TIMEOUT: '1m', TRACKER_ADMIN_HOST: '0.0.0.0' });
  t.equal(e.listen.port, 7201, 'the flag wins');
  t.equal(e.options.idleTimeoutMs, 60_000, 'the variable wins over the file');
  t.same(e.admin, { host: '0.0.0.0', port: 9101 });
  t.equal(parse([], { TRACKER_CONFIG: 'tracker.json' }).listen.port, 7101, 'TRACKER_CONFIG names the file too');
  t.equal(parse([]).configFile, undefined);
  t.equal(parse([]).admin, undefined, 'no admin listener by default');

  const refuse = (file: string, message: RegExp): void => {
    t.throws(() => parse(['--config', file]), { name: 'UsageError', message }, file);
  };
  refuse('bad-key.json', /config file bad-key\.json: unknown option "prot" \(known: host, port, /);
  refuse('nested.json', /unknown option "config"/);
  refuse('array.json', /must hold one JSON object/);
  refuse('broken.json', /is not valid JSON/);
  refuse('object-value.json', /"port" must be a string or a number/);
  refuse('missing.json', /cannot read config file missing\.json: no such file/);
  t.throws(() => parse(['--config', 'tracker.json'], { TRACKER_PORT: 'x' }), { message: /TRACKER_PORT must be a port number/ });
  t.throws(() => parse(['--admin-port', '70000']), { message: /--admin-port must be a port number from 0 to 65535/ });
});

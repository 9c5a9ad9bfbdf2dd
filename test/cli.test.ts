/**
 * The tracker-primary command line, run as a real process (PROTOCOL §6):
 * one ready line, clear failures with exit codes 1 and 2, TRACKER_*
 * variables, the classic positional form, signals.
 */
import net from 'node:net';
import path from 'node:path';
import { link, mkdir, stat, symlink, unlink, writeFile } from 'node:fs/promises';
import t from 'tap';
import { makeTempDir, runTrackerCommand, startTracker } from './helpers/tracker.js';
import { connect } from './helpers/wire.js';
import { signUp, status } from './helpers/commands.js';

const READY = /^tracker-primary ready on 127\.0\.0\.1:(\d+) \(role=primary epoch=\d+ seq=\d+\)\n$/;

t.test('prints exactly one ready line on stdout, with the real port', async (t) => {
  const tracker = await startTracker(t);
  t.match(tracker.stdout(), READY);
  t.ok(tracker.port > 0 && tracker.port !== 7001, `ephemeral port ${tracker.port}`);
  t.equal(tracker.host, '127.0.0.1');
  t.equal(tracker.address, `127.0.0.1:${tracker.port}`);
  t.match(tracker.description, /^role=primary epoch=\d+ seq=\d+$/);

  const c = await connect(tracker.port);
  t.teardown(() => c.close());
  const pong = await c.request('ping');
  t.same(pong, { session: 0n, payload: 'OK PONG' });

  const status = await tracker.stop();
  t.same(status, { code: 0, signal: null });
  t.equal(tracker.stdout(), tracker.readyLine + '\n', 'nothing but the ready line on stdout');
});

t.test('logs go to stderr as JSON lines and never carry the secret', async (t) => {
  const tracker = await startTracker(t, { args: ['--log-level', 'debug', '--secret', 'very-secret-value-123'] });
  const c = await connect(tracker.port);
  t.equal((await c.request('PING')).payload, 'OK PONG', 'command names are case-insensitive');
  await c.close();
  t.same(await tracker.stop(), { code: 0, signal: null });

  t.equal(tracker.stdout(), tracker.readyLine + '\n');
  const lines = tracker.stderr().split('\n').filter((l) => l.length > 0);
  t.ok(lines.length >= 2, 'some log lines');
  for (const line of lines) {
    const entry = JSON.parse(line) as { msg?: string; level?: number };
    t.type(entry.level, 'number', `a pino line: ${line.slice(0, 80)}`);
  }
  t.ok(lines.some((l) => (JSON.parse(l) as { msg?: string }).msg === 'listening'), 'logs where it listens');
  t.notMatch(tracker.stderr(), 'very-secret-value-123', 'the secret is never logged');
  t.notMatch(tracker.stderr(), 'INSECURE', 'no development-secret warning when a secret is set');
});

t.test('a primary without --replica warns that nothing can fence it; with it, no such warning', async (t) => {
  const alone = await startTracker(t);
  t.match(alone.stderr(), /no --replica: this primary does not ask its replica for its role/);
  t.same(await alone.stop(), { code: 0, signal: null });
  // The replica's address need not answer: the primary starts without it and keeps asking.
  const paired = await startTracker(t, { args: ['--replica', `127.0.0.1:${alone.port}`] });
  t.notMatch(paired.stderr(), /no --replica/);
  t.same(await paired.stop(), { code: 0, signal: null });
});

t.test('a replica without --primary warns that it takes no writes; with it, no such warning', async (t) => {
  const alone = await startTracker(t, { role: 'replica' });
  const c = await connect(alone.port);
  t.teardown(() => c.close());
  t.match((await c.request('create_user alice pw')).payload, /^ERR PRIMARY_UNAVAILABLE /, 'a write is refused');
  await c.close();
  t.same(await alone.stop(), { code: 0, signal: null });
  t.match(alone.stderr(), /no --primary: this replica serves reads only, and every write is answered PRIMARY_UNAVAILABLE/, 'as it warned');
  // The primary's address need not answer: the replica starts without it and keeps trying.
  const paired = await startTracker(t, { role: 'replica', args: ['--primary', `127.0.0.1:${alone.port}`] });
  t.notMatch(paired.stderr(), /no --primary/);
  t.same(await paired.stop(), { code: 0, signal: null });
});

t.test('pretty logs through a pipe are coloured when FORCE_COLOR asks (as npm start does), else not', async (t) => {
  // eslint-disable-next-line no-control-regex -- the colour codes are what it looks for
  const colour = /\x1b\[\d+m/;
  const asked = await startTracker(t, { args: ['--log-format', 'pretty'], env: { FORCE_COLOR: '1' } });
  t.same(await asked.stop(), { code: 0, signal: null });
  t.match(asked.stderr(), /INFO.*tracker stopped/, 'pretty');
  t.match(asked.stderr(), colour, 'coloured');
  // The test runner's own FORCE_COLOR=0 is what a child inherits; stderr is a pipe either way.
  for (const env of [{ FORCE_COLOR: '0' }, { FORCE_COLOR: 'no' }]) {
    const plain = await startTracker(t, { args: ['--log-format', 'pretty'], env });
    t.same(await plain.stop(), { code: 0, signal: null });
    t.match(plain.stderr(), /INFO.*tracker stopped/, 'pretty');
    t.notMatch(plain.stderr(), colour, `no colours with FORCE_COLOR=${env.FORCE_COLOR}`);
  }
});

t.test('without a secret it warns loudly and does not log the development secret', async (t) => {
  const dir = await makeTempDir(t);
  const tracker = await startTracker(t, {
    dir,
    rawArgs: ['--host', '127.0.0.1', '--port', '0', '--db', path.join(dir, 'p.db'), '--scrypt-cost', '1024'],
  });
  t.match(tracker.stderr(), /INSECURE/);
  t.notMatch(tracker.stderr(), 'tracker-cluster-INSECURE-development-secret');
  t.same(await tracker.stop(), { code: 0, signal: null });
});

t.test('--help and --version exit 0 on stdout', async (t) => {
  const help = await runTrackerCommand(t, ['--help']);
  t.equal(help.code, 0);
  t.match(help.stdout, /Usage:/);
  t.match(help.stdout, /tracker-primary <bind_ip> <bind_port> <peer_ip> <peer_port>/);
  for (const option of ['--host', '--port', '--replica', '--db', '--secret', '--sync-mode', '--sync-timeout-ms', '--log-format']) {
    t.match(help.stdout, option);
  }
  t.match(help.stdout, /TRACKER_/);
  t.equal(help.stderr, '');

  const version = await runTrackerCommand(t, ['--version']);
  t.equal(version.code, 0);
  t.match(version.stdout, /^\d+\.\d+\.\d+\n$/);
});

t.test('bad command lines exit 2 with a clear message', async (t) => {
  // A sample of each kind; packages/tracker-cli/test/args.test.ts checks every rule in-process.
  const cases: { args: string[]; env?: Record<string, string>; message: RegExp }[] = [
    { args: ['--bogus'], message: /Unknown argument: bogus/ },
    { args: ['--primary', '127.0.0.1:7001'], message: /Unknown argument: primary/ },
    { args: ['--sync-mode', 'nope'], message: /--sync-mode must be semi-sync or async, not nope/ },
    { args: ['--port', '99999'], message: /--port must be a port number from 0 to 65535, got "99999"/ },
    { args: ['--idle-timeout', 'soon'], message: /--idle-timeout: not a duration: "soon"/ },
    { args: ['127.0.0.1', '7001'], message: /exactly 4/ },
    { args: ['127.0.0.1', '0', '127.0.0.1', '7002', '--port', '1'], message: /cannot be combined with --port/ },
    { args: [], env: { TRACKER_SYNC_MODE: 'nope' }, message: /--sync-mode must be semi-sync or async/ },
    { args: [], env: { TRACKER_PORT: 'x' }, message: /TRACKER_PORT must be a port number/ },
  ];
  // A few at a time: each is a whole node process.
  for (let i = 0; i < cases.length; i += 4) {
    const batch = cases.slice(i, i + 4);
    const results = await Promise.all(
      batch.map((c) => runTrackerCommand(t, ['--db', 'x.db', ...c.args], { env: c.env ?? {} })),
    );
    batch.forEach((c, j) => {
      const r = results[j]!;
      const name = `${c.args.join(' ')} ${JSON.stringify(c.env ?? {})}`;
      t.equal(r.code, 2, `${name}: exit 2`);
      t.match(r.stderr, /^tracker-primary: /, `${name}: prefixed`);
      t.match(r.stderr, c.message, `${name}: ${c.message}`);
      t.match(r.stderr, /--help/, `${name}: points to --help`);
      t.equal(r.stdout, '', `${name}: nothing on stdout`);
    });
  }
});

t.test('a port in use exits 1', async (t) => {
  const blocker = net.createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => blocker.close(() => resolve())));
  const port = (blocker.address() as net.AddressInfo).port;
  const dir = await makeTempDir(t);

  const r = await runTrackerCommand(
    t,
    ['--host', '127.0.0.1', '--port', String(port), '--db', path.join(dir, 'p.db'), '--secret', 's'],
    { cwd: dir },
  );
  t.equal(r.code, 1);
  t.match(r.stderr, `tracker-primary: cannot listen on 127.0.0.1:${port}: address already in use`);
  t.equal(r.stdout, '', 'no ready line');
});

t.test('a database another tracker process has open exits 1, and the first goes on', async (t) => {
  const first = await startTracker(t);
  const r = await runTrackerCommand(t, ['--host', '127.0.0.1', '--port', '0', '--db', first.dbPath, '--secret', 's'], { cwd: first.dir });
  t.equal(r.code, 1);
  t.match(r.stderr, `tracker-primary: cannot open database ${first.dbPath}: ${first.dbPath} is in use by another tracker process`);
  t.equal(r.stdout, '', 'no ready line');
  const c = await connect(first.port);
  t.teardown(() => c.close());
  t.equal((await c.request('ping')).payload, 'OK PONG', 'the first is unharmed');
  await first.kill9();
  const again = await first.restart();
  t.match(again.description, /^role=primary /, 'a lock left by kill -9 is gone with its process');
});

t.test('the same database through a symlink is the same database: in use, exit 1', async (t) => {
  const first = await startTracker(t);
  const alias = path.join(first.dir, 'alias.db');
  await symlink(first.dbPath, alias);
  const r = await runTrackerCommand(t, ['--host', '127.0.0.1', '--port', '0', '--db', alias, '--secret', 's'], { cwd: first.dir });
  t.equal(r.code, 1);
  t.match(r.stderr, `is in use by another tracker process`);
  t.equal(r.stdout, '', 'no ready line');
  await t.rejects(stat(`${alias}-log`), 'no log of its own was made beside the alias');
});

t.test('a hard link to a running database, or to its log, is refused with exit 1, and the first goes on', async (t) => {
  const first = await startTracker(t);
  const c = await connect(first.port);
  t.teardown(() => c.close());
  await signUp(c, 'alice');
  const seq = (await status(c))['seq'];

  // The lock is named after one path; a second name for the same file must not get a lock of its own.
  const alias = path.join(first.dir, 'alias.db');
  await link(first.dbPath, alias);
  const r = await runTrackerCommand(t, ['--host', '127.0.0.1', '--port', '0', '--db', alias, '--secret', 's'], { cwd: first.dir });
  t.equal(r.code, 1);
  t.match(r.stderr, `tracker-primary: cannot open database ${alias}: ${alias} has 2 names (hard links): `);
  t.match(r.stderr, 'find / -xdev -samefile');
  t.equal(r.stdout, '', 'no ready line');
  for (const side of ['-log', '-lock', '-wal']) await t.rejects(stat(`${alias}${side}`), `no ${side} of its own was made beside the link`);
  await unlink(alias);

  // A log shared by two state files would take two trackers' writes.
  const other = path.join(first.dir, 'other.db');
  await link(`${first.dbPath}-log`, `${other}-log`);
  const r2 = await runTrackerCommand(t, ['--host', '127.0.0.1', '--port', '0', '--db', other, '--secret', 's'], { cwd: first.dir });
  t.equal(r2.code, 1);
  t.match(r2.stderr, `tracker-primary: cannot open database ${other}: ${other}-log has 2 names (hard links): `);
  await t.rejects(stat(other), 'no state file was made beside the linked log');
  await unlink(`${other}-log`);

  t.equal((await status(c))['seq'], seq, 'the first tracker is unharmed: nothing written meanwhile');
  await signUp(c, 'bob');
  t.equal((await c.request('ping')).payload, 'OK PONG', 'and it goes on answering and writing');
});

t.test('an unreadable database exits 1', async (t) => {
  const dir = await makeTempDir(t);
  const asDir = path.join(dir, 'a-directory.db');
  await mkdir(asDir);
  const garbage = path.join(dir, 'garbage.db');
  await writeFile(garbage, Buffer.from('this is not an SQLite database at all, just some bytes '.repeat(100)));
  const missingDir = path.join(dir, 'no', 'such', 'dir.db');

  for (const db of [asDir, garbage, missingDir]) {
    const r = await runTrackerCommand(t, ['--host', '127.0.0.1', '--port', '0', '--db', db, '--secret', 's'], { cwd: dir });
    t.equal(r.code, 1, `${db}: exit 1`);
    t.match(r.stderr, /tracker-primary: cannot open database /, `${db}: clear message`);
    t.match(r.stderr, db, `${db}: names the file`);
    t.equal(r.stdout, '', `${db}: no ready line`);
  }
});

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  t.test(`${signal} stops it cleanly with exit 0`, async (t) => {
    const tracker = await startTracker(t);
    const c = await connect(tracker.port);
    t.equal((await c.request('ping')).payload, 'OK PONG');
    const status = await tracker.stop(signal);
    t.same(status, { code: 0, signal: null });
    await c.closed;
    t.ok(c.isClosed, 'open connections are closed');
    t.match(tracker.stderr(), /stopped/);
  });
}

t.test('TRACKER_* variables are honoured, and a flag wins over them', async (t) => {
  const dir = await makeTempDir(t);
  const tracker = await startTracker(t, {
    dir,
    rawArgs: [],
    env: {
      TRACKER_HOST: '127.0.0.1',
      TRACKER_PORT: '0',
      TRACKER_DB: path.join(dir, 'env.db'),
      TRACKER_SECRET: 'env-secret-value',
      TRACKER_SCRYPT_COST: '1024',
      TRACKER_SYNC_TIMEOUT_MS: '250',
      TRACKER_LOG_LEVEL: 'debug',
    },
    dbPath: path.join(dir, 'env.db'),
  });
  t.match(tracker.stdout(), READY);
  const starting = tracker
    .stderr()
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => JSON.parse(l) as { msg?: string; options?: Record<string, unknown> })
    .find((e) => e.msg === 'starting');
  t.match(starting?.options, { dbPath: path.join(dir, 'env.db'), syncTimeoutMs: 250, scryptCost: 1024, secretFrom: 'env' });
  t.notMatch(tracker.stderr(), 'env-secret-value');
  t.notMatch(tracker.stderr(), 'INSECURE');
  t.same(await tracker.stop(), { code: 0, signal: null });

  const flagWins = await startTracker(t, { dir, args: ['--port', '0'], env: { TRACKER_PORT: '99999' } });
  t.match(flagWins.stdout(), READY);
  t.same(await flagWins.stop(), { code: 0, signal: null });
});

t.test('unknown TRACKER_* variables are ignored with a warning', async (t) => {
  const tracker = await startTracker(t, { env: { TRACKER_NO_SUCH_OPTION: '1' } });
  t.match(tracker.stderr(), /TRACKER_NO_SUCH_OPTION/);
  t.same(await tracker.stop(), { code: 0, signal: null });
});

t.test('the classic positional form starts and listens', async (t) => {
  const dir = await makeTempDir(t);
  const tracker = await startTracker(t, {
    dir,
    rawArgs: ['127.0.0.1', '0', '127.0.0.1', '1'],
    dbPath: path.join(dir, 'tracker-primary.db'),
    env: { TRACKER_SECRET: 'classic', TRACKER_SCRYPT_COST: '1024' },
  });
  t.match(tracker.stdout(), READY);
  await stat(path.join(dir, 'tracker-primary.db')); // the default --db, in the working directory
  const c = await connect(tracker.port);
  t.equal((await c.request('ping')).payload, 'OK PONG');
  await c.close();
  t.same(await tracker.stop(), { code: 0, signal: null });
});

t.test('restart keeps the database and takes a new port', async (t) => {
  const first = await startTracker(t);
  const second = await first.restart();
  t.equal(second.dbPath, first.dbPath);
  t.match(second.stdout(), READY);
  t.ok((await first.exited).code === 0, 'the first stopped cleanly');
  const c = await connect(second.port);
  t.equal((await c.request('ping')).payload, 'OK PONG');
  await c.close();
  await second.kill9();
  t.equal(second.proc.signalCode, 'SIGKILL');
});

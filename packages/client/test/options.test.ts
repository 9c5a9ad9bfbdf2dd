import t from 'tap';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { EXIT, parseArgs, parseTrackerInfo, resolveOptions, UsageError } from '@tracker-cluster/client';

t.test('defaults', async (t) => {
  const o = resolveOptions({});
  t.same(o.trackers, [
    { host: '127.0.0.1', port: 7001 },
    { host: '127.0.0.1', port: 7002 },
  ]);
  t.equal(o.exec, undefined);
  t.equal(o.requestTimeoutMs, 30000);
  t.equal(o.connectTimeoutMs, 5000);
});

t.test('trackers in order, commas allowed, IPv6', async (t) => {
  const o = resolveOptions({ tracker: ['10.0.0.2:7002', '[::1]:7001,h:9'] });
  t.same(o.trackers, [
    { host: '10.0.0.2', port: 7002 },
    { host: '::1', port: 7001 },
    { host: 'h', port: 9 },
  ]);
  t.throws(() => resolveOptions({ tracker: ['nope'] }), UsageError);
  t.throws(() => resolveOptions({ tracker: ['nope'] }), { message: /^bad --tracker value: invalid tracker address "nope"/ });
  t.throws(() => resolveOptions({ tracker: [] }), { message: /--tracker needs a value/ });
  const long = `${'x'.repeat(300)}:7001`;
  for (const [what, given] of [['--tracker value: invalid tracker address', { tracker: [long] }], ['--listen value: invalid address', { listen: long }]] as const) {
    t.throws(() => resolveOptions(given), { message: new RegExp(`^bad ${what} "x{40}…": a host name is at most 253 characters; this one has 300 \\("x{40}…"\\)$`) }, `${what}: only the first 40 characters repeated`);
  }
});

t.test('environment variables, command line first', async (t) => {
  const env = { TRACKER_TRACKER: '1.2.3.4:5 6.7.8.9:10', TRACKER_EXEC: 'ping', TRACKER_TIMEOUT_MS: '100', TRACKER_PORT: '99' };
  const o = resolveOptions({}, env);
  t.same(o.trackers, [
    { host: '1.2.3.4', port: 5 },
    { host: '6.7.8.9', port: 10 },
  ]);
  t.equal(o.exec, 'ping');
  t.equal(o.requestTimeoutMs, 100);
  const o2 = resolveOptions({ tracker: 'x:1', exec: ['a', 'b'], timeoutMs: '0' }, env);
  t.same(o2.trackers, [{ host: 'x', port: 1 }]);
  t.equal(o2.exec, 'a;b', 'several --exec run one after the other');
  t.equal(o2.requestTimeoutMs, 0);
});

t.test('timeouts', async (t) => {
  t.equal(resolveOptions({ connectTimeoutMs: '250' }).connectTimeoutMs, 250);
  for (const bad of ['x', '-1', '1.5', '', '99999999999']) {
    t.throws(() => resolveOptions({ timeoutMs: bad }), { message: /bad --timeout-ms value/ }, `"${bad}"`);
  }
});

t.test('parseArgs: options, help, errors', async (t) => {
  const ok = parseArgs(['--tracker', '127.0.0.1:1', '--tracker', '[::1]:2', '--exec', 'ping; status']);
  t.equal(ok.kind, 'run');
  if (ok.kind === 'run') {
    t.same(ok.options.trackers, [
      { host: '127.0.0.1', port: 1 },
      { host: '::1', port: 2 },
    ]);
    t.equal(ok.options.exec, 'ping; status');
  }
  const env = parseArgs([], { TRACKER_TRACKER: 'e:1', TRACKER_REPLICA: 'ignored:1' });
  t.equal(env.kind, 'run', "other programs' TRACKER_* variables are not unknown options");
  if (env.kind === 'run') t.same(env.options.trackers, [{ host: 'e', port: 1 }]);

  const help = parseArgs(['--help']);
  t.equal(help.kind, 'exit');
  if (help.kind === 'exit') {
    t.equal(help.code, EXIT.OK);
    t.match(help.stdout, /--tracker/);
    t.match(help.stdout, /--exec/);
    t.match(help.stdout, /Exit status/);
  }
  const version = parseArgs(['--version']);
  t.match(version, { kind: 'exit', code: EXIT.OK, stdout: /^\d+\.\d+\.\d+/ });

  const bad: string[][] = [
    ['--nope'],
    ['positional'],
    ['--tracker'],
    ['--tracker', 'x'],
    ['--tracker', '::1:7001'],
    ['--exec'],
    ['--timeout-ms', 'soon'],
  ];
  for (const argv of bad) {
    const r = parseArgs(argv);
    t.match(r, { kind: 'exit', code: EXIT.USAGE, stdout: '', stderr: /^tracker-client: .+\nTry "tracker-client --help"/ }, argv.join(' '));
  }
});

t.test('--json, --keep-going, --listen, --failover-timeout-ms, and their environment variables', async (t) => {
  const o = resolveOptions({ json: true, keepGoing: true, listen: '10.0.0.5:9000', failoverTimeoutMs: '0' });
  t.equal(o.json, true);
  t.equal(o.keepGoing, true);
  t.same(o.peerAddress, { host: '10.0.0.5', port: 9000 });
  t.equal(o.failoverTimeoutMs, 0);
  const d = resolveOptions({});
  t.same([d.json, d.keepGoing, d.peerAddress, d.failoverTimeoutMs], [false, false, undefined, 15000]);
  const e = resolveOptions({}, { TRACKER_JSON: '1', TRACKER_KEEP_GOING: 'yes', TRACKER_LISTEN: '127.0.0.1:9001' });
  t.same([e.json, e.keepGoing, e.peerAddress], [true, true, { host: '127.0.0.1', port: 9001 }]);
  t.throws(() => resolveOptions({}, { TRACKER_JSON: 'maybe' }), { message: /TRACKER_JSON/ });
  t.throws(() => resolveOptions({ listen: 'nowhere' }), { message: /bad --listen value/ });
});

t.test('--keepalive-ms: a minute by default, 0 turns it off, TRACKER_KEEPALIVE_MS', async (t) => {
  t.equal(resolveOptions({}).peer.keepaliveMs, 60_000);
  t.equal(resolveOptions({ keepaliveMs: '0' }).peer.keepaliveMs, 0);
  t.equal(resolveOptions({}, { TRACKER_KEEPALIVE_MS: '5000' }).peer.keepaliveMs, 5000);
  t.equal(resolveOptions({ keepaliveMs: '1000' }, { TRACKER_KEEPALIVE_MS: '5000' }).peer.keepaliveMs, 1000, 'the command line wins');
  const parsed = parseArgs(['--serve', '--keepalive-ms', '2500']);
  t.equal(parsed.kind === 'run' && parsed.options.peer.keepaliveMs, 2500);
  t.throws(() => resolveOptions({ keepaliveMs: 'often' }), { message: /bad --keepalive-ms value "often"/ });
  t.throws(() => resolveOptions({ keepaliveMs: String(2 ** 31) }), { message: /at most/ });
});

t.test('the classic form: <own_ip>:<own_port> tracker_info.txt', async (t) => {
  const text = '# trackers\n127.0.0.1:7001\n\n127.0.0.1 7002\n[::1]:7003\n';
  const o = resolveOptions({ ownAddress: '192.168.1.20:6000', trackerInfo: { path: 'tracker_info.txt', text } });
  t.same(o.peerAddress, { host: '192.168.1.20', port: 6000 });
  t.same(o.trackers, [
    { host: '127.0.0.1', port: 7001 },
    { host: '127.0.0.1', port: 7002 },
    { host: '::1', port: 7003 },
  ]);
  t.same(parseTrackerInfo('a.example:1\r\nb.example 2\r\n'), [
    { host: 'a.example', port: 1 },
    { host: 'b.example', port: 2 },
  ]);
  t.throws(() => parseTrackerInfo('\n# none\n', 'ti.txt'), { message: 'ti.txt lists no tracker (one HOST:PORT a line)' });
  t.throws(() => parseTrackerInfo('127.0.0.1:7001\nbogus\n', 'ti.txt'), { message: /^ti\.txt line 2: / });
  t.throws(() => resolveOptions({ ownAddress: '1.2.3.4:5' }), { message: /classic form takes two arguments/ });
  t.throws(() => resolveOptions({ ownAddress: 'x', trackerInfo: { path: 'f', text } }), { message: /bad own address \(first argument\)/ });
  t.throws(() => resolveOptions({ ownAddress: '1.2.3.4:5', trackerInfo: { path: 'f', text }, tracker: ['1.1.1.1:1'] }), {
    message: /either with --tracker or in a tracker_info file/,
  });
});

t.test('parseArgs reads the classic form and its file', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'client-args-'));
  const file = path.join(dir, 'tracker_info.txt');
  writeFileSync(file, '127.0.0.1:7001\n127.0.0.1:7002\n');
  const parsed = parseArgs(['127.0.0.1:6001', file]);
  t.equal(parsed.kind, 'run');
  if (parsed.kind === 'run') {
    t.same(parsed.options.peerAddress, { host: '127.0.0.1', port: 6001 });
    t.equal(parsed.options.trackers.length, 2);
  }
  const missing = parseArgs(['127.0.0.1:6001', path.join(dir, 'nope.txt')]);
  t.equal(missing.kind, 'exit');
  if (missing.kind === 'exit') {
    t.equal(missing.code, EXIT.USAGE);
    t.match(missing.stderr, /cannot read the tracker_info file ".*nope\.txt": ENOENT/);
  }
  const flags = parseArgs(['--json', '--keep-going', '--listen', '0.0.0.0:6002']);
  t.equal(flags.kind, 'run');
  if (flags.kind === 'run') t.same([flags.options.json, flags.options.keepGoing, flags.options.peerAddress?.port], [true, true, 6002]);
});

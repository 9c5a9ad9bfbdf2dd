import t from 'tap';
import { EXIT, parseArgs, resolveOptions, UsageError } from '@tracker-cluster/client';

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

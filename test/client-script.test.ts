/**
 * tracker-client against the real tracker: the client bin spawned with
 * --exec and with a script on stdin, its output and exit status; and the
 * prompt (run in-process over streams that claim to be a terminal).
 */
import { PassThrough } from 'node:stream';
import t from 'tap';
import { run } from '@tracker-cluster/client';
import { DEADLINE_MS, lines, runClient, spawnClient } from './helpers/client.js';
import { expectAnswer, signUp } from './helpers/commands.js';
import { freePorts, startTracker } from './helpers/tracker.js';
import { connect, waitFor } from './helpers/wire.js';

t.test('tracker-client against a real tracker', async (t) => {
  const tracker = await startTracker(t);
  const at = ['--tracker', tracker.address];

  t.test('--exec: a whole session, the session kept between commands, exit 0', async (t) => {
    const r = await runClient(t, [
      ...at,
      '--exec',
      'create_user alice pw-alice; login alice pw-alice; whoami; create_group g1; list_groups; list_members g1; logout',
    ]);
    t.equal(r.stderr, '');
    t.same(lines(r.stdout), [
      'OK user created',
      'OK logged in as alice sessions=1',
      'OK alice sessions=1',
      'OK group created',
      'OK 1',
      'g1 owner=alice members=1',
      'OK 1',
      'alice role=owner',
      'OK logged out sessions=0',
    ]);
    t.equal(r.code, 0);
  });

  t.test('--exec: an ERR answer stops the script with exit status 1', async (t) => {
    const r = await runClient(t, [...at, '--exec', 'ping; whoami; ping']);
    t.same(lines(r.stdout).length, 2);
    t.match(lines(r.stdout)[1], /^ERR AUTH_REQUIRED\b/);
    t.equal(r.code, 1);
  });

  t.test('--exec --keep-going: an ERR answer makes the exit status 1, and the remaining commands still run', async (t) => {
    const r = await runClient(t, [...at, '--keep-going', '--exec', 'whoami; ping; login nobody nopw; ping']);
    const out = lines(r.stdout);
    t.equal(out.length, 4);
    t.match(out[0], /^ERR AUTH_REQUIRED\b/);
    t.equal(out[1], 'OK PONG');
    t.match(out[2], /^ERR INVALID_CREDENTIALS\b/);
    t.equal(out[3], 'OK PONG');
    t.equal(r.code, 1);
  });

  t.test('--exec: logout ends the session for the following commands', async (t) => {
    const r = await runClient(t, [...at, '--exec', 'create_user bob pw-bob; login bob pw-bob; logout; whoami']);
    const out = lines(r.stdout);
    t.same(out.slice(0, 3), ['OK user created', 'OK logged in as bob sessions=1', 'OK logged out sessions=0']);
    t.match(out[3], /^ERR AUTH_REQUIRED\b/);
    t.equal(out.length, 4);
    t.equal(r.code, 1);
  });

  t.test('--exec: quoted arguments, with ";" and spaces inside quotes', async (t) => {
    const r = await runClient(t, [...at, '--exec', 'create_user carol "pass; word"; login carol "pass; word"; whoami']);
    t.same(lines(r.stdout), ['OK user created', 'OK logged in as carol sessions=1', 'OK carol sessions=1']);
    t.equal(r.code, 0);
  });

  t.test('stdin: one command a line, comments and blank lines skipped', async (t) => {
    const script = [
      '# a script',
      'create_user dave pw-dave',
      '',
      '   ',
      'login dave pw-dave',
      '  # indented comment',
      'WHOAMI',
      'create_group g-dave',
      'list_groups',
      'logout',
      '',
    ].join('\n');
    const r = await runClient(t, at, script);
    t.equal(r.stderr, '');
    t.same(lines(r.stdout), [
      'OK user created',
      'OK logged in as dave sessions=1',
      'OK dave sessions=1',
      'OK group created',
      'OK 2',
      'g-dave owner=dave members=1',
      'g1 owner=alice members=1',
      'OK logged out sessions=0',
    ]);
    t.equal(r.code, 0);
  });

  t.test('stdin: ERR gives exit 1; help and quit are handled by the client', async (t) => {
    const r = await runClient(t, [...at, '--keep-going'], 'help whoami\nwhoami\nping\nquit\nping\n');
    const out = lines(r.stdout);
    t.equal(out[0], 'usage: whoami');
    t.match(out.find((l) => l.startsWith('ERR')), /^ERR AUTH_REQUIRED\b/);
    t.equal(out.filter((l) => l === 'OK PONG').length, 1, 'nothing runs after quit');
    t.equal(r.code, 1);
  });

  t.test('help for a command that does not exist: the client says so on stderr, like its other messages', async (t) => {
    const r = await runClient(t, [...at, '--exec', 'help nosuch']);
    t.equal(r.code, 1);
    t.equal(r.stdout, '');
    t.equal(r.stderr.trim(), 'tracker-client: help: no such command "nosuch" (type "help" for the list)');
  });

  t.test('stdin: events are printed as they arrive', async (t) => {
    await runClient(t, [...at, '--exec', 'create_user erin pw-erin; create_user frank pw-frank']);
    const client = await spawnClient(t, at);
    client.proc.stdin?.write('login erin pw-erin\ncreate_group g-erin\n');
    await waitFor(() => client.stdout().includes('OK group created'), { timeoutMs: DEADLINE_MS, message: 'erin logged in with a group' });

    // frank asks to join over a plain frame connection; erin's client is told.
    const frank = await connect(tracker.port, tracker.host);
    t.teardown(() => frank.close());
    const login = await frank.request('login frank pw-frank');
    t.match(login.payload, /^OK logged in as frank/);
    t.equal((await frank.request('join_group g-erin', login.session)).payload, 'OK request sent');
    await waitFor(() => client.stdout().includes('[event] join_request g-erin frank'), {
      timeoutMs: DEADLINE_MS,
      message: 'the join_request event in the client output',
    });

    client.proc.stdin?.end('accept_request g-erin frank\nlist_members g-erin\n');
    const r = await client.exited;
    t.same(lines(r.stdout), [
      'OK logged in as erin sessions=1',
      'OK group created',
      '[event] join_request g-erin frank',
      'OK frank joined g-erin',
      'OK 2',
      'erin role=owner',
      'frank role=member',
    ]);
    t.equal(r.code, 0);
  });

  t.test('bad options: exit 2', async (t) => {
    const r1 = await runClient(t, ['--tracker', 'no-port-here', '--exec', 'ping']);
    t.equal(r1.code, 2);
    t.equal(r1.stdout, '');
    t.match(r1.stderr, /bad --tracker value: invalid tracker address "no-port-here": missing port/);
    const r2 = await runClient(t, [...at, '--no-such-option']);
    t.equal(r2.code, 2);
    t.match(r2.stderr, /Unknown argument/);
  });

  t.test('interactive: the prompt follows login and logout; quit leaves cleanly', async (t) => {
    await runClient(t, [...at, '--exec', 'create_user gina pw-gina']);
    const input = Object.assign(new PassThrough(), { isTTY: true });
    const output = new PassThrough();
    let shown = '';
    output.setEncoding('utf8').on('data', (s: string) => (shown += s));
    const stderr = new PassThrough();
    const done = run({ argv: at, env: { TRACKER_CLIENT_HISTORY: '' }, stdin: input, stdout: output, stderr });
    t.teardown(async () => {
      input.end();
      await done.catch(() => {});
    });
    const seen = (text: string, message: string): Promise<boolean> =>
      waitFor(() => shown.includes(text), { timeoutMs: DEADLINE_MS, message: `${message}; shown:\n${shown}` });

    await seen(`${tracker.address} (primary)> `, 'the logged-out prompt');
    input.write('login gina pw-gina\n');
    await seen(`gina@${tracker.address} (primary)> `, 'the logged-in prompt');
    t.match(shown, 'OK logged in as gina sessions=1');
    input.write('help\n');
    await seen('accept_request <group> <user>', 'the help table');
    input.write('logout\n');
    await waitFor(() => /OK logged out sessions=0\n[^]*\(primary\)> /.test(shown), {
      timeoutMs: DEADLINE_MS,
      message: 'the logout answer, then the prompt without a user',
    });
    input.write('quit\n');
    t.equal(await done, 0);
  });

  t.test('interactive: Ctrl-D leaves cleanly without logging out', async (t) => {
    await runClient(t, [...at, '--exec', 'create_user hank pw-hank']);
    const input = Object.assign(new PassThrough(), { isTTY: true });
    const output = new PassThrough();
    let shown = '';
    output.setEncoding('utf8').on('data', (s: string) => (shown += s));
    const done = run({ argv: at, env: { TRACKER_CLIENT_HISTORY: '' }, stdin: input, stdout: output, stderr: new PassThrough() });
    t.teardown(async () => {
      input.end();
      await done.catch(() => {});
    });
    input.write('login hank pw-hank\n');
    await waitFor(() => shown.includes(`hank@${tracker.address} (primary)> `), { timeoutMs: DEADLINE_MS, message: 'the logged-in prompt' });
    input.end(); // Ctrl-D
    t.equal(await done, 0);
    // The session was not ended: a second login counts two live sessions.
    const r = await runClient(t, [...at, '--exec', 'login hank pw-hank']);
    t.same(lines(r.stdout), ['OK logged in as hank sessions=2']);
  });
});

t.test('nothing listening: exit 3 with every tracker tried', async (t) => {
  const [first, second] = (await freePorts(2)) as [number, number];
  const r = await runClient(t, ['--tracker', `127.0.0.1:${first}`, '--tracker', `127.0.0.1:${second}`, '--exec', 'ping']);
  t.equal(r.code, 3);
  t.equal(r.stdout, '');
  t.equal(
    r.stderr,
    `tracker-client: cannot reach any tracker: 127.0.0.1:${first} (ECONNREFUSED), 127.0.0.1:${second} (ECONNREFUSED)\n`,
  );
});

t.test('the first tracker that accepts is used', async (t) => {
  const tracker = await startTracker(t);
  const [dead] = (await freePorts(1)) as [number];
  const r = await runClient(t, ['--tracker', `127.0.0.1:${dead}`, '--tracker', tracker.address, '--exec', 'ping']);
  t.same(lines(r.stdout), ['OK PONG']);
  t.equal(r.code, 0);
});

t.test('a connection dropped between commands is reopened with the same session', async (t) => {
  const tracker = await startTracker(t, { args: ['--idle-timeout', '1s'] });
  const at = ['--tracker', tracker.address];
  await runClient(t, [...at, '--exec', 'create_user ivan pw-ivan']);
  const client = await spawnClient(t, at);
  client.proc.stdin?.write('login ivan pw-ivan\n');
  await waitFor(() => client.stdout().includes('OK logged in as ivan sessions=1'), { timeoutMs: DEADLINE_MS, message: 'the login' });
  // The tracker closes the idle connection; the client reconnects to it quietly (a new connection: its log says so).
  await waitFor(() => (tracker.stderr() + tracker.stdout()).split('idle timeout').length > 2, {
    timeoutMs: DEADLINE_MS,
    message: 'two idle closes in the tracker log (the client reconnected after the first)',
  });
  client.proc.stdin?.end('whoami\n');
  const r = await client.exited;
  t.same(lines(r.stdout), ['OK logged in as ivan sessions=1', 'OK ivan sessions=1'], 'still logged in after reconnecting');
  // Quiet, unless the whoami itself met an idle close (then one line says it was retried).
  t.ok(lines(r.stderr).every((l) => /reconnected to .*; retrying whoami$/.test(l)), `a reconnection to the same tracker is quiet; stderr:\n${r.stderr}`);
  t.equal(r.code, 0);
});

t.test('the tracker gone mid-session: a clear message and exit 3', async (t) => {
  const tracker = await startTracker(t);
  const at = ['--tracker', tracker.address];
  await runClient(t, [...at, '--exec', 'create_user judy pw-judy']);
  const client = await spawnClient(t, [...at, '--failover-timeout-ms', '300']);
  client.proc.stdin?.write('login judy pw-judy\n');
  await waitFor(() => client.stdout().includes('OK logged in as judy'), { timeoutMs: DEADLINE_MS, message: 'the login' });
  await tracker.kill9();
  await client.waitErr(`cannot reach any tracker: ${tracker.address} (ECONNREFUSED); the next command tries again`);
  client.proc.stdin?.end('whoami\n');
  const r = await client.exited;
  t.match(r.stderr, `tracker-client: cannot reach any tracker: ${tracker.address} (ECONNREFUSED)`);
  t.same(lines(r.stdout), ['OK logged in as judy sessions=1']);
  t.equal(r.code, 3);
});

t.test('two clients logged in as the same user work side by side and see the live session count', async (t) => {
  const tracker = await startTracker(t);
  const at = ['--tracker', tracker.address];
  await runClient(t, [...at, '--exec', 'create_user kim pw-kim']);
  const one = await spawnClient(t, at);
  const two = await spawnClient(t, at);
  one.proc.stdin?.write('login kim pw-kim\n');
  await one.waitOut('OK logged in as kim sessions=1\n');
  two.proc.stdin?.write('login kim pw-kim\n');
  await two.waitOut('OK logged in as kim sessions=2\n');
  one.proc.stdin?.write('whoami\ncreate_group kims\n');
  await one.waitOut('OK kim sessions=2\nOK group created\n');
  two.proc.stdin?.write('list_members kims\nlogout\n');
  await two.waitOut('OK 1\nkim role=owner\nOK logged out sessions=1\n');
  one.proc.stdin?.end('whoami\n');
  const r = await one.exited;
  t.match(r.stdout, /OK kim sessions=1\n$/, 'the other session is still live, and counted alone');
  two.proc.stdin?.end();
  t.equal((await two.exited).code, 0);
  t.equal(r.code, 0);
});

t.test('an answer longer than 16 MiB reaches the client whole (a file of many pieces, a long list)', async (t) => {
  // 300,000 piece hashes: a file_peers answer of ~19 MiB. The request that registers them needs a larger --max-frame.
  const pieces = 300_000;
  const tracker = await startTracker(t, { args: ['--max-frame', String(32 * 1024 * 1024)] });
  const c = await connect(tracker.port);
  t.teardown(() => c.close());
  const session = await signUp(c, 'ana', 'pw');
  await expectAnswer(c, 'create_group big', 'OK group created', session);
  const hash = 'a'.repeat(64);
  const hashes = Array.from({ length: pieces }, () => hash).join(',');
  // Not expectAnswer: its failure would quote the 19 MB request.
  const shared = await c.request(`upload_file big many.bin ${pieces} ${hash} 1 127.0.0.1:9 ${hashes}`, session);
  t.equal(shared.payload, 'OK shared many.bin seeders=1');
  const r = await runClient(t, ['--tracker', tracker.address, '--exec', 'login ana pw; file_peers big many.bin']);
  t.equal(r.code, 0, r.stderr);
  const out = lines(r.stdout);
  t.match(out[1], new RegExp(`^OK many\\.bin size=${pieces} .* pieces=${pieces} peers=1$`));
  t.ok(r.stdout.length > 16 * 1024 * 1024, `${r.stdout.length} bytes of answer printed`);
});

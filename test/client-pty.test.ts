/**
 * The interactive client in a real pseudo-terminal (test/helpers/run_in_pty.py,
 * Python's pty module: node-pty would need a native build): the prompt,
 * Tab completion of a command and of a group name seen, tables, an event
 * arriving while a line is half typed (the line is redrawn intact below
 * it), Ctrl-C clearing the line, Ctrl-D leaving with exit 0 and without
 * logging out, the history file recalled with Up after a restart (and no
 * password in it), and colours unless NO_COLOR; the role in the prompt
 * after the tracker was promoted under an open connection; an unknown
 * command's answer pointing at `help`.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import t from 'tap';
import type { Test } from 'tap';
import { DEADLINE_MS, lines, runClient } from './helpers/client.js';
import { promote, startCluster } from './helpers/cluster.js';
import { createUser, login } from './helpers/commands.js';
import { startProxy } from './helpers/proxy.js';
import { spawnPty } from './helpers/pty.js';
import { makeTempDir, startTracker } from './helpers/tracker.js';
import type { RunningTracker } from './helpers/tracker.js';
import { connect, waitFor } from './helpers/wire.js';
import type { WireClient } from './helpers/wire.js';

/** A tracker where alice owns the group climbers and bob may ask to join it; `wire` is a plain connection to it. */
async function climbers(t: Test): Promise<{ tracker: RunningTracker; wire: WireClient; aliceWire: bigint }> {
  const tracker = await startTracker(t);
  const wire = await connect(tracker.port);
  t.teardown(() => wire.close());
  await createUser(wire, 'alice', 'alice-pw');
  await createUser(wire, 'bob', 'bob-pw');
  const aliceWire = await login(wire, 'alice', 'alice-pw');
  t.equal((await wire.request('create_group climbers', aliceWire)).payload, 'OK group created');
  return { tracker, wire, aliceWire };
}

t.test('the interactive client in a terminal', async (t) => {
  const { tracker, wire, aliceWire } = await climbers(t);
  const at = ['--tracker', tracker.address];
  t.equal((await wire.request('logout', aliceWire)).payload, 'OK logged out sessions=0');

  const home = await makeTempDir(t, 'tracker-client-home-');
  const env = { HOME: home, NO_COLOR: '1' };
  const historyFile = path.join(home, '.tracker_client_history');
  const term = await spawnPty(t, at, env);
  const where = `${tracker.address} (primary)`;

  // (A pattern that includes the prompt is looked for from before the prompt.)
  let at0 = await term.waitScreen(`connected to ${where}; type "help" for the commands`, 'the banner');
  await term.waitScreen(`${where}> `, 'the logged-out prompt', at0);

  // Tab completes a command name.
  term.type('logi\t');
  at0 = await term.waitScreen(`${where}> login `, 'login completed', at0);
  term.type('alice alice-pw\r');
  at0 = await term.waitScreen('OK logged in as alice sessions=1', 'the login answer', at0);
  await term.waitScreen(`alice@${where}> `, 'the prompt with user, tracker and role', at0);

  // A list answer is a table on a terminal; the group name is learnt from it.
  term.type('list_groups\r');
  at0 = await term.waitScreen(/OK 1\nGROUP +OWNER +MEMBERS\nclimbers +alice +1\n/, 'the groups table', at0);

  // Tab completes a group name seen.
  term.type('list_members cl\t');
  at0 = await term.waitScreen('list_members climbers ', 'the group name completed', at0);
  term.type('\r');
  at0 = await term.waitScreen(/OK 1\nUSER +ROLE\nalice +owner\n/, 'the members table', at0);
  await term.waitScreen(`alice@${where}> `, 'the prompt again', at0);

  // An event arrives while a line is half typed: printed above, the line redrawn intact.
  term.type('accept_req');
  await term.waitScreen('accept_req', 'the half-typed line echoed', at0);
  const bob = await connect(tracker.port);
  t.teardown(() => bob.close());
  const bobSession = await login(bob, 'bob', 'bob-pw');
  t.equal((await bob.request('join_group climbers', bobSession)).payload, 'OK request sent');
  const afterEvent = await term.waitScreen('[event] join_request climbers bob\n', 'the event above the prompt', at0);
  await term.waitScreen(`alice@${where}> accept_req`, 'the half-typed line redrawn below the event', afterEvent);
  term.type('uest climbers bob\r');
  at0 = await term.waitScreen('OK bob joined climbers', 'the completed line ran as typed', afterEvent);
  t.notMatch(term.screen().slice(afterEvent), /ERR/, 'no garbled command');

  // Ctrl-C drops the line being typed.
  term.type('frobnicate this');
  await term.waitScreen('frobnicate this', 'the typed text', at0);
  term.type('\x03');
  at0 = await term.waitScreen(`^C\nalice@${where}> `, 'a fresh prompt after Ctrl-C', at0);
  term.type('whoami\r');
  await term.waitScreen('OK alice sessions=1', 'whoami alone ran', at0);
  t.notMatch(term.screen(), /UNKNOWN_COMMAND/, 'the dropped line was never sent');

  // Ctrl-D leaves with status 0, without logging out.
  term.type('\x04');
  t.equal(await term.exited, 0, 'Ctrl-D exits 0');
  const again = await runClient(t, [...at, '--exec', 'login alice alice-pw']);
  t.same(lines(again.stdout), ['OK logged in as alice sessions=2'], 'the session lives on after Ctrl-D');

  // The history file: the commands typed, no passwords.
  const history = await readFile(historyFile, 'utf8');
  t.same(lines(history), ['list_groups', 'list_members climbers', 'accept_request climbers bob', 'whoami']);
  t.notMatch(history, /alice-pw|login/, 'no login line, no password');

  // A new client recalls the history with Up; colours are on without NO_COLOR.
  const second = await spawnPty(t, at, { HOME: home });
  await second.waitScreen(`${where}> `, 'the prompt of the second client');
  second.type('\x1b[A');
  let at1 = await second.waitScreen(`${where}> whoami`, 'Up recalls the last command of the first client');
  second.type('\x1b[A\x1b[A\x1b[A');
  at1 = await second.waitScreen(`${where}> list_groups`, 'and the ones before it', at1 - `${where}> whoami`.length);
  second.type('\x15ping\r');
  await second.waitScreen('OK PONG', 'ping', at1);
  t.match(second.raw(), '\x1b[32mOK\x1b[39m PONG', 'OK in green on a terminal');
  second.type('\x04');
  t.equal(await second.exited, 0);
});

t.test('Ctrl-C while a command waits abandons it; its late answer is dropped', async (t) => {
  const tracker = await startTracker(t);
  const wire = await connect(tracker.port);
  t.teardown(() => wire.close());
  await createUser(wire, 'dora', 'dora-pw');
  const home = await makeTempDir(t, 'tracker-client-home-');
  const term = await spawnPty(t, ['--tracker', tracker.address], { HOME: home, NO_COLOR: '1', TRACKER_CLIENT_HISTORY: '' });
  const prompt = `dora@${tracker.address} (primary)> `;
  let at = await term.waitScreen(`${tracker.address} (primary)> `, 'the prompt');
  term.type('login dora dora-pw\r');
  at = await term.waitScreen(prompt, 'logged in', at);

  // The tracker stops answering (its connections stay open): whoami waits.
  tracker.proc.kill('SIGSTOP');
  t.teardown(() => tracker.proc.kill('SIGCONT'));
  term.type('whoami\r');
  at = await term.waitScreen('whoami\n', 'the line taken', at);
  term.type('\x03');
  at = await term.waitScreen(`^C (whoami abandoned; it was sent, so the tracker may still apply it)\n${prompt}`, 'abandoned, the prompt back at once', at);

  // The next command waits behind the abandoned one on the same connection; the tracker answers both.
  term.type('ping\r');
  await term.waitScreen('ping\n', 'ping taken', at);
  tracker.proc.kill('SIGCONT');
  at = await term.waitScreen(`OK PONG\n${prompt}`, "ping's own answer", at);
  t.notMatch(term.screen(), /OK dora sessions=/, "whoami's late answer was dropped, not shown as ping's");

  // A second Ctrl-C at the (empty) prompt: a fresh prompt, as always; the client carries on.
  term.type('\x03');
  at = await term.waitScreen(`^C\n${prompt}`, 'a fresh prompt', at);
  term.type('whoami\r');
  await term.waitScreen('OK dora sessions=1', 'whoami works', at);
  term.type('\x04');
  t.equal(await term.exited, 0);
});

t.test('no tracker for a waiting command: it fails, the prompt comes back, and it is not sent later', async (t) => {
  const tracker = await startTracker(t);
  const proxy = await startProxy(t, tracker);
  const wire = await connect(tracker.port);
  t.teardown(() => wire.close());
  await createUser(wire, 'erin', 'erin-pw');
  const home = await makeTempDir(t, 'tracker-client-home-');
  const term = await spawnPty(t, ['--tracker', proxy.address, '--failover-timeout-ms', '3000'], { HOME: home, NO_COLOR: '1', TRACKER_CLIENT_HISTORY: '' });
  let at = await term.waitScreen(`${proxy.address} (primary)> `, 'the prompt');
  term.type('login erin erin-pw\r');
  at = await term.waitScreen(`erin@${proxy.address} (primary)> `, 'logged in', at);

  // The tracker goes away between commands; the client starts reconnecting in the background.
  const before = proxy.accepted();
  proxy.setDown(true);
  await waitFor(() => proxy.accepted() > before, { timeoutMs: DEADLINE_MS, message: 'a reconnection attempt' });
  // A write typed meanwhile waits for that reconnection, which gives up: so does the write.
  term.type('create_group late\r');
  const typed = at;
  await term.waitScreen(`tracker-client: cannot reach any tracker: ${proxy.address} (`, 'the client gives up', typed);
  // The tracker is back at once: the write that was given up must not be sent now.
  proxy.setDown(false);
  at = await term.waitScreen(
    /tracker-client: cannot reach any tracker: [^\n]*; create_group was not sent; the next command tries again\nerin@\(disconnected\)> /,
    'the write failed, saying so, and the prompt back',
    typed,
  );
  term.type('list_groups\r');
  await term.waitScreen(/OK 0\n/, 'the next command reconnects; no group', at);
  t.notMatch(term.screen(), 'OK group created', 'the write was never applied');
  t.notMatch(term.screen(), /the next command tries again[\s\S]*the next command tries again/, 'one message, not a notice and an error');
  const session = await login(wire, 'erin', 'erin-pw');
  t.equal((await wire.request('list_groups', session)).payload, 'OK 0', 'no group at the tracker');
  term.type('\x04');
  t.equal(await term.exited, 0);
});

t.test('the prompt shows the role status tells, after a promotion under an open connection', async (t) => {
  const { replica } = await startCluster(t);
  const home = await makeTempDir(t, 'tracker-client-home-');
  const term = await spawnPty(t, ['--tracker', replica.address], { HOME: home, NO_COLOR: '1', TRACKER_CLIENT_HISTORY: '' });
  let at = await term.waitScreen(`${replica.address} (replica)> `, 'the prompt on the replica');
  t.match(await promote(replica), /^OK promoted epoch=2 /);
  term.type('status\r');
  at = await term.waitScreen(/OK role=primary [^\n]*\n/, 'status says primary', at);
  await term.waitScreen(`${replica.address} (primary)> `, 'and so does the prompt', at);
  term.type('\x04');
  t.equal(await term.exited, 0);
});

t.test('an unknown command at the prompt: the tracker\'s answer says help lists the commands; a script gets the answer as sent', async (t) => {
  const tracker = await startTracker(t);
  const home = await makeTempDir(t, 'tracker-client-home-');
  const term = await spawnPty(t, ['--tracker', tracker.address], { HOME: home, NO_COLOR: '1', TRACKER_CLIENT_HISTORY: '' });
  let at = await term.waitScreen(`${tracker.address} (primary)> `, 'the prompt');
  term.type('frobnicate\r');
  at = await term.waitScreen(
    'ERR UNKNOWN_COMMAND unknown command "frobnicate"; try ping, login, list_groups; type "help" for the list of commands\n',
    'the answer with the hint',
    at,
  );
  await term.waitScreen(`${tracker.address} (primary)> `, 'the prompt again', at);
  term.type('\x04');
  t.equal(await term.exited, 0);

  const script = await runClient(t, ['--tracker', tracker.address, '--exec', 'frobnicate']);
  t.same(lines(script.stdout), ['ERR UNKNOWN_COMMAND unknown command "frobnicate"; try ping, login, list_groups'], 'unchanged in a script');
});

t.test('an event while a line that wraps is typed: the whole line moves below it, no row of it stays above', async (t) => {
  const { tracker, wire } = await climbers(t);

  const home = await makeTempDir(t, 'tracker-client-home-');
  const cols = 40;
  const term = await spawnPty(t, ['--tracker', tracker.address], { HOME: home, NO_COLOR: '1', TRACKER_CLIENT_HISTORY: '' }, { cols });
  const prompt = `alice@${tracker.address} (primary)> `;
  let at = await term.waitScreen('type "help" for the commands', 'the banner');
  term.type('login alice alice-pw\r');
  at = await term.waitScreen(`OK logged in as alice sessions=2\n${prompt}`, 'logged in', at);

  // Three rows and more at 40 columns; the cursor ends on the last of them.
  const typed = 'x'.repeat(90);
  t.ok(prompt.length + typed.length > 2 * cols, 'the line wraps');
  term.type(typed);
  await term.waitScreen(typed, 'the typed line echoed', at);
  t.equal((await wire.request('join_group climbers', await login(wire, 'bob', 'bob-pw'))).payload, 'OK request sent');

  const event = '[event] join_request climbers bob';
  const rows = await waitFor(async () => {
    const now = await term.rendered();
    const eventRow = now.indexOf(event);
    return eventRow >= 0 && now.slice(eventRow + 1).join('') === prompt + typed ? now : undefined;
  }, { timeoutMs: DEADLINE_MS, message: 'the event, then the prompt and the whole typed line below it' });
  const shown = rows.join('\n');
  t.equal(shown.split('x').length - 1, typed.length, `the typed text shows once, no stale row above the event:\n${shown}`);
  term.type('\x03\x04');
  t.equal(await term.exited, 0);
});

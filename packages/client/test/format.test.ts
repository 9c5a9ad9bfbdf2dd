import t from 'tap';
import { answerData, formatEvent, formatFailover, formatLocal, formatReply, formatSessionEnded, formatTable, isOk, useColor, withHelpHint } from '@tracker-cluster/client';
import type { View } from '@tracker-cluster/client';

t.test('answers are shown as the tracker sent them', async (t) => {
  t.equal(formatReply('OK PONG'), 'OK PONG');
  t.equal(formatReply('ERR AUTH_REQUIRED log in first'), 'ERR AUTH_REQUIRED log in first');
  t.equal(formatReply('OK 2\ng1 owner=alice members=1\ng2 owner=bob members=3'), 'OK 2\ng1 owner=alice members=1\ng2 owner=bob members=3');
  t.equal(formatReply('OK 0\n'), 'OK 0', 'no trailing blank line');
  t.ok(isOk('OK'));
  t.ok(isOk('OK 1\nx'));
  t.notOk(isOk('ERR NOT_OWNER no'));
  t.notOk(isOk('garbage'));
});

t.test('events', async (t) => {
  t.equal(formatEvent('EVENT join_request g1 bob'), '[event] join_request g1 bob');
  t.equal(formatEvent('EVENT file_shared g "my file" alice'), '[event] file_shared g "my file" alice');
});

const pretty: View = { mode: 'pretty', color: false };

t.test('pretty: list answers as aligned tables with a header', async (t) => {
  t.equal(
    formatReply('OK 2\nclimbers owner=alice members=12\ng2 owner=bob members=3', pretty, 'list_groups'),
    'OK 2\nGROUP     OWNER  MEMBERS\nclimbers  alice  12\ng2        bob    3',
  );
  t.equal(formatReply('OK 1\nbob', pretty, 'list_requests'), 'OK 1\nUSER\nbob');
  t.equal(formatReply('OK 1\n"my file" size=3 seeders=1', pretty, 'list_files'), 'OK 1\nFILE     SIZE  SEEDERS\nmy file  3     1');
  t.equal(formatReply('OK 0', pretty, 'list_groups'), 'OK 0', 'no rows, no header');
  t.equal(formatReply('OK PONG', pretty, 'ping'), 'OK PONG');
  t.equal(formatReply('ERR NOT_MEMBER no', pretty, 'list_members'), 'ERR NOT_MEMBER no');
  t.equal(formatTable(['a', 'bb'], [['xxx', '1'], ['y', '']]), 'A    BB\nxxx  1\ny');
});

t.test('at the prompt an unknown command\'s answer says where the list is; other answers are left alone', async (t) => {
  t.equal(
    withHelpHint('ERR UNKNOWN_COMMAND unknown command "x"; try ping, login, list_groups'),
    'ERR UNKNOWN_COMMAND unknown command "x"; try ping, login, list_groups; type "help" for the list of commands',
  );
  t.equal(withHelpHint('ERR UNKNOWN_COMMAND\n'), 'ERR UNKNOWN_COMMAND; type "help" for the list of commands');
  for (const payload of ['OK PONG', 'ERR AUTH_REQUIRED log in first', 'OK 1\ng1 owner=alice members=1', 'ERR BAD_REQUEST unknown command']) {
    t.equal(withHelpHint(payload), payload, payload);
  }
});

t.test('colours: OK green, ERR and its code red, events yellow; only when asked', async (t) => {
  const color: View = { mode: 'pretty', color: true };
  t.equal(formatReply('OK PONG', color), '\x1b[32mOK\x1b[39m PONG');
  t.equal(formatReply('ERR AUTH_REQUIRED log in', color), '\x1b[31mERR AUTH_REQUIRED\x1b[39m log in');
  t.equal(formatEvent('EVENT join_request g bob', color), '\x1b[33m[event]\x1b[39m join_request g bob');
  t.equal(useColor(true, {}), true);
  t.equal(useColor(true, { NO_COLOR: '1' }), false, 'NO_COLOR');
  t.equal(useColor(true, { NO_COLOR: '' }), true, 'an empty NO_COLOR does not count');
  t.equal(useColor(false, {}), false, 'not a terminal');
  t.equal(useColor(undefined, {}), false);
});

t.test('--json: one object per answer and per event', async (t) => {
  const json: View = { mode: 'json', color: true };
  t.equal(
    formatReply('OK 1\nteam owner=alice members=1', json, 'list_groups'),
    '{"ok":true,"code":null,"message":"1","rows":[{"name":"team","owner":"alice","members":"1"}]}',
  );
  t.equal(formatReply('OK logged in as a sessions=1', json, 'login'), '{"ok":true,"code":null,"message":"logged in as a sessions=1","rows":[]}');
  t.equal(formatReply('ERR NO_SUCH_GROUP no group x', json, 'list_members'), '{"ok":false,"code":"NO_SUCH_GROUP","message":"no group x","rows":[]}');
  t.same(answerData('OK 1\n"a b" k="x y"', 'list_files').rows, [{ name: 'a b', k: 'x y' }]);
  t.same(answerData('OK f size=1\nhashes -\npeer bob 1.2.3.4:5', 'file_peers').rows, [
    { name: 'hashes', 1: '-' },
    { name: 'peer', 1: 'bob', 2: '1.2.3.4:5' },
  ]);
  t.equal(formatEvent('EVENT file_shared g "my file" alice', json), '{"event":"file_shared","args":["g","my file","alice"]}');
  t.equal(formatLocal(false, 'help: no such command', json), '{"ok":false,"code":"CLIENT","message":"help: no such command","rows":[]}');
});

t.test('failover notices and the prompt', async (t) => {
  const a = { host: '127.0.0.1', port: 7001 };
  const b = { host: '127.0.0.1', port: 7002 };
  t.equal(
    formatFailover({ from: a, reason: 'connection to 127.0.0.1:7001 lost (ECONNRESET)', to: b, role: 'replica', session: true, retrying: 'create_group' }),
    'tracker-client: connection to 127.0.0.1:7001 lost (ECONNRESET); now on 127.0.0.1:7002 (replica) with the same session; retrying create_group',
  );
  t.equal(
    formatFailover({ from: a, reason: 'no answer', to: a, role: 'primary', session: false, retrying: 'ping' }),
    'tracker-client: no answer; reconnected to 127.0.0.1:7001 (primary); retrying ping',
  );
  t.equal(formatSessionEnded('alice'), "tracker-client: alice's session has ended at the tracker (expired or logged out); log in again");
});

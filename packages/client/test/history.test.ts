import t from 'tap';
import { formatHistoryFile, historyPath, isSecretLine, parseHistoryFile } from '@tracker-cluster/client';

t.test('where the history file is', async (t) => {
  t.equal(historyPath({ HOME: '/home/a' }), '/home/a/.tracker_client_history');
  t.equal(historyPath({ HOME: '/home/a', TRACKER_CLIENT_HISTORY: '/tmp/h' }), '/tmp/h');
  t.equal(historyPath({ TRACKER_CLIENT_HISTORY: '' }), undefined, 'empty: no file');
  t.equal(historyPath({}, () => '/root'), '/root/.tracker_client_history');
});

t.test('lines with passwords are never kept', async (t) => {
  t.ok(isSecretLine('login alice pw'));
  t.ok(isSecretLine('  CREATE_USER bob x'));
  t.notOk(isSecretLine('list_groups'));
  t.same(parseHistoryFile('ping\nlogin a b\n\nwhoami\n'), ['whoami', 'ping'], 'newest first');
  t.equal(formatHistoryFile(['whoami ', 'create_user a b', 'ping']), 'ping\nwhoami\n', 'oldest first');
  t.equal(formatHistoryFile([]), '');
});

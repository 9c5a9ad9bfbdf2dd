import t from 'tap';
import { formatEvent, formatReply, isOk } from '@tracker-cluster/client';

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

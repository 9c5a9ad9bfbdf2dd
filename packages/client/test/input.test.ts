import t from 'tap';
import { scriptCommand, splitExec } from '@tracker-cluster/client';

t.test('splitExec splits on ; and trims', async (t) => {
  t.same(splitExec('ping'), ['ping']);
  t.same(splitExec('login alice pw; whoami ;list_groups'), ['login alice pw', 'whoami', 'list_groups']);
  t.same(splitExec(' ping ;; ;status; '), ['ping', 'status'], 'empty pieces are dropped');
  t.same(splitExec(''), []);
  t.same(splitExec(';;'), []);
  t.same(splitExec('ping\nstatus\r\n; whoami'), ['ping', 'status', 'whoami'], 'line breaks separate commands too');
});

t.test('splitExec keeps ; inside double quotes', async (t) => {
  t.same(splitExec('create_user "a;b" pw; whoami'), ['create_user "a;b" pw', 'whoami']);
  t.same(splitExec('x "one; two" "three;four";y'), ['x "one; two" "three;four"', 'y']);
  t.same(splitExec('login "al\\"; ice" pw; ping'), ['login "al\\"; ice" pw', 'ping'], 'an escaped quote does not close');
  t.same(splitExec('a "x\\\\"; b'), ['a "x\\\\"', 'b'], 'an escaped backslash before the closing quote');
  t.same(splitExec('a "unterminated; b'), ['a "unterminated; b'], 'an open quote runs to the end (the tracker rejects it)');
  t.same(splitExec('a x\\; b'), ['a x\\', 'b'], 'a backslash outside quotes is no escape');
  t.same(splitExec('a x\\"; b'), ['a x\\"; b'], 'so \\" outside quotes opens a quote, as the tracker reads it');
});

t.test('scriptCommand skips blank lines and comments', async (t) => {
  t.equal(scriptCommand('ping'), 'ping');
  t.equal(scriptCommand('  login a b \r'), 'login a b');
  t.equal(scriptCommand(''), undefined);
  t.equal(scriptCommand('   \t'), undefined);
  t.equal(scriptCommand('# a comment'), undefined);
  t.equal(scriptCommand('   # indented comment'), undefined);
  t.equal(scriptCommand('ping # not a comment'), 'ping # not a comment');
});

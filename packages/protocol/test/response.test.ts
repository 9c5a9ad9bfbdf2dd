import t from 'tap';
import { EVENT_PREFIX, err, isEvent, ok, okList, parseResponse } from '@tracker-cluster/protocol';

t.test('ok / okList / err build response payloads', async (t) => {
  t.equal(ok(), 'OK');
  t.equal(ok(''), 'OK');
  t.equal(ok('PONG'), 'OK PONG');
  t.equal(ok('logged in as alice sessions=1'), 'OK logged in as alice sessions=1');
  t.equal(okList([]), 'OK 0');
  t.equal(okList(['g1 owner=alice members=2']), 'OK 1\ng1 owner=alice members=2');
  t.equal(okList(['a', 'b', 'c']), 'OK 3\na\nb\nc');
  t.equal(err('NOT_OWNER', 'only the owner may do that'), 'ERR NOT_OWNER only the owner may do that');
  t.equal(err('INTERNAL', 'two\nlines'), 'ERR INTERNAL two lines');
});

t.test('parseResponse: OK and OK <text>', async (t) => {
  t.same(parseResponse('OK'), { ok: true, text: '', lines: [] });
  t.same(parseResponse('OK PONG'), { ok: true, text: 'PONG', lines: [] });
  t.same(parseResponse('OK role=primary epoch=1 seq=0'), { ok: true, text: 'role=primary epoch=1 seq=0', lines: [] });
  t.same(parseResponse('OK  two spaces'), { ok: true, text: ' two spaces', lines: [] }, 'text after one space kept as is');
});

t.test('parseResponse: lists', async (t) => {
  t.same(parseResponse('OK 0'), { ok: true, text: '0', lines: [] });
  t.same(parseResponse('OK 2\ng1 owner=a members=1\ng2 owner=b members=3'), {
    ok: true,
    text: '2',
    lines: ['g1 owner=a members=1', 'g2 owner=b members=3'],
  });
  for (const rows of [[], ['x'], ['a', 'b'], ['', 'b'], ['"my file" size=1']]) {
    const parsed = parseResponse(okList(rows));
    t.same(parsed, { ok: true, text: String(rows.length), lines: rows }, `okList round trip ${JSON.stringify(rows)}`);
  }
  // file_peers: the first line is not a count, the lines follow all the same.
  t.same(parseResponse('OK f size=1 sha256=ab piece_size=1 pieces=1 peers=1\nhashes ab\npeer alice h:1'), {
    ok: true,
    text: 'f size=1 sha256=ab piece_size=1 pieces=1 peers=1',
    lines: ['hashes ab', 'peer alice h:1'],
  });
});

t.test('parseResponse: ERR', async (t) => {
  t.same(parseResponse('ERR BAD_REQUEST unterminated quote'), {
    ok: false,
    code: 'BAD_REQUEST',
    message: 'unterminated quote',
  });
  t.same(parseResponse('ERR BUSY'), { ok: false, code: 'BUSY', message: '' });
  t.same(parseResponse('ERR AUTH_REQUIRED log in first\nignored'), {
    ok: false,
    code: 'AUTH_REQUIRED',
    message: 'log in first',
  });
  t.same(parseResponse('ERR SOMETHING_NEW from a newer tracker'), {
    ok: false,
    code: 'SOMETHING_NEW',
    message: 'from a newer tracker',
  }, 'unknown codes are passed through');
});

t.test('parseResponse: garbage is a PROTOCOL failure', async (t) => {
  for (const payload of ['', 'ok', 'OKAY', 'ERR', 'ERROR x', 'hello', ' OK', 'EVENT join_request g u', '\nOK']) {
    const r = parseResponse(payload);
    t.equal(r.ok, false, JSON.stringify(payload));
    if (!r.ok) t.equal(r.code, 'PROTOCOL', `${JSON.stringify(payload)}: PROTOCOL`);
  }
  const long = parseResponse('x'.repeat(10_000));
  t.ok(!long.ok && long.message.length < 200, 'the message quotes a bounded prefix');
});

t.test('isEvent', async (t) => {
  t.equal(EVENT_PREFIX, 'EVENT ');
  t.ok(isEvent('EVENT join_request g1 bob'));
  t.ok(isEvent('EVENT file_shared g1 "my file" bob'));
  t.notOk(isEvent('OK'));
  t.notOk(isEvent('ERR BUSY'));
  t.notOk(isEvent('EVENT'), 'the prefix includes the space');
  t.notOk(isEvent('EVENTS x'));
  t.notOk(isEvent('event join_request g u'), 'case-sensitive');
  t.notOk(isEvent(''));
});

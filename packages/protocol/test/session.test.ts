import t from 'tap';
import {
  encodeFrame,
  formatSessionId,
  FrameDecoder,
  isValidSessionId,
  MAX_SESSION,
  NO_SESSION,
  parseSessionId,
} from '@tracker-cluster/protocol';

t.test('constants', async (t) => {
  t.equal(NO_SESSION, 0n);
  t.equal(MAX_SESSION, 18446744073709551615n);
  t.equal(MAX_SESSION, 2n ** 64n - 1n);
});

t.test('isValidSessionId: non-zero u64', async (t) => {
  t.notOk(isValidSessionId(0n), '0 is "no session"');
  t.ok(isValidSessionId(1n));
  t.ok(isValidSessionId(2n ** 53n + 1n));
  t.ok(isValidSessionId(MAX_SESSION));
  t.notOk(isValidSessionId(MAX_SESSION + 1n));
  t.notOk(isValidSessionId(-1n));
});

t.test('formatSessionId / parseSessionId', async (t) => {
  for (const id of [0n, 1n, 42n, 2n ** 53n, 2n ** 53n + 1n, 2n ** 63n, MAX_SESSION - 1n, MAX_SESSION]) {
    const text = formatSessionId(id);
    t.match(text, /^[0-9]+$/, `${id}: decimal`);
    t.equal(parseSessionId(text), id, `${id}: round trip`);
  }
  t.equal(formatSessionId(MAX_SESSION), '18446744073709551615');
  t.equal(formatSessionId(2n ** 53n + 1n), '9007199254740993', 'no loss above 2^53');
  t.equal(parseSessionId('9007199254740993'), 9007199254740993n);
  t.equal(parseSessionId('18446744073709551615'), MAX_SESSION);
  t.equal(parseSessionId('00000000000000000001'), 1n, '20 digits with leading zeros');

  for (const bad of [
    '18446744073709551616', // 2^64
    '99999999999999999999',
    '100000000000000000000', // 21 digits
    '',
    '-1',
    '+1',
    ' 1',
    '1 ',
    '1.0',
    '1e3',
    '0x10',
    'abc',
    '١٢٣', // non-ASCII digits
  ]) {
    t.equal(parseSessionId(bad), undefined, JSON.stringify(bad));
  }
});

t.test('session ids survive a frame round trip as bigint', async (t) => {
  for (const id of [0n, 1n, 2n ** 53n + 1n, 2n ** 63n, MAX_SESSION]) {
    const [frame] = new FrameDecoder().push(encodeFrame(id, 'whoami'));
    t.equal(frame?.session, id, formatSessionId(id));
  }
});

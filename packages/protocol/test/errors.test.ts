import t from 'tap';
import {
  ERROR_CODES,
  FATAL_CODES,
  formatError,
  isErrorCode,
  parseResponse,
  TrackerError,
} from '@tracker-cluster/protocol';
import type { ErrorCode } from '@tracker-cluster/protocol';

/** The table of PROTOCOL.md §2, in its order. */
const PROTOCOL_TABLE = [
  'BAD_REQUEST',
  'UNKNOWN_COMMAND',
  'AUTH_REQUIRED',
  'ALREADY_LOGGED_IN',
  'USER_EXISTS',
  'INVALID_CREDENTIALS',
  'GROUP_EXISTS',
  'NO_SUCH_GROUP',
  'NOT_OWNER',
  'NOT_MEMBER',
  'ALREADY_MEMBER',
  'REQUEST_PENDING',
  'NO_SUCH_REQUEST',
  'NO_SUCH_FILE',
  'FILE_CONFLICT',
  'QUOTA_EXCEEDED',
  'RATE_LIMITED',
  'PRIMARY_UNAVAILABLE',
  'FORBIDDEN',
  'PROTOCOL',
  'FRAME_TOO_LARGE',
  'BUSY',
  'INTERNAL',
];

t.test('ERROR_CODES is exactly the table of the protocol', async (t) => {
  t.same([...ERROR_CODES], PROTOCOL_TABLE);
  t.equal(new Set(ERROR_CODES).size, ERROR_CODES.length, 'no duplicates');
  for (const code of ERROR_CODES) t.match(code, /^[A-Z][A-Z_]*$/, `${code} is an upper-case word`);
});

t.test('isErrorCode', async (t) => {
  for (const code of ERROR_CODES) t.ok(isErrorCode(code), code);
  for (const bad of ['', 'bad_request', 'OK', 'ERR', 'NOPE', 'BAD_REQUEST ', ' PROTOCOL']) {
    t.notOk(isErrorCode(bad), JSON.stringify(bad));
  }
});

t.test('FATAL_CODES are the framing faults and overload', async (t) => {
  t.same([...FATAL_CODES].sort(), ['BUSY', 'FRAME_TOO_LARGE', 'PROTOCOL']);
});

t.test('formatError', async (t) => {
  t.equal(formatError('BAD_REQUEST', 'wrong number of arguments'), 'ERR BAD_REQUEST wrong number of arguments');
  t.equal(formatError('BUSY', ''), 'ERR BUSY', 'no trailing space without a message');
  t.equal(formatError('BUSY', '  \n '), 'ERR BUSY', 'a blank message is dropped');
  t.equal(formatError('INTERNAL', 'line one\nline two'), 'ERR INTERNAL line one line two');
  t.equal(formatError('INTERNAL', 'a\r\nb\n\n\nc\rd'), 'ERR INTERNAL a b c d');
  t.equal(formatError('INTERNAL', '\nleading and trailing\n'), 'ERR INTERNAL leading and trailing');
  t.equal(formatError('NO_SUCH_FILE', 'no "my file" here'), 'ERR NO_SUCH_FILE no "my file" here');
});

t.test('every code: TrackerError, its payload, and parsing it back', async (t) => {
  for (const code of ERROR_CODES) {
    const e = new TrackerError(code, `something about ${code}\nsecond line`);
    t.ok(e instanceof Error, `${code}: is an Error`);
    t.equal(e.name, 'TrackerError');
    t.equal(e.code, code);
    const payload = e.toPayload();
    t.notMatch(payload, /[\r\n]/, `${code}: payload is one line`);
    t.equal(payload, `ERR ${code} something about ${code} second line`);
    t.same(parseResponse(payload), { ok: false, code, message: `something about ${code} second line` });
    t.same(parseResponse(formatError(code, '')), { ok: false, code, message: '' }, `${code}: bare`);
  }
});

t.test('ErrorCode type accepts only the listed codes', async (t) => {
  const code: ErrorCode = 'NOT_OWNER';
  // @ts-expect-error not an error code
  const bad: ErrorCode = 'NOT_A_CODE';
  t.ok(isErrorCode(code));
  t.notOk(isErrorCode(bad));
});

import t from 'tap';
import { isValidFileName, isValidName, isValidPassword } from '@tracker-cluster/protocol';

t.test('isValidName: 1-32 characters of A-Z a-z 0-9 _ . -', async (t) => {
  for (const good of ['a', 'Z', '0', '_', '.', '-', 'alice', 'Bob_the.builder-2', 'a'.repeat(32), '...', '--x']) {
    t.ok(isValidName(good), JSON.stringify(good));
  }
  for (const bad of [
    '',
    'a'.repeat(33),
    'a b',
    'a\tb',
    'tab\t',
    'new\nline',
    'a/b',
    'a"b',
    'a=b',
    'é',
    'ünïcode',
    'a😀',
    'x\u0000',
    'a+b',
    'a@b',
  ]) {
    t.notOk(isValidName(bad), JSON.stringify(bad));
  }
});

t.test('isValidPassword: 1-256 characters', async (t) => {
  t.notOk(isValidPassword(''));
  t.ok(isValidPassword('x'));
  t.ok(isValidPassword(' '), 'any character, spaces included');
  t.ok(isValidPassword('pass word "quoted" \\'));
  t.ok(isValidPassword('p'.repeat(256)));
  t.notOk(isValidPassword('p'.repeat(257)));
  // Characters, not UTF-16 code units nor bytes.
  t.ok(isValidPassword('😀'.repeat(256)), '256 astral characters');
  t.notOk(isValidPassword('😀'.repeat(257)), '257 astral characters');
  t.ok(isValidPassword('é'.repeat(256)), '256 two-byte characters');
});

t.test('isValidFileName: 1-255 bytes of UTF-8, no /, no NUL, no control characters', async (t) => {
  for (const good of [
    'a',
    'report.pdf',
    'my file (1).txt',
    'quote"and\\backslash',
    'ünïcödé ✓ 😀.txt',
    '.hidden',
    'a'.repeat(255),
    '✓'.repeat(85), // 255 bytes
    '😀'.repeat(63) + 'abc', // 255 bytes
  ]) {
    t.ok(isValidFileName(good), `${JSON.stringify(good.slice(0, 40))} (${Buffer.byteLength(good)} bytes)`);
  }
  for (const bad of [
    '',
    'a'.repeat(256),
    '✓'.repeat(86), // 258 bytes
    '😀'.repeat(64), // 256 bytes, only 128 UTF-16 units
    'dir/file',
    '/',
    'nul\u0000',
    'tab\there',
    'new\nline',
    'cr\r',
    'esc\u001b[31m',
    'del\u007f',
    'c1\u0085',
    'c1\u009b',
    'lone\ud800surrogate',
    'trailing\udc00',
  ]) {
    t.notOk(isValidFileName(bad), `${JSON.stringify(bad.slice(0, 40))} (${Buffer.byteLength(bad)} bytes)`);
  }
});

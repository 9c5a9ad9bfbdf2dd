import t from 'tap';
import { formatCommand, formatRow, parseRow, quote, tokenize, TrackerError } from '@tracker-cluster/protocol';
import { Prng, testSeed } from './fixtures/random.js';
import { throwsTrackerError } from './fixtures/assert.js';

const SEED = testSeed(0x7a11_0c3d);
t.comment(`seed ${SEED} (rerun with PROTOCOL_TEST_SEED=${SEED})`);

t.test('tokenize: words separated by spaces and tabs', async (t) => {
  t.same(tokenize('ping'), ['ping']);
  t.same(tokenize('login alice s3cret'), ['login', 'alice', 's3cret']);
  t.same(tokenize('login\talice\ts3cret'), ['login', 'alice', 's3cret'], 'tabs');
  t.same(tokenize('a  \t \tb'), ['a', 'b'], 'runs of mixed separators');
  t.same(tokenize('   login alice  '), ['login', 'alice'], 'leading and trailing spaces');
  t.same(tokenize('\tlogin\t'), ['login'], 'leading and trailing tabs');
  t.same(tokenize(''), [], 'empty line');
  t.same(tokenize(' \t  '), [], 'only whitespace');
  t.same(tokenize('LOGIN Alice'), ['LOGIN', 'Alice'], 'case is kept (commands are matched case-insensitively elsewhere)');
});

t.test('tokenize: only space and tab separate', async (t) => {
  t.same(tokenize('a\nb'), ['a\nb'], 'newline is part of the word');
  t.same(tokenize('a\rb'), ['a\rb']);
  t.same(tokenize('a\u00a0b'), ['a\u00a0b'], 'no-break space is part of the word');
  t.same(tokenize('a\vb\fc'), ['a\vb\fc']);
});

t.test('tokenize: double quotes', async (t) => {
  t.same(tokenize('upload_file g "my file.txt"'), ['upload_file', 'g', 'my file.txt'], 'quotes hold spaces');
  t.same(tokenize('"a\tb"'), ['a\tb'], 'quotes hold tabs');
  t.same(tokenize('"  padded  "'), ['  padded  '], 'leading/trailing spaces inside quotes are kept');
  t.same(tokenize('""'), [''], 'empty quoted word');
  t.same(tokenize('a "" b'), ['a', '', 'b'], 'empty quoted word between others');
  t.same(tokenize('"" ""'), ['', '']);
  t.same(tokenize('  ""  '), [''], 'empty quoted word with whitespace around');
  t.same(tokenize('"ünïcödé ✓ 😀"'), ['ünïcödé ✓ 😀'], 'unicode');
});

t.test('tokenize: escapes inside quotes', async (t) => {
  t.same(tokenize('"say \\"hi\\""'), ['say "hi"'], '\\" is a quote');
  t.same(tokenize('"back\\\\slash"'), ['back\\slash'], '\\\\ is one backslash');
  t.same(tokenize('"\\\\"'), ['\\'], 'a lone escaped backslash');
  t.same(tokenize('"\\\\\\""'), ['\\"'], 'escaped backslash then escaped quote');
  t.same(tokenize('"C:\\dir\\n"'), ['C:\\dir\\n'], 'other backslashes are kept literally');
  t.same(tokenize('"a\\tb"'), ['a\\tb'], '\\t is not a tab');
  t.same(tokenize('"\\x"'), ['\\x']);
});

t.test('tokenize: backslashes outside quotes are literal', async (t) => {
  t.same(tokenize('a\\b'), ['a\\b']);
  t.same(tokenize('a\\\\b'), ['a\\\\b']);
  t.same(tokenize('trailing\\'), ['trailing\\']);
  t.same(tokenize('\\ x'), ['\\', 'x'], 'a backslash does not escape a space');
});

t.test('tokenize: adjacent quoted and bare parts join into one word', async (t) => {
  t.same(tokenize('key="a b"'), ['key=a b']);
  t.same(tokenize('"a b"c'), ['a bc']);
  t.same(tokenize('a"b c"d'), ['ab cd']);
  t.same(tokenize('"a""b"'), ['ab']);
  t.same(tokenize('x=""'), ['x='], 'bare part then empty quotes');
  t.same(tokenize('""x'), ['x']);
  t.same(tokenize('name size=3 note="two words" flag'), ['name', 'size=3', 'note=two words', 'flag']);
});

t.test('tokenize: unterminated quote is BAD_REQUEST', async (t) => {
  for (const line of ['"', '"abc', 'login "alice', 'a "b c', '"ends with escaped quote\\"', '"x" "', 'x="a b', '"\\']) {
    throwsTrackerError(t, () => tokenize(line), 'BAD_REQUEST', JSON.stringify(line));
  }
  t.same(tokenize('"\\\\"'), ['\\'], 'an escaped backslash before the closing quote does not hide it');
});

t.test('tokenize never throws anything but BAD_REQUEST (seeded)', async (t) => {
  const rng = new Prng(SEED);
  const alphabet = ['a', 'Z', '0', ' ', '\t', '"', '\\', '=', 'é', '😀', '\n'];
  let others = 0;
  for (let i = 0; i < 20_000; i++) {
    let line = '';
    const len = rng.int(24);
    for (let k = 0; k < len; k++) line += rng.pick(alphabet);
    try {
      const words = tokenize(line);
      // Words hold no bare separators unless they came from quotes; at least they are strings.
      if (!words.every((w) => typeof w === 'string')) others++;
    } catch (e) {
      if (!(e instanceof TrackerError) || e.code !== 'BAD_REQUEST') others++;
    }
  }
  t.equal(others, 0, `only BAD_REQUEST errors (seed ${SEED})`);
});

t.test('quote: bare where it can be, quoted where it must be', async (t) => {
  t.equal(quote('alice'), 'alice');
  t.equal(quote('a=b'), 'a=b');
  t.equal(quote('back\\slash'), 'back\\slash', 'a backslash alone needs no quotes');
  t.equal(quote('ünï'), 'ünï');
  t.equal(quote(''), '""');
  t.equal(quote('a b'), '"a b"');
  t.equal(quote('a\tb'), '"a\tb"');
  t.equal(quote('say "hi"'), '"say \\"hi\\""');
  t.equal(quote('"'), '"\\""');
  t.equal(quote('a b\\'), '"a b\\\\"', 'backslashes are escaped once quoted');
});

t.test('formatCommand', async (t) => {
  t.equal(formatCommand(['ping']), 'ping');
  t.equal(formatCommand(['login', 'alice', 'pass word']), 'login alice "pass word"');
  t.equal(formatCommand(['x', '']), 'x ""');
  t.equal(formatCommand([]), '');
});

/** Random words from an alphabet full of the characters that need care. */
function randomWord(rng: Prng): string {
  const alphabet = ['a', 'b', 'Z', '9', ' ', '\t', '"', '\\', '=', '\'', 'é', '✓', '😀', '\u00a0', '\r', '\n', '\u0000', '-'];
  let w = '';
  const len = rng.chance(0.1) ? 0 : rng.range(1, 12);
  for (let k = 0; k < len; k++) w += rng.pick(alphabet);
  return w;
}

t.test('quote/formatCommand round-trip through tokenize (seeded property)', async (t) => {
  const rng = new Prng(SEED ^ 0x1234_5678);
  let failures = 0;
  let first: unknown;
  for (let i = 0; i < 20_000; i++) {
    const words = Array.from({ length: rng.range(0, 6) }, () => randomWord(rng));
    const line = formatCommand(words);
    let back: string[] | undefined;
    try {
      back = tokenize(line);
    } catch (e) {
      first ??= { words, line, error: String(e) };
      failures++;
      continue;
    }
    if (back.length !== words.length || back.some((w, k) => w !== words[k])) {
      first ??= { words, line, back };
      failures++;
    }
    // Each word on its own, too.
    for (const w of words) {
      const one = tokenize(quote(w));
      if (one.length !== 1 || one[0] !== w) {
        first ??= { word: w, quoted: quote(w), back: one };
        failures++;
      }
    }
  }
  t.equal(failures, 0, `round trips (seed ${SEED})`, { first });
});

t.test('formatRow / parseRow', async (t) => {
  t.equal(formatRow('alice'), 'alice');
  t.equal(formatRow('g1', { owner: 'alice', members: 3 }), 'g1 owner=alice members=3');
  t.equal(formatRow('my file', { size: 10n, note: 'two words' }), '"my file" size=10 note="two words"');
  t.equal(formatRow(''), '""');

  t.same(parseRow('g1 owner=alice members=3'), { name: 'g1', fields: { owner: 'alice', members: '3' } });
  t.same(parseRow('"my file" size=10 note="two words"'), {
    name: 'my file',
    fields: { size: '10', note: 'two words' },
  });
  t.same(parseRow('x a=b=c'), { name: 'x', fields: { a: 'b=c' } }, 'value may hold =');
  t.same(parseRow('x k='), { name: 'x', fields: { k: '' } }, 'empty value');
  t.same(parseRow('peer alice host:1'), { name: 'peer', fields: { 1: 'alice', 2: 'host:1' } }, 'positional words');
  t.same(parseRow('x =v'), { name: 'x', fields: { 1: '=v' } }, 'a word starting with = is positional');
  t.same(parseRow(''), { name: '', fields: {} });
  throwsTrackerError(t, () => parseRow('x k="oops'), 'BAD_REQUEST', 'unterminated quote in a row');
});

t.test('formatRow/parseRow round trip (seeded property)', async (t) => {
  const rng = new Prng(SEED ^ 0x0bad_cafe);
  const keyChars = 'abcdefghijklmnopqrstuvwxyz_';
  let failures = 0;
  let first: unknown;
  for (let i = 0; i < 5_000; i++) {
    // Row values never hold newlines: rows are newline-separated in a list answer.
    const name = randomWord(rng).replace(/[\r\n]/g, '');
    const fields: Record<string, string> = {};
    const count = rng.int(5);
    for (let k = 0; k < count; k++) {
      let key = '';
      const keyLen = rng.range(1, 8);
      for (let c = 0; c < keyLen; c++) key += keyChars[rng.int(keyChars.length)];
      fields[key] = randomWord(rng).replace(/[\r\n]/g, '');
    }
    const line = formatRow(name, fields);
    const back = parseRow(line);
    const same =
      back.name === name &&
      Object.keys(back.fields).length === Object.keys(fields).length &&
      Object.entries(fields).every(([k, v]) => back.fields[k] === v);
    if (!same || line.includes('\n')) {
      first ??= { name, fields, line, back };
      failures++;
    }
  }
  t.equal(failures, 0, `row round trips (seed ${SEED})`, { first });
});

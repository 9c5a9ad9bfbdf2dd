import t from 'tap';
import { AddressError, MAX_HOST_LENGTH, formatHostPort, isLoopbackHost, isUnspecifiedHost, parseHostPort } from '@tracker-cluster/protocol';

t.test('HOST:PORT and [IPv6]:PORT parse and format back', async (t) => {
  const cases: Array<[string, { host: string; port: number }]> = [
    ['127.0.0.1:7001', { host: '127.0.0.1', port: 7001 }],
    ['tracker-1.example.org:65535', { host: 'tracker-1.example.org', port: 65535 }],
    ['[::1]:7001', { host: '::1', port: 7001 }],
    ['[fe80::1%eth0]:1', { host: 'fe80::1%eth0', port: 1 }],
  ];
  for (const [text, want] of cases) {
    t.same(parseHostPort(text), want, text);
    t.equal(formatHostPort(want), text, `${text} round-trips`);
  }
  t.same(parseHostPort('  localhost:1 '), { host: 'localhost', port: 1 }, 'surrounding blanks ignored');
});

t.test('port 0 only where asked for (listening)', async (t) => {
  t.throws(() => parseHostPort('127.0.0.1:0'), { message: /out of range 1-65535/ });
  t.same(parseHostPort('127.0.0.1:0', { allowPortZero: true }), { host: '127.0.0.1', port: 0 });
});

t.test('bad addresses are AddressErrors that say what is wrong', async (t) => {
  const cases: Array<[string, RegExp]> = [
    ['', /empty/],
    ['localhost', /missing port/],
    [':7001', /missing host/],
    ['::1:7001', /must be written in brackets/],
    ['[::1:7001', /missing "]"/],
    ['[::1]7001', /missing port/],
    ['[127.0.0.1]:7001', /not an IPv6 address/],
    ['host:port', /not a number/],
    ['host:65536', /out of range/],
    ['bad host:1', /not a valid host/],
  ];
  for (const [text, why] of cases) {
    t.throws(() => parseHostPort(text), AddressError, `${JSON.stringify(text)} refused`);
    t.throws(() => parseHostPort(text), { message: why }, `${JSON.stringify(text)}: ${String(why)}`);
  }
});

t.test('a host is at most 253 characters, a name or an IPv6 literal; a refusal repeats only the start of it', async (t) => {
  t.equal(MAX_HOST_LENGTH, 253);
  // The longest DNS name: labels of 63, 63, 63 and 61 characters.
  const longest = ['a'.repeat(63), 'b'.repeat(63), 'c'.repeat(63), 'd'.repeat(61)].join('.');
  t.equal(longest.length, 253);
  t.same(parseHostPort(`${longest}:7001`), { host: longest, port: 7001 }, 'the longest name is accepted');
  t.throws(() => parseHostPort(`x${longest}:7001`), { name: 'AddressError', message: /^a host name is at most 253 characters; this one has 254 \("xaaa/ });
  const huge = `${'h'.repeat(100_000)}:7001`;
  t.throws(() => parseHostPort(huge), { message: /^a host name is at most 253 characters; this one has 100000 \("h{40}…"\)$/ }, 'a 100,000-character host');
  const ipv6 = `[${'0:'.repeat(200)}1]:7001`;
  t.throws(() => parseHostPort(ipv6), { message: /^an IPv6 address is at most 253 characters; this one has 401 / }, 'a long IPv6 literal');
  t.same(parseHostPort('[0000:0000:0000:0000:0000:ffff:192.168.100.200%eth0]:1'), { host: '0000:0000:0000:0000:0000:ffff:192.168.100.200%eth0', port: 1 }, 'a long but real IPv6 literal is not');
  const port = `h:${'9'.repeat(100_000)}`;
  t.throws(() => parseHostPort(port), { message: /^port "9{40}…" is not a number$/ }, 'a long port is not repeated whole');
  t.throws(() => parseHostPort(`h:${'x'.repeat(39)}\u{1F600}z`), { message: /^port "x{39}…" is not a number$/ }, 'nor cut inside a character');
});

t.test('isUnspecifiedHost and isLoopbackHost', async (t) => {
  for (const host of ['0.0.0.0', '::', '0:0:0:0:0:0:0:0']) t.ok(isUnspecifiedHost(host), host);
  for (const host of ['127.0.0.1', '::1', '10.0.0.1', 'localhost']) t.notOk(isUnspecifiedHost(host), host);
  for (const host of ['localhost', 'LocalHost', '127.0.0.1', '127.1.2.3', '::1']) t.ok(isLoopbackHost(host), host);
  for (const host of ['0.0.0.0', '10.0.0.1', 'example.org', '::']) t.notOk(isLoopbackHost(host), host);
});

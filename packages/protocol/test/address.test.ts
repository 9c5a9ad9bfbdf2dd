import { isIPv6 } from 'node:net';
import t from 'tap';
import { AddressError, MAX_HOST_LENGTH, MAX_LABEL_LENGTH, formatHostPort, isLoopbackHost, isUnspecifiedHost, parseHostPort } from '@tracker-cluster/protocol';

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

t.test('hosts as the standards write them: IPv6 per RFC 4291, names per RFC 1123, IPv4 dotted-decimal', async (t) => {
  const label63 = 'a'.repeat(MAX_LABEL_LENGTH);
  const valid = [
    '[::]:1',
    '[::1]:1',
    '[1::]:1',
    '[1:2:3:4:5:6:7:8]:1',
    '[1:2:3:4:5:6:7::]:1',
    '[::2:3:4:5:6:7:8]:1',
    '[FFFF:abcd::0]:1',
    '[::ffff:192.0.2.1]:1',
    '[::192.0.2.1]:1',
    '[1:2:3:4:5:6:1.2.3.4]:1',
    '[fe80::1%eth0]:1',
    '[fe80::1%en0.5]:1',
    'localhost:1',
    'a:1',
    '0a:1',
    'x-1.example.org:1',
    'xn--bcher-kva.example:1',
    '3com.com:1',
    'app_primary_1:1',
    '_sip._tcp.example.org:1',
    'example.org.:1',
    'localhost.:1',
    `${label63}.org:1`,
    '127.0.0.1:1',
    '0.0.0.0:1',
    '255.255.255.255:1',
  ];
  for (const text of valid) t.doesNotThrow(() => parseHostPort(text), text);

  const invalid: Array<[string, RegExp]> = [
    ['[1::2::3]:1', /^"1::2::3" is not an IPv6 address/],
    ['[:::]:1', /not an IPv6 address/],
    ['[:1::]:1', /not an IPv6 address/],
    ['[1::2:]:1', /not an IPv6 address/],
    ['[1:2:3:4:5:6:7]:1', /not an IPv6 address/],
    ['[1:2:3:4:5:6:7:8:9]:1', /not an IPv6 address/],
    ['[1:2:3:4:5:6:7:8::]:1', /not an IPv6 address/],
    ['[12345::]:1', /not an IPv6 address/],
    ['[g::1]:1', /not an IPv6 address/],
    ['[::1.2.3.4:5]:1', /not an IPv6 address/],
    ['[1.2.3.4::]:1', /not an IPv6 address/],
    ['[::256.0.0.1]:1', /not an IPv6 address/],
    ['[::1.2.3]:1', /not an IPv6 address/],
    ['[:]:1', /not an IPv6 address/],
    ['[]:1', /not an IPv6 address/],
    ['[fe80::1%]:1', /not an IPv6 address/],
    ['[fe80::1%a b]:1', /not an IPv6 address/],
    [`${'a'.repeat(64)}.org:1`, /^a label of a host name is at most 63 characters; "a{40}…" has 64$/],
    [`org.${'b'.repeat(64)}:1`, /label of a host name is at most 63/],
    ['-a.org:1', /^"-a.org" is not a valid host name or address \(labels of letters, digits, `_` and inner hyphens, joined by dots\)$/],
    ['a-.org:1', /not a valid host name/],
    ['a..org:1', /not a valid host name/],
    ['.org:1', /not a valid host name/],
    ['.:1', /not a valid host name/],
    ['org..:1', /not a valid host name/],
    ['-_.org:1', /not a valid host name/],
    ['caf\u00e9.fr:1', /not a valid host name/],
    ['256.0.0.1:1', /^"256.0.0.1" is not an IPv4 address \(four numbers 0-255, without leading zeros\)$/],
    ['1.2.3:1', /not an IPv4 address/],
    ['1.2.3.4.5:1', /not an IPv4 address/],
    ['01.2.3.4:1', /not an IPv4 address/],
    ['example.123:1', /not an IPv4 address/],
    ['7:1', /not an IPv4 address/],
  ];
  for (const [text, why] of invalid) {
    t.throws(() => parseHostPort(text), { name: 'AddressError', message: why }, `${JSON.stringify(text)}: ${String(why)}`);
  }
  // A refused host is repeated as the start of it only, however it is refused.
  t.throws(() => parseHostPort(`[${'1:'.repeat(100)}]:1`), { message: /^"(1:){20}…" is not an IPv6 address/ }, 'a long IPv6 literal, excerpted');
  t.throws(() => parseHostPort(`${'-.'.repeat(100)}a:1`), { message: /^"(-\.){20}…" is not a valid host name/ }, 'a long bad name, excerpted');
  t.throws(() => parseHostPort(`${'1.'.repeat(100)}1:1`), { message: /^"(1\.){20}…" is not an IPv4 address/ }, 'a long bad IPv4 address, excerpted');
});

t.test('the IPv6 check agrees with node:net on random strings of its parts', async (t) => {
  // node:net is the oracle here only: the protocol package does no I/O and imports no node:net.
  const parts = ['0', '1', 'f', 'FFFF', '12345', ':', '::', '.', '1.2.3.4', '255.255.255.255', '256.1.1.1', '01.2.3.4', 'g'];
  let seed = 7;
  const rand = (): number => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed / 2147483648;
  };
  const differ: string[] = [];
  let valid = 0;
  for (let i = 0; i < 50_000; i++) {
    let host = '';
    for (let n = 1 + Math.floor(rand() * 12); n > 0; n--) host += parts[Math.floor(rand() * parts.length)];
    let ours: boolean;
    try {
      parseHostPort(`[${host}]:1`);
      ours = true;
    } catch {
      ours = false;
    }
    if (ours) valid++;
    if (ours !== isIPv6(host)) differ.push(host);
  }
  t.strictSame(differ.slice(0, 10), [], 'no string where they differ');
  t.ok(valid > 300, `${valid} of them valid`);
});

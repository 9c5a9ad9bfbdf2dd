import t from 'tap';
import { DEFAULT_TRACKERS, formatAddress, parseAddress, UsageError } from '@tracker-cluster/client';

t.test('HOST:PORT', async (t) => {
  t.same(parseAddress('127.0.0.1:7001'), { host: '127.0.0.1', port: 7001 });
  t.same(parseAddress('  tracker-1.example.org:65535 '), { host: 'tracker-1.example.org', port: 65535 });
  t.same(parseAddress('localhost:1'), { host: 'localhost', port: 1 });
});

t.test('IPv6 in brackets', async (t) => {
  t.same(parseAddress('[::1]:7001'), { host: '::1', port: 7001 });
  t.same(parseAddress('[fe80::1:2]:80'), { host: 'fe80::1:2', port: 80 });
  t.equal(formatAddress({ host: '::1', port: 7001 }), '[::1]:7001');
  t.equal(formatAddress({ host: '10.0.0.1', port: 7002 }), '10.0.0.1:7002');
  for (const text of ['[::1]:7001', '127.0.0.1:7001', 'example.org:9']) {
    t.equal(formatAddress(parseAddress(text)), text, `${text} round-trips`);
  }
});

t.test('bad addresses are usage errors that say what is wrong', async (t) => {
  const cases: [string, RegExp][] = [
    ['', /empty/],
    ['   ', /empty/],
    ['127.0.0.1', /missing port/],
    ['127.0.0.1:', /missing port/],
    [':7001', /missing host/],
    ['::1:7001', /IPv6 address must be written in brackets/],
    ['[::1]', /missing port/],
    ['[::1]7001', /missing port/],
    ['[::1:7001', /missing "]"/],
    ['[127.0.0.1]:7001', /not an IPv6 address/],
    ['host:port', /port "port" is not a number/],
    ['host:-1', /not a number/],
    ['host:0', /out of range/],
    ['host:65536', /out of range/],
    ['host:123456', /not a number/],
    ['bad host:1', /not a valid host/],
    ['a/b:1', /not a valid host/],
  ];
  for (const [text, why] of cases) {
    t.throws(() => parseAddress(text), UsageError, `"${text}" rejected`);
    t.throws(() => parseAddress(text), { message: why }, `"${text}": ${why}`);
    t.throws(() => parseAddress(text), { message: new RegExp(`invalid tracker address "${text.replace(/[[\]]/g, '\\$&')}"`) });
  }
});

t.test('defaults: the primary then the replica on localhost', async (t) => {
  t.same(DEFAULT_TRACKERS.map(formatAddress), ['127.0.0.1:7001', '127.0.0.1:7002']);
});

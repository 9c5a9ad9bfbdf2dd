import t from 'tap';
import { isClientId, MAX_REQUEST_NUMBER, newClientId, parseRequestId, RequestIds, withRequestId } from '@tracker-cluster/client';

t.test('client ids: 16 lowercase hex digits from 8 random bytes', async (t) => {
  const id = newClientId();
  t.match(id, /^[0-9a-f]{16}$/);
  t.not(newClientId(), id, 'random');
  t.equal(newClientId(() => Buffer.from('9f86d081884c7d65', 'hex')), '9f86d081884c7d65');
  t.ok(isClientId('0123456789abcdef'));
  t.notOk(isClientId('0123456789ABCDEF'));
  t.notOk(isClientId('0123456789abcde'));
});

t.test('request numbers grow from 1 and are never handed out twice', async (t) => {
  const ids = new RequestIds('9f86d081884c7d65');
  t.same(ids.next(), { clientId: '9f86d081884c7d65', n: 1 });
  t.same(ids.next(), { clientId: '9f86d081884c7d65', n: 2 });
  t.equal(ids.lastNumber, 2);
  const nearEnd = new RequestIds('9f86d081884c7d65', MAX_REQUEST_NUMBER - 1);
  t.equal(nearEnd.next().n, MAX_REQUEST_NUMBER, 'up to 2^53-1');
  t.throws(() => nearEnd.next(), RangeError, 'then no more');
  t.throws(() => new RequestIds('nope'), RangeError);
});

t.test('the wire prefix', async (t) => {
  const id = { clientId: '9f86d081884c7d65', n: 42 };
  t.equal(withRequestId(id, 'create_group team'), '@9f86d081884c7d65:42 create_group team');
  t.same(parseRequestId('@9f86d081884c7d65:42 create_group team'), { id, line: 'create_group team' });
  t.equal(parseRequestId('create_group team'), undefined);
  t.equal(parseRequestId('@9f86d081884c7d65:0 ping'), undefined, 'numbers start at 1');
  t.equal(parseRequestId('@9f86d081884c7d65:9007199254740992 ping'), undefined, 'past 2^53-1');
});

import t from 'tap';
import { backoffDelay, tryOrder } from '@tracker-cluster/client';

t.test('backoff: none before the first round, then doubling up to a cap', async (t) => {
  t.same([0, 1, 2, 3, 4, 5, 6, 7].map((r) => backoffDelay(r)), [0, 100, 200, 400, 800, 1600, 2000, 2000]);
  t.same([0, 1, 2, 3].map((r) => backoffDelay(r, { initialMs: 10, factor: 3, maxMs: 50 })), [0, 10, 30, 50]);
});

t.test('try order: every tracker once, from the start index, wrapping', async (t) => {
  t.same(tryOrder(2, 0), [0, 1]);
  t.same(tryOrder(2, 1), [1, 0], 'after losing the first, the second is tried first');
  t.same(tryOrder(3, 5), [2, 0, 1]);
  t.same(tryOrder(1, 1), [0]);
  t.same(tryOrder(0, 0), []);
});

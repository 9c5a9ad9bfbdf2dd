import t from 'tap';
import { HashSlots, hashSlotsFor, threadPoolSize } from '@tracker-cluster/tracker-core';

t.test('slots: one per core, leaving two pool threads for file work, at least one', async (t) => {
  t.equal(hashSlotsFor(4, 2), 2, 'the default pool on two cores');
  t.equal(hashSlotsFor(4, 16), 2, 'many cores, the default pool: the pool bounds it');
  t.equal(hashSlotsFor(64, 16), 16, 'a large pool: the cores bound it');
  t.equal(hashSlotsFor(2, 8), 1, 'a pool of two still hashes');
  t.equal(hashSlotsFor(1, 1), 1);
});

t.test("the pool's size: UV_THREADPOOL_SIZE when it is a positive number, else libuv's 4", async (t) => {
  t.equal(threadPoolSize({}), 4);
  t.equal(threadPoolSize({ UV_THREADPOOL_SIZE: '16' }), 16);
  t.equal(threadPoolSize({ UV_THREADPOOL_SIZE: '5000' }), 1024, 'clamped as libuv does');
  for (const bad of ['', '0', '-3', 'many']) t.equal(threadPoolSize({ UV_THREADPOOL_SIZE: bad }), 4, JSON.stringify(bad));
});

t.test('at most `slots` hashes run at once; the others wait, in order, and are counted', async (t) => {
  const slots = new HashSlots(2);
  const started: number[] = [];
  const finish = new Map<number, () => void>();
  const results = [0, 1, 2, 3, 4].map((i) =>
    slots.run(
      () =>
        new Promise<number>((resolve) => {
          started.push(i);
          finish.set(i, () => resolve(i));
        }),
    ),
  );
  await new Promise((resolve) => setImmediate(resolve));
  t.same(started, [0, 1], 'two run');
  t.equal(slots.waiting, 3, 'three wait');
  finish.get(1)?.();
  t.equal(await results[1], 1);
  await new Promise((resolve) => setImmediate(resolve));
  t.same(started, [0, 1, 2], 'a freed slot goes to the first in line');
  t.equal(slots.waiting, 2);
  for (const i of [0, 2]) finish.get(i)?.();
  await Promise.all([results[0], results[2]]);
  await new Promise((resolve) => setImmediate(resolve));
  for (const i of [3, 4]) finish.get(i)?.();
  t.same(await Promise.all(results), [0, 1, 2, 3, 4]);
  t.same(started, [0, 1, 2, 3, 4]);
  t.equal(slots.waiting, 0);
});

t.test('a hash that fails frees its slot', async (t) => {
  const slots = new HashSlots(1);
  await t.rejects(
    slots.run(() => Promise.reject(new Error('no memory'))),
    /no memory/,
  );
  t.equal(await slots.run(() => Promise.resolve('next')), 'next', 'the next one runs');
  t.equal(slots.waiting, 0);
});

import test from 'ava';
import { forEachLimit, mapLimit } from './concurrency.ts';

const tick = () => new Promise((resolve) => setImmediate(resolve));

test('never more than the limit at once, every item once, results in order', async (t) => {
  for (const [count, limit] of [
    [0, 3],
    [1, 3],
    [10, 3],
    [10, 1],
    [5, 50],
  ] as const) {
    let running = 0;
    let peak = 0;
    const items = Array.from({ length: count }, (_, i) => i);
    const results = await mapLimit(items, limit, async (item) => {
      running++;
      peak = Math.max(peak, running);
      await tick();
      running--;
      return item * 2;
    });
    t.deepEqual(
      results,
      items.map((i) => i * 2),
      `${count} items by ${limit}`,
    );
    t.is(peak, Math.min(count, limit), `${count} items by ${limit}`);
  }
});

test('the first failure rejects; no item starts after it, those running finish', async (t) => {
  const started: number[] = [];
  let finished = 0;
  await t.throwsAsync(
    forEachLimit([0, 1, 2, 3, 4, 5], 2, async (item) => {
      started.push(item);
      if (item === 1) throw new Error('item 1 failed');
      await tick();
      finished++;
    }),
    { message: 'item 1 failed' },
  );
  t.deepEqual(started, [0, 1]);
  t.is(finished, 1);
});

test('with several failures, the one that came first in time is thrown, whatever its lane', async (t) => {
  await t.throwsAsync(
    forEachLimit([0, 1], 2, async (item) => {
      if (item === 0) {
        await tick();
        await tick();
        throw new Error('item 0, later');
      }
      throw new Error('item 1, first');
    }),
    { message: 'item 1, first' },
  );
});

test('a limit that is not a positive integer is refused', async (t) => {
  for (const limit of [0, -1, 1.5, Number.NaN])
    await t.throwsAsync(
      forEachLimit([1], limit, async () => {}),
      { instanceOf: RangeError },
    );
});

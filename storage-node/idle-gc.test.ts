import { getHeapStatistics } from 'node:v8';
import test from 'ava';
import { IdleCollector } from './idle-gc.ts';

const MiB = 1024 * 1024;

function collector(start: { ops: number; heap: number }) {
  const state = { ...start, collected: 0 };
  const idle = new IdleCollector({
    everyMs: 60_000, // checks are driven by hand
    growthBytes: 4 * MiB,
    activity: () => state.ops,
    heapUsed: () => state.heap,
    collect: () => {
      state.collected++;
      state.heap = 15 * MiB; // what a full collection leaves
    },
  });
  return { idle, state };
}

test('an idle node whose heap grew 4 MiB since the last collection gets one, and only one', (t) => {
  const { idle, state } = collector({ ops: 0, heap: 15 * MiB });
  t.teardown(() => idle.close());
  state.heap = 18 * MiB;
  idle.check();
  t.is(state.collected, 0, 'grew less than 4 MiB');
  state.heap = 19.5 * MiB;
  idle.check();
  t.is(state.collected, 1);
  idle.check();
  t.is(state.collected, 1, 'back to its baseline');
});

test('a node serving requests is left to V8, and is idle again only after a whole quiet period', (t) => {
  const { idle, state } = collector({ ops: 0, heap: 15 * MiB });
  t.teardown(() => idle.close());
  state.heap = 40 * MiB;
  state.ops = 10;
  idle.check();
  t.is(state.collected, 0, 'busy since the last look');
  idle.check();
  t.is(state.collected, 1, 'quiet for one period, heap 25 MiB over its baseline');
  t.is(idle.collections, 1);
});

test('the default collector is a real full collection', (t) => {
  const idle = new IdleCollector({ everyMs: 60_000, growthBytes: 0, activity: () => 0 });
  t.teardown(() => idle.close());
  let garbage: { i: number; s: string }[] | null = Array.from({ length: 300_000 }, (_, i) => ({ i, s: `value ${i}` }));
  t.is(garbage.length, 300_000);
  const before = getHeapStatistics().used_heap_size;
  garbage = null;
  idle.check();
  t.is(idle.collections, 1);
  const after = getHeapStatistics().used_heap_size;
  t.true(after < before - 10 * MiB, `heap in use ${before} → ${after}`);
});

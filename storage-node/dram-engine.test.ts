import test from 'ava';
import { DramEngine } from './dram-engine.ts';
import { ENTRY_OVERHEAD, entryCost } from './engine.ts';

const MiB = 1024 * 1024;
const buf = (text: string) => Buffer.from(text);

test('put, get, overwrite, delete', (t) => {
  const engine = new DramEngine(MiB);
  t.is(engine.tier, 'dram');
  t.is(engine.get('job', 'k'), undefined);
  t.deepEqual(engine.put('job', 'k', buf('one'), 0), { ok: true, replaced: undefined });
  t.deepEqual(engine.get('job', 'k'), { value: buf('one'), flags: 0 });
  const second = engine.put('job', 'k', buf('two!'), 1);
  t.true(second.ok);
  t.deepEqual(second.ok && second.replaced, { value: buf('one'), flags: 0 }, 'the replaced entry is handed back');
  t.deepEqual(engine.get('job', 'k'), { value: buf('two!'), flags: 1 });
  t.deepEqual(engine.delete('job', 'k'), { value: buf('two!'), flags: 1 });
  t.is(engine.get('job', 'k'), undefined);
  t.is(engine.delete('job', 'k'), undefined, 'deleting an absent key is a no-op');
  t.is(engine.delete('nobody', 'k'), undefined);
});

test('an empty value is a value, not an absence', (t) => {
  const engine = new DramEngine(MiB);
  engine.put('job', 'empty', Buffer.alloc(0), 0);
  t.deepEqual(engine.get('job', 'empty'), { value: Buffer.alloc(0), flags: 0 });
  t.deepEqual(engine.list('job', '', '', 10), { keys: ['empty'], more: false });
});

test('jobs are isolated: the same key in two jobs', (t) => {
  const engine = new DramEngine(MiB);
  engine.put('job-a', 'k', buf('a'), 0);
  engine.put('job-b', 'k', buf('b'), 0);
  t.deepEqual(engine.get('job-a', 'k')?.value, buf('a'));
  t.deepEqual(engine.get('job-b', 'k')?.value, buf('b'));
  engine.delete('job-a', 'k');
  t.deepEqual(engine.get('job-b', 'k')?.value, buf('b'));
  t.deepEqual(engine.list('job-a', '', '', 10), { keys: [], more: false });
  t.deepEqual(engine.list('job-b', '', '', 10), { keys: ['k'], more: false });
});

test('list: prefix, sorted order, limit and more', (t) => {
  const engine = new DramEngine(MiB);
  for (const key of ['b/2', 'a/3', 'a/1', 'a/2', 'a0', 'a', 'b/1', 'a/10']) engine.put('job', key, buf(key), 0);
  t.deepEqual(engine.list('job', 'a/', '', 100), { keys: ['a/1', 'a/10', 'a/2', 'a/3'], more: false });
  t.deepEqual(engine.list('job', '', '', 100).keys, ['a', 'a/1', 'a/10', 'a/2', 'a/3', 'a0', 'b/1', 'b/2']);
  t.deepEqual(engine.list('job', 'a/', '', 2), { keys: ['a/1', 'a/10'], more: true });
  t.deepEqual(engine.list('job', 'a/', '', 4), { keys: ['a/1', 'a/10', 'a/2', 'a/3'], more: false }, 'exactly the rest: no more');
  t.deepEqual(engine.list('job', 'c', '', 10), { keys: [], more: false });
  t.deepEqual(engine.list('job', 'b/', '', 1), { keys: ['b/1'], more: true });
});

test('list: cursor paging visits every key once, strictly after the cursor', (t) => {
  const engine = new DramEngine(64 * MiB);
  const all: string[] = [];
  for (let i = 0; i < 1000; i++) {
    const key = `part-${String(i).padStart(4, '0')}`;
    all.push(key);
    engine.put('job', key, buf('x'), 0);
  }
  engine.put('job', 'other', buf('x'), 0);
  const seen: string[] = [];
  let after = '';
  let pages = 0;
  for (;;) {
    const page = engine.list('job', 'part-', after, 37);
    pages++;
    seen.push(...page.keys);
    if (!page.more) break;
    after = page.keys.at(-1)!;
  }
  t.deepEqual(seen, all);
  t.is(pages, Math.ceil(1000 / 37));
  // A cursor that is not itself a key, and one before the prefix.
  t.deepEqual(engine.list('job', 'part-', 'part-0499x', 2).keys, ['part-0500', 'part-0501']);
  t.deepEqual(engine.list('job', 'part-', 'a', 1).keys, ['part-0000']);
  // A cursor past the end.
  t.deepEqual(engine.list('job', 'part-', 'part-9999', 5), { keys: [], more: false });
});

test('list sees keys added and removed since the last list', (t) => {
  const engine = new DramEngine(MiB);
  engine.put('job', 'b', buf('x'), 0);
  t.deepEqual(engine.list('job', '', '', 10).keys, ['b']);
  engine.put('job', 'a', buf('x'), 0);
  engine.put('job', 'c', buf('x'), 0);
  t.deepEqual(engine.list('job', '', '', 10).keys, ['a', 'b', 'c']);
  engine.delete('job', 'b');
  t.deepEqual(engine.list('job', '', '', 10).keys, ['a', 'c']);
  engine.put('job', 'a', buf('overwritten'), 0);
  t.deepEqual(engine.list('job', '', '', 10).keys, ['a', 'c']);
});

test('list excludes internal (NUL) block keys, which still count as used bytes', (t) => {
  const engine = new DramEngine(MiB);
  engine.put('job', 'big', buf('manifest'), 1);
  engine.put('job', 'big\u0000v1\u00000', buf('block0'), 0);
  engine.put('job', 'big\u0000v1\u00001', buf('block1'), 0);
  engine.put('job', 'bigger', buf('x'), 0);
  t.deepEqual(engine.list('job', 'big', '', 10), { keys: ['big', 'bigger'], more: false });
  t.deepEqual(engine.list('job', 'big', '', 1), { keys: ['big'], more: true });
  t.deepEqual(engine.list('job', 'big', 'big', 10), { keys: ['bigger'], more: false });
  t.deepEqual(engine.get('job', 'big\u0000v1\u00001')?.value, buf('block1'));
  t.is(engine.used, entryCost('big', 8) + 2 * entryCost('big\u0000v1\u00000', 6) + entryCost('bigger', 1));
});

test('capacity is enforced: FULL, the old value kept, nothing counted', (t) => {
  const capacity = 3 * (ENTRY_OVERHEAD + 1 + 1000);
  const engine = new DramEngine(capacity);
  t.is(engine.capacity, capacity);
  for (const key of ['a', 'b', 'c']) t.true(engine.put('job', key, Buffer.alloc(1000, key), 0).ok);
  t.is(engine.used, capacity);
  const full = engine.put('job', 'd', Buffer.alloc(1), 0);
  t.false(full.ok);
  t.is(!full.ok && full.reason, 'FULL');
  t.regex((!full.ok && full.message) || '', /full/);
  t.is(engine.get('job', 'd'), undefined);
  t.is(engine.used, capacity);
  // Overwriting with a bigger value does not fit either; the old value stays.
  const grow = engine.put('job', 'a', Buffer.alloc(1001, 'z'), 0);
  t.false(grow.ok);
  t.deepEqual(engine.get('job', 'a')?.value, Buffer.alloc(1000, 'a'));
  t.is(engine.used, capacity);
  // Another job cannot squeeze in either: capacity is per node.
  t.false(engine.put('other', 'x', Buffer.alloc(0), 0).ok);
  // Overwriting with the same or smaller size fits even when full, since the old value is freed.
  t.true(engine.put('job', 'a', Buffer.alloc(1000, 'y'), 0).ok);
  t.true(engine.put('job', 'b', Buffer.alloc(10, 'y'), 0).ok);
  t.is(engine.used, capacity - 990);
  // And the room freed is usable.
  t.true(engine.put('job', 'd', Buffer.alloc(990 - ENTRY_OVERHEAD - 1), 0).ok);
  t.is(engine.used, capacity);
});

test('usage accounting returns to 0 after delete and after dropJob', (t) => {
  const engine = new DramEngine(64 * MiB);
  t.is(engine.used, 0);
  engine.put('job-a', 'k1', Buffer.alloc(100), 0);
  engine.put('job-a', 'k2', Buffer.alloc(200), 0);
  engine.put('job-a', 'k1', Buffer.alloc(50), 0); // overwrite shrinks
  engine.put('job-b', 'k', Buffer.alloc(1000), 0);
  const a = entryCost('k1', 50) + entryCost('k2', 200);
  const b = entryCost('k', 1000);
  t.is(engine.used, a + b);
  t.deepEqual(engine.usageByJob(), new Map([['job-a', a], ['job-b', b]]));
  engine.delete('job-a', 'k1');
  engine.delete('job-a', 'k2');
  t.is(engine.used, b);
  t.deepEqual(engine.usageByJob(), new Map([['job-b', b]]), 'a job with no entries left is gone from the usage');
  t.is(engine.dropJob('job-b'), b, 'dropJob returns the bytes freed');
  t.is(engine.used, 0);
  t.deepEqual(engine.usageByJob(), new Map());
  t.is(engine.dropJob('job-b'), 0, 'dropping again frees nothing');
  t.is(engine.get('job-b', 'k'), undefined);
});

test('dropJob removes only that job', (t) => {
  const engine = new DramEngine(MiB);
  engine.put('job-a', 'k', buf('a'), 0);
  engine.put('job-b', 'k', buf('b'), 0);
  engine.dropJob('job-a');
  t.is(engine.get('job-a', 'k'), undefined);
  t.deepEqual(engine.list('job-a', '', '', 10), { keys: [], more: false });
  t.deepEqual(engine.get('job-b', 'k')?.value, buf('b'));
  t.is(engine.used, entryCost('k', 1));
  // The job may store again afterwards (the node, not the engine, refuses dropped jobs).
  t.true(engine.put('job-a', 'k', buf('again'), 0).ok);
});

test('close frees everything', (t) => {
  const engine = new DramEngine(MiB);
  engine.put('job', 'k', buf('v'), 0);
  engine.close();
  t.is(engine.used, 0);
  t.is(engine.get('job', 'k'), undefined);
});

import test from 'ava';
import { SortedKeys } from './sorted-keys.ts';

/** xorshift32: a reproducible stream of keys. */
function rng(seed: number): () => number {
  let x = seed;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

/** The reference: every key of `model` sorted, paged as LIST pages. */
function modelPage(model: Set<string>, prefix: string, after: string, limit: number): { keys: string[]; more: boolean } {
  const all = [...model].filter((k) => k.startsWith(prefix) && k > after).sort();
  return { keys: all.slice(0, limit), more: all.length > limit };
}

test('adds, deletes and pages exactly like a sorted array, through chunk splits and merges', (t) => {
  const random = rng(0x9e3779b9);
  const set = new SortedKeys();
  const model = new Set<string>();
  // Few distinct prefixes and short suffixes: many collisions, deletes of present keys, chunks split and merged.
  const key = () => `${'abc'[Math.floor(random() * 3)]}/${Math.floor(random() * 5000).toString(36)}${random() < 0.05 ? '\u{1F600}' : ''}`;
  for (let round = 0; round < 40; round++) {
    const deleting = round % 4 === 3;
    for (let i = 0; i < 2_000; i++) {
      const k = key();
      if (deleting || random() < 0.3) t.is(set.delete(k), model.delete(k), `delete ${k}`);
      else t.is(set.add(k), !model.has(k) && model.add(k) !== undefined, `add ${k}`);
    }
    t.is(set.size, model.size);
    for (const [prefix, after, limit] of [
      ['', '', 100],
      ['a/', '', 1_000],
      ['b/', 'b/5', 7],
      ['c/', 'c/zz', 3],
      ['a/1', 'a/', 50],
      ['', 'b/', 0],
    ] as const) {
      t.deepEqual(set.page(prefix, after, limit), modelPage(model, prefix, after, limit), `round ${round}: page ${prefix} after ${after}`);
    }
  }
  t.deepEqual([...set], [...model].sort());
  for (const k of [...model]) set.delete(k);
  t.is(set.size, 0);
  t.deepEqual(set.page('', '', 10), { keys: [], more: false });
});

test('a page is a binary search and a walk: 1,000 pages of 500,000 keys, each after a new key, take milliseconds', (t) => {
  const set = new SortedKeys();
  const n = 500_000;
  for (let i = 0; i < n; i++) set.add(`part-${(i * 7919) % 997}/r${i}`);
  const started = performance.now();
  for (let i = 0; i < 1_000; i++) {
    set.add(`new-${i}`);
    t.is(set.page(`part-${i % 997}/`, '', 100).keys.length, 100);
  }
  const ms = performance.now() - started;
  t.log(`1,000 × (add + LIST page of 100) at ${n} keys: ${ms.toFixed(1)} ms`);
  // A sort of every key per page (what the engine did before) costs ~0.5 s each here.
  t.true(ms < 2_000, `${ms} ms`);
});

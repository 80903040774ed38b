/**
 * One conformance suite for every StorageEngine (DRAM, SSD, HDD): `engineConformance` registers ava tests, so
 * call it from a `*.test.ts` file. Every call is awaited, so engines answering synchronously or with promises
 * run the same tests.
 */

import { randomBytes } from 'node:crypto';
import test, { type ExecutionContext } from 'ava';
import {
  type ComputeValue,
  type DeleteOutcome,
  ENTRY_OVERHEAD,
  entryCost,
  type PutOutcome,
  type StorageEngine,
  type StoredEntry,
} from './engine.ts';

const MiB = 1024 * 1024;
const MANIFEST = 0x0001;
const buf = (text: string) => Buffer.from(text);

/** INCR's compute: a missing key counts from 0; a value that is not a decimal integer is refused. */
const increment: ComputeValue = (old) => {
  const text = old === undefined ? '0' : old.value.toString('latin1');
  if (!/^-?[0-9]+$/.test(text)) return { refuse: 'value is not an integer' };
  return buf(String(BigInt(text) + 1n));
};

/** An entry's value and flags (its version is checked by the tests about versions). */
const plain = (entry: StoredEntry | undefined) => (entry === undefined ? undefined : { value: entry.value, flags: entry.flags });
/** What a DELETE removed, as `plain`; a refusal as it is. */
const deleted = (outcome: DeleteOutcome) => (outcome.ok ? plain(outcome.old) : outcome);
/** A write's outcome with its replaced entry as `plain`. */
const plainOutcome = (outcome: PutOutcome) => (outcome.ok ? { ...outcome, replaced: plain(outcome.replaced) } : outcome);
const version = (entry: StoredEntry | undefined) => (entry === undefined ? undefined : [entry.epoch, entry.seq]);

export type MakeEngine = (capacity: number) => Promise<StorageEngine>;

/**
 * Registers the suite under `name`. `makeEngine` opens a fresh engine; the suite closes it in teardown and then
 * calls `cleanup` with it (to remove its files, say).
 */
export function engineConformance(name: string, makeEngine: MakeEngine, cleanup?: (engine: StorageEngine) => Promise<void> | void): void {
  const open = async (t: ExecutionContext, capacity = 64 * MiB): Promise<StorageEngine> => {
    const engine = await makeEngine(capacity);
    t.teardown(async () => {
      await engine.close();
      await cleanup?.(engine);
    });
    return engine;
  };

  test(`${name}: put, get, overwrite, delete, with flags`, async (t) => {
    const engine = await open(t);
    t.is(await engine.get('job', 'k'), undefined);
    t.deepEqual(await engine.put('job', 'k', buf('one'), 0), { ok: true, replaced: undefined, seq: 1 });
    t.deepEqual(plain(await engine.get('job', 'k')), { value: buf('one'), flags: 0 });
    const second = await engine.put('job', 'k', buf('two!'), 0xbeef);
    t.true(second.ok);
    t.deepEqual(second.ok && plain(second.replaced), { value: buf('one'), flags: 0 }, 'the replaced entry is handed back');
    t.deepEqual(plain(await engine.get('job', 'k')), { value: buf('two!'), flags: 0xbeef }, 'all 16 flag bits kept');
    t.deepEqual(deleted(await engine.delete('job', 'k')), { value: buf('two!'), flags: 0xbeef });
    t.is(await engine.get('job', 'k'), undefined);
    t.is(deleted(await engine.delete('job', 'k')), undefined, 'deleting an absent key is a no-op');
    t.is(deleted(await engine.delete('nobody', 'k')), undefined);
    t.is(engine.used, 0);
  });

  test(`${name}: a replaced manifest is handed back whole, small or large`, async (t) => {
    const engine = await open(t);
    for (const size of [40, 200 * 1024]) {
      const manifest = randomBytes(size);
      await engine.put('job', `m${size}`, manifest, MANIFEST);
      const outcome = await engine.put('job', `m${size}`, buf('next'), MANIFEST);
      const replaced = outcome.ok ? outcome.replaced : undefined;
      t.is(replaced?.flags, MANIFEST);
      t.true(replaced?.value.equals(manifest), `${size}-byte manifest`);
      t.deepEqual(deleted(await engine.delete('job', `m${size}`)), { value: buf('next'), flags: MANIFEST });
    }
    // A large non-manifest value: the old entry is reported (its value may be left out, see engine.ts).
    await engine.put('job', 'big', randomBytes(200 * 1024), 7);
    const over = await engine.put('job', 'big', buf('small'), 0);
    t.true(over.ok && over.replaced !== undefined && over.replaced.flags === 7);
    const gone = await engine.delete('job', 'big');
    t.deepEqual(deleted(gone), { value: buf('small'), flags: 0 });
  });

  test(`${name}: an empty value is a value, not an absence`, async (t) => {
    const engine = await open(t);
    await engine.put('job', 'empty', Buffer.alloc(0), 3);
    t.deepEqual(plain(await engine.get('job', 'empty')), { value: Buffer.alloc(0), flags: 3 });
    t.deepEqual(await engine.list('job', '', '', 10), { keys: ['empty'], more: false });
    t.is(engine.used, entryCost('empty', 0));
    t.deepEqual(deleted(await engine.delete('job', 'empty')), { value: Buffer.alloc(0), flags: 3 });
    t.is(engine.used, 0);
  });

  test(`${name}: jobs are isolated: the same key in two jobs`, async (t) => {
    const engine = await open(t);
    await engine.put('job-a', 'k', buf('a'), 0);
    await engine.put('job-b', 'k', buf('b'), 0);
    await engine.put('job', 'k', buf('c'), 0); // a job id that is a prefix of the others
    t.deepEqual((await engine.get('job-a', 'k'))?.value, buf('a'));
    t.deepEqual((await engine.get('job-b', 'k'))?.value, buf('b'));
    await engine.delete('job-a', 'k');
    t.deepEqual((await engine.get('job-b', 'k'))?.value, buf('b'));
    t.deepEqual(await engine.list('job-a', '', '', 10), { keys: [], more: false });
    t.deepEqual(await engine.list('job-b', '', '', 10), { keys: ['k'], more: false });
    t.deepEqual(await engine.list('job', '', '', 10), { keys: ['k'], more: false });
    t.is(await engine.dropJob('job'), entryCost('k', 1));
    t.deepEqual((await engine.get('job-b', 'k'))?.value, buf('b'));
  });

  test(`${name}: list: prefix, sorted order, limit and more`, async (t) => {
    const engine = await open(t);
    for (const key of ['b/2', 'a/3', 'a/1', 'a/2', 'a0', 'a', 'b/1', 'a/10']) await engine.put('job', key, buf(key), 0);
    t.deepEqual(await engine.list('job', 'a/', '', 100), { keys: ['a/1', 'a/10', 'a/2', 'a/3'], more: false });
    t.deepEqual((await engine.list('job', '', '', 100)).keys, ['a', 'a/1', 'a/10', 'a/2', 'a/3', 'a0', 'b/1', 'b/2']);
    t.deepEqual(await engine.list('job', 'a/', '', 2), { keys: ['a/1', 'a/10'], more: true });
    t.deepEqual(await engine.list('job', 'a/', '', 4), { keys: ['a/1', 'a/10', 'a/2', 'a/3'], more: false }, 'exactly the rest: no more');
    t.deepEqual(await engine.list('job', 'c', '', 10), { keys: [], more: false });
    t.deepEqual(await engine.list('job', 'b/', '', 1), { keys: ['b/1'], more: true });
    t.deepEqual(await engine.list('nobody', '', '', 10), { keys: [], more: false });
  });

  test(`${name}: list is in JavaScript string order, also for non-ASCII keys`, async (t) => {
    const engine = await open(t);
    // UTF-8 byte order would put the astral (surrogate-pair) keys after U+FFFD; JavaScript puts them before.
    const keys = ['z', 'é', '\u{1F600}', '\uFFFD', '\uE000x', '\u{10000}', 'ä', '日本', 'a\u{1F600}b', 'a\uFFFF'];
    for (const key of keys) await engine.put('job', key, buf(key), 0);
    const sorted = [...keys].sort();
    t.deepEqual((await engine.list('job', '', '', 100)).keys, sorted);
    t.deepEqual((await engine.list('job', '', sorted[3]!, 2)).keys, sorted.slice(4, 6));
    t.deepEqual((await engine.list('job', 'a', '', 100)).keys, ['a\u{1F600}b', 'a\uFFFF']);
    for (const key of keys) t.deepEqual((await engine.get('job', key))?.value, buf(key));
  });

  test(`${name}: list: cursor paging visits every key once, strictly after the cursor`, async (t) => {
    const engine = await open(t);
    const all: string[] = [];
    const puts = [];
    for (let i = 0; i < 1000; i++) {
      const key = `part-${String(i).padStart(4, '0')}`;
      all.push(key);
      puts.push(engine.put('job', key, buf('x'), 0));
    }
    puts.push(engine.put('job', 'other', buf('x'), 0));
    await Promise.all(puts);
    const seen: string[] = [];
    let after = '';
    let pages = 0;
    for (;;) {
      const page = await engine.list('job', 'part-', after, 37);
      pages++;
      seen.push(...page.keys);
      if (!page.more) break;
      after = page.keys.at(-1)!;
    }
    t.deepEqual(seen, all);
    t.is(pages, Math.ceil(1000 / 37));
    t.deepEqual((await engine.list('job', 'part-', 'part-0499x', 2)).keys, ['part-0500', 'part-0501'], 'a cursor that is not a key');
    t.deepEqual((await engine.list('job', 'part-', 'a', 1)).keys, ['part-0000'], 'a cursor before the prefix');
    t.deepEqual(await engine.list('job', 'part-', 'part-9999', 5), { keys: [], more: false }, 'a cursor past the end');
  });

  test(`${name}: list sees keys added and removed since the last list`, async (t) => {
    const engine = await open(t);
    await engine.put('job', 'b', buf('x'), 0);
    t.deepEqual((await engine.list('job', '', '', 10)).keys, ['b']);
    await engine.put('job', 'a', buf('x'), 0);
    await engine.put('job', 'c', buf('x'), 0);
    t.deepEqual((await engine.list('job', '', '', 10)).keys, ['a', 'b', 'c']);
    await engine.delete('job', 'b');
    t.deepEqual((await engine.list('job', '', '', 10)).keys, ['a', 'c']);
    await engine.put('job', 'a', buf('overwritten'), 0);
    t.deepEqual((await engine.list('job', '', '', 10)).keys, ['a', 'c']);
  });

  test(`${name}: list stays exact through rounds of puts, deletes and re-puts, with runs of block keys between pages`, async (t) => {
    const engine = await open(t);
    let x = 0x1234567;
    const random = (n: number) => {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      return (x >>> 0) % n;
    };
    const live = new Set<string>();
    const sorted = (internal: boolean) => [...live].filter((k) => internal || !k.includes('\u0000')).sort();
    for (let round = 0; round < 8; round++) {
      const writes: Promise<unknown>[] = [];
      for (let i = 0; i < 300; i++) {
        const user = `${'pq'[random(2)]}/${random(400).toString(36)}`;
        // Some keys are a value's blocks: a run of them, longer than a disk engine's read batch, after the key.
        const keys = i === 0 && round % 2 === 1 ? Array.from({ length: 1100 }, (_, b) => `${user}\u0000v${round}\u0000${b}`) : [user];
        const remove = random(3) === 0;
        for (const key of keys) {
          if (remove) live.delete(key);
          else live.add(key);
          writes.push(Promise.resolve(remove ? engine.delete('job', key) : engine.put('job', key, buf('v'), 0)));
        }
      }
      await Promise.all(writes);
      for (const internal of [false, true]) {
        for (const [prefix, pageSize] of [
          ['', 97],
          ['p/', 1000],
          ['q/1', 3],
        ] as const) {
          const seen: string[] = [];
          let after = '';
          for (;;) {
            const page = await engine.list('job', prefix, after, pageSize, internal);
            seen.push(...page.keys);
            if (!page.more) break;
            after = page.keys.at(-1)!;
          }
          t.deepEqual(
            seen,
            sorted(internal).filter((k) => k.startsWith(prefix)),
            `round ${round}, ${internal ? 'internal keys too' : 'user keys'}, prefix ${prefix}`,
          );
        }
      }
    }
  });

  test(`${name}: list excludes internal (NUL) block keys, which still count as used bytes`, async (t) => {
    const engine = await open(t);
    await engine.put('job', 'big', buf('manifest'), MANIFEST);
    for (let i = 0; i < 40; i++) await engine.put('job', `big\u0000v1\u0000${String(i).padStart(2, '0')}`, buf('block'), 0);
    await engine.put('job', 'bigger', buf('x'), 0);
    t.deepEqual(await engine.list('job', 'big', '', 10), { keys: ['big', 'bigger'], more: false });
    t.deepEqual(await engine.list('job', 'big', '', 1), { keys: ['big'], more: true }, 'more looks past the internal keys');
    t.deepEqual(await engine.list('job', 'big', 'big', 10), { keys: ['bigger'], more: false });
    t.deepEqual(await engine.list('job', 'big\u0000', '', 10), { keys: [], more: false });
    t.deepEqual((await engine.get('job', 'big\u0000v1\u000007'))?.value, buf('block'));
    t.is(engine.used, entryCost('big', 8) + 40 * entryCost('big\u0000v1\u000000', 5) + entryCost('bigger', 1));
  });

  test(`${name}: list with internal keys pages through every stored key, blocks included, in order`, async (t) => {
    const engine = await open(t);
    const stored = ['a', 'big', ...Array.from({ length: 12 }, (_, i) => `big\u0000v1\u0000${String(i).padStart(2, '0')}`), 'c'];
    for (const key of stored) await engine.put('job', key, buf(key), 0);
    await engine.put('other', 'z', buf('z'), 0);
    const seen: string[] = [];
    let after = '';
    for (;;) {
      const page = await engine.list('job', '', after, 5, true);
      seen.push(...page.keys);
      if (!page.more) break;
      after = page.keys.at(-1)!;
    }
    t.deepEqual(seen, [...stored].sort());
    t.deepEqual((await engine.list('job', 'big\u0000', '', 100, true)).keys.length, 12);
  });

  test(`${name}: versions: the node orders its writes within an epoch, a later epoch's write refuses an earlier one`, async (t) => {
    const engine = await open(t);
    t.deepEqual(await engine.put('job', 'k', buf('a'), 0, 3, 0), { ok: true, replaced: undefined, seq: 1 });
    t.is((await engine.put('job', 'k', buf('b'), 0, 3, 0)).ok && 2, 2);
    t.deepEqual(version(await engine.get('job', 'k')), [3, 2]);
    t.deepEqual(plainOutcome(await engine.update('job', 'k', () => buf('7'), 3)), {
      ok: true,
      replaced: { value: buf('b'), flags: 0 },
      seq: 3,
    });
    // A new epoch starts its seqs again, above everything of the older ones.
    t.deepEqual(plainOutcome(await engine.put('job', 'k', buf('c'), 0, 4, 0)), {
      ok: true,
      replaced: { value: buf('7'), flags: 0 },
      seq: 1,
    });
    t.deepEqual(version(await engine.get('job', 'k')), [4, 1]);
    // A writer still on epoch 3 is out of date for this key: STALE, and nothing changes.
    const stale = await engine.put('job', 'k', buf('old'), 0, 3, 0);
    t.is(!stale.ok && stale.reason, 'STALE');
    const staleUpdate = await engine.update('job', 'k', () => buf('x'), 2);
    t.is(!staleUpdate.ok && staleUpdate.reason, 'STALE');
    const staleDelete = await engine.delete('job', 'k', 3, 0);
    t.is(!staleDelete.ok && staleDelete.reason, 'STALE');
    t.deepEqual(plain(await engine.get('job', 'k')), { value: buf('c'), flags: 0 });
    t.is(engine.used, entryCost('k', 1));
  });

  test(`${name}: versions: a replica or copy lands only when newer than what the key holds`, async (t) => {
    const engine = await open(t);
    t.deepEqual(await engine.put('job', 'k', buf('v5'), 0, 2, 5), { ok: true, replaced: undefined, seq: 5 }, 'into an empty key');
    t.deepEqual(
      await engine.put('job', 'k', buf('v4'), MANIFEST, 2, 4),
      { ok: true, replaced: undefined, seq: 0, skipped: true },
      'older: left alone',
    );
    t.deepEqual(
      await engine.put('job', 'k', buf('v5b'), 0, 2, 5),
      { ok: true, replaced: undefined, seq: 0, skipped: true },
      'the same version: left alone',
    );
    t.deepEqual(
      await engine.put('job', 'k', buf('e1'), 0, 1, 9),
      { ok: true, replaced: undefined, seq: 0, skipped: true },
      'an older epoch: left alone',
    );
    t.deepEqual(plain(await engine.get('job', 'k')), { value: buf('v5'), flags: 0 }, 'the value and flags held stay');
    t.is(engine.used, entryCost('k', 2), 'a skipped write costs nothing');
    t.true((await engine.put('job', 'k', buf('v6'), 0, 2, 6)).ok);
    t.deepEqual(version(await engine.get('job', 'k')), [2, 6]);
    t.deepEqual(plain(await engine.get('job', 'k')), { value: buf('v6'), flags: 0 });
    // The node's own next write of the epoch comes after the replica's.
    t.is((await engine.put('job', 'k', buf('mine'), 0, 2, 0)).ok && 7, 7);
    // A write racing a copy of the same key: whatever order they land in, the newer version is what stays.
    const [copy, write] = await Promise.all([engine.put('job', 'r', buf('copy'), 0, 1, 3), engine.put('job', 'r', buf('writer'), 0, 2, 0)]);
    t.true(copy.ok && write.ok);
    t.deepEqual((await engine.get('job', 'r'))?.value, buf('writer'));
  });

  test(`${name}: tombstones: a deleted key's version stops older replicas and copies, and seqs go on after it`, async (t) => {
    const engine = await open(t);
    await engine.put('job', 'k', buf('a'), 0, 5, 0);
    t.deepEqual(deleted(await engine.delete('job', 'k', 5, 0, true)), { value: buf('a'), flags: 0 });
    t.is(await engine.get('job', 'k'), undefined);
    t.deepEqual(await engine.list('job', '', '', 10), { keys: [], more: false }, 'a tombstone is not a key');
    t.is(engine.used, 0, 'nor a used byte');
    t.deepEqual(engine.usageByJob(), new Map());
    t.deepEqual(engine.deletedAt('job', 'k'), { epoch: 5, seq: 2 }, 'a GET can say the key was deleted, and when');
    t.deepEqual(
      await engine.put('job', 'k', buf('late copy'), 0, 5, 1),
      { ok: true, replaced: undefined, seq: 0, skipped: true },
      'the delete (5, 2) is newer than (5, 1)',
    );
    t.is(await engine.get('job', 'k'), undefined);
    t.deepEqual(
      await engine.put('job', 'k', buf('again'), 0, 5, 0),
      { ok: true, replaced: undefined, seq: 3 },
      'the next write goes after the delete',
    );
    t.is(engine.deletedAt('job', 'k'), undefined, 'written since: not deleted');
    t.is(engine.deletedAt('job', 'other'), undefined);
    // A delete of a key that was never there still leaves its tombstone.
    const absent = await engine.delete('job', 'never', 5, 0, true);
    t.deepEqual(absent, { ok: true, old: undefined, seq: 1 });
    t.true((await engine.put('job', 'never', buf('older'), 0, 4, 9)).ok && (await engine.get('job', 'never')) === undefined);
    // A replica of a delete: only when newer; without `tombstone`, nothing is remembered.
    await engine.put('job', 'r', buf('v'), 0, 5, 4);
    t.deepEqual(
      await engine.delete('job', 'r', 5, 3, true),
      { ok: true, old: undefined, seq: 0, skipped: true },
      'an older delete leaves the value',
    );
    t.deepEqual((await engine.get('job', 'r'))?.value, buf('v'));
    t.deepEqual(deleted(await engine.delete('job', 'r', 5, 6)), { value: buf('v'), flags: 0 });
    t.is(engine.deletedAt('job', 'r'), undefined, 'no tombstone kept: nothing to say');
    t.true((await engine.put('job', 'r', buf('resurrected'), 0, 5, 5)).ok, 'no tombstone kept: an older copy lands');
    // Dropping the job forgets its tombstones.
    await engine.dropJob('job');
    t.deepEqual(await engine.put('job', 'k', buf('fresh'), 0, 1, 1), { ok: true, replaced: undefined, seq: 1 });
  });

  test(`${name}: capacity is enforced: FULL, the old value kept, nothing counted`, async (t) => {
    const capacity = 3 * (ENTRY_OVERHEAD + 1 + 1000);
    const engine = await open(t, capacity);
    t.is(engine.capacity, capacity);
    for (const key of ['a', 'b', 'c']) t.true((await engine.put('job', key, Buffer.alloc(1000, key), 0)).ok);
    t.is(engine.used, capacity);
    const full = await engine.put('job', 'd', Buffer.alloc(1), 0);
    t.false(full.ok);
    t.is(!full.ok && full.reason, 'FULL');
    t.regex((!full.ok && full.message) || '', /full/);
    t.is(await engine.get('job', 'd'), undefined);
    t.is(engine.used, capacity);
    const grow = await engine.put('job', 'a', Buffer.alloc(1001, 'z'), 0);
    t.false(grow.ok, 'a bigger overwrite does not fit');
    t.deepEqual((await engine.get('job', 'a'))?.value, Buffer.alloc(1000, 'a'), 'the old value stays');
    t.is(engine.used, capacity);
    t.false((await engine.put('other', 'x', Buffer.alloc(0), 0)).ok, 'capacity is per node');
    t.true((await engine.put('job', 'a', Buffer.alloc(1000, 'y'), 0)).ok, 'the same size fits, the old value is freed');
    t.true((await engine.put('job', 'b', Buffer.alloc(10, 'y'), 0)).ok);
    t.is(engine.used, capacity - 990);
    t.true((await engine.put('job', 'd', Buffer.alloc(990 - ENTRY_OVERHEAD - 1), 0)).ok, 'the room freed is usable');
    t.is(engine.used, capacity);
  });

  test(`${name}: concurrent PUTs never overcommit`, async (t) => {
    const size = 100 * 1024;
    const capacity = 10 * entryCost('k-00', size) + 50;
    const engine = await open(t, capacity);
    const outcomes = await Promise.all(
      Array.from({ length: 30 }, (_, i) => engine.put('job', `k-${String(i).padStart(2, '0')}`, Buffer.alloc(size, i), 0)),
    );
    t.is(outcomes.filter((o) => o.ok).length, 10);
    t.true(outcomes.filter((o) => !o.ok).every((o) => !o.ok && o.reason === 'FULL'));
    t.is(engine.used, 10 * entryCost('k-00', size));
    const page = await engine.list('job', '', '', 100);
    t.is(page.keys.length, 10);
    for (const key of page.keys) t.true((await engine.get('job', key))?.value.equals(Buffer.alloc(size, Number(key.slice(2)))));
  });

  test(`${name}: update creates a missing key: compute sees undefined`, async (t) => {
    const engine = await open(t);
    await engine.put('other', 'n', buf('99'), 0); // the same key in another job is not this one
    const seen: (StoredEntry | undefined)[] = [];
    const outcome = await engine.update('job', 'n', (old) => {
      seen.push(old);
      return buf('1');
    });
    t.deepEqual(seen, [undefined], 'compute is called once, with no entry');
    t.deepEqual(outcome, { ok: true, replaced: undefined, seq: 1 });
    t.deepEqual(plain(await engine.get('job', 'n')), { value: buf('1'), flags: 0 });
    t.deepEqual(await engine.list('job', '', '', 10), { keys: ['n'], more: false });
    t.deepEqual(plain(await engine.get('other', 'n')), { value: buf('99'), flags: 0 });
    t.deepEqual(
      engine.usageByJob(),
      new Map([
        ['other', entryCost('n', 2)],
        ['job', entryCost('n', 1)],
      ]),
    );
  });

  test(`${name}: update sees the entry there and replaces it: flags 0, the old entry handed back`, async (t) => {
    const engine = await open(t);
    await engine.put('job', 'n', buf('41'), 0xbeef);
    const seen: (StoredEntry | undefined)[] = [];
    const outcome = await engine.update('job', 'n', (old) => {
      seen.push(old);
      return increment(old);
    });
    t.deepEqual(seen.map(plain), [{ value: buf('41'), flags: 0xbeef }], 'compute is called once, with the entry there');
    t.deepEqual(plainOutcome(outcome), { ok: true, replaced: { value: buf('41'), flags: 0xbeef }, seq: 2 });
    t.deepEqual(plain(await engine.get('job', 'n')), { value: buf('42'), flags: 0 }, 'the new entry has flags 0');
    t.deepEqual(plainOutcome(await engine.update('job', 'n', increment)), { ok: true, replaced: { value: buf('42'), flags: 0 }, seq: 3 });
    t.deepEqual(plain(await engine.get('job', 'n')), { value: buf('43'), flags: 0 });
    // A large manifest (a disk engine keeps it out of memory): compute and `replaced` get it whole.
    const manifest = randomBytes(200 * 1024);
    await engine.put('job', 'm', manifest, MANIFEST);
    let sawManifest: StoredEntry | undefined;
    const overManifest = await engine.update('job', 'm', (old) => {
      sawManifest = old;
      return buf('7');
    });
    t.is(sawManifest?.flags, MANIFEST);
    t.true(sawManifest?.value.equals(manifest), 'compute sees the whole manifest');
    const replacedManifest = overManifest.ok ? overManifest.replaced : undefined;
    t.is(replacedManifest?.flags, MANIFEST);
    t.true(replacedManifest?.value.equals(manifest), 'the replaced manifest is handed back whole');
    t.deepEqual(plain(await engine.get('job', 'm')), { value: buf('7'), flags: 0 });
    // A large non-manifest value: its flags are right, its value may be left out (engine.ts).
    const large = randomBytes(200 * 1024);
    await engine.put('job', 'big', large, 7);
    let sawLarge: StoredEntry | undefined;
    const overLarge = await engine.update('job', 'big', (old) => {
      sawLarge = old;
      return buf('1');
    });
    t.is(sawLarge?.flags, 7);
    t.true(sawLarge !== undefined && (sawLarge.value.length === 0 || sawLarge.value.equals(large)));
    t.true(overLarge.ok && overLarge.replaced?.flags === 7);
    t.deepEqual(plain(await engine.get('job', 'big')), { value: buf('1'), flags: 0 });
    t.is(engine.used, entryCost('n', 2) + entryCost('m', 1) + entryCost('big', 1));
  });

  test(`${name}: a refused update stores nothing and leaves the old entry`, async (t) => {
    const engine = await open(t);
    await engine.put('job', 'text', buf('hello'), 3);
    const used = engine.used;
    t.deepEqual(await engine.update('job', 'text', increment), { ok: false, reason: 'BAD_REQUEST', message: 'value is not an integer' });
    t.deepEqual(plain(await engine.get('job', 'text')), { value: buf('hello'), flags: 3 }, 'the old value and flags stay');
    t.is(engine.used, used);
    // Over a missing key: no entry, no job.
    t.deepEqual(await engine.update('job', 'absent', () => ({ refuse: 'no' })), { ok: false, reason: 'BAD_REQUEST', message: 'no' });
    t.deepEqual(await engine.update('fresh', 'k', () => ({ refuse: 'no' })), { ok: false, reason: 'BAD_REQUEST', message: 'no' });
    t.is(await engine.get('job', 'absent'), undefined);
    t.is(await engine.get('fresh', 'k'), undefined);
    t.deepEqual(await engine.list('job', '', '', 10), { keys: ['text'], more: false });
    t.deepEqual(engine.usageByJob(), new Map([['job', used]]));
    t.is(engine.used, used);
    // A compute that throws stores nothing either, and the key stays writable (nothing is left locked).
    await t.throwsAsync(
      async () => {
        await engine.update('job', 'text', () => {
          throw new Error('boom');
        });
      },
      { message: 'boom' },
    );
    t.deepEqual(plain(await engine.get('job', 'text')), { value: buf('hello'), flags: 3 });
    t.true((await engine.put('job', 'text', buf('5'), 0)).ok);
    t.true((await engine.update('job', 'text', increment)).ok);
    t.deepEqual(plain(await engine.get('job', 'text')), { value: buf('6'), flags: 0 });
  });

  test(`${name}: an update that does not fit is FULL: nothing changed, used unchanged`, async (t) => {
    const capacity = 2 * (ENTRY_OVERHEAD + 1 + 1000);
    const engine = await open(t, capacity);
    for (const key of ['a', 'b']) t.true((await engine.put('job', key, Buffer.alloc(1000, key), 9)).ok);
    t.is(engine.used, capacity);
    let calls = 0;
    const grow = await engine.update('job', 'a', () => {
      calls++;
      return Buffer.alloc(1001, 'z');
    });
    t.is(calls, 1);
    t.false(grow.ok, 'a bigger value does not fit');
    t.is(!grow.ok && grow.reason, 'FULL');
    t.regex((!grow.ok && grow.message) || '', /full/);
    t.deepEqual(plain(await engine.get('job', 'a')), { value: Buffer.alloc(1000, 'a'), flags: 9 }, 'the old value and flags stay');
    t.is(engine.used, capacity);
    const fresh = await engine.update('job', 'c', () => buf('1'));
    t.is(!fresh.ok && fresh.reason, 'FULL', 'a new key does not fit');
    t.is(await engine.get('job', 'c'), undefined);
    t.deepEqual((await engine.list('job', '', '', 10)).keys, ['a', 'b']);
    t.is(engine.used, capacity);
    t.deepEqual(engine.usageByJob(), new Map([['job', capacity]]));
    // The old entry's room counts: the same size fits, a smaller one frees the difference.
    t.true((await engine.update('job', 'a', () => Buffer.alloc(1000, 'y'))).ok);
    t.is(engine.used, capacity);
    t.true((await engine.update('job', 'b', () => Buffer.alloc(10, 'y'))).ok);
    t.is(engine.used, capacity - 990);
  });

  test(`${name}: concurrent updates of one key are atomic: 200 increments count 200`, async (t) => {
    const engine = await open(t);
    const updates: Promise<PutOutcome>[] = [];
    // All started before any is awaited: on a disk engine they overlap.
    for (let i = 0; i < 200; i++) updates.push(Promise.resolve(engine.update('job', 'counter', increment)));
    const outcomes = await Promise.all(updates);
    t.deepEqual(plain(await engine.get('job', 'counter')), { value: buf('200'), flags: 0 });
    t.true(outcomes.every((o) => o.ok));
    // Each saw the one before it, in arrival order.
    const previous = outcomes.map((o) => (o.ok && o.replaced !== undefined ? Number(o.replaced.value.toString()) : 0));
    t.deepEqual(
      previous,
      Array.from({ length: 200 }, (_, i) => i),
    );
    t.is(engine.used, entryCost('counter', 3));
  });

  test(`${name}: updates, PUTs and other keys' updates interleaved apply in arrival order`, async (t) => {
    const engine = await open(t);
    const calls: Promise<PutOutcome>[] = [];
    for (let i = 0; i < 100; i++) {
      calls.push(Promise.resolve(engine.update('job', 'mixed', increment)));
      calls.push(Promise.resolve(engine.update('job', `other-${i % 4}`, increment)));
      if (i === 49) calls.push(Promise.resolve(engine.put('job', 'mixed', buf('1000'), 5)));
    }
    const outcomes = await Promise.all(calls);
    t.true(outcomes.every((o) => o.ok));
    t.deepEqual(plain(await engine.get('job', 'mixed')), { value: buf('1050'), flags: 0 }, '50 increments, the PUT, 50 more');
    for (let k = 0; k < 4; k++) t.deepEqual((await engine.get('job', `other-${k}`))?.value, buf('25'));
    t.is(engine.used, entryCost('mixed', 4) + 4 * entryCost('other-0', 2));
  });

  test(`${name}: used bytes follow updates: inline and large values, growing and shrinking`, async (t) => {
    const engine = await open(t);
    await engine.put('job-b', 'kept', Buffer.alloc(500), 0);
    const kept = entryCost('kept', 500);
    let value = Buffer.alloc(0);
    for (const size of [1, 100, 70 * 1024, 5, 300 * 1024, 200 * 1024, 0, 3]) {
      value = randomBytes(size);
      t.true((await engine.update('job-a', 'k', () => value)).ok);
      t.is(engine.used, entryCost('k', size) + kept, `after an update to ${size} bytes`);
      t.deepEqual(
        engine.usageByJob(),
        new Map([
          ['job-b', kept],
          ['job-a', entryCost('k', size)],
        ]),
      );
      t.true((await engine.get('job-a', 'k'))?.value.equals(value));
    }
    for (let i = 0; i < 12; i++) await engine.update('job-b', 'counter', increment);
    t.is(engine.used, entryCost('k', 3) + kept + entryCost('counter', 2));
    t.true((await engine.update('job-b', 'kept', () => Buffer.alloc(80 * 1024))).ok);
    const b = entryCost('kept', 80 * 1024) + entryCost('counter', 2);
    t.is(engine.usageByJob().get('job-b'), b);
    t.deepEqual(deleted(await engine.delete('job-a', 'k')), { value, flags: 0 });
    t.is(engine.used, b);
    t.is(await engine.dropJob('job-b'), b);
    t.is(engine.used, 0);
  });

  test(`${name}: usage accounting returns to 0 after delete and after dropJob`, async (t) => {
    const engine = await open(t);
    t.is(engine.used, 0);
    await engine.put('job-a', 'k1', Buffer.alloc(100), 0);
    await engine.put('job-a', 'k2', Buffer.alloc(200 * 1024), 0);
    await engine.put('job-a', 'k1', Buffer.alloc(50), 0); // overwrite shrinks
    await engine.put('job-b', 'k', Buffer.alloc(1000), 0);
    await engine.put('job-b', 'big', Buffer.alloc(300 * 1024), 0);
    const a = entryCost('k1', 50) + entryCost('k2', 200 * 1024);
    const b = entryCost('k', 1000) + entryCost('big', 300 * 1024);
    t.is(engine.used, a + b);
    t.deepEqual(
      engine.usageByJob(),
      new Map([
        ['job-a', a],
        ['job-b', b],
      ]),
    );
    await engine.delete('job-a', 'k1');
    await engine.delete('job-a', 'k2');
    t.is(engine.used, b);
    t.deepEqual(engine.usageByJob(), new Map([['job-b', b]]), 'a job with no entries left is gone from the usage');
    t.is(await engine.dropJob('job-b'), b, 'dropJob returns the bytes freed');
    t.is(engine.used, 0);
    t.deepEqual(engine.usageByJob(), new Map());
    t.is(await engine.dropJob('job-b'), 0, 'dropping again frees nothing');
    t.is(await engine.get('job-b', 'k'), undefined);
    t.is(await engine.get('job-b', 'big'), undefined);
  });

  test(`${name}: dropJob removes only that job, which may store again`, async (t) => {
    const engine = await open(t);
    await engine.put('job-a', 'k', buf('a'), 0);
    await engine.put('job-a', 'large', Buffer.alloc(100 * 1024, 1), 0);
    await engine.put('job-b', 'k', buf('b'), 0);
    await engine.put('job-b', 'large', Buffer.alloc(100 * 1024, 2), 0);
    await engine.dropJob('job-a');
    t.is(await engine.get('job-a', 'k'), undefined);
    t.is(await engine.get('job-a', 'large'), undefined);
    t.deepEqual(await engine.list('job-a', '', '', 10), { keys: [], more: false });
    t.deepEqual((await engine.get('job-b', 'k'))?.value, buf('b'));
    t.true((await engine.get('job-b', 'large'))?.value.equals(Buffer.alloc(100 * 1024, 2)));
    t.is(engine.used, entryCost('k', 1) + entryCost('large', 100 * 1024));
    t.true((await engine.put('job-a', 'k', buf('again'), 0)).ok);
    t.deepEqual((await engine.get('job-a', 'k'))?.value, buf('again'));
  });

  test(`${name}: dropJob with writes of the job in flight leaves nothing behind`, async (t) => {
    const engine = await open(t);
    const writes = Array.from({ length: 50 }, (_, i) => engine.put('job', `k${i}`, Buffer.alloc(i % 2 === 0 ? 10 : 100 * 1024, i), 0));
    const dropped = engine.dropJob('job');
    await Promise.all(writes);
    await dropped;
    // Whatever order the engine applied them in, usage and contents agree.
    const left = (await engine.list('job', '', '', 1000)).keys;
    let expected = 0;
    for (const key of left) expected += entryCost(key, Number(key.slice(1)) % 2 === 0 ? 10 : 100 * 1024);
    t.is(engine.used, expected);
    await engine.dropJob('job');
    t.is(engine.used, 0);
    t.deepEqual(await engine.list('job', '', '', 1000), { keys: [], more: false });
  });

  test(`${name}: a 5 MiB value round trip`, async (t) => {
    const engine = await open(t);
    const value = randomBytes(5 * MiB);
    t.true((await engine.put('job', 'five', value, 2)).ok);
    const back = await engine.get('job', 'five');
    t.is(back?.flags, 2);
    t.true(back?.value.equals(value));
    t.is(engine.used, entryCost('five', 5 * MiB));
    const other = randomBytes(5 * MiB);
    t.true((await engine.put('job', 'five', other, 0)).ok);
    t.true((await engine.get('job', 'five'))?.value.equals(other));
    t.is(engine.used, entryCost('five', 5 * MiB));
  });

  test(`${name}: many concurrent PUTs and GETs awaited together stay consistent`, async (t) => {
    const engine = await open(t);
    const sizes = [0, 10, 1000, 70 * 1024, 300 * 1024];
    const last = new Map<string, Buffer>();
    const calls: Promise<void>[] = [];
    for (let round = 0; round < 6; round++) {
      for (let i = 0; i < 40; i++) {
        const job = `job-${i % 3}`;
        const key = `key-${i}`;
        const value = randomBytes(sizes[(i + round) % sizes.length]!);
        last.set(`${job}/${key}`, value);
        calls.push(
          Promise.resolve(engine.put(job, key, value, round)).then((outcome) => {
            t.true(outcome.ok);
          }),
        );
        // Issued right after the PUT: a GET reads that PUT (or, for a DELETE later in the round, nothing newer).
        calls.push(
          Promise.resolve(engine.get(job, key)).then((entry) => {
            t.is(entry?.flags, round);
            t.true(entry?.value.equals(value), `read-your-write of ${job}/${key} in round ${round}`);
          }),
        );
      }
    }
    await Promise.all(calls);
    let expected = 0;
    for (const [path, value] of last) {
      const [job, key] = path.split('/') as [string, string];
      const entry = await engine.get(job, key);
      t.true(entry?.value.equals(value), `${path} holds its last value`);
      expected += entryCost(key, value.length);
    }
    t.is(engine.used, expected);
    const usage = [...engine.usageByJob().values()].reduce((a, b) => a + b, 0);
    t.is(usage, expected, 'usage by job adds up to used');
    await Promise.all([0, 1, 2].map((i) => engine.dropJob(`job-${i}`)));
    t.is(engine.used, 0);
  });

  test(`${name}: close is idempotent`, async (t) => {
    const engine = await makeEngine(MiB);
    await engine.put('job', 'k', buf('v'), 0);
    await engine.close();
    await engine.close();
    t.is(engine.used, 0);
    await cleanup?.(engine);
  });
}

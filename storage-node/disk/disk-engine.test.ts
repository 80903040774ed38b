import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { pino } from 'pino';
import { ADMIN_SUBJECT, Flag, NodeConnection, Op, SatchelError, Status, signToken } from '../../proto/index.ts';
import { decodeKeyList } from '../../test/helpers/raw-client.ts';
import { DramEngine } from '../dram-engine.ts';
import { entryCost, type StoredEntry } from '../engine.ts';
import { startStorageNode } from '../node.ts';
import { EmulatedDevice } from './device.ts';
import { DEFAULT_INLINE_MAX, DiskEngine, type DiskEngineOptions } from './disk-engine.ts';

const KiB = 1024;
const MiB = 1024 * KiB;
const logger = pino({ level: 'silent' });

async function tempDir(t: ExecutionContext): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'satchel-disk-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function openEngine(t: ExecutionContext, options: Partial<DiskEngineOptions> = {}): Promise<DiskEngine> {
  const engine = await DiskEngine.open({ tier: 'ssd', capacity: 256 * MiB, path: await tempDir(t), ...options });
  t.teardown(() => engine.close());
  return engine;
}

/** Bytes the segment files take on disk, by listing the directory (not the engine's own bookkeeping). */
async function segmentFileBytes(engine: DiskEngine): Promise<{ files: number; bytes: number }> {
  const dir = path.join(engine.path, 'segments');
  let bytes = 0;
  const names = await readdir(dir);
  for (const name of names) bytes += (await stat(path.join(dir, name))).size;
  return { files: names.length, bytes };
}

async function expectCode(t: ExecutionContext, promise: unknown, code: string): Promise<void> {
  const error = await t.throwsAsync(async () => {
    await promise;
  });
  t.true(error instanceof SatchelError, `a SatchelError, got ${String(error)}`);
  t.is((error as SatchelError).code, code as SatchelError['code']);
}

test('small values stay in LevelDB; large ones are appended to segment files, which grow', async (t) => {
  const engine = await openEngine(t);
  for (let i = 0; i < 100; i++) await engine.put('job', `small-${i}`, randomBytes(1000), 0);
  await engine.put('job', 'just-below', randomBytes(engine.inlineMax - 1), 0);
  t.deepEqual(await segmentFileBytes(engine), { files: 0, bytes: 0 }, 'nothing under the threshold reaches a segment');
  const values = [randomBytes(engine.inlineMax), randomBytes(MiB), randomBytes(3 * MiB)];
  let expected = 0;
  for (const [i, value] of values.entries()) {
    await engine.put('job', `large-${i}`, value, i);
    expected += value.length;
    const { files, bytes } = await segmentFileBytes(engine);
    t.is(files, 1);
    t.true(bytes > expected && bytes < expected + (i + 1) * 100, `segment holds the values plus small record headers (${bytes})`);
  }
  for (const [i, value] of values.entries()) {
    const entry = await engine.get('job', `large-${i}`);
    t.is(entry?.flags, i);
    t.true(entry?.value.equals(value), `large-${i} reads back byte-exact`); // t.deepEqual is slow on MiB buffers
  }
  const stats = engine.stats();
  t.is(stats.segments.length, 1);
  t.true(stats.segments[0]!.active);
  t.is(stats.segments[0]!.dead, 0);
});

test('a full segment is closed and the next record starts a new one', async (t) => {
  const engine = await openEngine(t, { inlineMax: KiB, segmentBytes: MiB });
  for (let i = 0; i < 10; i++) await engine.put('job', `v${i}`, Buffer.alloc(300 * KiB, i), 0);
  const { segments } = engine.stats();
  t.is(segments.length, 4, 'three records of 300 KiB per 1 MiB segment');
  t.deepEqual(
    segments.map((s) => s.active),
    [false, false, false, true],
  );
  t.true(segments.every((s) => s.size <= MiB));
  t.is((await segmentFileBytes(engine)).files, 4);
  // A value bigger than a segment gets one of its own.
  await engine.put('job', 'huge', Buffer.alloc(2 * MiB, 7), 0);
  t.true((await engine.get('job', 'huge'))?.value.equals(Buffer.alloc(2 * MiB, 7)));
  for (let i = 0; i < 10; i++) t.true((await engine.get('job', `v${i}`))?.value.equals(Buffer.alloc(300 * KiB, i)));
});

test('overwrites and deletes leave dead bytes; compaction reclaims the files and every live value reads back exactly', async (t) => {
  const engine = await openEngine(t, { inlineMax: 4 * KiB, segmentBytes: MiB });
  const live = new Map<string, Buffer>();
  const put = async (key: string, size: number) => {
    const value = randomBytes(size);
    t.true((await engine.put('job', key, value, 0)).ok);
    live.set(key, value);
  };
  for (let i = 0; i < 200; i++) await put(`k${i}`, 20 * KiB + i * 97);
  const before = await segmentFileBytes(engine);
  t.true(before.files >= 4);
  t.is(engine.stats().compactions, 0);
  // Overwrite a third with small (inline) values, delete a third: two thirds of every segment is dead.
  for (let i = 0; i < 200; i++) {
    if (i % 3 === 0) await put(`k${i}`, 100);
    else if (i % 3 === 1) {
      t.truthy(await engine.delete('job', `k${i}`).then((o) => o.ok && o.old));
      live.delete(`k${i}`);
    }
  }
  await engine.whenIdle();
  const stats = engine.stats();
  t.true(stats.compactions > 0, 'segments past the dead threshold were compacted');
  t.true(stats.bytesRelocated > 0);
  t.is(stats.lastCompactionError, null);
  for (const s of stats.segments) if (!s.active) t.true(s.dead / s.size <= 0.5, `segment ${s.id}: ${s.dead} of ${s.size} dead`);
  const after = await segmentFileBytes(engine);
  let liveSegmentBytes = 0;
  for (const [key, value] of live) if (value.length >= engine.inlineMax) liveSegmentBytes += value.length + key.length + 20;
  t.true(after.bytes < before.bytes / 2, `file space reclaimed: ${before.bytes} → ${after.bytes}`);
  t.true(after.bytes <= 2 * liveSegmentBytes + MiB, 'at most half of a closed segment is dead');
  t.is(after.files, stats.segments.length, 'no file left behind for a retired segment');
  for (const [key, value] of live) t.true((await engine.get('job', key))?.value.equals(value), key);
  t.deepEqual((await engine.list('job', '', '', 1000)).keys.sort(), [...live.keys()].sort());
  let used = 0;
  for (const [key, value] of live) used += entryCost(key, value.length);
  t.is(engine.used, used, 'compaction moves bytes, it does not count them');
});

test('reads running while compaction moves records all get their value', async (t) => {
  const engine = await openEngine(t, { inlineMax: 4 * KiB, segmentBytes: 512 * KiB });
  const live = new Map<string, Buffer>();
  for (let i = 0; i < 120; i++) {
    const value = randomBytes(30 * KiB);
    await engine.put('job', `k${i}`, value, i);
    live.set(`k${i}`, value);
  }
  // Start readers, then make most of every segment dead so compaction runs under them.
  let stop = false;
  let reads = 0;
  const readers = Array.from({ length: 8 }, async (_, r) => {
    while (!stop) {
      for (let i = r; i < 120; i += 8) {
        const key = `k${i}`;
        const expected = live.get(key);
        const entry = await engine.get('job', key);
        reads++;
        if (expected === undefined) continue; // deleted meanwhile: either answer is right
        if (entry === undefined || !entry.value.equals(expected)) {
          // A key overwritten meanwhile may show its newer value; anything else is a lost read.
          const now = live.get(key);
          if (now === undefined || entry === undefined || !entry.value.equals(now)) t.fail(`${key} read back wrong`);
        }
      }
      // A read of a small or deleted value answers in the same turn (ssd): let the writes and compaction run.
      await new Promise((resolve) => setImmediate(resolve));
    }
  });
  const writes: Promise<unknown>[] = [];
  for (let i = 0; i < 120; i++) {
    if (i % 4 === 0) continue;
    if (i % 2 === 0) {
      const value = randomBytes(30 * KiB);
      live.set(`k${i}`, value);
      writes.push(engine.put('job', `k${i}`, value, i));
    } else {
      live.delete(`k${i}`);
      writes.push(engine.delete('job', `k${i}`));
    }
  }
  await Promise.all(writes);
  await engine.whenIdle();
  stop = true;
  await Promise.all(readers);
  t.true(engine.stats().compactions > 0);
  t.true(reads > 120);
  for (const [key, value] of live) t.true((await engine.get('job', key))?.value.equals(value), key);
});

test('update takes the key lock in its own turn and writes through the put path: segments, dead bytes, recycle', async (t) => {
  const engine = await openEngine(t, { inlineMax: 4 * KiB, segmentBytes: MiB });
  const recycled: Buffer[] = [];
  engine.recycle = (value) => recycled.push(value);
  const manifest = randomBytes(100 * KiB);
  const next = randomBytes(200 * KiB);
  let seen: StoredEntry | undefined;
  // Nothing awaited in between: the update queues behind the PUT, the GET behind the update.
  const put = engine.put('job', 'k', manifest, Flag.MANIFEST);
  const update = engine.update('job', 'k', (old) => {
    seen = old;
    return next;
  });
  const got = engine.get('job', 'k');
  t.true((await put).ok);
  const outcome = await update;
  t.true(seen?.value.equals(manifest), 'compute saw the PUT issued before it');
  t.true(outcome.ok && outcome.replaced?.flags === Flag.MANIFEST && outcome.replaced.value.equals(manifest));
  const read = await got;
  t.true(read?.value.equals(next), 'a GET issued right after the update reads its write');
  t.is(read?.flags, 0);
  t.is(recycled.length, 2);
  t.true(recycled[0] === manifest && recycled[1] === next, 'both written values go back to the pool');
  const fullKey = 'job\u0001k'.length;
  const [segment] = engine.stats().segments;
  t.is(segment?.size, 24 + 2 * fullKey + 300 * KiB, 'both records in the segment');
  t.is(segment?.dead, 12 + fullKey + 100 * KiB, 'the replaced record is dead');
  // A small counter over the large records: they are all dead, the file goes.
  t.true((await engine.update('job', 'k', () => Buffer.from('1'))).ok);
  await engine.whenIdle();
  t.deepEqual(await segmentFileBytes(engine), { files: 0, bytes: 0 });
  t.is(engine.used, entryCost('k', 1));
  t.deepEqual(await engine.get('job', 'k'), { value: Buffer.from('1'), flags: 0, epoch: 0, seq: 3 });
  t.is(recycled.length, 3);
  // compute handing back the old value itself: that buffer is the caller's (as `replaced`), so it is not recycled.
  await engine.put('job', 'm', randomBytes(128 * KiB), Flag.MANIFEST);
  let old: Buffer | undefined;
  const same = await engine.update('job', 'm', (entry) => (old = entry!.value));
  t.true(same.ok && old !== undefined && same.replaced?.value === old);
  t.is(recycled.length, 4, "only the PUT's value");
  t.false(recycled.includes(old!));
  // A value read from a segment is the caller's alone (`retired`: the server may recycle it once sent).
  t.deepEqual(await engine.get('job', 'm'), { value: old, flags: 0, epoch: 0, seq: 2, retired: true });
  // Bad input is refused before compute runs.
  let calls = 0;
  const count = () => {
    calls++;
    return Buffer.from('x');
  };
  await expectCode(t, engine.update('Bad Job', 'k', count), 'BAD_REQUEST');
  await expectCode(t, engine.update('job', 'k'.repeat(30_000), count), 'BAD_REQUEST');
  t.is(calls, 0);
});

test('dropJob frees everything of the job: index entries, counters and segment files', async (t) => {
  const engine = await openEngine(t, { inlineMax: 4 * KiB, segmentBytes: MiB });
  for (let i = 0; i < 50; i++) {
    await engine.put('doomed', `k${i}`, randomBytes(i % 2 === 0 ? 100 : 100 * KiB), 0);
    await engine.put('kept', `k${i}`, randomBytes(100), 0);
  }
  t.true((await segmentFileBytes(engine)).files >= 2);
  const doomedBytes = engine.usageByJob().get('doomed')!;
  t.is(await engine.dropJob('doomed'), doomedBytes);
  await engine.whenIdle();
  t.deepEqual(await segmentFileBytes(engine), { files: 0, bytes: 0 }, 'segments with nothing live are removed');
  t.deepEqual(engine.stats().segments, []);
  t.deepEqual([...engine.usageByJob().keys()], ['kept']);
  t.deepEqual(await engine.list('doomed', '', '', 10), { keys: [], more: false });
  t.is((await engine.list('kept', '', '', 100)).keys.length, 50);
  // New large values go to a fresh segment.
  await engine.put('doomed', 'again', Buffer.alloc(10 * KiB, 1), 0);
  t.deepEqual((await engine.get('doomed', 'again'))?.value, Buffer.alloc(10 * KiB, 1));
  t.is((await segmentFileBytes(engine)).files, 1);
});

test('opening an existing directory starts empty; a foreign non-empty directory is refused', async (t) => {
  const dir = await tempDir(t);
  const first = await DiskEngine.open({ tier: 'hdd', capacity: 64 * MiB, path: dir });
  await first.put('job', 'small', Buffer.from('x'), 0);
  await first.put('job', 'large', Buffer.alloc(MiB), 0);
  await first.close();
  t.true((await readdir(path.join(dir, 'segments'))).length > 0);
  const second = await DiskEngine.open({ tier: 'hdd', capacity: 64 * MiB, path: dir });
  t.teardown(() => second.close());
  t.is(second.used, 0);
  t.deepEqual(second.usageByJob(), new Map());
  t.is(await second.get('job', 'small'), undefined);
  t.is(await second.get('job', 'large'), undefined);
  t.deepEqual(await second.list('job', '', '', 10), { keys: [], more: false });
  t.deepEqual(await readdir(path.join(dir, 'segments')), []);

  const foreign = await tempDir(t);
  await writeFile(path.join(foreign, 'precious.txt'), 'keep me');
  await expectCode(t, DiskEngine.open({ tier: 'ssd', capacity: MiB, path: foreign }), 'BAD_REQUEST');
  t.deepEqual(await readdir(foreign), ['precious.txt'], 'nothing was deleted');
});

test('bad input is a SatchelError with a code, never a crash', async (t) => {
  const engine = await openEngine(t);
  await expectCode(t, engine.put('Bad Job', 'k', Buffer.from('x'), 0), 'BAD_REQUEST');
  await expectCode(t, engine.get('job\u0001x', 'k'), 'BAD_REQUEST');
  await expectCode(t, engine.list('', '', '', 10), 'BAD_REQUEST');
  await expectCode(t, engine.dropJob('../etc'), 'BAD_REQUEST');
  await expectCode(t, engine.put('job', 'k', Buffer.from('x'), 0x10000), 'BAD_REQUEST');
  await expectCode(t, engine.put('job', 'k', Buffer.from('x'), -1), 'BAD_REQUEST');
  await expectCode(t, engine.put('job', 'k', 'not a buffer' as unknown as Buffer, 0), 'BAD_REQUEST');
  await expectCode(t, engine.put('job', 'k'.repeat(30_000), Buffer.from('x'), 0), 'BAD_REQUEST');
  await expectCode(t, engine.list('job', '', '', -1), 'BAD_REQUEST');
  t.is(engine.used, 0);
  // A Uint8Array that is not a Buffer is taken as one.
  t.true((await engine.put('job', 'u8', new Uint8Array([1, 2, 3]) as unknown as Buffer, 0)).ok);
  t.deepEqual((await engine.get('job', 'u8'))?.value, Buffer.from([1, 2, 3]));

  t.throws(() => new DiskEngine({ tier: 'ssd', capacity: MiB, path: '' }), { instanceOf: SatchelError });
  t.throws(() => new DiskEngine({ tier: 'dram' as 'ssd', capacity: MiB, path: '/tmp/x' }), { instanceOf: SatchelError });
  t.throws(() => new DiskEngine({ tier: 'ssd', capacity: 0, path: '/tmp/x' }), { instanceOf: SatchelError });
  t.throws(() => new DiskEngine({ tier: 'ssd', capacity: MiB, path: '/tmp/x', compactDeadFraction: 1 }), { instanceOf: SatchelError });

  const unopened = new DiskEngine({ tier: 'ssd', capacity: MiB, path: '/nonexistent' });
  await expectCode(t, unopened.get('job', 'k'), 'UNAVAILABLE');
  await unopened.close();
  await engine.close();
  await expectCode(t, engine.get('job', 'k'), 'CLOSED');
  await expectCode(t, engine.put('job', 'k', Buffer.alloc(1), 0), 'CLOSED');
});

test('on ssd a GET of a small value answers in the same turn; a segment value, a key being written and hdd use the pool', async (t) => {
  const engine = await openEngine(t);
  await engine.put('job', 'small', Buffer.from('v1'), 0);
  const small = engine.get('job', 'small');
  t.false(small instanceof Promise, 'an inline value is read in the caller turn');
  t.deepEqual((small as { value: Buffer }).value, Buffer.from('v1'));
  t.is(engine.get('job', 'absent'), undefined);
  const large = Buffer.alloc(DEFAULT_INLINE_MAX, 7);
  await engine.put('job', 'large', large, 0);
  const fromSegment = engine.get('job', 'large');
  t.true(fromSegment instanceof Promise);
  t.deepEqual((await fromSegment)?.value, large);
  // A GET issued while a PUT of its key is in flight waits for it and reads the new value.
  const writing = engine.put('job', 'small', Buffer.from('v2'), 0);
  const during = engine.get('job', 'small');
  t.true(during instanceof Promise);
  t.deepEqual((await during)?.value, Buffer.from('v2'));
  await writing;
  await expectCode(t, engine.get('job\u0001x', 'k'), 'BAD_REQUEST');
  const hdd = await openEngine(t, { tier: 'hdd' });
  await hdd.put('job', 'small', Buffer.from('v1'), 0);
  const onHdd = hdd.get('job', 'small');
  t.true(onHdd instanceof Promise, 'hdd reads the index off the event loop');
  t.deepEqual((await onHdd)?.value, Buffer.from('v1'));
});

test('hdd emulation: every transfer pays the seek time and the bandwidth cap, one at a time', async (t) => {
  const engine = await openEngine(t, { tier: 'hdd', emulate: { seekMs: 10, bandwidthBytesPerSec: 20 * MiB } });
  await engine.put('job', 'k', Buffer.alloc(2 * MiB), 0);
  const start = performance.now();
  await Promise.all(Array.from({ length: 4 }, () => engine.get('job', 'k')));
  const elapsed = performance.now() - start;
  // 4 × (10 ms seek + 2 MiB at 20 MiB/s = 100 ms): the reads queue behind one head.
  t.true(elapsed >= 400, `4 reads took ${elapsed.toFixed(0)} ms`);
  // No emulation by default: no head to queue behind at all (a wall-clock bound failed on a loaded CI machine).
  t.is(EmulatedDevice.from(undefined), null);
  t.is(EmulatedDevice.from({ seekMs: 0, bandwidthBytesPerSec: 0 }), null);
});

test('through the data plane: a node on the ssd tier serves PUT, pipelined GET, STAT, LIST, DELETE and DROP_JOB', async (t) => {
  const secret = randomBytes(32);
  await t.throwsAsync(startStorageNode({ tier: 'ssd', capacity: MiB, secret, logger }), {
    instanceOf: SatchelError,
    message: /needs a data directory/,
  });
  const dir = await tempDir(t);
  const node = await startStorageNode({ tier: 'ssd', capacity: 64 * MiB, path: dir, secret, logger, host: '127.0.0.1' });
  t.teardown(() => node.close());
  t.is(node.server.engine.tier, 'ssd');
  const c = new NodeConnection(node.address, signToken(secret, 'job-a'), { timeoutMs: 5_000 });
  t.teardown(() => c.destroy());
  const large = randomBytes(3 * MiB);
  // Pipelined: the GETs are sent before the PUTs are answered, and still read them.
  const [putSmall, putLarge, getSmall, getLarge] = await Promise.all([
    c.request({ op: Op.PUT, epoch: 1, key: 'a/1', value: Buffer.from('one') }),
    c.request({ op: Op.PUT, flags: Flag.MANIFEST, epoch: 1, key: 'a/2', value: large }),
    c.request({ op: Op.GET, epoch: 1, key: 'a/1' }),
    c.request({ op: Op.GET, epoch: 1, key: 'a/2' }),
  ]);
  t.is(putSmall.status, Status.OK);
  t.is(putLarge.status, Status.OK);
  t.is(getSmall.body.toString(), 'one');
  t.true(getLarge.body.equals(large));
  t.is(getLarge.flags & Flag.MANIFEST, Flag.MANIFEST);
  t.true(node.server.pool.pooledBytes >= large.length, 'the receive buffer went back to the pool once written');
  const stat = await c.request({ op: Op.STAT, epoch: 1, key: 'a/1' });
  t.is(stat.arg, 3);
  const replaced = await c.request({ op: Op.PUT, epoch: 1, key: 'a/2', value: Buffer.from('two') });
  t.is(replaced.flags & Flag.REPLACED_MANIFEST, Flag.REPLACED_MANIFEST, 'a replaced large manifest is handed back');
  t.true(replaced.body.equals(large));
  const list = await c.request({ op: Op.LIST, epoch: 1, arg: 10, key: 'a/' });
  t.deepEqual(decodeKeyList(list.body), ['a/1', 'a/2']);
  t.is((await c.request({ op: Op.DELETE, epoch: 1, key: 'a/1' })).flags, Flag.EXISTED);
  t.is((await c.request({ op: Op.GET, epoch: 1, key: 'a/1' })).status, Status.NOT_FOUND);
  const admin = new NodeConnection(node.address, signToken(secret, ADMIN_SUBJECT), { timeoutMs: 5_000 });
  t.teardown(() => admin.destroy());
  const dropped = await admin.request({ op: Op.DROP_JOB, key: 'job-a' });
  t.is(dropped.status, Status.OK);
  t.is(dropped.arg, entryCost('a/2', 3));
  t.is(node.server.engine.used, 0);
});

for (const start of [42, 2024, 777]) {
  test(`random operations in flight together end in the state the DRAM engine reaches with the same calls (seed ${start})`, async (t) => {
    // Tiny segments and threshold: the run goes through many rotations and compactions.
    const engine = await openEngine(t, { inlineMax: KiB, segmentBytes: 128 * KiB });
    const model = new DramEngine(256 * MiB);
    let seed = start;
    const random = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const sizes = [0, 10, 500, KiB, 5 * KiB, 40 * KiB];
    for (let round = 0; round < 20; round++) {
      const calls: Promise<unknown>[] = [];
      for (let i = 0; i < 100; i++) {
        const job = `job-${random(3)}`;
        const key = `k${random(30)}`;
        const op = random(10);
        if (op < 6) {
          const value = randomBytes(sizes[random(sizes.length)]!);
          model.put(job, key, value, round);
          calls.push(Promise.resolve(engine.put(job, key, value, round)));
        } else if (op < 9) {
          model.delete(job, key);
          calls.push(Promise.resolve(engine.delete(job, key)));
        } else {
          const expected = model.get(job, key);
          calls.push(
            Promise.resolve(engine.get(job, key)).then((entry) => {
              if (expected === undefined) t.is(entry, undefined);
              else t.true(entry !== undefined && entry.flags === expected.flags && entry.value.equals(expected.value));
            }),
          );
        }
      }
      if (round % 7 === 6) {
        model.dropJob('job-1');
        calls.push(Promise.resolve(engine.dropJob('job-1')));
      }
      await Promise.all(calls);
    }
    await engine.whenIdle();
    t.is(engine.stats().lastCompactionError, null);
    t.true(engine.stats().compactions > 0);
    t.is(engine.used, model.used);
    const sorted = (usage: Map<string, number>) => [...usage].sort(([a], [b]) => (a < b ? -1 : 1));
    t.deepEqual(sorted(engine.usageByJob()), sorted(model.usageByJob()));
    for (const job of ['job-0', 'job-1', 'job-2']) {
      const keys = (await engine.list(job, '', '', 1000)).keys;
      t.deepEqual(keys, (await model.list(job, '', '', 1000)).keys);
      for (const key of keys) {
        const entry = (await engine.get(job, key))!;
        const expected = model.get(job, key)!;
        t.is(entry.flags, expected.flags);
        t.true(entry.value.equals(expected.value), `${job}/${key}`);
      }
    }
    // Closed segments keep at most the threshold's share of dead bytes.
    for (const s of engine.stats().segments) if (!s.active) t.true(s.dead / s.size <= 0.5);
  });
}

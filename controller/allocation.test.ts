import test from 'ava';
import type { NodeInfo } from '../proto/index.ts';
import { DEFAULT_BLOCK_SIZE, DEFAULT_CAPACITY, DEFAULT_MAX_VALUE_BYTES, allocateJob } from './allocation.ts';

const node = (id: string, tier = 'dram'): NodeInfo => ({ id, tier, address: `127.0.0.1:${id.length}`, capacity: 1 << 30, bandwidth: 1e9 });

test('every DRAM node, equal weights, in a stable order; other tiers left out', (t) => {
  const a = allocateJob({}, [node('dram-b'), node('ssd-a', 'ssd'), node('dram-a')]);
  t.is(a.tier, 'dram');
  t.deepEqual(
    a.nodes.map((n) => [n.id, n.weight]),
    [
      ['dram-a', 1],
      ['dram-b', 1],
    ],
  );
  t.deepEqual(allocateJob({}, [node('dram-a'), node('dram-b')]).nodes, a.nodes);
});

test('defaults for missing hints; hints used when given', (t) => {
  const d = allocateJob({}, [node('dram-a')]);
  t.is(d.reservation, DEFAULT_CAPACITY);
  t.is(d.blockSize, DEFAULT_BLOCK_SIZE);
  t.is(d.maxValueBytes, DEFAULT_MAX_VALUE_BYTES);
  const h = allocateJob({ capacity: 5e9, maxValueBytes: 4096 }, [node('dram-a')]);
  t.is(h.reservation, 5e9);
  t.is(h.maxValueBytes, 4096);
  // Zero means "no hint", not "nothing".
  t.is(allocateJob({ capacity: 0, maxValueBytes: 0 }, [node('dram-a')]).maxValueBytes, DEFAULT_MAX_VALUE_BYTES);
});

test('no DRAM node yet: an empty placement (the job gets a node when one registers)', (t) => {
  t.deepEqual(allocateJob({}, []).nodes, []);
});

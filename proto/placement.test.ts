import test from 'ava';
import {
  hashKey,
  keySlot,
  keySlotOfBytes,
  type PlacementNode,
  pickNode,
  pickNodes,
  SLOTS,
  slotRanges,
  writtenGenerations,
} from './index.ts';
import { crc16 } from './slot.ts';

const node = (id: string, weight = 1): PlacementNode => ({ id, address: `127.0.0.1:${1000 + id.length}`, weight });
const keys = Array.from({ length: 10_000 }, (_, i) => `map-${i % 97}/part-${i}`);

function owners(nodes: PlacementNode[]): string[] {
  return keys.map((key) => nodes[pickNode(nodes, keySlot(key))]!.id);
}

test('hashKey is a stable 32-bit unsigned hash', (t) => {
  t.is(hashKey(''), 0x811c9dc5);
  t.is(hashKey('a'), hashKey('a'));
  t.not(hashKey('a'), hashKey('b'));
  for (const key of ['a', 'map-3/part-7', 'é🙂', 'x'.repeat(1000)]) {
    const h = hashKey(key);
    t.true(Number.isInteger(h) && h >= 0 && h <= 0xffffffff, key);
  }
});

test("keySlot is Redis Cluster's HASH_SLOT: CRC16-XMODEM mod 16384, of the hash tag when there is one", (t) => {
  t.is(crc16(Buffer.from('123456789')), 0x31c3, 'the CRC16 check value Redis documents');
  // Slots redis-server's CLUSTER KEYSLOT gives.
  t.is(keySlot('foo'), 12182);
  t.is(keySlot('bar'), 5061);
  t.is(keySlot('somekey'), 11058);
  t.is(keySlot(''), 0);
  // Hash tags, as the cluster specification spells them out.
  t.is(keySlot('{user1000}.following'), keySlot('{user1000}.followers'));
  t.is(keySlot('{user1000}.following'), keySlot('user1000'));
  t.is(keySlot('foo{}{bar}'), crc16(Buffer.from('foo{}{bar}')) % SLOTS, 'an empty tag: the whole key');
  t.is(keySlot('foo{{bar}}zap'), keySlot('{bar'), 'the tag runs from the first { to the first } after it');
  t.is(keySlot('foo{bar}{zap}'), keySlot('bar'), 'the first tag only');
  t.is(keySlot('foo{bar'), crc16(Buffer.from('foo{bar')) % SLOTS, 'no closing brace: the whole key');
  // Strings and bytes agree, ASCII or not, tag or not.
  for (const key of ['foo', 'é🙂', 'a{é}b', '{🙂}x', 'x{y', 'k'.repeat(300), 'ключ/{тег}/1'])
    t.is(keySlot(key), keySlotOfBytes(Buffer.from(key)), key);
});

test('pickNode is deterministic and does not depend on the order of the nodes', (t) => {
  const nodes = [node('dram-a'), node('dram-b'), node('dram-c'), node('dram-d')];
  const first = owners(nodes);
  t.deepEqual(owners(nodes), first);
  t.deepEqual(owners([...nodes].reverse()), first);
  t.deepEqual(owners([nodes[2]!, nodes[0]!, nodes[3]!, nodes[1]!]), first);
  // Every node gets some keys.
  t.is(new Set(first).size, 4);
});

test('a single node owns every key', (t) => {
  const nodes = [node('only')];
  t.true(keys.every((key) => pickNode(nodes, keySlot(key)) === 0));
});

test('weights are respected over 10k keys', (t) => {
  const nodes = [node('n1', 1), node('n2', 2), node('n3', 1), node('n4', 4)];
  const counts = new Map<string, number>();
  for (const id of owners(nodes)) counts.set(id, (counts.get(id) ?? 0) + 1);
  const total = 1 + 2 + 1 + 4;
  for (const n of nodes) {
    const share = (counts.get(n.id) ?? 0) / keys.length;
    const want = n.weight / total;
    t.true(Math.abs(share - want) < 0.03, `${n.id}: share ${share.toFixed(3)}, expected ${want.toFixed(3)}`);
  }
});

test('equal weights spread keys evenly', (t) => {
  const nodes = [node('a'), node('b'), node('c')];
  const counts = new Map<string, number>();
  for (const id of owners(nodes)) counts.set(id, (counts.get(id) ?? 0) + 1);
  for (const n of nodes) {
    const share = (counts.get(n.id) ?? 0) / keys.length;
    t.true(Math.abs(share - 1 / 3) < 0.03, `${n.id}: ${share}`);
  }
});

test('a node of weight 0 owns nothing', (t) => {
  const nodes = [node('a'), node('draining', 0), node('b')];
  t.false(owners(nodes).includes('draining'));
});

test('adding a node moves only keys that move to the new node, about 1/(n+1) of them', (t) => {
  const before = [node('a'), node('b'), node('c')];
  const after = [...before, node('d')];
  const was = owners(before);
  const now = owners(after);
  let moved = 0;
  for (let i = 0; i < keys.length; i++) {
    if (was[i] === now[i]) continue;
    moved++;
    if (now[i] !== 'd') {
      t.fail(`${keys[i]} moved from ${was[i]} to ${now[i]}, not to the new node`);
      return;
    }
  }
  const share = moved / keys.length;
  t.true(Math.abs(share - 0.25) < 0.03, `moved ${share}`);
});

test('removing a node moves only the keys it owned', (t) => {
  const before = [node('a'), node('b'), node('c'), node('d')];
  const after = before.filter((n) => n.id !== 'b');
  const was = owners(before);
  const now = owners(after);
  for (let i = 0; i < keys.length; i++) {
    if (was[i] !== 'b' && was[i] !== now[i]) {
      t.fail(`${keys[i]} moved from ${was[i]} to ${now[i]} though its node stayed`);
      return;
    }
  }
  t.pass();
});

test('raising one weight only moves keys onto that node', (t) => {
  const before = [node('a'), node('b'), node('c')];
  const after = [node('a'), node('b', 3), node('c')];
  const was = owners(before);
  const now = owners(after);
  for (let i = 0; i < keys.length; i++) {
    if (was[i] !== now[i] && now[i] !== 'b') {
      t.fail(`${keys[i]} moved from ${was[i]} to ${now[i]}`);
      return;
    }
  }
  t.pass();
});

test("pickNodes: distinct nodes best first, the first is pickNode's; dropping a node keeps the others in order", (t) => {
  const nodes = Array.from({ length: 5 }, (_, i) => ({ id: `n${i}`, address: `h:${i}`, weight: 1 }));
  for (let k = 0; k < 2000; k++) {
    const hash = keySlot(`key-${k}`);
    const three = pickNodes(nodes, hash, 3);
    t.is(new Set(three).size, 3);
    t.is(three[0], pickNode(nodes, hash));
    const gone = three[1]!;
    const without = nodes.filter((_, i) => i !== gone);
    const after = pickNodes(without, hash, 3).map((i) => without[i]!.id);
    // The survivors keep their order; one new node fills the gap at the end.
    t.deepEqual(after.slice(0, 2), [nodes[three[0]!]!.id, nodes[three[2]!]!.id]);
  }
  t.deepEqual(pickNodes(nodes, 1, 9).length, 5, 'no more than there are nodes');
  t.deepEqual(pickNodes([{ id: 'a', weight: 0 }], 1, 2), [], 'weightless nodes hold nothing');
});

test('slotRanges covers every slot once, in runs of whole buckets, each run owned by pickNode', (t) => {
  const nodes = [node('dram-a'), node('dram-b'), node('dram-c', 2)];
  const ranges = slotRanges(nodes);
  let next = 0;
  for (const range of ranges) {
    t.is(range.start, next);
    t.true(range.end >= range.start && (range.end + 1) % 16 === 0);
    for (const slot of [range.start, range.end, (range.start + range.end) >> 1]) t.is(pickNode(nodes, slot), range.node);
    next = range.end + 1;
  }
  t.is(next, SLOTS);
  for (let i = 1; i < ranges.length; i++) t.not(ranges[i]!.node, ranges[i - 1]!.node, 'neighbouring runs have different owners');
  // Two nodes: a few hundred runs (what CLUSTER SLOTS lists), not thousands.
  const two = slotRanges([node('dram-a'), node('dram-b')]);
  t.true(two.length > 100 && two.length < 800, `${two.length} runs`);
  t.deepEqual(slotRanges([node('only')]), [{ start: 0, end: SLOTS - 1, node: 0 }]);
  t.deepEqual(slotRanges([]), [{ start: 0, end: SLOTS - 1, node: -1 }]);
});

test('writtenGenerations: every generation but the remnants, the placement’s own array when it has none', (t) => {
  const node = (id: string): PlacementNode => ({ id, address: `${id}:1`, weight: 1 });
  const generations = [[node('a')], [node('b')], [node('c')]];
  t.is(writtenGenerations({ generations }), generations);
  t.deepEqual(
    writtenGenerations({ generations, remnants: 1 }).map((g) => g[0]!.id),
    ['a', 'b'],
  );
});

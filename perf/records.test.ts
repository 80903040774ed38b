import test from 'ava';
import {
  addChecksums,
  generateRecords,
  KEY_BYTES,
  mergeSortedRuns,
  partitionBounds,
  partitionOf,
  RECORD_BYTES,
  sortRecords,
  summarize,
} from './records.ts';

/** Reference order: keys compared bytewise, as gensort's valsort does. */
function keysOf(records: Buffer): string[] {
  const keys: string[] = [];
  for (let o = 0; o < records.length; o += RECORD_BYTES) keys.push(records.toString('hex', o, o + KEY_BYTES));
  return keys;
}

test('generation is deterministic and slices concatenate to the whole input', (t) => {
  const whole = generateRecords('seed', 0, 1000);
  t.is(whole.length, 1000 * RECORD_BYTES);
  t.true(whole.equals(generateRecords('seed', 0, 1000)));
  t.true(Buffer.concat([generateRecords('seed', 0, 333), generateRecords('seed', 333, 667)]).equals(whole));
  t.false(generateRecords('other', 0, 1000).equals(whole));
});

test('sortRecords orders by the whole 10-byte key and keeps every record', (t) => {
  const input = generateRecords('sort', 0, 5000);
  // Records sharing their first two key bytes, and some sharing all but the last, exercise the bucket sort.
  input.fill(0x42, 0, 2);
  input.copy(input, RECORD_BYTES, 0, KEY_BYTES - 1);
  input.copy(input, 2 * RECORD_BYTES, 0, KEY_BYTES);
  const sorted = sortRecords(input);
  t.deepEqual(keysOf(sorted), keysOf(input).sort());
  t.is(summarize(sorted).checksum, summarize(input).checksum);
  t.true(summarize(sorted).sorted);
  t.false(summarize(input).sorted);
});

test('partition bounds split sorted records into key ranges that cover them all', (t) => {
  const sorted = sortRecords(generateRecords('bounds', 0, 3000));
  const bounds = partitionBounds(sorted, 7);
  t.is(bounds[0], 0);
  t.is(bounds[7], 3000);
  for (let p = 0; p < 7; p++) {
    t.true(bounds[p]! <= bounds[p + 1]!);
    for (let i = bounds[p]!; i < bounds[p + 1]!; i++) t.is(partitionOf(sorted, i, 7), p);
  }
});

test('mergeSortedRuns merges runs of any length, empty ones included', (t) => {
  const runs = [0, 10, 0, 250, 1, 77].map((n, i) => sortRecords(generateRecords(`run-${i}`, 0, n)));
  const merged = mergeSortedRuns(runs);
  t.deepEqual(keysOf(merged), runs.flatMap(keysOf).sort());
  t.deepEqual(mergeSortedRuns([]), Buffer.alloc(0));
});

test('summaries: checksums are order-independent and catch a changed, lost or doubled record', (t) => {
  const a = generateRecords('sum', 0, 100);
  const b = generateRecords('sum', 100, 100);
  const whole = summarize(Buffer.concat([a, b]));
  t.is(addChecksums(summarize(a).checksum, summarize(b).checksum), whole.checksum);
  t.is(whole.records, 200);
  const changed = Buffer.from(a);
  changed[RECORD_BYTES * 3 + 50]! ^= 1;
  t.not(summarize(changed).checksum, summarize(a).checksum);
  t.not(summarize(a.subarray(RECORD_BYTES)).checksum, summarize(a).checksum);
  t.not(summarize(Buffer.concat([a, a.subarray(0, RECORD_BYTES)])).checksum, summarize(a).checksum);
  t.is(summarize(a.subarray(1)).records, -1, 'a partial record is flagged');
  // Unaligned views (as a store may hand back) summarize the same.
  const shifted = Buffer.alloc(a.length + 1);
  a.copy(shifted, 1);
  t.is(summarize(shifted.subarray(1)).checksum, summarize(a).checksum);
  t.is(summarize(a).firstKey, a.toString('hex', 0, KEY_BYTES));
});

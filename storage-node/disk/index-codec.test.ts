import test from 'ava';
import { SatchelError } from '../../proto/index.ts';
import {
  checkJob,
  checkKey,
  decodeIndex,
  decodeKey,
  encodeInline,
  encodeInSegment,
  encodeKey,
  IN_SEGMENT,
  INDEX_HEADER,
  INLINE,
  jobKey,
  jobRange,
  listRange,
  splitFullKey,
} from './index-codec.ts';

const U32 = 2 ** 32 - 1;

test('keys are stored so that byte order is JavaScript string order (CESU-8), and decode back exactly', (t) => {
  const keys = ['', 'a', 'é', '日本', '\u{1F600}', '\uFFFF', '\uE000', 'a\u0000b', '\uD800', 'x\uDC00y', '\uD7FF\u{10FFFF}'];
  for (const key of keys) t.is(decodeKey(encodeKey(key)), key);
  t.deepEqual(encodeKey('plain ascii'), Buffer.from('plain ascii'));
  const byBytes = [...keys].sort((a, b) => Buffer.compare(encodeKey(a), encodeKey(b)));
  t.deepEqual(byBytes, [...keys].sort());
});

test('bytes encodeKey never makes decode to a string, never a throw', (t) => {
  // Truncated and stray CESU-8 lead bytes: what a corrupt index key would hold.
  for (const bytes of [
    Buffer.of(0xed),
    Buffer.of(0xed, 0xa0),
    Buffer.of(0x61, 0xed, 0xb0),
    Buffer.of(0xc3),
    Buffer.of(0xff, 0xed, 0x80, 0x80),
  ]) {
    t.is(typeof decodeKey(bytes), 'string', bytes.toString('hex'));
  }
});

const inline: { name: string; flags: number; epoch: number; seq: number; value: Buffer }[] = [
  { name: 'empty value, zero version', flags: 0, epoch: 0, seq: 0, value: Buffer.alloc(0) },
  { name: 'small value', flags: 1, epoch: 3, seq: 7, value: Buffer.from('hello') },
  { name: 'largest fields', flags: 0xffff, epoch: U32, seq: U32, value: Buffer.alloc(64 * 1024 - 1, 0xab) },
];
for (const c of inline) {
  test(`an inline index entry round-trips: ${c.name}`, (t) => {
    const raw = encodeInline(c.flags, c.epoch, c.seq, c.value);
    t.is(raw.length, INDEX_HEADER + c.value.length);
    const entry = decodeIndex(raw);
    t.like(entry, { kind: INLINE, flags: c.flags, epoch: c.epoch, seq: c.seq, length: c.value.length });
    t.true(entry.value.equals(c.value));
  });
}

const inSegment: { name: string; flags: number; epoch: number; seq: number; segment: number; offset: number; length: number }[] = [
  { name: 'first record of the first segment', flags: 0, epoch: 0, seq: 1, segment: 1, offset: 0, length: 64 * 1024 },
  { name: 'largest fields', flags: 0xffff, epoch: U32, seq: U32, segment: U32, offset: 2 ** 31, length: U32 },
];
for (const c of inSegment) {
  test(`a segment index entry round-trips: ${c.name}`, (t) => {
    const entry = decodeIndex(encodeInSegment(c.flags, c.epoch, c.seq, c.segment, c.offset, c.length));
    t.like(entry, { kind: IN_SEGMENT, flags: c.flags, epoch: c.epoch, seq: c.seq, segment: c.segment, offset: c.offset, length: c.length });
    t.is(entry.value.length, 0);
  });
}

const segmentEntry = encodeInSegment(2, 3, 4, 5, 6, 7);
const malformed: { name: string; raw: Buffer }[] = [
  { name: 'empty', raw: Buffer.alloc(0) },
  { name: 'shorter than the header', raw: encodeInline(0, 1, 1, Buffer.alloc(0)).subarray(0, INDEX_HEADER - 1) },
  { name: 'a segment entry cut short', raw: segmentEntry.subarray(0, segmentEntry.length - 1) },
  { name: 'a segment entry with a byte more', raw: Buffer.concat([segmentEntry, Buffer.of(0)]) },
  { name: 'an unknown kind', raw: Buffer.concat([Buffer.of(2), segmentEntry.subarray(1)]) },
  { name: 'kind 0xff', raw: Buffer.alloc(INDEX_HEADER, 0xff) },
];
for (const c of malformed) {
  test(`a malformed index entry is UNAVAILABLE (corrupt), not a crash: ${c.name}`, (t) => {
    const error = t.throws(() => decodeIndex(c.raw), { instanceOf: SatchelError });
    t.is(error?.code, 'UNAVAILABLE');
  });
}

test('job and key come back from the encoded LevelDB key, whatever the key holds', (t) => {
  for (const [jobId, key] of [
    ['job', ''],
    ['job', 'a/b'],
    ['j-1', 'with\u0001one'],
    ['0', 'nul\u0000inside'],
    ['job', '\u{1F600}\uD800'],
  ] as const) {
    t.deepEqual(splitFullKey(encodeKey(jobKey(jobId, key))), { jobId, key });
  }
  for (const raw of [Buffer.from('no-separator'), Buffer.from('\u0001key')]) {
    t.is(t.throws(() => splitFullKey(raw), { instanceOf: SatchelError })?.code, 'UNAVAILABLE');
  }
});

test('job ids and keys the index cannot hold are BAD_REQUEST', (t) => {
  for (const jobId of ['', 'Bad Job', '-lead', '../etc', 'job\u0001x', 'a'.repeat(64), 42 as unknown as string]) {
    t.is(t.throws(() => checkJob(jobId), { instanceOf: SatchelError })?.code, 'BAD_REQUEST', String(jobId));
    t.is(t.throws(() => jobKey(jobId, 'k'), { instanceOf: SatchelError })?.code, 'BAD_REQUEST', String(jobId));
  }
  t.notThrows(() => checkJob('a'.repeat(63)));
  for (const key of [7 as unknown as string, 'k'.repeat(30_000)]) {
    t.is(t.throws(() => checkKey(key), { instanceOf: SatchelError })?.code, 'BAD_REQUEST');
  }
  t.notThrows(() => checkKey('k'.repeat(21_000)));
});

/** Whether `range` (LevelDB's gt/gte/lt) holds `key`. */
function within(range: { gt?: Buffer; gte?: Buffer; lt: Buffer }, key: Buffer): boolean {
  if (range.gt !== undefined && Buffer.compare(key, range.gt) <= 0) return false;
  if (range.gte !== undefined && Buffer.compare(key, range.gte) < 0) return false;
  return Buffer.compare(key, range.lt) < 0;
}

test("a job's range holds its keys and no other job's, also of job ids it is a prefix of", (t) => {
  const range = jobRange('a');
  for (const key of ['', 'k', '\u{10FFFF}', '\uFFFF\uFFFF']) t.true(within(range, encodeKey(jobKey('a', key))), key);
  for (const [jobId, key] of [
    ['a-b', ''],
    ['ab', 'k'],
    ['b', ''],
    ['0', '\uFFFF'],
  ] as const)
    t.false(within(range, encodeKey(jobKey(jobId, key))), `${jobId}/${key}`);
});

const listing: { prefix: string; after: string; inside: string[]; outside: string[] }[] = [
  { prefix: '', after: '', inside: ['', 'a', '\u{1F600}', '\uFFFF'], outside: [] },
  { prefix: 'x/', after: '', inside: ['x/', 'x/1', 'x/\uFFFF', 'x/\u{1F600}'], outside: ['x', 'x.', 'y/', 'w/1'] },
  { prefix: 'x/', after: 'x/5', inside: ['x/6', 'x/50', 'x/\uFFFF'], outside: ['x/', 'x/4', 'x/5', 'y'] },
  // A cursor before the prefix lists the whole prefix.
  { prefix: 'x/', after: 'a', inside: ['x/', 'x/1'], outside: ['a', 'b'] },
];
for (const c of listing) {
  test(`LIST's range: prefix ${JSON.stringify(c.prefix)} after ${JSON.stringify(c.after)}`, (t) => {
    const { range, keyStart } = listRange('job', c.prefix, c.after);
    for (const key of c.inside) {
      const full = encodeKey(jobKey('job', key));
      t.true(within(range, full), `holds ${JSON.stringify(key)}`);
      t.is(decodeKey(full.subarray(keyStart)), key);
    }
    for (const key of c.outside) t.false(within(range, encodeKey(jobKey('job', key))), `not ${JSON.stringify(key)}`);
    t.false(within(range, encodeKey(jobKey('other', c.prefix))), "not another job's");
  });
}

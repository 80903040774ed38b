import test from 'ava';
import {
  COPY_THRESHOLD,
  Field,
  FrameDecoder,
  type FrameView,
  FrameWriter,
  HEADER_SIZE,
  MAX_KEY_BYTES,
  Op,
  PROTOCOL_VERSION,
  SatchelError,
} from './index.ts';

interface Decoded {
  code: number;
  flags: number;
  id: number;
  epoch: number;
  arg: number;
  key: string;
  value: Buffer;
}

interface Oversize {
  id: number;
  code: number;
  bodyLength: number;
  bufLength: number;
}

/** A decoder that copies out every frame (the FrameView is reused between callbacks). */
function collector(maxBody = 1 << 20) {
  const frames: Decoded[] = [];
  const oversize: Oversize[] = [];
  const errors: SatchelError[] = [];
  const decoder = new FrameDecoder({
    maxBody,
    onFrame(f: FrameView) {
      const keyEnd = f.bodyStart + f.keyLength;
      frames.push({
        code: f.code,
        flags: f.flags,
        id: f.id,
        epoch: f.epoch,
        arg: f.arg,
        key: f.buf.toString('utf8', f.bodyStart, keyEnd),
        value: Buffer.from(f.buf.subarray(keyEnd, f.bodyStart + f.bodyLength)),
      });
    },
    onOversize(f: FrameView) {
      oversize.push({ id: f.id, code: f.code, bodyLength: f.bodyLength, bufLength: f.buf.length });
    },
    onError(error: SatchelError) {
      errors.push(error);
    },
  });
  return { decoder, frames, oversize, errors };
}

interface Spec {
  code: number;
  flags: number;
  id: number;
  epoch: number;
  arg: number;
  key: string;
  value: Buffer | null;
}

/** Encodes frames through a FrameWriter whose sink is an array of chunks; returns the chunks and their concatenation. */
function encode(specs: Spec[]): { chunks: Uint8Array[]; bytes: Buffer } {
  const chunks: Uint8Array[] = [];
  const writer = new FrameWriter({ write: (chunk) => chunks.push(chunk) });
  for (const s of specs) writer.frame(s.code, s.flags, s.id, s.epoch, s.arg, s.key, s.value);
  writer.flush();
  // Copy each chunk: slab segments are views the writer will not touch again, but the test should not rely on it.
  return { chunks, bytes: Buffer.concat(chunks.map((c) => Buffer.from(c))) };
}

function expected(specs: Spec[]): Decoded[] {
  return specs.map((s) => ({
    code: s.code,
    flags: s.flags,
    id: s.id,
    epoch: s.epoch,
    arg: s.arg,
    key: s.key,
    value: s.value === null ? Buffer.alloc(0) : Buffer.from(s.value),
  }));
}

function pattern(length: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

const SMALL: Spec[] = [
  { code: Op.HELLO, flags: 0, id: 0, epoch: 0, arg: 0, key: 'v1.job-1.token', value: null },
  { code: Op.PUT, flags: 0x0001, id: 1, epoch: 7, arg: 0, key: 'map-3/part-7', value: Buffer.from('hello') },
  { code: Op.GET, flags: 0, id: 0xffffffff, epoch: 0xfffffffe, arg: 0xabcdef01, key: 'ключ-é-🙂', value: null },
  { code: Op.LIST, flags: 0xffff, id: 3, epoch: 1, arg: 100, key: '', value: Buffer.from('after') },
  { code: Op.PING, flags: 0, id: 4, epoch: 0, arg: 0, key: '', value: null },
];

test('writer → decoder round trip keeps every header field, key and value', (t) => {
  const specs: Spec[] = [
    ...SMALL,
    { code: Op.PUT, flags: 0, id: 5, epoch: 2, arg: 0, key: 'medium', value: pattern(16 * 1024, 1) }, // copied into the slab
    { code: Op.PUT, flags: 0, id: 6, epoch: 2, arg: 0, key: 'large', value: pattern(16 * 1024 + 1, 2) }, // zero-copy segment
    { code: Op.PUT, flags: 0, id: 7, epoch: 2, arg: 0, key: 'k'.repeat(MAX_KEY_BYTES), value: pattern(300 * 1024, 3) },
  ];
  const { chunks } = encode(specs);
  const { decoder, frames, errors, oversize } = collector();
  for (const chunk of chunks) decoder.push(Buffer.from(chunk));
  t.deepEqual(errors, []);
  t.deepEqual(oversize, []);
  t.deepEqual(frames, expected(specs));
});

test('writer lays out the header as frame.ts documents it', (t) => {
  const { bytes } = encode([{ code: Op.PUT, flags: 0x0102, id: 0x01020304, epoch: 9, arg: 77, key: 'ab', value: Buffer.from('xyz') }]);
  t.is(bytes.length, HEADER_SIZE + 5);
  t.is(bytes.readUInt32BE(Field.BodyLength), 5);
  t.is(bytes[Field.Version], PROTOCOL_VERSION);
  t.is(bytes[Field.Code], Op.PUT);
  t.is(bytes.readUInt16BE(Field.Flags), 0x0102);
  t.is(bytes.readUInt32BE(Field.Id), 0x01020304);
  t.is(bytes.readUInt32BE(Field.Epoch), 9);
  t.is(bytes.readUInt32BE(Field.Arg), 77);
  t.is(bytes.readUInt16BE(Field.KeyLength), 2);
  t.is(bytes.readUInt16BE(Field.Reserved), 0);
  t.is(bytes.toString('utf8', HEADER_SIZE), 'abxyz');
});

test('a UTF-8 key is measured in bytes, not UTF-16 units', (t) => {
  const key = 'é🙂';
  const { bytes } = encode([{ code: Op.GET, flags: 0, id: 1, epoch: 0, arg: 0, key, value: null }]);
  t.is(bytes.readUInt16BE(Field.KeyLength), Buffer.byteLength(key));
  const { decoder, frames } = collector();
  decoder.push(bytes);
  t.is(frames[0]!.key, key);
});

test('frames split at every byte boundary decode the same', (t) => {
  const specs = SMALL;
  const { bytes } = encode(specs);
  const want = expected(specs);
  for (let cut = 0; cut <= bytes.length; cut++) {
    const { decoder, frames, errors } = collector();
    decoder.push(bytes.subarray(0, cut));
    decoder.push(bytes.subarray(cut));
    if (errors.length > 0 || frames.length !== want.length) {
      t.fail(`split at ${cut}: ${frames.length} frames, errors ${errors.map((e) => e.message).join(', ')}`);
      return;
    }
    t.deepEqual(frames, want, `split at ${cut}`);
  }
});

test('frames pushed one byte at a time, and in three pieces at every pair of cuts, decode the same', (t) => {
  const specs = SMALL.slice(1, 4);
  const { bytes } = encode(specs);
  const want = expected(specs);
  {
    const { decoder, frames } = collector();
    for (let i = 0; i < bytes.length; i++) decoder.push(bytes.subarray(i, i + 1));
    t.deepEqual(frames, want);
  }
  let mismatches = 0;
  for (let a = 0; a <= bytes.length; a++) {
    for (let b = a; b <= bytes.length; b++) {
      const { decoder, frames } = collector();
      decoder.push(bytes.subarray(0, a));
      decoder.push(bytes.subarray(a, b));
      decoder.push(bytes.subarray(b));
      if (JSON.stringify(frames) !== JSON.stringify(want)) mismatches++;
    }
  }
  t.is(mismatches, 0);
});

test('a large body spanning many chunks is assembled once and handed out as owned', (t) => {
  const value = pattern(1024 * 1024 + 13, 9);
  const { bytes } = encode([{ code: Op.PUT, flags: 0, id: 42, epoch: 1, arg: 0, key: 'big', value }]);
  const owned: boolean[] = [];
  let got: Buffer | null = null;
  const decoder = new FrameDecoder({
    maxBody: 2 << 20,
    onFrame(f) {
      owned.push(f.owned);
      got = Buffer.from(f.buf.subarray(f.bodyStart + f.keyLength, f.bodyStart + f.bodyLength));
    },
    onOversize: () => t.fail('oversize'),
    onError: (e) => t.fail(e.message),
  });
  for (let i = 0; i < bytes.length; i += 65536) decoder.push(bytes.subarray(i, i + 65536));
  t.deepEqual(owned, [true]);
  t.true(got !== null && (got as Buffer).equals(value));
});

test('many frames in one chunk are all decoded, in order, as views of that chunk', (t) => {
  const specs: Spec[] = Array.from({ length: 1000 }, (_, i) => ({
    code: i % 2 === 0 ? Op.PUT : Op.GET,
    flags: 0,
    id: i + 1,
    epoch: 3,
    arg: i,
    key: `key-${i}`,
    value: i % 2 === 0 ? Buffer.from(`value-${i}`) : null,
  }));
  const { bytes } = encode(specs);
  const owned: boolean[] = [];
  const { decoder, frames } = collector();
  const inner = new FrameDecoder({
    maxBody: 1 << 20,
    onFrame: (f) => owned.push(f.owned),
    onOversize: () => {},
    onError: () => {},
  });
  decoder.push(bytes);
  inner.push(bytes);
  t.deepEqual(frames, expected(specs));
  t.true(owned.every((o) => o === false));
});

test('an oversize body is reported with its header, skipped, and the next frame still decoded', (t) => {
  const specs: Spec[] = [
    { code: Op.PUT, flags: 0, id: 1, epoch: 0, arg: 0, key: 'a', value: Buffer.from('small') },
    { code: Op.PUT, flags: 0, id: 2, epoch: 5, arg: 0, key: 'too-big', value: pattern(5000, 4) },
    { code: Op.GET, flags: 0, id: 3, epoch: 0, arg: 0, key: 'b', value: null },
  ];
  const { bytes } = encode(specs);
  const want = expected([specs[0]!, specs[2]!]);
  // Whole, and split at every boundary (the skip must work across chunks too).
  for (let cut = 0; cut <= bytes.length; cut += 97) {
    const { decoder, frames, oversize, errors } = collector(1024);
    decoder.push(bytes.subarray(0, cut));
    decoder.push(bytes.subarray(cut));
    t.deepEqual(errors, []);
    t.deepEqual(oversize, [{ id: 2, code: Op.PUT, bodyLength: 'too-big'.length + 5000, bufLength: 0 }], `cut ${cut}`);
    t.deepEqual(frames, want, `cut ${cut}`);
    t.false(decoder.dead);
  }
});

test('a body exactly at maxBody is accepted, one byte more is oversize', (t) => {
  const { bytes } = encode([
    { code: Op.PUT, flags: 0, id: 1, epoch: 0, arg: 0, key: 'k', value: Buffer.alloc(99) },
    { code: Op.PUT, flags: 0, id: 2, epoch: 0, arg: 0, key: 'k', value: Buffer.alloc(100) },
  ]);
  const { decoder, frames, oversize } = collector(100);
  decoder.push(bytes);
  t.deepEqual(
    frames.map((f) => f.id),
    [1],
  );
  t.deepEqual(
    oversize.map((f) => f.id),
    [2],
  );
});

function header(fields: { bodyLength: number; version?: number; keyLength: number; reserved?: number; id?: number }): Buffer {
  const b = Buffer.alloc(HEADER_SIZE);
  b.writeUInt32BE(fields.bodyLength, Field.BodyLength);
  b[Field.Version] = fields.version ?? PROTOCOL_VERSION;
  b[Field.Code] = Op.PUT;
  b.writeUInt32BE(fields.id ?? 1, Field.Id);
  b.writeUInt16BE(fields.keyLength, Field.KeyLength);
  b.writeUInt16BE(fields.reserved ?? 0, Field.Reserved);
  return b;
}

const MALFORMED: [string, Buffer, RegExp][] = [
  ['wrong version', header({ bodyLength: 4, keyLength: 1, version: 2 }), /version/],
  ['version 0', header({ bodyLength: 4, keyLength: 1, version: 0 }), /version/],
  ['reserved field not zero', header({ bodyLength: 4, keyLength: 1, reserved: 1 }), /reserved/],
  ['key longer than the body', header({ bodyLength: 3, keyLength: 4 }), /key length/],
  ['key over MAX_KEY_BYTES', header({ bodyLength: MAX_KEY_BYTES + 10, keyLength: MAX_KEY_BYTES + 1 }), /exceeds/],
];

for (const [name, bad, message] of MALFORMED) {
  test(`malformed header (${name}) → BAD_REQUEST and the decoder is dead`, (t) => {
    const good = encode([{ code: Op.GET, flags: 0, id: 9, epoch: 0, arg: 0, key: 'x', value: null }]).bytes;
    const before = encode([{ code: Op.GET, flags: 0, id: 8, epoch: 0, arg: 0, key: 'y', value: null }]).bytes;
    for (const split of [false, true]) {
      const { decoder, frames, errors } = collector();
      const stream = Buffer.concat([before, bad, Buffer.alloc(64, 1), good]);
      if (split) for (let i = 0; i < stream.length; i++) decoder.push(stream.subarray(i, i + 1));
      else decoder.push(stream);
      t.deepEqual(
        frames.map((f) => f.id),
        [8],
        'the frame before the bad header is decoded',
      );
      t.is(errors.length, 1, 'one error, not one per later chunk');
      t.true(errors[0] instanceof SatchelError);
      t.is(errors[0]!.code, 'BAD_REQUEST');
      t.regex(errors[0]!.message, message);
      t.true(decoder.dead);
      decoder.push(good);
      t.is(frames.length, 1, 'a dead decoder decodes nothing more');
      t.is(errors.length, 1);
    }
  });
}

test('a key of exactly MAX_KEY_BYTES is accepted', (t) => {
  const key = 'z'.repeat(MAX_KEY_BYTES);
  const { bytes } = encode([{ code: Op.GET, flags: 0, id: 1, epoch: 0, arg: 0, key, value: null }]);
  const { decoder, frames, errors } = collector();
  decoder.push(bytes);
  t.deepEqual(errors, []);
  t.is(frames[0]!.key, key);
});

test('writer.pendingBytes counts what is encoded but not flushed; flush hands it over and resets', (t) => {
  const chunks: Uint8Array[] = [];
  const writer = new FrameWriter({ write: (c) => chunks.push(c) });
  t.is(writer.pendingBytes, 0);
  writer.frame(Op.PUT, 0, 1, 0, 0, 'key', Buffer.from('value'));
  t.is(writer.pendingBytes, HEADER_SIZE + 8);
  t.is(chunks.length, 0, 'nothing written before flush');
  writer.frame(Op.PUT, 0, 2, 0, 0, 'big', Buffer.alloc(100 * 1024));
  writer.flush();
  t.is(writer.pendingBytes, 0);
  t.is(
    chunks.reduce((n, c) => n + c.length, 0),
    2 * HEADER_SIZE + 8 + 3 + 100 * 1024,
  );
  writer.flush();
  t.is(
    chunks.reduce((n, c) => n + c.length, 0),
    2 * HEADER_SIZE + 8 + 3 + 100 * 1024,
    'an empty flush writes nothing',
  );
});

test('writer flushes by itself once a lot is queued, and corks a batch of several chunks', (t) => {
  const writes: number[] = [];
  let corks = 0;
  let uncorks = 0;
  const writer = new FrameWriter({ write: (c) => writes.push(c.length), cork: () => corks++, uncork: () => uncorks++ });
  for (let i = 0; i < 10; i++) writer.frame(Op.PUT, 0, i, 0, 0, `k${i}`, Buffer.alloc(64 * 1024));
  t.true(writes.length > 0, 'flushed without an explicit flush');
  t.true(corks >= 1);
  t.is(corks, uncorks);
  writer.flush();
  t.is(
    writes.reduce((a, b) => a + b, 0),
    10 * (HEADER_SIZE + 2 + 64 * 1024),
  );
});

test('writer hands a by-reference value its `sent` callback with that very chunk; a copied value gets none', (t) => {
  const writes: { chunk: Uint8Array; done: ((error?: Error | null) => void) | undefined }[] = [];
  const writer = new FrameWriter({ write: (chunk, done) => writes.push({ chunk, done }) });
  const big = Buffer.alloc(COPY_THRESHOLD + 1, 7);
  const other = Buffer.alloc(COPY_THRESHOLD + 2, 8);
  const sent: string[] = [];
  writer.frame(Op.GET, 0, 1, 0, 0, '', Buffer.from('small'), () => sent.push('small'));
  writer.frame(Op.GET, 0, 2, 0, 0, '', big, () => sent.push('big'));
  writer.frame(Op.GET, 0, 3, 0, 0, '', other); // by reference, no callback
  writer.frame(Op.GET, 0, 4, 0, 0, 'after', null);
  writer.flush();
  const withCallback = writes.filter((w) => w.done !== undefined);
  t.is(withCallback.length, 1);
  t.is(withCallback[0]!.chunk, big, 'the callback rides with the value itself, not a header segment');
  t.true(writes.some((w) => w.chunk === other && w.done === undefined));
  withCallback[0]!.done!();
  t.deepEqual(sent, ['big'], 'a value copied into the slab is free at once: no callback');
  // The next batch starts clean.
  writes.length = 0;
  writer.frame(Op.GET, 0, 5, 0, 0, '', other);
  writer.flush();
  t.true(writes.every((w) => w.done === undefined));
});

test('allocate sees the frame header; abandon skips the rest of a frame being assembled into a buffer, undelivered', (t) => {
  const first = pattern(5000, 1);
  const { bytes } = encode([
    { code: 0, flags: 0, id: 7, epoch: 0, arg: 0, key: '', value: first },
    { code: 0, flags: 0, id: 8, epoch: 0, arg: 0, key: '', value: Buffer.from('next') },
  ]);
  const target = Buffer.alloc(5000);
  const seen: { size: number; id: number; keyLength: number }[] = [];
  const delivered: number[] = [];
  const decoder = new FrameDecoder({
    maxBody: 1 << 20,
    onFrame: (f) => delivered.push(f.id),
    onOversize: () => t.fail('no frame is oversize'),
    onError: (error) => t.fail(error.message),
    allocate: (size, frame) => {
      seen.push({ size, id: frame.id, keyLength: frame.keyLength });
      return frame.id === 7 ? target : Buffer.allocUnsafe(size);
    },
  });
  decoder.push(bytes.subarray(0, HEADER_SIZE + 1000));
  t.deepEqual(seen, [{ size: 5000, id: 7, keyLength: 0 }]);
  t.true(target.subarray(0, 1000).equals(first.subarray(0, 1000)), 'assembled in the buffer allocate gave');
  decoder.abandon(Buffer.alloc(5000)); // another buffer: nothing changes
  decoder.push(bytes.subarray(HEADER_SIZE + 1000, HEADER_SIZE + 2000));
  t.true(target.subarray(1000, 2000).equals(first.subarray(1000, 2000)));
  decoder.abandon(target);
  decoder.push(bytes.subarray(HEADER_SIZE + 2000));
  t.true(target.subarray(2000).equals(Buffer.alloc(3000)), 'nothing written after abandon');
  t.deepEqual(delivered, [8], 'the abandoned frame is not delivered; the next one is');
});

import test from 'ava';
import { RespWriter } from './resp-writer.ts';
import { COPY_THRESHOLD } from './writer.ts';

function encode(write: (writer: RespWriter) => void): { text: string; counted: number; writes: number } {
  const chunks: Buffer[] = [];
  const writer = new RespWriter({ write: (chunk: Uint8Array) => chunks.push(Buffer.from(chunk)) });
  write(writer);
  writer.flush();
  return { text: Buffer.concat(chunks).toString('latin1'), counted: writer.bytesEncoded, writes: chunks.length };
}

test('integers, lengths and counts written as bytes are the decimal text, at every magnitude', (t) => {
  const numbers = [0, 1, 9, 10, 99, 100, 1023, 1024, 65_535, 1e9, 2 ** 31, 2 ** 32 + 7, 1e15, Number.MAX_SAFE_INTEGER];
  for (const n of [...numbers, ...numbers.map((x) => -x).filter((x) => x !== 0)]) {
    const { text, counted } = encode((w) => w.integer(n));
    t.is(text, `:${n}\r\n`);
    t.is(counted, text.length);
  }
  // Past 2^53 the number is no exact integer: written as JavaScript prints it.
  t.is(encode((w) => w.integer(2 ** 60)).text, `:${2 ** 60}\r\n`);
  for (const n of [0, 7, 10, 12_345]) {
    t.is(encode((w) => w.array(n)).text, `*${n}\r\n`);
    t.is(encode((w) => w.set(n)).text, `*${n}\r\n`);
    t.is(encode((w) => w.push(n)).text, `*${n}\r\n`);
    t.is(encode((w) => w.map(n)).text, `*${n * 2}\r\n`);
  }
  const resp3 = encode((w) => {
    w.version = 3;
    w.map(3);
    w.set(2);
    w.push(1);
  });
  t.is(resp3.text, '%3\r\n~2\r\n>1\r\n');
});

test('bulk strings of every size around the copy threshold, and simple strings, byte for byte', (t) => {
  for (const size of [0, 1, 9, 10, 1024, COPY_THRESHOLD - 1, COPY_THRESHOLD, COPY_THRESHOLD + 1, 70_000]) {
    const value = Buffer.alloc(size, 0x61 + (size % 26));
    const { text, counted } = encode((w) => {
      w.simple('OK');
      w.bulk(value);
      w.bulk(null);
    });
    t.is(text, `+OK\r\n$${size}\r\n${value.toString('latin1')}\r\n$-1\r\n`, `${size} bytes`);
    t.is(counted, text.length);
  }
  const long = 'x'.repeat(200);
  t.is(encode((w) => w.simple(long)).text, `+${long}\r\n`);
  t.is(encode((w) => w.simple('caf\u00e9')).text, '+caf\u00e9\r\n', 'latin1, as before');
});

test('replies filling several slabs come out whole and in order; one segment is one write', (t) => {
  const value = Buffer.alloc(1024, 0x7a);
  const { text, counted } = encode((w) => {
    for (let i = 0; i < 200; i++) {
      w.integer(i);
      w.bulk(value);
    }
  });
  let want = '';
  for (let i = 0; i < 200; i++) want += `:${i}\r\n$1024\r\n${value.toString('latin1')}\r\n`;
  t.is(text, want);
  t.is(counted, want.length);
  t.is(encode((w) => w.simple('OK')).writes, 1);
});

test('a slab is written over only once the sink called back for every segment of it; a turn is one write', (t) => {
  // A sink that keeps what it is handed (as a socket does until it has written it) and calls back a turn later.
  const held: { chunk: Uint8Array; copy: Buffer; released: boolean }[] = [];
  let callbacks: (() => void)[] = [];
  const writer = new RespWriter({
    write: (chunk: Uint8Array, done?: () => void) => {
      const entry = { chunk, copy: Buffer.from(chunk), released: false };
      held.push(entry);
      callbacks.push(() => {
        entry.released = true;
        done?.();
      });
    },
  });
  let want = '';
  for (let turn = 0; turn < 40; turn++) {
    const before = held.length;
    for (let i = 0; i < 16; i++) {
      const value = Buffer.alloc(1024 + ((turn * 7 + i) % 5), 0x61 + ((turn + i) % 26));
      writer.bulk(value);
      want += `$${value.length}\r\n${value.toString('latin1')}\r\n`;
    }
    writer.flush();
    t.is(held.length - before, 1, `turn ${turn}: one write`);
    // Everything handed over and not called back for is unchanged.
    for (const { chunk, copy, released } of held) if (!released) t.true(Buffer.from(chunk).equals(copy));
    // The sink catches up after most turns, as a socket that wrote it all; a turn in five it falls behind.
    if (turn % 5 !== 4) {
      for (const done of callbacks) done();
      callbacks = [];
    }
  }
  t.is(Buffer.concat(held.map((h) => h.copy)).toString('latin1'), want);
  // 660 KB of answers in 64 KiB slabs: eleven slabs without reuse, three with it.
  t.true(new Set(held.map((h) => h.chunk.buffer)).size <= 4);
});

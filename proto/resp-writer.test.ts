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

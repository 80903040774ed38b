import test from 'ava';
import { type RespCommand, RespParser, type RespProtocolError } from './resp-parser.ts';
import { respParserFuzz } from './resp-parser-fuzz.suite.ts';
import { RespWriter } from './resp-writer.ts';

// The fuzzer against the reference model, 20,000 inputs (the e2e tier runs 1,000,000: resp-parser-fuzz.test.ts).
respParserFuzz(20_000);

function parseAll(parser: RespParser, ...chunks: string[]): (string[] | string)[] {
  const out: (string[] | string)[] = [];
  for (const chunk of chunks) {
    parser.push(Buffer.from(chunk, 'latin1'));
    for (let next = parser.next(); next !== null; next = parser.next()) {
      if ('oversized' in next) out.push(`oversized ${next.oversized}`);
      else if ('error' in next) out.push((next as RespProtocolError).error);
      else out.push((next as RespCommand).args.map((a) => a.toString('latin1')));
    }
  }
  return out;
}

test('multibulk and inline commands, cut at every byte, give the same commands', (t) => {
  const stream = '*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nva\r\nl\r\n*1\r\n$4\r\nPING\r\nGET "a b" \'c\\\'d\' "\\x41\\n"\r\n\r\n*0\r\n';
  const want = [['SET', 'key', 'va\r\nl'], ['PING'], ['GET', 'a b', "c'd", 'A\n']];
  t.deepEqual(parseAll(new RespParser({ maxBulkBytes: 1024 }), stream), want);
  for (let cut = 1; cut < stream.length; cut++)
    t.deepEqual(parseAll(new RespParser({ maxBulkBytes: 1024 }), stream.slice(0, cut), stream.slice(cut)), want, `cut at ${cut}`);
});

test("inline words split as sdssplitargs: C's isspace between words, \\xa0 a byte like any other (UTF-8 à is C3 A0)", (t) => {
  const parser = () => new RespParser({ maxBulkBytes: 1024 });
  t.deepEqual(parseAll(parser(), 'SET k \xc3\xa0\r\n'), [['SET', 'k', '\xc3\xa0']]);
  t.deepEqual(parseAll(parser(), 'ECHO a\vb\fc\r\n'), [['ECHO', 'a\vb\fc']]);
  t.deepEqual(parseAll(parser(), '\v\fECHO "a"\f\'b\'\v\r\n'), [['ECHO', 'a', 'b']]);
  t.deepEqual(parseAll(parser(), 'ECHO "a"\xa0b\r\n'), ['Protocol error: unbalanced quotes in request']);
});

test("protocol errors carry Redis's texts, once, and nothing follows", (t) => {
  const cases: [string, string][] = [
    ['*x\r\n', 'Protocol error: invalid multibulk length'],
    ['*1\r\n$-2\r\n', 'Protocol error: invalid bulk length'],
    ['*1\r\n$2000\r\n', 'Protocol error: invalid bulk length'],
    ['*1\r\n+OK\r\n', "Protocol error: expected '$', got '+'"],
    ['GET "a\r\n', 'Protocol error: unbalanced quotes in request'],
  ];
  for (const [input, error] of cases)
    t.deepEqual(parseAll(new RespParser({ maxBulkBytes: 1024 }), input, '*1\r\n$4\r\nPING\r\n'), [error], input);
  t.deepEqual(parseAll(new RespParser({ maxBulkBytes: 1024, maxInlineBytes: 16 }), 'x'.repeat(20)), [
    'Protocol error: too big inline request',
  ]);
});

test("numbers as Redis's string2ll: no leading zero, no -0", (t) => {
  for (const [input, error] of [
    ['*01\r\n$4\r\nPING\r\n', 'Protocol error: invalid multibulk length'],
    ['*-0\r\n$4\r\nPING\r\n', 'Protocol error: invalid multibulk length'],
    ['*1\r\n$03\r\nabc\r\n', 'Protocol error: invalid bulk length'],
    ['*1\r\n$-0\r\n\r\n', 'Protocol error: invalid bulk length'],
  ])
    t.deepEqual(parseAll(new RespParser({ maxBulkBytes: 1024 }), input!), [error], input);
  t.deepEqual(parseAll(new RespParser({ maxBulkBytes: 1024 }), '*0\r\n*1\r\n$0\r\n\r\n'), [['']]);
});

test('a length line over the line limit is refused the same however the stream is cut; inline commands hold the argument limit', (t) => {
  const limits = { maxBulkBytes: 1 << 20, maxArgs: 2, maxInlineBytes: 4 };
  for (const [input, want] of [
    ['*1\r\n$65536\r\n', 'Protocol error: too big bulk count string'],
    ['*12345\r\n', 'Protocol error: too big mbulk count string'],
  ]) {
    const whole = parseAll(new RespParser(limits), input!);
    const bytes = parseAll(new RespParser(limits), ...input!.split(''));
    t.deepEqual(whole, [want], input);
    t.deepEqual(bytes, [want], `${input} byte by byte`);
  }
  t.deepEqual(parseAll(new RespParser(limits), 'a b\r\n'), [['a', 'b']]);
  t.deepEqual(parseAll(new RespParser({ ...limits, maxInlineBytes: 64 }), 'a b c\r\n'), ['Protocol error: too big inline request']);
});

test('a bulk spanning chunks is assembled into a buffer of its own; one inside a chunk is a view of it', (t) => {
  const parser = new RespParser({ maxBulkBytes: 1 << 20 });
  const value = Buffer.alloc(200_000, 7);
  parser.push(Buffer.from(`*2\r\n$3\r\nGET\r\n$${value.length}\r\n`));
  t.is(parser.next(), null);
  for (let at = 0; at < value.length; at += 65_536) {
    t.is(parser.next(), null);
    parser.push(value.subarray(at, at + 65_536));
  }
  parser.push(Buffer.from('\r\n'));
  const command = parser.next() as RespCommand;
  t.false(command.owned(0));
  t.true(command.owned(1));
  t.true(command.args[1]!.equals(value));
});

test('the writer encodes RESP2 and RESP3 types', (t) => {
  const chunks: Buffer[] = [];
  const writer = new RespWriter({ write: (chunk: Uint8Array) => chunks.push(Buffer.from(chunk)) });
  writer.simple('OK');
  writer.error('ERR bad\r\nthing');
  writer.integer(-3);
  writer.bulk('hé');
  writer.bulk(null);
  writer.map(1);
  writer.bulk(Buffer.alloc(20_000, 1));
  writer.version = 3;
  writer.bulk(null);
  writer.map(1);
  writer.verbatim('x');
  writer.flush();
  const text = Buffer.concat(chunks).toString('latin1');
  t.is(
    text,
    `+OK\r\n-ERR bad thing\r\n:-3\r\n$3\r\nh\xc3\xa9\r\n$-1\r\n*2\r\n$20000\r\n${'\x01'.repeat(20_000)}\r\n_\r\n%1\r\n=5\r\ntxt:x\r\n`,
  );
  t.is(writer.bytesEncoded, text.length);
});

test('an error reply stays one line whatever its text: UTF-8, never a character cut to its low byte (U+010A is 0x0A)', (t) => {
  const chunks: Buffer[] = [];
  const writer = new RespWriter({ write: (chunk: Uint8Array) => chunks.push(Buffer.from(chunk)) });
  const text = `ERR with args beginning with: '${Buffer.from([0xc4, 0x8a, 0xc4, 0x8d]).toString('utf8')}' ’\r\nx`;
  writer.error(text);
  writer.flush();
  const bytes = Buffer.concat(chunks);
  t.is(bytes.toString('utf8'), "-ERR with args beginning with: 'Ċč' ’ x\r\n");
  t.is(bytes.indexOf(10), bytes.length - 1);
  t.is(writer.bytesEncoded, bytes.length);
});

test('a bulk over the limit and within maxSkippedBulkBytes is read past, however the stream is cut: the command comes out oversized, the next as usual', (t) => {
  const stream = '*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$10\r\n0123456789\r\n*1\r\n$4\r\nPING\r\n';
  for (let cut = 0; cut <= stream.length; cut++) {
    const parser = new RespParser({ maxBulkBytes: 4, maxSkippedBulkBytes: 100 });
    t.deepEqual(parseAll(parser, stream.slice(0, cut), stream.slice(cut)), ['oversized 10', ['PING']], `cut at ${cut}`);
  }
  // Past it, or with nothing to skip (the default): Redis's protocol error, and the stream ends.
  t.deepEqual(parseAll(new RespParser({ maxBulkBytes: 4, maxSkippedBulkBytes: 9 }), stream), ['Protocol error: invalid bulk length']);
  t.deepEqual(parseAll(new RespParser({ maxBulkBytes: 4 }), stream), ['Protocol error: invalid bulk length']);
});

import test from 'ava';
import { MAX_COPIED_INCREMENTS, splitIncrements, withIncrements } from './increment-list.ts';

test('increments ahead of a value round-trip, and the value follows them', (t) => {
  const increments = [
    { token: '0011223344556677', total: -(2 ** 53 - 1), epoch: 1, seq: 2 },
    { token: 'ffeeddccbbaa9988', total: 42, epoch: 2 ** 32 - 1, seq: 2 ** 32 - 1 },
  ];
  const body = Buffer.concat([Buffer.from('key'), withIncrements(increments, Buffer.from('42'))]);
  const split = splitIncrements(body, 3, body.length);
  t.deepEqual(split?.increments, increments);
  t.is(body.toString('utf8', split!.valueStart), '42');
  const none = withIncrements([], Buffer.from('7'));
  t.deepEqual(splitIncrements(none, 0, none.length), { increments: [], valueStart: 4 });
});

test('a body whose increments do not fit it, or are too many, is refused (null)', (t) => {
  const body = withIncrements([{ token: '0011223344556677', total: 1, epoch: 1, seq: 1 }], Buffer.alloc(0));
  t.is(splitIncrements(body, 0, body.length - 1), null, 'cut short');
  t.is(splitIncrements(body, 0, 3), null, 'no count');
  const many = Buffer.alloc(4);
  many.writeUInt32BE(MAX_COPIED_INCREMENTS + 1);
  t.is(splitIncrements(many, 0, 4), null);
  const unsafe = Buffer.from(body);
  unsafe.writeBigInt64BE(2n ** 60n, 4 + 8);
  t.is(splitIncrements(unsafe, 0, unsafe.length), null, 'a total past ±(2^53 − 1)');
});

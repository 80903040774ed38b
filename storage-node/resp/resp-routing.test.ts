/** The routing fast path's slot of an ASCII key is keySlotOfBytes's, hash tags included. */
import test from 'ava';
import { keySlotOfBytes, MAX_KEY_BYTES } from '../../proto/index.ts';
import { asciiKeySlot } from './resp-routing.ts';

test('asciiKeySlot agrees with keySlotOfBytes on ASCII keys with braces anywhere, and declines the rest', (t) => {
  let seed = 7;
  const random = () => {
    seed = (seed * 1103515245 + 12345) >>> 0;
    return seed / 2 ** 32;
  };
  const alphabet = 'ab{}{}xyz:_0';
  for (let n = 0; n < 20_000; n++) {
    let key = '';
    const length = 1 + Math.floor(random() * 12);
    for (let i = 0; i < length; i++) key += alphabet[Math.floor(random() * alphabet.length)];
    const bytes = Buffer.from(key, 'latin1');
    t.is(asciiKeySlot(bytes), keySlotOfBytes(bytes), key);
  }
  for (const key of ['{}', '{}a}', 'a{b}c', '{a}{b}', '}{', '{', 'x{{y}}'])
    t.is(asciiKeySlot(Buffer.from(key)), keySlotOfBytes(Buffer.from(key)), key);
  t.is(asciiKeySlot(Buffer.alloc(0)), -1);
  t.is(asciiKeySlot(Buffer.from('caf\u00e9')), -1, 'not ASCII: keyProblem decides');
  t.is(asciiKeySlot(Buffer.alloc(MAX_KEY_BYTES + 1, 0x61)), -1);
  t.not(asciiKeySlot(Buffer.alloc(MAX_KEY_BYTES, 0x61)), -1);
});

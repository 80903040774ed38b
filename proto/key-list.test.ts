import test from 'ava';
import { decodeKeyList, encodeKeyList } from './key-list.ts';

test('key lists round-trip, NUL-separated block keys and non-ASCII keys included', (t) => {
  const keys = ['a', 'big\u0000v1\u000003', 'ключ', '', 'x'.repeat(1000)];
  t.deepEqual(decodeKeyList(encodeKeyList(keys)), keys);
  t.deepEqual(decodeKeyList(encodeKeyList([])), []);
});

import test from 'ava';
import { ExpiringMap } from './expiring-map.ts';
import { RecentIncrements } from './recent-increments.ts';

test('entries expire ttl after they were set; a set sweeps the expired ones at most once per ttl', (t) => {
  const map = new ExpiringMap<number>(1_000);
  map.set('a', 1, 0);
  map.set('b', 2, 500);
  t.is(map.get('a', 999), 1);
  t.is(map.get('a', 1_000), undefined, 'expired at ttl');
  t.is(map.size, 1, 'a get of an expired entry forgets it');
  map.set('a', 3, 1_200); // re-set: a fresh ttl
  t.is(map.get('a', 2_100), 3);
  map.set('c', 4, 2_300); // the first set past a ttl since the last sweep (at 1,200): b and a, expired, go
  t.is(map.size, 1);
  t.is(map.get('b', 0), undefined);
  map.delete('c');
  t.is(map.get('c', 2_300), undefined);
});

test('an increment in progress answers a retry once it settles; a refused one lets the retry apply', async (t) => {
  const increments = new RecentIncrements();
  const done = increments.begin('job', '01', 'k');
  const pending = increments.get('job', '01');
  t.true(pending instanceof Promise);
  done({ key: 'k', total: 7, epoch: 2, seq: 3 });
  t.deepEqual(await pending, { key: 'k', total: 7, epoch: 2, seq: 3 });
  t.deepEqual(increments.get('job', '01'), { key: 'k', total: 7, epoch: 2, seq: 3 });
  t.is(increments.get('other-job', '01'), undefined, "one job's token is not another's");
  const refused = increments.begin('job', '02', 'k');
  refused(null);
  t.is(increments.get('job', '02'), undefined);
  t.deepEqual(increments.forKey('job', 'k'), [{ token: '01', total: 7, epoch: 2, seq: 3 }], 'a copy carries the settled one only');
});

test("a key's increments, for a copy of it: its own, oldest first; copied ones recorded but for those known", (t) => {
  const node = new RecentIncrements();
  node.begin('job', 'aa', 'c')({ key: 'c', total: 1, epoch: 1, seq: 1 });
  node.record('job', 'bb', { key: 'c', total: 2, epoch: 1, seq: 2 });
  node.record('job', 'bb', { key: 'c', total: 2, epoch: 1, seq: 2 }); // told twice: listed once
  node.begin('job', 'cc', 'other')({ key: 'other', total: 5, epoch: 1, seq: 1 });
  node.begin('job', 'dd', 'c'); // still being applied: not carried
  const carried = node.forKey('job', 'c');
  t.deepEqual(
    carried.map((made) => made.token),
    ['aa', 'bb'],
  );
  const target = new RecentIncrements();
  target.begin('job', 'aa', 'c')({ key: 'c', total: 9, epoch: 3, seq: 4 }); // applied here: exact, kept
  target.recordCopied('job', 'c', carried);
  t.deepEqual(target.get('job', 'aa'), { key: 'c', total: 9, epoch: 3, seq: 4 });
  t.deepEqual(target.get('job', 'bb'), { key: 'c', total: 2, epoch: 1, seq: 2 });
  t.deepEqual(
    target.forKey('job', 'c').map((made) => made.token),
    ['aa', 'bb'],
  );
});

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
  const done = increments.begin('job/1');
  const pending = increments.get('job/1');
  t.true(pending instanceof Promise);
  done({ key: 'k', total: 7, seq: 3 });
  t.deepEqual(await pending, { key: 'k', total: 7, seq: 3 });
  t.deepEqual(increments.get('job/1'), { key: 'k', total: 7, seq: 3 });
  const refused = increments.begin('job/2');
  refused(null);
  t.is(increments.get('job/2'), undefined);
});

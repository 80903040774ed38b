import test from 'ava';
import { SatchelError, type WirePlacement } from '../proto/index.ts';
import { PlacementStore } from './placement-store.ts';

const placement = (epoch: number, jobId = 'job-a'): WirePlacement => ({
  jobId,
  epoch,
  generations: [{ nodes: [{ id: 'dram-1', address: '127.0.0.1:1', weight: 1 }] }],
  blockSize: 1 << 20,
  maxValueBytes: 1 << 30,
});

test('set, get, drop; an unknown job → NO_SUCH_JOB', (t) => {
  const store = new PlacementStore();
  const error = t.throws(() => store.get('job-a'));
  t.true(error instanceof SatchelError);
  t.is((error as SatchelError).code, 'NO_SUCH_JOB');
  store.set(placement(1));
  t.is(store.get('job-a').epoch, 1);
  t.is(store.size, 1);
  t.true(store.drop('job-a'));
  t.false(store.drop('job-a'));
  t.is(store.size, 0);
  t.throws(() => store.get('job-a'), { instanceOf: SatchelError });
});

test('a placement only moves forward: an older epoch → STALE, the newer one kept', (t) => {
  const store = new PlacementStore();
  store.set(placement(3));
  const error = t.throws(() => store.set(placement(2)));
  t.is((error as SatchelError).code, 'STALE');
  t.is(store.get('job-a').epoch, 3);
  store.set(placement(3)); // the same epoch again is fine (a metadata server re-registering)
  // The same epoch replaces what is held: the controller marks a single-copy job's restarted node lost so.
  const marked = placement(3);
  marked.generations[0]!.nodes[0]!.lost = true;
  store.set(marked);
  t.true(store.get('job-a').generations[0]!.nodes[0]!.lost);
  store.set(placement(4));
  t.is(store.get('job-a').epoch, 4);
  store.set(placement(1, 'job-b')); // per job
  t.is(store.get('job-b').epoch, 1);
});

import test from 'ava';
import { metadataOrder, metadataOwners } from './metadata-owners.ts';

const servers = Array.from({ length: 8 }, (_, i) => `10.0.0.${i + 1}:7072`);
const jobs = Array.from({ length: 8000 }, (_, i) => `job-${i.toString(36)}-${(i * 2654435761) >>> 0}`);

test('a job’s owners: the first copies of its order, the same whoever asks, all servers when fewer', (t) => {
  for (const job of jobs.slice(0, 100)) {
    const order = metadataOrder(job, servers);
    t.deepEqual([...order].sort(), [...servers].sort(), 'every server, once');
    t.deepEqual(metadataOwners(job, servers, 2), order.slice(0, 2));
    t.deepEqual(metadataOwners(job, [...servers].reverse(), 2), order.slice(0, 2), 'not the list’s order');
  }
  t.deepEqual(metadataOwners('j', servers.slice(0, 1), 2), servers.slice(0, 1));
  t.deepEqual(metadataOwners('j', servers, 0), metadataOwners('j', servers, 1), 'at least one');
});

test('jobs spread evenly over the servers', (t) => {
  const held = new Map<string, number>(servers.map((s) => [s, 0]));
  for (const job of jobs) for (const owner of metadataOwners(job, servers, 2)) held.set(owner, held.get(owner)! + 1);
  const expected = (jobs.length * 2) / servers.length;
  for (const [server, n] of held) t.true(Math.abs(n - expected) < expected * 0.1, `${server}: ${n} of ~${expected}`);
});

test('a server joining takes jobs only for itself: no job changes its other owners', (t) => {
  const joined = [...servers, '10.0.0.99:7072'];
  let moved = 0;
  for (const job of jobs) {
    const before = metadataOwners(job, servers, 2);
    const after = metadataOwners(job, joined, 2);
    for (const owner of after) if (!before.includes(owner)) t.is(owner, '10.0.0.99:7072');
    if (after.includes('10.0.0.99:7072')) moved++;
  }
  // Its fair share (2 of 9 copies), give or take.
  t.true(Math.abs(moved - (jobs.length * 2) / 9) < (jobs.length * 2) / 9 / 5, `${moved} jobs took the new server`);
});

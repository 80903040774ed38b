// A job that outgrows its nodes gets more room in a new placement generation; nothing written before is lost.
import test from 'ava';
import { Satchel } from '../client/index.ts';
import { LocalCluster } from '../deploy/index.ts';
import { pattern, rejection } from './helpers/assert.ts';

const MiB = 1024 * 1024;

test('writing past a node: the job grows onto another node, old keys stay readable, listable and deletable', async (t) => {
  const cluster = await LocalCluster.start({ dram: 2, dramCapacity: 8 * MiB });
  t.teardown(() => cluster.stop());
  const satchel = await Satchel.connect(cluster.controller, { key: cluster.tenantKey });
  t.teardown(() => satchel.close());
  const job = await satchel.registerJob('growing', { capacity: 4 * MiB });
  t.teardown(() => job.deregister().catch(() => {}));
  const first = (await (
    await fetch(`${cluster.info.console}/api/jobs/${job.id}`, { headers: { authorization: `Bearer ${cluster.viewerToken}` } })
  ).json()) as { nodes: unknown[]; epoch: number };
  t.is(first.nodes.length, 1, 'best fit: one node to start with');

  // 100 × 100 KB = 10 MB: more than the one 8 MiB node holds.
  const keys = Array.from({ length: 100 }, (_, i) => `part/${String(i).padStart(3, '0')}`);
  for (const [i, key] of keys.entries()) await job.put(key, pattern(100_000, i));
  t.true(job.epoch > first.epoch, 'a new placement generation');
  const detail = (await (
    await fetch(`${cluster.info.console}/api/jobs/${job.id}`, { headers: { authorization: `Bearer ${cluster.viewerToken}` } })
  ).json()) as {
    placement: { generations: { nodes: { id: string }[] }[] };
  };
  t.true(detail.placement.generations.length >= 2);

  // A function attaching now gets the grown placement and finds every key, old and new.
  const reader = await Satchel.attach(job.ticket);
  t.teardown(() => reader.close());
  for (const [i, key] of keys.entries()) t.true((await reader.get(key))?.equals(pattern(100_000, i)), key);
  const listed: string[] = [];
  for await (const key of reader.list('part/', { pageSize: 7 })) listed.push(key);
  t.deepEqual(listed, keys, 'each key once, sorted, across generations');

  // Deleting a key written before the growth removes it for good; overwriting one returns the new value.
  t.true(await reader.delete(keys[0]!));
  t.is(await reader.get(keys[0]!), null);
  await reader.put(keys[1]!, 'new');
  t.is((await reader.get(keys[1]!))?.toString(), 'new');
  listed.length = 0;
  for await (const key of reader.list('part/')) listed.push(key);
  t.deepEqual(listed, keys.slice(1));

  // Past both nodes: FULL, with a clear error, and the job keeps working for what fits.
  const error = await rejection(
    t,
    (async () => {
      for (let i = 0; i < 200; i++) await job.put(`more/${i}`, pattern(100_000, i));
    })(),
  );
  t.is(error.code, 'FULL');
  t.is((await job.get(keys[2]!))?.length, 100_000);
});

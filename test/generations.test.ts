/**
 * Reads across placement generations (a job that grew keeps its older generations; a moving one has two): a
 * key's older copy never answers for a newer write, also while a DELETE is between the generations it reaches
 * one after the other (newest first).
 */
import test from 'ava';
import { Satchel } from '../client/index.ts';
import { keySlot, pickNode } from '../proto/index.ts';
import { pattern } from './helpers/assert.ts';
import { startInProcessCluster } from './helpers/in-process.ts';

const MiB = 1024 * 1024;

test('a read between a delete’s generations finds nothing, not the older generation’s overwritten copy', async (t) => {
  const cluster = await startInProcessCluster({ dram: 2, capacity: 8 * MiB });
  t.teardown(() => cluster.close());
  const satchel = await Satchel.connect(cluster.controllerAddress, { key: cluster.tenantKey });
  t.teardown(() => satchel.close());
  const job = await satchel.registerJob('generations', { capacity: 4 * MiB });
  t.teardown(() => job.deregister().catch(() => {}));
  const first = cluster.controller.registry.jobs.get(job.id)!.placement;
  t.is(first.generations[0]!.nodes.length, 1, 'one node to start with');
  const oldNode = first.generations[0]!.nodes[0]!.id;

  const candidates = Array.from({ length: 40 }, (_, i) => `k/${i}`);
  for (const key of candidates) await job.put(key, 'old');
  // Past the first node: the job grows into a new generation, the older one kept for what it holds.
  for (let i = 0; job.epoch === first.epoch && i < 200; i++) await job.put(`fill/${i}`, pattern(100_000, i));
  const grown = cluster.controller.registry.jobs.get(job.id)!.placement;
  t.true(grown.generations.length >= 2, 'a new generation');
  const newest = grown.generations[0]!.nodes;
  const key = candidates.find((k) => newest[pickNode(newest, keySlot(k))]!.id !== oldNode);
  t.truthy(key, 'a key the newest generation places on the other node');

  await job.put(key!, 'new'); // on the newest generation's node only; the older one still holds 'old'
  t.is((await job.get(key!))?.toString(), 'new');
  // A DELETE's first step, on the newest generation (it reaches the older one next): a read now must not fall
  // back to the older generation's 'old', overwritten by 'new' before the read began.
  const newNode = cluster.nodes.find((n) => n.id === newest[pickNode(newest, keySlot(key!))]!.id)!;
  const outcome = await newNode.server.engine.delete(job.id, key!, grown.epoch, 0, true);
  t.true(outcome.ok);
  const reader = await Satchel.attach(job.ticket);
  t.teardown(() => reader.close());
  t.is(await reader.get(key!), null);
  t.is(await reader.stat(key!), null);

  // Written again after the delete: found, whichever generation answers first.
  await job.put(key!, 'again');
  t.is((await reader.get(key!))?.toString(), 'again');
  // A key the newest generation never had is still found in the older one.
  const untouched = candidates.find((k) => k !== key && newest[pickNode(newest, keySlot(k))]!.id !== oldNode)!;
  t.is((await reader.get(untouched))?.toString(), 'old');
});

/**
 * Replicas against an in-process cluster of three DRAM nodes: every key on `replicas` distinct nodes, reads
 * failing over while a node is down, writes waiting for the controller to replace it, and the copies restored.
 */
import test from 'ava';
import { keySlot, pickNodes } from '../proto/index.ts';
import { pattern, rejection } from '../test/helpers/assert.ts';
import { type InProcessCluster, remnantSettled, startInProcessCluster } from '../test/helpers/in-process.ts';
import { eventually } from '../test/helpers/raw-client.ts';
import { Satchel } from './index.ts';

const MiB = 1024 * 1024;

/** Nodes (by index) whose engine holds `key` for the job. */
function holders(cluster: InProcessCluster, jobId: string, key: string): number[] {
  const out: number[] = [];
  cluster.nodes.forEach((node, i) => {
    const entry = node.server.engine.get(jobId, key);
    if (entry !== undefined && !(entry instanceof Promise)) out.push(i);
  });
  return out;
}

test('replicas 2: every key on two nodes; a dead node is replaced, reads and writes go on, copies restored', async (t) => {
  const cluster = await startInProcessCluster({ dram: 3, capacity: 128 * MiB, nodeTimeoutMs: 1_500 });
  t.teardown(() => cluster.close());
  const satchel = await Satchel.connect(cluster.controllerAddress, { key: cluster.tenantKey, timeoutMs: 8_000 });
  t.teardown(() => satchel.close());
  const job = await satchel.registerJob('replicated', { replicas: 2, peakThroughput: 2.5e9 });
  t.teardown(() => job.deregister().catch(() => {}));
  const record = cluster.controller.registry.jobs.get(job.id)!;
  t.is(record.placement.replicas, 2);
  t.is(record.placement.generations[0]!.nodes.length, 3);

  const keys = Array.from({ length: 300 }, (_, i) => `k/${i}`);
  await job.putMany(keys.map((key, i) => [key, `value ${i}`] as const));
  await job.put('large', pattern(3 * MiB, 1)); // blocks are keys too: each on two nodes
  for (const key of keys) t.is(holders(cluster, job.id, key).length, 2, key);

  // The node holding the most first copies dies.
  const nodes = record.placement.generations[0]!.nodes;
  const firsts = nodes.map((n) => keys.filter((k) => nodes[pickNodes(nodes, keySlot(k), 2)[0]!]!.id === n.id).length);
  const victim = firsts.indexOf(Math.max(...firsts));
  const victimId = cluster.nodes[victim]!.id;
  await cluster.nodes[victim]!.close();

  // Reads fail over to the other copy at once; writes wait for the placement without the dead node.
  const reader = await Satchel.attach(job.ticket, { timeoutMs: 8_000 });
  t.teardown(() => reader.close());
  const values = await reader.getMany(keys);
  t.deepEqual(
    values.map(String),
    keys.map((_, i) => `value ${i}`),
    'every key readable while a copy is down',
  );
  await reader.putMany(keys.slice(0, 50).map((key) => [key, `new ${key}`] as const));
  t.true((await reader.get('large'))!.equals(pattern(3 * MiB, 1)));

  await eventually(
    () => !cluster.controller.registry.jobs.get(job.id)!.placement.generations.some((g) => g.nodes.some((n) => n.id === victimId)),
    10_000,
    'the dead node left the placement',
  );
  await eventually(() => cluster.controller.events.since(0).some((e) => e.kind === 'copies-restored'), 10_000, 'copies restored');
  const live = cluster.nodes.map((_, i) => i).filter((i) => i !== victim);
  for (const key of keys) {
    const held = holders(cluster, job.id, key).filter((i) => live.includes(i));
    t.is(held.length, 2, `${key} on both living nodes again`);
  }
  t.deepEqual(
    (await job.getMany(keys.slice(0, 50))).map(String),
    keys.slice(0, 50).map((key) => `new ${key}`),
    'writes made during the outage kept',
  );
  const lost = cluster.controller.events.since(0).find((e) => e.kind === 'node-lost');
  t.is(lost?.node, victimId);
});

test('replicas 1: a dead node fails the operations on its keys with UNAVAILABLE; the others go on', async (t) => {
  const cluster = await startInProcessCluster({ dram: 2, capacity: 64 * MiB, nodeTimeoutMs: 1_000 });
  t.teardown(() => cluster.close());
  const satchel = await Satchel.connect(cluster.controllerAddress, { key: cluster.tenantKey, timeoutMs: 3_000 });
  t.teardown(() => satchel.close());
  const job = await satchel.registerJob('single', { peakThroughput: 1.5e9 });
  t.teardown(() => job.deregister().catch(() => {}));
  const keys = Array.from({ length: 100 }, (_, i) => `k${i}`);
  await job.putMany(keys.map((k) => [k, k] as const));
  const dead = cluster.nodes[0]!;
  const onDead = keys.filter((k) => holders(cluster, job.id, k).includes(0));
  const onLive = keys.filter((k) => !onDead.includes(k));
  t.true(onDead.length > 0 && onLive.length > 0);
  await dead.close();
  await eventually(() => cluster.controller.events.since(0).some((e) => e.kind === 'node-lost'), 5_000, 'the controller noticed');
  const started = Date.now();
  t.is((await rejection(t, job.get(onDead[0]!))).code, 'UNAVAILABLE');
  t.is((await rejection(t, job.put(onDead[1]!, 'x'))).code, 'UNAVAILABLE');
  t.true(Date.now() - started < 6_000, 'failed, not hung');
  t.deepEqual((await job.getMany(onLive)).map(String), onLive);
  t.true(
    cluster.controller.registry.jobs.get(job.id)!.placement.generations[0]!.nodes.some((n) => n.id === dead.id),
    'kept in the placement: its keys are not silently missing',
  );
});

test('a replicas hint the cluster cannot honour is refused; a bad one, or a hint there is not, is BAD_REQUEST', async (t) => {
  const cluster = await startInProcessCluster({ dram: 1 });
  t.teardown(() => cluster.close());
  const satchel = await Satchel.connect(cluster.controllerAddress, { key: cluster.tenantKey });
  t.teardown(() => satchel.close());
  t.is((await rejection(t, satchel.registerJob('two', { replicas: 2 }))).code, 'UNAVAILABLE');
  t.is((await rejection(t, satchel.registerJob('four', { replicas: 4 }))).code, 'BAD_REQUEST');
  t.is((await rejection(t, satchel.registerJob('half', { replicas: 1.5 }))).code, 'BAD_REQUEST');
  // A misspelt hint is refused, not ignored (the job would have been placed as if it were not there).
  const misspelt = await rejection(t, satchel.registerJob('typo', { latencySenstive: true } as never));
  t.is(misspelt.code, 'BAD_REQUEST');
  t.regex(misspelt.message, /unknown hint "latencySenstive"; the hints are latencySensitive, capacity/);
  t.is(cluster.controller.registry.jobs.size, 0, 'nothing registered');
});

test('replicas 2 on two of three nodes: when one dies the third joins and gets the copies', async (t) => {
  const cluster = await startInProcessCluster({ dram: 3, capacity: 128 * MiB, nodeTimeoutMs: 1_500 });
  t.teardown(() => cluster.close());
  const satchel = await Satchel.connect(cluster.controllerAddress, { key: cluster.tenantKey, timeoutMs: 8_000 });
  t.teardown(() => satchel.close());
  const job = await satchel.registerJob('replaced', { replicas: 2 });
  t.teardown(() => job.deregister().catch(() => {}));
  const placed = cluster.controller.registry.jobs.get(job.id)!.placement.generations[0]!.nodes.map((n) => n.id);
  t.is(placed.length, 2);
  const keys = Array.from({ length: 200 }, (_, i) => `r/${i}`);
  await job.putMany(keys.map((key) => [key, key] as const));
  const victim = cluster.nodes.findIndex((n) => n.id === placed[0]);
  const spare = cluster.nodes.findIndex((n) => !placed.includes(n.id));
  await cluster.nodes[victim]!.close();
  await eventually(() => cluster.controller.events.since(0).some((e) => e.kind === 'copies-restored'), 10_000, 'copies restored');
  const generations = cluster.controller.registry.jobs.get(job.id)!.placement.generations;
  t.true(
    generations[0]!.nodes.some((n) => n.id === cluster.nodes[spare]!.id),
    'the spare node joined the newest generation',
  );
  for (const key of keys)
    t.deepEqual(holders(cluster, job.id, key).sort(), [spare, cluster.nodes.findIndex((n) => n.id === placed[1])].sort(), key);
  t.deepEqual((await job.getMany(keys)).map(String), keys);
});

test('replicas 2: while the nodes refuse the job (their leases lapsed), writes and reads wait, then succeed', async (t) => {
  const cluster = await startInProcessCluster({ dram: 2, capacity: 64 * MiB, nodeTimeoutMs: 1_500 });
  t.teardown(() => cluster.close());
  const satchel = await Satchel.connect(cluster.controllerAddress, { key: cluster.tenantKey, timeoutMs: 8_000 });
  t.teardown(() => satchel.close());
  const job = await satchel.registerJob('lapsed', { replicas: 2 });
  t.teardown(() => job.deregister().catch(() => {}));
  await job.put('before', 'kept');
  // As if the controller answered no report for 1.5 s: each node refuses replicated jobs until its next answered
  // report renews the lease, and the lapse is declared again until then (every 20 ms here).
  const lapse = () => {
    for (const node of cluster.nodes) node.server.leaseLapsed = true;
  };
  lapse();
  const timer = setInterval(lapse, 20);
  const ended = setTimeout(() => clearInterval(timer), 1_500);
  t.teardown(() => {
    clearInterval(timer);
    clearTimeout(ended);
  });
  const began = Date.now();
  await job.put('during', 'written');
  t.true(Date.now() - began >= 1_000, 'the write waited for the lapse to end');
  t.is(String(await job.get('before')), 'kept');
  t.is(String(await job.get('during')), 'written');
  t.deepEqual(holders(cluster, job.id, 'during').sort(), [0, 1], 'on both nodes');
});

test('replicas 2: both holders restart at once, empty: their keys read UNAVAILABLE, never null, and new writes go on', async (t) => {
  const cluster = await startInProcessCluster({ dram: 4, capacity: 128 * MiB, nodeTimeoutMs: 1_500 });
  t.teardown(() => cluster.close());
  const satchel = await Satchel.connect(cluster.controllerAddress, { key: cluster.tenantKey, timeoutMs: 8_000 });
  t.teardown(() => satchel.close());
  const job = await satchel.registerJob('lost-together', { replicas: 2 });
  t.teardown(() => job.deregister().catch(() => {}));
  const placed = cluster.controller.registry.jobs.get(job.id)!.placement.generations[0]!.nodes.map((n) => n.id);
  t.is(placed.length, 2);
  const keys = Array.from({ length: 200 }, (_, i) => `gone/${i}`);
  await job.putMany(keys.map((key) => [key, key] as const));
  await job.put('gone/large', pattern(3 * MiB, 2));
  t.is(await job.incr('gone/counter', 5), 5);

  // Both copies of every key die in one moment (kill -9 of both pods) and come back empty under their ids.
  const victims = placed.map((id) => cluster.nodes.findIndex((n) => n.id === id));
  await Promise.all(victims.map((i) => cluster.restartNode(i)));
  await eventually(
    () => remnantSettled(cluster, job.id, 2),
    15_000,
    'the copies that could be restored restored, and both lost nodes marked in the remnant',
  );

  const reader = await Satchel.attach(job.ticket, { timeoutMs: 8_000 });
  t.teardown(() => reader.close());
  for (const key of [...keys.slice(0, 20), 'gone/large']) {
    const error = await rejection(t, reader.get(key));
    t.is(error.code, 'UNAVAILABLE', key);
    t.regex(error.message, /every copy of key .* was lost/, key);
  }
  t.is((await rejection(t, reader.stat(keys[0]!))).code, 'UNAVAILABLE');
  const started = Date.now();
  t.is((await rejection(t, reader.incr('gone/counter', 1))).code, 'UNAVAILABLE', 'a lost counter does not start again at 0');
  t.true(Date.now() - started < 4_000, 'at once, not after waiting for a placement that cannot help');
  const listing = (async () => {
    for await (const _key of reader.list('gone/')) {
      // nothing
    }
  })();
  t.is((await rejection(t, listing)).code, 'UNAVAILABLE', 'a listing would miss them');

  // The job goes on: new keys, and a deleted lost key reads as absent.
  await reader.putMany(keys.slice(0, 50).map((key) => [key, `again ${key}`] as const));
  t.deepEqual(
    (await reader.getMany(keys.slice(0, 50))).map(String),
    keys.slice(0, 50).map((key) => `again ${key}`),
  );
  await reader.delete(keys[60]!);
  t.is(await reader.get(keys[60]!), null);
  const lost = cluster.controller.registry.jobs.get(job.id)!.lostNodes ?? [];
  t.deepEqual([...lost].sort(), [...placed].sort());
});

test('replicas 2 on two nodes: one restarts, and once its loss is restored it takes its copies back; then the other restarts, and nothing is lost', async (t) => {
  const cluster = await startInProcessCluster({ dram: 2, capacity: 128 * MiB, nodeTimeoutMs: 1_500 });
  t.teardown(() => cluster.close());
  const satchel = await Satchel.connect(cluster.controllerAddress, { key: cluster.tenantKey, timeoutMs: 8_000 });
  t.teardown(() => satchel.close());
  const job = await satchel.registerJob('one-then-the-other', { replicas: 2 });
  t.teardown(() => job.deregister().catch(() => {}));
  const newest = () => cluster.controller.registry.jobs.get(job.id)!.placement.generations.map((g) => g.nodes.map((n) => n.id).sort());
  const keys = Array.from({ length: 100 }, (_, i) => `k/${i}`);
  await job.putMany(keys.map((key) => [key, key] as const));

  // kill -9 of one node, started again under its id: the job keeps one copy until its loss is restored, then
  // the restarted node (its new process) joins the job again with a copy of every key.
  await cluster.restartNode(0);
  const both = cluster.nodes.map((n) => n.id).sort();
  await eventually(() => JSON.stringify(newest()) === JSON.stringify([both]), 15_000, 'the job on both nodes again, in one generation');
  const more = Array.from({ length: 50 }, (_, i) => `more/${i}`);
  await job.putMany(more.map((key) => [key, key] as const));

  // Then the other. Before, the job had stayed on it alone, and every key then read null.
  await cluster.restartNode(1);
  await eventually(() => JSON.stringify(newest()) === JSON.stringify([both]), 15_000, 'both nodes again after the second restart');
  const reader = await Satchel.attach(job.ticket, { timeoutMs: 8_000 });
  t.teardown(() => reader.close());
  t.deepEqual((await reader.getMany([...keys, ...more])).map(String), [...keys, ...more]);
  t.is(await reader.get('never-written'), null);
  const listed: string[] = [];
  for await (const key of reader.list('more/')) listed.push(key);
  t.deepEqual(listed.sort(), [...more].sort());
});

test('replicas 2 on two nodes: one dies for good, the job keeps one copy, and a node that registers later joins it with a copy of every key', async (t) => {
  const cluster = await startInProcessCluster({ dram: 2, capacity: 128 * MiB, nodeTimeoutMs: 1_500 });
  t.teardown(() => cluster.close());
  const satchel = await Satchel.connect(cluster.controllerAddress, { key: cluster.tenantKey, timeoutMs: 8_000 });
  t.teardown(() => satchel.close());
  const job = await satchel.registerJob('short-then-topped-up', { replicas: 2 });
  t.teardown(() => job.deregister().catch(() => {}));
  const newest = () => cluster.controller.registry.jobs.get(job.id)!.placement.generations.map((g) => g.nodes.map((n) => n.id).sort());
  const keys = Array.from({ length: 100 }, (_, i) => `k/${i}`);
  await job.putMany(keys.map((key) => [key, key] as const));

  // Node 0 is gone and nothing takes its place: the job goes on with node 1 alone.
  await cluster.nodes[0]!.close();
  await eventually(() => JSON.stringify(newest()) === JSON.stringify([['dram-1']]), 10_000, 'the job on node 1 alone');
  const more = Array.from({ length: 50 }, (_, i) => `more/${i}`);
  await job.putMany(more.map((key) => [key, key] as const));

  // A node with a new name registers: the job gets its second copy there. Before, it stayed on node 1 alone.
  await cluster.addNode();
  await eventually(() => JSON.stringify(newest()) === JSON.stringify([['dram-1', 'dram-2']]), 10_000, 'the new node joined the job');
  for (const key of [...keys, ...more]) t.deepEqual(holders(cluster, job.id, key).sort(), [1, 2], key);

  // So node 1 may go too: node 2 has every key.
  await cluster.nodes[1]!.close();
  await eventually(() => JSON.stringify(newest()) === JSON.stringify([['dram-2']]), 10_000, 'the job on node 2 alone');
  const reader = await Satchel.attach(job.ticket, { timeoutMs: 8_000 });
  t.teardown(() => reader.close());
  t.deepEqual((await reader.getMany([...keys, ...more])).map(String), [...keys, ...more]);
  t.is(await reader.get('never-written'), null);
});

test('replicas 2 on two nodes: both restart at once: their keys read UNAVAILABLE, never null, the job takes writes on both new processes, and a later restart of one loses none of them', async (t) => {
  const cluster = await startInProcessCluster({ dram: 2, capacity: 128 * MiB, nodeTimeoutMs: 1_500 });
  t.teardown(() => cluster.close());
  const satchel = await Satchel.connect(cluster.controllerAddress, { key: cluster.tenantKey, timeoutMs: 8_000 });
  t.teardown(() => satchel.close());
  const job = await satchel.registerJob('both-of-two', { replicas: 2 });
  t.teardown(() => job.deregister().catch(() => {}));
  const live = () =>
    cluster.controller.registry.jobs
      .get(job.id)!
      .placement.generations.filter((g) => g.remnant !== true)
      .map((g) => g.nodes.map((n) => n.id).sort());
  const keys = Array.from({ length: 100 }, (_, i) => `k/${i}`);
  await job.putMany(keys.map((key) => [key, key] as const));
  const both = cluster.nodes.map((n) => n.id).sort();

  // Both die in one moment and come back empty under their ids: the only nodes the job can go on with are the
  // lost ids' new processes. Before, they were never placed on it again, and every write failed for good.
  await Promise.all([0, 1].map((i) => cluster.restartNode(i)));
  await eventually(() => JSON.stringify(live()) === JSON.stringify([both]), 20_000, 'the job on both new processes');
  const reader = await Satchel.attach(job.ticket, { timeoutMs: 8_000 });
  t.teardown(() => reader.close());
  for (const key of keys.slice(0, 20)) {
    const error = await rejection(t, reader.get(key));
    t.is(error.code, 'UNAVAILABLE', key);
    t.regex(error.message, /every copy of key .* was lost/, key);
  }
  // The lost ids serve the job again, but not what their dead processes held: a listing would miss it.
  const listing = (async () => {
    for await (const _key of reader.list('k/')) {
      // nothing
    }
  })();
  t.is((await rejection(t, listing)).code, 'UNAVAILABLE', 'a listing would miss the lost keys');
  const after = Array.from({ length: 60 }, (_, i) => `after/${i}`);
  await reader.putMany(after.map((key) => [key, `again ${key}`] as const));
  t.deepEqual(
    (await reader.getMany(after)).map(String),
    after.map((key) => `again ${key}`),
  );

  // One of them restarts again: what was written since lives on the other and is restored; the keys lost the
  // first time still read UNAVAILABLE.
  await cluster.restartNode(0);
  await eventually(
    async () => {
      if (JSON.stringify(live()) !== JSON.stringify([both])) return false;
      const values = await Promise.all(after.map((key) => reader.get(key).then(String, () => 'error')));
      return values.every((v, i) => v === `again ${after[i]}`);
    },
    20_000,
    'every key written since read back, the job on both nodes again',
  );
  t.is((await rejection(t, reader.get(keys[0]!))).code, 'UNAVAILABLE');
});

test('replicas 2 on two nodes: both stop, are declared lost with nothing to restore onto, then come back as new processes one by one: the job takes writes on both again', async (t) => {
  const cluster = await startInProcessCluster({ dram: 2, capacity: 128 * MiB, nodeTimeoutMs: 1_500 });
  t.teardown(() => cluster.close());
  const satchel = await Satchel.connect(cluster.controllerAddress, { key: cluster.tenantKey, timeoutMs: 4_000 });
  t.teardown(() => satchel.close());
  const job = await satchel.registerJob('lost-then-restarted', { replicas: 2 });
  t.teardown(() => job.deregister().catch(() => {}));
  const keys = Array.from({ length: 50 }, (_, i) => `k/${i}`);
  await job.putMany(keys.map((key) => [key, key] as const));
  const live = () =>
    cluster.controller.registry.jobs
      .get(job.id)!
      .placement.generations.filter((g) => g.remnant !== true)
      .map((g) => g.nodes.map((n) => n.id).sort());
  const both = cluster.nodes.map((n) => n.id).sort();

  // Both stop reporting: the second loss finds no node to restore onto and keeps its node, waiting for its data.
  await Promise.all(cluster.nodes.map((n) => n.close()));
  await eventually(
    () => cluster.controller.events.since(0).some((e) => e.kind === 'replication-failed' && e.reason.includes('every other node')),
    15_000,
    'nothing to restore onto',
  );
  // They come back without it, one after the other (Kubernetes' back-off). Before, the live generation named the
  // dead process for good, and every write failed.
  await cluster.restartNode(0);
  await new Promise((resolve) => setTimeout(resolve, 2_000));
  await cluster.restartNode(1);
  await eventually(() => JSON.stringify(live()) === JSON.stringify([both]), 20_000, 'the job on both new processes');
  const reader = await Satchel.attach(job.ticket, { timeoutMs: 8_000 });
  t.teardown(() => reader.close());
  await reader.put('after', 'again');
  t.is((await reader.get('after'))?.toString(), 'again');
  const error = await rejection(t, reader.get(keys[0]!));
  t.is(error.code, 'UNAVAILABLE', 'a key whose every copy died is not absent');
});

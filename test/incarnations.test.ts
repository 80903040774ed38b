/**
 * No acknowledged write reads as null: a storage node that restarts under the same id and address (a Kubernetes
 * pod after a crash) is a new, empty incarnation, and a node cut off from the controller stops serving replicated
 * jobs before their copies move on. In-process clusters (test/helpers/in-process.ts), so a node's engine can be
 * looked at; test/faults-nemesis.test.ts does the same with processes killed by PID.
 */
import test from 'ava';
import { type Job, Satchel } from '../client/index.ts';
import { TcpProxy } from '../perf/index.ts';
import { keySlot, pickNode } from '../proto/index.ts';
import { rejection, withoutPlacement } from './helpers/assert.ts';
import { type InProcessCluster, startInProcessCluster } from './helpers/in-process.ts';
import { eventually } from './helpers/raw-client.ts';

const MiB = 1024 * 1024;
const keys = Array.from({ length: 200 }, (_, i) => `k/${i}`);

/** Every key read back through `job`: its value, or the error code. */
async function readAll(job: Job): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  await Promise.all(
    keys.map(async (key) => {
      try {
        const value = await job.get(key);
        out.set(key, value === null ? 'null' : value.toString());
      } catch (error) {
        out.set(key, `error ${(error as { code?: string }).code}`);
      }
    }),
  );
  return out;
}

function holders(cluster: InProcessCluster, jobId: string, key: string): string[] {
  return cluster.nodes.filter((node) => node.server.engine.get(jobId, key) !== undefined).map((node) => node.id);
}

for (const replicas of [2, 3] as const) {
  test(`replicas ${replicas}: a node restarted with the same id and address loses no acknowledged key; its copies are restored`, async (t) => {
    const cluster = await startInProcessCluster({ dram: replicas + 1, capacity: 128 * MiB, nodeTimeoutMs: 2_000 });
    t.teardown(() => cluster.close());
    const satchel = await Satchel.connect(cluster.controllerAddress, { key: cluster.tenantKey, timeoutMs: 8_000 });
    t.teardown(() => satchel.close());
    const job = await satchel.registerJob(`restart-r${replicas}`, { replicas, peakThroughput: 3.5e9 });
    t.teardown(() => job.deregister().catch(() => {}));
    await job.putMany(keys.map((key) => [key, `v ${key}`] as const));
    const victim = cluster.controller.registry.jobs.get(job.id)!.placement.generations[0]!.nodes[0]!.id;
    const index = cluster.nodes.findIndex((n) => n.id === victim);
    const before = cluster.nodes[index]!.bootId;
    const restarted = await cluster.restartNode(index);
    t.not(restarted.bootId, before);

    // At once, through the handle that wrote and through the original ticket: every key, none null.
    const fresh = await Satchel.attach(job.ticket, { timeoutMs: 8_000 });
    t.teardown(() => fresh.close());
    for (const reader of [job, fresh]) {
      const got = await readAll(reader);
      t.deepEqual(
        [...got].filter(([key, value]) => value !== `v ${key}`),
        [],
        'every acknowledged key reads back',
      );
    }
    // A listing from the ticket (its placement names the node whose new process refuses the job, and then one
    // the job moved on from): looked up again until it lists every key. Before, it failed until another call of
    // the handle had refreshed the placement.
    const lister = await Satchel.attach(job.ticket, { timeoutMs: 8_000 });
    t.teardown(() => lister.close());
    const listed: string[] = [];
    for await (const key of lister.list('k/')) listed.push(key);
    t.deepEqual(listed, [...keys].sort());
    // The new process holds none of it and serves none of it; the controller restores the copies elsewhere.
    await eventually(() => cluster.controller.events.since(0).some((e) => e.kind === 'copies-restored'), 15_000, 'copies restored');
    const record = cluster.controller.registry.jobs.get(job.id)!;
    t.false(
      record.placement.generations.some((g) => g.nodes.some((n) => n.id === victim)),
      'the lost incarnation left the placement',
    );
    t.is(record.lostNodes, undefined);
    for (const key of keys) t.is(holders(cluster, job.id, key).length, replicas, `${key} has ${replicas} copies again`);
    t.is(restarted.server.engine.usageByJob().get(job.id), undefined);
    t.true(cluster.controller.events.since(0).some((e) => e.kind === 'node-restarted' && e.node === victim));
    // Writes go on, and read back through the original ticket.
    await fresh.putMany(keys.slice(0, 20).map((key) => [key, `w ${key}`] as const));
    t.deepEqual(
      (await job.getMany(keys.slice(0, 20))).map(String),
      keys.slice(0, 20).map((key) => `w ${key}`),
    );
  });
}

test('replicas 1: after a restart with the same id, that node’s keys fail with UNAVAILABLE, never null; the rest serve, and the job takes writes again on the new process', async (t) => {
  const cluster = await startInProcessCluster({ dram: 2, capacity: 64 * MiB, nodeTimeoutMs: 2_000 });
  t.teardown(() => cluster.close());
  const satchel = await Satchel.connect(cluster.controllerAddress, { key: cluster.tenantKey, timeoutMs: 3_000 });
  t.teardown(() => satchel.close());
  const job = await satchel.registerJob('restart-r1', { peakThroughput: 1.5e9 });
  t.teardown(() => job.deregister().catch(() => {}));
  await job.putMany(keys.map((key) => [key, `v ${key}`] as const));
  const nodes = cluster.controller.registry.jobs.get(job.id)!.placement.generations[0]!.nodes;
  t.is(nodes.length, 2);
  const onVictim = keys.filter((key) => nodes[pickNode(nodes, keySlot(key))]!.id === 'dram-0');
  t.true(onVictim.length > 2 && onVictim.length < keys.length);
  await cluster.restartNode(0);
  const fresh = await Satchel.attach(job.ticket, { timeoutMs: 3_000 });
  t.teardown(() => fresh.close());
  // Now, and again once the controller has placed the new process on the job over the old generation (kept as a
  // remnant marking the dead incarnation): the lost keys are UNAVAILABLE.
  for (const when of ['at once', 'once placed again']) {
    if (when !== 'at once')
      await eventually(
        () =>
          cluster.controller.registry.jobs
            .get(job.id)!
            .placement.generations.map((g) => g.remnant === true)
            .join() === 'false,true',
        10_000,
        'the new process placed on the job',
      );
    const got = await readAll(fresh);
    for (const key of keys) t.is(got.get(key), onVictim.includes(key) ? 'error UNAVAILABLE' : `v ${key}`, `${key} ${when}`);
  }
  t.deepEqual(cluster.controller.registry.jobs.get(job.id)!.lostNodes, ['dram-0']);
  t.not(cluster.nodes[0]!.server.jobs.get(job.id), undefined, 'the new process serves the job');
  // Writes go on: a lost key written again reads back, a deleted one reads null; the others stay UNAVAILABLE.
  const [rewritten, deleted, untouched] = onVictim as [string, string, string];
  await fresh.put(rewritten, 'again');
  t.is(String(await fresh.get(rewritten)), 'again');
  t.is(String(await job.get(rewritten)), 'again', 'through the handle that wrote before');
  await fresh.delete(deleted);
  t.is(await fresh.get(deleted), null);
  t.is(await fresh.incr(deleted, 1), 1, 'a deleted lost key is a counter from 0 again');
  t.is(String(await fresh.get(deleted)), '1');
  t.is((await rejection(t, fresh.get(untouched))).code, 'UNAVAILABLE');
  t.is((await rejection(t, fresh.incr(untouched, 1))).code, 'UNAVAILABLE', 'a lost counter does not start again at 0');
  const listing = (async () => {
    for await (const _key of fresh.list('k/')) {
      // nothing
    }
  })();
  t.regex((await rejection(t, listing)).message, /restarted since job .* keeps one copy: a listing would miss the keys it held/);
  await fresh.putMany(keys.map((key) => [`new/${key}`, key] as const));
  t.deepEqual((await fresh.getMany(keys.map((key) => `new/${key}`))).map(String), keys);
  t.true((cluster.nodes[0]!.server.engine.usageByJob().get(job.id) ?? 0) > 0, 'the new process holds its share of them');
  // The new process drained: its keys move, the dead incarnation's mark stays (else its slots would read as
  // absent), and the drain ends (before, the job stayed pending for good: its placement still named the id).
  await cluster.controller.drainNode('dram-0');
  const record = cluster.controller.registry.jobs.get(job.id)!;
  t.is(record.pending, undefined);
  t.false(record.placement.generations.some((g) => g.nodes.some((n) => n.id === 'dram-0' && n.lost !== true)));
  t.is((await rejection(t, fresh.get(untouched))).code, 'UNAVAILABLE');
  t.is(String(await fresh.get(rewritten)), 'again');
  t.deepEqual((await fresh.getMany(keys.map((key) => `new/${key}`))).map(String), keys);
  await job.deregister();
  t.is((await rejection(t, fresh.get(onVictim[0]!))).code, 'NO_SUCH_JOB');
});

test('a node cut off from the controller, still reachable by clients, stops serving replicated jobs before they move; none reads stale or null', async (t) => {
  let proxy: TcpProxy | null = null;
  const cluster = await startInProcessCluster({
    dram: 3,
    capacity: 64 * MiB,
    nodeTimeoutMs: 2_000,
    // Node 0 reaches the controller through a proxy the test cuts.
    nodeController: (i) => (i === 0 ? proxy!.address : undefined),
    beforeNodes: async (controllerAddress) => {
      proxy = await TcpProxy.start(controllerAddress);
    },
  });
  t.teardown(() => cluster.close());
  t.teardown(() => proxy?.close());
  const satchel = await Satchel.connect(cluster.controllerAddress, { key: cluster.tenantKey, timeoutMs: 6_000 });
  t.teardown(() => satchel.close());
  const job = await satchel.registerJob('partitioned', { replicas: 2, peakThroughput: 2.5e9 });
  t.teardown(() => job.deregister().catch(() => {}));
  await job.putMany(keys.map((key) => [key, 'one'] as const));
  // A function holding the ticket from before the partition, which never hears of the placement change.
  const old = await Satchel.attach(job.ticket, { timeoutMs: 6_000 });
  t.teardown(() => old.close());
  t.deepEqual(new Set((await old.getMany(keys)).map(String)), new Set(['one']));

  proxy!.cut();
  await eventually(() => cluster.nodes[0]!.server.fenced, 5_000, 'the cut-off node stopped serving the replicated job');
  await eventually(
    () => cluster.controller.events.since(0).some((e) => e.kind === 'copies-restored'),
    15_000,
    'copies restored without it',
  );
  // Overwritten after the move by a function that attached since (its placement leaves the cut-off node out,
  // which still holds "one" for its keys).
  const writer = await Satchel.attach(withoutPlacement(job.ticket), { timeoutMs: 6_000 });
  t.teardown(() => writer.close());
  await writer.putMany(keys.map((key) => [key, 'two'] as const));
  const got = await readAll(old);
  t.deepEqual(
    [...got.values()].filter((v) => v !== 'two'),
    [],
    'the old handle reads every overwrite, nothing stale or null',
  );
  proxy!.heal();
  await eventually(
    () => !cluster.nodes[0]!.server.fenced && cluster.controller.events.since(0).some((e) => e.kind === 'node-back'),
    10_000,
    'back, its stale copies dropped',
  );
  t.is(cluster.nodes[0]!.server.engine.usageByJob().get(job.id), undefined, 'the stale copies are gone');
  t.deepEqual(
    [...(await readAll(old)).values()].filter((v) => v !== 'two'),
    [],
  );
});

/**
 * Coordination across processes on a real cluster (`LocalCluster`: every part its own process): counters
 * incremented from several function processes, a waiter in another process, and a watch that follows its job
 * onto a node added to the cluster while it runs.
 */
import test from 'ava';
import { Satchel, type WatchEvent } from '../client/index.ts';
import { LocalCluster } from '../deploy/index.ts';
import { finished, runTs, spawnTs } from './helpers/process.ts';
import { eventually } from './helpers/raw-client.ts';

const FUNCTION = 'test/fixtures/coordination-function.ts';
const MiB = 1024 * 1024;

let cluster: LocalCluster;
let satchel: Satchel;

test.before(async () => {
  cluster = await LocalCluster.start({ dram: 1, dramCapacity: 128 * MiB });
  satchel = await Satchel.connect(cluster.controller, { key: cluster.tenantKey });
});

test.after.always(async () => {
  satchel?.close();
  await cluster?.stop();
});

/** A gauge of the (one at first) storage node, read from its /metrics. */
async function nodeGauge(name: string): Promise<number> {
  let total = 0;
  for (const url of cluster.info.metrics.filter((u) => !u.includes(new URL(cluster.info.console).host))) {
    const text = await (await fetch(url)).text();
    for (const line of text.split('\n')) if (line.startsWith(`${name}{`)) total += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return total;
}

test.serial('counters: four processes incrementing at once give the exact total', async (t) => {
  const job = await satchel.registerJob('counters');
  t.teardown(() => job.deregister().catch(() => {}));
  const runs = await Promise.all(
    Array.from({ length: 4 }, () => runTs(FUNCTION, ['incr', job.ticket, 'done', '250'], { timeoutMs: 60_000 })),
  );
  for (const run of runs) t.is(run.code, 0, run.stderr + run.stdout);
  t.is((await job.get('done'))?.toString(), '1000');
  t.is(Math.max(...runs.map((r) => (JSON.parse(r.stdout) as { highest: number }).highest)), 1000, 'someone saw the last increment');
});

test.serial('a waiter in another process learns of the put; the node holds nothing for it afterwards', async (t) => {
  const job = await satchel.registerJob('waiting');
  t.teardown(() => job.deregister().catch(() => {}));
  const waiter = spawnTs(FUNCTION, ['wait', job.ticket, 'stage-1/out', '20000']);
  const done = finished(waiter, 30_000);
  await eventually(async () => (await nodeGauge('satchel_node_waiters')) === 1, 15_000, 'the waiter parked on the node');
  await job.put('stage-1/out', 'payload');
  const putAt = performance.timeOrigin + performance.now();
  const run = await done;
  t.is(run.code, 0, run.stderr + run.stdout);
  const result = JSON.parse(run.stdout) as { value: string; at: number };
  t.is(result.value, 'payload');
  t.log(`put acknowledged → waiter resolved: ${(result.at - putAt).toFixed(2)} ms`);
  t.is(await nodeGauge('satchel_node_waiters'), 0);
  // And one that arrives after the put returns at once.
  const late = await runTs(FUNCTION, ['wait', job.ticket, 'stage-1/out', '1000']);
  t.is(JSON.parse(late.stdout).value, 'payload');
});

test.serial('a watch follows its job onto a node added while it runs (the old node drained away)', async (t) => {
  const job = await satchel.registerJob('watched', { latencySensitive: true });
  t.teardown(() => job.deregister().catch(() => {}));
  const watch = await job.watch('out/');
  t.teardown(() => watch.close());
  const seen = new Map<string, WatchEvent['type']>();
  const reading = (async () => {
    for await (const event of watch) seen.set(event.key, event.type);
  })();
  for (let i = 0; i < 50; i++) await job.put(`out/before-${i}`, 'x');
  const first = cluster.info.nodes[0]!.id;
  const added = await cluster.addNode('dram');
  const admin = { authorization: `Bearer ${cluster.adminToken}` };
  const drained = await fetch(`${cluster.info.console}/api/nodes/${first}`, { method: 'DELETE', headers: admin });
  t.is(drained.status, 200, await drained.clone().text());
  const info = (await (
    await fetch(`${cluster.info.console}/api/jobs/${job.id}`, { headers: { authorization: `Bearer ${cluster.viewerToken}` } })
  ).json()) as { nodes: { id: string }[] };
  t.deepEqual(
    info.nodes.map((n) => n.id),
    [added.id],
    'the job lives on the new node only',
  );
  for (let i = 0; i < 50; i++) await job.put(`out/after-${i}`, 'y');
  await job.delete('out/after-7');
  await eventually(
    () => seen.get('out/after-7') === 'delete' && Array.from({ length: 50 }, (_, i) => `out/after-${i}`).every((k) => seen.has(k)),
    10_000,
    'every change after the move reported',
  );
  for (let i = 0; i < 50; i++) t.true(seen.has(`out/before-${i}`), `out/before-${i}`);
  await watch.close();
  await reading;
  t.is(await nodeGauge('satchel_node_watches'), 0, 'closing the watch freed it on the node');
});

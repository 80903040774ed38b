/**
 * The autoscaler with the local provisioner, end to end: a DRAM tier pushed over its band gets a node (a new
 * process) and, once the load is gone, drains one and stops it; a job's keys stay readable the whole time.
 */
import test from 'ava';
import { Satchel } from '../client/index.ts';
import type { ClusterEvent } from '../controller/index.ts';
import { LocalCluster } from '../deploy/index.ts';
import { alive } from './helpers/process.ts';
import { eventually } from './helpers/raw-client.ts';

const MiB = 1024 * 1024;

test('a tier over its band gets a node; when load falls a node is drained and stopped; no key lost', async (t) => {
  const cluster = await LocalCluster.start({
    dram: 1,
    dramCapacity: 48 * MiB,
    autoscale: {
      band: [60, 80],
      scaleUpAfterMs: 500,
      scaleDownAfterMs: 2_000,
      cooldownMs: 500,
      minNodes: { dram: 1 },
      maxNodes: { dram: 2 },
    },
  });
  t.teardown(() => cluster.stop());
  const satchel = await Satchel.connect(cluster.controller, { key: cluster.tenantKey });
  t.teardown(() => satchel.close());
  const api = cluster.info.console;
  const events = async () =>
    (await (await fetch(`${api}/api/events`, { headers: { authorization: `Bearer ${cluster.viewerToken}` } })).json()) as ClusterEvent[];
  const dramNodes = async () =>
    (
      (await (await fetch(`${api}/api/nodes`, { headers: { authorization: `Bearer ${cluster.viewerToken}` } })).json()) as {
        id: string;
        tier: string;
      }[]
    ).filter((n) => n.tier === 'dram');

  // A job whose keys must survive both changes, read all along by a function.
  const steady = await satchel.registerJob('steady', { latencySensitive: true, capacity: 2 * MiB });
  const keys = Array.from({ length: 300 }, (_, i) => `k/${i}`);
  await Promise.all(keys.map((k) => steady.put(k, `value of ${k}`)));
  const reader = await Satchel.attach(steady.ticket);
  t.teardown(() => reader.close());
  const failures: string[] = [];
  let reads = 0;
  let reading = true;
  t.teardown(() => {
    reading = false;
  });
  const readLoop = (async () => {
    for (let i = 0; reading; i++) {
      const key = keys[i % keys.length]!;
      try {
        const got = await reader.get(key);
        if (got?.toString() !== `value of ${key}`) failures.push(`${key}: ${got === null ? 'missing' : 'wrong value'}`);
        reads++;
      } catch (error) {
        failures.push(`${key}: ${(error as Error).message}`);
      }
      // Pacing, not a wait: a breath every 50 reads keeps this a steady reader rather than a flood.
      if (i % 50 === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    }
  })();

  // Load: 36 of 48 MiB held is 75 % + the steady job's reservation, over the 80 % band.
  const big = await satchel.registerJob('big', { latencySensitive: true, capacity: 40 * MiB });
  await Promise.all(Array.from({ length: 36 }, (_, i) => big.put(`chunk/${i}`, Buffer.alloc(MiB - 4096, i))));
  await eventually(async () => (await dramNodes()).length === 2, 20_000, 'a second DRAM node');
  const up = await events();
  const scaleUp = up.find((e) => e.kind === 'scale-up' && e.tier === 'dram');
  t.truthy(scaleUp, 'the scale-up is an event');
  t.regex(scaleUp!.reason, /dram capacity \d+ % > 80 %/);
  const joined = up.find((e) => e.kind === 'node-joined' && e.seq > scaleUp!.seq);
  t.truthy(joined);
  t.log(`launch decision → node registered: ${Date.parse(joined!.at) - Date.parse(scaleUp!.at)} ms`);
  await eventually(
    () => cluster.info.nodes.filter((n) => n.tier === 'dram').length === 2,
    10_000,
    'the new node listed as a process of this cluster',
  );

  // The load goes away: below the band for 2 s, one node is drained and stopped.
  await big.deregister();
  await eventually(
    async () => (await dramNodes()).length === 1 && (await events()).some((e) => e.kind === 'node-removed'),
    30_000,
    'back to one DRAM node',
  );
  const down = await events();
  const kinds = down.filter((e) => e.seq > joined!.seq).map((e) => e.kind);
  t.deepEqual(
    // The cluster's own decisions: job events (the big job's deregistration) are not the autoscaler's.
    kinds.filter((k) => k !== 'node-launched' && !k.startsWith('job-')),
    ['scale-down', 'drain-started', 'drain-finished', 'node-removed'],
  );
  const removed = down.find((e) => e.kind === 'node-removed')!.node!;
  const pid = [...cluster.info.nodes, { id: removed, pid: -1 }].find((n) => n.id === removed)!.pid;
  t.is(pid, -1, 'the removed node is gone from the cluster file');
  t.false(
    cluster.pids.some((p) => !alive(p)),
    'every process the cluster still lists runs',
  );

  reading = false;
  await readLoop;
  t.deepEqual(failures, []);
  t.true(reads > 100, `${reads} reads during the run`);
  for (const key of keys) t.is((await steady.get(key))?.toString(), `value of ${key}`);
});

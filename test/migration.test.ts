/**
 * Draining a storage node while a job's functions keep reading and writing: every acknowledged write stays
 * readable with its last value, no operation fails, and the node ends up out of every placement.
 */
import test from 'ava';
import { Satchel } from '../client/index.ts';
import type { ClusterEvent, DrainResult } from '../controller/index.ts';
import { LocalCluster } from '../deploy/index.ts';
import { waitFor } from './helpers/wait.ts';

const MiB = 1024 * 1024;

function valueFor(key: string, size = 1024): Buffer {
  const out = Buffer.alloc(size);
  out.write(`${key}|`.repeat(Math.ceil(size / (key.length + 1))).slice(0, size));
  return out;
}

test('a node drained under load: nothing lost, nothing failed, the node leaves every placement', async (t) => {
  const cluster = await LocalCluster.start({ dram: 2, dramCapacity: 256 * MiB });
  t.teardown(() => cluster.stop());
  const satchel = await Satchel.connect(cluster.controller, { key: cluster.tenantKey });
  t.teardown(() => satchel.close());
  const admin = { authorization: `Bearer ${cluster.adminToken}` };
  const api = cluster.info.console;

  // Enough throughput asked for to span both DRAM nodes.
  const job = await satchel.registerJob('drained', { latencySensitive: true, peakThroughput: 1.5e9 });
  const before = (await (
    await fetch(`${api}/api/jobs/${job.id}`, { headers: { authorization: `Bearer ${cluster.viewerToken}` } })
  ).json()) as { nodes: { id: string }[] };
  t.is(before.nodes.length, 2);
  const drained = before.nodes[0]!.id;

  const staticKeys = Array.from({ length: 2000 }, (_, i) => `static/${i}`);
  await Promise.all(staticKeys.map((key) => job.put(key, valueFor(key))));
  const large = ['large/a', 'large/b', 'large/c'];
  await Promise.all(large.map((key) => job.put(key, valueFor(key, 3 * MiB + 17))));

  // The load: a function attached from the ticket (its placement snapshot still names the drained node).
  const fn = await Satchel.attach(job.ticket);
  t.teardown(() => fn.close());
  const failures: string[] = [];
  const written = new Map<string, Buffer>();
  let running = true;
  let ops = 0;
  const lanes = Array.from({ length: 8 }, async (_, lane) => {
    for (let i = 0; running; i++) {
      try {
        if (i % 3 === 0) {
          const key = `live/${lane}/${i}`;
          const value = valueFor(key, 512 + (i % 7) * 100);
          await fn.put(key, value);
          written.set(key, value);
        } else if (i % 3 === 1) {
          const key = `hot/${lane}/${i % 5}`;
          const value = valueFor(`${key}#${i}`);
          await fn.put(key, value);
          written.set(key, value);
        } else {
          const key = staticKeys[(i * 7919 + lane) % staticKeys.length]!;
          const got = await fn.get(key);
          if (got === null || !got.equals(valueFor(key)))
            failures.push(`read of ${key} during the drain: ${got === null ? 'missing' : 'wrong value'}`);
        }
        ops++;
      } catch (error) {
        failures.push(`op ${i} of lane ${lane}: ${(error as Error).message}`);
      }
    }
  });

  // The drain starts with the load running, and the load runs on after it (the function's next operations on
  // the drained node's keys are answered STALE and go to the new placement).
  const moreOps = (from: number) =>
    waitFor(() => ops >= from + 60, {
      what: `60 more ops of the load (from ${from})`,
      detail: () => `${ops} ops, failures: ${failures.slice(0, 3).join('; ')}`,
    });
  await moreOps(0);
  const response = await fetch(`${api}/api/nodes/${drained}`, { method: 'DELETE', headers: admin });
  t.is(response.status, 200, await response.clone().text());
  const result = (await response.json()) as DrainResult;
  await moreOps(ops);
  running = false;
  await Promise.all(lanes);

  t.deepEqual(failures, []);
  t.true(ops > 100, `the load kept running (${ops} ops)`);
  t.log(`drain: ${JSON.stringify(result)}, ${ops} ops during the load, ${written.size} keys written`);
  t.is(result.jobs, 1);
  t.true(result.keys > 0, 'keys were moved');

  const after = (await (
    await fetch(`${api}/api/jobs/${job.id}`, { headers: { authorization: `Bearer ${cluster.viewerToken}` } })
  ).json()) as { placement: { generations: { nodes: { id: string }[] }[] } };
  t.false(
    after.placement.generations.some((g) => g.nodes.some((n) => n.id === drained)),
    'the drained node is in no generation',
  );
  const nodes = (await (await fetch(`${api}/api/nodes`, { headers: { authorization: `Bearer ${cluster.viewerToken}` } })).json()) as {
    id: string;
  }[];
  t.false(nodes.some((n) => n.id === drained));
  const events = (await (
    await fetch(`${api}/api/events`, { headers: { authorization: `Bearer ${cluster.viewerToken}` } })
  ).json()) as ClusterEvent[];
  t.deepEqual(
    events
      .filter((e) => e.node === drained)
      .map((e) => e.kind)
      .slice(-3),
    ['drain-started', 'drain-finished', 'node-removed'],
  );

  // Everything reads back, through the driver's handle, the function's, and a fresh attach from the old ticket.
  const late = await Satchel.attach(job.ticket);
  t.teardown(() => late.close());
  const expected = new Map<string, Buffer>([
    ...staticKeys.map((k) => [k, valueFor(k)] as const),
    ...large.map((k) => [k, valueFor(k, 3 * MiB + 17)] as const),
    ...written,
  ]);
  for (const reader of [job, fn, late]) {
    const wrong: string[] = [];
    await Promise.all(
      [...expected].map(async ([key, value]) => {
        const got = await reader.get(key);
        if (got === null || !got.equals(value)) wrong.push(key);
      }),
    );
    t.deepEqual(wrong, [], `every key reads back its last acknowledged value (${expected.size} keys)`);
  }
  const listed: string[] = [];
  for await (const key of late.list('static/')) listed.push(key);
  t.is(listed.length, staticKeys.length);
});

test('draining needs the admin token, a known node, and room elsewhere', async (t) => {
  const cluster = await LocalCluster.start({ dram: 1, dramCapacity: 64 * MiB });
  t.teardown(() => cluster.stop());
  const satchel = await Satchel.connect(cluster.controller, { key: cluster.tenantKey });
  t.teardown(() => satchel.close());
  const job = await satchel.registerJob('only-node', { latencySensitive: true });
  await job.put('k', 'v');
  const api = cluster.info.console;
  const node = cluster.info.nodes[0]!.id;
  t.is((await fetch(`${api}/api/nodes/${node}`, { method: 'DELETE' })).status, 401);
  const admin = { authorization: `Bearer ${cluster.adminToken}` };
  t.is((await fetch(`${api}/api/nodes/nope`, { method: 'DELETE', headers: admin })).status, 404);
  const full = await fetch(`${api}/api/nodes/${node}`, { method: 'DELETE', headers: admin });
  t.is(full.status, 409);
  t.is(((await full.json()) as { code: string }).code, 'FULL');
  t.is((await job.get('k'))?.toString(), 'v', 'a refused drain leaves the data readable');
  await job.put('k2', 'still writable');
  t.is((await job.get('k2'))?.toString(), 'still writable');
});

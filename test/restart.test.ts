/**
 * A storage node killed (SIGKILL) and started again with the same id and port, as a Kubernetes StatefulSet pod
 * after a crash: the new process holds none of the old one's data. Every acknowledged key of a replicated job
 * reads back (the issue this answers measured 111 of 200 reading as null), and a single-copy job's keys on it
 * fail with UNAVAILABLE, never null. Processes (LocalCluster), killed by PID.
 */
import test from 'ava';
import { type Job, Satchel } from '../client/index.ts';
import { LocalCluster } from '../deploy/index.ts';
import { keySlot, pickNode } from '../proto/index.ts';

const MiB = 1024 * 1024;
const keys = Array.from({ length: 200 }, (_, i) => `k/${i}`);

async function readAll(job: Job): Promise<string[]> {
  return Promise.all(
    keys.map((key) =>
      job.get(key).then(
        (v) => (v === null ? 'null' : v.toString()),
        (error: { code?: string }) => `error ${error.code}`,
      ),
    ),
  );
}

test('SIGKILL, then the same id and port: replicated keys all read back; single-copy keys on it are UNAVAILABLE, never null', async (t) => {
  t.timeout(120_000);
  const cluster = await LocalCluster.start({ dram: 3, ssd: 0, hdd: 0, dramCapacity: 128 * MiB, nodeTimeoutMs: 2_000 });
  t.teardown(() => cluster.stop());
  const satchel = await Satchel.connect(cluster.controller, { key: cluster.tenantKey, timeoutMs: 8_000 });
  t.teardown(() => satchel.close());
  const replicated = await satchel.registerJob('restart-r2', { replicas: 2, latencySensitive: true, peakThroughput: 2.5e9 });
  const single = await satchel.registerJob('restart-r1', { latencySensitive: true, peakThroughput: 2.5e9 });
  await replicated.putMany(keys.map((key) => [key, `r2 ${key}`] as const));
  await single.putMany(keys.map((key) => [key, `r1 ${key}`] as const));
  const nodes = (
    (await (
      await fetch(`${cluster.info.console}/api/jobs/${single.id}`, { headers: { authorization: `Bearer ${cluster.viewerToken}` } })
    ).json()) as { nodes: { id: string; address: string; weight: number }[] }
  ).nodes;
  t.is(nodes.length, 3);
  const victim = nodes[0]!.id;
  const onVictim = new Set(keys.filter((key) => nodes[pickNode(nodes, keySlot(key))]!.id === victim));
  t.true(onVictim.size > 0);

  const pid = cluster.nodePid(victim);
  await cluster.restartNode(victim, 'SIGKILL');
  t.not(cluster.nodePid(victim), pid, 'a new process');

  // Through tickets from before the restart, at once: the restarted process serves neither job.
  const r2 = await Satchel.attach(replicated.ticket, { timeoutMs: 8_000 });
  t.teardown(() => r2.close());
  const r1 = await Satchel.attach(single.ticket, { timeoutMs: 8_000 });
  t.teardown(() => r1.close());
  t.deepEqual(
    (await readAll(r2)).filter((v, i) => v !== `r2 ${keys[i]}`),
    [],
    'every acknowledged replicated key, none null',
  );
  const got = await readAll(r1);
  t.deepEqual(
    keys.filter((key, i) => got[i] !== (onVictim.has(key) ? 'error UNAVAILABLE' : `r1 ${key}`)),
    [],
    'single-copy keys of the restarted node UNAVAILABLE, the others served',
  );
  t.false(got.includes('null'));
});

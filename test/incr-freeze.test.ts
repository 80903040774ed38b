/**
 * Counters while one of their holders is frozen (SIGSTOP) past the node timeout, on three nodes: each increment
 * the call acknowledged is counted once, never twice. The primary applies it; the frozen replica is told until the
 * controller places the job without it. Before, the call was cut at half its time while the replica was told, and
 * retried at the new placement's primary, whose copy of the counter (restored from the old primary) already
 * counted it but did not know its token: an outsider's run read 10 of 50 counters +2 for one acknowledged +1.
 * Processes frozen by PID (LocalCluster).
 */
import test from 'ava';
import { Satchel } from '../client/index.ts';
import { LocalCluster } from '../deploy/index.ts';

const MiB = 1024 * 1024;

test('an increment acknowledged while a holder of its counter is frozen is counted once', async (t) => {
  t.timeout(120_000);
  const cluster = await LocalCluster.start({ dram: 3, ssd: 0, hdd: 0, dramCapacity: 64 * MiB, nodeTimeoutMs: 1_500 });
  t.teardown(() => cluster.stop());
  const satchel = await Satchel.connect(cluster.controller, { key: cluster.tenantKey, timeoutMs: 6_000 });
  t.teardown(() => satchel.close());
  const job = await satchel.registerJob('counters', { replicas: 2 });
  const keys = Array.from({ length: 50 }, (_, i) => `c/${i}`);
  await Promise.all(keys.map((key) => job.incr(key, 1000)));
  const api = cluster.info.console;
  const auth = { headers: { authorization: `Bearer ${cluster.viewerToken}` } };
  const nodes = ((await (await fetch(`${api}/api/jobs/${job.id}`, auth)).json()) as { nodes: { id: string }[] }).nodes;
  t.is(nodes.length, 2);

  // The first node is the primary of some counters and the replica of the others.
  await cluster.freezeNode(nodes[0]!.id);
  const results = await Promise.allSettled(keys.map((key) => job.incr(key, 1)));
  await cluster.thawNode(nodes[0]!.id);

  const reader = await Satchel.attach(job.ticket, { timeoutMs: 8_000 });
  t.teardown(() => reader.close());
  const totals = await Promise.all(keys.map(async (key) => Number(String(await reader.get(key)))));
  const acked = results.filter((r) => r.status === 'fulfilled').length;
  t.log(`${acked} of ${keys.length} increments acknowledged`);
  t.true(acked > 0);
  results.forEach((result, i) => {
    if (result.status === 'fulfilled') {
      t.is(result.value, 1001, `${keys[i]}: the total answered`);
      t.is(totals[i], 1001, `${keys[i]}: counted once`);
    } else t.true(totals[i] === 1000 || totals[i] === 1001, `${keys[i]}: failed (${(result.reason as Error).message}), so at most once`);
  });
  await job.deregister();
});

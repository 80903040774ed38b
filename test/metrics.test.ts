/**
 * `/metrics` on every process of a running cluster: the controller (its console), the metadata server and each
 * storage node answer in Prometheus text format that `promtool check metrics` accepts, and the numbers move.
 */
import test from 'ava';
import { Satchel } from '../client/index.ts';
import { LocalCluster } from '../deploy/index.ts';
import { promtoolCheck } from './helpers/promtool.ts';

test("every process serves /metrics that promtool accepts; node ops and the controller's jobs show up", async (t) => {
  const cluster = await LocalCluster.start({ dram: 1, ssd: 1 });
  t.teardown(() => cluster.stop());
  const satchel = await Satchel.connect(cluster.controller, { key: cluster.tenantKey });
  t.teardown(() => satchel.close());
  const job = await satchel.registerJob('metered', { latencySensitive: true });
  for (let i = 0; i < 5; i++) await job.put(`k${i}`, 'value');
  await job.get('k0');

  t.is(cluster.info.metrics.length, 1 + 1 + 2, 'controller, metadata, two nodes');
  const bodies = new Map<string, string>();
  for (const url of cluster.info.metrics) {
    // The console's /metrics needs the viewer token; the others ignore it.
    const response = await fetch(url, { headers: { authorization: `Bearer ${cluster.viewerToken}` } });
    t.is(response.status, 200, url);
    t.regex(response.headers.get('content-type') ?? '', /text\/plain/, url);
    const body = await response.text();
    bodies.set(url, body);
    const checked = promtoolCheck(body);
    t.is(checked.code, 0, `${url}: ${checked.output}`);
  }
  const all = [...bodies.values()].join('\n');
  t.regex(all, /^satchel_jobs 1$/m);
  t.regex(all, /^satchel_node_ops_total\{[^}]*op="put"[^}]*\} 5$/m);
  t.regex(all, /^satchel_metadata_/m);

  // The node's report carries the interval's op latency, so the console's latency chart has numbers.
  type NodeRow = { tier: string; stats: { latencyP50Us: number | null; latencyP99Us: number | null } | null };
  let seen: NodeRow['stats'] = null;
  for (let i = 0; seen === null && i < 100; i++) {
    await job.put('busy', `value ${i}`);
    const nodes = (await (
      await fetch(`${cluster.info.console}/api/nodes`, { headers: { authorization: `Bearer ${cluster.viewerToken}` } })
    ).json()) as NodeRow[];
    const dram = nodes.find((node) => node.tier === 'dram');
    if (dram?.stats?.latencyP50Us != null) seen = dram.stats;
    else await new Promise((resolve) => setTimeout(resolve, 50));
  }
  t.truthy(seen, 'a node report with latency reached the controller within 5 s');
  t.true(seen!.latencyP50Us! > 0 && seen!.latencyP99Us! >= seen!.latencyP50Us!, JSON.stringify(seen));
});

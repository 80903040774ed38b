/**
 * A storage node killed (SIGKILL, by PID) in the middle of a sort whose job keeps two copies of every key: the
 * sort completes and verifies (every record there, sorted, same checksum) — no acknowledged write was lost —
 * and the controller restores the copies on the surviving nodes.
 */
import test from 'ava';
import { Satchel } from '../client/index.ts';
import { LocalCluster } from '../deploy/index.ts';
import { FunctionPool } from '../perf/function-pool.ts';
import { runSort, type SortStore } from '../perf/shuffle.ts';

const MiB = 1024 * 1024;

test('replicas 2: a node killed mid-shuffle; the shuffle completes and verifies, copies restored', async (t) => {
  const cluster = await LocalCluster.start({ dram: 3, ssd: 0, hdd: 0, dramCapacity: 256 * MiB, nodeTimeoutMs: 1_500 });
  t.teardown(() => cluster.stop());
  const satchel = await Satchel.connect(cluster.controller, { key: cluster.tenantKey });
  t.teardown(() => satchel.close());
  const pool = new FunctionPool(2);
  t.teardown(() => pool.close());
  const job = await satchel.registerJob('sort-replicated', {
    latencySensitive: true,
    replicas: 2,
    peakThroughput: 2.5e9,
    capacity: 64 * MiB,
  });
  t.teardown(() => job.deregister().catch(() => {}));
  const store: SortStore = { system: 'satchel-dram', target: { kind: 'satchel', ticket: job.ticket }, job, release: async () => {} };
  const records = 200_000; // 20 MB
  let mapsDone = 0;
  let killed: string | null = null;
  const run = await runSort(
    pool,
    store,
    { seed: 'faults', records, mappers: 8, reducers: 8, prefix: '', functionBytesPerSecond: null },
    (what) => {
      // Half way through the map stage: mappers are writing partitions, the input is read, reducers are queued.
      if (what.includes(' map ') && ++mapsDone === 4 && killed === null) {
        const [id, pid] = [...cluster.nodePids][0]!;
        killed = id;
        process.kill(pid, 'SIGKILL');
      }
    },
  );
  t.not(killed, null, 'a node was killed during the sort');
  t.true(run.row.verified);
  t.is(run.row.records, records);
  const events = (await (
    await fetch(`${cluster.info.console}/api/events`, { headers: { authorization: `Bearer ${cluster.viewerToken}` } })
  ).json()) as { kind: string; node?: string }[];
  t.true(
    events.some((e) => e.kind === 'node-lost' && e.node === killed),
    'the controller noticed',
  );
  t.true(
    events.some((e) => e.kind === 'copies-restored' && e.node === killed),
    'and restored the copies',
  );
  const info = (await (
    await fetch(`${cluster.info.console}/api/jobs/${job.id}`, { headers: { authorization: `Bearer ${cluster.viewerToken}` } })
  ).json()) as { placement: { generations: { nodes: { id: string }[] }[] } };
  t.false(
    info.placement.generations.some((g) => g.nodes.some((n) => n.id === killed)),
    'the dead node is out of the placement',
  );
});

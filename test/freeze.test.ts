/**
 * A storage node frozen (SIGSTOP) past the node timeout, then resumed (SIGCONT): the controller restored its
 * replicated jobs elsewhere meanwhile, and a function still holding the original ticket — whose placement names
 * the frozen node first for half its keys — reads every overwrite made since, never the resumed node's stale
 * copies; single-copy jobs on it were not moved and read back as they were. Processes killed by PID
 * (LocalCluster).
 */
import test from 'ava';
import { type Job, Satchel } from '../client/index.ts';
import { LocalCluster } from '../deploy/index.ts';
import { keySlot, pickNodes } from '../proto/index.ts';
import { withoutPlacement } from './helpers/assert.ts';
import { eventually } from './helpers/raw-client.ts';

const MiB = 1024 * 1024;
const keys = Array.from({ length: 120 }, (_, i) => `k/${i}`);

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

test('frozen past the node timeout, then resumed: the original ticket reads every overwrite, never the stale copies', async (t) => {
  t.timeout(120_000);
  const cluster = await LocalCluster.start({ dram: 3, ssd: 0, hdd: 0, dramCapacity: 128 * MiB, nodeTimeoutMs: 1_500 });
  t.teardown(() => cluster.stop());
  const satchel = await Satchel.connect(cluster.controller, { key: cluster.tenantKey, timeoutMs: 8_000 });
  t.teardown(() => satchel.close());
  const replicated = await satchel.registerJob('frozen-r2', { replicas: 2, latencySensitive: true, peakThroughput: 2.5e9 });
  const single = await satchel.registerJob('frozen-r1', { latencySensitive: true, peakThroughput: 2.5e9 });
  await replicated.putMany(keys.map((key) => [key, 'one'] as const));
  await single.putMany(keys.map((key) => [key, `single ${key}`] as const));
  const api = cluster.info.console;
  const nodes = (
    (await (await fetch(`${api}/api/jobs/${replicated.id}`, { headers: { authorization: `Bearer ${cluster.viewerToken}` } })).json()) as {
      nodes: { id: string; address: string; weight: number }[];
    }
  ).nodes;
  t.is(nodes.length, 3);
  const victim = nodes[0]!.id;
  t.true(
    keys.some((key) => nodes[pickNodes(nodes, keySlot(key), 2)[0]!]!.id === victim),
    'the frozen node is the first copy of some keys',
  );

  // Functions attached before the freeze; they never hear of the placement change until a node says STALE.
  const original = await Satchel.attach(replicated.ticket, { timeoutMs: 8_000 });
  t.teardown(() => original.close());
  const originalSingle = await Satchel.attach(single.ticket, { timeoutMs: 8_000 });
  t.teardown(() => originalSingle.close());

  await cluster.freezeNode(victim);
  await eventually(
    async () => {
      const events = (await (await fetch(`${api}/api/events`, { headers: { authorization: `Bearer ${cluster.viewerToken}` } })).json()) as {
        kind: string;
        reason: string;
      }[];
      return events.some((e) => e.kind === 'copies-restored' && e.reason.includes(replicated.id));
    },
    20_000,
    'copies restored without the frozen node',
  );
  // Overwritten by a function that attached since (its placement leaves the frozen node out).
  const writer = await Satchel.attach(withoutPlacement(replicated.ticket), { timeoutMs: 8_000 });
  t.teardown(() => writer.close());
  await writer.putMany(keys.map((key) => [key, 'two'] as const));

  await cluster.thawNode(victim);
  // At once, before the resumed node's next report: its lease lapsed while it was frozen, so it refuses.
  t.deepEqual(
    (await readAll(original)).filter((v) => v !== 'two'),
    [],
    'no stale or null read through the original ticket',
  );
  t.deepEqual(
    await readAll(originalSingle),
    keys.map((key) => `single ${key}`),
    'the single-copy job on it was not moved',
  );
  // Once it reported: its stale copies dropped, the job's epoch raised on it first.
  await eventually(
    async () => {
      const events = (await (await fetch(`${api}/api/events`, { headers: { authorization: `Bearer ${cluster.viewerToken}` } })).json()) as {
        kind: string;
        node?: string;
      }[];
      return events.some((e) => e.kind === 'node-back' && e.node === victim);
    },
    10_000,
    'the node back',
  );
  const again = await Satchel.attach(replicated.ticket, { timeoutMs: 8_000 });
  t.teardown(() => again.close());
  t.deepEqual(
    (await readAll(again)).filter((v) => v !== 'two'),
    [],
  );
});

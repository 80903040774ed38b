/**
 * Drains and copy restorations are durable: a controller SIGKILLed in the middle of one and started again on
 * its state folder finishes it — every key readable with its value, the right number of copies, no orphan copy
 * left on a node that left the job. Whole clusters of processes (LocalCluster), killed by PID.
 */
import test from 'ava';
import { Satchel } from '../client/index.ts';
import { LocalCluster } from '../deploy/index.ts';
import { eventually } from './helpers/raw-client.ts';

const MiB = 1024 * 1024;
const KEYS = 12_000;

interface JobRow {
  epoch: number;
  nodes: { id: string }[];
  generations: number;
  pending: { kind: string; node: string } | null;
  lostNodes: string[];
}

interface NodeRow {
  id: string;
  stats: { jobs: Record<string, number> } | null;
}

/** A console read, with the viewer token (`cluster.viewerToken`). */
async function getJson<T>(url: string, viewerToken: string): Promise<T> {
  const response = await fetch(url, { headers: { authorization: `Bearer ${viewerToken}` } });
  if (!response.ok) throw new Error(`${url}: ${response.status} ${await response.text()}`);
  return (await response.json()) as T;
}

const valueFor = (key: string) => Buffer.from(`${key}:`.padEnd(600, '.'));

test('a controller killed mid-drain finishes the drain after its restart: nothing lost, nothing left on the drained node', async (t) => {
  t.timeout(120_000);
  const cluster = await LocalCluster.start({ dram: 2, dramCapacity: 256 * MiB, nodeTimeoutMs: 2_000 });
  t.teardown(() => cluster.stop());
  const satchel = await Satchel.connect(cluster.controller, { key: cluster.tenantKey, timeoutMs: 15_000 });
  t.teardown(() => satchel.close());
  const api = cluster.info.console;
  const job = await satchel.registerJob('drained', { latencySensitive: true, peakThroughput: 1.5e9 });
  const keys = Array.from({ length: KEYS }, (_, i) => `k/${i}`);
  await job.putMany(keys.map((key) => [key, valueFor(key)] as const));
  const drained = (await getJson<JobRow>(`${api}/api/jobs/${job.id}`, cluster.viewerToken)).nodes[0]!.id;

  // The drain runs inside this request; the controller dies while it copies.
  const drain = fetch(`${api}/api/nodes/${drained}`, {
    method: 'DELETE',
    headers: { authorization: `Bearer ${cluster.adminToken}` },
  }).catch(() => null);
  await eventually(
    async () => (await getJson<JobRow>(`${api}/api/jobs/${job.id}`, cluster.viewerToken)).pending?.kind === 'drain',
    20_000,
    'the drain copying',
  );
  await cluster.restartController('SIGKILL');
  await drain;

  // Restarted, it resumes once nodes have reported: the job leaves the drained node, whose process is stopped.
  await eventually(
    async () => {
      const row = await getJson<JobRow>(`${api}/api/jobs/${job.id}`, cluster.viewerToken);
      return row.pending === null && row.generations === 1 && !row.nodes.some((n) => n.id === drained);
    },
    60_000,
    'the drain finished after the restart',
  );
  await eventually(() => !cluster.info.nodes.some((n) => n.id === drained), 30_000, 'the drained node stopped by the provisioner');
  const reader = await Satchel.attach(job.ticket, { timeoutMs: 15_000 });
  t.teardown(() => reader.close());
  const values = await reader.getMany(keys);
  const bad = keys.filter((key, i) => !values[i]?.equals(valueFor(key)));
  t.deepEqual(bad.slice(0, 5), [], `${bad.length} of ${keys.length} keys not read back`);
  await job.deregister();
});

test('a controller killed while restoring a replicated job’s copies finishes them after its restart', async (t) => {
  t.timeout(120_000);
  const cluster = await LocalCluster.start({ dram: 3, dramCapacity: 256 * MiB, nodeTimeoutMs: 2_000 });
  t.teardown(() => cluster.stop());
  const satchel = await Satchel.connect(cluster.controller, { key: cluster.tenantKey, timeoutMs: 15_000 });
  t.teardown(() => satchel.close());
  const api = cluster.info.console;
  const job = await satchel.registerJob('restored', { replicas: 2, latencySensitive: true, peakThroughput: 2.5e9 });
  const keys = Array.from({ length: KEYS }, (_, i) => `k/${i}`);
  await job.putMany(keys.map((key) => [key, valueFor(key)] as const));
  const before = await getJson<JobRow>(`${api}/api/jobs/${job.id}`, cluster.viewerToken);
  t.is(before.nodes.length, 3);
  // What one copy of every key costs a node (storage-node engine.ts entryCost: key + value + 96).
  const perCopy = keys.reduce((n, key) => n + key.length + valueFor(key).length + 96, 0);

  const victim = before.nodes[0]!.id;
  process.kill(cluster.nodePids.get(victim)!, 'SIGKILL');
  await eventually(
    async () => (await getJson<JobRow>(`${api}/api/jobs/${job.id}`, cluster.viewerToken)).pending?.kind === 'restore',
    20_000,
    'copies being restored',
  );
  await cluster.restartController('SIGKILL');

  // The console shows `pending` as soon as the controller sets it, a moment before the record is persisted: a
  // kill inside that moment leaves a record with no restoration, and the restarted controller finds the victim
  // lost itself (a node timeout later). Either way the job ends off the victim with nothing pending.
  await eventually(
    async () => {
      const row = await getJson<JobRow>(`${api}/api/jobs/${job.id}`, cluster.viewerToken);
      return row.pending === null && !row.nodes.some((n) => n.id === victim);
    },
    60_000,
    'the restoration finished after the restart',
  );
  // Two copies of every key again, on the two living nodes (their reports: within a second or two).
  await eventually(
    async () => {
      const rows = await getJson<NodeRow[]>(`${api}/api/nodes`, cluster.viewerToken);
      const held = rows.filter((row) => row.id !== victim).reduce((n, row) => n + (row.stats?.jobs[job.id] ?? 0), 0);
      return held === 2 * perCopy;
    },
    15_000,
    'two copies of every key on the living nodes',
  );
  const reader = await Satchel.attach(job.ticket, { timeoutMs: 15_000 });
  t.teardown(() => reader.close());
  const values = await reader.getMany(keys);
  t.deepEqual(keys.filter((key, i) => !values[i]?.equals(valueFor(key))).slice(0, 5), []);
  await job.deregister();
});

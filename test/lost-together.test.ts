/**
 * Every copy of some keys out of reach at once: both nodes of a `replicas: 2` job frozen (SIGSTOP) past the node
 * timeout. The controller cannot restore those keys' copies from anywhere, so it keeps the generation they were in
 * as a remnant (controller/README.md "Remnants"); reads of them fail meanwhile, never answer null, and once the
 * nodes are back (SIGCONT, the same processes) their keys go forward and read back as written. (Both nodes
 * restarted instead, their data gone: client/replication.test.ts "both holders restart at once".) Processes
 * frozen by PID (LocalCluster).
 */
import test, { type ExecutionContext } from 'ava';
import { type Job, Satchel } from '../client/index.ts';
import { LocalCluster } from '../deploy/index.ts';
import { eventually } from './helpers/raw-client.ts';

const MiB = 1024 * 1024;
const keys = Array.from({ length: 150 }, (_, i) => `held/${i}`);

async function readAll(job: Job, some = keys): Promise<string[]> {
  return Promise.all(
    some.map((key) =>
      job.get(key).then(
        (v) => (v === null ? 'null' : v.toString()),
        (error: { code?: string }) => `error ${error.code}`,
      ),
    ),
  );
}

/** Until every key reads back as written through `reader` (30 s at most); the first misses are logged. */
async function everyKeyReadBack(t: ExecutionContext, reader: Job): Promise<void> {
  let last: string[] = [];
  await eventually(
    async () => {
      last = await readAll(reader);
      return last.every((v, i) => v === `value ${keys[i]}`);
    },
    30_000,
    'every acknowledged key read back',
  ).catch((error: unknown) => {
    t.log(last.filter((v, i) => v !== `value ${keys[i]}`).slice(0, 5));
    throw error;
  });
}

test('both holders frozen past the node timeout: their keys fail meanwhile, never null, and read back once they are thawed', async (t) => {
  t.timeout(120_000);
  const cluster = await LocalCluster.start({ dram: 4, ssd: 0, hdd: 0, dramCapacity: 128 * MiB, nodeTimeoutMs: 1_500 });
  t.teardown(() => cluster.stop());
  const satchel = await Satchel.connect(cluster.controller, { key: cluster.tenantKey, timeoutMs: 8_000 });
  t.teardown(() => satchel.close());
  const job = await satchel.registerJob('frozen-together', { replicas: 2, latencySensitive: true });
  await job.putMany(keys.map((key) => [key, `value ${key}`] as const));
  const api = cluster.info.console;
  const auth = { headers: { authorization: `Bearer ${cluster.viewerToken}` } };
  const placed = ((await (await fetch(`${api}/api/jobs/${job.id}`, auth)).json()) as { nodes: { id: string }[] }).nodes.map((n) => n.id);
  t.is(placed.length, 2);

  for (const id of placed) await cluster.freezeNode(id);
  const lost = async () => {
    const events = (await (await fetch(`${api}/api/events`, auth)).json()) as { kind: string; node?: string }[];
    return placed.every((id) => events.some((e) => e.kind === 'node-lost' && e.node === id));
  };
  await eventually(lost, 20_000, 'both nodes lost');
  // The job writes to nodes it was given since (a write waits, within its timeoutMs, for the placement that
  // replaces a frozen node: seconds, while the copies from the frozen pair time out); what only the frozen pair
  // held is not there.
  const writer = await Satchel.attach(job.ticket, { timeoutMs: 15_000 });
  t.teardown(() => writer.close());
  await writer.put('new', 'written while they were frozen');
  const prober = await Satchel.attach(job.ticket, { timeoutMs: 2_000 });
  t.teardown(() => prober.close());
  const during = await readAll(prober, keys.slice(0, 6));
  t.deepEqual(
    during.filter((v) => !v.startsWith('error')),
    [],
    `no answer while every copy is out of reach (got ${during.join(', ')})`,
  );

  for (const id of placed) await cluster.thawNode(id);
  const reader = await Satchel.attach(job.ticket, { timeoutMs: 8_000 });
  t.teardown(() => reader.close());
  await everyKeyReadBack(t, reader);
  t.is((await reader.get('new'))?.toString(), 'written while they were frozen');
  // Their keys went forward to the nodes the job writes to now, and the remnant was dropped.
  await eventually(
    async () => ((await (await fetch(`${api}/api/jobs/${job.id}`, auth)).json()) as { pending: unknown }).pending === null,
    30_000,
    'no copies pending',
  );
  t.false(
    ((await (await fetch(`${api}/api/jobs/${job.id}`, auth)).json()) as { nodes: { id: string }[] }).nodes.some((n) =>
      placed.includes(n.id),
    ),
    'the thawed nodes are no longer in the newest generation',
  );
  t.deepEqual(
    (await readAll(reader)).filter((v, i) => v !== `value ${keys[i]}`),
    [],
  );
  await job.deregister();
});

test('both nodes of a two-node cluster frozen past the node timeout: no node to restore onto, the job keeps them, and every key reads back once they are thawed', async (t) => {
  t.timeout(120_000);
  const cluster = await LocalCluster.start({ dram: 2, ssd: 0, hdd: 0, dramCapacity: 128 * MiB, nodeTimeoutMs: 1_500 });
  t.teardown(() => cluster.stop());
  const satchel = await Satchel.connect(cluster.controller, { key: cluster.tenantKey, timeoutMs: 8_000 });
  t.teardown(() => satchel.close());
  const job = await satchel.registerJob('frozen-two', { replicas: 2 });
  await job.putMany(keys.map((key) => [key, `value ${key}`] as const));
  const api = cluster.info.console;
  const auth = { headers: { authorization: `Bearer ${cluster.viewerToken}` } };
  const nodesOfJob = async () =>
    ((await (await fetch(`${api}/api/jobs/${job.id}`, auth)).json()) as { nodes: { id: string }[] }).nodes.map((n) => n.id).sort();
  const placed = await nodesOfJob();
  t.is(placed.length, 2);

  for (const id of placed) await cluster.freezeNode(id);
  await eventually(
    async () => {
      const events = (await (await fetch(`${api}/api/events`, auth)).json()) as { kind: string; reason: string }[];
      return events.some((e) => e.kind === 'replication-failed' && e.reason.includes('every other node of the job is lost too'));
    },
    20_000,
    'both lost, the second with nothing to restore onto',
  );
  for (const id of placed) await cluster.thawNode(id);

  // Before, the job was left with no generation at all: every key UNAVAILABLE for good.
  const reader = await Satchel.attach(job.ticket, { timeoutMs: 8_000 });
  t.teardown(() => reader.close());
  await everyKeyReadBack(t, reader);
  // And on both nodes again (a top-up once the second reported), so either may go next.
  await eventually(async () => JSON.stringify(await nodesOfJob()) === JSON.stringify(placed), 30_000, 'the job on both nodes again');
  await reader.put('after', 'thawed');
  t.is((await reader.get('after'))?.toString(), 'thawed');
  await job.deregister();
});

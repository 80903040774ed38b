/**
 * A node back from a freeze takes its replicated job back without the unchanged keys travelling again: told the
 * job moved, it sets the job's entries aside (storage-node engine.ts "Kept copies"), and the top-up that brings
 * the job back to it takes each key kept at the version the survivor holds (Flag.KEPT) and copies only what
 * changed meanwhile. Before, every key was copied again, and for as long as that took the survivor held the only
 * copy: an outsider's kill -9 of it 2 s after the thaw (3,000 keys of 100 KB) left 2,173 keys UNAVAILABLE. Then
 * the survivor is killed, the way Kubernetes does it (SIGKILL, same id and port), and every key reads as last
 * written from the resynced node alone: overwrites made during the freeze, deleted keys absent, never a kept
 * entry that changed. Processes frozen and killed by PID (LocalCluster).
 */
import test from 'ava';
import { type Job, Satchel } from '../client/index.ts';
import { LocalCluster } from '../deploy/index.ts';
import { eventually } from './helpers/raw-client.ts';

const MiB = 1024 * 1024;
const KEYS = 240;
const value = (key: string, round: string) => `${round} ${key} ${'x'.repeat(4000)}`;

interface Event {
  kind: string;
  node?: string;
  details?: Record<string, number>;
}

test('a node back from a freeze resyncs only what changed, and alone serves every key as last written once the survivor is killed', async (t) => {
  t.timeout(150_000);
  const cluster = await LocalCluster.start({ dram: 2, ssd: 0, hdd: 0, dramCapacity: 128 * MiB, nodeTimeoutMs: 1_500 });
  t.teardown(() => cluster.stop());
  const satchel = await Satchel.connect(cluster.controller, { key: cluster.tenantKey, timeoutMs: 8_000 });
  t.teardown(() => satchel.close());
  const job = await satchel.registerJob('resync', { replicas: 2 });
  const keys = Array.from({ length: KEYS }, (_, i) => `k/${i}`);
  await job.putMany(keys.map((key) => [key, value(key, 'first')] as const));
  const api = cluster.info.console;
  const auth = { headers: { authorization: `Bearer ${cluster.viewerToken}` } };
  const events = async () => (await (await fetch(`${api}/api/events`, auth)).json()) as Event[];
  const nodesOfJob = async () =>
    ((await (await fetch(`${api}/api/jobs/${job.id}`, auth)).json()) as { nodes: { id: string }[] }).nodes.map((n) => n.id).sort();
  const [survivor, frozen] = await nodesOfJob();
  t.truthy(frozen);

  await cluster.freezeNode(frozen!);
  await eventually(async () => (await nodesOfJob()).length === 1, 20_000, 'the job restored without the frozen node');
  // While it is frozen: 40 keys overwritten, 40 deleted, 40 new. The other 120 are what it may keep.
  const writer = await Satchel.attach(job.ticket, { timeoutMs: 8_000 });
  t.teardown(() => writer.close());
  const expected = new Map(keys.map((key) => [key, value(key, 'first')] as [string, string | null]));
  for (const key of keys.slice(0, 40)) {
    await writer.put(key, value(key, 'second'));
    expected.set(key, value(key, 'second'));
  }
  for (const key of keys.slice(40, 80)) {
    await writer.delete(key);
    expected.set(key, null);
  }
  for (let i = 0; i < 40; i++) {
    await writer.put(`new/${i}`, value(`new/${i}`, 'new'));
    expected.set(`new/${i}`, value(`new/${i}`, 'new'));
  }
  const before = (await events()).length;
  await cluster.thawNode(frozen!);

  let added: Event | undefined;
  await eventually(
    async () => {
      added = (await events()).slice(before).find((e) => e.kind === 'copies-added' && e.node === frozen);
      return added !== undefined;
    },
    30_000,
    'the job topped up on the thawed node',
  );
  // Of the survivor's 240 keys, the 160 unchanged since the freeze are taken back as kept; 40 overwritten and 40
  // new are sent.
  t.is(added!.details!.kept, 160, JSON.stringify(added));
  t.is(added!.details!.copies, 240);
  t.true(added!.details!.bytes! < 80 * 4100, `only the changed keys' bytes travel: ${added!.details!.bytes}`);

  await cluster.restartNode(survivor!);
  const reader = await Satchel.attach(job.ticket, { timeoutMs: 8_000 });
  t.teardown(() => reader.close());
  const readAll = (r: Job) =>
    Promise.all(
      [...expected.keys()].map((key) =>
        r.get(key).then(
          (v) => (v === null ? null : v.toString()),
          (error: { code?: string }) => `error ${error.code}`,
        ),
      ),
    );
  let last: (string | null)[] = [];
  const want = [...expected.values()];
  await eventually(
    async () => {
      last = await readAll(reader);
      return last.every((v, i) => v === want[i]);
    },
    30_000,
    'every key as last written, from the resynced node',
  ).catch((error: unknown) => {
    t.log(
      [...expected.keys()]
        .map((key, i) => [key, last[i]?.slice(0, 20) ?? null])
        .filter((_, i) => last[i] !== want[i])
        .slice(0, 8),
    );
    throw error;
  });
  t.pass();
  await job.deregister();
});

/**
 * A node restarted under the same id (nodes.ts `incarnationEnded`): a job that keeps one copy keeps the node in its
 * placement, and that placement is republished at the same epoch with the node marked `lost` (members.ts
 * `withLostMarks`) — persisted, told to the job's other nodes, sent to the metadata servers — through the job's
 * queue of changes, so it never races a growth or a migration; then the new process is placed on the job over it,
 * kept as a remnant (`withRestartedMember`). A replicated job is marked only in its remnant: its copies are
 * restored on live nodes. The store, the nodes' admin calls and the metadata servers are stand-ins that record
 * what they were sent.
 */
import { randomBytes } from 'node:crypto';
import test, { type ExecutionContext } from 'ava';
import { pino } from 'pino';
import type { NodeInfo, WirePlacement } from '../proto/index.ts';
import { ControllerContext } from './context.ts';
import { JobBook } from './jobs.ts';
import { NodeBook } from './nodes.ts';
import { PlacementChanges } from './placement-changes.ts';
import { QuotaEnforcer } from './quotas.ts';
import type { JobRecord } from './registry.ts';
import type { ControllerStore } from './store.ts';
import { defaultTenantKey } from './tenants.ts';

const secret = randomBytes(32);
const logger = pino({ level: 'silent' });
const MiB = 1024 * 1024;

/** Lets every promise callback queued so far run. */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

function nodeInfo(index: number, bootId: string): NodeInfo {
  // Port 1 on a loopback address of its own: nothing listens, so a data connection (a restoration's) is refused.
  return { id: `dram-${index}`, tier: 'dram', address: `127.0.0.${index + 2}:1`, capacity: 64 * MiB, bandwidth: 1e9, bootId };
}

async function setup(t: ExecutionContext) {
  // No spare placements (spare-jobs.test.ts has them): the calls recorded are the jobs' own.
  const ctx = new ControllerContext({ secret, logger, spareJobs: 0 });
  t.teardown(() => {
    ctx.admin.close();
    ctx.metadata.close();
  });
  ctx.address = '127.0.0.1:7070';
  ctx.metadata.connect('127.0.0.1:2'); // never dialled: its calls are replaced below
  const published: WirePlacement[] = [];
  const announced: { address: string; job: string; epoch: number; lost: string[] }[] = [];
  const stored = new Map<string, JobRecord>();
  ctx.store = {
    putJob: async (job: JobRecord) => void stored.set(job.id, structuredClone(job)),
    deleteJob: async (id: string) => void stored.delete(id),
    putNode: async () => {},
    putTenant: async () => {},
  } as unknown as ControllerStore;
  ctx.admin.announce = async (address, job, epoch, _flags, _bootId, placement) => {
    const lost = placement?.generations.flatMap((g) => g.filter((n) => n.lost === true).map((n) => n.id)) ?? [];
    announced.push({ address, job, epoch, lost });
  };
  ctx.admin.dropJob = async () => 0;
  ctx.metadata.publish = async (placement: WirePlacement) => {
    published.push(structuredClone(placement));
  };
  const jobs = new JobBook(ctx);
  await jobs.ensureDefaultTenant(defaultTenantKey(secret));
  const placements = new PlacementChanges(ctx, jobs);
  const nodes = new NodeBook(ctx, jobs, new QuotaEnforcer(ctx), placements);
  return { ctx, jobs, nodes, placements, published, announced, stored };
}

/** Ids of the nodes a placement marks lost, generation by generation. */
const lostIn = (placement: WirePlacement) => placement.generations.map((g) => g.nodes.filter((n) => n.lost === true).map((n) => n.id));

async function until(condition: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 200 && !condition(); i++) await new Promise((resolve) => setTimeout(resolve, 10));
  if (!condition()) throw new Error(`timed out waiting for ${what}`);
}

test('a node restarted under its id is marked lost in a single-copy job’s placement at the same epoch, then its new process placed on the job over that, kept as a remnant', async (t) => {
  const { ctx, jobs, nodes, published, announced, stored } = await setup(t);
  await nodes.registerNode(nodeInfo(0, 'boot-a'));
  await nodes.registerNode(nodeInfo(1, 'boot-b'));
  // More throughput than one node's bandwidth: the job goes on both.
  const { jobId } = await jobs.registerJob('single', { peakThroughput: 1.5e9 });
  const job = ctx.registry.jobs.get(jobId)!;
  t.is(job.placement.generations[0]!.nodes.length, 2);
  const epoch = job.placement.epoch;
  published.length = 0;
  announced.length = 0;

  await nodes.registerNode(nodeInfo(0, 'boot-a2'));
  await until(() => published.length >= 2, 'the mark, then the placement with the new process');
  t.deepEqual(job.lostNodes, ['dram-0']);
  t.deepEqual(job.rejoined, ['dram-0']);
  const shape = (p: WirePlacement) => ({
    epoch: p.epoch,
    generations: p.generations.map((g) => ({
      remnant: g.remnant === true,
      nodes: g.nodes.map((n) => `${n.id}${n.lost ? '(lost)' : ''}`).sort(),
    })),
  });
  t.deepEqual(
    published.map(shape),
    [
      { epoch, generations: [{ remnant: false, nodes: ['dram-0(lost)', 'dram-1'] }] },
      {
        epoch: epoch + 1,
        generations: [
          { remnant: false, nodes: ['dram-0', 'dram-1'] },
          { remnant: true, nodes: ['dram-0(lost)', 'dram-1'] },
        ],
      },
    ],
    'the metadata servers get the mark at the epoch they hold, then the new generation over the old, kept as a remnant',
  );
  t.deepEqual(shape(stored.get(jobId)!.placement), published[1] && shape(published[1]), 'the record holds it');
  // The other node is told the mark; then the new process on dram-0 is told the job (first: it joins), and dram-1.
  t.deepEqual(
    announced.map((a) => [a.address, a.epoch, a.lost]),
    [
      ['127.0.0.3:1', epoch, ['dram-0']],
      ['127.0.0.2:1', epoch + 1, ['dram-0']],
      ['127.0.0.3:1', epoch + 1, ['dram-0']],
    ],
  );

  // Another restart: the process placed on the job dies too. Marked, then placed again: the remnant it would leave
  // is the one there already (same nodes, same mark), so the job keeps one.
  published.length = 0;
  await nodes.registerNode(nodeInfo(0, 'boot-a3'));
  await until(() => published.length >= 2, 'marked and placed again');
  t.deepEqual(shape(job.placement), {
    epoch: epoch + 2,
    generations: [
      { remnant: false, nodes: ['dram-0', 'dram-1'] },
      { remnant: true, nodes: ['dram-0(lost)', 'dram-1'] },
    ],
  });
  t.deepEqual(job.rejoined, ['dram-0']);
});

test('the mark waits for a change of the job already under way (a migration, a growth) and goes out after it', async (t) => {
  const { ctx, jobs, nodes, placements, published } = await setup(t);
  await nodes.registerNode(nodeInfo(0, 'boot-a'));
  await nodes.registerNode(nodeInfo(1, 'boot-b'));
  const { jobId } = await jobs.registerJob('queued', { peakThroughput: 1.5e9 });
  const job = ctx.registry.jobs.get(jobId)!;
  published.length = 0;
  let release!: () => void;
  const running = placements.change(jobId, () => new Promise<void>((resolve) => (release = resolve)));
  await settle();

  await nodes.registerNode(nodeInfo(0, 'boot-a2'));
  await settle();
  t.deepEqual(job.lostNodes, ['dram-0'], 'the lost member is recorded at once');
  t.deepEqual(published, [], 'nothing published while the job’s earlier change runs');
  release();
  await running;
  await until(() => published.length > 0, 'the placement republished');
  t.deepEqual(lostIn(published[0]!), [['dram-0']]);
});

test('a growth after the restart keeps the remnant last, its mark with it; the new generation has the new process', async (t) => {
  const { ctx, jobs, nodes, placements, published } = await setup(t);
  await nodes.registerNode(nodeInfo(0, 'boot-a'));
  await nodes.registerNode(nodeInfo(1, 'boot-b'));
  const { jobId } = await jobs.registerJob('grown', { peakThroughput: 1.5e9 });
  await nodes.registerNode(nodeInfo(0, 'boot-a2'));
  await until(() => ctx.registry.jobs.get(jobId)!.placement.generations.length === 2, 'placed again');
  await nodes.registerNode(nodeInfo(2, 'boot-c'));
  const grown = await placements.growJob(jobId, 'dram-1', ctx.registry.jobs.get(jobId)!.placement.epoch, 'by-admin');
  t.is(grown, ctx.registry.jobs.get(jobId)!.placement, 'the caller gets the placement the job has, marks and all');
  t.deepEqual(lostIn(grown), [[], [], ['dram-0']]);
  t.deepEqual(
    grown.generations.map((g) => g.remnant === true),
    [false, false, true],
  );
  t.true(grown.generations[0]!.nodes.some((n) => n.id === 'dram-0'));
  t.deepEqual(lostIn(published.at(-1)!), [[], [], ['dram-0']]);
});

test('a replicated job is marked only in the remnant kept while its copies are restored on live nodes', async (t) => {
  const { ctx, jobs, nodes, published } = await setup(t);
  for (let i = 0; i < 3; i++) await nodes.registerNode(nodeInfo(i, `boot-${i}`));
  const { jobId } = await jobs.registerJob('copies', { replicas: 2, capacity: MiB });
  const job = ctx.registry.jobs.get(jobId)!;
  const on = job.placement.generations[0]!.nodes[0]!.id;
  const index = Number(on.slice('dram-'.length));
  const epoch = job.placement.epoch;
  published.length = 0;

  await nodes.registerNode(nodeInfo(index, 'boot-again'));
  await until(() => published.length > 0, 'the restoration’s placement');
  const during = published[0]!;
  t.true(during.epoch > epoch);
  t.deepEqual(
    during.generations.map((g) => g.remnant === true),
    [false, false, true],
    'while the copies are made, the generation as it was is kept as a remnant (after the one a replacement joined)',
  );
  t.deepEqual(lostIn(during), [[], [], [on]], 'the lost node marked there alone');
  t.false(
    during.generations.some((g) => g.remnant !== true && g.nodes.some((n) => n.id === on)),
    'the generations that take writes and copies leave it out',
  );
  // (No node answers here, so the copies are never made and the remnant stays: client/replication.test.ts and
  // test/lost-together.test.ts see what happens once they are, or cannot be.)
  t.deepEqual(job.lostNodes, [on], 'a lost member while the remnant names it: never announced the job again');
});

test('a growth never places a replicated job on a node only its remnant names: that node holds older copies of its keys', async (t) => {
  const { ctx, jobs, nodes, placements } = await setup(t);
  for (let i = 0; i < 3; i++) await nodes.registerNode(nodeInfo(i, `boot-${i}`));
  const { jobId } = await jobs.registerJob('copies', { replicas: 2, capacity: MiB });
  const job = ctx.registry.jobs.get(jobId)!;
  const entry = (i: number) => ({ id: `dram-${i}`, address: nodeInfo(i, '').address, weight: 1 });
  // dram-2 was lost (frozen) and is back, its restoration still waiting (for room, say): the remnant names it, and
  // it still holds what it had before the freeze.
  job.placement = {
    ...job.placement,
    generations: [{ nodes: [entry(0), entry(1)] }, { nodes: [entry(0), entry(1), entry(2)], remnant: true }],
  };
  job.pending = { kind: 'restore', node: 'dram-2' };
  const grown = await placements.growJob(jobId, 'dram-0', job.placement.epoch, 'by-admin');
  t.false(
    grown.generations[0]!.nodes.some((n) => n.id === 'dram-2'),
    'not on dram-2',
  );
  t.deepEqual(
    grown.generations.map((g) => g.remnant === true),
    [false, false, true],
  );
});

/**
 * Spare placements (spare-jobs.ts): a registration whose allocation matches a spare's takes it and writes only
 * its record before replying; a spare whose node restarted, or made before a metadata server joined, is never
 * taken but dropped; the pool keeps to its bounds and drops what ages out. The store, the nodes' admin calls and
 * the metadata servers are stand-ins that answer at once and record what they were asked.
 */

import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import test, { type ExecutionContext } from 'ava';
import { pino } from 'pino';
import type { WirePlacement } from '../proto/index.ts';
import type { Allocation } from './allocation.ts';
import { ControllerContext } from './context.ts';
import { JobBook } from './jobs.ts';
import { reconcileNode } from './members.ts';
import type { JobRecord } from './registry.ts';
import { SpareJobs, spareKey } from './spare-jobs.ts';
import type { ControllerStore } from './store.ts';
import { defaultTenantKey } from './tenants.ts';

const secret = randomBytes(32);
const logger = pino({ level: 'silent' });
const MiB = 1024 * 1024;

async function until(what: string, done: () => boolean, ms = 2_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(2);
  }
}

/** A context with one DRAM node and one metadata server; every call is recorded as `<what> <job id>`. */
async function setup(t: ExecutionContext, spareJobs?: number) {
  const ctx = new ControllerContext({ secret, logger, spareJobs });
  t.teardown(async () => {
    await ctx.spares.close();
    ctx.admin.close();
    ctx.metadata.close();
  });
  ctx.address = '127.0.0.1:7070';
  ctx.registry.nodes.set('n0', {
    id: 'n0',
    tier: 'dram',
    address: '127.0.0.1:1',
    capacity: 64 * MiB,
    bandwidth: 1e9,
    registeredAt: Date.now(),
    bootId: 'b0',
  });
  ctx.metadata.connect('127.0.0.1:2'); // never dialled: its calls are replaced below
  const calls: string[] = [];
  const stored = new Map<string, JobRecord>();
  ctx.store = {
    putJob: async (job: JobRecord) => {
      calls.push(`persist ${job.id}`);
      stored.set(job.id, structuredClone(job));
    },
    deleteJob: async (id: string) => {
      calls.push(`store delete ${id}`);
      stored.delete(id);
    },
    putTenant: async () => {},
  } as unknown as ControllerStore;
  const faults = { announce: false };
  ctx.admin.announce = async (_address: string, jobId: string) => {
    calls.push(`announce ${jobId}`);
    if (faults.announce) throw new Error('the node did not answer');
  };
  ctx.admin.dropJob = async (_address: string, jobId: string) => {
    calls.push(`drop ${jobId}`);
    return 0;
  };
  ctx.metadata.publish = async (placement: WirePlacement) => {
    calls.push(`publish ${placement.jobId}`);
  };
  ctx.metadata.drop = async (jobId: string) => {
    calls.push(`metadata drop ${jobId}`);
    return 0;
  };
  const jobs = new JobBook(ctx);
  await jobs.ensureDefaultTenant(defaultTenantKey(secret));
  return { ctx, jobs, calls, stored, faults };
}

/** The ids of the spares made so far (announced, never persisted). */
function spareIds(calls: string[]): string[] {
  const persisted = new Set(calls.filter((c) => c.startsWith('persist ')).map((c) => c.slice('persist '.length)));
  return calls
    .filter((c) => c.startsWith('announce '))
    .map((c) => c.slice('announce '.length))
    .filter((id) => !persisted.has(id));
}

test('a registration like the last takes a spare: only its record is written before the reply, and the spare is replaced', async (t) => {
  const { ctx, jobs, calls, stored } = await setup(t);
  const first = await jobs.registerJob('first', { capacity: MiB });
  t.true(calls.includes(`announce ${first.jobId}`) && calls.includes(`publish ${first.jobId}`), 'no spare yet: the long way');
  await until('a spare', () => ctx.spares.size === 1);
  const spares = spareIds(calls);
  t.is(spares.length, 1, 'one for an allocation seen once');
  for (const id of spares) t.true(calls.includes(`publish ${id}`), 'a spare is on its metadata servers too');
  t.false(stored.has(spares[0]!), 'a spare has no record');

  calls.length = 0;
  const second = await jobs.registerJob('second', { capacity: MiB });
  const during = [...calls];
  t.true(spares.includes(second.jobId), 'the job is a spare');
  t.deepEqual(during, [`persist ${second.jobId}`], 'nothing but its record before the reply');
  t.is(stored.get(second.jobId)?.name, 'second');
  t.is(stored.get(second.jobId)?.placement.epoch, 1);
  t.deepEqual(
    second.placement?.generations[0]?.nodes.map((n) => n.id),
    ['n0'],
  );
  t.true(ctx.registry.jobs.has(second.jobId));
  t.is(ctx.registry.jobs.namedOn('n0').has(second.jobId), true, 'indexed on its node like any job');
  await until('two spares', () => ctx.spares.size === 2);
  t.is(ctx.spares.taken, 1, 'the allocation repeats: two kept for it from now on');

  // Deregistering it drops it like any job.
  calls.length = 0;
  await jobs.deregisterJob(second.jobId);
  t.true(calls.includes(`drop ${second.jobId}`) && calls.includes(`metadata drop ${second.jobId}`));
  t.false(stored.has(second.jobId));
});

test('a node reporting a spare is not told to drop it; once the pool forgot it, it is', async (t) => {
  const { ctx, jobs, calls } = await setup(t);
  await jobs.registerJob('first', { capacity: MiB });
  await until('a spare', () => ctx.spares.size === 1);
  const [spare] = spareIds(calls);
  const usage = [{ jobId: spare!, bytes: 0, keys: 0 }] as unknown as Parameters<typeof reconcileNode>[1];
  const known = { has: (id: string) => ctx.isMaking(id) };
  t.deepEqual(reconcileNode('n0', usage, ctx.registry.jobs, known, []), []);
  await ctx.spares.close(); // forgets them, as a controller stopping does
  t.deepEqual(reconcileNode('n0', usage, ctx.registry.jobs, known, []), [{ kind: 'drop', jobId: spare! }]);
});

test('a spare whose node restarted since is never taken: it is dropped and the registration goes the long way', async (t) => {
  const { ctx, jobs, calls } = await setup(t);
  await jobs.registerJob('first', { capacity: MiB });
  await until('a spare', () => ctx.spares.size === 1);
  const spares = spareIds(calls);
  ctx.registry.nodes.get('n0')!.bootId = 'b1'; // a new incarnation: it never heard of the spares
  calls.length = 0;
  const second = await jobs.registerJob('second', { capacity: MiB });
  t.false(spares.includes(second.jobId));
  t.true(calls.includes(`announce ${second.jobId}`) && calls.includes(`publish ${second.jobId}`));
  await until('the stale spare dropped', () => spares.some((id) => calls.includes(`drop ${id}`)));
  const dropped = spares.find((id) => calls.includes(`drop ${id}`))!;
  await until('its placement dropped', () => calls.includes(`metadata drop ${dropped}`));
  t.is(ctx.spares.taken, 0);
});

test('a spare whose announcement failed is not kept: no report would tell the node of it', async (t) => {
  const { ctx, jobs, calls, faults } = await setup(t);
  faults.announce = true; // a registration goes on without it (the node's next report gets it), a spare does not
  const first = await jobs.registerJob('first', { capacity: MiB });
  await until('a spare tried', () => spareIds(calls).length === 1);
  const [tried] = spareIds(calls);
  await until('and dropped', () => calls.includes(`drop ${tried}`) && calls.includes(`metadata drop ${tried}`));
  t.is(ctx.spares.size, 0);
  faults.announce = false;
  const second = await jobs.registerJob('second', { capacity: MiB });
  t.true(calls.includes(`announce ${second.jobId}`), 'the long way');
  t.not(second.jobId, first.jobId);
});

test('a controller closing drops its ready spares from their nodes and metadata servers', async (t) => {
  const { ctx, jobs, calls } = await setup(t);
  await jobs.registerJob('first', { capacity: MiB });
  await until('a spare', () => ctx.spares.size === 1);
  const [spare] = spareIds(calls);
  await ctx.spares.close();
  t.true(calls.includes(`drop ${spare}`) && calls.includes(`metadata drop ${spare}`));
  t.false(ctx.isMaking(spare!));
});

test('a metadata server joining makes every spare stale', async (t) => {
  const { ctx, jobs, calls } = await setup(t);
  await jobs.registerJob('first', { capacity: MiB });
  await until('a spare', () => ctx.spares.size === 1);
  const spares = spareIds(calls);
  ctx.metadata.connect('127.0.0.1:3'); // sent every registered placement, not the spares'
  const second = await jobs.registerJob('second', { capacity: MiB });
  t.false(spares.includes(second.jobId));
  t.true(calls.includes(`publish ${second.jobId}`));
});

test('with spareJobs 0 no spare is made', async (t) => {
  const { ctx, jobs, calls } = await setup(t, 0);
  const first = await jobs.registerJob('first', { capacity: MiB });
  await sleep(30);
  t.deepEqual(spareIds(calls), []);
  t.is(ctx.spares.size, 0);
  const second = await jobs.registerJob('second', { capacity: MiB });
  t.true(calls.includes(`announce ${second.jobId}`));
  t.not(first.jobId, second.jobId);
});

function allocation(maxValueBytes: number): Allocation {
  return {
    tier: 'dram',
    reason: 'test',
    nodes: [{ id: 'n0', address: '127.0.0.1:1', weight: 1 }],
    reservation: MiB,
    blockSize: 4096,
    maxValueBytes,
  };
}

test('the pool keeps to its bound: the oldest spare makes room, and one past its age is dropped, not taken', async (t) => {
  const { ctx, calls } = await setup(t, 0);
  const pool = new SpareJobs(ctx, () => ctx.newJobId(), { max: 2, perAllocation: 1, refillDelayMs: 0, maxAgeMs: 60_000 });
  t.teardown(() => pool.close());
  const keys = [1, 2, 3].map((n) => spareKey(allocation(n * MiB), 1));
  pool.replenish(keys[0]!, allocation(MiB), 1, true);
  await until('the first', () => pool.size === 1);
  pool.replenish(keys[1]!, allocation(2 * MiB), 1, true);
  await until('the second', () => pool.size === 2);
  const [oldest] = spareIds(calls);
  pool.replenish(keys[2]!, allocation(3 * MiB), 1, true);
  await until('the oldest dropped', () => calls.includes(`drop ${oldest}`));
  await until('the third', () => spareIds(calls).length === 3);
  await until('two again', () => pool.size === 2);
  t.is(pool.take(keys[0]!), undefined, 'the oldest was evicted');
  t.truthy(pool.take(keys[2]!));

  const aging = new SpareJobs(ctx, () => ctx.newJobId(), { max: 2, refillDelayMs: 0, maxAgeMs: 20 });
  t.teardown(() => aging.close());
  aging.replenish(keys[0]!, allocation(MiB), 1, true);
  await until('one', () => aging.size >= 1);
  await sleep(40);
  const before = spareIds(calls).filter((id) => !calls.includes(`drop ${id}`));
  t.is(aging.take(keys[0]!), undefined, 'too old to be taken');
  await until('dropped', () => spareIds(calls).filter((id) => !calls.includes(`drop ${id}`)).length < before.length);
});

test('allocations that never repeat stop spares being made, but for a probe now and then; a take earns them back', async (t) => {
  const { ctx, calls } = await setup(t, 0);
  const pool = new SpareJobs(ctx, () => ctx.newJobId(), { max: 1, perAllocation: 1, refillDelayMs: 0 });
  t.teardown(() => pool.close());
  const made = () => spareIds(calls).length;
  const keys: string[] = [];
  for (let i = 1; i <= 41; i++) {
    keys.push(spareKey(allocation(i * 1024), 1));
    t.is(pool.take(keys.at(-1)!), undefined);
    pool.replenish(keys.at(-1)!, allocation(i * 1024), 1, false);
    await sleep(3);
  }
  // 8 of credit: the first 9 made (each evicting the one before, one credit each), then one in 16 misses.
  t.true(made() >= 9 && made() <= 12, `${made()} spares made for 41 registrations that never repeat`);
  await until('the last one made ready', () => pool.size === 1);
  const at = keys.findIndex((key) => pool.take(key) !== undefined);
  t.true(at >= 0);
  const before = made();
  pool.replenish(keys[at]!, allocation((at + 1) * 1024), 1, true);
  await until('made after a take', () => made() > before);
});

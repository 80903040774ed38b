/**
 * Quotas against a real storage node: what the controller records is what the node acknowledged, so a limit or a
 * lift the node did not take is sent again on the next run (every node report starts one), and a job whose lift
 * failed once writes again after the next. The node's answer is made to fail by wrapping the controller's admin
 * call, as a node that refuses or drops the frame would.
 */

import { randomBytes } from 'node:crypto';
import test, { type ExecutionContext } from 'ava';
import { pino } from 'pino';
import { NodeConnection, Op, SatchelError, Status, signToken } from '../proto/index.ts';
import { DramEngine, StorageServer } from '../storage-node/index.ts';
import { ControllerContext } from './context.ts';
import { QuotaEnforcer } from './quotas.ts';
import type { JobRecord } from './registry.ts';

const secret = randomBytes(32);
const logger = pino({ level: 'silent' });
const MiB = 1024 * 1024;
const JOB = 'quota-job';
const QUOTA = 1000;

async function startNode(t: ExecutionContext, id: string): Promise<string> {
  const server = new StorageServer({ id, engine: new DramEngine(64 * MiB), secret, logger, announcedJobsOnly: true });
  const address = await server.listen(0, '127.0.0.1');
  t.teardown(() => server.close());
  return address;
}

/** A controller context with one job on node n0 (announced to it), a quota of 1000 bytes, and the job's data connection. */
async function setup(t: ExecutionContext) {
  const address = await startNode(t, 'n0');
  const ctx = new ControllerContext({ secret, logger, jobQuotaBytes: QUOTA });
  t.teardown(() => ctx.admin.close());
  ctx.registry.nodes.set('n0', { id: 'n0', tier: 'dram', address, capacity: 64 * MiB, bandwidth: 1e9, registeredAt: Date.now() });
  const job: JobRecord = {
    id: JOB,
    name: JOB,
    hints: {},
    tier: 'dram',
    reason: 'test',
    reservation: MiB,
    createdAt: Date.now(),
    leaseExpiresAt: Date.now() + 60_000,
    placement: { jobId: JOB, epoch: 1, generations: [{ nodes: [{ id: 'n0', address, weight: 1 }] }], blockSize: MiB, maxValueBytes: MiB },
  };
  ctx.registry.jobs.set(JOB, job);
  await ctx.admin.announce(address, JOB, 1, 0, '');
  const data = new NodeConnection(address, signToken(secret, JOB), { timeoutMs: 3_000 });
  t.teardown(() => data.destroy());
  /** n0 reports the job holding `bytes` (what the quota is held against). */
  const report = (nodeId: string, bytes: number) =>
    ctx.stats.record({
      nodeId,
      token: '',
      cpu: 0,
      bytesIn: 0,
      bytesOut: 0,
      ops: 0,
      used: bytes,
      capacity: 64 * MiB,
      jobs: [{ jobId: JOB, bytes, epoch: job.placement.epoch }],
    });
  const put = async () => (await data.request({ op: Op.PUT, epoch: job.placement.epoch, key: 'k', value: Buffer.from('v') })).status;
  /** Every LIMIT_JOB the controller sends, as [node address, over]; `fail` decides which the node refuses. */
  const sent: [string, boolean][] = [];
  let fail: (address: string, over: boolean) => boolean = () => false;
  const real = ctx.admin.limitJob.bind(ctx.admin);
  ctx.admin.limitJob = async (to, jobId, over) => {
    sent.push([to, over]);
    if (fail(to, over)) throw new SatchelError('UNAVAILABLE', 'the node dropped the frame');
    return real(to, jobId, over);
  };
  return { ctx, job, address, report, put, sent, failNext: (f: typeof fail) => void (fail = f), quotas: new QuotaEnforcer(ctx) };
}

test('a lift the node refuses is sent again on the next report, and the job writes again', async (t) => {
  const { ctx, job, address, report, put, sent, failNext, quotas } = await setup(t);
  report('n0', 10);
  await quotas.enforce();
  t.deepEqual(sent, [], 'under the quota: nothing to tell');
  t.is(await put(), Status.OK);

  report('n0', QUOTA);
  await quotas.enforce();
  t.deepEqual(sent.splice(0), [[address, true]]);
  t.is(await put(), Status.FULL, 'at its quota: writes refused');
  t.deepEqual(job.limitedOn, ['n0']);
  t.like(job.overQuota, { bytes: QUOTA, tenant: undefined }, 'the job’s own quota, and its size');
  await quotas.enforce();
  t.deepEqual(sent, [], 'acknowledged: not told again');

  // Deletes brought it under; the node refuses the lift once.
  let refused = 0;
  failNext((_to, over) => !over && refused++ === 0);
  report('n0', 10);
  await quotas.enforce();
  t.deepEqual(sent.splice(0), [[address, false]]);
  t.is(job.overQuota, undefined, 'under its quota again (growth allowed)');
  t.deepEqual(job.limitedOn, ['n0'], 'the lift is not recorded: the node did not take it');
  t.is(await put(), Status.FULL, 'so the node still refuses writes');
  t.is(ctx.failures.byOp.get('limit_job'), 1, 'the failure is counted');

  // The next report: the lift again, taken this time.
  await quotas.enforce();
  t.deepEqual(sent.splice(0), [[address, false]]);
  t.is(job.limitedOn, undefined);
  t.is(await put(), Status.OK, 'the job writes again');
  await quotas.enforce();
  t.deepEqual(sent, [], 'nothing left to tell');
  t.is(ctx.failures.byOp.get('limit_job'), 1);
});

test('a limit the node does not take is sent again; a node that joins the job while it is over is told too', async (t) => {
  const { ctx, job, address, report, put, sent, failNext, quotas } = await setup(t);
  failNext((_to, over) => over);
  report('n0', QUOTA);
  await quotas.enforce();
  t.is(job.limitedOn, undefined);
  t.is(await put(), Status.OK, 'the node did not take the limit');
  failNext(() => false);
  await quotas.enforce();
  t.deepEqual(job.limitedOn, ['n0']);
  t.is(await put(), Status.FULL);
  t.deepEqual(sent.splice(0), [
    [address, true],
    [address, true],
  ]);

  // A second node joins the job (a drain moved part of it there): told on the next run, n0 not again.
  const other = await startNode(t, 'n1');
  ctx.registry.nodes.set('n1', { id: 'n1', tier: 'dram', address: other, capacity: 64 * MiB, bandwidth: 1e9, registeredAt: Date.now() });
  await ctx.admin.announce(other, JOB, 2, 0, '');
  await ctx.admin.announce(address, JOB, 2, 0, '');
  job.placement = {
    ...job.placement,
    epoch: 2,
    generations: [
      {
        nodes: [
          { id: 'n0', address, weight: 1 },
          { id: 'n1', address: other, weight: 1 },
        ],
      },
    ],
  };
  report('n1', 0);
  await quotas.enforce();
  t.deepEqual(sent.splice(0), [[other, true]]);
  t.deepEqual(job.limitedOn, ['n0', 'n1']);
  // A lost node is not asked (it would only time out); it is once it is back.
  report('n0', 0);
  ctx.registry.nodes.get('n1')!.lost = true;
  await quotas.enforce();
  t.deepEqual(sent.splice(0), [[address, false]]);
  t.deepEqual(job.limitedOn, ['n1']);
  ctx.registry.nodes.get('n1')!.lost = false;
  await quotas.enforce();
  t.deepEqual(sent.splice(0), [[other, false]]);
  t.is(job.limitedOn, undefined);
  t.is(ctx.failures.byOp.get('limit_job'), 1);
});

test('runs go one at a time: calls during a run make it go once more, not once each', async (t) => {
  const { report, sent, quotas } = await setup(t);
  report('n0', QUOTA);
  const first = quotas.enforce();
  const second = quotas.enforce();
  const third = quotas.enforce();
  t.is(second, first);
  t.is(third, first);
  await first;
  t.is(sent.length, 1, 'the run after saw the limit acknowledged');
});

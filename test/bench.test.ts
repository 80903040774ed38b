/**
 * `satchel bench shuffle` and `satchel bench jobs` as a user runs them, at a size that takes seconds: both
 * systems sort, verify, and the JSON and HTML reports are written.
 */
import test, { type ExecutionContext } from 'ava';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { Satchel } from '../client/index.ts';
import { LocalCluster } from '../deploy/index.ts';
import { redisSampler, satchelSampler } from '../perf/jobs.ts';
import { RedisProcess } from '../perf/redis-server.ts';
import type { JobsReport, ShuffleReport } from '../perf/shuffle-report.ts';
import { runTs } from './helpers/process.ts';
import { eventually } from './helpers/raw-client.ts';

const CLI = 'deploy/cli.ts';

async function tempDir(t: ExecutionContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'satchel-bench-test-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

test('bench shuffle sorts on Satchel and Redis, verifies both, and writes JSON and HTML', async (t) => {
  const dir = await tempDir(t);
  const json = join(dir, 'shuffle.json');
  const html = join(dir, 'shuffle.html');
  const M = 4;
  const R = 3;
  const run = await runTs(CLI, ['bench', 'shuffle', '--bytes', '2MB', '--mappers', String(M), '--reducers', String(R), '--concurrency', '2', '--json', json, '--html', html], { timeoutMs: 120_000 });
  t.is(run.code, 0, run.stderr);
  const report = JSON.parse(await readFile(json, 'utf8')) as ShuffleReport;
  t.deepEqual(report.results.map((r) => r.system).sort(), ['redis', 'satchel-dram']);
  for (const row of report.results) {
    t.true(row.verified);
    t.is(row.records, 20_000);
    t.true(row.seconds > 0 && row.phases.map_s > 0 && row.phases.reduce_s >= row.phases.shuffle_read_s);
    // Mappers read their slice and write R partitions; reducers read M, write one output, delete M. Satchel's
    // reducers read their partitions with waitFor (they start with the mappers); Redis's with GET.
    const waits = row.system === 'redis' ? 0 : M * R;
    t.is(row.by_op.get?.count, M + M * R - waits);
    t.is(row.by_op.wait?.count ?? 0, waits);
    t.is(row.by_op.put?.count, M * R + R);
    t.is(row.by_op.delete?.count, M * R);
    t.is(row.op_bytes, 4 * 2_000_000, 'each byte crosses the store four times: map read and write, reduce read and write');
  }
  t.is(report.timelines.length, 2);
  t.regex(run.stdout, /satchel-dram .* true/);
  t.true((await readFile(html, 'utf8')).startsWith('<!doctype html>'));
});

test('bench shuffle --controller --no-redis sorts on an existing cluster and leaves it running', async (t) => {
  const cluster = await LocalCluster.start({ dram: 1 });
  t.teardown(() => cluster.stop());
  const dir = await tempDir(t);
  const json = join(dir, 'shuffle.json');
  const run = await runTs(CLI, ['bench', 'shuffle', '--controller', cluster.controller, '--no-redis', '--bytes', '2MB', '--mappers', '3', '--reducers', '2', '--concurrency', '2', '--json', json], { timeoutMs: 120_000 });
  t.is(run.code, 0, run.stderr);
  const report = JSON.parse(await readFile(json, 'utf8')) as ShuffleReport;
  t.deepEqual(report.results.map((r) => r.system), ['satchel-dram']);
  t.true(report.results[0]!.verified);
  t.is(report.results[0]!.records, 20_000);
  t.deepEqual(report.timelines.map((l) => l.system), ['satchel-dram']);
  const row = run.stdout.split('\n').find((line) => line.startsWith('satchel-dram'));
  t.regex(row ?? '', / true$/);
  t.notRegex(row ?? '', /×\s+true$/, 'no ratio without a Redis row');

  // The cluster is still up: its jobs (warm-up and the sort) were deregistered, and it takes new ones.
  const jobs = (await (await fetch(`${cluster.info.console}/api/jobs`)).json()) as unknown[];
  t.deepEqual(jobs, []);
  const satchel = await Satchel.connect(cluster.controller);
  t.teardown(() => satchel.close());
  const job = await satchel.registerJob('after-the-bench', { capacity: 1024 * 1024 });
  await job.put('k', 'v');
  t.is((await job.get('k'))?.toString(), 'v');
  await job.deregister();
});

test('bench jobs runs staggered sorts on both systems and samples reserved and used bytes', async (t) => {
  const dir = await tempDir(t);
  const json = join(dir, 'jobs.json');
  const run = await runTs(CLI, ['bench', 'jobs', '--jobs', '2', '--stagger', '0.5', '--bytes', '4MB', '--mappers', '2', '--reducers', '2', '--concurrency', '2', '--json', json], { timeoutMs: 120_000 });
  t.is(run.code, 0, run.stderr);
  const report = JSON.parse(await readFile(json, 'utf8')) as JobsReport;
  t.is(report.jobs.length, 4);
  for (const job of report.jobs) t.true(job.verified && job.end_s > job.start_s);
  const satchelJobs = report.jobs.filter((j) => j.system === 'satchel-dram');
  t.true(satchelJobs[1]!.start_s - satchelJobs[0]!.start_s >= 0.45, 'the second job starts after the stagger');
  t.true(report.samples.some((s) => s.system === 'satchel-dram') && report.samples.some((s) => s.system === 'redis'));
  t.deepEqual(report.summary.map((s) => s.system).sort(), ['redis', 'satchel-dram']);
});

test('bench elasticity: a ramp against an autoscaling cluster, every key read back, the JSON the issue names', async (t) => {
  const dir = await tempDir(t);
  const json = join(dir, 'elasticity.json');
  const run = await runTs(
    CLI,
    ['bench', 'elasticity', '--seconds', '20', '--peak-ops', '1500', '--value-size', '16KiB', '--job-bytes', '4MiB', '--node-capacity', '256MiB', '--node-bandwidth', '8MB', '--scale-down-after-ms', '3000', '--json', json],
    { timeoutMs: 120_000 },
  );
  t.is(run.code, 0, run.stderr);
  const report = JSON.parse(await readFile(json, 'utf8')) as { samples: { t: number; nodes: Record<string, number>; utilization: Record<string, number>; reserved_bytes: number; used_bytes: number }[]; summary: Record<string, unknown> };
  t.true(report.samples.length >= 18);
  for (const key of ['lost_keys', 'failed_ops', 'scale_up_s', 'migration_s', 'node_seconds', 'peak_sized_node_seconds']) t.true(key in report.summary, key);
  t.is(report.summary.lost_keys, 0);
  t.is(report.summary.failed_ops, 0);
  // 1,500 ops/s of 16 KiB against nodes declaring 8 MB/s: the load needs more than one node.
  t.true(Math.max(...report.samples.map((s) => s.nodes.dram ?? 0)) >= 2, 'the cluster grew under the load');
  t.true((report.summary.scale_up_s as number[]).length >= 1);
});

test('bench shuffle refuses bad flags with a usage error', async (t) => {
  const run = await runTs(CLI, ['bench', 'shuffle', '--mappers', '0']);
  t.is(run.code, 2);
  t.regex(run.stderr, /--mappers: expected a whole number from 1/);
  const both = await runTs(CLI, ['bench', 'shuffle', '--no-redis', '--redis-shards', '2']);
  t.is(both.code, 2);
  t.regex(both.stderr, /--no-redis: not with --redis/);
  const nodes = await runTs(CLI, ['bench', 'shuffle', '--controller', '127.0.0.1:1', '--nodes', '2']);
  t.is(nodes.code, 2);
  t.regex(nodes.stderr, /--nodes: only for the cluster the benchmark starts/);
  const noConsole = await runTs(CLI, ['bench', 'jobs', '--controller', '127.0.0.1:1']);
  t.is(noConsole.code, 2);
  t.regex(noConsole.stderr, /--controller and --console go together/);
  const sizes = await runTs(CLI, ['bench', 'jobs', '--bytes', 'lots']);
  t.is(sizes.code, 2);
  t.regex(sizes.stderr, /--bytes: not a size/);
});

test('the jobs samplers read reserved and used bytes per tier from the console, and Redis dataset bytes', async (t) => {
  const cluster = await LocalCluster.start({ dram: 1, ssd: 1 });
  t.teardown(() => cluster.stop());
  const satchel = await Satchel.connect(cluster.controller);
  t.teardown(() => satchel.close());
  const job = await satchel.registerJob('sampled', { latencySensitive: true, capacity: 64 * 1024 * 1024 });
  await job.put('k', Buffer.alloc(3 * 1024 * 1024));
  const sampler = satchelSampler(cluster.info.console);
  let tiers = await sampler.sample();
  await eventually(async () => {
    tiers = await sampler.sample();
    return (tiers.dram?.used_bytes ?? 0) >= 3 * 1024 * 1024;
  }, 10_000, 'the node reports the job\'s bytes');
  t.true(tiers.dram!.reserved_bytes >= 3 * 1024 * 1024, 'reserved follows the job');
  t.deepEqual(tiers.ssd, { reserved_bytes: 0, used_bytes: 0 });
  await job.deregister();

  const redis = await RedisProcess.start();
  t.teardown(() => redis.stop());
  const client = new Redis({ host: redis.host, port: redis.port });
  t.teardown(() => client.disconnect());
  const redisSample = redisSampler([`${redis.host}:${redis.port}`]);
  t.teardown(() => redisSample.close());
  const before = (await redisSample.sample()).dram!.used_bytes;
  await client.set('k', Buffer.alloc(1024 * 1024));
  t.true((await redisSample.sample()).dram!.used_bytes >= before + 1024 * 1024);
});

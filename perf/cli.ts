/**
 * `satchel bench <name> [flags]`: the dispatcher, and the commands that time a workload (micro, register,
 * shuffle, jobs, elasticity, drain, wait, resp) with their tables. The long fault and limit runs' commands are in
 * cli-long.ts; what every command shares (flags, the report's command line and machine) in cli-flags.ts.
 */
import { writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { parseBytes } from '../deploy/index.ts';
import type { Tier } from '../proto/index.ts';
import { SatchelError } from '../proto/index.ts';
import { commandLine, machine, parseFlags, reportedOptions, whole } from './cli-flags.ts';
import { abuseCommand, coldstartCommand, nemesisCommand, scaleCommand, soakCommand } from './cli-long.ts';
import { EXISTING_CLUSTER_FLAGS, existingCluster } from './cluster-access.ts';
import { runWaitBench } from './coordination.ts';
import { runDrain } from './drain.ts';
import { runElasticity } from './elasticity.ts';
import { runJobs } from './jobs.ts';
import { formatSize, type MicroRow, runMicro } from './micro.ts';
import { runRegister } from './register.ts';
import { renderJobsHtml, renderShuffleHtml } from './report-html.ts';
import { respText, runResp } from './resp.ts';
import { runShuffle } from './shuffle.ts';
import type { JobsReport, ShuffleReport, ShuffleRow } from './shuffle-report.ts';

/** `satchel bench <name> [flags]`. */
export async function runBench(args: string[]): Promise<void> {
  const [name, ...rest] = args;
  switch (name) {
    case 'micro':
      return micro(rest);
    case 'register':
      return register(rest);
    case 'shuffle':
      return shuffle(rest);
    case 'jobs':
      return jobs(rest);
    case 'elasticity':
      return elasticity(rest);
    case 'drain':
      return drain(rest);
    case 'wait':
      return wait(rest);
    case 'soak':
      return soakCommand(rest);
    case 'nemesis':
      return nemesisCommand(rest);
    case 'abuse':
      return abuseCommand(rest);
    case 'coldstart':
      return coldstartCommand(rest);
    case 'resp':
      return resp(rest);
    case 'scale':
      return scaleCommand(rest);
    default:
      throw new SatchelError(
        'BAD_REQUEST',
        `unknown benchmark ${JSON.stringify(name ?? '')} (available: micro, register, shuffle, jobs, elasticity, drain, wait, soak, nemesis, abuse, coldstart, resp, scale)`,
      );
  }
}

async function micro(args: string[]): Promise<void> {
  // biome-ignore lint/suspicious/noImplicitAnyLet: typed by the parseArgs call below (its options give the type)
  let values;
  try {
    values = parseArgs({
      args,
      strict: true,
      options: {
        json: { type: 'string' },
        redis: { type: 'string' },
        seconds: { type: 'string' },
        sizes: { type: 'string' },
        concurrency: { type: 'string' },
        tier: { type: 'string' },
      },
    }).values;
  } catch (error) {
    throw new SatchelError('BAD_REQUEST', (error as Error).message);
  }
  const seconds = Number(values.seconds ?? '1.5');
  if (!(seconds > 0)) throw new SatchelError('BAD_REQUEST', '--seconds must be a positive number');
  const list = (text: string | undefined, fallback: number[], flag: string) => {
    if (text === undefined) return fallback;
    const numbers = text.split(',').map(Number);
    if (numbers.some((n) => !Number.isInteger(n) || n <= 0))
      throw new SatchelError('BAD_REQUEST', `${flag}: expected positive whole numbers separated by commas`);
    return numbers;
  };
  const tiers = (values.tier ?? 'dram').split(',');
  for (const tier of tiers) {
    if (tier !== 'dram' && tier !== 'ssd' && tier !== 'hdd')
      throw new SatchelError('BAD_REQUEST', `--tier: expected dram, ssd or hdd (comma-separated), got ${JSON.stringify(tier)}`);
  }
  const rows = await runMicro({
    tiers: tiers as Tier[],
    sizes: list(values.sizes, [1024, 64 * 1024, 1024 * 1024], '--sizes'),
    concurrencies: list(values.concurrency, [1, 64], '--concurrency'),
    ops: ['get', 'put'],
    seconds,
    warmupSeconds: Math.min(0.5, seconds / 3),
    redis: values.redis,
  });
  const report = { benchmark: 'micro', date: new Date().toISOString(), machine: machine(), results: rows };
  if (values.json) await writeFile(values.json, JSON.stringify(report, null, 2) + '\n');
  process.stdout.write(microTable(rows));
  if (values.json) process.stdout.write(`results written to ${values.json}\n`);
}

async function register(args: string[]): Promise<void> {
  // biome-ignore lint/suspicious/noImplicitAnyLet: typed by the parseArgs call below (its options give the type)
  let values;
  try {
    values = parseArgs({
      args,
      strict: true,
      options: { json: { type: 'string' }, redis: { type: 'string' }, jobs: { type: 'string' } },
    }).values;
  } catch (error) {
    throw new SatchelError('BAD_REQUEST', (error as Error).message);
  }
  const jobs = Number(values.jobs ?? '200');
  if (!Number.isInteger(jobs) || jobs < 1) throw new SatchelError('BAD_REQUEST', '--jobs must be a positive whole number');
  const rows = await runRegister({ jobs, backgroundInFlight: 16, redis: values.redis });
  const report = { benchmark: 'register', date: new Date().toISOString(), machine: machine(), results: rows };
  if (values.json) await writeFile(values.json, JSON.stringify(report, null, 2) + '\n');
  for (const row of rows) {
    process.stdout.write(
      `${row.system.padEnd(13)} ${row.op.padEnd(20)} p50 ${(row.p50_us / 1000).toFixed(2)} ms  p99 ${(row.p99_us / 1000).toFixed(2)} ms  p99.9 ${(row.p999_us / 1000).toFixed(2)} ms  (${row.count} times, background ${row.background_ops_per_s} ops/s in ${row.background}, load ${row.loadavg_1m.toFixed(2)})\n`,
    );
  }
}

/** Flags `bench shuffle` and `bench jobs` share: the sort, the functions, the systems. */
const SORT_FLAGS = {
  bytes: { type: 'string' },
  mappers: { type: 'string' },
  reducers: { type: 'string' },
  concurrency: { type: 'string' },
  tier: { type: 'string' },
  nodes: { type: 'string' },
  'redis-shards': { type: 'string' },
  redis: { type: 'string' },
  'no-redis': { type: 'boolean' },
  ...EXISTING_CLUSTER_FLAGS,
  'function-mbps': { type: 'string' },
  json: { type: 'string' },
  html: { type: 'string' },
} as const;

type SortFlagValues = Partial<Record<Exclude<keyof typeof SORT_FLAGS, 'no-redis'>, string>> & { 'no-redis'?: boolean };

function sortOptions(values: SortFlagValues, defaults: { bytes: string; mappers: number; reducers: number }) {
  const bytes = parseBytes(values.bytes ?? defaults.bytes, '--bytes');
  const mappers = whole(values.mappers, defaults.mappers, '--mappers', 1, 4096);
  const reducers = whole(values.reducers, defaults.reducers, '--reducers', 1, 4096);
  if (bytes < 100 * mappers) throw new SatchelError('BAD_REQUEST', `--bytes: ${bytes} bytes is under one 100-byte record per mapper`);
  const tier = values.tier ?? 'dram';
  if (tier !== 'dram' && tier !== 'ssd' && tier !== 'hdd')
    throw new SatchelError('BAD_REQUEST', `--tier: expected dram, ssd or hdd, got ${JSON.stringify(tier)}`);
  let functionBytesPerSecond: number | null = null;
  if (values['function-mbps'] !== undefined) {
    const mbps = Number(values['function-mbps']);
    if (!(mbps > 0))
      throw new SatchelError(
        'BAD_REQUEST',
        `--function-mbps: expected megabits per second, got ${JSON.stringify(values['function-mbps'])}`,
      );
    functionBytesPerSecond = (mbps * 1e6) / 8;
  }
  const redis = values.redis?.split(',');
  for (const address of redis ?? []) {
    if (!/^[^\s:]+:\d+$/.test(address))
      throw new SatchelError('BAD_REQUEST', `--redis: expected HOST:PORT[,HOST:PORT…], got ${JSON.stringify(values.redis)}`);
  }
  const noRedis = values['no-redis'] === true;
  if (noRedis && (values.redis !== undefined || values['redis-shards'] !== undefined))
    throw new SatchelError('BAD_REQUEST', '--no-redis: not with --redis or --redis-shards');
  if ((values.controller !== undefined || values['cluster-file'] !== undefined) && values.nodes !== undefined) {
    throw new SatchelError('BAD_REQUEST', '--nodes: only for the cluster the benchmark starts, not with --controller or --cluster-file');
  }
  return {
    bytes,
    mappers,
    reducers,
    concurrency: whole(values.concurrency, 8, '--concurrency', 1, 256),
    tier: tier as Tier,
    nodes: whole(values.nodes, 1, '--nodes', 1, 64),
    redisShards: noRedis ? 0 : (redis?.length ?? whole(values['redis-shards'], 1, '--redis-shards', 1, 64)),
    redis,
    noRedis,
    functionBytesPerSecond,
  };
}

async function shuffle(args: string[]): Promise<void> {
  const values = parseFlags(args, { ...SORT_FLAGS, rounds: { type: 'string' } });
  const sort = sortOptions(values, { bytes: '1GiB', mappers: 64, reducers: 64 });
  const options = {
    ...sort,
    rounds: whole(values.rounds, 1, '--rounds', 1, 20),
    cluster: await existingCluster(values, { console: false }),
  };
  const outcome = await runShuffle(options);
  const report: ShuffleReport = {
    benchmark: 'shuffle',
    date: new Date().toISOString(),
    command: commandLine('shuffle', args),
    machine: machine(),
    options: reportedOptions(options),
    results: outcome.results,
    timelines: outcome.timelines,
  };
  if (values.json) await writeFile(values.json, JSON.stringify(report, null, 2) + '\n');
  if (values.html) await writeFile(values.html, await renderShuffleHtml(report));
  process.stdout.write(shuffleTable(outcome.results));
  for (const file of [values.json, values.html]) if (file) process.stdout.write(`written: ${file}\n`);
}

async function jobs(args: string[]): Promise<void> {
  const values = parseFlags(args, { ...SORT_FLAGS, jobs: { type: 'string' }, stagger: { type: 'string' } });
  const stagger = Number(values.stagger ?? '2');
  if (!(stagger >= 0)) throw new SatchelError('BAD_REQUEST', `--stagger: expected seconds, got ${JSON.stringify(values.stagger)}`);
  const cluster = await existingCluster(values, { console: true, why: 'the console is where the samples come from' });
  const options = {
    ...sortOptions(values, { bytes: '256MiB', mappers: 16, reducers: 16 }),
    cluster,
    jobs: whole(values.jobs, 3, '--jobs', 1, 64),
    staggerSeconds: stagger,
  };
  const outcome = await runJobs(options);
  const report: JobsReport = {
    benchmark: 'jobs',
    date: new Date().toISOString(),
    command: commandLine('jobs', args),
    machine: machine(),
    options: reportedOptions(options),
    ...outcome,
  };
  if (values.json) await writeFile(values.json, JSON.stringify(report, null, 2) + '\n');
  if (values.html) await writeFile(values.html, await renderJobsHtml(report));
  const lines = ['system          job      start s    end s   seconds'];
  for (const job of outcome.jobs)
    lines.push(
      `${job.system.padEnd(15)} ${job.name.padEnd(8)} ${job.start_s.toFixed(1).padStart(7)} ${job.end_s.toFixed(1).padStart(8)} ${job.seconds.toFixed(2).padStart(9)}`,
    );
  for (const s of outcome.summary) {
    lines.push(
      `${s.system}: reserved/used ${s.reserved_over_used.toFixed(2)}× (mean ${(s.mean_reserved_bytes / 2 ** 20).toFixed(0)} MiB reserved, ${(s.mean_used_bytes / 2 ** 20).toFixed(0)} MiB used), makespan ${s.makespan_s.toFixed(1)} s`,
    );
  }
  process.stdout.write(lines.join('\n') + '\n');
  for (const file of [values.json, values.html]) if (file) process.stdout.write(`written: ${file}\n`);
}

async function elasticity(args: string[]): Promise<void> {
  const values = parseFlags(args, {
    json: { type: 'string' },
    seconds: { type: 'string' },
    'peak-ops': { type: 'string' },
    lanes: { type: 'string' },
    'value-size': { type: 'string' },
    'job-bytes': { type: 'string' },
    'node-capacity': { type: 'string' },
    'max-nodes': { type: 'string' },
    'scale-down-after-ms': { type: 'string' },
    'node-bandwidth': { type: 'string' },
    'job-every': { type: 'string' },
  });
  const options = {
    seconds: whole(values.seconds, 90, '--seconds', 20, 3600),
    peakOpsPerSecond: whole(values['peak-ops'], 12_000, '--peak-ops', 10, 10_000_000),
    lanes: whole(values.lanes, 64, '--lanes', 1, 4096),
    valueBytes: parseBytes(values['value-size'] ?? '64KiB', '--value-size'),
    jobBytes: parseBytes(values['job-bytes'] ?? '256MiB', '--job-bytes'),
    jobEverySeconds: whole(values['job-every'], 4, '--job-every', 1, 3600),
    nodeCapacity: parseBytes(values['node-capacity'] ?? '4GiB', '--node-capacity'),
    nodeBandwidth: parseBytes(values['node-bandwidth'] ?? '250MB', '--node-bandwidth'),
    maxNodes: whole(values['max-nodes'], 6, '--max-nodes', 1, 64),
    scaleDownAfterMs: whole(values['scale-down-after-ms'], 8000, '--scale-down-after-ms', 0, 600_000),
  };
  if (options.valueBytes < 16 || options.valueBytes > 1024 * 1024)
    throw new SatchelError('BAD_REQUEST', '--value-size: from 16 bytes to 1MiB');
  const outcome = await runElasticity(options);
  const report = {
    benchmark: 'elasticity',
    date: new Date().toISOString(),
    command: commandLine('elasticity', args),
    machine: machine(),
    options,
    ...outcome,
  };
  if (values.json) await writeFile(values.json, JSON.stringify(report, null, 2) + '\n');
  const s = outcome.summary;
  const saved = s.peak_sized_node_seconds > 0 ? 1 - s.node_seconds / s.peak_sized_node_seconds : 0;
  process.stdout.write(
    [
      `ops ${s.ops} (p50 ${(s.p50_us / 1000).toFixed(2)} ms, p99 ${(s.p99_us / 1000).toFixed(2)} ms), failed ${s.failed_ops}, keys written ${s.keys_written}, lost ${s.lost_keys}`,
      `scale-ups: decision → node serving ${s.scale_up_s.map((x) => `${x.toFixed(2)} s`).join(', ') || 'none'}`,
      `drains: ${s.migration_s.map((x, i) => `${x.toFixed(2)} s for ${(s.migration_bytes[i]! / 2 ** 20).toFixed(0)} MiB`).join(', ') || 'none'}; p99 during them ${s.p99_during_migration_us === null ? '-' : `${(s.p99_during_migration_us / 1000).toFixed(2)} ms`}; ${s.relaunches} relaunched within two scale-down windows`,
      `node-seconds ${s.node_seconds} vs ${s.peak_sized_node_seconds} sized for the peak (${(saved * 100).toFixed(0)} % fewer); reserved/used ${s.reserved_over_used.toFixed(2)}×`,
      `node-seconds an oracle keeping every node under the band's top would have used for this load: ${s.oracle_node_seconds} (${(s.oracle_node_seconds / Math.max(1, s.peak_sized_node_seconds)).toFixed(2)}× the peak-sized); the run used ${(s.node_seconds / Math.max(1, s.oracle_node_seconds)).toFixed(2)}× that (over 1: nodes kept beyond the load; under 1: time over the band)`,
    ].join('\n') + '\n',
  );
  if (values.json) process.stdout.write(`written: ${values.json}\n`);
  if (s.failed_ops > 0 || s.lost_keys > 0) process.exitCode = 1;
}

async function drain(args: string[]): Promise<void> {
  const values = parseFlags(args, {
    json: { type: 'string' },
    bytes: { type: 'string' },
    'value-size': { type: 'string' },
    lanes: { type: 'string' },
  });
  const options = {
    bytes: parseBytes(values.bytes ?? '1GiB', '--bytes'),
    valueBytes: parseBytes(values['value-size'] ?? '64KiB', '--value-size'),
    lanes: whole(values.lanes, 16, '--lanes', 1, 1024),
  };
  if (options.valueBytes < 16 || options.valueBytes > 1024 * 1024)
    throw new SatchelError('BAD_REQUEST', '--value-size: from 16 bytes to 1MiB');
  const summary = await runDrain(options);
  const report = {
    benchmark: 'drain',
    date: new Date().toISOString(),
    command: commandLine('drain', args),
    machine: machine(),
    options,
    summary,
  };
  if (values.json) await writeFile(values.json, JSON.stringify(report, null, 2) + '\n');
  const ms = (us: number) => `${(us / 1000).toFixed(2)} ms`;
  process.stdout.write(
    `drained ${(summary.drained_bytes / 2 ** 20).toFixed(0)} MiB (${summary.keys_moved} keys) in ${summary.migration_s.toFixed(2)} s under load\n` +
      `op latency before: p50 ${ms(summary.p50_before_us)} p99 ${ms(summary.p99_before_us)}; during: p50 ${ms(summary.p50_during_us)} p99 ${ms(summary.p99_during_us)} (${summary.ops_during} ops)\n` +
      `failed ops ${summary.failed_ops}, lost keys ${summary.lost_keys} of ${summary.keys_checked} checked\n`,
  );
  if (summary.failed_ops > 0 || summary.lost_keys > 0) process.exitCode = 1;
}

async function wait(args: string[]): Promise<void> {
  const values = parseFlags(args, {
    json: { type: 'string' },
    notifications: { type: 'string' },
    waiters: { type: 'string' },
    'redis-waiters': { type: 'string' },
    'idle-seconds': { type: 'string' },
  });
  const options = {
    notifications: whole(values.notifications, 1000, '--notifications', 10, 1_000_000),
    waiters: whole(values.waiters, 10_000, '--waiters', 1, 1_000_000),
    // Each Redis waiter is a connection, and redis-server accepts 10,000 clients by default.
    redisWaiters: whole(values['redis-waiters'], 2_000, '--redis-waiters', 1, 9_000),
    idleSeconds: whole(values['idle-seconds'], 10, '--idle-seconds', 1, 3_600),
  };
  const summary = await runWaitBench(options);
  const report = {
    benchmark: 'wait',
    date: new Date().toISOString(),
    command: commandLine('wait', args),
    machine: machine(),
    options,
    summary,
  };
  if (values.json) await writeFile(values.json, JSON.stringify(report, null, 2) + '\n');
  const lines = [
    'notify: write acknowledged → waiter in another process has the value (µs)',
    'system          count      p50      p99   from send p50',
  ];
  for (const row of summary.notify) {
    lines.push(
      `${row.system.padEnd(14)} ${String(row.notifications).padStart(6)} ${String(row.p50_us).padStart(8)} ${String(row.p99_us).padStart(8)} ${String(row.from_send_p50_us).padStart(15)}`,
    );
  }
  lines.push(
    '',
    'idle waiters on one server',
    'system         waiters  RSS before  RSS after  bytes/waiter  CPU idle (without)  wake all ms',
  );
  for (const row of summary.idle) {
    const cpu = `${(row.idle_cpu_fraction * 100).toFixed(2)} % (${(row.idle_cpu_fraction_without * 100).toFixed(2)} %)`;
    lines.push(
      `${row.system.padEnd(14)} ${String(row.waiters).padStart(8)} ${`${row.rss_before_mb} MB`.padStart(11)} ${`${row.rss_after_mb} MB`.padStart(10)} ${String(row.bytes_per_waiter).padStart(13)} ${cpu.padStart(19)} ${String(row.wake_all_ms).padStart(12)}`,
    );
  }
  process.stdout.write(lines.join('\n') + '\n');
}

/** `bench resp`: redis-benchmark against redis-server and against Satchel's RESP front door (resp.ts). */
async function resp(args: string[]): Promise<void> {
  const values = parseFlags(args, {
    requests: { type: 'string', short: 'n' },
    clients: { type: 'string' },
    'latency-requests': { type: 'string' },
    'latency-clients': { type: 'string' },
    nodes: { type: 'string' },
    rounds: { type: 'string' },
    quick: { type: 'boolean' },
    floor: { type: 'boolean' },
    json: { type: 'string' },
  });
  // --quick: a smoke run of a few seconds (the test's): tiny -n, one round, no warm-up.
  const quick = values.quick === true;
  const nodes = whole(values.nodes, 1, '--nodes', 1, 8);
  // With --cluster redis-benchmark (a thread per node) ends a test on a 250 ms tick: 200,000 requests at
  // 400,000/s came out as 397,614/s on both systems, so cluster runs default to ten times as many.
  const requests = whole(values.requests, quick ? 2_000 : nodes > 1 ? 2_000_000 : 200_000, '-n', 1, 100_000_000);
  const options = {
    requests,
    clients: whole(values.clients, quick ? 8 : 50, '--clients', 1, 10_000),
    pipeline: 16,
    latencyRequests: whole(values['latency-requests'], quick ? 500 : Math.min(requests, 100_000), '--latency-requests', 1, 100_000_000),
    latencyClients: whole(values['latency-clients'], quick ? 2 : 10, '--latency-clients', 1, 10_000),
    valueBytes: 1024,
    nodes,
    rounds: whole(values.rounds, quick ? 1 : 3, '--rounds', 1, 100),
    warmup: !quick,
    floor: values.floor === true,
  };
  if (options.floor && nodes > 1) throw new SatchelError('BAD_REQUEST', '--floor: one node only (the floor server is not a Redis Cluster)');
  const report = await runResp(options, commandLine('resp', args), machine());
  if (values.json) await writeFile(values.json, JSON.stringify(report, null, 2) + '\n');
  process.stdout.write(respText(report));
  if (values.json) process.stdout.write(`written: ${values.json}\n`);
}

function shuffleTable(rows: (ShuffleRow & { round: number })[]): string {
  const lines = ['system            round  records     M×R      seconds   map s  read s  reduce s   p50 µs   p99 µs   vs redis  verified'];
  for (const row of rows) {
    const base = rows.find((r) => r.system.startsWith('redis') && r.round === row.round);
    const ratio = base && base !== row ? `${(row.seconds / base.seconds).toFixed(2)}×` : '';
    lines.push(
      `${row.system.padEnd(17)} ${String(row.round + 1).padStart(5)} ${String(row.records).padStart(9)} ${`${row.mappers}×${row.reducers}`.padStart(9)} ${row.seconds.toFixed(2).padStart(10)} ${row.phases.map_s.toFixed(2).padStart(7)} ${row.phases.shuffle_read_s.toFixed(2).padStart(7)} ${row.phases.reduce_s.toFixed(2).padStart(9)} ${String(Math.round(row.p50_us)).padStart(8)} ${String(Math.round(row.p99_us)).padStart(8)} ${ratio.padStart(10)}  ${row.verified}`,
    );
  }
  return lines.join('\n') + '\n';
}

/** The human summary: Satchel against Redis, cell by cell, with the ratio that the targets are stated in. */
function microTable(rows: MicroRow[]): string {
  const lines = ['op   size    inflight  system         p50 µs   p99 µs p99.9 µs    max µs     ops/s        MB/s   vs redis'];
  for (const row of rows) {
    const base = rows.find((r) => r.system === 'redis' && r.op === row.op && r.size === row.size && r.concurrency === row.concurrency);
    const ratio =
      row.system !== 'redis' && base
        ? `${(row.ops_per_s / base.ops_per_s).toFixed(2)}× ops, p50 ${(row.p50_us / base.p50_us).toFixed(2)}×`
        : '';
    lines.push(
      `${row.op.padEnd(4)} ${formatSize(row.size).padEnd(7)} ${String(row.concurrency).padStart(8)}  ${row.system.padEnd(13)} ${row.p50_us.toFixed(1).padStart(8)} ${row.p99_us.toFixed(1).padStart(8)} ${row.p999_us.toFixed(1).padStart(8)} ${row.max_us.toFixed(1).padStart(9)} ${String(row.ops_per_s).padStart(9)} ${(row.bytes_per_s / 1e6).toFixed(1).padStart(11)}   ${ratio}`,
    );
  }
  return lines.join('\n') + '\n';
}

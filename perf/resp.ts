/**
 * `satchel bench resp`: the stock `redis-benchmark` against redis-server and against Satchel's RESP front door,
 * with the same options, in one run (issue 18). Redis runs as a Redis Cluster of `nodes` redis-servers
 * (`--cluster-enabled yes`, a throwaway cluster-config-file, the slots split with CLUSTER ADDSLOTSRANGE, then
 * cluster_state:ok); Satchel as a LocalCluster of `nodes` DRAM nodes with one job registered, driven through its
 * `redisUrl` (`--user <job> -a <token>`).
 *
 * Two measurements, each run against both systems in every round (the order alternating round by round):
 * - throughput: `-t set,get -P 16 -c <clients> -d 1024 -n <requests>`, requests/s of SET and GET;
 * - latency: `-t get -P 1 -c <latency clients> -d 1024 -n <latency requests>`, GET's p50 from `--csv`.
 *
 * redis-benchmark (7.0) refuses `--cluster` against a cluster of one node ("Invalid cluster: 1 node(s)"), so with
 * one node it runs without `--cluster`: every key's slot is that node's on both sides, and Satchel still routes
 * every command by its slot. With `--nodes 2` or more it runs with `--cluster`. Without `-r` redis-benchmark
 * uses one key per test (`key:__rand_int__`, in cluster mode with a random slot's hash tag per request), so the
 * GETs of the latency run read the 1 KiB value the throughput run's SETs wrote.
 */
import { type ChildProcess, execFile, fork, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { extname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { type RegisteredJob, Satchel } from '../client/index.ts';
import { LocalCluster } from '../deploy/index.ts';
import { SatchelError } from '../proto/index.ts';
import { cpuSecondsOf } from './proc.ts';
import { Progress } from './progress.ts';
import { freePort, RedisProcess } from './redis-server.ts';

const run = promisify(execFile);
const FLOOR = fileURLToPath(new URL(`./resp-floor${extname(fileURLToPath(import.meta.url))}`, import.meta.url));

export interface RespBenchOptions {
  /** Requests per test of the throughput run (`-n`). */
  requests: number;
  /** Connections of the throughput run (`-c`). */
  clients: number;
  /** Requests in flight per connection in the throughput run (`-P`). */
  pipeline: number;
  /** Requests of the latency run (`-n`), and its connections (`-c`), one request in flight each. */
  latencyRequests: number;
  latencyClients: number;
  /** Value size (`-d`). */
  valueBytes: number;
  /** Nodes on each side; with 2 or more redis-benchmark runs with `--cluster`. */
  nodes: number;
  /** Rounds, each measuring both systems (alternating which goes first); the figures are their medians. */
  rounds: number;
  /** An unreported run per system before the rounds (Node's JIT, redis-server's allocator). */
  warmup: boolean;
  /** Also measure the floor server (resp-floor.ts): the least a Node.js process can do for SET and GET. */
  floor: boolean;
}

/** One redis-benchmark test's CSV row. */
export interface RespTestRow {
  rps: number;
  avg_ms: number;
  p50_ms: number;
  p95_ms: number;
  p99_ms: number;
  max_ms: number;
}

export interface RespRound {
  round: number;
  set: RespTestRow;
  get: RespTestRow;
  /** The latency run's GET. */
  latency_get: RespTestRow;
  /**
   * CPU the system's server processes used per request (utime + stime from /proc, µs): the throughput run (its
   * SETs and GETs together) and the latency run. Steadier than requests/s on a shared machine; null when /proc
   * could not be read.
   */
  cpu_us_per_request: { throughput: number | null; latency: number | null };
}

export interface RespSystemReport {
  /** Medians over the rounds. */
  set_rps: number;
  get_rps: number;
  get_p50_ms: number;
  get_p99_ms: number;
  /** Medians over the rounds of each round's `cpu_us_per_request` (null when /proc could not be read). */
  cpu_us_per_request: { throughput: number | null; latency: number | null };
  /** Keys the system holds after the first round (DBSIZE summed over its nodes): it answered the SETs. */
  keys: number;
  /** The redis-benchmark command lines (the token as `…`). */
  commands: string[];
  rounds: RespRound[];
}

export interface RespReport {
  benchmark: 'resp';
  date: string;
  command: string;
  machine: Record<string, unknown>;
  options: RespBenchOptions & { cluster_mode: boolean };
  versions: { redis_server: string; redis_benchmark: string };
  redis: RespSystemReport;
  satchel: RespSystemReport;
  /** With `--floor`: the bare Node.js server (resp-floor.ts), and its figures over redis-server's. */
  floor: RespSystemReport | null;
  floor_ratios: RespRatios | null;
  ratios: RespRatios;
  targets: { set_rps_ge_0_8x: boolean; get_rps_ge_0_8x: boolean; get_p50_le_1_1x: boolean };
}

export interface RespRatios {
  set_rps: number;
  get_rps: number;
  get_p50: number;
}

interface Target {
  name: 'redis' | 'satchel' | 'floor';
  host: string;
  port: number;
  /** `--user U -a P`, or nothing. */
  auth: string[];
  /** Keys held, summed over the nodes. */
  dbsize(): Promise<number>;
  /** The server processes, whose CPU each run reads. */
  pids(): number[];
}

/** What to stop and remove, last first: on the way out, and on SIGINT/SIGTERM. */
class Cleanup {
  private readonly steps: (() => Promise<unknown>)[] = [];
  private running: Promise<void> | null = null;
  /** The redis-benchmark being run, killed first. */
  child: ChildProcess | null = null;

  add(step: () => Promise<unknown>): void {
    this.steps.push(step);
  }

  run(): Promise<void> {
    this.running ??= (async () => {
      this.child?.kill('SIGKILL');
      for (const step of this.steps.reverse()) await step().catch(() => {});
    })();
    return this.running;
  }
}

export async function runResp(
  options: RespBenchOptions,
  command: string,
  machine: Record<string, unknown>,
  log: (line: string) => void = (line) => process.stderr.write(`bench resp: ${line}\n`),
): Promise<RespReport> {
  const clusterMode = options.nodes > 1;
  const systems = options.floor ? 3 : 2;
  const progress = new Progress('bench resp', systems + options.rounds * systems + (options.warmup ? 1 : 0));
  const cleanup = new Cleanup();
  const onSignal = (signal: NodeJS.Signals) => {
    log(`${signal}: stopping the servers`);
    void cleanup.run().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const versions = { redis_server: await version('redis-server'), redis_benchmark: await version('redis-benchmark') };
    const redis = await startRedisCluster(options.nodes, cleanup);
    progress.step(`redis-server cluster of ${options.nodes} up`);
    const satchel = await startSatchel(options, cleanup);
    progress.step(`satchel cluster of ${options.nodes} up, job registered`);
    const floor = options.floor ? await startFloor(cleanup) : null;
    const targets = floor === null ? [redis, satchel] : [redis, satchel, floor];
    const throughputArgs = [
      ...(clusterMode ? ['--cluster'] : []),
      ...['-t', 'set,get', '-P', String(options.pipeline), '-c', String(options.clients)],
      ...['-d', String(options.valueBytes), '-n', String(options.requests), '--csv'],
    ];
    const latencyArgs = [
      ...(clusterMode ? ['--cluster'] : []),
      ...['-t', 'get', '-P', '1', '-c', String(options.latencyClients)],
      ...['-d', String(options.valueBytes), '-n', String(options.latencyRequests), '--csv'],
    ];
    if (options.warmup) {
      const small = (args: string[], n: number) => args.map((a, i) => (args[i - 1] === '-n' ? String(Math.min(Number(a), n)) : a));
      for (const target of targets) {
        await benchmark(target, small(throughputArgs, 50_000), cleanup);
        await benchmark(target, small(latencyArgs, 10_000), cleanup);
      }
      progress.step('warm-up (not reported)');
    }
    const rounds = new Map<string, RespRound[]>(targets.map((t) => [t.name, []]));
    const keys = new Map<string, number>();
    for (let round = 0; round < options.rounds; round++) {
      const order = round % 2 === 0 ? targets : [...targets].reverse();
      for (const target of order) {
        const throughputCpu = await cpuOf(target);
        const throughput = await benchmark(target, throughputArgs, cleanup);
        const throughputUs = await cpuOf(target, throughputCpu, 2 * options.requests);
        if (!keys.has(target.name)) keys.set(target.name, await target.dbsize());
        const latencyCpu = await cpuOf(target);
        const latency = await benchmark(target, latencyArgs, cleanup);
        const latencyUs = await cpuOf(target, latencyCpu, options.latencyRequests);
        rounds.get(target.name)!.push({
          round,
          set: throughput.SET!,
          get: throughput.GET!,
          latency_get: latency.GET!,
          cpu_us_per_request: { throughput: throughputUs, latency: latencyUs },
        });
        progress.step(
          `round ${round + 1} ${target.name}: SET ${Math.round(throughput.SET!.rps)}/s, GET ${Math.round(throughput.GET!.rps)}/s, GET p50 ${latency.GET!.p50_ms} ms`,
        );
      }
    }
    progress.end();
    const summary = (target: Target): RespSystemReport => {
      const list = rounds.get(target.name)!;
      return {
        set_rps: Math.round(median(list.map((r) => r.set.rps))),
        get_rps: Math.round(median(list.map((r) => r.get.rps))),
        get_p50_ms: median(list.map((r) => r.latency_get.p50_ms)),
        get_p99_ms: median(list.map((r) => r.latency_get.p99_ms)),
        cpu_us_per_request: {
          throughput: medianOrNull(list.map((r) => r.cpu_us_per_request.throughput)),
          latency: medianOrNull(list.map((r) => r.cpu_us_per_request.latency)),
        },
        keys: keys.get(target.name) ?? 0,
        commands: [throughputArgs, latencyArgs].map((args) => shownCommand(target, args)),
        rounds: list,
      };
    };
    const r = summary(redis);
    const s = summary(satchel);
    const f = floor === null ? null : summary(floor);
    const ratios = ratiosOf(s, r);
    return {
      benchmark: 'resp',
      date: new Date().toISOString(),
      command,
      machine,
      options: { ...options, cluster_mode: clusterMode },
      versions,
      redis: r,
      satchel: s,
      floor: f,
      floor_ratios: f === null ? null : ratiosOf(f, r),
      ratios,
      targets: {
        set_rps_ge_0_8x: ratios.set_rps >= 0.8,
        get_rps_ge_0_8x: ratios.get_rps >= 0.8,
        get_p50_le_1_1x: ratios.get_p50 <= 1.1,
      },
    };
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await cleanup.run();
  }
}

/** `nodes` redis-servers as one Redis Cluster: slots split evenly, every node met, cluster_state:ok everywhere. */
async function startRedisCluster(nodes: number, cleanup: Cleanup): Promise<Target> {
  const dir = await mkdtemp(join(tmpdir(), 'satchel-bench-resp-'));
  cleanup.add(() => rm(dir, { recursive: true, force: true }));
  const servers: RedisProcess[] = [];
  const busPorts: number[] = [];
  const clients: Redis[] = [];
  cleanup.add(async () => {
    for (const client of clients) client.disconnect();
    await Promise.all(servers.map((server) => server.stop()));
  });
  for (let i = 0; i < nodes; i++) {
    const busPort = await freePort();
    const server = await RedisProcess.start([
      ...['--cluster-enabled', 'yes', '--cluster-config-file', join(dir, `nodes-${i}.conf`), '--dir', dir],
      ...['--cluster-port', String(busPort)],
    ]);
    servers.push(server);
    busPorts.push(busPort);
    const client = new Redis({ host: server.host, port: server.port, lazyConnect: true, maxRetriesPerRequest: 1 });
    await client.connect();
    clients.push(client);
  }
  for (let i = 0; i < nodes; i++) {
    const first = Math.floor((16384 * i) / nodes);
    const last = Math.floor((16384 * (i + 1)) / nodes) - 1;
    await clients[i]!.call('CLUSTER', 'ADDSLOTSRANGE', String(first), String(last));
    // The bus port is not port + 10,000 here (a free one, --cluster-port): MEET names it.
    if (i > 0) await clients[0]!.call('CLUSTER', 'MEET', servers[i]!.host, String(servers[i]!.port), String(busPorts[i]));
  }
  const deadline = Date.now() + 20_000;
  for (const client of clients) {
    for (;;) {
      const info = String(await client.call('CLUSTER', 'INFO'));
      if (/cluster_state:ok/.test(info) && new RegExp(`cluster_known_nodes:${nodes}\\b`).test(info)) break;
      if (Date.now() > deadline) throw new SatchelError('UNAVAILABLE', `the redis-server cluster did not reach cluster_state:ok: ${info}`);
      await sleep(50);
    }
  }
  return {
    name: 'redis',
    host: servers[0]!.host,
    port: servers[0]!.port,
    auth: [],
    dbsize: async () => sum(await Promise.all(clients.map(async (c) => Number(await c.dbsize())))),
    pids: () => servers.map((server) => server.pid),
  };
}

/** A LocalCluster of `nodes` DRAM nodes and a job placed on all of them. */
async function startSatchel(options: RespBenchOptions, cleanup: Cleanup): Promise<Target> {
  // Profiling: `node --cpu-prof --cpu-prof-dir=DIR bin/satchel.js bench resp` — the cluster's processes are
  // forked with this process's node flags (deploy/child-process.ts), and Node refuses --cpu-prof in NODE_OPTIONS.
  const cluster = await LocalCluster.start({ dram: options.nodes, ssd: 0, hdd: 0 });
  cleanup.add(() => cluster.stop());
  const satchel = await Satchel.connect(cluster.controller, { key: cluster.tenantKey });
  let job: RegisteredJob | null = null;
  cleanup.add(async () => {
    await job?.deregister().catch(() => {});
    satchel.close();
  });
  // Each DRAM node declares 1 GB/s: a peak over nodes − 1 of them places the job on every node.
  job = await satchel.registerJob('bench-resp', {
    latencySensitive: true,
    capacity: 256 * 1024 ** 2,
    ...(options.nodes > 1 ? { peakThroughput: (options.nodes - 0.5) * 1e9 } : {}),
  });
  if (job.redisUrl === null) throw new SatchelError('UNAVAILABLE', 'the job has no redisUrl: the nodes opened no RESP port');
  const url = new URL(job.redisUrl);
  const username = decodeURIComponent(url.username);
  const password = decodeURIComponent(url.password);
  const connections: Redis[] = [];
  cleanup.add(async () => {
    for (const c of connections) c.disconnect();
  });
  for (const node of cluster.info.nodes) {
    const [host, port] = splitAddress(node.resp!);
    const c = new Redis({ host, port, username, password, lazyConnect: true, maxRetriesPerRequest: 1 });
    await c.connect();
    connections.push(c);
  }
  const nodes = String(await connections[0]!.call('CLUSTER', 'NODES'))
    .trim()
    .split('\n');
  if (nodes.length !== options.nodes)
    throw new SatchelError('UNAVAILABLE', `the job was placed on ${nodes.length} of the ${options.nodes} nodes`);
  return {
    name: 'satchel',
    host: url.hostname,
    port: Number(url.port),
    auth: ['--user', username, '-a', password],
    dbsize: async () => sum(await Promise.all(connections.map(async (c) => Number(await c.dbsize())))),
    // The storage nodes only: the controller and the metadata server sit idle while redis-benchmark runs.
    pids: () => [...cluster.nodePids.values()],
  };
}

/** The floor server (resp-floor.ts) in a process of its own, so its CPU is read apart. */
async function startFloor(cleanup: Cleanup): Promise<Target> {
  const child = fork(FLOOR, ['serve'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: process.execArgv });
  cleanup.add(async () => {
    if (child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  });
  const port = await new Promise<number>((resolve, reject) => {
    child.once('message', (message) => resolve((message as { port: number }).port));
    child.once('exit', (code) => reject(new SatchelError('UNAVAILABLE', `the floor server exited (${code}) before listening`)));
  });
  const probe = new Redis({ host: '127.0.0.1', port, lazyConnect: true, maxRetriesPerRequest: 1 });
  await probe.connect();
  cleanup.add(async () => probe.disconnect());
  return {
    name: 'floor',
    host: '127.0.0.1',
    port,
    auth: [],
    dbsize: async () => Number(await probe.dbsize()),
    pids: () => [child.pid!],
  };
}

/** Runs redis-benchmark against `target`; its CSV rows by test name. Fails on an exit code or a missing row. */
async function benchmark(target: Target, args: string[], cleanup: Cleanup): Promise<Record<string, RespTestRow>> {
  const argv = ['-h', target.host, '-p', String(target.port), ...target.auth, ...args];
  const n = Number(args[args.indexOf('-n') + 1]);
  const child = spawn('redis-benchmark', argv, { stdio: ['ignore', 'pipe', 'pipe'] });
  cleanup.child = child;
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  // Far more than any sane run takes: a server that stops answering fails the bench instead of hanging it.
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000 + n / 5);
  const exit = await new Promise<{ code: number | null; signal: NodeJS.Signals | null; error?: Error }>((resolve) => {
    child.once('error', (error) => resolve({ code: null, signal: null, error }));
    child.once('close', (code, signal) => resolve({ code, signal }));
  });
  clearTimeout(timer);
  cleanup.child = null;
  const shown = shownCommand(target, args);
  if (exit.error !== undefined)
    throw new SatchelError('UNAVAILABLE', `cannot run redis-benchmark (${exit.error.message}): apt-get install redis-tools`);
  const rows = parseCsv(stdout);
  const wanted = args[args.indexOf('-t') + 1]!.toUpperCase().split(',');
  if (exit.code !== 0 || wanted.some((test) => rows[test] === undefined || !(rows[test].rps > 0))) {
    const said = `${stderr}\n${stdout}`.trim().split('\n').slice(-5).join(' | ');
    throw new SatchelError(
      'UNAVAILABLE',
      `${target.name}: ${shown} ${exit.signal === null ? `exited ${exit.code}` : `was killed (${exit.signal})`}: ${said}`,
    );
  }
  return rows;
}

/** redis-benchmark's `--csv`: a header, then a row per test (`"GET","208550.58","3.567",…`). */
export function parseCsv(text: string): Record<string, RespTestRow> {
  const rows: Record<string, RespTestRow> = {};
  for (const line of text.split('\n')) {
    const cells = line
      .trim()
      .match(/"([^"]*)"/g)
      ?.map((cell) => cell.slice(1, -1));
    if (cells === undefined || cells.length < 8 || cells[0] === 'test') continue;
    const [test, rps, avg, , p50, p95, p99, max] = cells.map((cell, i) => (i === 0 ? cell : Number(cell)));
    rows[test as string] = {
      rps: rps as number,
      avg_ms: avg as number,
      p50_ms: p50 as number,
      p95_ms: p95 as number,
      p99_ms: p99 as number,
      max_ms: max as number,
    };
  }
  return rows;
}

function shownCommand(target: Target, args: string[]): string {
  const auth = target.auth.length === 0 ? [] : ['--user', target.auth[1]!, '-a', '…'];
  return ['redis-benchmark', '-h', target.host, '-p', '<port>', ...auth, ...args].join(' ');
}

async function version(program: string): Promise<string> {
  try {
    return (await run(program, ['--version'], { timeout: 10_000 })).stdout.trim();
  } catch (error) {
    throw new SatchelError('UNAVAILABLE', `cannot run ${program} (${(error as Error).message}): apt-get install redis-server redis-tools`);
  }
}

function splitAddress(address: string): [string, number] {
  const i = address.lastIndexOf(':');
  return [address.slice(0, i), Number(address.slice(i + 1))];
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/**
 * CPU seconds the target's server processes have used; with `since` and `requests`, the µs per request since
 * that reading (rounded to 0.01). Null when /proc could not be read.
 */
async function cpuOf(target: Target): Promise<number | null>;
async function cpuOf(target: Target, since: number | null, requests: number): Promise<number | null>;
async function cpuOf(target: Target, since?: number | null, requests?: number): Promise<number | null> {
  const readings = await Promise.all(target.pids().map((pid) => cpuSecondsOf(pid)));
  if (readings.length === 0 || readings.some((r) => r === null)) return null;
  const seconds = sum(readings as number[]);
  if (since === undefined) return seconds;
  if (since === null || !(requests! > 0)) return null;
  return Math.round(((seconds - since) * 1e6 * 100) / requests!) / 100;
}

function medianOrNull(values: (number | null)[]): number | null {
  return values.some((v) => v === null) ? null : median(values as number[]);
}

function sum(values: number[]): number {
  return values.reduce((a, b) => a + b, 0);
}

function ratiosOf(system: RespSystemReport, redis: RespSystemReport): RespRatios {
  return {
    set_rps: ratio(system.set_rps, redis.set_rps),
    get_rps: ratio(system.get_rps, redis.get_rps),
    get_p50: ratio(system.get_p50_ms, redis.get_p50_ms),
  };
}

function ratio(a: number, b: number): number {
  return b > 0 ? Math.round((a / b) * 1000) / 1000 : 0;
}

/** The terminal summary: medians side by side, the ratios the targets are stated in, and each round. */
export function respText(report: RespReport): string {
  const o = report.options;
  const r = report.redis;
  const s = report.satchel;
  const f = report.floor;
  const n = (x: number) => Math.round(x).toLocaleString('en-US');
  const row = (label: string, system: RespSystemReport) =>
    `${label.padEnd(17)}${n(system.set_rps).padStart(20)}  ${n(system.get_rps).padStart(20)}  ${system.get_p50_ms.toFixed(3).padStart(23)}  ${String(system.keys).padStart(5)}`;
  const ratioRow = (label: string, ratios: RespRatios) =>
    `${label.padEnd(17)}${`${ratios.set_rps.toFixed(2)}×`.padStart(20)}  ${`${ratios.get_rps.toFixed(2)}×`.padStart(20)}  ${`${ratios.get_p50.toFixed(2)}×`.padStart(23)}`;
  const systems: [string, RespSystemReport][] = [
    ['redis', r],
    ['satchel', s],
  ];
  if (f !== null) systems.push(['floor', f]);
  const lines = [
    `redis-benchmark${o.cluster_mode ? ' --cluster' : ''} -d ${o.valueBytes}, ${o.nodes} node(s) each, medians of ${o.rounds} round(s)`,
    `                 SET/s (-P ${o.pipeline} -c ${o.clients})  GET/s (-P ${o.pipeline} -c ${o.clients})  GET p50 ms (-P 1 -c ${o.latencyClients})   keys`,
    row('redis-server', r),
    row('satchel', s),
    ...(f === null ? [] : [row('floor (bare Node)', f)]),
    ratioRow('satchel/redis', report.ratios),
    ...(report.floor_ratios === null ? [] : [ratioRow('floor/redis', report.floor_ratios)]),
    `targets (issue 18): SET ≥ 0.8×: ${ok(report.targets.set_rps_ge_0_8x)}; GET ≥ 0.8×: ${ok(report.targets.get_rps_ge_0_8x)}; GET p50 ≤ 1.1×: ${ok(report.targets.get_p50_le_1_1x)}`,
    `server CPU per request, µs (-P ${o.pipeline} SET+GET; -P 1 GET): ${systems
      .map(
        ([name, system]) =>
          `${name === 'redis' ? 'redis-server' : name} ${us(system.cpu_us_per_request.throughput)}, ${us(system.cpu_us_per_request.latency)}`,
      )
      .join('; ')}`,
  ];
  for (const [name, system] of systems) {
    for (const round of system.rounds)
      lines.push(
        `  round ${round.round + 1} ${name.padEnd(8)} SET ${n(round.set.rps)}/s  GET ${n(round.get.rps)}/s  GET p50 ${round.latency_get.p50_ms.toFixed(3)} ms p99 ${round.latency_get.p99_ms.toFixed(3)} ms`,
      );
  }
  return lines.join('\n') + '\n';
}

function us(value: number | null): string {
  return value === null ? '–' : value.toFixed(2);
}

function ok(met: boolean): string {
  return met ? 'ok' : 'MISSED';
}

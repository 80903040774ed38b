/**
 * `satchel bench soak`: many clients doing mixed operations against a cluster for minutes, watching the
 * servers for leaks. Client processes (perf/soak-worker.ts) run short-lived DRAM and SSD jobs one after another
 * (register, functions attaching and closing, put/get/stat/delete/list of small and multi-block values, incr,
 * waitFor, read-back of every key, deregister), checking every value they read. Every interval (a minute by
 * default) this process reads each server's resident memory and open file descriptors from /proc, and merges
 * the clients' latency histograms, counts, errors and lost values. The summary compares the end with the end
 * of the first interval (the warm-up).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { readdir, readFile, readlink } from 'node:fs/promises';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SatchelError } from '../client/index.ts';
import { LocalCluster } from '../deploy/index.ts';
import { round } from './stats.ts';
import { consoleJson, type ExistingCluster } from './cluster-access.ts';
import {
  DATA_OPS,
  countOf,
  emptyStats,
  mergeInto,
  mergeStats,
  percentileOf,
  type SoakOp,
  type SoakStats,
  type SoakWorkerConfig,
  type ToDriver,
  type ToWorker,
} from './soak-protocol.ts';

const WORKER = fileURLToPath(new URL(`./soak-worker${extname(fileURLToPath(import.meta.url))}`, import.meta.url));

export interface SoakOptions {
  /** Length of the run; rounded up to whole intervals. */
  minutes: number;
  /** Reporting period (and the warm-up: the first interval), seconds. */
  intervalSeconds: number;
  /** Client processes, and requests in flight in each. */
  processes: number;
  lanes: number;
  /** Functions (lanes) sharing one job. */
  lanesPerJob: number;
  jobSeconds: number;
  invocationSeconds: number;
  /** Target operations per second over all clients (0: closed loop, as fast as the lanes go). */
  opsPerSecond: number;
  largeFraction: number;
  keysPerLane: number;
  jobCapacity: number;
  /** An existing cluster (its controller, tenant key, console and viewer token) instead of starting one. */
  cluster?: ExistingCluster;
}

export interface ServerProcess {
  name: string;
  role: 'controller' | 'metadata' | 'storage-node';
  pid: number | null;
}

export interface ProcessReading {
  name: string;
  pid: number | null;
  /**
   * Median of the interval's one-second readings (null: could not be read). Not a reading at its end: a
   * storage node's RSS follows the data it holds, which swings 25–126 MB within 20 s in this workload, so
   * five seconds caught whichever phase of it they fell on (a DRAM node: 246, 202, 242 MB at three minutes'
   * ends, 258, 258, 251 MB at their peaks).
   */
  rss_bytes: number | null;
  rss_max_bytes: number | null;
  fds: number | null;
  fds_max: number | null;
}

export interface OpFigures {
  count: number;
  p50_us: number;
  p99_us: number;
}

export interface SoakInterval {
  index: number;
  end_s: number;
  seconds: number;
  ops: number;
  ops_per_s: number;
  errors: number;
  lost: number;
  /** Over the data operations (everything but register, deregister and a job's final read-back). */
  p50_us: number;
  p99_us: number;
  by_op: Partial<Record<SoakOp, OpFigures>>;
  by_tier: Record<string, OpFigures>;
  verified: number;
  bytes_written: number;
  bytes_read: number;
  jobs_registered: number;
  jobs_deregistered: number;
  attaches: number;
  processes: ProcessReading[];
  clients: ProcessReading[];
  error_samples: string[];
  lost_samples: string[];
}

export interface ProcessSummary {
  name: string;
  role: string;
  pid: number | null;
  rss_warmup_bytes: number | null;
  rss_end_bytes: number | null;
  rss_growth_pct: number | null;
  fds_idle_before: number | null;
  fds_warmup: number | null;
  fds_end: number | null;
  fds_idle_after: number | null;
  rss_ok: boolean | null;
  fds_ok: boolean | null;
}

export interface SoakSummary {
  intervals: number;
  seconds: number;
  ops: number;
  errors: number;
  lost: number;
  verified: number;
  jobs_registered: number;
  jobs_deregistered: number;
  processes: ProcessSummary[];
  p99_first_us: number;
  p99_last_us: number;
  p99_ratio: number | null;
  /** After the run: soak jobs the controller still lists, and jobs nodes still hold that the controller does not know. */
  jobs_left: number | null;
  orphaned_jobs_on_nodes: number | null;
  orphaned_bytes: number | null;
  error_samples: string[];
  lost_samples: string[];
  targets: {
    rss_growth_under_10_pct: boolean | null;
    fds_flat: boolean | null;
    p99_within_2x: boolean | null;
    nothing_left: boolean | null;
    no_errors: boolean;
    no_lost_data: boolean;
  };
}

export interface SoakReport {
  cluster: { mode: 'local' | 'existing'; controller: string; processes: ServerProcess[] };
  intervals: SoakInterval[];
  /** Operations of the jobs the clients finished after the last interval (the wind-down). */
  wind_down: { ops: number; errors: number; lost: number; verified: number; jobs_deregistered: number };
  summary: SoakSummary;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export async function rssOf(pid: number): Promise<number | null> {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const kb = /VmRSS:\s+(\d+)/.exec(status)?.[1];
    return kb === undefined ? null : Number(kb) * 1024;
  } catch {
    return null;
  }
}

async function fdsOf(pid: number): Promise<number | null> {
  try {
    return (await readdir(`/proc/${pid}/fd`)).length;
  } catch {
    return null;
  }
}

/** The role a Satchel process was started with: the first of its arguments naming one. */
async function roleOf(pid: number): Promise<ServerProcess['role'] | null> {
  try {
    const args = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0');
    return (args.find((a) => a === 'controller' || a === 'metadata' || a === 'storage-node') as ServerProcess['role'] | undefined) ?? null;
  } catch {
    return null;
  }
}

/** The process listening on a TCP port on this machine (/proc/net/tcp{,6} → socket inode → /proc/<pid>/fd). */
async function pidListeningOn(port: number): Promise<number | null> {
  const inodes = new Set<string>();
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    const text = await readFile(file, 'utf8').catch(() => '');
    for (const line of text.split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (fields.length < 10 || fields[3] !== '0A') continue; // 0A: LISTEN
      if (Number.parseInt(fields[1]!.split(':')[1]!, 16) === port) inodes.add(`socket:[${fields[9]}]`);
    }
  }
  if (inodes.size === 0) return null;
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const fds = await readdir(`/proc/${entry}/fd`).catch(() => [] as string[]);
    for (const fd of fds) {
      const link = await readlink(`/proc/${entry}/fd/${fd}`).catch(() => '');
      if (inodes.has(link)) return Number(entry);
    }
  }
  return null;
}

const portOf = (address: string) => Number(address.slice(address.lastIndexOf(':') + 1));

/** The servers of a cluster this process started: roles from their command lines, nodes named by tier. */
export async function localProcesses(cluster: LocalCluster): Promise<ServerProcess[]> {
  const processes: ServerProcess[] = [];
  const nodes = new Map(cluster.info.nodes.map((n) => [n.pid, n]));
  const perTier = new Map<string, number>();
  for (const pid of cluster.pids) {
    const node = nodes.get(pid);
    if (node !== undefined) {
      const n = perTier.get(node.tier) ?? 0;
      perTier.set(node.tier, n + 1);
      processes.push({ name: `${node.tier}-${n}`, role: 'storage-node', pid });
    } else {
      const role = await roleOf(pid);
      if (role !== null) processes.push({ name: role, role, pid });
    }
  }
  return byRole(processes);
}

/** Controller, metadata, then storage nodes by tier (DRAM, SSD, HDD). */
function byRole(processes: ServerProcess[]): ServerProcess[] {
  const order = (p: ServerProcess) => ({ controller: 0, metadata: 1, 'storage-node': 2 })[p.role] * 10 + ['dram', 'ssd', 'hdd'].indexOf(p.name.split('-')[0]!);
  return processes.sort((a, b) => order(a) - order(b));
}

/** The servers of an existing cluster, from its console; a process not running on this machine has no pid. */
async function existingProcesses(console: string, token: string): Promise<{ controller: string; processes: ServerProcess[] }> {
  const cluster = await consoleJson<{ controller: string; metadata: string[]; nodes: { id: string; tier: string; address: string }[] }>(console, '/api/cluster', token);
  const processes: ServerProcess[] = [{ name: 'controller', role: 'controller', pid: await pidListeningOn(portOf(cluster.controller)) }];
  for (const [i, address] of cluster.metadata.entries()) processes.push({ name: cluster.metadata.length > 1 ? `metadata-${i}` : 'metadata', role: 'metadata', pid: await pidListeningOn(portOf(address)) });
  const perTier = new Map<string, number>();
  for (const node of cluster.nodes) {
    const n = perTier.get(node.tier) ?? 0;
    perTier.set(node.tier, n + 1);
    processes.push({ name: `${node.tier}-${n}`, role: 'storage-node', pid: await pidListeningOn(portOf(node.address)) });
  }
  return { controller: cluster.controller, processes: byRole(processes) };
}

interface Reading {
  at: number;
  rss: number | null;
  fds: number | null;
}

/** Every second: RSS and fds of each watched process, kept until the interval takes them. */
class Sampler {
  private readings = new Map<number, Reading[]>();
  private timer: NodeJS.Timeout | null = null;
  private busy = false;

  constructor(private readonly pids: () => number[]) {}

  start(): void {
    this.timer = setInterval(() => void this.sample(), 1000);
    void this.sample();
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
  }

  async sample(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      await Promise.all(
        this.pids().map(async (pid) => {
          const [rss, fds] = await Promise.all([rssOf(pid), fdsOf(pid)]);
          let list = this.readings.get(pid);
          if (list === undefined) this.readings.set(pid, (list = []));
          list.push({ at: performance.now(), rss, fds });
        }),
      );
    } finally {
      this.busy = false;
    }
  }

  /** The interval's figures for a process, and a fresh start for the next one. */
  take(name: string, pid: number | null): ProcessReading {
    const list = pid === null ? [] : (this.readings.get(pid) ?? []);
    if (pid !== null) this.readings.set(pid, []);
    const median = (values: number[]) => (values.length === 0 ? null : values.sort((a, b) => a - b)[Math.floor((values.length - 1) / 2)]!);
    const numbers = (key: 'rss' | 'fds', from: Reading[]) => from.map((r) => r[key]).filter((v): v is number => v !== null);
    const max = (values: number[]) => (values.length === 0 ? null : Math.max(...values));
    return { name, pid, rss_bytes: median(numbers('rss', list)), rss_max_bytes: max(numbers('rss', list)), fds: median(numbers('fds', list)), fds_max: max(numbers('fds', list)) };
  }
}

/** A quiet reading: the median of three, a second apart. */
async function idleReading(pid: number | null): Promise<{ rss: number | null; fds: number | null }> {
  if (pid === null) return { rss: null, fds: null };
  const rss: number[] = [];
  const fds: number[] = [];
  for (let i = 0; i < 3; i++) {
    if (i > 0) await sleep(1000);
    const [r, f] = await Promise.all([rssOf(pid), fdsOf(pid)]);
    if (r !== null) rss.push(r);
    if (f !== null) fds.push(f);
  }
  const median = (values: number[]) => (values.length === 0 ? null : values.sort((a, b) => a - b)[Math.floor((values.length - 1) / 2)]!);
  return { rss: median(rss), fds: median(fds) };
}

/** One client process, driven over IPC. */
class ClientProcess {
  readonly child: ChildProcess;
  private waiting = new Map<string, (message: ToDriver) => void>();
  private stopping = false;
  dead: string | null = null;

  constructor(private readonly onDeath: (why: string) => void) {
    this.child = fork(WORKER, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: process.execArgv });
    this.child.on('message', (message: ToDriver) => {
      if ('fatal' in message) return this.die(message.fatal);
      const kind = 'ready' in message ? 'ready' : 'final' in message ? 'final' : `tick-${message.tick}`;
      const resolve = this.waiting.get(kind);
      this.waiting.delete(kind);
      resolve?.(message);
    });
    this.child.on('exit', (code, signal) => {
      if (!this.waiting.has('final') && this.dead === null && this.stopping) return;
      this.die(`client process ${this.child.pid} exited (${signal ?? code})`);
    });
  }

  private die(why: string): void {
    if (this.dead !== null) return;
    this.dead = why;
    this.onDeath(why);
    for (const resolve of this.waiting.values()) resolve({ fatal: why });
    this.waiting.clear();
    this.child.kill('SIGKILL');
  }

  private ask(kind: string, message: ToWorker, timeoutMs: number): Promise<ToDriver> {
    if (this.dead !== null) return Promise.resolve({ fatal: this.dead });
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiting.delete(kind);
        this.die(`client process ${this.child.pid} did not answer ${kind} within ${timeoutMs / 1000} s`);
        resolve({ fatal: 'timeout' });
      }, timeoutMs);
      this.waiting.set(kind, (answer) => {
        clearTimeout(timer);
        resolve(answer);
      });
      this.child.send(message);
    });
  }

  async start(config: SoakWorkerConfig): Promise<void> {
    const answer = await this.ask('ready', { start: config }, 30_000);
    if ('fatal' in answer) throw new SatchelError('UNAVAILABLE', `client process: ${answer.fatal}`);
  }

  async tick(n: number): Promise<SoakStats | null> {
    const answer = await this.ask(`tick-${n}`, { tick: n }, 30_000);
    return 'stats' in answer ? answer.stats : null;
  }

  async stop(timeoutMs: number): Promise<SoakStats | null> {
    this.stopping = true;
    const answer = await this.ask('final', { stop: true }, timeoutMs);
    await this.exited(5000);
    return 'final' in answer ? answer.final : null;
  }

  exited(timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      if (this.child.exitCode !== null || this.child.signalCode !== null) return resolve();
      const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
      this.child.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}

function figures(histogram: Record<number, number>): OpFigures {
  return { count: countOf(histogram), p50_us: round(percentileOf(histogram, 50)), p99_us: round(percentileOf(histogram, 99)) };
}

function intervalRow(index: number, endS: number, seconds: number, stats: SoakStats, processes: ProcessReading[], clients: ProcessReading[]): SoakInterval {
  const data: Record<number, number> = {};
  for (const op of DATA_OPS) mergeInto(data, stats.ops[op]);
  const ops = countOf(data);
  const byOp: Partial<Record<SoakOp, OpFigures>> = {};
  for (const [op, histogram] of Object.entries(stats.ops)) byOp[op as SoakOp] = figures(histogram);
  const byTier: Record<string, OpFigures> = {};
  for (const [tier, histogram] of Object.entries(stats.byTier)) byTier[tier] = figures(histogram!);
  return {
    index,
    end_s: round(endS, 1),
    seconds: round(seconds, 2),
    ops,
    ops_per_s: Math.round(ops / seconds),
    errors: stats.errors,
    lost: stats.lost,
    p50_us: round(percentileOf(data, 50)),
    p99_us: round(percentileOf(data, 99)),
    by_op: byOp,
    by_tier: byTier,
    verified: stats.verified,
    bytes_written: stats.bytesWritten,
    bytes_read: stats.bytesRead,
    jobs_registered: stats.jobsRegistered,
    jobs_deregistered: stats.jobsDeregistered,
    attaches: stats.attaches,
    processes,
    clients,
    error_samples: stats.errorSamples,
    lost_samples: stats.lostSamples,
  };
}

/**
 * Allowed drift of a server's open descriptors. From idle before the load to idle after it: 8 or 10 %
 * (servers keep a few connections to each other once used, the controller's admin connections to nodes).
 * From the warm-up to the end, under load, also as many as the clients can hold open at once (`clientSlack`:
 * one connection per lane and per driver), since a sample catches however many functions are connected at
 * that second (a DRAM node: 45 at one minute's end, 69 at another's, 24 idle after). A leak of one per job or
 * per connection grows far past either in minutes (~96 jobs a minute).
 */
export function fdsFlat(before: number, after: number, clientSlack = 0): boolean {
  return after - before <= Math.max(8, before * 0.1, clientSlack);
}

export async function runSoak(options: SoakOptions, onInterval: (row: SoakInterval, processes: ServerProcess[]) => void, onStatus: (line: string) => void = () => {}): Promise<SoakReport> {
  const intervalMs = options.intervalSeconds * 1000;
  const intervals = Math.max(1, Math.ceil((options.minutes * 60) / options.intervalSeconds - 1e-9));
  let cluster: LocalCluster | null = null;
  let controller: string;
  let key: string;
  let consoleUrl: string;
  let consoleToken: string;
  let servers: ServerProcess[];
  if (options.cluster !== undefined) {
    if (options.cluster.console === undefined || options.cluster.viewerToken === undefined) throw new SatchelError('BAD_REQUEST', 'bench soak on an existing cluster needs its console and viewer token (--cluster-file)');
    controller = options.cluster.controller;
    key = options.cluster.key;
    consoleUrl = options.cluster.console;
    consoleToken = options.cluster.viewerToken;
    const existing = await existingProcesses(consoleUrl, consoleToken);
    servers = existing.processes;
    const missing = servers.filter((p) => p.pid === null).map((p) => p.name);
    if (missing.length > 0) onStatus(`not on this machine (no RSS or fds for them): ${missing.join(', ')}`);
  } else {
    onStatus('starting a cluster: controller, metadata, one storage node per tier');
    cluster = await LocalCluster.start({ dram: 1, ssd: 1, hdd: 1 });
    controller = cluster.controller;
    key = cluster.tenantKey;
    consoleUrl = cluster.info.console;
    consoleToken = cluster.viewerToken;
    servers = await localProcesses(cluster);
  }
  const clients: ClientProcess[] = [];
  const deaths: string[] = [];
  let deathsReported = 0;
  const sampler = new Sampler(() => [...servers.map((p) => p.pid), ...clients.map((c) => c.child.pid ?? null)].filter((pid): pid is number => pid !== null));
  try {
    const idleBefore = await Promise.all(servers.map((p) => idleReading(p.pid)));
    const perProcess = Math.round(options.opsPerSecond / options.processes);
    for (let i = 0; i < options.processes; i++) clients.push(new ClientProcess((why) => deaths.push(why)));
    await Promise.all(
      clients.map((client, worker) =>
        client.start({
          worker,
          controller,
          key,
          lanes: options.lanes,
          lanesPerJob: options.lanesPerJob,
          jobSeconds: options.jobSeconds,
          invocationSeconds: options.invocationSeconds,
          opsPerSecond: perProcess,
          tiers: worker % 2 === 0 ? ['dram', 'ssd'] : ['ssd', 'dram'],
          keysPerLane: options.keysPerLane,
          largeFraction: options.largeFraction,
          jobCapacity: options.jobCapacity,
        }),
      ),
    );
    onStatus(`${options.processes} client processes × ${options.lanes} lanes running; ${intervals} intervals of ${options.intervalSeconds} s`);
    const started = performance.now();
    sampler.start();
    const rows: SoakInterval[] = [];
    for (let i = 1; i <= intervals; i++) {
      const intervalStart = performance.now();
      await sleep(Math.max(0, started + i * intervalMs - performance.now()));
      await sampler.sample();
      const stats = emptyStats();
      for (const s of await Promise.all(clients.map((c) => c.tick(i)))) if (s !== null) mergeStats(stats, s);
      for (; deathsReported < deaths.length; deathsReported++) {
        stats.errors++;
        if (stats.errorSamples.length < 5) stats.errorSamples.push(deaths[deathsReported]!);
      }
      const now = performance.now();
      const row = intervalRow(
        i,
        (now - started) / 1000,
        (now - Math.max(started, intervalStart)) / 1000,
        stats,
        servers.map((p) => sampler.take(p.name, p.pid)),
        clients.map((c, n) => sampler.take(`client-${n}`, c.child.pid ?? null)),
      );
      rows.push(row);
      onInterval(row, servers);
    }
    sampler.stop();

    onStatus('stopping the clients: each finishes its jobs (read back, deregister)');
    const windDown = emptyStats();
    const finals = await Promise.all(clients.map((c) => c.stop(options.jobSeconds * 1500 + 60_000)));
    for (const s of finals) if (s !== null) mergeStats(windDown, s);
    for (const why of deaths.slice(deathsReported)) {
      windDown.errors++;
      if (windDown.errorSamples.length < 5) windDown.errorSamples.push(why);
    }
    await sleep(2000);
    const idleAfter = await Promise.all(servers.map((p) => idleReading(p.pid)));
    const left = await leftovers(consoleUrl, consoleToken);
    return { cluster: { mode: cluster === null ? 'existing' : 'local', controller, processes: servers }, intervals: rows, wind_down: windDownRow(windDown), summary: summarize(options.processes * (options.lanes + 1), rows, windDown, servers, idleBefore, idleAfter, left) };
  } finally {
    sampler.stop();
    await Promise.all(clients.map((c) => (c.dead === null && c.child.exitCode === null ? (c.child.kill('SIGKILL'), c.exited(5000)) : undefined)));
    await cluster?.stop();
  }
}

type Leftovers = Pick<SoakSummary, 'jobs_left' | 'orphaned_jobs_on_nodes' | 'orphaned_bytes'>;

/**
 * What the run left behind, from the console: its jobs still registered, and jobs the nodes' last reports still
 * hold although the controller no longer knows them (a deregistration that did not reach the node).
 */
async function leftovers(console: string, token: string): Promise<Leftovers> {
  try {
    const jobs = await consoleJson<{ id: string; name: string }[]>(console, '/api/jobs', token);
    const nodes = await consoleJson<{ stats: { jobs: Record<string, number> } | null }[]>(console, '/api/nodes', token);
    const known = new Set(jobs.map((j) => j.id));
    let orphans = 0;
    let bytes = 0;
    for (const node of nodes) {
      for (const [id, held] of Object.entries(node.stats?.jobs ?? {})) {
        if (known.has(id)) continue;
        orphans++;
        bytes += held;
      }
    }
    return { jobs_left: jobs.filter((j) => j.name.startsWith('soak-')).length, orphaned_jobs_on_nodes: orphans, orphaned_bytes: bytes };
  } catch {
    return { jobs_left: null, orphaned_jobs_on_nodes: null, orphaned_bytes: null };
  }
}

function windDownRow(stats: SoakStats): SoakReport['wind_down'] {
  const data: Record<number, number> = {};
  for (const op of DATA_OPS) mergeInto(data, stats.ops[op]);
  return { ops: countOf(data), errors: stats.errors, lost: stats.lost, verified: stats.verified, jobs_deregistered: stats.jobsDeregistered };
}

function summarize(
  clientSlack: number,
  rows: SoakInterval[],
  windDown: SoakStats,
  servers: ServerProcess[],
  idleBefore: { rss: number | null; fds: number | null }[],
  idleAfter: { rss: number | null; fds: number | null }[],
  leftovers: Leftovers,
): SoakSummary {
  const first = rows[0]!;
  const last = rows[rows.length - 1]!;
  const comparable = rows.length >= 2;
  const processes: ProcessSummary[] = servers.map((server, i) => {
    const warm = first.processes[i]!;
    const end = last.processes[i]!;
    const growth = comparable && warm.rss_bytes !== null && end.rss_bytes !== null ? round(((end.rss_bytes - warm.rss_bytes) / warm.rss_bytes) * 100, 1) : null;
    const before = idleBefore[i]!.fds;
    const after = idleAfter[i]!.fds;
    const fdsOk = comparable && warm.fds !== null && end.fds !== null ? fdsFlat(warm.fds, end.fds, clientSlack) && (before === null || after === null || fdsFlat(before, after)) : null;
    return {
      name: server.name,
      role: server.role,
      pid: server.pid,
      rss_warmup_bytes: warm.rss_bytes,
      rss_end_bytes: end.rss_bytes,
      rss_growth_pct: growth,
      fds_idle_before: idleBefore[i]!.fds,
      fds_warmup: warm.fds,
      fds_end: end.fds,
      fds_idle_after: idleAfter[i]!.fds,
      rss_ok: growth === null ? null : growth < 10,
      fds_ok: fdsOk,
    };
  });
  const errors = rows.reduce((n, r) => n + r.errors, 0) + windDown.errors;
  const lost = rows.reduce((n, r) => n + r.lost, 0) + windDown.lost;
  const all = <T>(values: (T | null)[], test: (v: T) => boolean) => (values.every((v) => v === null) ? null : values.every((v) => v === null || test(v)));
  const errorSamples = [...rows.flatMap((r) => r.error_samples), ...windDown.errorSamples].slice(0, 10);
  const lostSamples = [...rows.flatMap((r) => r.lost_samples), ...windDown.lostSamples].slice(0, 10);
  const ratio = comparable && first.p99_us > 0 ? round(last.p99_us / first.p99_us, 2) : null;
  return {
    intervals: rows.length,
    seconds: last.end_s,
    ops: rows.reduce((n, r) => n + r.ops, 0),
    errors,
    lost,
    verified: rows.reduce((n, r) => n + r.verified, 0) + windDown.verified,
    jobs_registered: rows.reduce((n, r) => n + r.jobs_registered, 0) + windDown.jobsRegistered,
    jobs_deregistered: rows.reduce((n, r) => n + r.jobs_deregistered, 0) + windDown.jobsDeregistered,
    processes,
    p99_first_us: first.p99_us,
    p99_last_us: last.p99_us,
    p99_ratio: ratio,
    ...leftovers,
    error_samples: errorSamples,
    lost_samples: lostSamples,
    targets: {
      rss_growth_under_10_pct: all(processes.map((p) => p.rss_ok), (ok) => ok),
      fds_flat: all(processes.map((p) => p.fds_ok), (ok) => ok),
      p99_within_2x: ratio === null ? null : ratio <= 2,
      nothing_left: leftovers.jobs_left === null ? null : leftovers.jobs_left === 0 && leftovers.orphaned_jobs_on_nodes === 0,
      no_errors: errors === 0,
      no_lost_data: lost === 0,
    },
  };
}

const mb = (bytes: number | null) => (bytes === null ? '-' : (bytes / 2 ** 20).toFixed(1));
const ms = (us: number) => (us / 1000).toFixed(2);

/** The table's header: interval figures, then RSS MB / open fds of each server. */
export function soakHeader(processes: ServerProcess[]): string {
  const cells = processes.map((p) => p.name.padStart(14)).join('');
  return `${'#'.padStart(3)} ${'end s'.padStart(6)} ${'ops/s'.padStart(7)} ${'errors'.padStart(6)} ${'lost'.padStart(5)} ${'p50 ms'.padStart(7)} ${'p99 ms'.padStart(7)} ${'jobs +/-'.padStart(9)}${cells}\n${' '.repeat(54)}${processes.map(() => 'MB/fds'.padStart(14)).join('')}`;
}

export function soakRow(row: SoakInterval): string {
  const cells = row.processes.map((p) => `${mb(p.rss_bytes)}/${p.fds ?? '-'}`.padStart(14)).join('');
  return `${String(row.index).padStart(3)} ${row.end_s.toFixed(0).padStart(6)} ${String(row.ops_per_s).padStart(7)} ${String(row.errors).padStart(6)} ${String(row.lost).padStart(5)} ${ms(row.p50_us).padStart(7)} ${ms(row.p99_us).padStart(7)} ${`${row.jobs_registered}/${row.jobs_deregistered}`.padStart(9)}${cells}`;
}

export function soakSummaryText(report: SoakReport): string {
  const s = report.summary;
  const mark = (ok: boolean | null) => (ok === null ? 'n/a' : ok ? 'ok' : 'OVER');
  const lines = [
    '',
    `after the warm-up (interval 1) to the end (interval ${s.intervals}):`,
    'process         RSS warm-up MB   end MB   growth   fds idle/warm-up/end/idle after',
  ];
  for (const p of s.processes) {
    const growth = p.rss_growth_pct === null ? '-' : `${p.rss_growth_pct.toFixed(1)} %`;
    lines.push(
      `${p.name.padEnd(15)} ${mb(p.rss_warmup_bytes).padStart(14)} ${mb(p.rss_end_bytes).padStart(8)} ${growth.padStart(8)} ${mark(p.rss_ok).padStart(4)}   ${[p.fds_idle_before, p.fds_warmup, p.fds_end, p.fds_idle_after].map((v) => v ?? '-').join('/')} ${mark(p.fds_ok)}`,
    );
  }
  lines.push(
    `p99 first interval ${ms(s.p99_first_us)} ms, last ${ms(s.p99_last_us)} ms: ${s.p99_ratio === null ? '-' : `${s.p99_ratio.toFixed(2)}×`} (target ≤ 2×: ${mark(s.targets.p99_within_2x)})`,
    `RSS growth < 10 %: ${mark(s.targets.rss_growth_under_10_pct)}; fds flat: ${mark(s.targets.fds_flat)}; left behind: ${s.jobs_left ?? '-'} soak jobs registered, ${s.orphaned_jobs_on_nodes ?? '-'} jobs (${mb(s.orphaned_bytes)} MB) on nodes the controller no longer knows`,
    `ops ${s.ops} (+${report.wind_down.ops} winding down), jobs ${s.jobs_registered} registered / ${s.jobs_deregistered} deregistered, values verified ${s.verified}, errors ${s.errors}, lost ${s.lost}`,
  );
  for (const e of s.error_samples) lines.push(`  error: ${e}`);
  for (const e of s.lost_samples) lines.push(`  lost: ${e}`);
  return lines.join('\n') + '\n';
}

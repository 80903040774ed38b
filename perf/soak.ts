/**
 * `satchel bench soak`: many clients doing mixed operations against a cluster for minutes, watching the
 * servers for leaks. Client processes (perf/soak-worker.ts) run short-lived DRAM and SSD jobs one after another
 * (register, functions attaching and closing, put/get/stat/delete/list of small and multi-block values, incr,
 * waitFor, read-back of every key, deregister), checking every value they read. Every interval (a minute by
 * default) this process reads each server's resident memory and open file descriptors from /proc, and merges
 * the clients' latency histograms, counts, errors and lost values. The summary compares the end with the end
 * of the first interval (the warm-up).
 */
import { type ChildProcess, fork } from 'node:child_process';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SatchelError } from '../client/index.ts';
import { LocalCluster } from '../deploy/index.ts';
import { consoleJson, type ExistingCluster } from './cluster-access.ts';
import { emptyStats, mergeStats, type SoakStats, type SoakWorkerConfig, type ToDriver, type ToWorker } from './soak-protocol.ts';
import { intervalRow, type Leftovers, type SoakInterval, type SoakReport, summarize, windDownRow } from './soak-report.ts';
import { existingProcesses, idleReading, localProcesses, Sampler, type ServerProcess } from './soak-servers.ts';

// The report's type where runSoak is (test/bench.test.ts reads it from here).
export type { SoakReport } from './soak-report.ts';

const WORKER = fileURLToPath(new URL(`./soak-worker${extname(fileURLToPath(import.meta.url))}`, import.meta.url));
/** The baseline beside the clients: bare round trips between two Node.js processes (soak-floor.ts). */
const FLOOR = fileURLToPath(new URL(`./soak-floor${extname(fileURLToPath(import.meta.url))}`, import.meta.url));

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

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** One client process, driven over IPC. */
class ClientProcess {
  readonly child: ChildProcess;
  private waiting = new Map<string, (message: ToDriver) => void>();
  private stopping = false;
  dead: string | null = null;

  constructor(
    private readonly onDeath: (why: string) => void,
    script = WORKER,
  ) {
    this.child = fork(script, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: process.execArgv });
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

export async function runSoak(
  options: SoakOptions,
  onInterval: (row: SoakInterval, processes: ServerProcess[]) => void,
  onStatus: (line: string) => void = () => {},
): Promise<SoakReport> {
  const intervalMs = options.intervalSeconds * 1000;
  const intervals = Math.max(1, Math.ceil((options.minutes * 60) / options.intervalSeconds - 1e-9));
  let cluster: LocalCluster | null = null;
  let controller: string;
  let key: string;
  let consoleUrl: string;
  let consoleToken: string;
  let servers: ServerProcess[];
  if (options.cluster !== undefined) {
    if (options.cluster.console === undefined || options.cluster.viewerToken === undefined)
      throw new SatchelError('BAD_REQUEST', 'bench soak on an existing cluster needs its console and viewer token (--cluster-file)');
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
  let floor: ClientProcess | null = null;
  const driven = () => (floor === null ? clients : [...clients, floor]);
  const deaths: string[] = [];
  let deathsReported = 0;
  const sampler = new Sampler(() =>
    [...servers.map((p) => p.pid), ...clients.map((c) => c.child.pid ?? null)].filter((pid): pid is number => pid !== null),
  );
  try {
    const idleBefore = await Promise.all(servers.map((p) => idleReading(p.pid)));
    const perProcess = Math.round(options.opsPerSecond / options.processes);
    for (let i = 0; i < options.processes; i++) clients.push(new ClientProcess((why) => deaths.push(why)));
    // Not in a closed loop (--rate 0): nothing to pace it by, and flat out it would take the CPU Satchel is measured on.
    if (options.opsPerSecond > 0) floor = new ClientProcess((why) => deaths.push(`baseline (soak-floor.ts): ${why}`), FLOOR);
    const config = (worker: number): SoakWorkerConfig => ({
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
    });
    // The baseline runs as one more client process would: the same lanes and rate.
    await Promise.all([...clients.map((client, worker) => client.start(config(worker))), floor?.start(config(options.processes))]);
    onStatus(
      `${options.processes} client processes × ${options.lanes} lanes running; ${intervals} intervals of ${options.intervalSeconds} s`,
    );
    const started = performance.now();
    sampler.start();
    const rows: SoakInterval[] = [];
    for (let i = 1; i <= intervals; i++) {
      const intervalStart = performance.now();
      await sleep(Math.max(0, started + i * intervalMs - performance.now()));
      await sampler.sample();
      const stats = emptyStats();
      for (const s of await Promise.all(driven().map((c) => c.tick(i)))) if (s !== null) mergeStats(stats, s);
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
    await floor?.stop(10_000);
    for (const why of deaths.slice(deathsReported)) {
      windDown.errors++;
      if (windDown.errorSamples.length < 5) windDown.errorSamples.push(why);
    }
    await sleep(2000);
    const idleAfter = await Promise.all(servers.map((p) => idleReading(p.pid, { settleMs: 15_000 })));
    const left = await leftovers(consoleUrl, consoleToken);
    return {
      cluster: { mode: cluster === null ? 'existing' : 'local', controller, processes: servers },
      intervals: rows,
      wind_down: windDownRow(windDown),
      summary: summarize(options.processes * (options.lanes + 1), rows, windDown, servers, idleBefore, idleAfter, left),
    };
  } finally {
    sampler.stop();
    await Promise.all(
      driven().map(async (c) => {
        if (c.dead !== null || c.child.exitCode !== null) return;
        c.child.kill('SIGKILL');
        await c.exited(5000);
      }),
    );
    await cluster?.stop();
  }
}

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

/**
 * `satchel bench nemesis`: a whole cluster on this machine (LocalCluster: every role its own process), client
 * processes (worker.ts) doing put/get/delete/incr/waitFor on jobs with 1, 2 and 3 copies and recording every
 * operation, and a nemesis that meanwhile, one fault at a time:
 *
 * - restart: SIGKILLs a storage node and starts it again with the same id and ports (a pod after a crash);
 * - freeze: SIGSTOPs a node past the node timeout, then SIGCONTs it;
 * - freeze-pair (not in the default schedule): SIGSTOPs two nodes at once past the node timeout, then SIGCONTs
 *   both: every copy of some replicated keys out of reach together, so those fail meanwhile (availability drops)
 *   and must read back after;
 * - partition: cuts a node off from the controller (a TCP proxy on its controller link) past the node timeout,
 *   while clients still reach it; then heals it;
 * - drain: drains a node through the console; a new node replaces it once it is removed;
 * - and, after half the faults (`controllerKillShare`), SIGKILLs the controller while the copies they start are
 *   being made: a restored node's copies, or the drain's (a `controller` fault).
 *
 * Between faults the cluster settles: every node reporting, no copy pending. Jobs are replaced every
 * `jobSeconds` at such a moment: the clients move to new jobs, every key of the old ones is read back (`final`
 * reads), then they are deregistered. The history goes to perf/nemesis/checker.ts, the judge; a report with
 * the faults on a timeline to report-html.ts.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type RegisteredJob, Satchel, SatchelError } from '../../client/index.ts';
import { LocalCluster } from '../../deploy/index.ts';
import { Backoff, forEachLimit } from '../../proto/index.ts';
import { type CheckReport, checkHistory } from './checker.ts';
import type { FaultEvent, History, HistoryOp } from './history.ts';
import type { NemesisJob, ToDriver, ToWorker } from './protocol.ts';
import { TcpProxy } from './tcp-proxy.ts';

export const FAULT_KINDS = ['restart', 'freeze', 'partition', 'drain', 'freeze-pair'] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];
/**
 * The faults in turn by default: each kind as often, one at a time. Not `freeze-pair`: its keys are unavailable
 * while it lasts, and the short nemesis (test/nemesis.test.ts) holds replicated jobs to 99 % availability.
 */
export const DEFAULT_SCHEDULE: readonly FaultKind[] = ['restart', 'freeze', 'partition', 'drain'];

export interface NemesisOptions {
  /** How long faults are injected (the run is longer: start, settling, final reads). */
  seconds: number;
  /** Client processes, and operations in flight in each. */
  processes?: number;
  lanes?: number;
  /** Operations per second per lane at most (0: closed loop). */
  ratePerLane?: number;
  /** DRAM storage nodes (replicas 3 and a spare need 4). */
  nodes?: number;
  /**
   * The controller's --node-timeout-ms (default 1000, its least); freezes and partitions last until the node is
   * declared lost, 1.5 times it at the most.
   */
  nodeTimeoutMs?: number;
  /** Each job is replaced after this long (at the next settled moment). */
  jobSeconds?: number;
  keysPerJob?: number;
  countersPerJob?: number;
  /**
   * Keys of 512 bytes written once per job before the clients start and read back at its end: data for drains and
   * restorations to move (long enough to kill the controller during them), and checked like the rest.
   */
  ballastPerJob?: number;
  /** The clients' per-operation timeout. */
  timeoutMs?: number;
  /** The faults injected in turn, one at a time (default DEFAULT_SCHEDULE); a kind may appear more than once. */
  faults?: readonly FaultKind[];
  /** Share of faults followed by a controller kill while the copies they start are made. */
  controllerKillShare?: number;
  onProgress?: (line: string) => void;
  /** Keep the cluster's state folder and every process's log here (it must not exist yet). */
  keepDir?: string;
}

export interface NemesisResult {
  history: History;
  report: CheckReport;
  /** Faults by kind, as injected. */
  faults: Record<string, number>;
  /** Settling that did not finish in time (the run went on). */
  unsettled: number;
  /** Faults the harness could not inject (a node gone meanwhile): not Satchel's anomalies, shown apart. */
  harnessErrors: string[];
}

const WORKER = fileURLToPath(new URL(`./worker${extname(fileURLToPath(import.meta.url))}`, import.meta.url));
const MiB = 1024 * 1024;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface JobRow {
  id: string;
  pending: { kind: string; node: string } | null;
}
interface NodeRow {
  id: string;
  lost?: boolean;
  recovering?: boolean;
  stats: { at: number } | null;
}

export async function runNemesis(options: NemesisOptions): Promise<NemesisResult> {
  const o = {
    processes: 2,
    lanes: 8,
    ratePerLane: 0,
    nodes: 5,
    nodeTimeoutMs: 1_000,
    jobSeconds: 120,
    keysPerJob: 40,
    countersPerJob: 3,
    ballastPerJob: 500,
    timeoutMs: 10_000,
    faults: DEFAULT_SCHEDULE,
    controllerKillShare: 0.5,
    onProgress: () => {},
    ...options,
  };
  const startedAt = Date.now();
  const clock = () => Date.now() - startedAt;
  const progress = (line: string) => o.onProgress(`${(clock() / 1000).toFixed(1).padStart(7)} s  ${line}`);
  const dir = await mkdtemp(join(tmpdir(), 'satchel-nemesis-'));
  // Each node reaches the controller through a proxy the nemesis can cut.
  const proxies = new Map<string, TcpProxy>();
  const proxyFor = async (controller: string): Promise<string> => {
    const proxy = await TcpProxy.start(controller);
    proxies.set(proxy.address, proxy);
    return proxy.address;
  };
  const cluster = await LocalCluster.start({
    dram: o.nodes,
    ssd: 0,
    hdd: 0,
    dramCapacity: 256 * MiB,
    nodeTimeoutMs: o.nodeTimeoutMs,
    nodeController: proxyFor,
    ...(o.keepDir === undefined ? {} : { stateDir: o.keepDir, keepLogs: true }),
  });
  const faults: FaultEvent[] = [];
  /** What the driver itself did: the writes before the clients start, the final reads. */
  const driverOps: HistoryOp[] = [];
  const workers: Worker[] = [];
  let unsettled = 0;
  const harnessErrors: string[] = [];
  const api = cluster.info.console;
  const admin = { authorization: `Bearer ${cluster.adminToken}` };
  const getJson = async <T>(path: string): Promise<T> => {
    const response = await fetch(`${api}${path}`, { headers: { authorization: `Bearer ${cluster.viewerToken}` } });
    if (!response.ok) throw new SatchelError('UNAVAILABLE', `${path}: ${response.status}`);
    return (await response.json()) as T;
  };
  const connect = () =>
    retrying('connecting to the controller', () => Satchel.connect(cluster.controller, { timeoutMs: 15_000, key: cluster.tenantKey }));
  let satchel = await connect();
  try {
    let generation = 0;
    let registered = await registerJobs(satchel, o, generation, startedAt, driverOps);
    let jobsSince = Date.now();
    for (let w = 0; w < o.processes; w++) {
      workers.push(
        new Worker(w, {
          type: 'start',
          config: {
            worker: w,
            lanes: o.lanes,
            startedAt,
            historyFile: join(dir, `w${w}.ndjson`),
            timeoutMs: o.timeoutMs,
            ratePerLane: o.ratePerLane,
          },
          jobs: registered.map((r) => r.job),
        }),
      );
    }
    progress(`${o.processes} clients × ${o.lanes} lanes on jobs with 1, 2 and 3 copies over ${o.nodes} DRAM nodes`);

    /** Every node reporting, none lost, no copy pending: the cluster has recovered from the last fault. */
    const settle = async (what: string) => {
      const until = Date.now() + 60_000;
      for (;;) {
        try {
          const [nodes, jobs] = await Promise.all([getJson<NodeRow[]>('/api/nodes'), getJson<JobRow[]>('/api/jobs')]);
          // Restorations a loss started are over too: a restarted node is not lost any more (its new process
          // registered) while its old one's copies are still being made.
          const fresh = nodes.every(
            (n) => n.lost !== true && n.recovering !== true && n.stats !== null && Date.now() - n.stats.at < o.nodeTimeoutMs,
          );
          if (fresh && nodes.length >= o.nodes && jobs.every((j) => j.pending === null)) return;
        } catch {
          // the console restarting with the controller
        }
        if (Date.now() > until) {
          unsettled++;
          progress(`not settled 60 s after ${what}; going on`);
          return;
        }
        await sleep(50);
      }
    };

    /**
     * Kills the controller (SIGKILL) as soon as `moment` is seen (copies pending), and starts it again; nothing
     * when the moment does not come within `withinMs` (the copies were done before they were seen).
     */
    const killControllerWhen = async (
      moment: () => Promise<boolean>,
      note: string,
      withinMs: number,
      over: () => boolean = () => false,
    ) => {
      const until = Date.now() + withinMs;
      for (;;) {
        if (await moment().catch(() => false)) break;
        if (Date.now() > until || over()) return;
        await sleep(10);
      }
      const start = clock();
      await cluster.restartController('SIGKILL');
      satchel.close();
      satchel = await connect();
      faults.push({ kind: 'controller', target: 'controller', startMs: start, endMs: clock(), note });
    };
    /**
     * Until the controller has declared `id` lost (past the node timeout: what a freeze or a partition is for),
     * or 1.5 node timeouts at the most: a controller restarting meanwhile gives nodes longer.
     */
    const untilLost = async (id: string) => {
      const until = Date.now() + o.nodeTimeoutMs * 1.5;
      while (Date.now() < until) {
        const nodes = await getJson<NodeRow[]>('/api/nodes').catch(() => []);
        if (nodes.some((n) => n.id === id && n.lost === true)) return;
        await sleep(50);
      }
    };
    const pendingSeen = (kind: string) => async () => (await getJson<JobRow[]>('/api/jobs')).some((j) => j.pending?.kind === kind);
    const nodeIds = () => {
      const running = cluster.nodePids;
      return cluster.info.nodes.filter((n) => n.state === undefined && running.has(n.id)).map((n) => n.id);
    };
    const pickNode = () => {
      const ids = nodeIds();
      return ids[Math.floor(Math.random() * ids.length)]!;
    };
    const proxyOf = (id: string) => proxies.get(cluster.nodeControllerAddress(id) ?? '');

    const deadline = Date.now() + o.seconds * 1000;
    for (let episode = 0; Date.now() < deadline; episode++) {
      const kind = o.faults[episode % o.faults.length]!;
      const target = pickNode();
      const start = clock();
      const killController = Math.random() < o.controllerKillShare;
      // Watching for the copies the fault starts from its first moment: they may take well under a second.
      const killer = (kind: string, note: string, withinMs: number, over?: () => boolean) =>
        killController ? killControllerWhen(pendingSeen(kind), note, withinMs, over) : Promise.resolve();
      try {
        switch (kind) {
          case 'restart': {
            // The restoration starts as the new process registers, and takes a second or two.
            const killing = killer('restore', `while restoring copies after ${target} restarted`, o.nodeTimeoutMs * 3);
            await cluster.restartNode(target, 'SIGKILL');
            faults.push({ kind, target, startMs: start, endMs: clock() });
            await killing;
            break;
          }
          case 'freeze': {
            await cluster.freezeNode(target);
            const killing = killer('restore', `while restoring copies of frozen ${target}`, o.nodeTimeoutMs * 3);
            await untilLost(target);
            await killing;
            await cluster.thawNode(target);
            faults.push({ kind, target, startMs: start, endMs: clock() });
            break;
          }
          case 'freeze-pair': {
            const others = nodeIds().filter((id) => id !== target);
            const other = others[Math.floor(Math.random() * others.length)];
            const pair = other === undefined ? [target] : [target, other];
            for (const id of pair) await cluster.freezeNode(id);
            const killing = killer('restore', `while restoring copies of frozen ${pair.join(' and ')}`, o.nodeTimeoutMs * 3);
            for (const id of pair) await untilLost(id);
            await killing;
            for (const id of pair) await cluster.thawNode(id);
            faults.push({ kind, target: pair.join(','), startMs: start, endMs: clock(), note: 'frozen together' });
            break;
          }
          case 'partition': {
            const proxy = proxyOf(target);
            if (proxy === undefined) break;
            proxy.cut();
            const killing = killer('restore', `while restoring copies of cut-off ${target}`, o.nodeTimeoutMs * 3);
            await untilLost(target);
            await killing;
            proxy.heal();
            faults.push({ kind, target, startMs: start, endMs: clock(), note: 'cut from the controller; clients still reach it' });
            break;
          }
          case 'drain': {
            // Watched until the drain is over: a small one is done before its copies are seen (a drain that
            // was watched for its full 20 s took 21 s).
            let drained = false;
            const killing = killer('drain', `while draining ${target}`, 20_000, () => drained);
            const drain = fetch(`${api}/api/nodes/${target}`, { method: 'DELETE', headers: admin })
              .catch(() => null)
              .finally(() => (drained = true));
            await killing;
            await drain;
            const until = Date.now() + 60_000;
            while (cluster.info.nodes.some((n) => n.id === target) && Date.now() < until) await sleep(50);
            faults.push({
              kind,
              target,
              startMs: start,
              endMs: clock(),
              note: cluster.info.nodes.some((n) => n.id === target) ? 'not removed within 60 s' : 'removed',
            });
            break;
          }
        }
      } catch (error) {
        // The harness, not the system under test: a node that left meanwhile (a drain a restarted controller
        // resumed, say). Counted and shown; the cluster is mended below and the run goes on.
        harnessErrors.push(`${kind} of ${target}: ${(error as Error).message}`);
        progress(`${kind} of ${target} could not be done: ${(error as Error).message}`);
        for (const node of cluster.info.nodes) {
          if (node.state === 'frozen') await cluster.thawNode(node.id).catch(() => {});
          if (node.state === 'down') await cluster.startNode(node.id).catch(() => {});
        }
        for (const proxy of proxies.values()) proxy.heal();
      }
      // Nodes that left (drained) are replaced, so every fault finds the cluster at its size.
      while (cluster.info.nodes.length < o.nodes) await cluster.addNode('dram');
      await settle(`${kind} of ${target}`);
      const killed = faults.at(-1)?.kind === 'controller' && faults.at(-1)!.startMs >= start;
      progress(
        `${kind.padEnd(9)} ${target.padEnd(12)} ${((clock() - start) / 1000).toFixed(1)} s${killed ? ' + controller killed while copying' : ''}`,
      );
      if (Date.now() - jobsSince > o.jobSeconds * 1000 && Date.now() < deadline) {
        const old = registered;
        registered = await registerJobs(satchel, o, ++generation, startedAt, driverOps);
        jobsSince = Date.now();
        await Promise.all(
          workers.map((w) =>
            w.switchTo(
              generation,
              registered.map((r) => r.job),
            ),
          ),
        );
        driverOps.push(...(await readBack(old, startedAt, o.timeoutMs)));
        await Promise.all(old.map((r) => r.registered.deregister().catch(() => {})));
        progress(`new jobs (generation ${generation}); the old ones read back and deregistered`);
      }
    }
    for (const proxy of proxies.values()) proxy.heal();
    await settle('the last fault');
    driverOps.push(...(await readBack(registered, startedAt, o.timeoutMs)));
    const ops = await Promise.all(workers.map((w) => w.stop()));
    progress(`stopped: ${ops.reduce((a, b) => a + b, 0)} operations, ${faults.length} faults`);
    await Promise.all(registered.map((r) => r.registered.deregister().catch(() => {})));
    const history: History = {
      startedAt: new Date(startedAt).toISOString(),
      durationMs: clock(),
      ops: [...(await readHistories(dir, o.processes)), ...driverOps],
      faults,
    };
    const report = checkHistory(history);
    const byKind: Record<string, number> = {};
    for (const fault of faults) byKind[fault.kind] = (byKind[fault.kind] ?? 0) + 1;
    return { history, report, faults: byKind, unsettled, harnessErrors };
  } finally {
    for (const worker of workers) worker.kill();
    satchel.close();
    await cluster.stop();
    for (const proxy of proxies.values()) await proxy.close();
    await rm(dir, { recursive: true, force: true });
  }
}

interface Registered {
  job: NemesisJob;
  registered: RegisteredJob;
  /** Keys written once before the clients start, read back at the end. */
  ballast: string[];
}

/**
 * One job per replicas setting, spread over every node (its throughput hint asks for all of them), its keys and
 * ballast written (and recorded) before the clients see it.
 */
async function registerJobs(
  satchel: Satchel,
  o: { keysPerJob: number; countersPerJob: number; ballastPerJob: number; timeoutMs: number },
  generation: number,
  startedAt: number,
  history: HistoryOp[],
): Promise<Registered[]> {
  return Promise.all(
    ([1, 2, 3] as const).map(async (replicas) => {
      const registered = await retrying('registering a job', () =>
        satchel.registerJob(`nemesis-r${replicas}-g${generation}`, { replicas, latencySensitive: true, peakThroughput: 50e9 }),
      );
      const job: NemesisJob = {
        id: registered.id,
        replicas,
        ticket: registered.ticket,
        keys: Array.from({ length: o.keysPerJob }, (_, i) => `k${i}`),
        deletable: Array.from({ length: Math.ceil(o.keysPerJob / 4) }, (_, i) => `d${i}`),
        counters: Array.from({ length: o.countersPerJob }, (_, i) => `c${i}`),
        ballast: o.ballastPerJob,
      };
      const ballast = Array.from({ length: o.ballastPerJob }, (_, i) => `b${i}`);
      const handle = await retrying('attaching a job', () => Satchel.attach(registered.ticket, { timeoutMs: o.timeoutMs }));
      try {
        await forEachLimit([...job.keys, ...ballast], 64, async (key) => {
          const value = key.startsWith('b') ? `${job.id}.${key}.`.padEnd(512, '#') : `driver.${job.id}.${key}`;
          const invokeMs = Date.now() - startedAt;
          await handle.put(key, value);
          history.push({
            process: 'driver',
            job: job.id,
            replicas,
            op: 'put',
            key,
            value,
            invokeMs,
            completeMs: Date.now() - startedAt,
            outcome: 'ok',
          });
        });
      } finally {
        await handle.close();
      }
      return { job, registered, ballast };
    }),
  );
}

/** Every key of the jobs (ballast too) read back through a fresh attach: the `final` reads the checker judges. */
async function readBack(jobs: Registered[], startedAt: number, timeoutMs: number): Promise<HistoryOp[]> {
  const out: HistoryOp[] = [];
  const now = () => Date.now() - startedAt;
  for (const { job, ballast } of jobs) {
    const handle = await retrying('attaching a job', () => Satchel.attach(job.ticket, { timeoutMs }));
    try {
      await forEachLimit([...job.keys, ...job.deletable, ...job.counters, ...ballast], 64, async (key) => {
        const invokeMs = now();
        try {
          const value = await handle.get(key);
          out.push({
            process: 'final',
            job: job.id,
            replicas: job.replicas,
            op: 'get',
            key,
            invokeMs,
            completeMs: now(),
            outcome: 'ok',
            result: value === null ? null : value.toString(),
            final: true,
          });
        } catch (error) {
          const code = error instanceof SatchelError ? error.code : 'ERROR';
          const failed: HistoryOp & { errorMessage?: string } = {
            process: 'final',
            job: job.id,
            replicas: job.replicas,
            op: 'get',
            key,
            invokeMs,
            completeMs: now(),
            outcome: 'fail',
            errorCode: code,
            final: true,
          };
          failed.errorMessage = String((error as Error)?.message).slice(0, 300);
          out.push(failed);
        }
      });
    } finally {
      await handle.close();
    }
  }
  return out;
}

/** The driver's retries: UNAVAILABLE and TIMEOUT, from 0.1–0.2 s apart to at most 1 s. */
const DRIVER_BACKOFF = new Backoff({ baseMs: 200, capMs: 1_000 });

/**
 * The driver's own control-plane calls, retried for up to a minute while the controller (killed by the nemesis a
 * moment ago) or a metadata server does not answer: the driver is not under test, its clients are. A deadline
 * rather than a count of attempts, since one attempt may itself wait out its timeout.
 */
async function retrying<T>(what: string, call: () => Promise<T>): Promise<T> {
  const until = Date.now() + 60_000;
  for (let failures = 1; ; failures++) {
    try {
      return await call();
    } catch (error) {
      if (!DRIVER_BACKOFF.retries(error) || Date.now() > until)
        throw new SatchelError('UNAVAILABLE', `nemesis driver ${what}: ${(error as Error).message}`, { cause: error });
      await sleep(DRIVER_BACKOFF.delay(failures));
    }
  }
}

async function readHistories(dir: string, processes: number): Promise<HistoryOp[]> {
  const ops: HistoryOp[] = [];
  for (let w = 0; w < processes; w++) {
    const text = await readFile(join(dir, `w${w}.ndjson`), 'utf8').catch(() => '');
    for (const line of text.split('\n')) if (line.length > 0) ops.push(JSON.parse(line) as HistoryOp);
  }
  return ops;
}

/** A client process: started with its jobs, moved to new ones, stopped once its history is flushed. */
class Worker {
  private readonly child: ChildProcess;
  private readonly waiting = new Map<string, (message: ToDriver) => void>();

  constructor(
    readonly index: number,
    start: ToWorker,
  ) {
    this.child = fork(WORKER, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: process.execArgv });
    this.child.on('message', (message: ToDriver) => {
      const key = message.type === 'switched' ? `switched:${message.generation}` : message.type;
      if (message.type === 'error') process.stderr.write(`nemesis client ${index}: ${message.message}\n`);
      this.waiting.get(key)?.(message);
    });
    this.child.send(start);
  }

  switchTo(generation: number, jobs: NemesisJob[]): Promise<void> {
    const done = this.next(`switched:${generation}`);
    this.child.send({ type: 'jobs', generation, jobs } satisfies ToWorker);
    return done.then(() => undefined);
  }

  async stop(): Promise<number> {
    const stopped = this.next('stopped');
    this.child.send({ type: 'stop' } satisfies ToWorker);
    const message = await stopped;
    return message.type === 'stopped' ? message.ops : 0;
  }

  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }

  private next(key: string): Promise<ToDriver> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new SatchelError('TIMEOUT', `nemesis client ${this.index}: no ${key} within 60 s`)), 60_000);
      this.waiting.set(key, (message) => {
        clearTimeout(timer);
        this.waiting.delete(key);
        resolve(message);
      });
    });
  }
}

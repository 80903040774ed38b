/**
 * `satchel bench scale` (issue 20): the real controller — its own process, started as `satchel up` starts it,
 * with the autoscaler on and the local provisioner asking this process for nodes — against simulated storage
 * nodes (scale-nodes.ts) and a job trace (scale-trace.ts), with a real metadata server.
 *
 * Time is compressed by `speed`: the trace's arrivals and durations, and the autoscaler's windows and cool-down,
 * are divided by it. What stays in real time: nodes report every `reportMs` (so the controller absorbs `nodes`
 * reports a second whatever the speed), the autoscaler ticks every second, node timeouts and job leases (drivers
 * renew every third of the lease, as RegisteredJob does). So at speed X the policy sees each node's state every X
 * simulated seconds, and decides at most once per X simulated seconds per tier.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { LocalCluster } from '../deploy/index.ts';
import {
  type ControllerMethods,
  decodeTicket,
  LightControlClient,
  type MetadataMethods,
  SatchelError,
  TIERS,
  type Tier,
} from '../proto/index.ts';
import { consoleJson } from './cluster-access.ts';
import { cpuSecondsOf, rssOf } from './proc.ts';
import { Progress } from './progress.ts';
import { type ClusterPlan, type ModelJob, planCluster, TimeIntegral } from './scale-model.ts';
import { SimFleet } from './scale-nodes.ts';
import { type ScaleDetails, type ScaleSample, type ScaleSummary, summarize } from './scale-report.ts';
import { generateTrace, type TraceJob } from './scale-trace.ts';
import { LatencyRecorder, round } from './stats.ts';

export interface ScaleOptions {
  /** Storage nodes the run starts with (split by tier from the trace: scale-model.ts `planCluster`). */
  nodes: number;
  /** Jobs of a generated trace (ignored with `trace`). */
  jobs: number;
  seed: number;
  /** A trace read from a CSV file (`--trace`), instead of a generated one. */
  trace?: TraceJob[];
  /** Simulated seconds per real second. */
  speed: number;
  /** Real ms between a node's reports. */
  reportMs: number;
  /** Placement lookups a running job's functions make at the metadata servers, per simulated second. */
  lookupsPerJobS: number;
  /** Metadata servers (each job's placement on two of them, the ones its ticket names: controller metadata-links.ts). */
  metadataServers: number;
  /** Real ms between samples of the time series. */
  sampleMs: number;
  /** Registrations and deregistrations in flight at most (drivers' calls; past it they queue here). */
  inFlight: number;
  /** Real seconds of reports alone (every node, no job) before the trace, to measure a report's cost. */
  calibrateS: number;
  /** Jobs run at most this long (simulated s): the log-normal's tail otherwise sets how long a run takes. */
  maxJobS?: number | undefined;
  /** A generated trace's arrivals span this many simulated seconds (scale-trace.ts; default jobs / 10). */
  spanS?: number | undefined;
  /** Simulated nodes whose report streams share one connection (scale-nodes.ts; 1: a connection each). */
  nodesPerConnection?: number | undefined;
}

export interface ScaleResult {
  plan: ClusterPlan;
  summary: ScaleSummary;
  details: ScaleDetails;
  samples: ScaleSample[];
  /** The controller's scaling events (scale-up/down, launches, drains, removals) as it logged them. */
  events: { t_s: number; kind: string; tier?: string; node?: string; message: string }[];
  notes: string[];
  /** PIDs of the controller and the metadata servers the run started (stopped when it returns). */
  processes: number[];
}

interface Running {
  /** Its functions are done and its deregistration is queued: no more lookups (its driver still renews). */
  ending?: boolean;
  id: string;
  token: string;
  driverToken: string;
  /** The metadata servers its ticket names, in the order clients ask them. */
  metadata: string[];
  job: ModelJob;
  renewedAt: number;
}

const LEASE_MS = 60_000;
const RENEWALS_IN_FLIGHT = 24;

export async function runScale(options: ScaleOptions): Promise<ScaleResult> {
  const cap = options.maxJobS === undefined ? Infinity : options.maxJobS * 1000;
  const trace = (
    options.trace ??
    generateTrace({
      jobs: options.jobs,
      seed: options.seed,
      ...(options.spanS === undefined ? {} : { spanS: options.spanS }),
    })
  ).map((job) => (job.durationMs > cap ? { ...job, durationMs: cap } : job));
  const plan = planCluster(trace, options.nodes);
  const speed = options.speed;
  const tiersUsed = TIERS.filter((t) => plan.nodes[t] > 0);
  const perTier = (f: (t: Tier) => number) => Object.fromEntries(TIERS.map((t) => [t, f(t)])) as Record<Tier, number>;
  let fleet: SimFleet | null = null;
  const cluster = await LocalCluster.start({
    dram: 0,
    metadata: options.metadataServers,
    leaseMs: LEASE_MS,
    // Five report periods of silence before a node is lost, as with a real node's 1 s reports and the 5 s default:
    // at 10,000 nodes reports come every 10 s (controller/README.md "Scale"), and a 5 s timeout would lose them all.
    nodeTimeoutMs: Math.max(5_000, 5 * options.reportMs),
    // V8's own heap sizing, as a controller of thousands of nodes should run (deploy/child-process.ts).
    controllerHeap: 'large',
    autoscale: {
      minNodes: perTier((t) => (plan.nodes[t] > 0 ? 1 : 0)),
      maxNodes: perTier((t) => Math.max(2, plan.nodes[t] * 2)),
      scaleUpAfterMs: Math.max(1, Math.round(2_000 / speed)),
      scaleDownAfterMs: Math.max(1, Math.round(20_000 / speed)),
      cooldownMs: Math.max(1, Math.round(10_000 / speed)),
    },
    provision: {
      launch: (tier) => (fleet === null ? Promise.reject(new SatchelError('UNAVAILABLE', 'no fleet yet')) : fleet.launch(tier)),
      remove: (nodeId) => (fleet === null ? Promise.reject(new SatchelError('UNAVAILABLE', 'no fleet yet')) : fleet.remove(nodeId)),
    },
  });
  const controller = new LightControlClient<ControllerMethods>('satchel.v1.Controller', cluster.controller, 30_000);
  const metadata = new Map(
    cluster.info.metadata.map((address) => [address, new LightControlClient<MetadataMethods>('satchel.v1.Metadata', address, 30_000)]),
  );
  const models = new Map<string, ModelJob>();
  let startedAt = performance.now();
  const simNow = () => (performance.now() - startedAt) * speed;
  try {
    fleet = new SimFleet({
      controller: cluster.controller,
      adminToken: cluster.adminToken,
      capacity: plan.capacity,
      bandwidth: plan.bandwidth,
      reportMs: options.reportMs,
      nodesPerConnection: options.nodesPerConnection ?? 1,
      jobs: models,
      now: simNow,
    });
    const starting = new Progress('scale: nodes', 10);
    const launches: Promise<string>[] = [];
    let launched = 0;
    for (const tier of tiersUsed)
      for (let i = 0; i < plan.nodes[tier]; i++) {
        launches.push(
          fleet.launch(tier).then((id) => {
            if (++launched % Math.max(1, Math.ceil(options.nodes / 10)) === 0) starting.step(`${launched} registered`);
            return id;
          }),
        );
        // A handful of registrations at a time: each places waiting jobs, and a start of 1,000 at once is not a test of that.
        if (launches.length % 16 === 0) await Promise.all(launches.slice(-16));
      }
    await Promise.all(launches);
    starting.end();
    // Reports alone first: the controller's CPU per report with every node reporting and no job yet.
    const idle = await calibrate(fleet, cluster.controllerPid, options.calibrateS);
    startedAt = performance.now();
    const result = await drive(options, trace, plan, fleet, cluster, controller, metadata, models, simNow, () => startedAt);
    const own = await controllerTimings(join(cluster.stateDir, 'logs'));
    result.details.controller_decision_p50_ms = ms(own.decision.percentile(50));
    result.details.controller_decision_p99_ms = ms(own.decision.percentile(99));
    result.details.controller_handler_p50_ms = ms(own.handler.percentile(50));
    result.details.controller_handler_p99_ms = ms(own.handler.percentile(99));
    result.details.controller_decisions_logged = own.decision.count;
    result.processes = [cluster.controllerPid, ...cluster.metadataPids];
    result.details.idle_reports_per_s = idle.reportsPerS;
    result.details.idle_controller_cpu_per_report_us = idle.cpuPerReportUs;
    return result;
  } finally {
    controller.close();
    for (const client of metadata.values()) client.close();
    await fleet?.close();
    await cluster.stop();
  }
}

async function drive(
  options: ScaleOptions,
  trace: readonly TraceJob[],
  plan: ClusterPlan,
  fleet: SimFleet,
  cluster: LocalCluster,
  controller: LightControlClient<ControllerMethods>,
  metadata: Map<string, LightControlClient<MetadataMethods>>,
  models: Map<string, ModelJob>,
  simNow: () => number,
  startedAt: () => number,
): Promise<ScaleResult> {
  const { speed } = options;
  const key = cluster.tenantKey;
  // This process's own health: a simulator whose event loop lags would starve the controller of reports.
  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  const ownCpu = process.cpuUsage();
  const decisions = new LatencyRecorder();
  let intervalDecisions = new LatencyRecorder();
  const deregistrations = new LatencyRecorder();
  const lookups = new LatencyRecorder();
  /** How long arrivals waited in this process's queue (the controller not keeping up with the compressed trace). */
  const waits = new LatencyRecorder();
  const running = new Map<string, Running>();
  const failures = new Map<string, number>();
  const fail = (what: string, error: unknown) => {
    const code = `${what}:${error instanceof SatchelError ? error.code : 'ERROR'}`;
    failures.set(code, (failures.get(code) ?? 0) + 1);
  };
  let registered = 0;
  let deregistered = 0;
  let refused = 0;
  let lookupsDone = 0;
  let lookupsSkipped = 0;
  const lookupsByServer = new Map<string, number>([...metadata.keys()].map((address) => [address, 0]));
  let renewals = 0;

  // Drivers' calls, at most `inFlight` at once: a burst of 8× the base rate past it queues here (the wait is not
  // counted in the decision's latency: it is this process's queue, not the controller's).
  const queue: (() => Promise<void>)[] = [];
  let active = 0;
  const pump = () => {
    while (active < options.inFlight && queue.length > 0) {
      const task = queue.shift()!;
      active++;
      void task().finally(() => {
        active--;
        pump();
      });
    }
  };
  const enqueue = (task: () => Promise<void>) => {
    queue.push(task);
    pump();
  };

  const deregister = (run: Running) => {
    run.ending = true;
    enqueue(async () => {
      running.delete(run.id);
      const began = performance.now();
      try {
        await controller.call('DeregisterJob', { jobId: run.id, token: run.driverToken });
        deregistrations.add((performance.now() - began) * 1000);
      } catch (error) {
        fail('deregister', error);
      }
      models.delete(run.id);
      deregistered++;
    });
  };

  const register = (job: TraceJob, index: number) => {
    const queued = performance.now();
    enqueue(async () => {
      waits.add((performance.now() - queued) * 1000);
      const hints = {
        latencySensitive: job.latencySensitive,
        ...(job.capacityHint > 0 ? { capacity: job.capacityHint } : {}),
        peakThroughput: job.throughputHint,
        replicas: job.replicas,
      };
      const began = performance.now();
      try {
        const reply = await controller.call('RegisterJob', { name: `scale-${index}`, hints, key });
        const micros = (performance.now() - began) * 1000;
        decisions.add(micros);
        intervalDecisions.add(micros);
        const model: ModelJob = { trace: job, registeredAtMs: simNow() };
        models.set(reply.jobId, model);
        const run: Running = {
          id: reply.jobId,
          token: reply.token,
          driverToken: reply.driverToken,
          metadata: decodeTicket(reply.ticket).metadata,
          job: model,
          renewedAt: performance.now(),
        };
        running.set(run.id, run);
        registered++;
        setTimeout(() => deregister(run), job.durationMs / speed).unref();
      } catch (error) {
        refused++;
        fail('register', error);
      }
    });
  };

  // Arrivals, lookups and lease renewals on one 10 ms tick.
  let next = 0;
  let lookupsInFlight = 0;
  let renewalsInFlight = 0;
  let lastTick = performance.now();
  const tick = setInterval(() => {
    const now = performance.now();
    const elapsedSim = simNow();
    while (next < trace.length && trace[next]!.arriveMs <= elapsedSim) {
      register(trace[next]!, next);
      next++;
    }
    // Functions looking their job's placement up (a Poisson process per running job, at lookupsPerJobS simulated).
    const expected = (options.lookupsPerJobS * running.size * speed * (now - lastTick)) / 1000;
    lastTick = now;
    let count = Math.floor(expected) + (Math.random() < expected % 1 ? 1 : 0);
    if (count > 0) {
      const ids = [...running.values()].filter((r) => r.ending !== true);
      while (count-- > 0) {
        if (lookupsInFlight >= 64) {
          lookupsSkipped++;
          continue;
        }
        const run = ids[Math.floor(Math.random() * ids.length)];
        if (run === undefined) break;
        // A function asks the first server its ticket names (client/metadata-lookup.ts; the others on failure).
        const server = run.metadata.find((address) => metadata.has(address)) ?? [...metadata.keys()][0]!;
        lookupsInFlight++;
        const began = performance.now();
        metadata
          .get(server)!
          .call('GetPlacement', { jobId: run.id, token: run.token })
          .then(
            () => {
              lookups.add((performance.now() - began) * 1000);
              lookupsDone++;
              lookupsByServer.set(server, (lookupsByServer.get(server) ?? 0) + 1);
            },
            (error: unknown) => {
              // A job that ended while its lookup was on the way is the expected miss.
              if (running.has(run.id)) fail('lookup', error);
            },
          )
          .finally(() => lookupsInFlight--);
      }
    }
    for (const run of running.values()) {
      // Drivers' calls share this process's one HTTP/2 session with the controller (64 streams at once): renewals
      // past RENEWALS_IN_FLIGHT wait for the next tick rather than be refused (a real driver has its own).
      if (renewalsInFlight >= RENEWALS_IN_FLIGHT) break;
      if (now - run.renewedAt < LEASE_MS / 3) continue;
      run.renewedAt = now;
      renewals++;
      renewalsInFlight++;
      controller
        .call('RenewLease', { jobId: run.id, token: run.driverToken })
        .catch((error: unknown) => {
          if (running.has(run.id)) fail('renew', error);
        })
        .finally(() => renewalsInFlight--);
    }
  }, 10);

  // Samples: the controller's process, what the nodes reported to it (the console's /api/nodes, every other
  // sample: it costs the controller a walk of every node and job), the fleet's counters, the decisions made.
  const samples: ScaleSample[] = [];
  const events: ScaleResult['events'] = [];
  const reserved = new TimeIntegral();
  const used = new TimeIntegral();
  const nodeSeconds = new TimeIntegral();
  const cpuAtStart = (await cpuSecondsOf(cluster.controllerPid)) ?? 0;
  const reportsAtStart = fleet.counters.reports;
  let lastCpu = cpuAtStart;
  let lastReports = reportsAtStart;
  let lastMoves = 0;
  let lastLookups = 0;
  let lastSampleAt = performance.now();
  let eventSeq = 0;
  let rssPeak = 0;
  let capacity: Record<string, { reserved_bytes: number; used_bytes: number }> = {};
  let sampleNo = 0;
  const progress = new Progress('scale', Math.ceil(traceEndS(trace) / speed / 10));
  let lastProgress = performance.now();
  const takeSample = async () => {
    const now = performance.now();
    const seconds = (now - lastSampleAt) / 1000;
    lastSampleAt = now;
    const t = simNow() / 1000;
    const cpu = (await cpuSecondsOf(cluster.controllerPid)) ?? lastCpu;
    const rss = (await rssOf(cluster.controllerPid)) ?? 0;
    rssPeak = Math.max(rssPeak, rss);
    if (sampleNo++ % 2 === 0) {
      // A read that fails keeps the last one (a controller too busy to answer has not emptied its nodes).
      try {
        const nodes = await within(
          consoleJson<{ tier: string; reserved: number; stats: { used: number } | null }[]>(
            cluster.info.console,
            '/api/nodes',
            cluster.viewerToken,
          ),
          CONSOLE_TIMEOUT_MS,
        );
        const read: typeof capacity = {};
        for (const node of nodes) {
          const tier = (read[node.tier] ??= { reserved_bytes: 0, used_bytes: 0 });
          tier.reserved_bytes += Math.round(node.reserved);
          tier.used_bytes += node.stats?.used ?? 0;
        }
        capacity = read;
      } catch (error) {
        fail('console', error);
      }
    }
    try {
      const fresh = await within(
        consoleJson<{ seq: number; at: string; kind: string; tier?: string; node?: string; message: string }[]>(
          cluster.info.console,
          `/api/events?after=${eventSeq}`,
          cluster.viewerToken,
        ),
        CONSOLE_TIMEOUT_MS,
      );
      for (const e of fresh) {
        eventSeq = Math.max(eventSeq, e.seq);
        if (/^(scale-|node-launched|node-removed|drain-|launch-failed)/.test(e.kind))
          events.push({ t_s: Math.round(t * 10) / 10, kind: e.kind, tier: e.tier, node: e.node, message: e.message });
      }
    } catch (error) {
      fail('console', error);
    }
    const counts = fleet.countByTier();
    const totalReserved = Object.values(capacity).reduce((sum, c) => sum + c.reserved_bytes, 0);
    const totalUsed = Object.values(capacity).reduce((sum, c) => sum + c.used_bytes, 0);
    reserved.add(t, totalReserved);
    used.add(t, totalUsed);
    nodeSeconds.add(t, fleet.size);
    const reports = fleet.counters.reports;
    samples.push({
      t_s: Math.round(t * 10) / 10,
      real_s: Math.round(((now - startedAt()) / 1000) * 10) / 10,
      nodes: counts,
      jobs_running: running.size,
      capacity,
      reports_per_s: seconds > 0 ? Math.round((reports - lastReports) / seconds) : 0,
      controller_cpu: seconds > 0 ? Math.round(((cpu - lastCpu) / seconds) * 1000) / 1000 : 0,
      controller_rss_mb: Math.round((rss / 2 ** 20) * 10) / 10,
      decisions: intervalDecisions.count,
      decision_p50_ms: Math.round(intervalDecisions.percentile(50)) / 1000,
      decision_p99_ms: Math.round(intervalDecisions.percentile(99)) / 1000,
      migrations: fleet.counters.moves - lastMoves,
      lookups_per_s: seconds > 0 ? Math.round((lookupsDone - lastLookups) / seconds) : 0,
    });
    intervalDecisions = new LatencyRecorder();
    lastCpu = cpu;
    lastReports = reports;
    lastMoves = fleet.counters.moves;
    lastLookups = lookupsDone;
    if (now - lastProgress >= 10_000) {
      lastProgress = now;
      const s = samples.at(-1)!;
      progress.step(
        `t=${s.t_s.toFixed(0)} s: ${registered}/${trace.length} registered, ${running.size} running, nodes ${TIERS.map((x) => `${x} ${counts[x]}`).join(' ')}, ${s.reports_per_s} reports/s, controller ${(s.controller_cpu * 100).toFixed(0)} % CPU, ${s.controller_rss_mb} MB`,
      );
    }
  };
  let sampling = Promise.resolve();
  const sampler = setInterval(() => {
    sampling = sampling.then(takeSample);
  }, options.sampleMs);
  try {
    // Until every job arrived and ended, and no call is left.
    while (next < trace.length || running.size > 0 || active > 0 || queue.length > 0 || models.size > 0)
      await new Promise((resolve) => setTimeout(resolve, 100));
  } finally {
    clearInterval(tick);
    clearInterval(sampler);
    await sampling;
  }
  await takeSample();
  progress.end();
  const realS = (performance.now() - startedAt()) / 1000;
  const cpuS = ((await cpuSecondsOf(cluster.controllerPid)) ?? lastCpu) - cpuAtStart;
  const reports = fleet.counters.reports - reportsAtStart;
  const peakNodes = Math.max(...samples.map((s) => TIERS.reduce((sum, t) => sum + s.nodes[t], 0)));
  const { summary, details } = summarize({
    nodes: TIERS.reduce((sum, t) => sum + plan.nodes[t], 0),
    jobs: trace.length,
    registered,
    deregistered,
    refused,
    decisions,
    deregistrations,
    lookups,
    lookupsDone,
    lookupsSkipped,
    renewals,
    realS,
    simS: simNow() / 1000,
    reports,
    reportFailures: fleet.counters.reportFailures,
    reportLatency: fleet.reportLatency,
    controllerCpuS: cpuS,
    controllerRssPeak: rssPeak,
    reserved,
    used,
    nodeSeconds,
    peakNodes,
    moves: fleet.counters.moves,
    bytesMoved: fleet.counters.bytesMoved,
    launched: fleet.counters.launched - TIERS.reduce((sum, t) => sum + plan.nodes[t], 0),
    removed: fleet.counters.removed,
    failures,
  });
  const notes = [
    `time compressed ${speed}×: trace times and the autoscaler's windows (up ${Math.round(2_000 / speed)} ms, down ${Math.round(20_000 / speed)} ms, cool-down ${Math.round(10_000 / speed)} ms real) divided by it; reports every ${options.reportMs} ms, the autoscaler's 1 s tick, node timeout and job leases in real time`,
    "decision_p50/p99_ms: the RegisterJob call as drivers saw it (allocation, the record written to LevelDB, ANNOUNCE to the nodes, SetPlacement at the metadata server, the ticket, and the controller's queue); details.controller_decision_*: the controller's own timing of admission and allocation, from its log",
    "reserved and used: the controller console's /api/nodes every other sample (a read that fails or takes over 5 s keeps the previous one)",
    'bytes_moved: what the model says each moved job held on the node it moved off (simulated nodes hold no keys: the copy loop lists none)',
    'controller_cpu_per_report_us: all of the controller process CPU over the run divided by the reports it answered (registrations, renewals, the console polls and the autoscaler included): an upper bound',
  ];
  details.arrival_wait_p99_ms = ms(waits.percentile(99));
  // Each job's lookups go to the first server its ticket names: each server's share, and its rate over the run.
  details.lookups_by_server = Object.fromEntries(lookupsByServer);
  details.lookups_per_s_by_server = Object.fromEntries([...lookupsByServer].map(([address, n]) => [address, round(n / realS, 1)]));
  loop.disable();
  details.simulator_loop_delay_p99_ms = round(loop.percentile(99) / 1e6, 1);
  details.simulator_loop_delay_max_ms = round(loop.max / 1e6, 1);
  const simCpu = process.cpuUsage(ownCpu);
  details.simulator_cpu_cores = round((simCpu.user + simCpu.system) / 1e6 / realS, 3);
  return { plan, summary, details, samples, events, notes, processes: [] };
}

/** When the trace's last job ends (simulated seconds). */
export function traceEndS(trace: readonly TraceJob[]): number {
  return trace.reduce((end, job) => Math.max(end, job.arriveMs + job.durationMs), 0) / 1000;
}

const ms = (micros: number) => round(micros / 1000, 3);

/**
 * The controller's own timing of each registration, from its log ('job registered': `decisionUs`, admission and
 * allocation before anything is sent; `handlerUs`, the whole handler, the record, announcements and publish
 * included).
 */
async function controllerTimings(logs: string): Promise<{ decision: LatencyRecorder; handler: LatencyRecorder }> {
  const decision = new LatencyRecorder();
  const handler = new LatencyRecorder();
  for (const name of (await readdir(logs).catch(() => [] as string[])).filter((n) => n.startsWith('controller'))) {
    const text = await readFile(join(logs, name), 'utf8');
    for (const line of text.split('\n')) {
      if (!line.includes('"job registered"')) continue;
      try {
        const entry = JSON.parse(line) as { decisionUs?: number; handlerUs?: number };
        if (typeof entry.decisionUs === 'number') decision.add(entry.decisionUs);
        if (typeof entry.handlerUs === 'number') handler.add(entry.handlerUs);
      } catch {
        // a line cut short by the stop
      }
    }
  }
  return { decision, handler };
}

/** The controller's CPU per report over `seconds` of reports alone (after a second for the nodes to settle). */
async function calibrate(fleet: SimFleet, pid: number, seconds: number): Promise<{ reportsPerS: number; cpuPerReportUs: number }> {
  if (seconds <= 0) return { reportsPerS: 0, cpuPerReportUs: 0 };
  await new Promise((resolve) => setTimeout(resolve, 1_000));
  const cpu = (await cpuSecondsOf(pid)) ?? 0;
  const reports = fleet.counters.reports;
  const began = performance.now();
  await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
  const n = fleet.counters.reports - reports;
  const used = ((await cpuSecondsOf(pid)) ?? cpu) - cpu;
  return { reportsPerS: round(n / ((performance.now() - began) / 1000), 1), cpuPerReportUs: n > 0 ? round((used * 1e6) / n, 1) : 0 };
}

/** A console read that takes longer is given up (the sample goes on without it; counted as a failure). */
const CONSOLE_TIMEOUT_MS = 5_000;

function within<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new SatchelError('TIMEOUT', `no answer within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

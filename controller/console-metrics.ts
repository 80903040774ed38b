/**
 * The controller's `/metrics`: its own process, and the cluster as it sees it (nodes, reservations, usage,
 * utilization per node, jobs and their cost, autoscaler decisions, control-plane calls that failed). Each
 * registry is private to its console, so two controllers in one test process never share metrics.
 */
import { Counter, collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import { TIERS } from '../proto/index.ts';
import type { ConsoleBackend, NodeView } from './console-backend.ts';

/** What the console's live stream reports: pages open now (console-live.ts). */
export interface StreamGauge {
  readonly size: number;
}

/**
 * The registry, `close` to stop following the controller's events, and the counters the console's live stream
 * bumps (pages dropped for falling behind, pages refused over the cap).
 */
export function controllerMetrics(
  backend: ConsoleBackend,
  streams?: StreamGauge,
): { registry: Registry; close: () => void; streamsDropped: Counter<'reason'>; streamsRefused: Counter } {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'satchel_controller_' });
  // prom-client names three gauges `…_total`, which promtool rejects (only counters end in _total); the
  // unsuffixed `…_active_handles`/`_requests`/`_resources` gauges it also exports say the same.
  for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) {
    registry.removeSingleMetric(`satchel_controller_${name}`);
  }
  new Gauge({
    name: 'satchel_jobs',
    help: 'Registered jobs',
    registers: [registry],
    collect() {
      this.set(backend.clusterView().jobs);
    },
  });
  new Gauge({
    name: 'satchel_nodes',
    help: 'Registered storage nodes by tier',
    labelNames: ['tier'],
    registers: [registry],
    collect() {
      this.reset();
      for (const node of backend.clusterView().nodes) this.inc({ tier: node.tier });
    },
  });
  const byTier = (name: string, help: string, value: (node: NodeView) => number) =>
    new Gauge({
      name,
      help,
      labelNames: ['tier'],
      registers: [registry],
      collect() {
        this.reset();
        for (const node of backend.nodeViews()) this.inc({ tier: node.tier }, value(node));
      },
    });
  byTier('satchel_capacity_bytes', 'Capacity the storage nodes declared, by tier', (n) => n.capacity);
  byTier('satchel_reserved_bytes', 'Bytes reserved for jobs, by tier', (n) => n.reserved);
  byTier('satchel_used_bytes', 'Bytes the storage nodes hold, from their last reports, by tier', (n) => n.stats?.used ?? 0);
  new Gauge({
    name: 'satchel_node_utilization_ratio',
    help: 'Each node as the autoscaler sees it: CPU, network and capacity as fractions of what it declared',
    labelNames: ['tier', 'node', 'resource'],
    registers: [registry],
    collect() {
      this.reset();
      for (const tier of TIERS) {
        for (const load of backend.nodeLoads(tier)) {
          for (const resource of ['cpu', 'network', 'capacity'] as const) this.set({ tier, node: load.id, resource }, load[resource]);
        }
      }
    },
  });
  new Gauge({
    name: 'satchel_job_reservation_bytes',
    help: 'Bytes reserved for each job',
    labelNames: ['job', 'tier'],
    registers: [registry],
    collect() {
      this.reset();
      for (const job of backend.jobViews()) this.set({ job: job.id, tier: job.tier }, job.reservation);
    },
  });
  new Gauge({
    name: 'satchel_job_cost_usd',
    help: 'What each job has cost so far: byte-seconds reserved per tier at the configured prices',
    labelNames: ['job'],
    registers: [registry],
    collect() {
      this.reset();
      for (const job of backend.jobViews()) this.set({ job: job.id }, job.cost.usd);
    },
  });
  new Gauge({
    name: 'satchel_console_streams',
    help: 'Console pages receiving the live stream (/api/stream)',
    registers: [registry],
    collect() {
      this.set(streams?.size ?? 0);
    },
  });
  const streamsDropped = new Counter({
    name: 'satchel_console_streams_dropped_total',
    help: 'Live streams the console ended because the page fell behind: too many bytes unsent (backlog) or none taken for seconds (stalled)',
    labelNames: ['reason'],
    registers: [registry],
  });
  for (const reason of ['backlog', 'stalled']) streamsDropped.inc({ reason }, 0);
  const streamsRefused = new Counter({
    name: 'satchel_console_streams_refused_total',
    help: 'Live streams refused because as many as allowed were open',
    registers: [registry],
  });
  const events = new Counter({
    name: 'satchel_cluster_events_total',
    help: 'Autoscaler decisions and node changes, by kind',
    labelNames: ['kind'],
    registers: [registry],
  });
  for (const event of backend.clusterEvents(0)) events.inc({ kind: event.kind });
  const close = backend.onClusterEvent((event) => events.inc({ kind: event.kind }));
  new Counter({
    name: 'satchel_controller_node_call_failures_total',
    help: 'Calls to storage nodes and metadata servers that failed and were left to a retry (logged as warnings), by operation',
    labelNames: ['op'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [op, n] of backend.nodeCallFailures()) this.inc({ op }, n);
    },
  });
  new Gauge({
    name: 'satchel_spare_jobs',
    help: 'Job placements made ahead of registrations, ready to be taken (controller/spare-jobs.ts)',
    registers: [registry],
    collect() {
      this.set(backend.spareJobs().ready);
    },
  });
  new Counter({
    name: 'satchel_spare_job_lookups_total',
    help: 'Registrations that took a spare placement (taken) or placed their job themselves (missed; neither with --spare-jobs 0)',
    labelNames: ['outcome'],
    registers: [registry],
    collect() {
      const { taken, missed } = backend.spareJobs();
      this.reset();
      this.inc({ outcome: 'taken' }, taken);
      this.inc({ outcome: 'missed' }, missed);
    },
  });
  return { registry, close, streamsDropped, streamsRefused };
}

/**
 * Live updates for console pages, as server-sent events: one snapshot of nodes, jobs and totals per second,
 * built once and written to every open page (not one poll per tab), and each cluster event as it happens.
 * The timer runs only while a page is connected.
 */
import type { ServerResponse } from 'node:http';
import type { ClusterEvent } from './events.ts';
import type { Controller } from './server.ts';
import { costOf } from './cost.ts';
import type { JobRecord } from './registry.ts';

/** `/api/nodes` rows: each node with what is reserved on it and its last report. */
export function nodeRows(controller: Controller) {
  return controller.registry.nodeStates().map((node) => {
    const stats = controller.stats.get(node.id);
    return {
      ...node,
      /** Copies its loss called for (it stopped reporting, or restarted) are being restored elsewhere. */
      recovering: controller.isRecovering(node.id),
      stats: stats === undefined ? null : { ...stats, jobs: Object.fromEntries(stats.jobs) },
    };
  });
}

/** `/api/jobs` rows. */
export function jobRow(job: JobRecord, controller: Controller) {
  return {
    id: job.id,
    name: job.name,
    tier: job.tier,
    reason: job.reason,
    reservation: job.reservation,
    /** Bytes the job holds, from the nodes' last reports (each at most a second old). */
    usage: controller.stats.jobUsage(job.id),
    leaseExpiresAt: new Date(job.leaseExpiresAt).toISOString(),
    createdAt: new Date(job.createdAt).toISOString(),
    epoch: job.placement.epoch,
    nodes: job.placement.generations[0]?.nodes ?? [],
    /** Placement generations: more than one while the job grows onto, or moves off, nodes. */
    generations: job.placement.generations.length,
    /** Keys being copied (a drain, a restoration), resumed by a restarted controller; null when none. */
    pending: job.pending ?? null,
    /** Nodes whose data of the job died with a process (its keys there fail with UNAVAILABLE). */
    lostNodes: job.lostNodes ?? [],
    cost: { usd: costOf(job.byteSeconds, controller.prices), byteSeconds: job.byteSeconds ?? {} },
  };
}

export function snapshot(controller: Controller) {
  const nodes = nodeRows(controller);
  return {
    t: Date.now(),
    nodes,
    jobs: [...controller.registry.jobs.values()].map((job) => jobRow(job, controller)),
    totals: totalsOf(nodes),
  };
}

export type Totals = ReturnType<typeof totalsOf>;

/** Cluster-wide p50: the nodes' p50s weighted by their ops; p99: the worst node's (an upper bound). */
function totalsOf(nodes: ReturnType<typeof nodeRows>) {
  let opsPerSec = 0;
  let bytesPerSec = 0;
  let weighted = 0;
  let p99: number | null = null;
  for (const node of nodes) {
    if (node.stats === null) continue;
    opsPerSec += node.stats.opsPerSec;
    bytesPerSec += node.stats.bytesInPerSec + node.stats.bytesOutPerSec;
    if (node.stats.latencyP50Us !== null) weighted += node.stats.latencyP50Us * node.stats.opsPerSec;
    if (node.stats.latencyP99Us !== null) p99 = Math.max(p99 ?? 0, node.stats.latencyP99Us);
  }
  return { opsPerSec, bytesPerSec, latencyP50Us: opsPerSec > 0 && weighted > 0 ? weighted / opsPerSec : null, latencyP99Us: p99 };
}

/** How far back the charts go: a page opened now still shows the last five minutes. */
const HISTORY_MS = 5 * 60_000;

export class LiveFeed {
  private readonly pages = new Set<ServerResponse>();
  private timer: NodeJS.Timeout | null = null;
  private readonly unsubscribe: () => void;
  /** The cluster's totals every interval, kept whether or not a page is open, for a page opened later. */
  private readonly history: { t: number; totals: Totals }[] = [];
  private readonly sampler: NodeJS.Timeout;

  constructor(
    private readonly controller: Controller,
    private readonly intervalMs = 1_000,
  ) {
    this.unsubscribe = controller.events.subscribe((event) => this.broadcast('cluster-event', event));
    this.sampler = setInterval(() => this.sample(), intervalMs);
    this.sampler.unref();
  }

  private sample(): void {
    const t = Date.now();
    this.history.push({ t, totals: totalsOf(nodeRows(this.controller)) });
    while (this.history.length > 0 && this.history[0]!.t < t - HISTORY_MS) this.history.shift();
  }

  /** Takes over a response: headers, the recent events, a first snapshot, then updates until it closes. */
  attach(response: ServerResponse): void {
    response.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no' });
    this.pages.add(response);
    response.on('close', () => {
      this.pages.delete(response);
      if (this.pages.size === 0) this.stopTimer();
    });
    write(response, 'events', this.controller.events.since(0).slice(-200) satisfies ClusterEvent[]);
    write(response, 'history', this.history);
    write(response, 'snapshot', snapshot(this.controller));
    this.timer ??= setInterval(() => this.broadcast('snapshot', snapshot(this.controller)), this.intervalMs);
  }

  close(): void {
    clearInterval(this.sampler);
    this.unsubscribe();
    this.stopTimer();
    for (const page of this.pages) page.end();
    this.pages.clear();
  }

  private broadcast(event: string, data: unknown): void {
    if (this.pages.size === 0) return;
    const frame = format(event, data);
    for (const page of this.pages) page.write(frame);
  }

  private stopTimer(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }
}

function format(event: string, data: unknown): string {
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}

function write(response: ServerResponse, event: string, data: unknown): void {
  response.write(format(event, data));
}

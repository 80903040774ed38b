/**
 * Live updates for console pages, as server-sent events: one snapshot of nodes, jobs and totals per second,
 * built once and written to every open page (not one poll per tab), and each cluster event as it happens.
 * The timer runs only while a page is connected.
 *
 * A page that does not keep up costs the controller a bounded amount: while its socket has not taken the last
 * write (write() returned false, no 'drain' yet) it is sent no snapshot (the next one says it all); it is
 * dropped (its socket destroyed, so what it has not read is freed) once more than `maxBacklogBytes` of cluster
 * events have been queued for it meanwhile, or when it has not drained for `stallMs`. At most `maxStreams`
 * pages at once.
 */
import type { ServerResponse } from 'node:http';
import type { ConsoleBackend, NodeStatsView, NodeView } from './console-backend.ts';
import type { ClusterEvent } from './events.ts';

/** What a page gets every interval: the nodes, the jobs and the cluster's totals. */
export function snapshot(backend: ConsoleBackend) {
  const nodes = backend.nodeViews();
  return {
    t: Date.now(),
    nodes,
    jobs: backend.jobViews(),
    totals: totalsOf(statsOf(nodes)),
  };
}

function* statsOf(nodes: readonly NodeView[]): Iterable<NodeFigures | null> {
  for (const node of nodes) yield node.stats;
}

export type Totals = ReturnType<typeof totalsOf>;

/** What the totals read of a node's last report. */
type NodeFigures = Pick<NodeStatsView, 'opsPerSec' | 'bytesInPerSec' | 'bytesOutPerSec' | 'latencyP50Us' | 'latencyP99Us'>;

/** Cluster-wide p50: the nodes' p50s weighted by their ops; p99: the worst node's (an upper bound). */
function totalsOf(nodes: Iterable<NodeFigures | null | undefined>) {
  let opsPerSec = 0;
  let bytesPerSec = 0;
  let weighted = 0;
  let p99: number | null = null;
  for (const stats of nodes) {
    if (stats === null || stats === undefined) continue;
    opsPerSec += stats.opsPerSec;
    bytesPerSec += stats.bytesInPerSec + stats.bytesOutPerSec;
    if (stats.latencyP50Us !== null) weighted += stats.latencyP50Us * stats.opsPerSec;
    if (stats.latencyP99Us !== null) p99 = Math.max(p99 ?? 0, stats.latencyP99Us);
  }
  return { opsPerSec, bytesPerSec, latencyP50Us: opsPerSec > 0 && weighted > 0 ? weighted / opsPerSec : null, latencyP99Us: p99 };
}

/** How far back the charts go: a page opened now still shows the last five minutes. */
const HISTORY_MS = 5 * 60_000;

export interface StreamLimits {
  /** Pages streamed to at once; one more is refused (503) until one closes. */
  maxStreams: number;
  /**
   * Bytes a page may be sent while its socket has not drained (it refused a write, its buffers in the kernel and
   * in the process full): past this, it is dropped.
   */
  maxBacklogBytes: number;
  /** A page whose socket has not drained for this long is dropped. */
  stallMs: number;
}

export const DEFAULT_STREAM_LIMITS: StreamLimits = { maxStreams: 100, maxBacklogBytes: 1024 * 1024, stallMs: 5_000 };

/** Why a page was dropped, and what it had left unsent. */
export interface DroppedStream {
  reason: 'backlog' | 'stalled';
  /** Bytes written for it that its socket had not taken. */
  backlogBytes: number;
  /** How long its socket had not drained (ms). */
  stalledMs: number;
  remote: string | undefined;
}

interface Page {
  response: ServerResponse;
  /** When a write was last refused (write() returned false) and not drained since; null while it keeps up. */
  blockedSince: number | null;
  /** Bytes written to it since then. */
  queuedBytes: number;
}

export class LiveFeed {
  private readonly pages = new Map<ServerResponse, Page>();
  private timer: NodeJS.Timeout | null = null;
  private readonly unsubscribe: () => void;
  /** The cluster's totals every interval, kept whether or not a page is open, for a page opened later. */
  private readonly history: { t: number; totals: Totals }[] = [];
  private readonly sampler: NodeJS.Timeout;

  private readonly intervalMs: number;
  private readonly limits: StreamLimits;
  private readonly onDrop: ((dropped: DroppedStream) => void) | undefined;
  /** Pages dropped for falling behind, since the start. */
  dropped = 0;

  constructor(
    private readonly backend: ConsoleBackend,
    options: { intervalMs?: number; limits?: Partial<StreamLimits>; onDrop?: (dropped: DroppedStream) => void } = {},
  ) {
    this.intervalMs = options.intervalMs ?? 1_000;
    this.limits = { ...DEFAULT_STREAM_LIMITS, ...options.limits };
    this.onDrop = options.onDrop;
    this.unsubscribe = backend.onClusterEvent((event) => this.broadcast('cluster-event', event));
    this.sampler = setInterval(() => this.sample(), this.intervalMs);
    this.sampler.unref();
  }

  /** Pages streamed to now. */
  get size(): number {
    return this.pages.size;
  }

  /** Whether one more page may attach (under `maxStreams`). */
  get hasRoom(): boolean {
    return this.pages.size < this.limits.maxStreams;
  }

  get maxStreams(): number {
    return this.limits.maxStreams;
  }

  private sample(): void {
    const t = Date.now();
    this.history.push({ t, totals: totalsOf(this.backend.nodeFigures()) });
    while (this.history.length > 0 && this.history[0]!.t < t - HISTORY_MS) this.history.shift();
  }

  /** Takes over a response: headers, the recent events, a first snapshot, then updates until it closes. */
  attach(response: ServerResponse): void {
    response.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    const page: Page = { response, blockedSince: null, queuedBytes: 0 };
    this.pages.set(response, page);
    response.on('close', () => {
      this.pages.delete(response);
      if (this.pages.size === 0) this.stopTimer();
    });
    this.write(page, format('events', this.backend.clusterEvents(0).slice(-200) satisfies ClusterEvent[]));
    this.write(page, format('history', this.history));
    this.write(page, format('snapshot', snapshot(this.backend)));
    this.timer ??= setInterval(() => this.tick(), this.intervalMs);
  }

  close(): void {
    clearInterval(this.sampler);
    this.unsubscribe();
    this.stopTimer();
    // A page that is not reading would never let end() finish: its socket goes at once.
    for (const page of this.pages.values()) {
      if (page.blockedSince === null) page.response.end();
      else page.response.destroy();
    }
    this.pages.clear();
  }

  /** Every interval: drop the pages stalled too long, then a snapshot to those keeping up. */
  private tick(): void {
    const now = Date.now();
    for (const page of this.pages.values()) {
      if (page.blockedSince !== null && now - page.blockedSince > this.limits.stallMs) this.drop(page, 'stalled', now);
    }
    this.broadcast('snapshot', snapshot(this.backend), true);
  }

  /**
   * One frame to every page. `skippable` frames (snapshots: the next one supersedes it) are not queued behind
   * a page whose socket has not drained; the others (cluster events) are, up to `maxBacklogBytes`.
   */
  private broadcast(event: string, data: unknown, skippable = false): void {
    if (this.pages.size === 0) return;
    const frame = format(event, data);
    for (const page of [...this.pages.values()]) {
      if (skippable && page.blockedSince !== null) continue;
      this.write(page, frame);
    }
  }

  /**
   * Writes a frame to a page, or drops the page when more than `maxBacklogBytes` have been written to it since
   * its socket last refused a write (and did not drain). The write that filled the socket does not count, so
   * one large snapshot never gets a page that keeps up dropped.
   */
  private write(page: Page, frame: string): void {
    if (page.response.destroyed) return;
    if (page.blockedSince !== null) {
      page.queuedBytes += Buffer.byteLength(frame);
      if (page.queuedBytes > this.limits.maxBacklogBytes) {
        this.drop(page, 'backlog', Date.now());
        return;
      }
    }
    if (!page.response.write(frame) && page.blockedSince === null) {
      page.blockedSince = Date.now();
      page.queuedBytes = 0;
      page.response.once('drain', () => {
        page.blockedSince = null;
        page.queuedBytes = 0;
      });
    }
  }

  private drop(page: Page, reason: DroppedStream['reason'], now: number): void {
    if (!this.pages.delete(page.response)) return;
    this.dropped++;
    const dropped: DroppedStream = {
      reason,
      backlogBytes: page.response.writableLength,
      stalledMs: page.blockedSince === null ? 0 : now - page.blockedSince,
      remote: page.response.socket?.remoteAddress,
    };
    // destroy, not end: end() would wait behind everything the page has not read.
    page.response.destroy();
    if (this.pages.size === 0) this.stopTimer();
    this.onDrop?.(dropped);
  }

  private stopTimer(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }
}

function format(event: string, data: unknown): string {
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}

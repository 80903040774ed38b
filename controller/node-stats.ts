import type { NodeReport } from '../proto/index.ts';

/** What the controller derives from a node's reports: rates over the last interval, and usage by job. */
export interface NodeStats {
  at: number;
  cpu: number;
  bytesInPerSec: number;
  bytesOutPerSec: number;
  opsPerSec: number;
  used: number;
  capacity: number;
  jobs: Map<string, number>;
  /** Writes of each job the node refused FULL for want of room, since it started (only jobs it refused). */
  fullRefusals: Map<string, number>;
  /** Service time over the last interval; null when the node served nothing (or does not say). */
  latencyP50Us: number | null;
  latencyP99Us: number | null;
}

/**
 * Latest report per node, turned from counters into rates. Kept in memory only: after a controller restart
 * the next report (within a second) fills it again.
 */
export class NodeStatsTable {
  private readonly latest = new Map<string, { report: NodeReport; at: number; stats: NodeStats }>();
  /** `nextReport` callers, by node. */
  private readonly waiters = new Map<string, (() => void)[]>();

  record(report: NodeReport, now = Date.now()): NodeStats {
    const previous = this.latest.get(report.nodeId);
    const seconds = previous === undefined ? 0 : (now - previous.at) / 1000;
    const rate = (current: number, before: number | undefined) =>
      seconds > 0 && before !== undefined && current >= before ? (current - before) / seconds : 0;
    const stats: NodeStats = {
      at: now,
      cpu: report.cpu,
      bytesInPerSec: rate(report.bytesIn, previous?.report.bytesIn),
      bytesOutPerSec: rate(report.bytesOut, previous?.report.bytesOut),
      opsPerSec: rate(report.ops, previous?.report.ops),
      used: report.used,
      capacity: report.capacity,
      jobs: new Map(report.jobs.map((j) => [j.jobId, j.bytes])),
      fullRefusals: new Map(report.jobs.filter((j) => (j.fullRefusals ?? 0) > 0).map((j) => [j.jobId, j.fullRefusals!])),
      latencyP50Us: report.latencyP50Us ? report.latencyP50Us : null,
      latencyP99Us: report.latencyP99Us ? report.latencyP99Us : null,
    };
    this.latest.set(report.nodeId, { report, at: now, stats });
    const waiting = this.waiters.get(report.nodeId);
    if (waiting !== undefined) {
      this.waiters.delete(report.nodeId);
      for (const wake of waiting) wake();
    }
    return stats;
  }

  /** Resolves at the node's next report, or after `timeoutMs`, whichever is first. */
  nextReport(nodeId: string, timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      const wake = () => {
        clearTimeout(timer);
        resolve();
      };
      const waiting = this.waiters.get(nodeId);
      if (waiting === undefined) this.waiters.set(nodeId, [wake]);
      else waiting.push(wake);
    });
  }

  /** The FULL refusals of a job the node's latest report gave (0: none, or no report). */
  fullRefusals(nodeId: string, jobId: string): number {
    return this.latest.get(nodeId)?.stats.fullRefusals.get(jobId) ?? 0;
  }

  /** When the node's last report arrived (ms since the epoch), if it ever reported. */
  lastReportAt(nodeId: string): number | undefined {
    return this.latest.get(nodeId)?.at;
  }

  forget(nodeId: string): void {
    this.latest.delete(nodeId);
  }

  get(nodeId: string): NodeStats | undefined {
    return this.latest.get(nodeId)?.stats;
  }

  /** Bytes a job holds, summed over the nodes' latest reports. */
  jobUsage(jobId: string): number {
    let total = 0;
    for (const { stats } of this.latest.values()) total += stats.jobs.get(jobId) ?? 0;
    return total;
  }
}

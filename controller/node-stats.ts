import type { JobUsage, NodeReport } from '../proto/index.ts';

/**
 * One job's requests on one node over the node's last report interval (JobUsage's counters turned into rates),
 * or over all its nodes (`NodeStatsTable.jobRates`).
 */
export interface JobRates {
  opsPerSec: number;
  bytesInPerSec: number;
  bytesOutPerSec: number;
  /** Mean service time of its requests over the interval (µs): Δservice time / Δops; null when it had none. */
  latencyMeanUs: number | null;
}

export const IDLE_JOB: Readonly<JobRates> = { opsPerSec: 0, bytesInPerSec: 0, bytesOutPerSec: 0, latencyMeanUs: null };

/**
 * A node's report older than this is left out of a job's rates: a node that stopped reporting (frozen, cut off,
 * lost) serves nothing that anyone sees, and its last rates would otherwise stand for it until it is removed.
 */
export const RATES_FRESH_MS = 5_000;

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
  /**
   * Each job's own requests on the node over the interval (from JobUsage's counters); a job the node reports
   * without them (an older node), or whose counters went backwards (the node restarted), is idle.
   */
  jobRates: Map<string, JobRates>;
  /** Service time over the last interval; null when the node served nothing (or does not say). */
  latencyP50Us: number | null;
  latencyP99Us: number | null;
}

/**
 * Latest report per node, turned from counters into rates. Kept in memory only: after a controller restart
 * the next report (within a second) fills it again.
 */
export class NodeStatsTable {
  private readonly latest = new Map<string, { report: NodeReport; at: number; stats: NodeStats; usage: Map<string, JobUsage> }>();
  /**
   * Bytes each job holds by node, from the nodes' latest reports: `jobUsage` sums a job's own nodes instead of
   * looking it up in every node's report. Every report rightsizes its jobs, and at 1,000 nodes and 2,000 jobs a
   * walk of every node per job per report took 43 % of the controller's CPU (bench scale's profile).
   */
  private readonly byJob = new Map<string, Map<string, number>>();
  /** `nextReport` callers, by node. */
  private readonly waiters = new Map<string, (() => void)[]>();

  record(report: NodeReport, now = Date.now()): NodeStats {
    const previous = this.latest.get(report.nodeId);
    const seconds = previous === undefined ? 0 : (now - previous.at) / 1000;
    const rate = (current: number, before: number | undefined) =>
      seconds > 0 && before !== undefined && current >= before ? (current - before) / seconds : 0;
    const usage = new Map(report.jobs.map((j) => [j.jobId, j]));
    // Another process under the node's id (or its counters went back): no job's counts compare with the last ones.
    const before =
      previous === undefined || (report.bootId ?? '') !== (previous.report.bootId ?? '') || report.ops < previous.report.ops
        ? undefined
        : previous.usage;
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
      jobRates: new Map(report.jobs.map((j) => [j.jobId, before === undefined ? IDLE_JOB : jobRatesOver(j, before.get(j.jobId), seconds)])),
      latencyP50Us: report.latencyP50Us ? report.latencyP50Us : null,
      latencyP99Us: report.latencyP99Us ? report.latencyP99Us : null,
    };
    if (previous !== undefined) this.unindex(report.nodeId, previous.stats.jobs);
    for (const [jobId, bytes] of stats.jobs) {
      let nodes = this.byJob.get(jobId);
      if (nodes === undefined) this.byJob.set(jobId, (nodes = new Map()));
      nodes.set(report.nodeId, bytes);
    }
    this.latest.set(report.nodeId, { report, at: now, stats, usage });
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
    const previous = this.latest.get(nodeId);
    if (previous !== undefined) this.unindex(nodeId, previous.stats.jobs);
    this.latest.delete(nodeId);
  }

  private unindex(nodeId: string, jobs: ReadonlyMap<string, number>): void {
    for (const jobId of jobs.keys()) {
      const nodes = this.byJob.get(jobId);
      if (nodes === undefined) continue;
      nodes.delete(nodeId);
      if (nodes.size === 0) this.byJob.delete(jobId);
    }
  }

  get(nodeId: string): NodeStats | undefined {
    return this.latest.get(nodeId)?.stats;
  }

  /**
   * A job's requests over its nodes' last intervals: rates summed, the mean service time weighted by each node's
   * ops. Nodes whose last report is older than RATES_FRESH_MS are left out.
   */
  jobRates(jobId: string, now = Date.now()): JobRates {
    let opsPerSec = 0;
    let bytesInPerSec = 0;
    let bytesOutPerSec = 0;
    let weighted = 0;
    let timedOps = 0;
    for (const { at, stats } of this.latest.values()) {
      const rates = stats.jobRates.get(jobId);
      if (rates === undefined || now - at > RATES_FRESH_MS) continue;
      opsPerSec += rates.opsPerSec;
      bytesInPerSec += rates.bytesInPerSec;
      bytesOutPerSec += rates.bytesOutPerSec;
      if (rates.latencyMeanUs !== null) {
        weighted += rates.latencyMeanUs * rates.opsPerSec;
        timedOps += rates.opsPerSec;
      }
    }
    return { opsPerSec, bytesInPerSec, bytesOutPerSec, latencyMeanUs: timedOps > 0 ? weighted / timedOps : null };
  }

  /** Bytes a job holds, summed over the nodes' latest reports. */
  jobUsage(jobId: string): number {
    let total = 0;
    const nodes = this.byJob.get(jobId);
    if (nodes !== undefined) for (const bytes of nodes.values()) total += bytes;
    return total;
  }
}

/**
 * A job's rates on a node between two of its reports `seconds` apart. Its counters are the node's since it started:
 * absent from the earlier report, the job arrived on the node since (counted from 0); lower than before, the node
 * restarted, and the interval says nothing (idle, never a negative rate). No counters at all (a node from before
 * they were reported): idle.
 */
function jobRatesOver(now: JobUsage, before: JobUsage | undefined, seconds: number): JobRates {
  if (!(seconds > 0) || now.ops === undefined) return IDLE_JOB;
  const ops = now.ops - (before?.ops ?? 0);
  const bytesIn = (now.bytesIn ?? 0) - (before?.bytesIn ?? 0);
  const bytesOut = (now.bytesOut ?? 0) - (before?.bytesOut ?? 0);
  const serviceUs = (now.serviceUs ?? 0) - (before?.serviceUs ?? 0);
  if (ops < 0 || bytesIn < 0 || bytesOut < 0 || serviceUs < 0) return IDLE_JOB;
  return {
    opsPerSec: ops / seconds,
    bytesInPerSec: bytesIn / seconds,
    bytesOutPerSec: bytesOut / seconds,
    // Under load the node times a sample of the ops, each standing for the job's untimed ops before it: an
    // interval whose ops all went untimed has no figure (null), not 0.
    latencyMeanUs: ops > 0 && serviceUs > 0 ? serviceUs / ops : null,
  };
}

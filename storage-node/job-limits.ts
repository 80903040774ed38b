/**
 * Per-job limits a node enforces: connections per job (its own flag), and a stop on growth for a job the
 * controller found over its byte quota (LIMIT_JOB, from the nodes' reports: enforced within a report, so a job
 * may pass its quota by what it writes in about a second).
 */
export class JobLimits {
  /** Jobs over their byte quota: their PUTs and INCRs are refused with FULL; reads and deletes go on. */
  private readonly overQuota = new Set<string>();
  private readonly connections = new Map<string, number>();

  constructor(readonly maxConnectionsPerJob: number) {}

  /** A connection for `jobId` wants to open: false when the job has all the connections it may have here. */
  admit(jobId: string): boolean {
    const open = this.connections.get(jobId) ?? 0;
    if (open >= this.maxConnectionsPerJob) return false;
    this.connections.set(jobId, open + 1);
    return true;
  }

  /** One of the job's admitted connections closed. */
  release(jobId: string): void {
    const open = (this.connections.get(jobId) ?? 0) - 1;
    if (open > 0) this.connections.set(jobId, open);
    else this.connections.delete(jobId);
  }

  connectionsOf(jobId: string): number {
    return this.connections.get(jobId) ?? 0;
  }

  setOverQuota(jobId: string, over: boolean): void {
    if (over) this.overQuota.add(jobId);
    else this.overQuota.delete(jobId);
  }

  isOverQuota(jobId: string): boolean {
    return this.overQuota.size > 0 && this.overQuota.has(jobId);
  }
}

/** What a write of a job over its quota is told (FULL), on the frame port and the RESP port alike. */
export function overQuotaMessage(jobId: string): string {
  return `job ${jobId} is over a byte quota (its own, or its tenant's for all its jobs): delete data or ask for more`;
}

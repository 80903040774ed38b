/**
 * Byte quotas (`--job-quota`, a tenant's `quotaBytes`), held from what the nodes report a job holds: a job that
 * reached its quota is told to every node serving it (LIMIT_JOB 1: its PUTs and INCRs refused with FULL), and
 * the stop is lifted (LIMIT_JOB 0) once deletes bring it back under.
 *
 * What a node acknowledged is recorded per node (`JobRecord.limitedOn`), and only once it answered: a node that
 * failed to take a limit or a lift is told again on the next run (every node report starts one), so a lift that
 * failed never leaves a job refused with FULL for good. Runs go one at a time, so the last answer recorded for a
 * node is the last one it gave.
 */
import type { ControllerContext } from './context.ts';
import { membersOf } from './members.ts';
import type { JobRecord } from './registry.ts';
import { DEFAULT_TENANT } from './tenants.ts';

export class QuotaEnforcer {
  private running: Promise<void> | null = null;
  private again = false;

  constructor(private readonly ctx: ControllerContext) {}

  /**
   * Each job against the byte quotas, from the nodes' latest reports, and each node told what it has not
   * acknowledged yet. A call while a run is under way makes that run go once more, and resolves after it.
   */
  enforce(): Promise<void> {
    if (this.running !== null) {
      this.again = true;
      return this.running;
    }
    const run = async () => {
      try {
        do {
          this.again = false;
          await this.enforceOnce();
        } while (this.again);
      } catch (error) {
        // Callers do not wait (a report's answer does not): the next report runs it again.
        this.ctx.logger.error({ err: error }, 'enforcing quotas failed');
      } finally {
        this.running = null;
      }
    };
    this.running = run();
    return this.running;
  }

  private async enforceOnce(): Promise<void> {
    const { registry, stats, tenants, logger, events } = this.ctx;
    const jobQuotaBytes = this.ctx.options.jobQuotaBytes;
    // Every node report calls this: with no quota anywhere and no job held back, there is nothing to sum.
    if (jobQuotaBytes === undefined && !tenants.hasQuotas() && !anyLimited(registry.jobs.values())) return;
    const jobQuota = jobQuotaBytes ?? Infinity;
    // A tenant's quota is on what its jobs reserve; reservations follow use (rightsizing), so what its jobs hold
    // is held to it here, all its jobs stopped together once they hold it between them.
    const tenantUsage = new Map<string, number>();
    const usages = new Map<string, number>();
    for (const job of registry.jobs.values()) {
      const usage = stats.jobUsage(job.id);
      usages.set(job.id, usage);
      const tenant = job.tenant ?? DEFAULT_TENANT;
      tenantUsage.set(tenant, (tenantUsage.get(tenant) ?? 0) + usage);
    }
    // Each job's nodes told at once: a node that does not answer holds up its own jobs only, for the admin timeout.
    const telling: Promise<void>[] = [];
    for (const job of registry.jobs.values()) {
      const usage = usages.get(job.id) ?? 0;
      const tenant = job.tenant ?? DEFAULT_TENANT;
      const tenantQuota = tenants.get(tenant)?.quotaBytes ?? Infinity;
      const byTenant = usage < jobQuota;
      const quota = byTenant ? tenantQuota : jobQuota;
      const over = !byTenant || (tenantUsage.get(tenant) ?? 0) >= tenantQuota;
      if (!over && job.overQuota === undefined && job.limitedOn === undefined) continue;
      if (over && job.overQuota === undefined) {
        logger.warn({ job: job.id, usage, quota }, 'job reached its byte quota');
        const whose = byTenant ? `its tenant ${tenant}'s jobs hold its quota of ${quota}` : `its quota is ${quota}`;
        events.add('quota-reached', `${job.id} holds ${usage} bytes, ${whose}: PUTs refused until it deletes`, {
          details: { usage, quota, ...(byTenant ? { tenant } : {}) },
        });
      } else if (!over && job.overQuota !== undefined) {
        logger.info({ job: job.id, usage, quota }, 'job back under its byte quota');
      }
      job.overQuota = over ? { since: job.overQuota?.since ?? Date.now(), bytes: quota, ...(byTenant ? { tenant } : {}) } : undefined;
      telling.push(this.tell(job, over));
    }
    await Promise.all(telling);
  }

  /**
   * LIMIT_JOB to each node whose acknowledged state is not `over`: over, every member not limited yet (new
   * members included); under, every node limited (one the job left too: a node keeps a limit past DROP_JOB).
   * Nodes lost or forgotten are not asked; a lost one is asked once it is back.
   */
  private async tell(job: JobRecord, over: boolean): Promise<void> {
    const { registry, admin, failures } = this.ctx;
    const limited = new Set((job.limitedOn ?? []).filter((id) => registry.nodes.has(id)));
    const due = over ? [...membersOf(job)].filter((id) => !limited.has(id)) : [...limited];
    const asked = due.flatMap((id) => {
      const node = registry.nodes.get(id);
      return node === undefined || node.lost === true ? [] : [node];
    });
    const answers = await Promise.all(
      asked.map((node) =>
        admin.limitJob(node.address, job.id, over).then(
          () => true,
          (error: unknown) => {
            failures.record(
              'limit_job',
              error,
              { node: node.id, job: job.id },
              `${over ? 'the limit' : 'the lift'} is sent again on the next report`,
            );
            return false;
          },
        ),
      ),
    );
    asked.forEach((node, i) => {
      if (!answers[i]) return;
      if (over) limited.add(node.id);
      else limited.delete(node.id);
    });
    const before = job.limitedOn ?? [];
    const after = [...limited].sort();
    job.limitedOn = after.length > 0 ? after : undefined;
    if (after.length !== before.length || after.some((id, i) => id !== before[i])) await this.ctx.persistJob(job);
  }
}

/** Whether any job is held back or over its quota (a loop, not a copy of every job: it runs on every report). */
function anyLimited(jobs: Iterable<JobRecord>): boolean {
  for (const job of jobs) if (job.overQuota !== undefined || job.limitedOn !== undefined) return true;
  return false;
}

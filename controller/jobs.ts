/**
 * Jobs: registration (admission against hints and tenants, allocation, publishing), lease renewal and
 * collection, deregistration, reservations following use, cost, and the tenants whose keys register jobs.
 */
import {
  encodeTicket,
  isTier,
  type JobHints,
  type RegisterJobReply,
  SatchelError,
  signDriverToken,
  signToken,
  TIERS,
  type WirePlacement,
} from '../proto/index.ts';
import { allocateJob, rightsizeReservation } from './allocation.ts';
import type { ControllerContext } from './context.ts';
import { accrueCost } from './cost.ts';
import { targetNodes } from './load.ts';
import { nodesOf } from './members.ts';
import type { JobRecord } from './registry.ts';
import { spareKey } from './spare-jobs.ts';
import { DEFAULT_TENANT, type TenantRecord, TenantTable } from './tenants.ts';

/** The largest `functions` hint: more than any node would take connections from (1,024 per job per node). */
const MAX_FUNCTIONS_HINT = 1_000_000;

export class JobBook {
  constructor(private readonly ctx: ControllerContext) {}

  /** Registers a job for `tenant` (the caller has checked its key): admission, allocation, then publishing. */
  async registerJob(name: string, hints: JobHints, tenant: string = DEFAULT_TENANT): Promise<RegisterJobReply> {
    const { ctx } = this;
    const began = performance.now();
    if (typeof name !== 'string' || name.length === 0 || name.length > 200) {
      throw new SatchelError('BAD_REQUEST', 'job name must be 1 to 200 characters');
    }
    checkHints(hints);
    this.admitHints(hints);
    if (ctx.metadata.size === 0) throw new SatchelError('UNAVAILABLE', 'no metadata server has registered yet');
    for (let attempt = 1; ; attempt++) {
      const marks = ctx.metadata.downMarks;
      try {
        return await this.placeJob(name, hints, tenant, began);
      } catch (error) {
        // A metadata server picked for the job failed unanswered: marked down (metadata-links.ts), it is not picked
        // again, so the registration (undone whole) is made once more with the others.
        if (attempt >= 2 || ctx.metadata.downMarks === marks) throw error;
        ctx.logger.warn({ name, err: error }, 'registration failed at a metadata server marked down since: trying the others');
      }
    }
  }

  /**
   * Allocation and publishing of a job whose name and hints were checked; undone whole when any part fails. A
   * spare placement made ahead for the same allocation (spare-jobs.ts) is taken when there is one: then only the
   * record is written before the reply.
   */
  private async placeJob(name: string, hints: JobHints, tenant: string, began: number): Promise<RegisterJobReply> {
    const { ctx } = this;
    const allocation = allocateJob(hints, targetNodes(ctx));
    // The decision's own time (admission and allocation, before anything is sent), logged with the registration.
    const decisionUs = Math.round((performance.now() - began) * 1000);
    this.admitTenant(tenant, allocation.reservation, true);
    const replicas = hints.replicas ?? 1;
    // Refused rather than run with fewer copies than asked for: a replicated job must never silently have one.
    if (replicas > 1 && allocation.nodes.length < replicas) {
      throw new SatchelError(
        'UNAVAILABLE',
        `${replicas} replicas need ${replicas} storage nodes; the cluster has ${allocation.nodes.length} to place on`,
      );
    }
    const key = spareKey(allocation, replicas);
    const spare = allocation.nodes.length > 0 ? ctx.spares.take(key) : undefined;
    const id = spare?.id ?? ctx.newJobId();
    const placement: WirePlacement = spare?.placement ?? {
      jobId: id,
      epoch: 1,
      generations: [{ nodes: allocation.nodes }],
      blockSize: allocation.blockSize,
      maxValueBytes: allocation.maxValueBytes,
      replicas,
    };
    const job: JobRecord = {
      id,
      name,
      tenant,
      hints,
      tier: allocation.tier,
      reason: allocation.reason,
      reservation: allocation.reservation,
      createdAt: Date.now(),
      leaseExpiresAt: Date.now() + ctx.leaseMs,
      placement: spare === undefined ? { ...placement, epoch: 0, generations: [] } : placement,
      metadata: spare?.metadata ?? ctx.metadata.assign(id),
    };
    // Known as registering before any node hears of it: a node reporting it meanwhile is not told to drop it.
    ctx.registering.set(id, job);
    let tickets: { token: string; ticket: string };
    let driverToken: string;
    try {
      // Record, nodes and metadata servers at once: nothing knows the job before this reply (placement-publisher.ts).
      // A spare's nodes and metadata servers have it already: its record alone.
      const placed = spare === undefined ? ctx.publisher.placeNew(job, placement) : ctx.store?.putJob(job);
      try {
        // Signed while they are out (the placement is the job's from the call on); thrown away if registering fails.
        tickets = this.ticketFor(job);
        driverToken = signDriverToken(ctx.secret, id);
      } finally {
        await placed; // whatever happens, nothing is undone before all three have settled
      }
      ctx.registry.jobs.set(id, job);
    } catch (error) {
      // Whatever part of it was made is undone: nodes, metadata servers, the record.
      await Promise.allSettled([ctx.publisher.drop(id, nodesOf(placement)), ctx.metadata.drop(id), ctx.store?.deleteJob(id)]);
      throw error;
    } finally {
      ctx.registering.delete(id);
    }
    const handlerUs = Math.round((performance.now() - began) * 1000);
    // After the reply is out: the log line (a synchronous write to the log file), and the spare for the next
    // registration like this one (its announcement and placement would otherwise delay this reply).
    setImmediate(() => {
      ctx.logger.info(
        {
          job: id,
          name,
          tier: job.tier,
          reason: job.reason,
          reservation: job.reservation,
          epoch: placement.epoch,
          generations: placement.generations.map((g) => g.nodes.map((n) => `${n.id}:${+n.weight.toFixed(3)}`)),
          spare: spare !== undefined,
          decisionUs,
          handlerUs,
        },
        'job registered',
      );
      if (allocation.nodes.length > 0) ctx.spares.replenish(key, allocation, replicas, spare !== undefined);
    });
    ctx.events.add('job-registered', `${name} for tenant ${tenant}: ${job.reason}`, {
      tier: job.tier,
      details: {
        job: id,
        name,
        tenant,
        reservation: job.reservation,
        capacity: hints.capacity ?? 0,
        replicas,
        nodes: allocation.nodes.length,
        // 'spare': placed ahead (spare-jobs.ts), only the record written; 'placed': placed by this registration.
        placement: spare === undefined ? 'placed' : 'spare',
      },
    });
    return { jobId: id, token: tickets.token, ticket: tickets.ticket, leaseMs: ctx.leaseMs, placement, driverToken };
  }

  /** The driver renewed: a fresh lease, and a fresh ticket (its token good for another lifetime). */
  renewLease(jobId: string): { leaseMs: number; ticket: string } {
    const job = this.ctx.registry.jobs.get(jobId);
    if (job === undefined) throw new SatchelError('NO_SUCH_JOB', `no job ${jobId}`);
    job.leaseExpiresAt = Date.now() + this.ctx.leaseMs;
    return { leaseMs: this.ctx.leaseMs, ticket: this.ticketFor(job).ticket };
  }

  /**
   * Deletes the job's data on every node it was placed on, its placement everywhere, and its record. `cause`
   * says who ended it, for the event: its driver (or an admin), its lease lapsing, its tenant removed.
   */
  async deregisterJob(jobId: string, cause: 'driver' | 'lease' | 'tenant' = 'driver'): Promise<void> {
    const { ctx } = this;
    const job = ctx.registry.jobs.get(jobId);
    if (job === undefined) throw new SatchelError('NO_SUCH_JOB', `no job ${jobId}`);
    ctx.registry.jobs.delete(jobId);
    await ctx.store?.deleteJob(jobId);
    // Nodes refuse the job's tokens until the last one handed out has expired, then forget it; a node lost or
    // unreachable meanwhile is told when it reports again (each failure logged and counted where it happened).
    const [, metadataFailed] = await Promise.all([ctx.publisher.drop(jobId, nodesOf(job.placement)), ctx.metadata.drop(jobId)]);
    if (metadataFailed > 0) ctx.logger.warn({ job: jobId, metadataFailed }, 'job deregistered; some metadata servers unreachable');
    else ctx.logger.info({ job: jobId }, 'job deregistered');
    const why = {
      driver: 'deregistered by its driver or an admin',
      lease: 'its lease lapsed: collected, every byte deleted',
      tenant: `its tenant ${job.tenant} was removed`,
    }[cause];
    ctx.events.add(cause === 'lease' ? 'job-collected' : 'job-deregistered', `${job.name}: ${why}`, {
      tier: job.tier,
      details: { job: jobId, name: job.name, tenant: job.tenant ?? '', cause },
    });
  }

  /** Jobs whose lease lapsed are collected like deregistered ones: every byte deleted. */
  async collectExpired(): Promise<void> {
    const now = Date.now();
    for (const job of [...this.ctx.registry.jobs.values()]) {
      if (job.leaseExpiresAt > now) continue;
      this.ctx.logger.info({ job: job.id, name: job.name }, 'lease expired: collecting job');
      await this.deregisterJob(job.id, 'lease').catch((error: unknown) =>
        this.ctx.logger.error({ err: error, job: job.id }, 'collecting job failed'),
      );
    }
  }

  /** `seconds` more of every job's reservation, by tier (cost.ts). */
  accrueCosts(seconds: number): void {
    const { nodes, jobs } = this.ctx.registry;
    for (const job of jobs.values()) accrueCost(job, (id) => nodes.get(id)?.tier, seconds);
  }

  /**
   * Moves each job's reservation (of those named: the jobs a node's report changed; all by default) toward what
   * its nodes report it holds (`rightsizeReservation`).
   */
  async rightsize(jobIds?: Iterable<string>): Promise<void> {
    const { jobs } = this.ctx.registry;
    const named = jobIds === undefined ? [...jobs.values()] : [...jobIds].flatMap((id) => jobs.get(id) ?? []);
    for (const job of named) {
      const usage = this.ctx.stats.jobUsage(job.id);
      const reservation = rightsizeReservation(job.reservation, usage);
      if (reservation === job.reservation) continue;
      this.ctx.logger.info({ job: job.id, usage, from: job.reservation, to: reservation }, 'reservation resized');
      job.reservation = reservation;
      jobs.reindex(job); // the bytes it reserves on each node
      await this.ctx.persistJob(job);
    }
  }

  /** A token for the job that expires one token lifetime from now, and a ticket carrying it. */
  private ticketFor(job: JobRecord): { token: string; ticket: string } {
    const { ctx } = this;
    const token = signToken(ctx.secret, job.id, ctx.tokensExpireBy());
    const ca = ctx.options.tls?.ca;
    // With TLS, tickets carry the CA functions check every server against.
    const tls = ca === undefined ? {} : { tls: { ca: Buffer.isBuffer(ca) ? ca.toString('utf8') : ca } };
    const ticket = encodeTicket({
      v: 1,
      job: job.id,
      token,
      metadata: ctx.metadata.ownersOf(job.id),
      controller: ctx.address!,
      placement: job.placement,
      ...tls,
    });
    return { token, ticket };
  }

  /** The jobs a tenant has now (records from before tenants belong to the default tenant). */
  jobsOf(tenant: string): JobRecord[] {
    return [...this.ctx.registry.jobs.values(), ...this.ctx.registering.values()].filter(
      (job) => (job.tenant ?? DEFAULT_TENANT) === tenant,
    );
  }

  tenantInfo(tenant: TenantRecord): { name: string; quotaBytes: number; maxJobs: number; jobs: number; reservedBytes: number } {
    const jobs = this.jobsOf(tenant.name);
    return {
      name: tenant.name,
      quotaBytes: tenant.quotaBytes ?? 0,
      maxJobs: tenant.maxJobs ?? 0,
      jobs: jobs.length,
      reservedBytes: jobs.reduce((sum, job) => sum + job.reservation, 0),
    };
  }

  /** Adds a tenant and returns its key (shown once: the controller keeps its hash). */
  async addTenant(
    name: string,
    limits: { quotaBytes?: number | undefined; maxJobs?: number | undefined } = {},
  ): Promise<{ tenant: TenantRecord; key: string }> {
    const { ctx } = this;
    const added = ctx.tenants.add(name, {
      ...(limits.quotaBytes === undefined ? {} : { quotaBytes: limits.quotaBytes }),
      ...(limits.maxJobs === undefined ? {} : { maxJobs: limits.maxJobs }),
    });
    try {
      await ctx.store?.putTenant(added.tenant);
    } catch (error) {
      ctx.tenants.remove(name);
      throw error;
    }
    ctx.logger.info({ tenant: name, quotaBytes: limits.quotaBytes, maxJobs: limits.maxJobs }, 'tenant added');
    ctx.events.add('tenant-added', `tenant ${name} added`, {
      details: { quotaBytes: limits.quotaBytes ?? 0, maxJobs: limits.maxJobs ?? 0 },
    });
    return added;
  }

  /** Removes a tenant: its key stops working, and its jobs are deregistered (every byte deleted). */
  async removeTenant(name: string): Promise<number> {
    const { ctx } = this;
    ctx.tenants.remove(name);
    await ctx.store?.deleteTenant(name);
    const jobs = this.jobsOf(name).filter((job) => ctx.registry.jobs.get(job.id) === job);
    const ended = await Promise.allSettled(jobs.map((job) => this.deregisterJob(job.id, 'tenant')));
    ctx.logger.info({ tenant: name, jobs: jobs.length }, 'tenant removed');
    ctx.events.add('tenant-removed', `tenant ${name} removed; ${jobs.length} of its jobs deregistered`, { details: { jobs: jobs.length } });
    return ended.filter((r) => r.status === 'fulfilled').length;
  }

  /** The default tenant with the key deploy/ gave (made, or its key replaced when the key changed). */
  async ensureDefaultTenant(key: string): Promise<void> {
    const { tenants, store } = this.ctx;
    const existing = tenants.get(DEFAULT_TENANT);
    if (existing !== undefined && existing.keyHash === TenantTable.hashOf(key)) return;
    if (existing !== undefined) tenants.remove(DEFAULT_TENANT);
    const { tenant } = tenants.add(
      DEFAULT_TENANT,
      {
        ...(existing?.quotaBytes === undefined ? {} : { quotaBytes: existing.quotaBytes }),
        ...(existing?.maxJobs === undefined ? {} : { maxJobs: existing.maxJobs }),
      },
      key,
    );
    await store?.putTenant(tenant);
  }

  /** A tenant's limits against one more job reserving `reservation` bytes (or a job growing by it: `newJob` false). */
  admitTenant(tenantName: string, reservation: number, newJob: boolean): void {
    const tenant = this.ctx.tenants.get(tenantName);
    if (tenant === undefined) throw new SatchelError('UNAUTHORIZED', `tenant ${tenantName} was removed`);
    const jobs = this.jobsOf(tenantName);
    if (newJob && tenant.maxJobs !== undefined && jobs.length >= tenant.maxJobs) {
      throw new SatchelError('FULL', `tenant ${tenantName} has ${jobs.length} jobs, its limit (max jobs ${tenant.maxJobs})`);
    }
    if (tenant.quotaBytes !== undefined) {
      const reserved = jobs.reduce((sum, job) => sum + job.reservation, 0);
      if (reserved + reservation > tenant.quotaBytes) {
        throw new SatchelError(
          'FULL',
          `tenant ${tenantName} reserves ${reserved} bytes; ${reservation} more would pass its quota of ${tenant.quotaBytes}`,
        );
      }
    }
  }

  /** The last clusterCeiling, and what it was computed from. */
  private ceiling: { version: number; limits: string; bytes: number } | null = null;

  /**
   * What the cluster could ever hold, by the nodes registered and, with an autoscaler, the most it may launch
   * per tier: a hint above it can never be met, and is refused rather than reserved (an anonymous 10^18-byte
   * reservation once starved every later job of DRAM).
   */
  private clusterCeiling(): number {
    const max = this.ctx.options.autoscaler?.maxNodes;
    const { version } = this.ctx.registry.nodes;
    // The limits by value: an admin may change them in place.
    const limits = `${this.ctx.options.provisioner !== undefined} ${max?.dram} ${max?.ssd} ${max?.hdd}`;
    const last = this.ceiling;
    if (last !== null && last.version === version && last.limits === limits) return last.bytes;
    const bytes = this.ceilingNow();
    this.ceiling = { version, limits, bytes };
    return bytes;
  }

  private ceilingNow(): number {
    const max = this.ctx.options.autoscaler?.maxNodes;
    // One pass over the nodes, no copies: this runs in every registration (at 1,000 nodes, bench scale).
    const count = { dram: 0, ssd: 0, hdd: 0 };
    const sum = { dram: 0, ssd: 0, hdd: 0 };
    const most = { dram: 0, ssd: 0, hdd: 0 };
    let largest = 0;
    for (const node of this.ctx.registry.nodes.values()) {
      const tier = node.tier;
      if (!isTier(tier)) continue; // registration refuses an unknown tier; an own-property check, not `in`
      count[tier]++;
      sum[tier] += node.capacity;
      most[tier] = Math.max(most[tier], node.capacity);
      largest = Math.max(largest, node.capacity);
    }
    let bytes = 0;
    for (const tier of TIERS) {
      const extra = this.ctx.options.provisioner !== undefined && max !== undefined ? Math.max(0, max[tier] - count[tier]) : 0;
      bytes += sum[tier] + extra * (count[tier] > 0 ? most[tier] : largest);
    }
    return bytes;
  }

  /** Hints the cluster can never meet, refused with the limit named (checkHints has checked their form). */
  private admitHints(hints: JobHints): void {
    const bytes = this.clusterCeiling();
    if (bytes <= 0) return; // no node yet: allocation refuses, with its own reason
    const copies = hints.replicas ?? 1;
    if (hints.capacity !== undefined && hints.capacity * copies > bytes) {
      throw new SatchelError(
        'BAD_REQUEST',
        `hint capacity ${hints.capacity} × ${copies} copies is more than the cluster can ever hold (${bytes} bytes)`,
      );
    }
    if (hints.maxValueBytes !== undefined && hints.maxValueBytes > bytes) {
      throw new SatchelError(
        'BAD_REQUEST',
        `hint maxValueBytes ${hints.maxValueBytes} is more than the cluster can ever hold (${bytes} bytes)`,
      );
    }
    // peakThroughput is not bounded here: a job asking for more than every node carries is placed on all of
    // them, and the share of the tier it reserves for throughput is capped at the whole tier (allocation.ts).
    if (hints.functions !== undefined && hints.functions > MAX_FUNCTIONS_HINT) {
      throw new SatchelError('BAD_REQUEST', `hint functions ${hints.functions} is above the limit of ${MAX_FUNCTIONS_HINT}`);
    }
  }
}

function checkHints(hints: JobHints): void {
  for (const field of ['capacity', 'peakThroughput', 'maxValueBytes'] as const) {
    const value = hints[field];
    if (value !== undefined && !(Number.isFinite(value) && value >= 0)) {
      throw new SatchelError('BAD_REQUEST', `hint ${field} must be a non-negative number`);
    }
  }
  if (hints.replicas !== undefined && !(Number.isInteger(hints.replicas) && hints.replicas >= 1 && hints.replicas <= 3)) {
    throw new SatchelError('BAD_REQUEST', 'hint replicas must be 1, 2 or 3');
  }
}

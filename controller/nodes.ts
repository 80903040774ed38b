/**
 * Storage nodes as the controller tracks them: registration (and a restart under the same id, which ends the
 * incarnation that held data), reports, liveness, loss and return, and the restoration of replicated jobs'
 * copies a loss calls for (replication.ts).
 */
import { randomBytes } from 'node:crypto';
import {
  isHostPort,
  type JobUsage,
  type NodeInfo,
  type NodeReport,
  type NodeReportReply,
  SatchelError,
  TIERS,
  type Tier,
  type WirePlacement,
  type WirePlacementNode,
} from '../proto/index.ts';
import { growJob as growAllocation } from './allocation.ts';
import type { ControlOp } from './call-failures.ts';
import type { ControllerContext } from './context.ts';
import type { JobBook } from './jobs.ts';
import { announcedPlacementOf, isLostMember, namesLive, nodesOf, reconcileNode, withLostMarks, withRestartedMember } from './members.ts';
import type { PlacementChanges, PlacementHost } from './placement-changes.ts';
import type { QuotaEnforcer } from './quotas.ts';
import type { JobRecord, NodeRecord } from './registry.ts';
import { type ReplicationResult, rereplicateJob } from './replication.ts';

/** What a restarted controller gives nodes beyond the node timeout to report for the first time. */
const RESTART_GRACE_MS = 3_000;

const TIER_NAMES: ReadonlySet<string> = new Set(TIERS);

export class NodeBook {
  /**
   * Nodes drained and removed, by tier: a process still running under that id may not register again (without a
   * provisioner nobody stopped it). A launch in the tier clears them: a StatefulSet reuses its pod names.
   */
  private readonly retired = new Map<string, string>();
  /** Restorations a node's loss started, by node: its next report waits for them (`nodeBack`). */
  private readonly recovering = new Map<string, Promise<void>>();
  /** Jobs with a top-up queued (`topUpShortJobs`): the timer asks again every tick. */
  private readonly toppingUp = new Set<string>();

  constructor(
    private readonly ctx: ControllerContext,
    private readonly jobs: JobBook,
    private readonly quotas: QuotaEnforcer,
    private readonly placements: PlacementChanges,
  ) {}

  /** Whether the copies a loss of `nodeId` (or of its earlier incarnation) called for are still being restored. */
  isRecovering(nodeId: string): boolean {
    return this.recovering.has(nodeId);
  }

  /** `node` may be absent on the wire (a message field): refused with the other malformed ones below. */
  async registerNode(node: NodeInfo | null | undefined): Promise<string> {
    const { ctx } = this;
    if (
      !node ||
      !isHostPort(node.address) ||
      !TIER_NAMES.has(node.tier) ||
      !(node.capacity > 0 && Number.isFinite(node.capacity)) ||
      !(node.bandwidth >= 0 && Number.isFinite(node.bandwidth))
    ) {
      throw new SatchelError('BAD_REQUEST', 'node needs a tier (dram|ssd|hdd), a host:port address, a positive capacity and a bandwidth');
    }
    const id = node.id || `${node.tier}-${randomBytes(3).toString('hex')}`;
    if (this.retired.has(id)) throw new SatchelError('BAD_REQUEST', `node ${id} was drained and removed; start a new node instead`);
    const bootId = node.bootId ?? '';
    const known = ctx.registry.nodes.get(id);
    if (known !== undefined && (known.bootId ?? '') !== bootId) await this.incarnationEnded(known);
    const record: NodeRecord = { ...node, id, bootId, registeredAt: Date.now() };
    if (known?.draining === true && known.bootId === bootId) record.draining = true;
    ctx.registry.nodes.set(id, record);
    await ctx.store?.putNode(record);
    ctx.logger.info({ node: id, bootId, tier: node.tier, address: node.address, capacity: node.capacity }, 'node registered');
    ctx.events.add('node-joined', `registered at ${node.address}`, { tier: node.tier, node: id, details: { capacity: node.capacity } });
    if (known !== undefined && (known.bootId ?? '') !== bootId) this.placeRestarted(record);
    await this.placements.placeUnplaced();
    this.topUpShortJobs();
    return id;
  }

  /**
   * A node's report (its figures checked by the caller). The answer renews the node's lease, so first a node back
   * from a loss drops what moved on without it, and any node learns what it missed (an announcement that failed,
   * say); then reservations and quotas follow what it reported.
   */
  async report(report: NodeReport): Promise<NodeReportReply> {
    // A removed node still running (no provisioner stopped it) is not asked to register again.
    if (this.retired.has(report.nodeId)) return { unknown: false };
    const reporting = this.ctx.registry.nodes.get(report.nodeId);
    if (reporting === undefined) return { unknown: true };
    // Another incarnation than the one registered: it registers (and so is seen as a restart) first.
    if ((report.bootId ?? '') !== (reporting.bootId ?? '')) return { unknown: true };
    // The jobs whose usage this report may change: those it names, and those the node's last report named.
    const changed = new Set(report.jobs.map((j) => j.jobId));
    for (const jobId of this.ctx.stats.get(report.nodeId)?.jobs.keys() ?? []) changed.add(jobId);
    this.ctx.stats.record(report);
    if (reporting.lost === true) await this.nodeBack(reporting, report.jobs);
    else await this.reconcile(reporting, report.jobs);
    // Right away rather than on a timer: a reservation trails use by at most one report (measured in
    // bench jobs, a 1 s timer on top of the 1 s reports let it trail by up to 2 s while sorts wrote). Only the
    // reporting node's jobs: all of them per report was O(jobs) a report (bench scale, 1,000 nodes).
    void this.jobs.rightsize(changed);
    void this.quotas.enforce();
    return { unknown: false, leaseMs: this.ctx.nodeLeaseMs };
  }

  /**
   * A node registered under a known id with another boot id: the process that held its data is gone. Every job
   * placed on it gets it as a lost member (never announced to the new process; a job with one copy has it marked
   * lost in its placement), and, unless its loss was already handled (it stopped reporting first), the loss runs
   * now: replicated jobs are restored without it.
   */
  private async incarnationEnded(old: NodeRecord): Promise<void> {
    const { ctx } = this;
    const jobs = [...ctx.registry.jobs.values()].filter((job) => nodesOf(job.placement).has(old.id) && !isLostMember(job, old.id));
    // First, while they still count it as a member: the loss picks the jobs to restore.
    const wasLost = old.lost === true;
    if (!wasLost) void this.nodeLost(old, 'restarted');
    for (const job of jobs) {
      if (job.lostNodes?.includes(old.id) !== true) job.lostNodes = [...(job.lostNodes ?? []), old.id];
      // Placed on the job again, and died again: every entry naming it is marked now (`withLostMarks`).
      const rejoined = job.rejoined?.filter((id) => id !== old.id);
      job.rejoined = rejoined !== undefined && rejoined.length > 0 ? rejoined : undefined;
    }
    // Recorded before the new incarnation is: a controller restarted in between must not take the new process for
    // a member of those jobs (it would announce them to it, and it holds none of their data).
    await Promise.all(jobs.map((job) => ctx.persistJob(job)));
    // A job keeping one copy keeps the node in its placement, and a replicated job in its remnants
    // (replication.ts): marked lost there (`markLost`, a no-op when there is nothing to mark), not awaited (the
    // job's queue may hold a long migration; the node registers meanwhile and its RESP front door answers
    // TRYAGAIN until the mark is published).
    for (const job of jobs) void this.markLost(job.id, old.id);
    // Lost already (it stopped reporting first): a restoration then found no node to restore onto (every other
    // node of the job lost too) and kept it, waiting for it to come back with its data. It came back without: the
    // job is restored without it now, onto nodes that came back meanwhile (members.ts `mayPlaceOn`). Before,
    // its live generation named the dead process for good: three nodes all killed, restarted one by one, and a
    // job refused every write for 5 minutes (an outsider's run).
    if (wasLost)
      for (const job of jobs)
        if ((job.placement.replicas ?? 1) > 1 && namesLive(job.placement, old.id))
          void this.placements
            .change(job.id, () => this.restoreCopies(job.id, old))
            .catch((error: unknown) => ctx.logger.error({ err: error, job: job.id, node: old.id }, 'restoring copies failed'));
    ctx.logger.warn({ node: old.id, bootId: old.bootId, jobs: jobs.length }, 'node restarted: its data is gone');
    ctx.events.add(
      'node-restarted',
      `a new process took over ${old.id}; ${jobs.length} job(s) lose what it held${jobs.length > 0 ? ' (replicated ones get their copies restored)' : ''}`,
      {
        tier: old.tier,
        node: old.id,
        details: { jobs: jobs.length },
      },
    );
  }

  /**
   * Each single-copy job a node's restart left without the node's slots gets its new process in a new generation,
   * over the old one kept as a remnant that marks the dead incarnation lost (members.ts `withRestartedMember`): the
   * keys it held still fail with UNAVAILABLE, writes go on. In the job's queue of changes, after the mark.
   */
  private placeRestarted(node: NodeRecord): void {
    const { ctx } = this;
    for (const jobId of [...ctx.registry.jobs.namedOn(node.id)]) {
      void this.placements
        .change(jobId, async () => {
          const job = ctx.registry.jobs.get(jobId);
          // Not if this process died too meanwhile: the next registration places the one after it.
          if (job === undefined || ctx.registry.nodes.get(node.id)?.bootId !== node.bootId || !isLostMember(job, node.id)) return;
          const next = withRestartedMember(withLostMarks(job.placement, job.lostNodes, job.rejoined), node.id, node.address);
          if (next === null) return;
          job.rejoined = [...(job.rejoined ?? []), node.id];
          await ctx.publisher.apply(job, next);
          ctx.logger.info({ job: jobId, node: node.id, epoch: next.epoch }, 'restarted node placed on its single-copy job again');
        })
        .catch((error: unknown) =>
          ctx.logger.error({ err: error, job: jobId, node: node.id }, 'placing a restarted node on its job failed'),
        );
    }
  }

  /**
   * The job's placement republished at its epoch with its lost members marked (placement-publisher.ts `markLost`),
   * in the job's queue of changes, so it cannot race a growth or a migration: the metadata servers then say that
   * what `nodeId` held of the job is gone, and a Redis client reaching that node gets a final error rather than a
   * TRYAGAIN it would retry in vain (storage-node/resp/README.md "Errors"). A failed publish is logged and counted;
   * the metadata servers get the record's placement when they register again, and the next change carries the mark.
   */
  private async markLost(jobId: string, nodeId: string): Promise<void> {
    const { ctx } = this;
    try {
      const marked = await this.placements.change(jobId, async () => {
        const job = ctx.registry.jobs.get(jobId);
        return job !== undefined && (await ctx.publisher.markLost(job));
      });
      if (marked) ctx.logger.info({ job: jobId, node: nodeId }, 'placement marks a restarted node lost');
    } catch (error) {
      ctx.failures.record('set_placement', error, { job: jobId, node: nodeId }, 'the metadata servers get it when they register again');
    }
  }

  /**
   * Declares lost every node not heard from for the node timeout (since its last report, or since it registered
   * or this controller started): see `nodeLost`.
   */
  checkLiveness(now: number): void {
    const { ctx } = this;
    for (const node of ctx.registry.nodes.values()) {
      if (node.lost === true) continue;
      // After a restart, nodes get longer: their channels reconnect first (up to a second of backoff), and a node
      // declared lost for that while another was being restored could take the only copy of keys with it.
      // After the controller itself stood still, the silence was its own: nodes get a timeout from its resumption.
      const heard = Math.max(ctx.stats.lastReportAt(node.id) ?? 0, node.registeredAt, ctx.startedAt + RESTART_GRACE_MS, ctx.resumedAt);
      if (now - heard > ctx.nodeTimeoutMs) void this.nodeLost(node, `no report for ${((now - heard) / 1000).toFixed(1)} s`);
    }
  }

  /**
   * A node stopped reporting (`reason` says how long), or came back as a new incarnation (its data gone): it
   * takes no new jobs or growth, and every replicated job on it gets its copies restored from the survivors under
   * a placement without it (the node's lease ran out before this: it no longer serves them). Jobs with one copy
   * keep it in their placement: their keys there fail with UNAVAILABLE rather than find nothing, and come back
   * if the node does (same incarnation). The restorations are kept on the record (`recovering`), so the node's
   * next report waits for them before it is answered.
   */
  private nodeLost(node: NodeRecord, reason: string): Promise<void> {
    const { ctx } = this;
    node.lost = true;
    const jobs = [...ctx.registry.jobs.values()].filter((job) => nodesOf(job.placement).has(node.id) && !isLostMember(job, node.id));
    const replicated = jobs.filter((job) => (job.placement.replicas ?? 1) > 1);
    const single = jobs.filter((job) => (job.placement.replicas ?? 1) === 1);
    ctx.logger.warn({ node: node.id, reason, replicated: replicated.length, unreplicated: single.map((j) => j.id) }, 'node lost');
    ctx.events.add(
      'node-lost',
      `${reason}${single.length > 0 ? `; data of ${single.length} job(s) with one copy unavailable while it is gone` : ''}`,
      {
        tier: node.tier,
        node: node.id,
        details: { jobs: jobs.length, replicated: replicated.length },
      },
    );
    const restorations = replicated.map((job) =>
      this.placements
        .change(job.id, () => this.restoreCopies(job.id, node))
        .catch((error: unknown) => {
          ctx.logger.error({ err: error, job: job.id, node: node.id }, 'restoring copies failed');
          ctx.events.add('replication-failed', `copies of ${job.id} not restored: ${(error as Error).message}`, {
            tier: node.tier,
            node: node.id,
          });
        }),
    );
    const recovering = Promise.all(restorations).then(() => undefined);
    this.recovering.set(node.id, recovering);
    void recovering.finally(() => {
      if (this.recovering.get(node.id) === recovering) this.recovering.delete(node.id);
    });
    return recovering;
  }

  /**
   * A lost node reported again (it was slow, frozen or cut off, not gone): once the restorations its loss started
   * have published their placements, it drops what moved on without it (so its stale copies cannot come back)
   * and learns what it missed (`reconcile`); then it may take jobs again, and its answer renews its lease.
   */
  private async nodeBack(node: NodeRecord, reported: readonly JobUsage[]): Promise<void> {
    await this.recovering.get(node.id);
    if (node.lost !== true) return this.reconcile(node, reported);
    this.ctx.logger.warn({ node: node.id }, 'lost node reports again');
    await this.reconcile(node, reported);
    node.lost = false;
    // A remnant naming it (replication.ts) kept keys only it and other lost nodes held: a repair now takes them
    // forward, and drops the remnant if nothing else keeps it.
    for (const jobId of [...this.ctx.registry.jobs.namedOn(node.id)]) {
      const job = this.ctx.registry.jobs.get(jobId);
      if (!job?.placement.generations.some((g) => g.remnant === true && g.nodes.some((n) => n.id === node.id))) continue;
      job.pending ??= { kind: 'restore', node: node.id };
      this.placements.finishCopiesLater(jobId);
    }
    this.ctx.events.add('node-back', 'reports again; jobs restored elsewhere meanwhile were dropped from it', {
      tier: node.tier,
      node: node.id,
    });
    this.topUpShortJobs();
  }

  /** Tells a node what its report shows it missed (members.ts `reconcileNode`); what fails, its next report retries. */
  private async reconcile(node: NodeRecord, reported: readonly JobUsage[]): Promise<void> {
    const { ctx } = this;
    const actions = reconcileNode(
      node.id,
      reported,
      ctx.registry.jobs,
      { has: (id) => ctx.isMaking(id) },
      ctx.registry.jobs.namedOn(node.id),
    );
    if (actions.length === 0) return;
    ctx.logger.info({ node: node.id, actions }, 'telling a node what it missed');
    const bootId = node.bootId ?? '';
    const tokensExpireBy = ctx.tokensExpireBy();
    await Promise.all(
      actions.map(async (action) => {
        let op: ControlOp = action.kind === 'drop' ? 'drop_job' : 'announce';
        try {
          const job = ctx.registry.jobs.get(action.jobId);
          const placement = job === undefined ? null : announcedPlacementOf(job.placement, ctx.registry.nodes);
          if (action.kind === 'announce')
            await ctx.admin.announce(node.address, action.jobId, action.epoch, action.flags, bootId, placement);
          else if (action.kind === 'move') {
            await ctx.admin.announce(node.address, action.jobId, action.epoch, 0, bootId, placement);
            op = 'drop_job';
            // A replicated job restored without it: the node keeps its copies aside for the top-up that brings
            // the job back to it (storage-node engine.ts "Kept copies").
            await ctx.admin.dropJob(node.address, action.jobId, true, undefined, (job?.placement.replicas ?? 1) > 1);
          } else await ctx.admin.dropJob(node.address, action.jobId, false, tokensExpireBy);
        } catch (error) {
          ctx.failures.record(op, error, { node: node.id, job: action.jobId }, `retried on its next report (${action.kind})`);
        }
      }),
    );
  }

  private async restoreCopies(jobId: string, node: NodeRecord): Promise<ReplicationResult | null> {
    const { ctx, placements } = this;
    const job = ctx.registry.jobs.get(jobId);
    // Only a remnant names it (its loss was restored from, or found nothing to restore from): nothing to do.
    if (job === undefined || !namesLive(job.placement, node.id)) return null;
    // Copies an earlier change left unfinished (it failed, or the controller died): this restoration only makes
    // the copies its own loss calls for, so a repair follows it.
    const unfinished = job.pending !== undefined;
    const replicas = job.placement.replicas ?? 1;
    const newest = job.placement.generations[0]!.nodes.filter((n) => n.id !== node.id);
    // Too few nodes left for every copy: the roomiest other node joins (the same policy as growth).
    const replacement = newest.length < replicas ? this.joining(job, newest, node.id) : [];
    if (newest.length === 0 && replacement.length === 0) {
      // Every other node of the job is lost too (both of two frozen, cut off or restarted at once) and none can
      // join: nothing to restore onto. Placed without it, the job had no generation taking writes, and once its
      // nodes came back its remnants were spent and its placement left empty: every key UNAVAILABLE for good (an
      // outsider's SIGSTOP of both nodes, 2026-12-07). So it keeps the node, as a single-copy job does: its keys
      // fail while their nodes are gone and come back with them (a restarted node's never: a lost member is never
      // announced the job again).
      ctx.logger.warn({ job: jobId, lost: node.id }, 'copies not restored: every other node of the job is lost too');
      ctx.events.add('replication-failed', `copies of ${jobId} not restored: every other node of the job is lost too`, {
        tier: node.tier,
        node: node.id,
      });
      return null;
    }
    const started = Date.now();
    const host = placements.placementHost(job);
    let published = false;
    try {
      let restored: { placement: WirePlacement; result: ReplicationResult };
      try {
        restored = await rereplicateJob(
          {
            ...host,
            // The copies are made under the new placement: recorded with it, so a restart finishes them.
            publish: async (placement) => {
              job.pending = { kind: 'restore', node: node.id };
              await host.publish(placement);
              published = true;
            },
          },
          job.placement,
          node,
          replacement,
        );
      } catch (error) {
        // Placed without the node, a copy failed (a node unreachable, or refusing meanwhile): the copies its
        // placement wants are made by a repair, which steps over unreachable nodes and tries again later.
        if (!published) throw error;
        ctx.logger.warn({ err: error, job: jobId, lost: node.id }, 'restoring copies failed: repairing instead');
        const repaired = await placements.repair(job);
        if (repaired !== null) {
          job.pending = undefined;
          await ctx.publisher.apply(job, repaired);
        }
        return null;
      }
      const { result } = restored;
      let { placement } = restored;
      if (unfinished) {
        // Copies an earlier change left (their remnants too): the repair's placement, from the one published here.
        const repaired = await placements.repair(job);
        if (repaired === null) return result;
        placement = repaired;
      }
      job.pending = undefined;
      await ctx.publisher.apply(job, placement);
      ctx.logger.info({ job: jobId, lost: node.id, epoch: placement.epoch, ...result, ms: Date.now() - started }, 'copies restored');
      ctx.events.add(
        'copies-restored',
        `${result.copies} copies (${result.bytes} bytes) of ${jobId} restored in ${((Date.now() - started) / 1000).toFixed(1)} s`,
        {
          tier: node.tier,
          node: node.id,
          details: { copies: result.copies, bytes: result.bytes, keys: result.keys },
        },
      );
      await this.topUp(jobId, host);
      return result;
    } finally {
      host.close();
    }
  }

  /** The roomiest node that can join the job's newest generation (`newest`), other than `except`; none: []. */
  private joining(job: JobRecord, newest: readonly WirePlacementNode[], except?: string): WirePlacementNode[] {
    const { placements } = this;
    const candidates = placements.placeableFor(job).filter((n) => n.id !== except);
    const added = growAllocation([...newest], job.tier as Tier, candidates, placements.freeRoom, job.reservation, job.placement.blockSize)
      ?.added[0];
    const record = added === undefined ? undefined : this.ctx.registry.nodes.get(added);
    return record === undefined ? [] : [{ id: record.id, address: record.address, weight: 1 }];
  }

  /**
   * After a restoration that found no node to take the lost one's place, the job keeps fewer copies than it asks
   * for: on two nodes, the restarted one's new process may not take the job before its loss is restored, and
   * nothing asked again afterwards, so a second restart lost every key (an outsider's test, 2026-12-07). Once the
   * restoration is published the id is free: a node that can take the job now joins it and gets a copy of every
   * key, as a replacement does; and later (`topUpShortJobs`) for a job no node could take then. A copy that
   * fails leaves the job's copies pending: a repair finishes them.
   */
  private async topUp(jobId: string, host: Pick<PlacementHost, 'publish' | 'connect'>): Promise<void> {
    const { ctx } = this;
    const job = ctx.registry.jobs.get(jobId);
    // A job with copies pending is finished by a repair first (`finishCopiesLater`); the timer asks again after.
    if (job === undefined || job.pending !== undefined || !isShortOfNodes(job)) return;
    const newest = job.placement.generations[0]!;
    const replacement = this.joining(job, newest.nodes);
    if (replacement.length === 0) return;
    const started = Date.now();
    try {
      const { placement, result } = await rereplicateJob(
        {
          ...host,
          publish: async (next) => {
            job.pending = { kind: 'restore', node: '' };
            await host.publish(next);
          },
        },
        job.placement,
        null,
        replacement,
      );
      job.pending = undefined;
      await ctx.publisher.apply(job, placement);
      ctx.logger.info(
        { job: jobId, joined: replacement[0]!.id, ...result, ms: Date.now() - started },
        'copies added: the job had fewer nodes than copies',
      );
      const kept = result.kept ?? 0;
      ctx.events.add(
        'copies-added',
        `${result.copies} copies (${result.bytes} bytes${kept > 0 ? `; ${kept} kept by the node since it was lost` : ''}) of ${jobId} added on ${replacement[0]!.id} in ${((Date.now() - started) / 1000).toFixed(1)} s: the job had fewer nodes than copies`,
        { tier: job.tier, node: replacement[0]!.id, details: { copies: result.copies, bytes: result.bytes, keys: result.keys, kept } },
      );
    } catch (error) {
      ctx.logger.warn({ err: error, job: jobId, joined: replacement[0]!.id }, 'adding copies failed: repairing later');
      if (job.pending !== undefined) this.placements.finishCopiesLater(jobId);
    }
  }

  /**
   * A job a restoration left with fewer nodes than copies (no node could take the lost one's place then: a
   * one-node tier, or every node of the job lost at once) gets one as soon as one can take it: when a node
   * registers or a lost one reports again, and on the controller's timer (a repair that was pending then has
   * finished since). Each in the job's queue of changes, once at a time, not awaited: the copies can take seconds.
   */
  topUpShortJobs(): void {
    const { ctx, placements } = this;
    for (const job of ctx.registry.jobs.values()) {
      if (job.pending !== undefined || this.toppingUp.has(job.id) || !isShortOfNodes(job)) continue;
      if (this.joining(job, job.placement.generations[0]!.nodes).length === 0) continue;
      this.toppingUp.add(job.id);
      void placements
        .change(job.id, async () => {
          const host = placements.placementHost(job);
          try {
            await this.topUp(job.id, host);
          } finally {
            host.close();
          }
        })
        .catch((error: unknown) => ctx.logger.warn({ err: error, job: job.id }, 'adding copies failed'))
        .finally(() => this.toppingUp.delete(job.id));
    }
  }

  /**
   * After a restart: a replicated job still naming a node whose process died with its data. The previous
   * controller recorded the loss but died before the restoration's placement was (a lost member is never
   * announced the job again), so the restoration runs now.
   */
  async resumeRestorations(): Promise<void> {
    const { ctx } = this;
    for (const job of [...ctx.registry.jobs.values()]) {
      if ((job.placement.replicas ?? 1) === 1) continue;
      for (const id of job.lostNodes ?? []) {
        if (!isLostMember(job, id)) continue; // placed on the job again since (members.ts `rejoined`)
        const named = job.placement.generations.flatMap((g) => g.nodes).find((n) => n.id === id);
        if (named === undefined) continue;
        const node: NodeRecord = {
          tier: job.tier,
          capacity: 0,
          bandwidth: 0,
          registeredAt: 0,
          ...ctx.registry.nodes.get(id),
          id,
          address: named.address,
        };
        ctx.logger.info({ job: job.id, node: id }, 'restoring copies of a node lost before a restart');
        await this.placements
          .change(job.id, () => this.restoreCopies(job.id, node))
          .catch((error: unknown) => {
            ctx.logger.error({ err: error, job: job.id, node: id }, 'restoring copies failed');
          });
      }
    }
  }

  /** Forgets a node (drained, or gone for good): no placement may still name it, and its id may not register again. */
  async forgetNode(nodeId: string): Promise<void> {
    const { ctx } = this;
    const node = ctx.registry.nodes.get(nodeId);
    for (const job of ctx.registry.jobs.values()) {
      if (nodesOf(job.placement).has(nodeId) && !isLostMember(job, nodeId)) {
        throw new SatchelError('BAD_REQUEST', `node ${nodeId} still holds job ${job.id}: drain it first`);
      }
    }
    ctx.registry.nodes.delete(nodeId);
    if (node !== undefined) this.retired.set(nodeId, node.tier);
    ctx.stats.forget(nodeId);
    await ctx.store?.deleteNode(nodeId);
    ctx.logger.info({ node: nodeId }, 'node removed');
  }

  /** Ids of `tier` retired by a drain may register again (a launch there: a StatefulSet reuses its pod names). */
  unretire(tier: Tier): void {
    for (const [id, retiredTier] of this.retired) if (retiredTier === tier) this.retired.delete(id);
  }
}

/** A placed, replicated job whose newest generation (taking writes) has fewer nodes than it asks copies of. */
function isShortOfNodes(job: JobRecord): boolean {
  const newest = job.placement.generations[0];
  return newest !== undefined && newest.remnant !== true && newest.nodes.length > 0 && newest.nodes.length < (job.placement.replicas ?? 1);
}

/**
 * Changes to a job's placement after registration: growth onto more nodes (a node answered FULL), migration off a
 * node being drained, repairs of copies a change left unfinished, and the first placement of jobs registered
 * before any node. Each goes through the PlacementPublisher (placement-publisher.ts), and a job's changes run one
 * at a time, in order (`change`): restorations after a node's loss (nodes.ts) queue with them.
 */
import { clientTlsOf, isHostPort, NodeConnection, SatchelError, signToken, type Tier, type WirePlacement } from '../proto/index.ts';
import { allocateJob, growJob as growAllocation, type NodeState } from './allocation.ts';
import type { ControllerContext } from './context.ts';
import type { JobBook } from './jobs.ts';
import { isLostMember, mayPlaceOn, namesUnmarked, nodesOf } from './members.ts';
import { type MigrationHost, type MigrationResult, migrateJob } from './migration.ts';
import type { JobRecord, NodeRecord } from './registry.ts';
import { repairCopies, withoutSpentRemnants } from './replication.ts';
import { DEFAULT_TENANT } from './tenants.ts';

/**
 * Placement generations a job may have: each growth adds one, and a client may look in every one for a key. 16
 * is 15 growths (each adds at least the job's reservation again) and a ticket of a few KB.
 */
export const MAX_GENERATIONS = 16;
/** How long a GrowJob waits for the full node to report the job's FULL (its report comes at once: node side). */
const FULL_REPORT_WAIT_MS = 2_000;

/** What draining a node moved, and how long it took. */
export interface DrainResult {
  node: string;
  jobs: number;
  keys: number;
  bytes: number;
  seconds: number;
}

/** What moving a job's keys needs (migration.ts, replication.ts), with `close` to end its connections. */
export type PlacementHost = Pick<MigrationHost, 'publish' | 'connect' | 'isLost'> & { close(): void };

export class PlacementChanges {
  /** Placement changes of a job (growth, migration, restoration) run one at a time, in order. */
  private readonly queues = new Map<string, Promise<unknown>>();
  /** Jobs whose unfinished copies are to be tried again (`finishCopiesLater`): one timer each. */
  private readonly finishingLater = new Set<string>();

  constructor(
    private readonly ctx: ControllerContext,
    private readonly jobs: JobBook,
  ) {}

  /** Runs `change` after the job's earlier changes (whether they succeeded or not). */
  change<T>(jobId: string, change: () => Promise<T>): Promise<T> {
    const previous = this.queues.get(jobId) ?? Promise.resolve();
    const next = previous.catch(() => {}).then(change);
    this.queues.set(jobId, next);
    void next
      .finally(() => {
        if (this.queues.get(jobId) === next) this.queues.delete(jobId);
      })
      .catch(() => {});
    return next;
  }

  /**
   * A job's node answered FULL: add room (see `growJob` in allocation.ts) as a new placement generation,
   * newest first, so new keys go where there is room and reads fall back to the older generations. Calls are
   * serialized per job, and a caller whose placement is already out of date just gets the current one.
   */
  async growJob(jobId: string, fullNodeId: string, epoch: number, asked: 'by-client' | 'by-admin' = 'by-client'): Promise<WirePlacement> {
    const job = this.ctx.registry.jobs.get(jobId);
    if (job === undefined) throw new SatchelError('NO_SUCH_JOB', `no job ${jobId}`);
    if (job.placement.epoch > epoch) return job.placement;
    // Only a FULL the node itself reported (its report comes at once after one): no token can grow a job that
    // has room. Waited for outside the job's queue of placement changes, so a loop of such calls holds up none.
    // An admin (in-process: tests, tools) grows a job as it sees fit.
    const refusals = asked === 'by-admin' ? Infinity : await this.fullReported(jobId, fullNodeId);
    return this.change(jobId, () => this.growJobNow(jobId, fullNodeId, epoch, refusals));
  }

  /** `refusals`: the node's reported FULL refusals of the job (`fullReported`); each count grants one growth. */
  private async growJobNow(jobId: string, fullNodeId: string, epoch: number, refusals: number | null): Promise<WirePlacement> {
    // `refusals` Infinity: an admin's growth (`growJob` by-admin), not a report to use up.
    const { ctx } = this;
    const job = ctx.registry.jobs.get(jobId);
    if (job === undefined) throw new SatchelError('NO_SUCH_JOB', `no job ${jobId}`);
    if (job.overQuota !== undefined) throw overQuotaError(job);
    if (job.placement.epoch > epoch) return job.placement;
    if (job.placement.generations.length >= MAX_GENERATIONS) {
      throw new SatchelError(
        'FULL',
        `job ${jobId} has ${job.placement.generations.length} placement generations, the most a job may have: register it with a larger capacity hint`,
      );
    }
    // FULL, as the write that asked was refused: the caller's PUT fails with the code the node gave it.
    if (refusals === null || refusals === job.fullSeen?.[fullNodeId]) {
      throw new SatchelError('FULL', `node ${fullNodeId} has not reported job ${jobId} full: no growth granted`);
    }
    const free = (node: NodeState) => {
      const used = ctx.stats.get(node.id)?.used ?? 0;
      // The node that said FULL has no room, whatever its last report (up to a second old) said.
      return node.id === fullNodeId ? 0 : node.capacity - Math.max(node.reserved, used);
    };
    const growth = growAllocation(
      job.placement.generations[0]?.nodes ?? [],
      job.tier as Tier,
      this.placeableFor(job),
      free,
      job.reservation,
      job.placement.blockSize,
    );
    if (growth === null) throw new SatchelError('FULL', 'the cluster is full: no storage node has room for this job');
    this.jobs.admitTenant(job.tenant ?? DEFAULT_TENANT, growth.extraReservation, false);
    if (refusals !== Infinity) (job.fullSeen ??= {})[fullNodeId] = refusals;
    const placement: WirePlacement = {
      ...job.placement,
      epoch: job.placement.epoch + 1,
      generations: [{ nodes: growth.nodes }, ...job.placement.generations],
    };
    job.reservation += growth.extraReservation;
    await ctx.publisher.apply(job, placement);
    ctx.logger.info({ job: jobId, epoch: placement.epoch, added: growth.added, full: fullNodeId }, 'job grown');
    return job.placement; // with its lost members marked (placement-publisher.ts `apply`)
  }

  /**
   * The FULL refusals `nodeId` reported for the job, when more than the last growth used; null when none came
   * within FULL_REPORT_WAIT_MS (a node sends a report at once after its first FULL: storage-node/README.md).
   */
  private async fullReported(jobId: string, nodeId: string): Promise<number | null> {
    const deadline = Date.now() + FULL_REPORT_WAIT_MS;
    for (;;) {
      const refusals = this.ctx.stats.fullRefusals(nodeId, jobId);
      const used = this.ctx.registry.jobs.get(jobId)?.fullSeen?.[nodeId] ?? 0;
      // A node restarted counts from 0 again: fewer than used is a new incarnation's first.
      if (refusals > 0 && refusals !== used) return refusals;
      const left = deadline - Date.now();
      if (left <= 0) return null;
      await this.ctx.stats.nextReport(nodeId, left);
    }
  }

  /** Jobs registered before any node could hold them are placed now (a node registered). */
  async placeUnplaced(): Promise<void> {
    for (const job of this.ctx.registry.jobs.values()) {
      if ((job.placement.generations[0]?.nodes.length ?? 0) > 0) continue;
      const allocation = allocateJob(job.hints, this.placeableFor(job));
      if (allocation.nodes.length === 0) continue;
      Object.assign(job, { tier: allocation.tier, reason: allocation.reason, reservation: allocation.reservation });
      this.ctx.registry.jobs.reindex(job);
      await this.ctx.publisher.apply(job, { ...job.placement, epoch: job.placement.epoch + 1, generations: [{ nodes: allocation.nodes }] });
    }
  }

  /**
   * A metadata server joined, or came back after a restart with nothing: it is sent every placement, and from
   * then on every change.
   */
  async registerMetadata(address: string): Promise<void> {
    const { ctx } = this;
    // Checked first: a channel to an address that cannot be dialled would be kept, and fail every registration.
    if (!isHostPort(address))
      throw new SatchelError('BAD_REQUEST', `metadata server address ${JSON.stringify(String(address).slice(0, 100))} is not host:port`);
    if (ctx.metadata.connect(address)) await ctx.store?.putMetadata(address);
    await ctx.metadata.sendAll(
      address,
      [...ctx.registry.jobs.values()].map((job) => job.placement),
    );
    ctx.logger.info({ address }, 'metadata server registered');
  }

  /**
   * Empties a node so it can be removed: no new job or growth lands on it from now on, and every job with data
   * there is migrated off it under new placement epochs (controller/migration.ts), one job at a time, while its
   * functions keep working. Throws (leaving the node draining, every key readable) when the others lack room.
   */
  async drainNode(nodeId: string): Promise<DrainResult> {
    const { ctx } = this;
    const node = ctx.registry.nodes.get(nodeId);
    if (node === undefined) throw new SatchelError('BAD_REQUEST', `no node ${nodeId}`);
    const started = Date.now();
    node.draining = true;
    await ctx.store?.putNode(node);
    ctx.logger.info({ node: nodeId }, 'draining node');
    const result: DrainResult = { node: nodeId, jobs: 0, keys: 0, bytes: 0, seconds: 0 };
    for (const job of [...ctx.registry.jobs.values()]) {
      // A job whose data died with an earlier incarnation of the node has nothing here to move.
      if (!nodesOf(job.placement).has(nodeId) || isLostMember(job, nodeId)) continue;
      const moved = await this.change(job.id, () => this.migrateJobOff(job.id, node));
      if (moved === null) continue;
      result.jobs++;
      result.keys += moved.keys;
      result.bytes += moved.bytes;
    }
    result.seconds = (Date.now() - started) / 1000;
    ctx.logger.info({ ...result }, 'node drained');
    return result;
  }

  private async migrateJobOff(jobId: string, node: NodeRecord): Promise<MigrationResult | null> {
    const { ctx } = this;
    const job = ctx.registry.jobs.get(jobId);
    if (job === undefined) return null; // deregistered meanwhile
    // Resumed (a restart during the copy): the newest generation already leaves the node out.
    const resumed = !job.placement.generations[0]!.nodes.some((n) => n.id === node.id);
    let newest = job.placement.generations[0]!.nodes;
    if (!resumed) {
      const current = newest.filter((n) => n.id !== node.id);
      // The node's share goes to the roomiest other node of the job's tier (or the spill order), if there is one.
      const growth = growAllocation(
        current,
        job.tier as Tier,
        this.placeableFor(job),
        this.freeRoom,
        job.reservation,
        job.placement.blockSize,
      );
      if (growth === null) throw new SatchelError('FULL', `no other node has room for job ${jobId}: node ${node.id} cannot be drained`);
      newest = growth.nodes;
    }
    const unfinished = job.pending !== undefined && job.pending.kind !== 'drain';
    const host = this.placementHost(job);
    try {
      const { result } = await migrateJob(
        {
          ...host,
          // The drained node's keys are copied under this placement: recorded with it, so a restart finishes.
          publish: (placement) => {
            job.pending =
              // Done once only entries marked lost name it (a remnant's dead incarnation of the id: migration.ts
              // keeps those); before, a drained single-copy job stayed pending for good.
              placement.generations[0]!.nodes.some((n) => n.id === node.id) || !namesUnmarked(placement, node.id)
                ? undefined
                : { kind: 'drain', node: node.id };
            return host.publish(placement);
          },
        },
        job.placement,
        node,
        newest,
        resumed,
      );
      ctx.logger.info({ job: jobId, node: node.id, ...result, epoch: job.placement.epoch }, 'job migrated');
      if (unfinished) {
        const repaired = await this.repair(job);
        if (repaired !== null) await ctx.publisher.apply(job, repaired);
      }
      return result;
    } catch (error) {
      // Failed with its copies under way (recorded as pending): finished later, as after a restart.
      if (job.pending?.kind === 'drain') this.finishCopiesLater(jobId);
      throw error;
    } finally {
      host.close();
    }
  }

  /**
   * Finishes the copies a job's record says are pending (a controller restarted during them): a drain copies
   * the drained node's keys and moves the job off it, as `migrateJobOff`; a restoration copies every key to
   * every holder it lacks (replication.ts `repairCopies`, idempotent). Then the record is cleared.
   */
  async finishCopies(jobId: string): Promise<void> {
    const job = this.ctx.registry.jobs.get(jobId);
    if (job?.pending === undefined) return;
    if (job.pending.kind === 'drain') {
      const node = this.ctx.registry.nodes.get(job.pending.node);
      if (node !== undefined && namesUnmarked(job.placement, node.id)) {
        await this.migrateJobOff(jobId, node);
        return;
      }
      job.pending = undefined;
      await this.ctx.publisher.apply(job, job.placement);
      return;
    }
    const repaired = await this.repair(job);
    if (repaired === null) return;
    job.pending = undefined;
    await this.ctx.publisher.apply(job, repaired);
  }

  /** `finishCopies` of the job a node timeout from now (a change failed half-way; a repair was incomplete). */
  finishCopiesLater(jobId: string): void {
    // Once per job: a failing migration schedules this, and so does the retry that ran it (the 10-minute
    // nemesis saw the timers double each second, 14,000 retries of one job in three minutes).
    if (this.finishingLater.has(jobId)) return;
    this.finishingLater.add(jobId);
    setTimeout(() => {
      this.finishingLater.delete(jobId);
      void this.change(jobId, () => this.finishCopies(jobId)).catch((error: unknown) => {
        this.ctx.logger.warn({ err: error, job: jobId }, 'finishing copies failed: tried again later');
        if (this.ctx.registry.jobs.get(jobId)?.pending !== undefined) this.finishCopiesLater(jobId);
      });
    }, this.ctx.nodeTimeoutMs).unref();
  }

  /**
   * Makes every copy the job's placement wants exist (replication.ts `repairCopies`): what a change that failed
   * half-way, or a controller that died during one, left undone. When done, the placement to publish: the job's,
   * without the remnants whose keys all went forward (`withoutSpentRemnants`). Null when a node could not be
   * reached, and then tried again (`finishCopies`) a node timeout later, the job's copies still pending.
   */
  async repair(job: JobRecord): Promise<WirePlacement | null> {
    const { ctx } = this;
    const host = this.placementHost(job);
    try {
      // The node whose loss the copies are for gives what it still holds, if it answers (replication.ts).
      const lost = job.pending?.kind === 'restore' ? ctx.registry.nodes.get(job.pending.node) : undefined;
      const result = await repairCopies(host, job.placement, lost);
      ctx.logger.info({ job: job.id, epoch: job.placement.epoch, ...result }, 'copies repaired');
      ctx.events.add(
        'copies-restored',
        `${result.copies} copies (${result.bytes} bytes) of ${job.id} made by a repair${result.skipped ? `; ${result.skipped} unreachable, retried` : ''}`,
        {
          details: { copies: result.copies, bytes: result.bytes, keys: result.keys, skipped: result.skipped ?? 0 },
        },
      );
      if ((result.skipped ?? 0) === 0) return withoutSpentRemnants(job.placement, result.listed ?? new Set());
      job.pending = { kind: 'restore', node: job.pending?.node ?? '' };
      this.finishCopiesLater(job.id);
      return null;
    } finally {
      host.close();
    }
  }

  /**
   * What moving a job's keys needs (migration.ts, replication.ts): making a placement the job's (PlacementPublisher),
   * and data connections as the job; `close` ends them.
   */
  placementHost(job: JobRecord): PlacementHost {
    const { ctx } = this;
    const connections = new Map<string, NodeConnection>();
    const token = signToken(ctx.secret, job.id);
    return {
      publish: (placement) => ctx.publisher.apply(job, placement),
      isLost: (nodeId) => isLostMember(job, nodeId),
      connect: (address) => {
        let connection = connections.get(address);
        if (connection === undefined)
          connections.set(
            address,
            (connection = new NodeConnection(address, token, { timeoutMs: ctx.adminTimeoutMs, tls: clientTlsOf(ctx.options.tls) })),
          );
        return connection;
      },
      close: () => {
        for (const connection of connections.values()) connection.destroy();
      },
    };
  }

  /**
   * The nodes a job may grow onto: placeable, not named by the job's remnants alone (they hold older copies of its
   * keys), and not a node id the job has as a lost member — unless, a replicated job, no live generation names it
   * any more (members.ts `mayPlaceOn`).
   */
  placeableFor(job: JobRecord): NodeState[] {
    if (job.lostNodes === undefined && !job.placement.generations.some((g) => g.remnant === true))
      return this.ctx.registry.placeableNodes();
    return this.ctx.registry.placeableNodes().filter((node) => mayPlaceOn(job, node.id));
  }

  /** A node's room for more of a job: its capacity less the most of what is reserved there and what it holds. */
  readonly freeRoom = (state: NodeState): number => state.capacity - Math.max(state.reserved, this.ctx.stats.get(state.id)?.used ?? 0);
}

/** Why an over-quota job is refused growth: which quota it reached (quotas.ts), or a record from before that was kept. */
function overQuotaError(job: JobRecord): SatchelError {
  const { bytes, tenant } = job.overQuota ?? {};
  const quota = bytes === undefined ? 'byte quota' : `byte quota of ${bytes} bytes`;
  return new SatchelError(
    'FULL',
    tenant === undefined
      ? `job ${job.id} is over its ${quota}: delete data or ask for more`
      : `job ${job.id}'s tenant ${tenant} is over its ${quota} (all its jobs together): delete data or ask for more`,
  );
}

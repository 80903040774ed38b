/**
 * Spare jobs: placements made ahead of registrations, so that registering a job waits for its record alone.
 *
 * A new job's placement goes to its nodes and its metadata servers before the registration is answered
 * (placement-publisher.ts `placeNew`): no client may learn of a job a node would refuse or a lookup not find.
 * Those two round trips to other processes were most of the handler: 3.1 of its 5.4 ms with another job busy
 * (perf/RESULTS.md, register). A spare is a job id whose placement its nodes and metadata servers already hold,
 * and nothing else: no record, no token, no data. A registration whose allocation comes out the same as a spare's
 * (tier, nodes and weights, block and value size, copies: `spareKey`) takes it: its record is written and the
 * reply sent. A new spare for that allocation is made after the reply, off the registration's path.
 *
 * Nobody can reach a spare: tokens are signed for a job id only once it is taken. A spare is taken only while
 * what its placement was sent to is unchanged: its nodes in the same incarnation (a restarted node forgot it) and
 * no metadata server joined or marked down since (metadata-links.ts `changes`); otherwise it is dropped and the
 * registration goes the long way. Spares are not persisted: after a controller restart the nodes report them and
 * are told to drop them, as any job the controller does not know (members.ts `reconcileNode`).
 */
import type { Logger } from 'pino';
import type { WirePlacement } from '../proto/index.ts';
import type { Allocation } from './allocation.ts';
import { nodesOf } from './members.ts';
import type { MetadataLinks } from './metadata-links.ts';
import type { PlacementPublisher } from './placement-publisher.ts';
import type { ClusterRegistry } from './registry.ts';

/** Spares kept at most, over every allocation: a cluster's registrations mostly come out alike. */
export const DEFAULT_SPARE_JOBS = 8;
/** Spares kept for one allocation: a registration that takes one leaves the next its own while it is replaced. */
export const SPARES_PER_ALLOCATION = 2;
/**
 * How long after a registration its spare is replaced: once its reply is out (the registration calls
 * `replenish` after it), in a timer of its own so a burst of registrations shares one refill.
 */
export const REFILL_DELAY_MS = 1;
/** A spare not taken within this long is dropped: its nodes' room and load have moved on since. */
export const SPARE_MAX_AGE_MS = 30_000;
/**
 * Spares are made on credit: each one dropped untaken (evicted, aged, stale) costs one, each taken earns two.
 * Registrations whose allocations never repeat (nodes filling, each job its own size) would otherwise triple
 * the control plane's work: two spares made and dropped per job. Without credit, one registration in
 * PROBE_EVERY still makes one, so a workload that starts repeating earns it back.
 */
const START_CREDIT = 8;
const MAX_CREDIT = 32;
const PROBE_EVERY = 16;

/** What a registration needs of a spare: its id, its placement as sent, and the metadata servers holding it. */
export interface Spare {
  readonly id: string;
  readonly placement: WirePlacement;
  readonly metadata: string[];
}

interface Made extends Spare {
  readonly key: string;
  readonly madeAt: number;
  /** Each node's incarnation when it was told (NodeRecord.bootId). */
  readonly bootIds: ReadonlyMap<string, string | undefined>;
  /** `MetadataLinks.changes` before the placement was sent. */
  readonly metadataChanges: number;
}

/** Allocations that would give the same placement have the same key. */
export function spareKey(allocation: Allocation, replicas: number): string {
  let key = `${allocation.tier}|${allocation.blockSize}|${allocation.maxValueBytes}|${replicas}`;
  for (const node of allocation.nodes) key += `|${node.id}:${node.weight}`;
  return key;
}

/** What the pool needs of the controller (context.ts). */
export interface SpareHost {
  readonly registry: ClusterRegistry;
  readonly metadata: MetadataLinks;
  readonly publisher: PlacementPublisher;
  readonly logger: Logger;
}

export interface SpareJobsOptions {
  /** Spares kept at most (DEFAULT_SPARE_JOBS); 0: none made. */
  max?: number;
  perAllocation?: number;
  refillDelayMs?: number;
  maxAgeMs?: number;
}

export class SpareJobs {
  /** Ready spares, oldest first (a few: a scan is cheaper than an index). */
  private readonly ready: Made[] = [];
  /** Spares being made, by key. */
  private readonly making = new Map<string, number>();
  /** Every spare's id, ready or being made: a node reporting one is not told to drop it. */
  private readonly ids = new Set<string>();
  private readonly sweeper: NodeJS.Timeout;
  private readonly max: number;
  private readonly perAllocation: number;
  private readonly refillDelayMs: number;
  private readonly maxAgeMs: number;
  private closed = false;
  private credit = START_CREDIT;
  private missesWithoutCredit = 0;
  /** Registrations that took a spare, and those that found none (or a stale one). */
  taken = 0;
  missed = 0;

  constructor(
    private readonly ctx: SpareHost,
    /** Makes a fresh job id (not a job's, not a spare's: context.ts `newJobId`). */
    private readonly newId: () => string,
    options: SpareJobsOptions = {},
  ) {
    this.max = Math.max(0, options.max ?? DEFAULT_SPARE_JOBS);
    this.perAllocation = Math.max(1, Math.min(this.max, options.perAllocation ?? SPARES_PER_ALLOCATION));
    this.refillDelayMs = options.refillDelayMs ?? REFILL_DELAY_MS;
    this.maxAgeMs = options.maxAgeMs ?? SPARE_MAX_AGE_MS;
    this.sweeper = setInterval(() => this.sweep(), Math.max(1_000, this.maxAgeMs / 2));
    this.sweeper.unref();
  }

  has(id: string): boolean {
    return this.ids.has(id);
  }

  get size(): number {
    return this.ready.length;
  }

  /**
   * A spare for `key`, removed from the pool, if one is ready and still valid; a stale one is dropped (in the
   * background) and undefined returned: the caller registers the long way.
   */
  take(key: string): Spare | undefined {
    if (this.max === 0) return undefined;
    const at = this.ready.findIndex((spare) => spare.key === key);
    if (at < 0) {
      this.missed++;
      return undefined;
    }
    const [spare] = this.ready.splice(at, 1) as [Made];
    this.ids.delete(spare.id);
    if (!this.valid(spare)) {
      this.missed++;
      void this.drop(spare, 'stale');
      return undefined;
    }
    this.taken++;
    this.credit = Math.min(MAX_CREDIT, this.credit + 2);
    return spare;
  }

  /**
   * After a registration for `key`, `refillDelayMs` later: spares for `allocation` made up to
   * SPARES_PER_ALLOCATION when it took one (`took`: the allocation repeats), else one, and only on credit (or as
   * a probe). Never throws: a spare not made is only a slower registration.
   */
  replenish(key: string, allocation: Allocation, replicas: number, took: boolean): void {
    if (this.max === 0 || this.closed) return;
    if (!took && this.credit <= 0) {
      if (++this.missesWithoutCredit < PROBE_EVERY) return;
      this.missesWithoutCredit = 0;
    }
    const target = took ? this.perAllocation : 1;
    const timer = setTimeout(() => this.fill(key, allocation, replicas, target), this.refillDelayMs);
    timer.unref();
  }

  /**
   * Stops making spares and drops the ready ones from their nodes and metadata servers, waiting at most
   * `waitMs` (the controller stops: what is left, the next controller's nodes drop; its metadata servers keep
   * a spare's placement until they restart). Those being made are forgotten.
   */
  async close(waitMs = 500): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.sweeper);
    const ready = this.ready.splice(0);
    this.ids.clear();
    if (ready.length === 0) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.allSettled(ready.map((spare) => this.dropNow(spare))),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, waitMs);
      }),
    ]);
    clearTimeout(timer);
  }

  private fill(key: string, allocation: Allocation, replicas: number, target: number): void {
    let have = this.making.get(key) ?? 0;
    for (const spare of this.ready) if (spare.key === key) have++;
    for (; have < target && !this.closed; have++) {
      if (this.ready.length + sum(this.making.values()) >= this.max) {
        // The oldest ready spare of another allocation makes room.
        const at = this.ready.findIndex((spare) => spare.key !== key);
        if (at < 0) return; // the rest are this allocation's, or being made
        const [oldest] = this.ready.splice(at, 1) as [Made];
        this.ids.delete(oldest.id);
        void this.drop(oldest, 'evicted');
      }
      void this.make(key, allocation, replicas);
    }
  }

  private async make(key: string, allocation: Allocation, replicas: number): Promise<void> {
    const { ctx } = this;
    const id = this.newId();
    const placement: WirePlacement = {
      jobId: id,
      epoch: 1,
      generations: [{ nodes: allocation.nodes.map((n) => ({ ...n })) }],
      blockSize: allocation.blockSize,
      maxValueBytes: allocation.maxValueBytes,
      replicas,
    };
    const bootIds = new Map<string, string | undefined>();
    for (const nodeId of nodesOf(placement)) bootIds.set(nodeId, ctx.registry.nodes.get(nodeId)?.bootId);
    const metadataChanges = ctx.metadata.changes;
    this.making.set(key, (this.making.get(key) ?? 0) + 1);
    this.ids.add(id);
    const made: Made = { id, key, placement, metadata: ctx.metadata.assign(id), madeAt: Date.now(), bootIds, metadataChanges };
    let failure: unknown = null;
    try {
      await ctx.publisher.placeSpare(placement);
    } catch (error) {
      failure = error;
    }
    const left = (this.making.get(key) ?? 1) - 1;
    if (left > 0) this.making.set(key, left);
    else this.making.delete(key);
    if (failure !== null || this.closed || !this.valid(made)) {
      this.ids.delete(id);
      if (failure !== null) ctx.logger.debug({ err: failure, job: id }, 'spare job not made');
      void this.drop(made, failure === null ? 'stale' : 'failed');
      return;
    }
    this.ready.push(made);
  }

  private valid(spare: Made): boolean {
    const { ctx } = this;
    if (Date.now() - spare.madeAt > this.maxAgeMs || ctx.metadata.changes !== spare.metadataChanges) return false;
    for (const [nodeId, bootId] of spare.bootIds) {
      const node = ctx.registry.nodes.get(nodeId);
      if (node === undefined || node.bootId !== bootId || node.lost === true || node.draining === true) return false;
    }
    return true;
  }

  private sweep(): void {
    for (let i = this.ready.length - 1; i >= 0; i--) {
      const spare = this.ready[i]!;
      if (this.valid(spare)) continue;
      this.ready.splice(i, 1);
      this.ids.delete(spare.id);
      void this.drop(spare, 'stale');
    }
  }

  /** Drops a spare never taken from its nodes and metadata servers; failures are recorded by the calls. */
  private async drop(spare: Spare, why: string): Promise<void> {
    if (this.closed) return; // the links are closing: the next controller has the nodes drop it
    this.credit = Math.max(-MAX_CREDIT, this.credit - 1);
    this.ctx.logger.debug({ job: spare.id, why }, 'spare job dropped');
    await this.dropNow(spare);
  }

  private async dropNow(spare: Spare): Promise<void> {
    await Promise.allSettled([this.ctx.publisher.drop(spare.id, nodesOf(spare.placement)), this.ctx.metadata.drop(spare.id)]);
  }
}

function sum(values: Iterable<number>): number {
  let total = 0;
  for (const value of values) total += value;
  return total;
}

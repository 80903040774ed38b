import { join } from 'node:path';
import { CONTROLLER_SERVICE, REPORT_NODES, UnaryServer } from '../proto/grpc.ts';
import {
  advertisedAddress,
  type JobHints,
  type NodeInfo,
  type RegisterJobReply,
  SatchelError,
  signToken,
  type Tier,
  type WirePlacement,
} from '../proto/index.ts';
import type { AutoscalerConfig, NodeLoad } from './autoscaler.ts';
import type { ControlOp } from './call-failures.ts';
import {
  type ClusterView,
  type ConsoleBackend,
  type JobDetail,
  type JobView,
  jobDetail,
  jobView,
  type NodeView,
  nodeView,
  type RedisCredentials,
  redisAccess,
  redisUrlOf,
} from './console-backend.ts';
import { ControllerContext, type ControllerOptions } from './context.ts';
import type { Prices } from './cost.ts';
import type { ClusterEvent, EventLog } from './events.ts';
import { controllerService } from './grpc-service.ts';
import { JobBook } from './jobs.ts';
import { nodeLoads } from './load.ts';
import { membersOf, withLostMarks } from './members.ts';
import type { NodeStats, NodeStatsTable } from './node-stats.ts';
import { NodeBook } from './nodes.ts';
import { type DrainResult, PlacementChanges } from './placement-changes.ts';
import type { Provisioner } from './provisioner.ts';
import { QuotaEnforcer } from './quotas.ts';
import type { ClusterRegistry, JobRecord } from './registry.ts';
import { Scaling } from './scaling.ts';
import { ControllerStore } from './store.ts';
import { DEFAULT_TENANT, defaultTenantKey, type TenantRecord, type TenantTable } from './tenants.ts';

/** A lease tick this late (or half the node timeout, if less) means the controller itself stood still. */
const STOOD_STILL_MS = 2_000;

export type { ControllerOptions } from './context.ts';
export type { DrainResult } from './placement-changes.ts';

/**
 * The controller: job registry, allocation, and the gRPC surface clients, nodes and metadata servers call.
 * It is never on the per-operation path.
 *
 * This class starts and stops it (the gRPC server, the timers, recovery after a restart) and is its one public
 * face; the work is the modules': the gRPC service (grpc-service.ts), jobs and tenants (jobs.ts), quotas
 * (quotas.ts), nodes, their liveness and loss (nodes.ts), placement changes (placement-changes.ts) and scaling
 * (scaling.ts), all over one shared context (context.ts). The console sees it through `ConsoleBackend`.
 */
export class Controller implements ConsoleBackend {
  private readonly ctx: ControllerContext;
  private readonly jobs: JobBook;
  private readonly quotas: QuotaEnforcer;
  private readonly placements: PlacementChanges;
  private readonly nodeBook: NodeBook;
  private readonly scaling: Scaling;
  private readonly server: UnaryServer;
  private leaseTimer: NodeJS.Timeout | null = null;
  private resumeTimer: NodeJS.Timeout | null = null;

  constructor(private readonly options: ControllerOptions) {
    this.ctx = new ControllerContext(options);
    this.jobs = new JobBook(this.ctx);
    this.quotas = new QuotaEnforcer(this.ctx);
    this.placements = new PlacementChanges(this.ctx, this.jobs);
    this.nodeBook = new NodeBook(this.ctx, this.jobs, this.quotas, this.placements);
    this.scaling = new Scaling(this.ctx, this.nodeBook, this.placements);
    const impl = controllerService(this.ctx, this.jobs, this.nodeBook, this.placements);
    this.server = new UnaryServer((method, error) => options.logger.error({ err: error, method }, 'handler failed'));
    this.server.addService(CONTROLLER_SERVICE, impl);
    // Nodes report on one stream each (proto/message-stream.ts), the same handler as the unary ReportNode.
    this.server.addStream(REPORT_NODES, impl.ReportNode as (request: unknown) => Promise<unknown>);
  }

  /** Jobs and nodes (tests and tools read them; the console goes through `ConsoleBackend`). */
  get registry(): ClusterRegistry {
    return this.ctx.registry;
  }

  /** The nodes' latest reports. */
  get stats(): NodeStatsTable {
    return this.ctx.stats;
  }

  get events(): EventLog {
    return this.ctx.events;
  }

  get tenants(): TenantTable {
    return this.ctx.tenants;
  }

  get prices(): Prices {
    return this.ctx.prices;
  }

  /** Where clients reach the controller, once it listens. */
  get address(): string | null {
    return this.ctx.address;
  }

  /** The metadata servers the controller publishes placements to. */
  get metadataAddresses(): string[] {
    return this.ctx.metadata.addresses;
  }

  /** The autoscaler's policy, when it runs. */
  get autoscalerConfig(): AutoscalerConfig | undefined {
    return this.scaling.config;
  }

  get provisioner(): Provisioner | undefined {
    return this.options.provisioner;
  }

  /**
   * Loads the durable state (when there is a state folder), then serves. After a restart every job is back
   * with a fresh lease, and every placement is sent again to the metadata servers the controller knew.
   */
  async listen(port = 0, host = '127.0.0.1'): Promise<string> {
    const { ctx } = this;
    if (this.options.stateDir !== undefined) await this.recover(this.options.stateDir);
    if (this.options.defaultTenant !== false) await this.jobs.ensureDefaultTenant(defaultTenantKey(this.options.secret));
    ctx.address = advertisedAddress(await this.server.listen(host, port, this.options.tls), this.options.advertiseHost);
    ctx.startedAt = Date.now();
    let last = Date.now();
    const every = Math.min(1_000, Math.max(50, ctx.leaseMs / 4));
    this.leaseTimer = setInterval(() => {
      const now = Date.now();
      const stood = now - last - every;
      this.jobs.accrueCosts((now - last) / 1000);
      last = now;
      // The controller stood still (SIGSTOP, a paused VM, a long stall): nobody's reports or renewals could
      // reach it meanwhile, so the silence was its own. Nodes and leases get their time again from now; before,
      // an 8 s pause declared every node lost on resumption and moved replicated jobs onto one node.
      if (stood > Math.min(STOOD_STILL_MS, ctx.nodeTimeoutMs / 2)) this.resumedAfterStandingStill(now, stood);
      void this.jobs.collectExpired();
      this.nodeBook.checkLiveness(now);
      this.nodeBook.topUpShortJobs();
    }, every);
    if (this.options.autoscaler !== undefined) this.scaling.start(this.options.autoscaler);
    this.leaseTimer.unref();
    if (this.options.stateDir !== undefined) this.resumeTimer = setTimeout(() => void this.resumePending(), ctx.nodeTimeoutMs).unref();
    return ctx.address;
  }

  private resumedAfterStandingStill(now: number, stoodMs: number): void {
    const { ctx } = this;
    ctx.resumedAt = now;
    for (const job of ctx.registry.jobs.values()) job.leaseExpiresAt += stoodMs;
    ctx.logger.warn({ stoodMs }, 'the controller stood still: nodes and job leases get their time again from now');
  }

  async close(): Promise<void> {
    if (this.leaseTimer !== null) clearInterval(this.leaseTimer);
    if (this.resumeTimer !== null) clearTimeout(this.resumeTimer);
    this.scaling.stop();
    await this.ctx.spares.close();
    this.ctx.admin.close();
    this.ctx.metadata.close();
    await this.server.close(2_000);
    await this.ctx.store?.close();
  }

  private async recover(stateDir: string): Promise<void> {
    const { ctx } = this;
    const store = await ControllerStore.open(join(stateDir, 'controller.db'), (error) =>
      ctx.logger.error({ err: error }, 'writing job records to LevelDB failed: the journal keeps them, trying again in 1 s'),
    );
    ctx.store = store;
    const { jobs, nodes, metadata, tenants } = await store.load();
    for (const tenant of tenants) ctx.tenants.restore(tenant);
    const leaseExpiresAt = Date.now() + ctx.leaseMs;
    for (const node of nodes) ctx.registry.nodes.set(node.id, node);
    for (const job of jobs) {
      // A record from before nodes' acknowledgements were kept (quotas.ts): its placement's nodes were told.
      const told = (job.overQuota as { toldEpoch?: number } | undefined)?.toldEpoch !== undefined;
      if (told && job.limitedOn === undefined) job.limitedOn = [...membersOf(job)].sort();
      // Lost members marked in the placement (members.ts `withLostMarks`): a record from before the mark existed.
      ctx.registry.jobs.set(job.id, { ...job, leaseExpiresAt, placement: withLostMarks(job.placement, job.lostNodes, job.rejoined) });
      ctx.metadata.restore(job.id, job.metadata);
    }
    for (const address of metadata) ctx.metadata.connect(address);
    // Nodes first, as any placement change (placement-publisher.ts): the last process may have died after it
    // persisted a placement and before it told them. Each announcement names the incarnation recorded, so a
    // node that restarted meanwhile refuses it (and registers, which ends that incarnation's membership).
    const republished = await Promise.allSettled(
      jobs.map(async ({ id }) => {
        const job = ctx.registry.jobs.get(id)!;
        await ctx.publisher.announce(job, membersOf(job));
        await ctx.metadata.publish(job.placement).catch((error: unknown) => {
          ctx.failures.record('set_placement', error, { job: job.id }, 'the metadata servers get it when they register again');
          throw error;
        });
      }),
    );
    const failed = republished.filter((r) => r.status === 'rejected').length;
    ctx.logger.info({ jobs: jobs.length, nodes: nodes.length, metadata: metadata.length, failed }, 'state recovered');
  }

  /**
   * After a restart, once every live node has had time to report (and so to be reconciled): the copies of
   * restorations and drains the previous process left unfinished, and the drains of nodes still draining.
   */
  private async resumePending(): Promise<void> {
    const { ctx } = this;
    await this.nodeBook.resumeRestorations();
    for (const job of [...ctx.registry.jobs.values()]) {
      if (job.pending === undefined) continue;
      ctx.logger.info({ job: job.id, pending: job.pending }, 'resuming copies left unfinished');
      await this.placements
        .change(job.id, () => this.placements.finishCopies(job.id))
        .catch((error: unknown) => {
          ctx.logger.error({ err: error, job: job.id }, 'resuming copies failed');
          ctx.events.add('copy-failed', `copies of ${job.id} not finished after a restart: ${(error as Error).message}`, {
            details: { job: job.id },
          });
        });
    }
    for (const node of [...ctx.registry.nodes.values()]) {
      if (node.draining !== true || node.lost === true) continue;
      ctx.logger.info({ node: node.id }, 'resuming a drain left unfinished');
      await this.scaling.removeNode(node.id, 'a drain left unfinished by a controller restart').catch((error: unknown) => {
        ctx.logger.error({ err: error, node: node.id }, 'resuming the drain failed');
      });
    }
  }

  // Jobs and tenants (jobs.ts).

  /** Registers a job for `tenant` (the caller has checked its key): admission, allocation, then publishing. */
  registerJob(name: string, hints: JobHints, tenant: string = DEFAULT_TENANT): Promise<RegisterJobReply> {
    return this.jobs.registerJob(name, hints, tenant);
  }

  /** Deletes the job's data on every node it was placed on, its placement everywhere, and its record. */
  deregisterJob(jobId: string): Promise<void> {
    return this.jobs.deregisterJob(jobId);
  }

  /** The jobs a tenant has now (records from before tenants belong to the default tenant). */
  jobsOf(tenant: string): JobRecord[] {
    return this.jobs.jobsOf(tenant);
  }

  tenantInfo(tenant: TenantRecord): { name: string; quotaBytes: number; maxJobs: number; jobs: number; reservedBytes: number } {
    return this.jobs.tenantInfo(tenant);
  }

  /** Adds a tenant and returns its key (shown once: the controller keeps its hash). */
  addTenant(
    name: string,
    limits: { quotaBytes?: number | undefined; maxJobs?: number | undefined } = {},
  ): Promise<{ tenant: TenantRecord; key: string }> {
    return this.jobs.addTenant(name, limits);
  }

  /** Removes a tenant: its key stops working, and its jobs are deregistered (every byte deleted). */
  removeTenant(name: string): Promise<number> {
    return this.jobs.removeTenant(name);
  }

  // Nodes, placements and scaling (nodes.ts, placement-changes.ts, scaling.ts).

  registerNode(node: NodeInfo): Promise<string> {
    return this.nodeBook.registerNode(node);
  }

  registerMetadata(address: string): Promise<void> {
    return this.placements.registerMetadata(address);
  }

  /** Whether the copies a loss of `nodeId` (or of its earlier incarnation) called for are still being restored. */
  isRecovering(nodeId: string): boolean {
    return this.nodeBook.isRecovering(nodeId);
  }

  /** A job's node answered FULL: a new placement generation with room (placement-changes.ts). */
  growJob(jobId: string, fullNodeId: string, epoch: number, asked: 'by-client' | 'by-admin' = 'by-client'): Promise<WirePlacement> {
    return this.placements.growJob(jobId, fullNodeId, epoch, asked);
  }

  /** Moves every job off the node (which takes nothing new from now on); throws when the others lack room. */
  drainNode(nodeId: string): Promise<DrainResult> {
    return this.placements.drainNode(nodeId);
  }

  /** Forgets a node (drained, or gone for good): no placement may still name it. */
  forgetNode(nodeId: string): Promise<void> {
    return this.nodeBook.forgetNode(nodeId);
  }

  /** Asks the provisioner for one more node of `tier`; it registers itself when it is up. */
  launchNode(tier: Tier, reason: string, details?: Record<string, number | string>): Promise<void> {
    return this.scaling.launchNode(tier, reason, details);
  }

  /** Drains a node, then has the provisioner stop it and forgets it. */
  removeNode(nodeId: string, reason: string): Promise<DrainResult> {
    return this.scaling.removeNode(nodeId, reason);
  }

  /** Each placeable node of a tier, as the autoscaler sees it: fractions of what the node declared. */
  nodeLoads(tier: Tier): NodeLoad[] {
    return nodeLoads(this.ctx, tier);
  }

  // ConsoleBackend (console-backend.ts).

  clusterView(): ClusterView {
    const { ctx } = this;
    return {
      controller: ctx.address,
      metadata: ctx.metadata.addresses,
      nodes: [...ctx.registry.nodes.values()],
      jobs: ctx.registry.jobs.size,
      prices: ctx.prices,
      autoscaler: this.scaling.config ?? null,
    };
  }

  *nodeFigures(): Iterable<NodeStats | undefined> {
    for (const id of this.ctx.registry.nodes.keys()) yield this.ctx.stats.get(id);
  }

  nodeViews(): NodeView[] {
    const isSpare = (id: string) => this.ctx.spares.has(id);
    return this.ctx.registry
      .nodeStates()
      .map((node) => nodeView(node, this.ctx.stats.get(node.id), this.nodeBook.isRecovering(node.id), isSpare));
  }

  jobViews(): JobView[] {
    const { stats, prices } = this.ctx;
    const now = Date.now();
    return [...this.ctx.registry.jobs.values()].map((job) => jobView(job, stats.jobUsage(job.id), stats.jobRates(job.id, now), prices));
  }

  jobDetail(jobId: string): JobDetail | undefined {
    const { stats, prices } = this.ctx;
    const job = this.ctx.registry.jobs.get(jobId);
    return job === undefined
      ? undefined
      : jobDetail(
          job,
          stats.jobUsage(jobId),
          stats.jobRates(jobId),
          prices,
          (nodeId) => stats.get(nodeId)?.jobs.get(jobId) ?? 0,
          redisAccess(job, this.ctx.registry.nodes, this.options.tls !== undefined),
        );
  }

  redisCredentials(jobId: string): RedisCredentials | undefined {
    const { ctx } = this;
    const job = ctx.registry.jobs.get(jobId);
    if (job === undefined) return undefined;
    // A data token like the ticket's (the controller keeps none it handed out: it signs a fresh one), with the
    // lifetime of the tokens drivers get.
    const expiresAt = ctx.tokensExpireBy();
    const url = redisUrlOf(
      redisAccess(job, ctx.registry.nodes, this.options.tls !== undefined),
      job.id,
      signToken(ctx.secret, job.id, expiresAt),
    );
    if (url === null)
      throw new SatchelError(
        'UNAVAILABLE',
        `none of the nodes of job ${job.id} has a RESP front door (storage nodes started without --resp-port)`,
      );
    ctx.events.add('job-token-issued', `${job.name}: its Redis URL (a data token) handed out through the console`, {
      details: { job: job.id, expiresAt: new Date(expiresAt).toISOString() },
    });
    return { url, expiresAt: new Date(expiresAt).toISOString() };
  }

  clusterEvents(after = 0): ClusterEvent[] {
    return this.ctx.events.since(after);
  }

  onClusterEvent(listener: (event: ClusterEvent) => void): () => void {
    return this.ctx.events.subscribe(listener);
  }

  nodeCallFailures(): ReadonlyMap<ControlOp, number> {
    return this.ctx.failures.byOp;
  }

  spareJobs(): { ready: number; taken: number; missed: number } {
    const { spares } = this.ctx;
    return { ready: spares.size, taken: spares.taken, missed: spares.missed };
  }

  hasNode(nodeId: string): boolean {
    return this.ctx.registry.nodes.has(nodeId);
  }

  canLaunchNodes(): boolean {
    return this.options.provisioner !== undefined;
  }
}

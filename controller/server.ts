import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { Logger } from 'pino';
import {
  ADMIN_SUBJECT,
  advertisedAddress,
  clientTlsOf,
  SatchelError,
  encodeTicket,
  isHostPort,
  signDriverToken,
  signToken,
  verifyDriverToken,
  verifyToken,
  type ControllerMethods,
  type JobHints,
  type JobUsage,
  type MetadataMethods,
  type NodeInfo,
  type RegisterJobReply,
  type ServerTls,
  type ServiceImpl,
  type Tier,
  TIERS,
  type WirePlacement,
  type WirePlacementNode,
} from '../proto/index.ts';
import {
  CONTROLLER_SERVICE,
  GRPC_SERVER_OPTIONS,
  ControlClient,
  METADATA_SERVICE,
  addService,
  bindServer,
  grpc,
} from '../proto/grpc.ts';
import { allocateJob, growJob as growAllocation, rightsizeReservation, type NodeState } from './allocation.ts';
import { Autoscaler, DEFAULT_AUTOSCALER, type AutoscalerConfig, type NodeLoad } from './autoscaler.ts';
import { accrueCost, DEFAULT_PRICES, type Prices } from './cost.ts';
import { EventLog } from './events.ts';
import { isLostMember, membersOf, nodesOf, reconcileNode } from './members.ts';
import { migrateJob, type MigrationHost, type MigrationResult } from './migration.ts';
import { PlacementPublisher } from './placement-publisher.ts';
import { rereplicateJob, repairCopies, type ReplicationResult } from './replication.ts';
import type { Provisioner } from './provisioner.ts';
import { NodeAdmin } from './node-admin.ts';
import { NodeStatsTable } from './node-stats.ts';
import { ControllerStore } from './store.ts';
import { DEFAULT_TENANT, TenantTable, defaultTenantKey, type TenantRecord } from './tenants.ts';
import { ClusterRegistry, type JobRecord, type NodeRecord } from './registry.ts';
import { NodeConnection } from '../proto/index.ts';

export interface ControllerOptions {
  secret: Uint8Array;
  logger: Logger;
  /**
   * Serve gRPC over TLS with `cert` and `key`; the controller's own calls (to metadata servers, and to nodes
   * for admin operations, migration and replication) check certificates against `ca`, and tickets carry `ca`
   * so functions do the same (PEM).
   */
  tls?: ServerTls;
  /** Where the controller keeps its state (LevelDB); in memory only when omitted. */
  stateDir?: string;
  /** A job whose driver does not renew within this long is collected like a deregistered one. */
  leaseMs?: number;
  /** The host others should dial (tickets carry it) when it is not the one bound: a pod binding 0.0.0.0. */
  advertiseHost?: string;
  /** What starts and stops storage nodes (deploy/ hands it in); without one, nodes are added by hand. */
  provisioner?: Provisioner;
  /** Run the autoscaler with this policy (needs a provisioner). */
  autoscaler?: AutoscalerConfig;
  /** USD per GB-month by tier, for job costs (DEFAULT_PRICES otherwise). */
  prices?: Prices;
  /**
   * A node not heard from (reports come every second) for this long is lost: out of new placements, and its
   * replicated jobs get their copies restored on the others (controller/replication.ts). Default 5000 ms.
   */
  nodeTimeoutMs?: number;
  /**
   * How long a job token (and the ticket carrying it) opens the job's data: 24 h by default. A driver's lease
   * renewals fetch fresh tickets, so a job outlives its tokens; a leaked ticket does not outlive its lifetime.
   */
  tokenTtlMs?: number;
  /**
   * Bytes a job may hold, every copy counted (none when omitted). Checked on the nodes' reports: a job that
   * reaches it gets FULL for PUTs and INCRs on every node and no growth, until deletes bring it back under.
   */
  jobQuotaBytes?: number;
  /**
   * Make the default tenant at start, its key derived from the secret (tenants.ts `defaultTenantKey`: what
   * `satchel up` writes to cluster.json as `tenantKey`). True by default; false: jobs only for tenants an admin
   * added (`satchel tenant add`).
   */
  defaultTenant?: boolean;
}

/**
 * Placement generations a job may have: each growth adds one, and a client may look in every one for a key. 16
 * is 15 growths (each adds at least the job's reservation again) and a ticket of a few KB.
 */
export const MAX_GENERATIONS = 16;
/** How long a GrowJob waits for the full node to report the job's FULL (its report comes at once: node side). */
const FULL_REPORT_WAIT_MS = 2_000;
/** The largest `functions` hint: more than any node would take connections from (1,024 per job per node). */
const MAX_FUNCTIONS_HINT = 1_000_000;

export const DEFAULT_NODE_TIMEOUT_MS = 5_000;
/**
 * A node's lease, as a share of the node timeout: a node that has not had a report answered for this long stops
 * serving replicated jobs (storage-node/README.md, "Leases"), before the controller, after the whole timeout,
 * declares it lost and restores those jobs' copies elsewhere. Both count from the same report (the node from
 * sending it, the controller from receiving it), so any share below 1 is safe; the rest is a margin for the
 * two clocks' rates and for a slow answer. 0.6 fenced nodes of an in-process test cluster under load.
 */
export const LEASE_SHARE_OF_NODE_TIMEOUT = 0.8;
/** What a restarted controller gives nodes beyond the node timeout to report for the first time. */
const RESTART_GRACE_MS = 3_000;
export const DEFAULT_TOKEN_TTL_MS = 24 * 3600_000;

/** Default job lease: drivers renew every third of it (RegisteredJob does so on its own). */
export const DEFAULT_LEASE_MS = 60_000;

const TIER_NAMES: ReadonlySet<string> = new Set(TIERS);

/** What draining a node moved, and how long it took. */
export interface DrainResult {
  node: string;
  jobs: number;
  keys: number;
  bytes: number;
  seconds: number;
}

/**
 * The controller: job registry, allocation, and the gRPC surface clients, nodes and metadata servers call.
 * It is never on the per-operation path.
 */
export class Controller {
  readonly registry = new ClusterRegistry();
  readonly stats = new NodeStatsTable();
  readonly events = new EventLog();
  readonly tenants = new TenantTable();
  private autoscaler: Autoscaler | null = null;
  /**
   * Nodes drained and removed, by tier: a process still running under that id may not register again (without a
   * provisioner nobody stopped it). A launch in the tier clears them: a StatefulSet reuses its pod names.
   */
  private readonly retiredNodes = new Map<string, string>();
  /** Jobs whose unfinished copies are to be tried again (`finishCopiesLater`): one timer each. */
  private readonly finishingLater = new Set<string>();
  private readonly server = new grpc.Server(GRPC_SERVER_OPTIONS);
  private readonly admin: NodeAdmin;
  private readonly publisher: PlacementPublisher;
  private readonly metadataClients = new Map<string, ControlClient<MetadataMethods>>();
  private readonly adminToken: string;
  private readonly leaseMs: number;
  private store: ControllerStore | null = null;
  private leaseTimer: NodeJS.Timeout | null = null;
  private resumeTimer: NodeJS.Timeout | null = null;
  readonly prices: Prices;
  /** Placement changes of a job (growth, migration) run one at a time, in order. */
  private readonly placementChanges = new Map<string, Promise<unknown>>();
  /** Jobs being registered: announced to their nodes, not yet in the registry (nor dropped by `reconcile`). */
  private readonly registering = new Map<string, JobRecord>();
  /** Restorations a node's loss started, by node: its next report waits for them (`nodeBack`). */
  private readonly recovering = new Map<string, Promise<void>>();
  address: string | null = null;
  /**
   * When the controller started serving: nodes are given until a node timeout after it to report (a restarted
   * controller hears from none before it listens, and its recovery may take seconds).
   */
  private startedAt = Date.now();

  constructor(private readonly options: ControllerOptions) {
    this.admin = new NodeAdmin(options.secret, clientTlsOf(options.tls), this.adminTimeoutMs);
    this.adminToken = signToken(options.secret, ADMIN_SUBJECT);
    this.publisher = new PlacementPublisher({
      admin: this.admin,
      nodes: this.registry.nodes,
      logger: options.logger,
      publish: (placement) => this.publishPlacement(placement),
      persist: async (job) => {
        // Only jobs still registered: a deregistration racing a placement change must not bring the record back.
        if (this.registry.jobs.get(job.id) === job || this.registering.get(job.id) === job) await this.store?.putJob(job);
      },
      tokensExpireBy: () => Date.now() + (options.tokenTtlMs ?? DEFAULT_TOKEN_TTL_MS),
    });
    this.leaseMs = options.leaseMs ?? DEFAULT_LEASE_MS;
    this.prices = options.prices ?? DEFAULT_PRICES;
    const impl: ServiceImpl<ControllerMethods> = {
      RegisterJob: async ({ name, hints, key }) => {
        const tenant = this.tenants.byKey(key);
        if (tenant === null) throw new SatchelError('UNAUTHORIZED', 'registering a job needs a tenant key (cluster.json `tenantKey`, or `satchel tenant add`)');
        return this.registerJob(name, hints ?? {}, tenant.name);
      },
      DeregisterJob: async ({ jobId, token }) => {
        this.authorizeDriver(token, jobId);
        await this.deregisterJob(jobId);
        return {};
      },
      RenewLease: async ({ jobId, token }) => {
        // The driver's token only: a function's (data) token renewed here would outlive its own lifetime.
        this.authorizeDriver(token, jobId);
        const job = this.registry.jobs.get(jobId);
        if (job === undefined) throw new SatchelError('NO_SUCH_JOB', `no job ${jobId}`);
        job.leaseExpiresAt = Date.now() + this.leaseMs;
        return { leaseMs: this.leaseMs, ticket: this.ticketFor(job).ticket };
      },
      GrowJob: async ({ jobId, token, fullNodeId, epoch }) => {
        // A function's data token may ask too (its PUT got FULL), but growth is granted only once the node
        // reported that FULL itself (`growJobNow`): a token cannot grow a job that has room.
        if (verifyDriverToken(this.options.secret, token) !== jobId) this.authorize(token, jobId);
        return this.growJob(jobId, fullNodeId, epoch);
      },
      AddTenant: async ({ token, name, quotaBytes, maxJobs }) => {
        this.authorize(token, null);
        const { tenant, key } = await this.addTenant(name, { quotaBytes: quotaBytes || undefined, maxJobs: maxJobs || undefined });
        return { tenant: this.tenantInfo(tenant), key };
      },
      ListTenants: async ({ token }) => {
        this.authorize(token, null);
        return { tenants: this.tenants.list().map((t) => this.tenantInfo(t)) };
      },
      RemoveTenant: async ({ token, name }) => {
        this.authorize(token, null);
        return { jobsDeregistered: await this.removeTenant(name) };
      },
      RegisterNode: async ({ node, token }) => {
        this.authorize(token, null);
        return { nodeId: await this.registerNode(node), leaseMs: this.nodeLeaseMs };
      },
      RegisterMetadata: async ({ address, token }) => {
        this.authorize(token, null);
        await this.registerMetadata(address);
        return {};
      },
      ReportNode: async (report) => {
        this.authorize(report.token, null);
        // A NaN or infinite figure would poison reservations and the autoscaler's means: refused whole.
        const figures = [report.cpu, report.bytesIn, report.bytesOut, report.ops, report.used, report.capacity, report.latencyP50Us ?? 0, report.latencyP99Us ?? 0, ...report.jobs.map((j) => j.bytes)];
        if (figures.some((n) => typeof n !== 'number' || !Number.isFinite(n) || n < 0)) {
          throw new SatchelError('BAD_REQUEST', 'a node report carries only finite, non-negative numbers');
        }
        // A removed node still running (no provisioner stopped it) is not asked to register again.
        if (this.retiredNodes.has(report.nodeId)) return { unknown: false };
        const reporting = this.registry.nodes.get(report.nodeId);
        if (reporting === undefined) return { unknown: true };
        // Another incarnation than the one registered: it registers (and so is seen as a restart) first.
        if ((report.bootId ?? '') !== (reporting.bootId ?? '')) return { unknown: true };
        this.stats.record(report);
        // Before the answer, which renews the node's lease: a node back from a loss must first drop what moved
        // on without it, and any node learns what it missed (an announcement that failed, say).
        if (reporting.lost === true) await this.nodeBack(reporting, report.jobs);
        else await this.reconcile(reporting, report.jobs);
        // Right away rather than on a timer: a reservation trails use by at most one report (measured in
        // bench jobs, a 1 s timer on top of the 1 s reports let it trail by up to 2 s while sorts wrote).
        void this.rightsize();
        void this.enforceQuotas();
        return { unknown: false, leaseMs: this.nodeLeaseMs };
      },
      GetCluster: async ({ token }) => {
        // A tenant key only learns that it is valid (Satchel.connect checks it), and its own job count.
        const tenant = this.tenants.byKey(token);
        if (tenant !== null) return { nodes: [], metadata: [], jobs: this.jobsOf(tenant.name).length };
        const subject = typeof token === 'string' ? verifyToken(this.options.secret, token) : null;
        if (subject?.scope !== 'admin' && subject?.scope !== 'viewer') throw new SatchelError('UNAUTHORIZED', 'the cluster is shown to the admin and viewer tokens, and a tenant key');
        return { nodes: [...this.registry.nodes.values()], metadata: this.metadataAddresses, jobs: this.registry.jobs.size };
      },
    };
    addService(this.server, CONTROLLER_SERVICE, impl, (method, error) => options.logger.error({ err: error, method }, 'handler failed'));
  }

  /**
   * How long the controller waits for a node's answer (admin calls, copies): the node timeout, within 1–10 s. A
   * node that does not answer within it is as good as lost, and a frozen one must not hold a placement change up
   * for longer (placement-publisher.ts announces to every member).
   */
  private get adminTimeoutMs(): number {
    return Math.min(10_000, Math.max(1_000, this.nodeTimeoutMs));
  }

  /** Whether the copies a loss of `nodeId` (or of its earlier incarnation) called for are still being restored. */
  isRecovering(nodeId: string): boolean {
    return this.recovering.has(nodeId);
  }

  /** How long a node may serve replicated jobs after a report it sent was answered. */
  private get nodeLeaseMs(): number {
    return Math.floor((this.options.nodeTimeoutMs ?? DEFAULT_NODE_TIMEOUT_MS) * LEASE_SHARE_OF_NODE_TIMEOUT);
  }

  /** With TLS, what tickets carry: the CA functions check every server against. */
  private get ticketTls(): { tls?: { ca: string } } {
    const ca = this.options.tls?.ca;
    return ca === undefined ? {} : { tls: { ca: Buffer.isBuffer(ca) ? ca.toString('utf8') : ca } };
  }

  /** The metadata servers the controller publishes placements to. */
  get metadataAddresses(): string[] {
    return [...this.metadataClients.keys()];
  }

  /**
   * Loads the durable state (when there is a state folder), then serves. After a restart every job is back
   * with a fresh lease, and every placement is sent again to the metadata servers the controller knew.
   */
  async listen(port = 0, host = '127.0.0.1'): Promise<string> {
    if (this.options.stateDir !== undefined) await this.recover(this.options.stateDir);
    if (this.options.defaultTenant !== false) await this.ensureDefaultTenant(defaultTenantKey(this.options.secret));
    this.address = advertisedAddress(await bindServer(this.server, host, port, this.options.tls), this.options.advertiseHost);
    this.startedAt = Date.now();
    let last = Date.now();
    this.leaseTimer = setInterval(() => {
      const now = Date.now();
      for (const job of this.registry.jobs.values()) accrueCost(job, (id) => this.registry.nodes.get(id)?.tier, (now - last) / 1000);
      last = now;
      void this.collectExpired();
      this.checkLiveness(now);
    }, Math.min(1_000, Math.max(50, this.leaseMs / 4)));
    if (this.options.autoscaler !== undefined) this.startAutoscaler(this.options.autoscaler);
    this.leaseTimer.unref();
    if (this.options.stateDir !== undefined) this.resumeTimer = setTimeout(() => void this.resumePending(), this.nodeTimeoutMs).unref();
    return this.address;
  }

  private get nodeTimeoutMs(): number {
    return this.options.nodeTimeoutMs ?? DEFAULT_NODE_TIMEOUT_MS;
  }

  /**
   * After a restart, once every live node has had time to report (and so to be reconciled): the copies of
   * restorations and drains the previous process left unfinished, and the drains of nodes still draining.
   */
  private async resumePending(): Promise<void> {
    // A replicated job still naming a node whose process died with its data: the previous controller recorded
    // the loss but died before the restoration's placement was (a lost member is never announced the job again).
    for (const job of [...this.registry.jobs.values()]) {
      if ((job.placement.replicas ?? 1) === 1) continue;
      for (const id of job.lostNodes ?? []) {
        const named = job.placement.generations.flatMap((g) => g.nodes).find((n) => n.id === id);
        if (named === undefined) continue;
        const node: NodeRecord = { tier: job.tier, capacity: 0, bandwidth: 0, registeredAt: 0, ...this.registry.nodes.get(id), id, address: named.address };
        this.options.logger.info({ job: job.id, node: id }, 'restoring copies of a node lost before a restart');
        await this.changePlacement(job.id, () => this.restoreCopies(job.id, node)).catch((error: unknown) => {
          this.options.logger.error({ err: error, job: job.id, node: id }, 'restoring copies failed');
        });
      }
    }
    for (const job of [...this.registry.jobs.values()]) {
      if (job.pending === undefined) continue;
      this.options.logger.info({ job: job.id, pending: job.pending }, 'resuming copies left unfinished');
      await this.changePlacement(job.id, () => this.finishCopies(job.id)).catch((error: unknown) => {
        this.options.logger.error({ err: error, job: job.id }, 'resuming copies failed');
        this.events.add('copy-failed', `copies of ${job.id} not finished after a restart: ${(error as Error).message}`, { details: { job: job.id } });
      });
    }
    for (const node of [...this.registry.nodes.values()]) {
      if (node.draining !== true || node.lost === true) continue;
      this.options.logger.info({ node: node.id }, 'resuming a drain left unfinished');
      await this.removeNode(node.id, 'a drain left unfinished by a controller restart').catch((error: unknown) => {
        this.options.logger.error({ err: error, node: node.id }, 'resuming the drain failed');
      });
    }
  }

  /**
   * Finishes the copies a job's record says are pending (a controller restarted during them): a drain copies
   * the drained node's keys and moves the job off it, as `migrateJobOff`; a restoration copies every key to
   * every holder it lacks (replication.ts `repairCopies`, idempotent). Then the record is cleared.
   */
  private async finishCopies(jobId: string): Promise<void> {
    const job = this.registry.jobs.get(jobId);
    if (job?.pending === undefined) return;
    if (job.pending.kind === 'drain') {
      const node = this.registry.nodes.get(job.pending.node);
      if (node !== undefined && nodesOf(job.placement).has(node.id)) {
        await this.migrateJobOff(jobId, node);
        return;
      }
    } else if (!(await this.repair(job))) return;
    job.pending = undefined;
    await this.publisher.apply(job, job.placement);
  }

  /**
   * Makes every copy the job's placement wants exist (replication.ts `repairCopies`): what a change that failed
   * half-way, or a controller that died during one, left undone. True when done; false when a node could not be
   * reached, and then tried again (`finishCopies`) a node timeout later, the job's copies still pending.
   */
  private async repair(job: JobRecord): Promise<boolean> {
    const host = this.placementHost(job);
    try {
      // The node whose loss the copies are for gives what it still holds, if it answers (replication.ts).
      const lost = job.pending?.kind === 'restore' ? this.registry.nodes.get(job.pending.node) : undefined;
      const result = await repairCopies(host, job.placement, lost);
      this.options.logger.info({ job: job.id, epoch: job.placement.epoch, ...result }, 'copies repaired');
      this.events.add('copies-restored', `${result.copies} copies (${result.bytes} bytes) of ${job.id} made by a repair${result.skipped ? `; ${result.skipped} unreachable, retried` : ''}`, {
        details: { copies: result.copies, bytes: result.bytes, keys: result.keys, skipped: result.skipped ?? 0 },
      });
      if ((result.skipped ?? 0) === 0) return true;
      job.pending = { kind: 'restore', node: job.pending?.node ?? '' };
      this.finishCopiesLater(job.id);
      return false;
    } finally {
      host.close();
    }
  }

  async close(): Promise<void> {
    if (this.leaseTimer !== null) clearInterval(this.leaseTimer);
    if (this.resumeTimer !== null) clearTimeout(this.resumeTimer);
    this.autoscaler?.stop();
    this.admin.close();
    for (const client of this.metadataClients.values()) client.close();
    await new Promise<void>((resolve) => {
      this.server.tryShutdown(() => resolve());
      setTimeout(() => this.server.forceShutdown(), 2_000).unref();
    });
    await this.store?.close();
  }

  private async recover(stateDir: string): Promise<void> {
    this.store = await ControllerStore.open(join(stateDir, 'controller.db'));
    const { jobs, nodes, metadata, tenants } = await this.store.load();
    for (const tenant of tenants) this.tenants.restore(tenant);
    const leaseExpiresAt = Date.now() + this.leaseMs;
    for (const node of nodes) this.registry.nodes.set(node.id, node);
    for (const job of jobs) this.registry.jobs.set(job.id, { ...job, leaseExpiresAt });
    for (const address of metadata) {
      this.metadataClients.set(address, new ControlClient<MetadataMethods>(METADATA_SERVICE, address, undefined, clientTlsOf(this.options.tls)));
    }
    // Nodes first, as any placement change (placement-publisher.ts): the last process may have died after it
    // persisted a placement and before it told them. Each announcement names the incarnation recorded, so a
    // node that restarted meanwhile refuses it (and registers, which ends that incarnation's membership).
    const republished = await Promise.allSettled(
      jobs.map(async (job) => {
        await this.publisher.announce(this.registry.jobs.get(job.id)!, membersOf(this.registry.jobs.get(job.id)!));
        await this.publishPlacement(job.placement);
      }),
    );
    const failed = republished.filter((r) => r.status === 'rejected').length;
    this.options.logger.info({ jobs: jobs.length, nodes: nodes.length, metadata: metadata.length, failed }, 'state recovered');
  }

  /** Moves each job's reservation toward what its nodes report it holds (`rightsizeReservation`). */
  private async rightsize(): Promise<void> {
    for (const job of this.registry.jobs.values()) {
      const usage = this.stats.jobUsage(job.id);
      const reservation = rightsizeReservation(job.reservation, usage);
      if (reservation === job.reservation) continue;
      this.options.logger.info({ job: job.id, usage, from: job.reservation, to: reservation }, 'reservation resized');
      job.reservation = reservation;
      await this.store?.putJob(job).catch((error: unknown) => this.options.logger.error({ err: error }, 'persisting job failed'));
    }
  }

  /**
   * Each job against the byte quota, from what its nodes report: one that reached it is told to every node of
   * its placement (again when the placement changes), and told again when deletes bring it back under.
   */
  private async enforceQuotas(): Promise<void> {
    // Every node report calls this: with no quota anywhere and no job held back, there is nothing to sum.
    const anyOver = [...this.registry.jobs.values()].some((job) => job.overQuota !== undefined);
    if (this.options.jobQuotaBytes === undefined && !this.tenants.hasQuotas() && !anyOver) return;
    const jobQuota = this.options.jobQuotaBytes ?? Infinity;
    // A tenant's quota is on what its jobs reserve; reservations follow use (rightsizing), so what its jobs hold
    // is held to it here, all its jobs stopped together once they hold it between them.
    const tenantUsage = new Map<string, number>();
    const usages = new Map<string, number>();
    for (const job of this.registry.jobs.values()) {
      const usage = this.stats.jobUsage(job.id);
      usages.set(job.id, usage);
      const tenant = job.tenant ?? DEFAULT_TENANT;
      tenantUsage.set(tenant, (tenantUsage.get(tenant) ?? 0) + usage);
    }
    for (const job of this.registry.jobs.values()) {
      const usage = usages.get(job.id) ?? 0;
      const tenantQuota = this.tenants.get(job.tenant ?? DEFAULT_TENANT)?.quotaBytes ?? Infinity;
      const quota = usage >= jobQuota ? jobQuota : tenantQuota;
      const over = usage >= jobQuota || (tenantUsage.get(job.tenant ?? DEFAULT_TENANT) ?? 0) >= tenantQuota;
      if (!over && job.overQuota === undefined) continue;
      if (!over && job.overQuota === undefined) continue;
      if (over && job.overQuota?.toldEpoch === job.placement.epoch) continue;
      if (over && job.overQuota === undefined) {
        this.options.logger.warn({ job: job.id, usage, quota }, 'job reached its byte quota');
        this.events.add('quota-reached', `${job.id} holds ${usage} bytes, its quota is ${quota}: PUTs refused until it deletes`, { details: { usage, quota } });
      }
      job.overQuota = over ? { since: job.overQuota?.since ?? Date.now(), toldEpoch: job.placement.epoch } : undefined;
      if (!over) this.options.logger.info({ job: job.id, usage, quota }, 'job back under its byte quota');
      const addresses = new Set(job.placement.generations.flatMap((g) => g.nodes.map((n) => n.address)));
      await Promise.allSettled([...addresses].map((address) => this.admin.limitJob(address, job.id, over)));
    }
  }

  /** Jobs whose lease lapsed are collected like deregistered ones: every byte deleted. */
  private async collectExpired(): Promise<void> {
    const now = Date.now();
    for (const job of [...this.registry.jobs.values()]) {
      if (job.leaseExpiresAt > now) continue;
      this.options.logger.info({ job: job.id, name: job.name }, 'lease expired: collecting job');
      await this.deregisterJob(job.id).catch((error: unknown) => this.options.logger.error({ err: error, job: job.id }, 'collecting job failed'));
    }
  }

  /** Registers a job for `tenant` (the caller has checked its key): admission, allocation, then publishing. */
  async registerJob(name: string, hints: JobHints, tenant: string = DEFAULT_TENANT): Promise<RegisterJobReply> {
    if (typeof name !== 'string' || name.length === 0 || name.length > 200) {
      throw new SatchelError('BAD_REQUEST', 'job name must be 1 to 200 characters');
    }
    checkHints(hints);
    this.admitHints(hints);
    if (this.metadataClients.size === 0) throw new SatchelError('UNAVAILABLE', 'no metadata server has registered yet');
    const id = this.newJobId(name);
    const allocation = allocateJob(hints, this.targetNodes());
    this.admitTenant(tenant, allocation.reservation, true);
    const replicas = hints.replicas ?? 1;
    // Refused rather than run with fewer copies than asked for: a replicated job must never silently have one.
    if (replicas > 1 && allocation.nodes.length < replicas) {
      throw new SatchelError('UNAVAILABLE', `${replicas} replicas need ${replicas} storage nodes; the cluster has ${allocation.nodes.length} to place on`);
    }
    const placement: WirePlacement = {
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
      leaseExpiresAt: Date.now() + this.leaseMs,
      placement: { ...placement, epoch: 0, generations: [] },
    };
    // Known as registering before any node hears of it: a node reporting it meanwhile is not told to drop it.
    this.registering.set(id, job);
    try {
      await this.publisher.apply(job, placement);
      this.registry.jobs.set(id, job);
    } catch (error) {
      // Whatever part of it was made is undone: nodes, metadata servers, the record.
      await Promise.allSettled([
        this.publisher.drop(id, nodesOf(placement)),
        ...[...this.metadataClients.values()].map((m) => m.call('DropPlacement', { jobId: id, token: this.adminToken })),
        this.store?.deleteJob(id),
      ]);
      throw error;
    } finally {
      this.registering.delete(id);
    }
    this.options.logger.info(
      { job: id, name, tier: job.tier, reason: job.reason, nodes: allocation.nodes.length, reservation: job.reservation },
      'job registered',
    );
    const { token, ticket } = this.ticketFor(job);
    return { jobId: id, token, ticket, leaseMs: this.leaseMs, placement, driverToken: signDriverToken(this.options.secret, id) };
  }

  /**
   * A job id no job has now: 48 random bits after the name's slug. Ids are never reused knowingly: a node still
   * remembers a deregistered id (refusing its tokens) until they expire.
   */
  private newJobId(name: string): string {
    const slug = name.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 40) || 'job';
    for (;;) {
      const id = `${slug}-${randomBytes(6).toString('hex')}`;
      if (!this.registry.jobs.has(id) && !this.registering.has(id)) return id;
    }
  }

  /** A token for the job that expires one token lifetime from now, and a ticket carrying it. */
  private ticketFor(job: JobRecord): { token: string; ticket: string } {
    const token = signToken(this.options.secret, job.id, Date.now() + (this.options.tokenTtlMs ?? DEFAULT_TOKEN_TTL_MS));
    const ticket = encodeTicket({ v: 1, job: job.id, token, metadata: this.metadataAddresses, controller: this.address!, placement: job.placement, ...this.ticketTls });
    return { token, ticket };
  }

  /** Deletes the job's data on every node it was placed on, its placement everywhere, and its record. */
  async deregisterJob(jobId: string): Promise<void> {
    const job = this.registry.jobs.get(jobId);
    if (job === undefined) throw new SatchelError('NO_SUCH_JOB', `no job ${jobId}`);
    this.registry.jobs.delete(jobId);
    await this.store?.deleteJob(jobId);
    const results = await Promise.allSettled([
      // Nodes refuse the job's tokens until the last one handed out has expired, then forget it; a node lost
      // meanwhile is told when it reports again.
      this.publisher.drop(jobId, nodesOf(job.placement)),
      ...[...this.metadataClients.values()].map((m) => m.call('DropPlacement', { jobId, token: this.adminToken })),
    ]);
    const failed = results.filter((r) => r.status === 'rejected').map((r) => String((r as PromiseRejectedResult).reason));
    // A node that cannot be reached has lost the job's data with its memory; it refuses the job on return.
    if (failed.length > 0) this.options.logger.warn({ job: jobId, failed }, 'job deregistered; some members unreachable');
    else this.options.logger.info({ job: jobId }, 'job deregistered');
  }

  /**
   * A job's node answered FULL: add room (see `growJob` in allocation.ts) as a new placement generation,
   * newest first, so new keys go where there is room and reads fall back to the older generations. Calls are
   * serialized per job, and a caller whose placement is already out of date just gets the current one.
   */
  async growJob(jobId: string, fullNodeId: string, epoch: number, asked: 'by-client' | 'by-admin' = 'by-client'): Promise<WirePlacement> {
    const job = this.registry.jobs.get(jobId);
    if (job === undefined) throw new SatchelError('NO_SUCH_JOB', `no job ${jobId}`);
    if (job.placement.epoch > epoch) return job.placement;
    // Only a FULL the node itself reported (its report comes at once after one): no token can grow a job that
    // has room. Waited for outside the job's queue of placement changes, so a loop of such calls holds up none.
    // An admin (in-process: tests, tools) grows a job as it sees fit.
    const refusals = asked === 'by-admin' ? Infinity : await this.fullReported(jobId, fullNodeId);
    return this.changePlacement(jobId, () => this.growJobNow(jobId, fullNodeId, epoch, refusals));
  }

  private changePlacement<T>(jobId: string, change: () => Promise<T>): Promise<T> {
    const previous = this.placementChanges.get(jobId) ?? Promise.resolve();
    const next = previous.catch(() => {}).then(change);
    this.placementChanges.set(jobId, next);
    void next.finally(() => {
      if (this.placementChanges.get(jobId) === next) this.placementChanges.delete(jobId);
    }).catch(() => {});
    return next;
  }

  /**
   * Empties a node so it can be removed: no new job or growth lands on it from now on, and every job with data
   * there is migrated off it under new placement epochs (controller/migration.ts), one job at a time, while its
   * functions keep working. Throws (leaving the node draining, every key readable) when the others lack room.
   */
  async drainNode(nodeId: string): Promise<DrainResult> {
    const node = this.registry.nodes.get(nodeId);
    if (node === undefined) throw new SatchelError('BAD_REQUEST', `no node ${nodeId}`);
    const started = Date.now();
    node.draining = true;
    await this.store?.putNode(node);
    this.options.logger.info({ node: nodeId }, 'draining node');
    const result: DrainResult = { node: nodeId, jobs: 0, keys: 0, bytes: 0, seconds: 0 };
    for (const job of [...this.registry.jobs.values()]) {
      // A job whose data died with an earlier incarnation of the node has nothing here to move.
      if (!nodesOf(job.placement).has(nodeId) || isLostMember(job, nodeId)) continue;
      const moved = await this.changePlacement(job.id, () => this.migrateJobOff(job.id, node));
      if (moved === null) continue;
      result.jobs++;
      result.keys += moved.keys;
      result.bytes += moved.bytes;
    }
    result.seconds = (Date.now() - started) / 1000;
    this.options.logger.info({ ...result }, 'node drained');
    return result;
  }

  /**
   * Nodes a new job may be placed on: not draining, and not busier (CPU or network) than the autoscaler's band
   * while a cooler node of the same tier exists, so a node launched for load takes the new jobs. Allocation's
   * best fit looks at room only and would otherwise keep packing new jobs onto the hot node.
   */
  private targetNodes(): NodeState[] {
    const high = this.options.autoscaler?.high ?? DEFAULT_AUTOSCALER.high;
    const nodes = this.registry.placeableNodes();
    const busy = (node: NodeState) => {
      const stats = this.stats.get(node.id);
      if (stats === undefined) return false;
      const network = node.bandwidth > 0 ? (stats.bytesInPerSec + stats.bytesOutPerSec) / node.bandwidth : 0;
      return Math.max(stats.cpu, network) > high;
    };
    const hot = new Set(nodes.filter(busy).map((n) => n.id));
    return nodes.filter((n) => !hot.has(n.id) || nodes.every((m) => m.tier !== n.tier || hot.has(m.id)));
  }

  /** Each placeable node of a tier, as the autoscaler sees it: fractions of what the node declared. */
  nodeLoads(tier: Tier): NodeLoad[] {
    return this.registry.placeableNodes().filter((n) => n.tier === tier).map((node) => {
      const stats = this.stats.get(node.id);
      return {
        id: node.id,
        cpu: stats?.cpu ?? 0,
        network: stats === undefined || !(node.bandwidth > 0) ? 0 : (stats.bytesInPerSec + stats.bytesOutPerSec) / node.bandwidth,
        capacity: Math.max(node.reserved, stats?.used ?? 0) / node.capacity,
        used: stats?.used ?? 0,
      };
    });
  }

  private startAutoscaler(config: AutoscalerConfig): void {
    const provisioner = this.options.provisioner;
    if (provisioner === undefined) throw new SatchelError('BAD_REQUEST', 'autoscaling needs a provisioner');
    this.autoscaler = new Autoscaler(
      {
        loads: (tier) => this.nodeLoads(tier),
        launchNode: (tier, reason, details) => this.launchNode(tier, reason, details),
        pickForRemoval: (tier, candidates) => provisioner.pickForRemoval(tier, candidates),
        removeNode: (nodeId, reason) => this.removeNode(nodeId, reason),
        scaleEvent: (kind, tier, reason, details) => void this.events.add(kind, reason, { tier, details }),
      },
      config,
      this.options.logger,
    );
    this.autoscaler.start();
    this.options.logger.info({ provisioner: provisioner.name, ...config }, 'autoscaler started');
  }

  /** The autoscaler's policy, when it runs. */
  get autoscalerConfig(): AutoscalerConfig | undefined {
    return this.autoscaler?.config;
  }

  get provisioner(): Provisioner | undefined {
    return this.options.provisioner;
  }

  /** Asks the provisioner for one more node of `tier`; it registers itself when it is up. */
  async launchNode(tier: Tier, reason: string, details?: Record<string, number | string>): Promise<void> {
    const provisioner = this.options.provisioner;
    if (provisioner === undefined) throw new SatchelError('BAD_REQUEST', 'this controller has no provisioner: start storage nodes by hand (satchel storage-node)');
    for (const [id, retiredTier] of this.retiredNodes) if (retiredTier === tier) this.retiredNodes.delete(id);
    try {
      await provisioner.launch(tier);
    } catch (error) {
      this.events.add('launch-failed', `${provisioner.name} provisioner: ${(error as Error).message}`, { tier });
      throw error;
    }
    this.events.add('node-launched', reason, { tier, details });
  }

  /**
   * Drains a node, then has the provisioner stop it and forgets it. Without a provisioner the process keeps
   * running, empty and unused, until someone stops it.
   */
  async removeNode(nodeId: string, reason: string): Promise<DrainResult> {
    const node = this.registry.nodes.get(nodeId);
    if (node === undefined) throw new SatchelError('BAD_REQUEST', `no node ${nodeId}`);
    // Ask first whether the provisioner can stop this one (a StatefulSet only drops its highest ordinal).
    const provisioner = this.options.provisioner;
    if (provisioner !== undefined) {
      const others = [...this.registry.nodes.values()].filter((n) => n.tier === node.tier && n.id !== nodeId).map((n) => n.id);
      const removable = provisioner.pickForRemoval(node.tier as Tier, [nodeId, ...others]);
      if (removable !== nodeId) throw new SatchelError('BAD_REQUEST', `the ${provisioner.name} provisioner cannot remove ${nodeId}${removable === null ? '' : `; it can remove ${removable}`}`);
    }
    this.events.add('drain-started', reason, { tier: node.tier, node: nodeId });
    let result: DrainResult;
    try {
      result = await this.drainNode(nodeId);
    } catch (error) {
      this.events.add('drain-failed', (error as Error).message, { tier: node.tier, node: nodeId });
      throw error;
    }
    this.events.add('drain-finished', `moved ${result.keys} keys of ${result.jobs} jobs in ${result.seconds.toFixed(1)} s`, {
      tier: node.tier,
      node: nodeId,
      details: { jobs: result.jobs, keys: result.keys, bytes: result.bytes, seconds: result.seconds },
    });
    await this.forgetNode(nodeId);
    await this.options.provisioner?.remove(node.tier as Tier, nodeId);
    this.events.add('node-removed', this.options.provisioner ? `stopped by the ${this.options.provisioner.name} provisioner` : 'forgotten (no provisioner: stop its process by hand)', { tier: node.tier, node: nodeId });
    return result;
  }

  /** Forgets a node (drained, or gone for good): no placement may still name it. */
  async forgetNode(nodeId: string): Promise<void> {
    const node = this.registry.nodes.get(nodeId);
    for (const job of this.registry.jobs.values()) {
      if (nodesOf(job.placement).has(nodeId) && !isLostMember(job, nodeId)) {
        throw new SatchelError('BAD_REQUEST', `node ${nodeId} still holds job ${job.id}: drain it first`);
      }
    }
    this.registry.nodes.delete(nodeId);
    if (node !== undefined) this.retiredNodes.set(nodeId, node.tier);
    this.stats.forget(nodeId);
    await this.store?.deleteNode(nodeId);
    this.options.logger.info({ node: nodeId }, 'node removed');
  }

  private async migrateJobOff(jobId: string, node: NodeRecord): Promise<MigrationResult | null> {
    const job = this.registry.jobs.get(jobId);
    if (job === undefined) return null; // deregistered meanwhile
    // Resumed (a restart during the copy): the newest generation already leaves the node out.
    const resumed = !job.placement.generations[0]!.nodes.some((n) => n.id === node.id);
    let newest = job.placement.generations[0]!.nodes;
    if (!resumed) {
      const current = newest.filter((n) => n.id !== node.id);
      const free = (state: NodeState) => state.capacity - Math.max(state.reserved, this.stats.get(state.id)?.used ?? 0);
      // The node's share goes to the roomiest other node of the job's tier (or the spill order), if there is one.
      const growth = growAllocation(current, job.tier as Tier, this.placeableFor(job), free, job.reservation);
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
            job.pending = placement.generations[0]!.nodes.some((n) => n.id === node.id) || !nodesOf(placement).has(node.id) ? undefined : { kind: 'drain', node: node.id };
            return host.publish(placement);
          },
        },
        job.placement,
        node,
        newest,
        resumed,
      );
      this.options.logger.info({ job: jobId, node: node.id, ...result, epoch: job.placement.epoch }, 'job migrated');
      if (unfinished && (await this.repair(job))) await this.publisher.apply(job, job.placement);
      return result;
    } catch (error) {
      // Failed with its copies under way (recorded as pending): finished later, as after a restart.
      if (job.pending?.kind === 'drain') this.finishCopiesLater(jobId);
      throw error;
    } finally {
      host.close();
    }
  }

  /** `finishCopies` of the job a node timeout from now (a change failed half-way; a repair was incomplete). */
  private finishCopiesLater(jobId: string): void {
    // Once per job: a failing migration schedules this, and so does the retry that ran it (the 10-minute
    // nemesis saw the timers double each second, 14,000 retries of one job in three minutes).
    if (this.finishingLater.has(jobId)) return;
    this.finishingLater.add(jobId);
    setTimeout(() => {
      this.finishingLater.delete(jobId);
      void this.changePlacement(jobId, () => this.finishCopies(jobId)).catch((error: unknown) => {
        this.options.logger.warn({ err: error, job: jobId }, 'finishing copies failed: tried again later');
        if (this.registry.jobs.get(jobId)?.pending !== undefined) this.finishCopiesLater(jobId);
      });
    }, this.nodeTimeoutMs).unref();
  }

  /** `refusals`: the node's reported FULL refusals of the job (`fullReported`); each count grants one growth. */
  private async growJobNow(jobId: string, fullNodeId: string, epoch: number, refusals: number | null): Promise<WirePlacement> {
    // `refusals` Infinity: an admin's growth (`growJob` by-admin), not a report to use up.
    const job = this.registry.jobs.get(jobId);
    if (job === undefined) throw new SatchelError('NO_SUCH_JOB', `no job ${jobId}`);
    if (job.overQuota !== undefined) throw new SatchelError('FULL', `job ${jobId} is over its byte quota of ${this.options.jobQuotaBytes} bytes`);
    if (job.placement.epoch > epoch) return job.placement;
    if (job.placement.generations.length >= MAX_GENERATIONS) {
      throw new SatchelError('FULL', `job ${jobId} has ${job.placement.generations.length} placement generations, the most a job may have: register it with a larger capacity hint`);
    }
    // FULL, as the write that asked was refused: the caller's PUT fails with the code the node gave it.
    if (refusals === null || refusals === job.fullSeen?.[fullNodeId]) {
      throw new SatchelError('FULL', `node ${fullNodeId} has not reported job ${jobId} full: no growth granted`);
    }
    const free = (node: NodeState) => {
      const used = this.stats.get(node.id)?.used ?? 0;
      // The node that said FULL has no room, whatever its last report (up to a second old) said.
      return node.id === fullNodeId ? 0 : node.capacity - Math.max(node.reserved, used);
    };
    const growth = growAllocation(job.placement.generations[0]?.nodes ?? [], job.tier as Tier, this.placeableFor(job), free, job.reservation);
    if (growth === null) throw new SatchelError('FULL', 'the cluster is full: no storage node has room for this job');
    this.admitTenant(job.tenant ?? DEFAULT_TENANT, growth.extraReservation, false);
    if (refusals !== Infinity) (job.fullSeen ??= {})[fullNodeId] = refusals;
    const placement: WirePlacement = {
      ...job.placement,
      epoch: job.placement.epoch + 1,
      generations: [{ nodes: growth.nodes }, ...job.placement.generations],
    };
    job.reservation += growth.extraReservation;
    await this.publisher.apply(job, placement);
    this.options.logger.info({ job: jobId, epoch: placement.epoch, added: growth.added, full: fullNodeId }, 'job grown');
    return placement;
  }

  /**
   * The FULL refusals `nodeId` reported for the job, when more than the last growth used; null when none came
   * within FULL_REPORT_WAIT_MS (a node sends a report at once after its first FULL: storage-node/README.md).
   */
  private async fullReported(jobId: string, nodeId: string): Promise<number | null> {
    const deadline = Date.now() + FULL_REPORT_WAIT_MS;
    for (;;) {
      const refusals = this.stats.fullRefusals(nodeId, jobId);
      const used = this.registry.jobs.get(jobId)?.fullSeen?.[nodeId] ?? 0;
      // A node restarted counts from 0 again: fewer than used is a new incarnation's first.
      if (refusals > 0 && refusals !== used) return refusals;
      const left = deadline - Date.now();
      if (left <= 0) return null;
      await this.stats.nextReport(nodeId, left);
    }
  }

  /**
   * Declares lost every node not heard from for `nodeTimeoutMs` (since its last report, or since it registered
   * or this controller started): see `nodeLost`.
   */
  private checkLiveness(now: number): void {
    const timeout = this.nodeTimeoutMs;
    for (const node of this.registry.nodes.values()) {
      if (node.lost === true) continue;
      // After a restart, nodes get longer: their channels reconnect first (up to a second of backoff), and a node
      // declared lost for that while another was being restored could take the only copy of keys with it.
      const heard = Math.max(this.stats.lastReportAt(node.id) ?? 0, node.registeredAt, this.startedAt + RESTART_GRACE_MS);
      if (now - heard > timeout) void this.nodeLost(node, `no report for ${((now - heard) / 1000).toFixed(1)} s`);
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
    node.lost = true;
    const jobs = [...this.registry.jobs.values()].filter((job) => nodesOf(job.placement).has(node.id) && !isLostMember(job, node.id));
    const replicated = jobs.filter((job) => (job.placement.replicas ?? 1) > 1);
    const single = jobs.filter((job) => (job.placement.replicas ?? 1) === 1);
    this.options.logger.warn({ node: node.id, reason, replicated: replicated.length, unreplicated: single.map((j) => j.id) }, 'node lost');
    this.events.add('node-lost', `${reason}${single.length > 0 ? `; data of ${single.length} job(s) with one copy unavailable while it is gone` : ''}`, {
      tier: node.tier,
      node: node.id,
      details: { jobs: jobs.length, replicated: replicated.length },
    });
    const restorations = replicated.map((job) =>
      this.changePlacement(job.id, () => this.restoreCopies(job.id, node)).catch((error: unknown) => {
        this.options.logger.error({ err: error, job: job.id, node: node.id }, 'restoring copies failed');
        this.events.add('replication-failed', `copies of ${job.id} not restored: ${(error as Error).message}`, { tier: node.tier, node: node.id });
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
    this.options.logger.warn({ node: node.id }, 'lost node reports again');
    await this.reconcile(node, reported);
    node.lost = false;
    this.events.add('node-back', 'reports again; jobs restored elsewhere meanwhile were dropped from it', { tier: node.tier, node: node.id });
  }

  /** Tells a node what its report shows it missed (members.ts `reconcileNode`). */
  private async reconcile(node: NodeRecord, reported: readonly JobUsage[]): Promise<void> {
    const actions = reconcileNode(node.id, reported, this.registry.jobs, this.registering);
    if (actions.length === 0) return;
    this.options.logger.info({ node: node.id, actions }, 'telling a node what it missed');
    const bootId = node.bootId ?? '';
    const tokensExpireBy = Date.now() + (this.options.tokenTtlMs ?? DEFAULT_TOKEN_TTL_MS);
    await Promise.all(
      actions.map(async (action) => {
        try {
          if (action.kind === 'announce') await this.admin.announce(node.address, action.jobId, action.epoch, action.flags, bootId);
          else if (action.kind === 'move') {
            await this.admin.announce(node.address, action.jobId, action.epoch, 0, bootId);
            await this.admin.dropJob(node.address, action.jobId, true);
          } else await this.admin.dropJob(node.address, action.jobId, false, tokensExpireBy);
        } catch (error) {
          this.options.logger.warn({ err: error, node: node.id, action }, 'telling a node failed: retried on its next report');
        }
      }),
    );
  }

  /**
   * What moving a job's keys needs (migration.ts, replication.ts): making a placement the job's (PlacementPublisher),
   * and data connections as the job; `close` ends them.
   */
  private placementHost(job: JobRecord): Pick<MigrationHost, 'publish' | 'connect' | 'isLost'> & { close(): void } {
    const connections = new Map<string, NodeConnection>();
    const token = signToken(this.options.secret, job.id);
    return {
      publish: (placement) => this.publisher.apply(job, placement),
      isLost: (nodeId) => isLostMember(job, nodeId),
      connect: (address) => {
        let connection = connections.get(address);
        if (connection === undefined) connections.set(address, (connection = new NodeConnection(address, token, { timeoutMs: this.adminTimeoutMs, tls: clientTlsOf(this.options.tls) })));
        return connection;
      },
      close: () => {
        for (const connection of connections.values()) connection.destroy();
      },
    };
  }

  /** The nodes a job may grow onto: placeable, and not a node id the job has as a lost member. */
  private placeableFor(job: JobRecord): NodeState[] {
    return this.registry.placeableNodes().filter((node) => !isLostMember(job, node.id));
  }

  private async restoreCopies(jobId: string, node: NodeRecord): Promise<ReplicationResult | null> {
    const job = this.registry.jobs.get(jobId);
    if (job === undefined || !nodesOf(job.placement).has(node.id)) return null;
    // Copies an earlier change left unfinished (it failed, or the controller died): this restoration only makes
    // the copies its own loss calls for, so a repair follows it.
    const unfinished = job.pending !== undefined;
    const replicas = job.placement.replicas ?? 1;
    const newest = job.placement.generations[0]!.nodes.filter((n) => n.id !== node.id);
    let replacement: WirePlacementNode[] = [];
    if (newest.length < replicas) {
      // Too few nodes left for every copy: the roomiest other node joins (the same policy as growth).
      const free = (state: NodeState) => state.capacity - Math.max(state.reserved, this.stats.get(state.id)?.used ?? 0);
      const growth = growAllocation(newest, job.tier as Tier, this.placeableFor(job).filter((n) => n.id !== node.id), free, job.reservation);
      const added = growth?.added[0];
      const record = added === undefined ? undefined : this.registry.nodes.get(added);
      if (record !== undefined) replacement = [{ id: record.id, address: record.address, weight: 1 }];
    }
    const started = Date.now();
    const host = this.placementHost(job);
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
        this.options.logger.warn({ err: error, job: jobId, lost: node.id }, 'restoring copies failed: repairing instead');
        if (await this.repair(job)) {
          job.pending = undefined;
          await this.publisher.apply(job, job.placement);
        }
        return null;
      }
      const { placement, result } = restored;
      if (unfinished && !(await this.repair(job))) return result;
      job.pending = undefined;
      await this.publisher.apply(job, placement);
      this.options.logger.info({ job: jobId, lost: node.id, epoch: placement.epoch, ...result, ms: Date.now() - started }, 'copies restored');
      this.events.add('copies-restored', `${result.copies} copies (${result.bytes} bytes) of ${jobId} restored in ${((Date.now() - started) / 1000).toFixed(1)} s`, {
        tier: node.tier,
        node: node.id,
        details: { copies: result.copies, bytes: result.bytes, keys: result.keys },
      });
      return result;
    } finally {
      host.close();
    }
  }

  async registerNode(node: NodeInfo): Promise<string> {
    if (!node || !isHostPort(node.address) || !TIER_NAMES.has(node.tier) || !(node.capacity > 0 && Number.isFinite(node.capacity)) || !(node.bandwidth >= 0 && Number.isFinite(node.bandwidth))) {
      throw new SatchelError('BAD_REQUEST', 'node needs a tier (dram|ssd|hdd), a host:port address, a positive capacity and a bandwidth');
    }
    const id = node.id || `${node.tier}-${randomBytes(3).toString('hex')}`;
    if (this.retiredNodes.has(id)) throw new SatchelError('BAD_REQUEST', `node ${id} was drained and removed; start a new node instead`);
    const bootId = node.bootId ?? '';
    const known = this.registry.nodes.get(id);
    if (known !== undefined && (known.bootId ?? '') !== bootId) await this.incarnationEnded(known);
    const record: NodeRecord = { ...node, id, bootId, registeredAt: Date.now() };
    if (known?.draining === true && known.bootId === bootId) record.draining = true;
    this.registry.nodes.set(id, record);
    await this.store?.putNode(record);
    this.options.logger.info({ node: id, bootId, tier: node.tier, address: node.address, capacity: node.capacity }, 'node registered');
    this.events.add('node-joined', `registered at ${node.address}`, { tier: node.tier, node: id, details: { capacity: node.capacity } });
    // Jobs registered before any node could hold them are placed now.
    for (const job of this.registry.jobs.values()) {
      if ((job.placement.generations[0]?.nodes.length ?? 0) > 0) continue;
      const allocation = allocateJob(job.hints, this.placeableFor(job));
      if (allocation.nodes.length === 0) continue;
      Object.assign(job, { tier: allocation.tier, reason: allocation.reason, reservation: allocation.reservation });
      await this.publisher.apply(job, { ...job.placement, epoch: job.placement.epoch + 1, generations: [{ nodes: allocation.nodes }] });
    }
    return id;
  }

  /**
   * A node registered under a known id with another boot id: the process that held its data is gone. Every job
   * placed on it gets it as a lost member (never announced to the new process), and, unless its loss was already
   * handled (it stopped reporting first), the loss runs now: replicated jobs are restored without it.
   */
  private async incarnationEnded(old: NodeRecord): Promise<void> {
    const jobs = [...this.registry.jobs.values()].filter((job) => nodesOf(job.placement).has(old.id) && !isLostMember(job, old.id));
    // First, while they still count it as a member: the loss picks the jobs to restore.
    if (old.lost !== true) void this.nodeLost(old, 'restarted');
    for (const job of jobs) job.lostNodes = [...(job.lostNodes ?? []), old.id];
    // Recorded before the new incarnation is: a controller restarted in between must not take the new process for
    // a member of those jobs (it would announce them to it, and it holds none of their data).
    await Promise.all(jobs.map((job) => this.store?.putJob(job).catch((error: unknown) => this.options.logger.error({ err: error, job: job.id }, 'persisting job failed'))));
    this.options.logger.warn({ node: old.id, bootId: old.bootId, jobs: jobs.length }, 'node restarted: its data is gone');
    this.events.add('node-restarted', `a new process took over ${old.id}; ${jobs.length} job(s) lose what it held${jobs.length > 0 ? ' (replicated ones get their copies restored)' : ''}`, {
      tier: old.tier,
      node: old.id,
      details: { jobs: jobs.length },
    });
  }

  async registerMetadata(address: string): Promise<void> {
    // Checked first: a channel to an address that cannot be dialled would be kept, and fail every registration.
    if (!isHostPort(address)) throw new SatchelError('BAD_REQUEST', `metadata server address ${JSON.stringify(String(address).slice(0, 100))} is not host:port`);
    const known = this.metadataClients.get(address);
    // A fresh channel every time: the old one to a restarted server may sit in grpc's reconnect backoff (up to
    // two minutes), and every registration and placement change would fail until it retried.
    known?.close();
    const client = new ControlClient<MetadataMethods>(METADATA_SERVICE, address, undefined, clientTlsOf(this.options.tls));
    this.metadataClients.set(address, client);
    if (known === undefined) await this.store?.putMetadata(address);
    // A metadata server that joins, or comes back after a restart with nothing, gets every placement.
    const target = client;
    await Promise.all([...this.registry.jobs.values()].map((job) => target.call('SetPlacement', { placement: job.placement, token: this.adminToken })));
    this.options.logger.info({ address }, 'metadata server registered');
  }

  private async publishPlacement(placement: WirePlacement): Promise<void> {
    await Promise.all(
      [...this.metadataClients.values()].map((client) => client.call('SetPlacement', { placement, token: this.adminToken })),
    );
  }

  /** `jobId` null: only the admin token will do; otherwise the job's own token or the admin token. */
  /** `jobId` null: only the admin token will do; otherwise also a token of that job (data or internal). */
  private authorize(token: string, jobId: string | null): void {
    const subject = typeof token === 'string' ? verifyToken(this.options.secret, token) : null;
    if (subject === null) throw new SatchelError('UNAUTHORIZED', 'invalid token');
    if (subject.admin) return;
    if (jobId === null) throw new SatchelError('UNAUTHORIZED', 'this needs the admin token');
    if (subject.scope === 'viewer' || subject.jobId !== jobId) throw new SatchelError('UNAUTHORIZED', 'token is not valid for this job');
  }

  /** What only the job's driver (or the admin) does: renew, deregister. A function's data token is refused. */
  private authorizeDriver(token: string, jobId: string): void {
    if (verifyDriverToken(this.options.secret, token) === jobId) return;
    const subject = typeof token === 'string' ? verifyToken(this.options.secret, token) : null;
    if (subject?.admin === true) return;
    throw new SatchelError('UNAUTHORIZED', subject === null ? 'invalid token' : `this needs job ${jobId}'s driver token (RegisterJob's driverToken), not a function's`);
  }

  /** The jobs a tenant has now (records from before tenants belong to the default tenant). */
  jobsOf(tenant: string): JobRecord[] {
    return [...this.registry.jobs.values(), ...this.registering.values()].filter((job) => (job.tenant ?? DEFAULT_TENANT) === tenant);
  }

  tenantInfo(tenant: TenantRecord): { name: string; quotaBytes: number; maxJobs: number; jobs: number; reservedBytes: number } {
    const jobs = this.jobsOf(tenant.name);
    return { name: tenant.name, quotaBytes: tenant.quotaBytes ?? 0, maxJobs: tenant.maxJobs ?? 0, jobs: jobs.length, reservedBytes: jobs.reduce((sum, job) => sum + job.reservation, 0) };
  }

  /** Adds a tenant and returns its key (shown once: the controller keeps its hash). */
  async addTenant(name: string, limits: { quotaBytes?: number | undefined; maxJobs?: number | undefined } = {}): Promise<{ tenant: TenantRecord; key: string }> {
    const added = this.tenants.add(name, { ...(limits.quotaBytes === undefined ? {} : { quotaBytes: limits.quotaBytes }), ...(limits.maxJobs === undefined ? {} : { maxJobs: limits.maxJobs }) });
    try {
      await this.store?.putTenant(added.tenant);
    } catch (error) {
      this.tenants.remove(name);
      throw error;
    }
    this.options.logger.info({ tenant: name, quotaBytes: limits.quotaBytes, maxJobs: limits.maxJobs }, 'tenant added');
    this.events.add('tenant-added', `tenant ${name} added`, { details: { quotaBytes: limits.quotaBytes ?? 0, maxJobs: limits.maxJobs ?? 0 } });
    return added;
  }

  /** Removes a tenant: its key stops working, and its jobs are deregistered (every byte deleted). */
  async removeTenant(name: string): Promise<number> {
    this.tenants.remove(name);
    await this.store?.deleteTenant(name);
    const jobs = this.jobsOf(name).filter((job) => this.registry.jobs.get(job.id) === job);
    const ended = await Promise.allSettled(jobs.map((job) => this.deregisterJob(job.id)));
    this.options.logger.info({ tenant: name, jobs: jobs.length }, 'tenant removed');
    this.events.add('tenant-removed', `tenant ${name} removed; ${jobs.length} of its jobs deregistered`, { details: { jobs: jobs.length } });
    return ended.filter((r) => r.status === 'fulfilled').length;
  }

  /** The default tenant with the key deploy/ gave (made, or its key replaced when the key changed). */
  private async ensureDefaultTenant(key: string): Promise<void> {
    const existing = this.tenants.get(DEFAULT_TENANT);
    if (existing !== undefined && existing.keyHash === TenantTable.hashOf(key)) return;
    if (existing !== undefined) this.tenants.remove(DEFAULT_TENANT);
    const { tenant } = this.tenants.add(DEFAULT_TENANT, { ...(existing?.quotaBytes === undefined ? {} : { quotaBytes: existing.quotaBytes }), ...(existing?.maxJobs === undefined ? {} : { maxJobs: existing.maxJobs }) }, key);
    await this.store?.putTenant(tenant);
  }

  /**
   * What the cluster could ever hold, by the nodes registered and, with an autoscaler, the most it may launch
   * per tier: a hint above it can never be met, and is refused rather than reserved (an anonymous 10^18-byte
   * reservation once starved every later job of DRAM).
   */
  private clusterCeiling(): number {
    const max = this.options.autoscaler?.maxNodes;
    const nodes = [...this.registry.nodes.values()];
    let bytes = 0;
    const largest = Math.max(0, ...nodes.map((n) => n.capacity));
    for (const tier of TIERS) {
      const inTier = nodes.filter((n) => n.tier === tier);
      const extra = this.options.provisioner !== undefined && max !== undefined ? Math.max(0, max[tier] - inTier.length) : 0;
      const each = inTier.length > 0 ? Math.max(...inTier.map((n) => n.capacity)) : largest;
      bytes += inTier.reduce((sum, n) => sum + n.capacity, 0) + extra * each;
    }
    return bytes;
  }

  /** Hints the cluster can never meet, refused with the limit named (checkHints has checked their form). */
  private admitHints(hints: JobHints): void {
    const bytes = this.clusterCeiling();
    if (bytes <= 0) return; // no node yet: allocation refuses, with its own reason
    const copies = hints.replicas ?? 1;
    if (hints.capacity !== undefined && hints.capacity * copies > bytes) {
      throw new SatchelError('BAD_REQUEST', `hint capacity ${hints.capacity} × ${copies} copies is more than the cluster can ever hold (${bytes} bytes)`);
    }
    if (hints.maxValueBytes !== undefined && hints.maxValueBytes > bytes) {
      throw new SatchelError('BAD_REQUEST', `hint maxValueBytes ${hints.maxValueBytes} is more than the cluster can ever hold (${bytes} bytes)`);
    }
    // peakThroughput is not bounded here: a job asking for more than every node carries is placed on all of
    // them, and the share of the tier it reserves for throughput is capped at the whole tier (allocation.ts).
    if (hints.functions !== undefined && hints.functions > MAX_FUNCTIONS_HINT) {
      throw new SatchelError('BAD_REQUEST', `hint functions ${hints.functions} is above the limit of ${MAX_FUNCTIONS_HINT}`);
    }
  }

  /** A tenant's limits against one more job reserving `reservation` bytes (or a job growing by it: `newJob` false). */
  private admitTenant(tenantName: string, reservation: number, newJob: boolean): void {
    const tenant = this.tenants.get(tenantName);
    if (tenant === undefined) throw new SatchelError('UNAUTHORIZED', `tenant ${tenantName} was removed`);
    const jobs = this.jobsOf(tenantName);
    if (newJob && tenant.maxJobs !== undefined && jobs.length >= tenant.maxJobs) {
      throw new SatchelError('FULL', `tenant ${tenantName} has ${jobs.length} jobs, its limit (max jobs ${tenant.maxJobs})`);
    }
    if (tenant.quotaBytes !== undefined) {
      const reserved = jobs.reduce((sum, job) => sum + job.reservation, 0);
      if (reserved + reservation > tenant.quotaBytes) {
        throw new SatchelError('FULL', `tenant ${tenantName} reserves ${reserved} bytes; ${reservation} more would pass its quota of ${tenant.quotaBytes}`);
      }
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


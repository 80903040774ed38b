/**
 * What the controller's modules share: its records (registry, node reports, events, tenants, the durable store),
 * its links to nodes and metadata servers, and its settings. Each module (jobs.ts, nodes.ts, placement-changes.ts,
 * scaling.ts, quotas.ts, grpc-service.ts) takes the one context the Controller made; none holds state another needs.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { ADMIN_SUBJECT, clientTlsOf, type ServerTls, signToken } from '../proto/index.ts';
import type { AutoscalerConfig } from './autoscaler.ts';
import { CallFailures } from './call-failures.ts';
import { DEFAULT_PRICES, type Prices } from './cost.ts';
import { EventLog } from './events.ts';
import { MetadataLinks } from './metadata-links.ts';
import { NodeAdmin } from './node-admin.ts';
import { NodeStatsTable } from './node-stats.ts';
import { PlacementPublisher } from './placement-publisher.ts';
import type { Provisioner } from './provisioner.ts';
import { ClusterRegistry, type JobRecord } from './registry.ts';
import { DEFAULT_SPARE_JOBS, SpareJobs } from './spare-jobs.ts';
import type { ControllerStore } from './store.ts';
import { TenantTable } from './tenants.ts';

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
  /**
   * How many metadata servers hold each job's placement (DEFAULT_METADATA_COPIES): picked per job by rendezvous
   * hashing when it registers (proto metadata-owners.ts), so lookups spread over the servers as jobs do.
   */
  metadataCopies?: number;
  /**
   * Placements made ahead of registrations (spare-jobs.ts), at most this many over every allocation (two for
   * one): a registration that comes out like one waits for its record alone. DEFAULT_SPARE_JOBS; 0: none.
   */
  spareJobs?: number;
}

export const DEFAULT_NODE_TIMEOUT_MS = 5_000;
/**
 * A node's lease, as a share of the node timeout: a node that has not had a report answered for this long stops
 * serving replicated jobs (storage-node/README.md, "Leases"), before the controller, after the whole timeout,
 * declares it lost and restores those jobs' copies elsewhere. Both count from the same report (the node from
 * sending it, the controller from receiving it), so any share below 1 is safe; the rest is a margin for the
 * two clocks' rates and for a slow answer. 0.6 fenced nodes of an in-process test cluster under load.
 */
export const LEASE_SHARE_OF_NODE_TIMEOUT = 0.8;
export const DEFAULT_TOKEN_TTL_MS = 24 * 3600_000;
/** Default job lease: drivers renew every third of it (RegisteredJob does so on its own). */
export const DEFAULT_LEASE_MS = 60_000;
/** Two: a job's placement outlives one metadata server. */
export const DEFAULT_METADATA_COPIES = 2;

export class ControllerContext {
  readonly registry = new ClusterRegistry();
  readonly stats = new NodeStatsTable();
  readonly events = new EventLog();
  readonly tenants = new TenantTable();
  /** Jobs being registered: announced to their nodes, not yet in the registry (nor dropped by `reconcile`). */
  readonly registering = new Map<string, JobRecord>();
  /** Placements made ahead of registrations. */
  readonly spares: SpareJobs;
  readonly logger: Logger;
  readonly secret: Uint8Array;
  readonly failures: CallFailures;
  readonly admin: NodeAdmin;
  readonly metadata: MetadataLinks;
  readonly publisher: PlacementPublisher;
  readonly adminToken: string;
  readonly prices: Prices;
  readonly leaseMs: number;
  readonly nodeTimeoutMs: number;
  readonly tokenTtlMs: number;
  /** The durable store, once `listen` opened it (with a state folder); null: in memory only. */
  store: ControllerStore | null = null;
  /** Where clients reach the controller (tickets carry it), once it listens. */
  address: string | null = null;
  /**
   * When the controller started serving: nodes are given until a node timeout after it to report (a restarted
   * controller hears from none before it listens, and its recovery may take seconds).
   */
  startedAt = Date.now();
  /**
   * When the controller last came out of standing still (SIGSTOP, a paused VM, a stall of its own: server.ts
   * `resumedAfterStandingStill`): nodes are given a node timeout after it too, as after a start. 0: never.
   */
  resumedAt = 0;

  constructor(readonly options: ControllerOptions) {
    this.logger = options.logger;
    this.secret = options.secret;
    this.leaseMs = options.leaseMs ?? DEFAULT_LEASE_MS;
    this.nodeTimeoutMs = options.nodeTimeoutMs ?? DEFAULT_NODE_TIMEOUT_MS;
    this.tokenTtlMs = options.tokenTtlMs ?? DEFAULT_TOKEN_TTL_MS;
    this.prices = options.prices ?? DEFAULT_PRICES;
    this.adminToken = signToken(options.secret, ADMIN_SUBJECT);
    this.failures = new CallFailures(options.logger);
    this.admin = new NodeAdmin(options.secret, clientTlsOf(options.tls), this.adminTimeoutMs);
    this.metadata = new MetadataLinks(this.adminToken, this.failures, options.metadataCopies ?? DEFAULT_METADATA_COPIES, options.tls);
    this.publisher = new PlacementPublisher({
      admin: this.admin,
      nodes: this.registry.nodes,
      logger: options.logger,
      failures: this.failures,
      publish: (placement) => this.metadata.publish(placement),
      persist: async (job) => {
        if (this.isCurrent(job)) await this.store?.putJob(job);
      },
      tokensExpireBy: () => this.tokensExpireBy(),
      placed: (job) => this.registry.jobs.reindex(job),
    });
    this.spares = new SpareJobs(this, () => this.newJobId(), { max: options.spareJobs ?? DEFAULT_SPARE_JOBS });
  }

  /** A fresh job id: 48 random bits, drawn again if a job registered, registering or spare has them. */
  newJobId(): string {
    for (;;) {
      const id = `job-${randomBytes(6).toString('hex')}`;
      if (!this.registry.jobs.has(id) && !this.registering.has(id) && !this.spares.has(id)) return id;
    }
  }

  /** Whether a node reporting job `id` holds one being made: registering, or a spare (not to be dropped). */
  isMaking(id: string): boolean {
    return this.registering.has(id) || this.spares.has(id);
  }

  /**
   * How long the controller waits for a node's answer (admin calls, copies): the node timeout, within 1–10 s. A
   * node that does not answer within it is as good as lost, and a frozen one must not hold a placement change up
   * for longer (placement-publisher.ts announces to every member).
   */
  get adminTimeoutMs(): number {
    return Math.min(10_000, Math.max(1_000, this.nodeTimeoutMs));
  }

  /** How long a node may serve replicated jobs after a report it sent was answered. */
  get nodeLeaseMs(): number {
    return Math.floor(this.nodeTimeoutMs * LEASE_SHARE_OF_NODE_TIMEOUT);
  }

  /** When a token handed out now expires, so when nodes may forget a job dropped now (ms since 1970). */
  tokensExpireBy(): number {
    return Date.now() + this.tokenTtlMs;
  }

  /**
   * Whether `job` is the record of a job registered or being registered. Only those are persisted: a
   * deregistration racing a change (a placement, a quota) must not bring the record back.
   */
  isCurrent(job: JobRecord): boolean {
    return this.registry.jobs.get(job.id) === job || this.registering.get(job.id) === job;
  }

  /** Writes the job record through to the store; a failure is logged (the record is written again on its next change). */
  async persistJob(job: JobRecord): Promise<void> {
    if (!this.isCurrent(job)) return;
    await this.store?.putJob(job).catch((error: unknown) => this.logger.error({ err: error, job: job.id }, 'persisting job failed'));
  }
}

/**
 * The controller's gRPC service (proto/control.proto `Controller`): each call's credential checked, its request
 * checked where the modules behind it would take it as it comes, and the call handed to the module that owns it
 * (jobs.ts, nodes.ts, placement-changes.ts).
 */
import { authorize, type ControllerMethods, SatchelError, type ServiceImpl, verifyDriverToken, verifyToken } from '../proto/index.ts';
import type { ControllerContext } from './context.ts';
import type { JobBook } from './jobs.ts';
import type { NodeBook } from './nodes.ts';
import type { PlacementChanges } from './placement-changes.ts';

/** The admin token only: tenants, nodes, metadata servers and their reports. */
const ADMIN_ONLY = ['admin'] as const;
/** A job's tokens (data or internal) or the admin's. */
const JOB_SCOPES = ['admin', 'data', 'internal'] as const;

export function controllerService(
  ctx: ControllerContext,
  jobs: JobBook,
  nodes: NodeBook,
  placements: PlacementChanges,
): ServiceImpl<ControllerMethods> {
  const { secret } = ctx;

  /** What only the job's driver (or the admin) does: renew, deregister. A function's data token is refused. */
  const authorizeDriver = (token: string, jobId: string): void => {
    if (verifyDriverToken(secret, token) === jobId) return;
    const subject = typeof token === 'string' ? verifyToken(secret, token) : null;
    if (subject?.admin === true) return;
    throw new SatchelError(
      'UNAUTHORIZED',
      subject === null ? 'invalid token' : `this needs job ${jobId}'s driver token (RegisterJob's driverToken), not a function's`,
    );
  };

  /**
   * Why `key` opens nothing: none given, or one this cluster does not take. Which of an unknown tenant and a
   * wrong key it is stays unsaid (a guesser learns no tenant names).
   */
  const refusedKey = (key: unknown, doing: string): SatchelError => {
    const where = 'cluster.json `tenantKey`, or the key `satchel tenant add` printed';
    if (typeof key !== 'string' || key === '') return new SatchelError('UNAUTHORIZED', `${doing} needs a tenant key (${where})`);
    const name = /^sk1\.([^.]*)\./.exec(key)?.[1];
    return new SatchelError(
      'UNAUTHORIZED',
      name === undefined
        ? `${doing} needs a tenant key (${where}); this is not one`
        : `tenant key refused: this cluster has no tenant ${JSON.stringify(name)}, or that is not its key (${where})`,
    );
  };

  return {
    RegisterJob: async ({ name, hints, key }) => {
      const tenant = ctx.tenants.byKey(key);
      if (tenant === null) throw refusedKey(key, 'registering a job');
      return jobs.registerJob(name, hints ?? {}, tenant.name);
    },
    DeregisterJob: async ({ jobId, token }) => {
      authorizeDriver(token, jobId);
      await jobs.deregisterJob(jobId);
      return {};
    },
    RenewLease: async ({ jobId, token }) => {
      // The driver's token only: a function's (data) token renewed here would outlive its own lifetime.
      authorizeDriver(token, jobId);
      return jobs.renewLease(jobId);
    },
    GrowJob: async ({ jobId, token, fullNodeId, epoch }) => {
      // A function's data token may ask too (its PUT got FULL), but growth is granted only once the node
      // reported that FULL itself (placement-changes.ts `growJobNow`): a token cannot grow a job that has room.
      if (verifyDriverToken(secret, token) !== jobId) authorize(secret, token, jobId, JOB_SCOPES);
      return placements.growJob(jobId, fullNodeId, epoch);
    },
    AddTenant: async ({ token, name, quotaBytes, maxJobs }) => {
      authorize(secret, token, null, ADMIN_ONLY);
      const { tenant, key } = await jobs.addTenant(name, { quotaBytes: quotaBytes || undefined, maxJobs: maxJobs || undefined });
      return { tenant: jobs.tenantInfo(tenant), key };
    },
    ListTenants: async ({ token }) => {
      authorize(secret, token, null, ADMIN_ONLY);
      return { tenants: ctx.tenants.list().map((t) => jobs.tenantInfo(t)) };
    },
    RemoveTenant: async ({ token, name }) => {
      authorize(secret, token, null, ADMIN_ONLY);
      return { jobsDeregistered: await jobs.removeTenant(name) };
    },
    RegisterNode: async ({ node, token }) => {
      authorize(secret, token, null, ADMIN_ONLY);
      return { nodeId: await nodes.registerNode(node), leaseMs: ctx.nodeLeaseMs };
    },
    RegisterMetadata: async ({ address, token }) => {
      authorize(secret, token, null, ADMIN_ONLY);
      await placements.registerMetadata(address);
      return {};
    },
    ReportNode: async (report) => {
      authorize(secret, report.token, null, ADMIN_ONLY);
      // A NaN or infinite figure would poison reservations and the autoscaler's means: refused whole.
      const figures = [
        report.cpu,
        report.bytesIn,
        report.bytesOut,
        report.ops,
        report.used,
        report.capacity,
        report.latencyP50Us ?? 0,
        report.latencyP99Us ?? 0,
        ...report.jobs.map((j) => j.bytes),
      ];
      if (figures.some((n) => typeof n !== 'number' || !Number.isFinite(n) || n < 0)) {
        throw new SatchelError('BAD_REQUEST', 'a node report carries only finite, non-negative numbers');
      }
      return nodes.report(report);
    },
    GetCluster: async ({ token }) => {
      // A tenant key only learns that it is valid (Satchel.connect checks it), and its own job count.
      const tenant = ctx.tenants.byKey(token);
      if (tenant !== null) return { nodes: [], metadata: [], jobs: jobs.jobsOf(tenant.name).length };
      const subject = typeof token === 'string' ? verifyToken(secret, token) : null;
      if (subject?.scope !== 'admin' && subject?.scope !== 'viewer') {
        // Satchel.connect sends the tenant key (or nothing): what it is told is about that key.
        if (typeof token !== 'string' || token === '' || token.startsWith('sk1.')) throw refusedKey(token, 'connecting');
        throw new SatchelError('UNAUTHORIZED', 'the cluster is shown to the admin and viewer tokens, and a tenant key');
      }
      return { nodes: [...ctx.registry.nodes.values()], metadata: ctx.metadata.addresses, jobs: ctx.registry.jobs.size };
    },
  };
}

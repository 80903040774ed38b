/**
 * The placement of a job this node does not serve (it never did, it restarted since, or the job moved off it),
 * looked up at a metadata server: so that a Redis client that reaches the node through an old `redisUrl` learns
 * where the job's keys are now (CLUSTER SLOTS, MOVED) instead of failing. A job's `redisUrl` names one node; nodes
 * come and go under a job (drains, restarts, restorations), and a Redis Cluster client needs only one node that
 * answers for the job to find the others.
 *
 * The metadata servers' addresses come from the controller (GetCluster with the admin token, which this node
 * signs with the cluster secret, as it signs the job's internal token for GetPlacement), kept for a minute. A
 * placement is kept for two seconds: a client reconnecting to a stale address costs one lookup, not one per
 * command. At most 4,096 jobs are kept.
 */
import type { Logger } from 'pino';
import { CONTROLLER_SERVICE, ControlClient, METADATA_SERVICE } from '../proto/grpc.ts';
import {
  ADMIN_SUBJECT,
  type AnnouncedPlacement,
  announcedPlacement,
  type ClientTls,
  type ControllerMethods,
  type MetadataMethods,
  metadataOrder,
  SatchelError,
  signToken,
} from '../proto/index.ts';

export interface PlacementLookupOptions {
  controller: string;
  secret: Uint8Array;
  logger: Logger;
  tls?: ClientTls;
}

const PLACEMENT_TTL_MS = 2_000;
/**
 * A failed lookup is kept this long: the command that asked is run again once its lookup settles
 * (resp-foreign.ts), and must find the failure (TRYAGAIN) rather than start another lookup, and another.
 */
const FAILURE_TTL_MS = 1_000;
const METADATA_TTL_MS = 60_000;
const MAX_KEPT = 4_096;
const CALL_TIMEOUT_MS = 2_000;

/** What a lookup found: the job's placement, or that the job is gone (NO_SUCH_JOB), or why it could not say. */
export type LookupResult = { placement: AnnouncedPlacement } | { gone: true } | { error: SatchelError };

export class PlacementLookup {
  private readonly controller: ControlClient<ControllerMethods>;
  private readonly metadata = new Map<string, ControlClient<MetadataMethods>>();
  private metadataAddresses: { at: number; list: string[] } | null = null;
  private readonly kept = new Map<string, { at: number; result: LookupResult }>();
  private readonly inFlight = new Map<string, Promise<LookupResult>>();
  private closed = false;

  constructor(private readonly options: PlacementLookupOptions) {
    this.controller = new ControlClient<ControllerMethods>(CONTROLLER_SERVICE, options.controller, CALL_TIMEOUT_MS, options.tls);
  }

  /** The job's placement now: from what was kept if fresh, else one lookup (shared by concurrent callers). */
  placementOf(jobId: string, now = Date.now()): LookupResult | Promise<LookupResult> {
    const kept = this.kept.get(jobId);
    if (kept !== undefined && now - kept.at < ('error' in kept.result ? FAILURE_TTL_MS : PLACEMENT_TTL_MS)) return kept.result;
    let pending = this.inFlight.get(jobId);
    if (pending === undefined) {
      pending = this.lookUp(jobId).then((result) => {
        this.inFlight.delete(jobId);
        this.kept.delete(jobId);
        this.kept.set(jobId, { at: Date.now(), result });
        if (this.kept.size > MAX_KEPT) this.kept.delete(this.kept.keys().next().value!);
        return result;
      });
      this.inFlight.set(jobId, pending);
    }
    return pending;
  }

  private async lookUp(jobId: string): Promise<LookupResult> {
    let last: SatchelError = new SatchelError('UNAVAILABLE', 'no metadata server is known');
    try {
      const token = signToken(this.options.secret, jobId);
      // Each job's placement is on a few of the servers (proto metadata-owners.ts): in its owners' order, the
      // owners come first while the servers are those it registered with. A server that does not hold it answers
      // NO_SUCH_JOB, so the job is gone only when every server says so.
      // A list kept from before a server joined may lack the job's owners: fetched afresh before the job is
      // called gone.
      const asked = new Set<string>();
      let gone = 0;
      for (const fresh of [false, true]) {
        for (const address of metadataOrder(jobId, await this.metadataServers(fresh))) {
          if (asked.has(address)) continue;
          asked.add(address);
          try {
            const placement = await this.metadataClient(address).call('GetPlacement', { jobId, token });
            return { placement: announcedPlacement(placement) };
          } catch (error) {
            const failure = asSatchelError(error);
            if (failure.code === 'NO_SUCH_JOB') gone++;
            else last = failure;
          }
        }
        if (gone < asked.size) break; // a server that could not say: not gone
      }
      if (gone > 0 && gone === asked.size) return { gone: true };
    } catch (error) {
      last = asSatchelError(error);
    }
    this.options.logger.debug({ job: jobId, code: last.code, reason: last.message }, 'placement lookup failed');
    return { error: last };
  }

  /** The metadata servers' addresses, kept for METADATA_TTL_MS unless `fresh`. */
  private async metadataServers(fresh = false): Promise<string[]> {
    const known = this.metadataAddresses;
    if (!fresh && known !== null && Date.now() - known.at < METADATA_TTL_MS && known.list.length > 0) return known.list;
    const cluster = await this.controller.call('GetCluster', { token: signToken(this.options.secret, ADMIN_SUBJECT) });
    this.metadataAddresses = { at: Date.now(), list: [...cluster.metadata] };
    return this.metadataAddresses.list;
  }

  private metadataClient(address: string): ControlClient<MetadataMethods> {
    let client = this.metadata.get(address);
    if (client === undefined) {
      client = new ControlClient<MetadataMethods>(METADATA_SERVICE, address, CALL_TIMEOUT_MS, this.options.tls);
      if (this.closed) client.close();
      this.metadata.set(address, client);
    }
    return client;
  }

  close(): void {
    this.closed = true;
    this.controller.close();
    for (const client of this.metadata.values()) client.close();
  }
}

function asSatchelError(error: unknown): SatchelError {
  return error instanceof SatchelError ? error : new SatchelError('UNAVAILABLE', String(error));
}

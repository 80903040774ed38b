/**
 * The metadata servers the controller publishes placements to: one HTTP/2 session each, as the admin. The calls go
 * through proto's LightControlClient (node:http2 and protobuf-lite), not grpc-js's client: every registration waits
 * for a SetPlacement, and grpc-js's client spent about twice the CPU and latency on it (perf/RESULTS.md, register).
 *
 * Sharded by job: each job's placement goes to its owners only, `copies` servers picked when it registers (proto
 * `metadataOwners`, rendezvous over the servers known then) and kept with the job (JobRecord.metadata), which its
 * tickets name. A server joining later takes its share of the jobs registered from then on (jobs are short-lived:
 * the share evens out within a few job lifetimes); jobs already placed stay where they are, so no lookup ever
 * finds a server that stopped hearing of its job. A job recorded before sharding (no owners) is on every server.
 *
 * A server whose call failed unanswered (UNAVAILABLE, TIMEOUT: dead, frozen, cut off) is marked down until it
 * answers again or registers again, and new jobs are not given it: with one of three servers dead and two copies
 * per job, a third of registrations otherwise failed on it, each after the call's timeout when it was frozen.
 */

import {
  clientTlsOf,
  forEachLimit,
  LightControlClient,
  type MetadataMethods,
  metadataOwners,
  SatchelError,
  type ServerTls,
  TRANSIENT_CODES,
  type WirePlacement,
} from '../proto/index.ts';
import type { CallFailures } from './call-failures.ts';

/** Placements sent at once to a server that joined (every job's): more would only queue behind its stream limit. */
const SEND_ALL_CONCURRENCY = 32;

export class MetadataLinks {
  private readonly clients = new Map<string, LightControlClient<MetadataMethods>>();
  /** Each job's owners (`assign`, `restore`); a job missing here is on every server. */
  private readonly owners = new Map<string, readonly string[]>();
  /** Servers whose last call failed unanswered. */
  private readonly down = new Set<string>();
  /** Counts servers marked down: a caller that sees it change knows one failed under it (`registerJob` tries again). */
  downMarks = 0;
  private joins = 0;

  constructor(
    private readonly adminToken: string,
    private readonly failures: CallFailures,
    private readonly copies: number,
    private readonly tls?: ServerTls,
  ) {}

  /** Picks the servers that will hold a new job's placement (the caller records them with the job). */
  assign(jobId: string): string[] {
    const all = this.addresses;
    const up = all.filter((address) => !this.down.has(address));
    const owners = metadataOwners(jobId, up.length > 0 ? up : all, this.copies);
    this.owners.set(jobId, owners);
    return owners;
  }

  /** A recovered job's owners, as its record kept them (undefined: a record from before sharding, every server). */
  restore(jobId: string, owners: readonly string[] | undefined): void {
    if (owners !== undefined && owners.length > 0) this.owners.set(jobId, owners);
  }

  /** The servers holding the job's placement: what its tickets name. */
  ownersOf(jobId: string): string[] {
    const owners = this.owners.get(jobId);
    return owners === undefined ? this.addresses : [...owners];
  }

  /** The sessions to the job's owners that have registered (one not back since a restart gets `sendAll`). */
  private clientsOf(jobId: string): LightControlClient<MetadataMethods>[] {
    const owners = this.owners.get(jobId);
    if (owners === undefined) return [...this.clients.values()];
    const out: LightControlClient<MetadataMethods>[] = [];
    for (const owner of owners) {
      const client = this.clients.get(owner);
      if (client !== undefined) out.push(client);
    }
    return out;
  }

  get addresses(): string[] {
    return [...this.clients.keys()];
  }

  /** Counts servers joining (again) and marked down: a placement sent before it changed may be missing on one (spare-jobs.ts). */
  get changes(): number {
    return this.joins + this.downMarks;
  }

  get size(): number {
    return this.clients.size;
  }

  /**
   * A session to the server at `address` (which the caller has checked), replacing any before, so a server that
   * registers again is reached afresh. True when the address is new.
   */
  connect(address: string): boolean {
    const known = this.clients.get(address);
    known?.close();
    this.joins++;
    this.down.delete(address);
    this.clients.set(address, new LightControlClient<MetadataMethods>('satchel.v1.Metadata', address, undefined, clientTlsOf(this.tls)));
    return known === undefined;
  }

  /** The placements it owns, to the server at `address` (it joined, or came back after a restart with nothing). */
  async sendAll(address: string, placements: Iterable<WirePlacement>): Promise<void> {
    const client = this.clients.get(address)!;
    const owned = [...placements].filter((placement) => this.owners.get(placement.jobId)?.includes(address) ?? true);
    await forEachLimit(owned, SEND_ALL_CONCURRENCY, async (placement) => {
      await client.call('SetPlacement', { placement, token: this.adminToken });
    });
  }

  /** The placement to the job's owners; the first failure is thrown (a placement change does not go on without it). */
  async publish(placement: WirePlacement): Promise<void> {
    await Promise.all(
      this.clientsOf(placement.jobId).map((client) =>
        this.watched(client, client.call('SetPlacement', { placement, token: this.adminToken })),
      ),
    );
  }

  /** `call`, marking its server down when it fails unanswered and up when it answers. */
  private watched<T>(client: LightControlClient<MetadataMethods>, call: Promise<T>): Promise<T> {
    return call.then(
      (reply) => {
        this.down.delete(client.address);
        return reply;
      },
      (error: unknown) => {
        if (
          error instanceof SatchelError &&
          TRANSIENT_CODES.includes(error.code) &&
          !this.down.has(client.address) &&
          this.clients.get(client.address) === client
        ) {
          this.down.add(client.address);
          this.downMarks++;
        }
        throw error;
      },
    );
  }

  /**
   * Drops a job's placement on its owners, and forgets them. A server that fails keeps it until it restarts (and
   * is sent its placements again): recorded, not thrown. The number of servers that failed.
   */
  async drop(jobId: string): Promise<number> {
    const clients = this.clientsOf(jobId);
    this.owners.delete(jobId);
    const results = await Promise.all(
      clients.map((client) =>
        this.watched(client, client.call('DropPlacement', { jobId, token: this.adminToken })).then(
          () => 0,
          (error: unknown) => {
            this.failures.record(
              'drop_placement',
              error,
              { metadata: client.address, job: jobId },
              'the server keeps the placement until it restarts',
            );
            return 1;
          },
        ),
      ),
    );
    return results.reduce((sum: number, n) => sum + n, 0);
  }

  close(): void {
    for (const client of this.clients.values()) client.close();
  }
}

/**
 * The metadata servers the controller publishes placements to: one HTTP/2 session each, as the admin. The calls go
 * through proto's LightControlClient (node:http2 and protobuf-lite), not grpc-js's client: every registration waits
 * for a SetPlacement, and grpc-js's client spent about twice the CPU and latency on it (perf/RESULTS.md, register).
 */

import { clientTlsOf, forEachLimit, LightControlClient, type MetadataMethods, type ServerTls, type WirePlacement } from '../proto/index.ts';
import type { CallFailures } from './call-failures.ts';

/** Placements sent at once to a server that joined (every job's): more would only queue behind its stream limit. */
const SEND_ALL_CONCURRENCY = 32;

export class MetadataLinks {
  private readonly clients = new Map<string, LightControlClient<MetadataMethods>>();

  constructor(
    private readonly adminToken: string,
    private readonly failures: CallFailures,
    private readonly tls?: ServerTls,
  ) {}

  get addresses(): string[] {
    return [...this.clients.keys()];
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
    this.clients.set(address, new LightControlClient<MetadataMethods>('satchel.v1.Metadata', address, undefined, clientTlsOf(this.tls)));
    return known === undefined;
  }

  /** Every placement, to the server at `address` (it joined, or came back after a restart with nothing). */
  async sendAll(address: string, placements: Iterable<WirePlacement>): Promise<void> {
    const client = this.clients.get(address)!;
    await forEachLimit([...placements], SEND_ALL_CONCURRENCY, async (placement) => {
      await client.call('SetPlacement', { placement, token: this.adminToken });
    });
  }

  /** The placement to every server; the first failure is thrown (a placement change does not go on without it). */
  async publish(placement: WirePlacement): Promise<void> {
    await Promise.all([...this.clients.values()].map((client) => client.call('SetPlacement', { placement, token: this.adminToken })));
  }

  /**
   * Drops a job's placement on every server. A server that fails keeps it until it restarts (and is sent every
   * placement again): recorded, not thrown. The number of servers that failed.
   */
  async drop(jobId: string): Promise<number> {
    const results = await Promise.all(
      [...this.clients.values()].map((client) =>
        client.call('DropPlacement', { jobId, token: this.adminToken }).then(
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

/** The metadata servers the controller publishes placements to: one gRPC channel each, as the admin. */

import { ControlClient, METADATA_SERVICE } from '../proto/grpc.ts';
import { clientTlsOf, type MetadataMethods, type ServerTls, type WirePlacement } from '../proto/index.ts';
import type { CallFailures } from './call-failures.ts';

export class MetadataLinks {
  private readonly clients = new Map<string, ControlClient<MetadataMethods>>();

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
   * A channel to the server at `address` (which the caller has checked), replacing any before: the old one to a
   * restarted server may sit in grpc's reconnect backoff (up to two minutes), and every registration and placement
   * change would fail until it retried. True when the address is new.
   */
  connect(address: string): boolean {
    const known = this.clients.get(address);
    known?.close();
    this.clients.set(address, new ControlClient<MetadataMethods>(METADATA_SERVICE, address, undefined, clientTlsOf(this.tls)));
    return known === undefined;
  }

  /** Every placement, to the server at `address` (it joined, or came back after a restart with nothing). */
  async sendAll(address: string, placements: Iterable<WirePlacement>): Promise<void> {
    const client = this.clients.get(address)!;
    await Promise.all([...placements].map((placement) => client.call('SetPlacement', { placement, token: this.adminToken })));
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

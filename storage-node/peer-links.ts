/**
 * Connections from this node to other storage nodes, one per (job, node): how the RESP front door of a replicated
 * job's primary hands the key's other copies their writes (resp/resp-replicas.ts), as the native client does
 * itself (client/replicas.ts). Each is a NodeConnection opened with the job's internal token, which this node
 * signs with the cluster secret it holds (proto/token.ts); under TLS it checks the peer against the cluster's CA.
 */
import { NodeConnection, signToken } from '../proto/index.ts';

export interface PeerLinksOptions {
  secret: Uint8Array;
  /** The cluster's CA (PEM) when nodes serve TLS. */
  tls?: { ca: string | Buffer };
  /** A copy that has not answered in this long fails the write (TIMEOUT); default 5 s. */
  timeoutMs?: number;
}

const DEFAULT_TIMEOUT_MS = 5_000;

export class PeerLinks {
  /** By job, then by the peer's data-plane address. */
  private readonly links = new Map<string, Map<string, NodeConnection>>();
  private closed = false;

  constructor(private readonly options: PeerLinksOptions) {}

  /** The connection to `address` for `jobId`'s writes, opened on first use. */
  connection(jobId: string, address: string): NodeConnection {
    let byAddress = this.links.get(jobId);
    if (byAddress === undefined) this.links.set(jobId, (byAddress = new Map()));
    let connection = byAddress.get(address);
    if (connection === undefined) {
      connection = new NodeConnection(address, signToken(this.options.secret, jobId), {
        timeoutMs: this.options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
        tls: this.options.tls,
      });
      if (this.closed) connection.destroy();
      byAddress.set(address, connection);
    }
    return connection;
  }

  /** Closes a job's connections (it was deregistered or moved off this node) once what they carry is answered. */
  forget(jobId: string, now = false): void {
    const byAddress = this.links.get(jobId);
    if (byAddress === undefined) return;
    this.links.delete(jobId);
    for (const connection of byAddress.values()) {
      if (now) connection.destroy();
      else void connection.close();
    }
  }

  get size(): number {
    let size = 0;
    for (const byAddress of this.links.values()) size += byAddress.size;
    return size;
  }

  close(): void {
    this.closed = true;
    for (const jobId of [...this.links.keys()]) this.forget(jobId, true);
  }
}

/**
 * Where a job's handle looks its placement up: the metadata servers its ticket names (the job's owners, the
 * controller's pick at registration: proto metadata-owners.ts), at the one that answered last, going on to the
 * next when one cannot be reached. Any other refusal (NO_SUCH_JOB: the job ended) is the answer.
 */
import { type ClientTls, LightControlClient, type MetadataMethods, SatchelError, type Ticket, type WirePlacement } from '../proto/index.ts';

/** What a server that cannot answer now fails with: the next one may. */
const TRY_NEXT = new Set(['UNAVAILABLE', 'TIMEOUT']);

export class MetadataLookup {
  private readonly clients: (LightControlClient<MetadataMethods> | null)[];
  /** The server that answered last, asked first. */
  private current = 0;

  constructor(
    private readonly ticket: Ticket,
    private readonly timeoutMs: number,
    private readonly tls: ClientTls | undefined,
  ) {
    this.clients = ticket.metadata.map(() => null);
  }

  async placement(): Promise<WirePlacement> {
    const { ticket } = this;
    let last: unknown;
    for (let tried = 0; tried < this.clients.length; tried++) {
      const i = (this.current + tried) % this.clients.length;
      try {
        const placement = await this.client(i).call('GetPlacement', { jobId: ticket.job, token: ticket.token });
        this.current = i;
        return placement;
      } catch (error) {
        if (!(error instanceof SatchelError) || !TRY_NEXT.has(error.code)) throw error;
        last = error;
      }
    }
    throw last;
  }

  close(): void {
    for (const client of this.clients) client?.close();
  }

  private client(i: number): LightControlClient<MetadataMethods> {
    let client = this.clients[i];
    if (client === null || client === undefined) {
      client = new LightControlClient<MetadataMethods>('satchel.v1.Metadata', this.ticket.metadata[i]!, this.timeoutMs, this.tls);
      this.clients[i] = client;
    }
    return client;
  }
}

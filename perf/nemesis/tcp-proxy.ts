/**
 * A TCP proxy the nemesis (and fault tests) put between two roles, to cut the link between them and heal it,
 * all on 127.0.0.1: `cut()` resets every connection through it and refuses new ones (a peer sees its calls
 * fail, as across a network partition that resets connections); `heal()` lets connections through again.
 * Each direction is piped with backpressure (`pipe`), so a slow peer slows the other instead of buffering.
 */
import net from 'node:net';

export class TcpProxy {
  private readonly sockets = new Set<net.Socket>();
  private cutNow = false;

  private constructor(
    private readonly server: net.Server,
    /** Where clients of the proxy connect (host:port). */
    readonly address: string,
    /** Where the proxy forwards to. */
    readonly target: string,
  ) {}

  /** Listens on 127.0.0.1 on a free port (or `port`), forwarding every connection to `target` (host:port). */
  static async start(target: string, port = 0): Promise<TcpProxy> {
    const i = target.lastIndexOf(':');
    const host = target.slice(0, i);
    const targetPort = Number(target.slice(i + 1));
    let proxy!: TcpProxy;
    const server = net.createServer({ noDelay: true }, (client) => proxy.accept(client, host, targetPort));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    const bound = server.address() as net.AddressInfo;
    proxy = new TcpProxy(server, `127.0.0.1:${bound.port}`, target);
    return proxy;
  }

  get isCut(): boolean {
    return this.cutNow;
  }

  /** Resets every connection through the proxy and refuses new ones until `heal`. */
  cut(): void {
    this.cutNow = true;
    for (const socket of this.sockets) socket.resetAndDestroy();
    this.sockets.clear();
  }

  heal(): void {
    this.cutNow = false;
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: net.Socket, host: string, port: number): void {
    if (this.cutNow) {
      client.resetAndDestroy();
      return;
    }
    const upstream = net.connect({ host, port, noDelay: true });
    for (const socket of [client, upstream]) {
      this.sockets.add(socket);
      socket.on('error', () => {});
      socket.once('close', () => {
        this.sockets.delete(socket);
        // One side gone: the other goes too (a half-open pair would hold the peer's calls until they time out).
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream);
    upstream.pipe(client);
  }
}

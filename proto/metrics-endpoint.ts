/**
 * The Prometheus scrape endpoint metadata servers and storage nodes share: `GET /metrics` over plain node:http
 * in the text exposition format. (The controller serves its /metrics from the console's fastify instead.)
 * Takes anything shaped like a prom-client Registry, so proto itself does not depend on prom-client.
 */
import type http from 'node:http';
import type net from 'node:net';

/** The part of prom-client's `Registry` the endpoint uses. */
export interface MetricsSource {
  metrics(): Promise<string>;
  readonly contentType: string;
}

export interface MetricsEndpoint {
  server: http.Server;
  /** `http://host:port/metrics`, with the port the OS picked when asked for 0. */
  address: string;
}

/** Answers GET /metrics from `source` (404 otherwise). Resolves once listening. node:http is loaded only here. */
export async function serveMetrics(source: MetricsSource, port: number, host: string): Promise<MetricsEndpoint> {
  const { createServer } = await import('node:http');
  const server = createServer((request, response) => {
    const path = (request.url ?? '').split('?')[0];
    if (path !== '/metrics' || (request.method !== 'GET' && request.method !== 'HEAD')) {
      response.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found: try GET /metrics\n');
      return;
    }
    source.metrics().then(
      (text) => response.writeHead(200, { 'content-type': source.contentType }).end(request.method === 'HEAD' ? undefined : text),
      (error: unknown) => response.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end(`${String(error)}\n`),
    );
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      const bound = (server.address() as net.AddressInfo).port;
      resolve({ server, address: `http://${host.includes(':') ? `[${host}]` : host}:${bound}/metrics` });
    });
  });
}

/** Closes a metrics endpoint, dropping idle keep-alive connections (a scraper keeps one open). */
export function closeMetricsEndpoint(endpoint: MetricsEndpoint): Promise<void> {
  return new Promise((resolve) => {
    endpoint.server.close(() => resolve());
    endpoint.server.closeAllConnections();
  });
}

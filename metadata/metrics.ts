/**
 * The metadata server's metrics: placements held, requests by method and outcome, and the process (prom-client's
 * default metrics), served as Prometheus text on `/metrics` (MetadataServerOptions.metricsPort).
 *
 * Requests are counted into a plain map from the start; prom-client and node:http are loaded, and the registry
 * built, only when the metrics are served (like storage-node/metrics.ts; the two parts share no code, each
 * imports only proto/).
 */
import type { Registry } from 'prom-client';

/** prom-client default metrics that fail `promtool check metrics` (gauges with a `_total` suffix). */
const LINT_FAILURES = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'];

/** The methods counted from the start, so their series exist at 0 before any request. */
const KNOWN_METHODS = ['GetPlacement', 'SetPlacement', 'DropPlacement'];

export class MetadataMetrics {
  /** Requests answered: `method status` → count. */
  private readonly requests = new Map<string, number>();
  private registryInstance: Promise<Registry> | null = null;

  /** `placements`: how many placements the server holds, read at scrape time. */
  constructor(private readonly placements: () => number) {
    for (const method of KNOWN_METHODS) this.requests.set(`${method} ok`, 0);
  }

  /** One request answered: `status` is `ok`, or the error's code in lower case (`unauthorized`, `internal`, ...). */
  count(method: string, status: string): void {
    const key = `${method} ${status}`;
    this.requests.set(key, (this.requests.get(key) ?? 0) + 1);
  }

  /** Requests answered so far with this method and status. */
  requestCount(method: string, status: string): number {
    return this.requests.get(`${method} ${status}`) ?? 0;
  }

  /** The server's own registry, with the process metrics: created (and prom-client loaded) on first use. */
  registry(): Promise<Registry> {
    return (this.registryInstance ??= import('prom-client').then((prom) => {
      const registry = new prom.Registry();
      prom.collectDefaultMetrics({ register: registry, prefix: 'satchel_metadata_' });
      // Gauges named `_total`, which `promtool check metrics` rejects; the same counts are there by type
      // (`satchel_metadata_nodejs_active_handles{type}`, ...).
      for (const name of LINT_FAILURES) registry.removeSingleMetric(`satchel_metadata_${name}`);
      const placements = this.placements;
      const requests = this.requests;
      new prom.Gauge({
        name: 'satchel_metadata_placements',
        help: 'Job placements the metadata server holds',
        registers: [registry],
        collect() {
          this.set(placements());
        },
      });
      new prom.Counter({
        name: 'satchel_metadata_requests_total',
        help: 'Requests answered, by method and status (ok, or the error code in lower case)',
        labelNames: ['method', 'status'],
        registers: [registry],
        collect() {
          this.reset();
          for (const [key, n] of requests) {
            const space = key.indexOf(' ');
            this.inc({ method: key.slice(0, space), status: key.slice(space + 1) }, n);
          }
        },
      });
      return registry;
    }));
  }
}

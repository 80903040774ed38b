import Fastify, { type FastifyInstance } from 'fastify';
import { Registry, collectDefaultMetrics, Gauge } from 'prom-client';
import { SatchelError } from '../proto/index.ts';
import { TIERS, type Tier } from './allocation.ts';
import type { JobRecord } from './registry.ts';
import type { Controller } from './server.ts';

/**
 * The admin console's first cut: read-only JSON about the cluster and its jobs, a plain page at `/`, and
 * `/metrics`. Built without `listen` so tests drive it with `app.inject()`.
 */
export interface ConsoleOptions {
  /** Bearer token mutating routes require. */
  adminToken: string;
}

export function buildConsole(controller: Controller, options: ConsoleOptions): FastifyInstance {
  const app = Fastify({ logger: false });
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'satchel_controller_' });
  new Gauge({ name: 'satchel_jobs', help: 'Registered jobs', registers: [registry], collect() { this.set(controller.registry.jobs.size); } });
  new Gauge({
    name: 'satchel_nodes',
    help: 'Registered storage nodes by tier',
    labelNames: ['tier'],
    registers: [registry],
    collect() {
      this.reset();
      for (const node of controller.registry.nodes.values()) this.inc({ tier: node.tier });
    },
  });

  app.get('/api/cluster', async () => ({
    controller: controller.address,
    metadata: controller.metadataAddresses,
    nodes: [...controller.registry.nodes.values()],
    jobs: controller.registry.jobs.size,
  }));
  app.get('/api/nodes', async () =>
    [...controller.registry.nodeStates()].map((node) => {
      const stats = controller.stats.get(node.id);
      return { ...node, stats: stats === undefined ? null : { ...stats, jobs: Object.fromEntries(stats.jobs) } };
    }),
  );
  app.get('/api/jobs', async () => [...controller.registry.jobs.values()].map((job) => jobSummary(job, controller)));
  app.get<{ Params: { id: string } }>('/api/jobs/:id', async (request, reply) => {
    const job = controller.registry.jobs.get(request.params.id);
    if (job === undefined) return reply.code(404).send({ code: 'NO_SUCH_JOB', message: `no job ${request.params.id}` });
    return { ...jobSummary(job, controller), hints: job.hints, placement: job.placement };
  });
  const unauthorized = (authorization: string | undefined) => authorization !== `Bearer ${options.adminToken}`;
  const UNAUTHORIZED = { code: 'UNAUTHORIZED', message: 'admin token required (Authorization: Bearer <adminToken>)' };

  app.get<{ Querystring: { after?: number } }>(
    '/api/events',
    { schema: { querystring: { type: 'object', properties: { after: { type: 'integer', minimum: 0 } }, additionalProperties: false } } },
    async (request) => controller.events.since(request.query.after ?? 0),
  );
  app.post<{ Body: { tier: Tier } }>(
    '/api/nodes',
    { schema: { body: { type: 'object', required: ['tier'], properties: { tier: { type: 'string', enum: [...TIERS] } }, additionalProperties: false } } },
    async (request, reply) => {
      if (unauthorized(request.headers.authorization)) return reply.code(401).send(UNAUTHORIZED);
      if (controller.provisioner === undefined) return reply.code(409).send({ code: 'BAD_REQUEST', message: 'this controller has no provisioner: start storage nodes by hand' });
      await controller.launchNode(request.body.tier, 'asked for through the console');
      return reply.code(202).send({ launching: request.body.tier });
    },
  );
  app.delete<{ Params: { id: string } }>('/api/nodes/:id', async (request, reply) => {
    if (unauthorized(request.headers.authorization)) return reply.code(401).send(UNAUTHORIZED);
    if (!controller.registry.nodes.has(request.params.id)) return reply.code(404).send({ code: 'BAD_REQUEST', message: `no node ${request.params.id}` });
    try {
      return await controller.removeNode(request.params.id, 'asked for through the console');
    } catch (error) {
      if (error instanceof SatchelError) return reply.code(409).send({ code: error.code, message: error.message });
      throw error;
    }
  });
  app.delete<{ Params: { id: string } }>('/api/jobs/:id', async (request, reply) => {
    if (unauthorized(request.headers.authorization)) return reply.code(401).send(UNAUTHORIZED);
    if (!controller.registry.jobs.has(request.params.id)) {
      return reply.code(404).send({ code: 'NO_SUCH_JOB', message: `no job ${request.params.id}` });
    }
    await controller.deregisterJob(request.params.id);
    return reply.code(204).send();
  });
  app.get('/metrics', async (_request, reply) => {
    reply.header('content-type', registry.contentType);
    return registry.metrics();
  });
  app.get('/', async (_request, reply) => {
    const nodes = [...controller.registry.nodes.values()];
    const jobs = [...controller.registry.jobs.values()];
    const rows = (items: string[][]) => items.map((r) => `<tr>${r.map((c) => `<td>${escapeHtml(c)}</td>`).join('')}</tr>`).join('');
    reply.type('text/html; charset=utf-8');
    return `<!doctype html><html><head><meta charset="utf-8"><title>Satchel</title>
<style>body{font:14px system-ui;margin:2em}table{border-collapse:collapse}td,th{padding:4px 10px;border-bottom:1px solid #ddd;text-align:left}</style></head>
<body><h1>Satchel</h1><p>Controller ${escapeHtml(controller.address ?? '')}</p>
<h2>Nodes (${nodes.length})</h2><table><tr><th>id</th><th>tier</th><th>address</th><th>capacity</th></tr>${rows(nodes.map((n) => [n.id, n.tier, n.address, formatBytes(n.capacity)]))}</table>
<h2>Jobs (${jobs.length})</h2><table><tr><th>id</th><th>name</th><th>tier</th><th>reservation</th><th>nodes</th></tr>${rows(jobs.map((j) => [j.id, j.name, j.tier, formatBytes(j.reservation), String(j.placement.generations[0]?.nodes.length ?? 0)]))}</table>
<p>JSON: <a href="/api/cluster">/api/cluster</a> · <a href="/api/jobs">/api/jobs</a> · <a href="/metrics">/metrics</a></p></body></html>`;
  });
  return app;
}

function jobSummary(job: JobRecord, controller: Controller) {
  return {
    id: job.id,
    name: job.name,
    tier: job.tier,
    reason: job.reason,
    reservation: job.reservation,
    /** Bytes the job holds, from the nodes' last reports (each at most a second old). */
    usage: controller.stats.jobUsage(job.id),
    leaseExpiresAt: new Date(job.leaseExpiresAt).toISOString(),
    createdAt: new Date(job.createdAt).toISOString(),
    epoch: job.placement.epoch,
    nodes: job.placement.generations[0]?.nodes ?? [],
  };
}

function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

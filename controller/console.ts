import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply } from 'fastify';
import type { Logger } from 'pino';
import { type ErrorCode, type JobHints, SatchelError, sameSecret, TIERS, type Tier } from '../proto/index.ts';
import type { ConsoleBackend } from './console-backend.ts';
import { LiveFeed, type StreamLimits } from './console-live.ts';
import { controllerMetrics } from './console-metrics.ts';
import { pageRoutes } from './console-page.ts';

/**
 * The admin console: the web UI at `/` (console-web/), JSON under `/api` with a JSON schema on every route
 * (fastify validates: bad input gets a 400 saying what is wrong), live updates as server-sent events
 * (`/api/stream`), and `/metrics`. Every route but the page and its assets needs a token (`Authorization:
 * Bearer`): the viewer or the admin token to read, the admin token to change anything. Built without `listen`
 * so tests drive it with `app.inject()`. It sees the controller only through `ConsoleBackend`
 * (console-backend.ts), which the Controller implements.
 */
export interface ConsoleOptions {
  /** Opens every route: reads and the mutating ones (`signToken(secret, ADMIN_SUBJECT)`). */
  adminToken: string;
  /** Opens the reads only: `/api` GETs, the live stream, `/metrics` (`signToken(secret, VIEWER_SUBJECT)`). */
  viewerToken: string;
  /** Where live streams dropped for falling behind are logged (warn); not logged without. */
  logger?: Pick<Logger, 'warn'>;
  /** Bounds of the live stream (console-live.ts `DEFAULT_STREAM_LIMITS`: 100 pages, 1 MiB backlog, 5 s stalled). */
  streamLimits?: Partial<StreamLimits>;
}

/** Who may call a route: anyone (the page, its script), a holder of either token, or of the admin token. */
type Access = 'open' | 'read' | 'admin';
type Role = 'viewer' | 'admin';

/** HTTP status for each SatchelError code a route can meet. */
const HTTP_STATUS: Record<ErrorCode, number> = {
  BAD_REQUEST: 400,
  UNAUTHORIZED: 401,
  NO_SUCH_JOB: 404,
  FULL: 409,
  TOO_LARGE: 413,
  STALE: 409,
  TIMEOUT: 504,
  UNAVAILABLE: 503,
  CLOSED: 503,
};

const id = { type: 'string', minLength: 1, maxLength: 200 } as const;
const idParams = { type: 'object', required: ['id'], properties: { id }, additionalProperties: false } as const;
const bytes = { type: 'number', minimum: 0 } as const;
const hintsSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    latencySensitive: { type: 'boolean' },
    capacity: bytes,
    peakThroughput: bytes,
    functions: { type: 'integer', minimum: 0 },
    maxValueBytes: bytes,
    replicas: { type: 'integer', minimum: 1, maximum: 3 },
  },
} as const;

export function buildConsole(backend: ConsoleBackend, options: ConsoleOptions): FastifyInstance {
  // An empty token would let `Authorization: Bearer ` in; one token for both roles would make readers admins.
  if (!options.adminToken || !options.viewerToken)
    throw new SatchelError('BAD_REQUEST', 'the console needs an admin token and a viewer token');
  if (options.adminToken === options.viewerToken) throw new SatchelError('BAD_REQUEST', 'the viewer token must not be the admin token');
  // A small body limit: no route takes more than a job name and hints.
  const app = Fastify({
    logger: false,
    bodyLimit: 64 * 1024,
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false } },
    // A URL the router refuses (bad percent-encoding, an over-long path parameter): the same typed answer.
    frameworkErrors: (error, _request, reply) => {
      void (reply as unknown as FastifyReply).code(error.statusCode ?? 400).send({ code: 'BAD_REQUEST', message: error.message });
    },
  });
  const live: LiveFeed = new LiveFeed(backend, {
    limits: options.streamLimits,
    onDrop: (dropped) => {
      metrics.streamsDropped.inc({ reason: dropped.reason });
      options.logger?.warn({ ...dropped, open: live.size }, 'console stream dropped: the page fell behind');
    },
  });
  const metrics = controllerMetrics(backend, live);
  app.addHook('onClose', async () => {
    live.close();
    metrics.close();
  });

  app.setErrorHandler((error: FastifyError, _request, reply) => {
    if (error instanceof SatchelError) return reply.code(HTTP_STATUS[error.code] ?? 500).send({ code: error.code, message: error.message });
    if (error.validation !== undefined) return reply.code(400).send({ code: 'BAD_REQUEST', message: error.message });
    if (error.statusCode !== undefined && error.statusCode < 500) {
      return reply.code(error.statusCode).send({ code: error.statusCode === 413 ? 'TOO_LARGE' : 'BAD_REQUEST', message: error.message });
    }
    return reply.code(500).send({ code: 'UNAVAILABLE', message: error.message });
  });

  app.setNotFoundHandler((request, reply) =>
    reply.code(404).send({ code: 'BAD_REQUEST', message: `no route ${request.method} ${request.url.slice(0, 200)}` }),
  );

  // Every route says who may call it (`config.access`): routes not marked `open` need a token, checked before
  // the body is looked at. A URL no route matches gets its 404, which tells nothing.
  const roleOf = (authorization: string | undefined): Role | null => {
    if (authorization === undefined || !authorization.startsWith('Bearer ')) return null;
    const token = authorization.slice('Bearer '.length).trim();
    if (token === '') return null;
    // Both compared every time, each in constant time: how long it takes says nothing about either token.
    const isAdmin = sameSecret(token, options.adminToken);
    const isViewer = sameSecret(token, options.viewerToken);
    return isAdmin ? 'admin' : isViewer ? 'viewer' : null;
  };
  app.addHook('onRequest', async (request, reply) => {
    if (request.routeOptions.url === undefined) return;
    const access = (request.routeOptions.config as { access?: Access }).access ?? 'admin';
    if (access === 'open') return;
    const authorization = request.headers.authorization;
    const role = roleOf(authorization);
    if (role === null) {
      // One that sent a token learns it is not this cluster's (a stale cluster.json), not that it sent none.
      const sent = authorization !== undefined && authorization.replace(/^Bearer\b/, '').trim() !== '';
      return reply
        .code(401)
        .header('www-authenticate', 'Bearer realm="satchel-console"')
        .send({
          code: 'UNAUTHORIZED',
          message: sent
            ? 'the token sent is not this cluster’s viewer or admin token: Authorization: Bearer <viewerToken or adminToken> (cluster.json)'
            : 'a token is required: Authorization: Bearer <viewerToken or adminToken> (cluster.json)',
        });
    }
    if (access === 'admin' && role !== 'admin') {
      return reply.code(403).send({
        code: 'UNAUTHORIZED',
        message: 'the viewer token only reads: this needs the admin token (Authorization: Bearer <adminToken>)',
      });
    }
  });
  const read = { config: { access: 'read' as Access } };
  const admin = { config: { access: 'admin' as Access } };
  const open = { config: { access: 'open' as Access } };

  app.get('/api/cluster', read, async () => backend.clusterView());
  app.get('/api/nodes', read, async () => backend.nodeViews());
  app.get('/api/jobs', read, async () => backend.jobViews());
  app.get<{ Params: { id: string } }>('/api/jobs/:id', { ...read, schema: { params: idParams } }, async (request) => {
    const job = backend.jobDetail(request.params.id);
    if (job === undefined) throw new SatchelError('NO_SUCH_JOB', `no job ${request.params.id}`);
    // The API's shape: the row, its hints and placement (the per-node shares are the backend's, for a page to come).
    const { perNode: _perNode, ...shown } = job;
    return shown;
  });
  app.get<{ Querystring: { after?: string } }>(
    '/api/events',
    // A query string is text (coercion is off for every route): the sequence number as digits.
    {
      ...read,
      schema: {
        querystring: { type: 'object', properties: { after: { type: 'string', pattern: '^[0-9]{1,15}$' } }, additionalProperties: false },
      },
    },
    async (request) => backend.clusterEvents(Number(request.query.after ?? 0)),
  );
  app.get('/api/stream', read, (request, reply) => {
    if (!live.hasRoom) {
      metrics.streamsRefused.inc();
      reply
        .code(503)
        .header('retry-after', '10')
        .send({
          code: 'UNAVAILABLE',
          message: `${live.maxStreams} console streams are open, as many as allowed: close a page or try again later`,
        });
      return;
    }
    reply.hijack();
    live.attach(reply.raw);
    request.raw.on('close', () => reply.raw.end());
  });

  app.post<{ Body: { name: string; hints?: JobHints } }>(
    '/api/jobs',
    {
      ...admin,
      schema: { body: { type: 'object', required: ['name'], additionalProperties: false, properties: { name: id, hints: hintsSchema } } },
    },
    async (request, reply) => {
      // The default tenant's job: the admin token stands for its key here.
      const registered = await backend.registerJob(request.body.name, request.body.hints ?? {});
      // The tokens and ticket go to whoever registered it (the driver token renews and deregisters); nobody
      // renews the lease for a console-made job.
      const { jobId, token, ticket, leaseMs, driverToken } = registered;
      return reply.code(201).send({ jobId, token, ticket, leaseMs, driverToken });
    },
  );
  // The job's Redis URL with a fresh data token in it (what the driver's `job.redisUrl` is): a credential to the
  // job's data, so admin only, a POST (each call signs a new token), and an event says it was handed out.
  app.post<{ Params: { id: string } }>('/api/jobs/:id/redis-url', { ...admin, schema: { params: idParams } }, async (request) => {
    const credentials = backend.redisCredentials(request.params.id);
    if (credentials === undefined) throw new SatchelError('NO_SUCH_JOB', `no job ${request.params.id}`);
    return credentials;
  });
  app.delete<{ Params: { id: string } }>('/api/jobs/:id', { ...admin, schema: { params: idParams } }, async (request, reply) => {
    await backend.deregisterJob(request.params.id);
    return reply.code(204).send();
  });
  app.post<{ Body: { tier: Tier } }>(
    '/api/nodes',
    {
      ...admin,
      schema: {
        body: {
          type: 'object',
          required: ['tier'],
          properties: { tier: { type: 'string', enum: [...TIERS] } },
          additionalProperties: false,
        },
      },
    },
    async (request, reply) => {
      if (!backend.canLaunchNodes())
        return reply.code(409).send({ code: 'BAD_REQUEST', message: 'this controller has no provisioner: start storage nodes by hand' });
      await backend.launchNode(request.body.tier, 'asked for through the console');
      return reply.code(202).send({ launching: request.body.tier });
    },
  );
  app.delete<{ Params: { id: string } }>('/api/nodes/:id', { ...admin, schema: { params: idParams } }, async (request, reply) => {
    if (!backend.hasNode(request.params.id)) return reply.code(404).send({ code: 'BAD_REQUEST', message: `no node ${request.params.id}` });
    try {
      return await backend.removeNode(request.params.id, 'asked for through the console');
    } catch (error) {
      // The drain was refused (no room elsewhere, or the provisioner cannot stop that node): a conflict.
      if (error instanceof SatchelError) return reply.code(409).send({ code: error.code, message: error.message });
      throw error;
    }
  });

  app.get('/metrics', read, async (_request, reply) => {
    reply.header('content-type', metrics.registry.contentType);
    return metrics.registry.metrics();
  });
  pageRoutes(app, open);
  return app;
}

/**
 * The console's JSON API against an in-process cluster: every route but the page needs a token (the viewer
 * token reads, the admin token also changes things; 401 without one, and nothing changes), schemas refuse bad
 * input with a 400 that says why, jobs carry their cost, the live stream pushes events and snapshots, drops a
 * page that stops reading and caps how many are open, and /metrics passes `promtool check metrics`. The page's
 * files are open and uncached as the page was; the page's own types of the API (console-web/types.ts) are held
 * to what the console sends, at compile time.
 */

import { connect, type Socket } from 'node:net';
import test from 'ava';
import type { FastifyInstance, InjectOptions } from 'fastify';
import { Redis } from 'ioredis';
import { Satchel } from '../client/index.ts';
import type { JobDetail, JobView, NodeView } from '../controller/console-backend.ts';
import type { snapshot } from '../controller/console-live.ts';
import type * as Page from '../controller/console-web/types.ts';
import { costOf, DEFAULT_PRICES } from '../controller/cost.ts';
import { buildConsole, type ConsoleOptions } from '../controller/index.ts';
import { signToken, VIEWER_SUBJECT } from '../proto/index.ts';
import { type InProcessCluster, startInProcessCluster } from './helpers/in-process.ts';
import { promtoolCheck, sample } from './helpers/promtool.ts';

/**
 * The page reads the API through its own types (the browser project cannot load the server's): each is a
 * `true` only while what the server builds still fits the page's type, so a field renamed on one side and not
 * the other fails `tsc --noEmit -p .`.
 */
type Fits<Server, PageType> = Server extends PageType ? true : never;
export const pageTypesFit: [
  Fits<ReturnType<typeof snapshot>, Page.Snapshot>,
  Fits<JobView, Page.JobRow>,
  Fits<NodeView, Page.NodeRow>,
  Fits<JobDetail, Page.JobDetail>,
] = [true, true, true, true];

let cluster: InProcessCluster;
let app: FastifyInstance;
let admin: Record<string, string>;
let viewer: Record<string, string>;
let tokens: Pick<ConsoleOptions, 'adminToken' | 'viewerToken'>;

test.before(async () => {
  cluster = await startInProcessCluster({ dram: 1, resp: true });
  tokens = { adminToken: cluster.adminToken, viewerToken: signToken(cluster.secret, VIEWER_SUBJECT) };
  app = buildConsole(cluster.controller, tokens);
  admin = { authorization: `Bearer ${tokens.adminToken}` };
  viewer = { authorization: `Bearer ${tokens.viewerToken}` };
});

test.after.always(async () => {
  await app?.close();
  await cluster?.close();
});

test('POST /api/jobs registers a job with the admin token; without it 401 and no job', async (t) => {
  const named = () => [...cluster.controller.registry.jobs.values()].filter((job) => job.name === 'console-made').length;
  const refused = await app.inject({ method: 'POST', url: '/api/jobs', payload: { name: 'console-made' } });
  t.is(refused.statusCode, 401);
  t.is(refused.json().code, 'UNAUTHORIZED');
  t.is(named(), 0, 'no job registered');
  const made = await app.inject({
    method: 'POST',
    url: '/api/jobs',
    headers: admin,
    payload: { name: 'console-made', hints: { latencySensitive: true, capacity: 1024 } },
  });
  t.is(made.statusCode, 201, made.body);
  const { jobId, ticket, driverToken } = made.json() as { jobId: string; ticket: string; driverToken: string };
  t.regex(ticket, /^st1_/);
  t.regex(driverToken, new RegExp(`^d1\\.${jobId}\\.`), 'the driver token comes with it: it renews and deregisters');
  const jobs = (await app.inject({ url: '/api/jobs', headers: viewer })).json() as {
    id: string;
    cost: { usd: number; byteSeconds: Record<string, number> };
  }[];
  const row = jobs.find((j) => j.id === jobId);
  t.truthy(row);
  t.is(typeof row!.cost.usd, 'number');
  t.deepEqual(
    (row as unknown as { hints: unknown }).hints,
    { latencySensitive: true, capacity: 1024 },
    'each row says what its job asked for',
  );
  t.is((await app.inject({ method: 'DELETE', url: `/api/jobs/${jobId}`, headers: admin })).statusCode, 204);
  t.is((await app.inject({ url: `/api/jobs/${jobId}`, headers: viewer })).statusCode, 404);
  const events = (
    (await app.inject({ url: '/api/events', headers: viewer })).json() as { kind: string; details?: { job?: string; cause?: string } }[]
  ).filter((e) => e.details?.job === jobId);
  t.deepEqual(
    events.map((e) => [e.kind, e.details?.cause]),
    [
      ['job-registered', undefined],
      ['job-deregistered', 'driver'],
    ],
  );
});

test('a job whose lease lapses is collected, and the events say so (job-collected, not job-deregistered)', async (t) => {
  const made = await app.inject({ method: 'POST', url: '/api/jobs', headers: admin, payload: { name: 'lapsing' } });
  t.is(made.statusCode, 201, made.body);
  const { jobId } = made.json() as { jobId: string };
  cluster.controller.registry.jobs.get(jobId)!.leaseExpiresAt = 0;
  const kinds = async () =>
    ((await app.inject({ url: '/api/events', headers: viewer })).json() as { kind: string; details?: { job?: string } }[])
      .filter((e) => e.details?.job === jobId)
      .map((e) => e.kind);
  const deadline = Date.now() + 5_000;
  while (!(await kinds()).includes('job-collected') && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
  t.deepEqual(await kinds(), ['job-registered', 'job-collected']);
  t.is(cluster.controller.registry.jobs.get(jobId), undefined);
});

test('every /api route and /metrics needs a token: the viewer token reads, only the admin token changes anything', async (t) => {
  const job = await cluster.controller.registerJob('guarded', { latencySensitive: true });
  t.teardown(() => cluster.controller.deregisterJob(job.jobId).catch(() => {}));
  const node = cluster.nodes[0]!.id;
  const reads: InjectOptions[] = [
    { url: '/api/cluster' },
    { url: '/api/nodes' },
    { url: '/api/jobs' },
    { url: `/api/jobs/${job.jobId}` },
    { url: '/api/events' },
    { url: '/api/events?after=0' },
    { url: '/metrics' },
    { method: 'HEAD', url: '/api/jobs' },
  ];
  const mutations: InjectOptions[] = [
    { method: 'POST', url: '/api/jobs', payload: { name: 'not-made' } },
    { method: 'DELETE', url: `/api/jobs/${job.jobId}` },
    { method: 'POST', url: '/api/nodes', payload: { tier: 'dram' } },
    { method: 'DELETE', url: `/api/nodes/${node}` },
    { method: 'POST', url: `/api/jobs/${job.jobId}/redis-url` },
  ];
  const wrong: [string, Record<string, string>][] = [
    ['no token', {}],
    ['an empty bearer', { authorization: 'Bearer ' }],
    ['a made-up token', { authorization: 'Bearer nope' }],
    [
      'the admin token one character off',
      { authorization: `Bearer ${tokens.adminToken.slice(0, -1)}${tokens.adminToken.endsWith('A') ? 'B' : 'A'}` },
    ],
    ['the viewer token with something after it', { authorization: `Bearer ${tokens.viewerToken}x` }],
    ['a viewer token of another secret', { authorization: `Bearer ${signToken(Buffer.alloc(32, 7), VIEWER_SUBJECT)}` }],
    ["the job's own token", { authorization: `Bearer ${job.token}` }],
    ['the admin token, not as a bearer', { authorization: tokens.adminToken }],
    ['the admin token in basic auth', { authorization: `Basic ${Buffer.from(`admin:${tokens.adminToken}`).toString('base64')}` }],
  ];
  for (const request of [...reads, ...mutations, { url: '/api/stream' }]) {
    const what = `${request.method ?? 'GET'} ${request.url}`;
    for (const [how, headers] of wrong) {
      const response = await app.inject({ ...request, headers });
      t.is(response.statusCode, 401, `${what} with ${how}`);
      if (request.method !== 'HEAD') {
        t.like(response.json(), { code: 'UNAUTHORIZED' }, `${what} with ${how}`);
        const none = how === 'no token' || how === 'an empty bearer';
        t.regex(response.json().message, none ? /a token is required/ : /not this cluster’s/, `${what} with ${how}`);
      }
      t.false(response.body.includes(job.jobId), `${what} with ${how} tells nothing`);
    }
  }
  for (const request of reads) {
    for (const [role, headers] of [
      ['viewer', viewer],
      ['admin', admin],
    ] as const) {
      const response = await app.inject({ ...request, headers });
      t.is(response.statusCode, 200, `${role}: ${request.method ?? 'GET'} ${request.url}`);
    }
  }
  for (const request of mutations) {
    const response = await app.inject({ ...request, headers: viewer });
    t.is(response.statusCode, 403, `viewer: ${request.method} ${request.url}`);
    t.like(response.json(), { code: 'UNAUTHORIZED' });
    t.regex(response.json().message, /admin token/);
  }
  // Named, not counted: the file's other tests make and end jobs meanwhile (one's lease lapses), and a faster
  // registration made the count race them.
  t.false(
    [...cluster.controller.registry.jobs.values()].some((j) => j.name === 'not-made'),
    'no job made',
  );
  t.true(cluster.controller.registry.jobs.has(job.jobId), 'none removed');
  t.true(cluster.controller.registry.nodes.has(node), 'the node was not drained');
  // Spelled another way, a route is still the route, and still needs its token.
  for (const url of ['/%61pi/jobs', '/api/jobs/', '/api//jobs', '/api/jobs?x=1']) {
    const response = await app.inject({ url });
    t.true([401, 404].includes(response.statusCode), `${url}: ${response.statusCode}`);
  }
  // The page and its files stay open: they hold no data.
  for (const url of ['/', '/assets/console.js', '/assets/console.css', '/favicon.ico', '/assets/chart.umd.min.js']) {
    t.is((await app.inject({ url })).statusCode, 200, url);
  }
});

test('the page, its script, style and icon: built files, open, with no cache headers; Chart.js cached for a day', async (t) => {
  const files: [string, RegExp, RegExp][] = [
    ['/', /^text\/html; charset=utf-8$/, /<script src="\/assets\/console\.js"><\/script>/],
    ['/assets/console.js', /^application\/javascript; charset=utf-8$/, /#job-detail/],
    ['/assets/console.css', /^text\/css; charset=utf-8$/, /@container/],
    ['/favicon.ico', /^image\/svg\+xml$/, /^<svg /],
  ];
  for (const [url, type, body] of files) {
    const response = await app.inject({ url });
    t.is(response.statusCode, 200, url);
    t.regex(String(response.headers['content-type']), type, url);
    t.regex(response.body, body, url);
    // A page and a script from two builds never meet: nothing is kept, as when the script was inline.
    for (const header of ['cache-control', 'etag', 'last-modified']) t.is(response.headers[header], undefined, `${url} ${header}`);
  }
  const chart = await app.inject({ url: '/assets/chart.umd.min.js' });
  t.is(chart.headers['cache-control'], 'max-age=86400');
  t.regex(String(chart.headers['content-type']), /^text\/javascript/);
  // Only the page's files: other paths are the console's 404, not a directory listing or a file elsewhere.
  for (const url of [
    '/index.html',
    '/assets/',
    '/assets/../package.json',
    '/assets/%2e%2e/console.ts',
    '/assets/tsconfig.json',
    '/assets/main.ts',
  ]) {
    const response = await app.inject({ url });
    t.is(response.statusCode, 404, url);
    t.is(response.json().code, 'BAD_REQUEST', url);
  }
});

// Serial (ava runs these before the others): the job it registers would upset tests that count the jobs.
test.serial("GET /api/jobs/:id has what the page's job view shows: its hints and every generation", async (t) => {
  const job = await cluster.controller.registerJob('detailed', { capacity: 8 * 1024 * 1024, latencySensitive: true });
  t.teardown(() => cluster.controller.deregisterJob(job.jobId).catch(() => {}));
  const detail = (await app.inject({ url: `/api/jobs/${job.jobId}`, headers: viewer })).json() as Page.JobDetail;
  t.deepEqual(detail.hints, { capacity: 8 * 1024 * 1024, latencySensitive: true });
  t.is(detail.placement.epoch, detail.epoch);
  t.deepEqual(detail.placement.generations[0]?.nodes, detail.nodes);
  t.true(detail.reservation >= 8 * 1024 * 1024);
});

test.serial("a job's Redis URL: every reader sees its nodes' RESP front doors, the admin gets the URL with a working token", async (t) => {
  const job = await cluster.controller.registerJob('redis-console', {});
  t.teardown(() => cluster.controller.deregisterJob(job.jobId).catch(() => {}));
  const fn = await Satchel.attach(job.ticket, { timeoutMs: 5_000 });
  t.teardown(() => fn.close());
  await fn.put('native/key', 'put natively');
  const resp = cluster.nodes[0]!.respAddress!;
  t.regex(resp, /^127\.0\.0\.1:\d+$/);

  // The job's view, for the viewer too: where Redis clients connect, and the URL's form without a credential.
  const detail = (await app.inject({ url: `/api/jobs/${job.jobId}`, headers: viewer })).json() as Page.JobDetail;
  t.deepEqual(detail.redis, {
    scheme: 'redis',
    nodes: [{ id: cluster.nodes[0]!.id, resp }],
    address: resp,
    url: `redis://${job.jobId}:<token>@${resp}`,
  });
  t.false(JSON.stringify(detail).includes('v2.'), 'no data token in what the viewer reads');

  // The URL itself: admin only; a fresh data token of the job, which a Redis client authenticates with.
  const refused = await app.inject({ method: 'POST', url: `/api/jobs/${job.jobId}/redis-url`, headers: viewer });
  t.is(refused.statusCode, 403);
  t.false(refused.body.includes('v2.'));
  const given = await app.inject({ method: 'POST', url: `/api/jobs/${job.jobId}/redis-url`, headers: admin });
  t.is(given.statusCode, 200, given.body);
  const { url, expiresAt } = given.json() as { url: string; expiresAt: string };
  t.regex(url, new RegExp(`^redis://${job.jobId}:v2\\.${job.jobId}\\.[^@]+@${resp.replace(/\./g, '\\.')}$`));
  t.true(Date.parse(expiresAt) > Date.now());
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  t.teardown(() => redis.disconnect());
  await redis.connect();
  t.is(await redis.get('native/key'), 'put natively', 'the URL opens the job: a Redis client reads what the native client put');
  t.is((await app.inject({ method: 'POST', url: '/api/jobs/no-such-job/redis-url', headers: admin })).statusCode, 404);

  // Handing a credential out is an event naming the job.
  const events = (await app.inject({ url: '/api/events', headers: viewer })).json() as Page.ClusterEvent[];
  t.true(events.some((e) => e.kind === 'job-token-issued' && e.details?.job === job.jobId));
});

test('the console will not start with a missing token, or the admin token as the viewer token', (t) => {
  t.throws(() => buildConsole(cluster.controller, { ...tokens, viewerToken: '' }), { message: /viewer token/ });
  t.throws(() => buildConsole(cluster.controller, { ...tokens, adminToken: '' }), { message: /admin token/ });
  t.throws(() => buildConsole(cluster.controller, { ...tokens, viewerToken: tokens.adminToken }), {
    message: /must not be the admin token/,
  });
});

test('every route checks its input: a 400 naming the problem, before anything happens', async (t) => {
  const cases: [string, InjectOptions, RegExp][] = [
    ['name of the wrong type', { method: 'POST', url: '/api/jobs', headers: admin, payload: { name: 5 } }, /name must be string/],
    ['a missing name', { method: 'POST', url: '/api/jobs', headers: admin, payload: {} }, /must have required property 'name'/],
    [
      'an unknown field',
      { method: 'POST', url: '/api/jobs', headers: admin, payload: { name: 'x', colour: 'red' } },
      /must NOT have additional properties/,
    ],
    [
      'replicas out of range',
      { method: 'POST', url: '/api/jobs', headers: admin, payload: { name: 'x', hints: { replicas: 9 } } },
      /replicas must be <= 3/,
    ],
    [
      'a negative capacity',
      { method: 'POST', url: '/api/jobs', headers: admin, payload: { name: 'x', hints: { capacity: -1 } } },
      /capacity must be >= 0/,
    ],
    [
      'an unknown tier',
      { method: 'POST', url: '/api/nodes', headers: admin, payload: { tier: 'tape' } },
      /must be equal to one of the allowed values/,
    ],
    ['a bad cursor', { method: 'GET', url: '/api/events?after=soon', headers: viewer }, /after must match pattern/],
    [
      'not JSON',
      { method: 'POST', url: '/api/jobs', headers: { ...admin, 'content-type': 'application/json' }, payload: '{"name":' },
      /JSON/,
    ],
  ];
  // Jobs of the names these requests carry: other tests register jobs of their own meanwhile.
  const made = () =>
    [...cluster.controller.registry.jobs.values()].filter((job) => job.name === 'x' || job.name === 'x'.repeat(100)).length;
  for (const [what, request, message] of cases) {
    const response = await app.inject(request);
    t.is(response.statusCode, 400, what);
    t.is(response.json().code, 'BAD_REQUEST', what);
    t.regex(response.json().message, message, what);
  }
  const huge = await app.inject({
    method: 'POST',
    url: '/api/jobs',
    headers: admin,
    payload: { name: 'x'.repeat(100), hints: {}, pad: 'y'.repeat(100_000) },
  });
  t.is(huge.statusCode, 413, 'a body over 64 KiB is refused unread');
  t.is(made(), 0, 'no job was made by any of them');
});

test('POST /api/nodes without a provisioner is a conflict; DELETE of an unknown node a 404', async (t) => {
  const added = await app.inject({ method: 'POST', url: '/api/nodes', headers: admin, payload: { tier: 'ssd' } });
  t.is(added.statusCode, 409);
  t.regex(added.json().message, /no provisioner/);
  t.is((await app.inject({ method: 'DELETE', url: '/api/nodes/nope', headers: admin })).statusCode, 404);
  t.is((await app.inject({ method: 'DELETE', url: '/api/nodes/nope' })).statusCode, 401);
});

test('the live stream sends the recent events, then a snapshot every second, and each new event', async (t) => {
  const address = await app.listen({ port: 0, host: '127.0.0.1' });
  const abort = new AbortController();
  t.teardown(() => abort.abort());
  const response = await fetch(`${address}/api/stream`, { headers: viewer, signal: abort.signal });
  t.regex(response.headers.get('content-type') ?? '', /text\/event-stream/);
  const reader = response.body!.getReader();
  let text = '';
  const until = async (pattern: RegExp) => {
    while (!pattern.test(text)) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`stream ended before ${pattern}`);
      text += Buffer.from(value).toString('utf8');
    }
  };
  await until(/event: events\ndata: \[.*\]\n\n/);
  await until(/event: snapshot\ndata: \{.*"nodes":\[.*\}\n\n/);
  cluster.controller.events.add('scale-up', 'a test pretends the tier is hot', { tier: 'dram' });
  await until(/event: cluster-event\ndata: \{[^\n]*"a test pretends the tier is hot"/);
  await until(/event: snapshot[\s\S]*event: snapshot/); // the next second's
  const snapshot = JSON.parse(/event: snapshot\ndata: (.*)\n/.exec(text)![1]!) as {
    nodes: unknown[];
    jobs: unknown[];
    totals: { opsPerSec: number };
  };
  t.is(snapshot.nodes.length, 1);
  t.is(typeof snapshot.totals.opsPerSec, 'number');

  // A page opened later gets the totals of the last minutes first, so its charts start filled.
  const later = await fetch(`${address}/api/stream`, { headers: viewer, signal: abort.signal });
  const laterReader = later.body!.getReader();
  let laterText = '';
  while (!/event: history\ndata: .*\n\n/.test(laterText)) laterText += Buffer.from((await laterReader.read()).value!).toString('utf8');
  const history = JSON.parse(/event: history\ndata: (.*)\n/.exec(laterText)![1]!) as { t: number; totals: { opsPerSec: number } }[];
  t.true(history.length >= 1, 'at least one sampled second');
  t.true(history.every((point, i) => typeof point.totals.opsPerSec === 'number' && (i === 0 || point.t > history[i - 1]!.t)));
});

/** Sends GET /api/stream on a raw socket that never reads what comes back (a page frozen, or an attacker). */
function stuckStream(address: string, token: string): Socket {
  const { hostname, port } = new URL(address);
  const socket = connect(Number(port), hostname);
  socket.pause();
  socket.write(`GET /api/stream HTTP/1.1\r\nhost: ${hostname}\r\nauthorization: Bearer ${token}\r\n\r\n`);
  return socket;
}

/** Reads an SSE response as text; `until(pattern)` waits for it to show up. */
function reading(response: Response) {
  const reader = response.body!.getReader();
  let text = '';
  return {
    get text() {
      return text;
    },
    async until(pattern: RegExp | string, ms = 10_000) {
      const deadline = Date.now() + ms;
      while (typeof pattern === 'string' ? !text.includes(pattern) : !pattern.test(text)) {
        if (Date.now() > deadline) throw new Error(`no ${pattern} within ${ms} ms`);
        const { value, done } = await reader.read();
        if (done) throw new Error(`stream ended before ${pattern}`);
        text += Buffer.from(value).toString('utf8');
        // Keep only the tail: the events are large, and patterns look at what just came.
        if (text.length > 4_000_000) text = text.slice(-1_000_000);
      }
    },
  };
}

async function metricsOf(web: FastifyInstance): Promise<string> {
  return (await web.inject({ url: '/metrics', headers: viewer })).body;
}

/**
 * A console of its own cluster (the events these tests make are large; the other tests' streams do not see
 * them), listening on 127.0.0.1.
 */
async function ownConsole(t: import('ava').ExecutionContext, limits: ConsoleOptions['streamLimits']) {
  const own = await startInProcessCluster({ dram: 0 });
  const web = buildConsole(own.controller, { adminToken: own.adminToken, viewerToken: tokens.viewerToken, streamLimits: limits });
  t.teardown(async () => {
    await web.close();
    await own.close();
  });
  const address = await web.listen({ port: 0, host: '127.0.0.1' });
  return { own, web, address };
}

/** Resolves when the socket's stream ends (what the server sent read first); rejects after `ms`. */
function ended(socket: Socket, ms: number): Promise<number> {
  return new Promise((resolve, reject) => {
    let bytes = 0;
    const timer = setTimeout(() => reject(new Error(`the stream was still open after ${ms} ms (${bytes} bytes read)`)), ms);
    socket.on('data', (chunk: Buffer) => (bytes += chunk.length));
    socket.on('error', () => {});
    socket.once('close', () => {
      clearTimeout(timer);
      resolve(bytes);
    });
    socket.resume();
  });
}

test('a page that stops reading is dropped once 256 KiB more are queued for it; a page that reads keeps its stream', async (t) => {
  t.timeout(30_000);
  const { own, web, address } = await ownConsole(t, { maxBacklogBytes: 256 * 1024, stallMs: 60_000 });
  const abort = new AbortController();
  t.teardown(() => abort.abort());
  const good = reading(await fetch(`${address}/api/stream`, { headers: viewer, signal: abort.signal }));
  await good.until(/event: snapshot\n/);
  const stuck = stuckStream(address, tokens.viewerToken);
  t.teardown(() => stuck.destroy());
  await waitFor(async () => sample(await metricsOf(web), 'satchel_console_streams') === 2, 5_000, 'both streams open');

  // Cluster events of 32 KiB each, 4 at a time, until the server gives up on the page that is not reading: the
  // kernel's buffers take a few MiB first, then 256 KiB more are queued for it.
  const reason = 'r'.repeat(32 * 1024);
  let sent = 0;
  while (sample(await metricsOf(web), 'satchel_console_streams_dropped_total{reason="backlog"}') === 0) {
    if (sent >= 800) throw new Error('25 MiB of events, and the page that does not read is still streamed to');
    for (let i = 0; i < 4; i++) own.controller.events.add('scale-up', `${reason} ${sent++}`, { tier: 'dram' });
    await good.until(`r ${sent - 1}"`);
  }
  t.log(`dropped after ${sent} events of 32 KiB`);
  const metrics = await metricsOf(web);
  t.is(sample(metrics, 'satchel_console_streams'), 1, 'only the reading page is left');
  t.is(sample(metrics, 'satchel_console_streams_dropped_total{reason="stalled"}'), 0);

  // The reading page still gets what happens next, and snapshots.
  own.controller.events.add('scale-down', 'after the drop', { tier: 'dram' });
  await good.until(/event: cluster-event\ndata: [^\n]*"after the drop"/);
  await good.until(/"after the drop"[\s\S]*event: snapshot\n/);
  // The stuck socket, read at last, ends: what the kernel held, then the server's close (it would never end
  // on its own: a stream that keeps up lasts as long as the page).
  const bytes = await ended(stuck, 10_000);
  t.true(bytes < sent * 32 * 1024, `it got ${bytes} bytes, not every event`);
});

test('a page that has taken nothing for the stall time is dropped, even with little to send', async (t) => {
  t.timeout(30_000);
  const { own, web, address } = await ownConsole(t, { maxBacklogBytes: 1024 ** 3, stallMs: 1_000 });
  const stuck = stuckStream(address, tokens.viewerToken);
  t.teardown(() => stuck.destroy());
  await waitFor(async () => sample(await metricsOf(web), 'satchel_console_streams') === 1, 5_000, 'the stream open');
  // Enough to fill the kernel's buffers (a few MiB), so writes start to wait; then nothing more is added.
  const reason = 's'.repeat(128 * 1024);
  for (let i = 0; i < 80; i++) own.controller.events.add('scale-up', reason, { tier: 'dram' });
  await waitFor(
    async () => sample(await metricsOf(web), 'satchel_console_streams_dropped_total{reason="stalled"}') === 1,
    10_000,
    'the stalled page dropped',
  );
  t.is(sample(await metricsOf(web), 'satchel_console_streams'), 0);
  await ended(stuck, 10_000);
  t.pass();
});

test('at most maxStreams pages stream at once: one more gets a 503 saying why', async (t) => {
  const { web, address } = await ownConsole(t, { maxStreams: 2 });
  const aborts = [new AbortController(), new AbortController()];
  t.teardown(() => {
    for (const a of aborts) a.abort();
  });
  for (const abort of aborts) t.is((await fetch(`${address}/api/stream`, { headers: viewer, signal: abort.signal })).status, 200);
  const refused = await fetch(`${address}/api/stream`, { headers: viewer });
  t.is(refused.status, 503);
  t.truthy(refused.headers.get('retry-after'));
  const body = (await refused.json()) as { code: string; message: string };
  t.is(body.code, 'UNAVAILABLE');
  t.regex(body.message, /2 console streams are open/);
  t.is(sample(await metricsOf(web), 'satchel_console_streams_refused_total'), 1);
  // One page closes: another may open.
  aborts[0]!.abort();
  await waitFor(async () => sample(await metricsOf(web), 'satchel_console_streams') === 1, 5_000, 'the closed page gone');
  const third = new AbortController();
  t.teardown(() => third.abort());
  t.is((await fetch(`${address}/api/stream`, { headers: viewer, signal: third.signal })).status, 200);
});

async function waitFor(check: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

test('GET /api/events?after=N: only the events after sequence number N', async (t) => {
  const first = cluster.controller.events.add('scale-up', 'first of two', { tier: 'dram' });
  cluster.controller.events.add('scale-down', 'second of two', { tier: 'dram' });
  const after = await app.inject({ url: `/api/events?after=${first.seq}`, headers: viewer });
  t.is(after.statusCode, 200);
  // Only the scale events: the file's other tests add job events meanwhile.
  t.deepEqual(
    (after.json() as { kind: string; reason: string }[]).filter((e) => e.kind.startsWith('scale')).map((e) => e.reason),
    ['second of two'],
  );
});

test('/metrics is valid Prometheus text (promtool check metrics)', async (t) => {
  const job = await cluster.controller.registerJob('metered', { latencySensitive: true });
  t.teardown(() => cluster.controller.deregisterJob(job.jobId).catch(() => {}));
  const body = (await app.inject({ url: '/metrics', headers: viewer })).body;
  for (const name of [
    'satchel_console_streams',
    'satchel_console_streams_dropped_total',
    'satchel_console_streams_refused_total',
    'satchel_jobs',
    'satchel_nodes',
    'satchel_reserved_bytes',
    'satchel_used_bytes',
    'satchel_node_utilization_ratio',
    'satchel_job_cost_usd',
    'satchel_cluster_events_total',
    'satchel_controller_process_cpu_seconds_total',
  ]) {
    t.regex(body, new RegExp(`^${name}`, 'm'), name);
  }
  const checked = promtoolCheck(body);
  t.is(checked.code, 0, checked.output);
});

test('cost: byte-seconds per tier at the price per GB-month', (t) => {
  const month = 30 * 24 * 3600;
  t.is(costOf({ dram: 1e9 * month }, DEFAULT_PRICES), 1.87);
  t.is(Math.round(costOf({ ssd: 2e9 * month, hdd: 1e9 * month }, DEFAULT_PRICES) * 1000) / 1000, 0.245);
  t.is(costOf(undefined, DEFAULT_PRICES), 0);
});

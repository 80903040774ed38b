/**
 * The console's JSON API against an in-process cluster: schemas refuse bad input with a 400 that says why,
 * mutating routes need the admin token (401, and nothing changes), jobs carry their cost, the live stream
 * pushes events and snapshots, and /metrics passes `promtool check metrics`.
 */
import test from 'ava';
import type { FastifyInstance, InjectOptions } from 'fastify';
import { buildConsole } from '../controller/index.ts';
import { costOf, DEFAULT_PRICES } from '../controller/cost.ts';
import { startInProcessCluster, type InProcessCluster } from './helpers/in-process.ts';
import { promtoolCheck } from './helpers/promtool.ts';

let cluster: InProcessCluster;
let app: FastifyInstance;
let admin: Record<string, string>;

test.before(async () => {
  cluster = await startInProcessCluster({ dram: 1 });
  app = buildConsole(cluster.controller, { adminToken: cluster.adminToken });
  admin = { authorization: `Bearer ${cluster.adminToken}` };
});

test.after.always(async () => {
  await app?.close();
  await cluster?.close();
});

test('POST /api/jobs registers a job with the admin token; without it 401 and no job', async (t) => {
  const before = cluster.controller.registry.jobs.size;
  const refused = await app.inject({ method: 'POST', url: '/api/jobs', payload: { name: 'console-made' } });
  t.is(refused.statusCode, 401);
  t.is(refused.json().code, 'UNAUTHORIZED');
  t.is(cluster.controller.registry.jobs.size, before);
  const made = await app.inject({ method: 'POST', url: '/api/jobs', headers: admin, payload: { name: 'console-made', hints: { latencySensitive: true, capacity: 1024 } } });
  t.is(made.statusCode, 201, made.body);
  const { jobId, ticket } = made.json() as { jobId: string; ticket: string };
  t.regex(ticket, /^st1_/);
  const jobs = (await app.inject({ url: '/api/jobs' })).json() as { id: string; cost: { usd: number; byteSeconds: Record<string, number> } }[];
  const row = jobs.find((j) => j.id === jobId);
  t.truthy(row);
  t.is(typeof row!.cost.usd, 'number');
  t.is((await app.inject({ method: 'DELETE', url: `/api/jobs/${jobId}`, headers: admin })).statusCode, 204);
  t.is((await app.inject({ url: `/api/jobs/${jobId}` })).statusCode, 404);
});

test('every route checks its input: a 400 naming the problem, before anything happens', async (t) => {
  const cases: [string, InjectOptions, RegExp][] = [
    ['name of the wrong type', { method: 'POST', url: '/api/jobs', headers: admin, payload: { name: 5 } }, /name must be string/],
    ['a missing name', { method: 'POST', url: '/api/jobs', headers: admin, payload: {} }, /must have required property 'name'/],
    ['an unknown field', { method: 'POST', url: '/api/jobs', headers: admin, payload: { name: 'x', colour: 'red' } }, /must NOT have additional properties/],
    ['replicas out of range', { method: 'POST', url: '/api/jobs', headers: admin, payload: { name: 'x', hints: { replicas: 9 } } }, /replicas must be <= 3/],
    ['a negative capacity', { method: 'POST', url: '/api/jobs', headers: admin, payload: { name: 'x', hints: { capacity: -1 } } }, /capacity must be >= 0/],
    ['an unknown tier', { method: 'POST', url: '/api/nodes', headers: admin, payload: { tier: 'tape' } }, /must be equal to one of the allowed values/],
    ['a bad cursor', { method: 'GET', url: '/api/events?after=soon' }, /after must match pattern/],
    ['not JSON', { method: 'POST', url: '/api/jobs', headers: { ...admin, 'content-type': 'application/json' }, payload: '{"name":' }, /JSON/],
  ];
  const jobs = cluster.controller.registry.jobs.size;
  for (const [what, request, message] of cases) {
    const response = await app.inject(request);
    t.is(response.statusCode, 400, what);
    t.is(response.json().code, 'BAD_REQUEST', what);
    t.regex(response.json().message, message, what);
  }
  const huge = await app.inject({ method: 'POST', url: '/api/jobs', headers: admin, payload: { name: 'x'.repeat(100), hints: {}, pad: 'y'.repeat(100_000) } });
  t.is(huge.statusCode, 413, 'a body over 64 KiB is refused unread');
  t.is(cluster.controller.registry.jobs.size, jobs, 'no job was made by any of them');
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
  const response = await fetch(`${address}/api/stream`, { signal: abort.signal });
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
  const snapshot = JSON.parse(/event: snapshot\ndata: (.*)\n/.exec(text)![1]!) as { nodes: unknown[]; jobs: unknown[]; totals: { opsPerSec: number } };
  t.is(snapshot.nodes.length, 1);
  t.is(typeof snapshot.totals.opsPerSec, 'number');

  // A page opened later gets the totals of the last minutes first, so its charts start filled.
  const later = await fetch(`${address}/api/stream`, { signal: abort.signal });
  const laterReader = later.body!.getReader();
  let laterText = '';
  while (!/event: history\ndata: .*\n\n/.test(laterText)) laterText += Buffer.from((await laterReader.read()).value!).toString('utf8');
  const history = JSON.parse(/event: history\ndata: (.*)\n/.exec(laterText)![1]!) as { t: number; totals: { opsPerSec: number } }[];
  t.true(history.length >= 1, 'at least one sampled second');
  t.true(history.every((point, i) => typeof point.totals.opsPerSec === 'number' && (i === 0 || point.t > history[i - 1]!.t)));
});

test('GET /api/events?after=N: only the events after sequence number N', async (t) => {
  const first = cluster.controller.events.add('scale-up', 'first of two', { tier: 'dram' });
  cluster.controller.events.add('scale-down', 'second of two', { tier: 'dram' });
  const after = await app.inject({ url: `/api/events?after=${first.seq}` });
  t.is(after.statusCode, 200);
  t.deepEqual((after.json() as { reason: string }[]).map((e) => e.reason), ['second of two']);
});

test('/metrics is valid Prometheus text (promtool check metrics)', async (t) => {
  const job = await cluster.controller.registerJob('metered', { latencySensitive: true });
  t.teardown(() => cluster.controller.deregisterJob(job.jobId).catch(() => {}));
  const body = (await app.inject({ url: '/metrics' })).body;
  for (const name of ['satchel_jobs', 'satchel_nodes', 'satchel_reserved_bytes', 'satchel_used_bytes', 'satchel_node_utilization_ratio', 'satchel_job_cost_usd', 'satchel_cluster_events_total', 'satchel_controller_process_cpu_seconds_total']) {
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

/**
 * The console over a ConsoleBackend that is not a Controller: what it serves comes from the interface alone.
 * And the per-job detail a page can show: requested (hints), reserved and used, node by node.
 */

import { randomBytes } from 'node:crypto';
import test from 'ava';
import { ADMIN_SUBJECT, signToken, VIEWER_SUBJECT } from '../proto/index.ts';
import { buildConsole } from './console.ts';
import { type ConsoleBackend, type JobDetail, jobDetail, nodeView, redisAccess, redisUrlOf } from './console-backend.ts';
import { DEFAULT_PRICES } from './cost.ts';
import type { ClusterEvent } from './events.ts';
import { IDLE_JOB } from './node-stats.ts';
import type { JobRecord, NodeRecord } from './registry.ts';

const GiB = 1024 ** 3;
const job: JobRecord = {
  id: 'sort-1',
  name: 'sort',
  hints: { capacity: 3 * GiB },
  tier: 'dram',
  reason: 'no tier hints',
  reservation: 3 * GiB,
  createdAt: 0,
  leaseExpiresAt: 60_000,
  placement: {
    jobId: 'sort-1',
    epoch: 2,
    generations: [
      {
        nodes: [
          { id: 'a', address: '127.0.0.1:1', weight: 2 },
          { id: 'b', address: '127.0.0.1:2', weight: 1 },
        ],
      },
      { nodes: [{ id: 'a', address: '127.0.0.1:1', weight: 1 }] },
    ],
    blockSize: 1 << 20,
    maxValueBytes: 1 << 30,
  },
};

test('jobDetail: each node of the newest generation with its share of the reservation and what it holds', (t) => {
  const used: Record<string, number> = { a: 5, b: 7 };
  const rates = { opsPerSec: 300, bytesInPerSec: 1e6, bytesOutPerSec: 2e6, latencyMeanUs: 85 };
  const detail = jobDetail(job, 12, rates, DEFAULT_PRICES, (id) => used[id] ?? 0);
  t.deepEqual(detail.perNode, [
    { id: 'a', weight: 2, reserved: 2 * GiB, used: 5 },
    { id: 'b', weight: 1, reserved: GiB, used: 7 },
  ]);
  t.deepEqual(detail.hints, { capacity: 3 * GiB });
  t.is(detail.usage, 12);
  t.is(detail.generations, 2);
  t.like(detail, rates, "the job's own throughput and latency");
});

test('redisAccess: the RESP front doors of the newest generation as the registry knows them, a URL naming one not lost, no token', (t) => {
  const node = (id: string, fields: Partial<NodeRecord>): [string, NodeRecord] => [
    id,
    { id, tier: 'dram', address: '127.0.0.1:1', capacity: GiB, bandwidth: 1, registeredAt: 0, ...fields },
  ];
  // No node with a RESP front door: nothing to name.
  const none = redisAccess(job, new Map(), false);
  t.deepEqual(none, {
    scheme: 'redis',
    nodes: [
      { id: 'a', resp: null },
      { id: 'b', resp: null },
    ],
    address: null,
    url: null,
  });
  t.is(redisUrlOf(none, job.id, 'v2.sort-1.x.y'), null);
  t.is(jobDetail(job, 0, IDLE_JOB, DEFAULT_PRICES, () => 0).redis.url, null, 'a detail without the registry names none');

  // The registry's address wins over the placement's (the node restarted on another port); a lost node is not named.
  const placed: JobRecord = structuredClone(job);
  placed.placement.generations[0]!.nodes[0]!.respAddress = '10.0.0.1:6379';
  placed.placement.generations[0]!.nodes[1]!.respAddress = '10.0.0.2:6379';
  const registry = new Map([node('a', { respAddress: '10.0.0.1:6380', lost: true }), node('b', {})]);
  const access = redisAccess(placed, registry, true);
  t.deepEqual(access.nodes, [
    { id: 'a', resp: '10.0.0.1:6380' },
    { id: 'b', resp: '10.0.0.2:6379' },
  ]);
  t.is(access.address, '10.0.0.2:6379');
  t.is(access.url, 'rediss://sort-1:<token>@10.0.0.2:6379', 'TLS: rediss');
  t.is(redisUrlOf(access, job.id, 'v2.sort-1.k2.mac_-'), 'rediss://sort-1:v2.sort-1.k2.mac_-@10.0.0.2:6379');
  // Every node lost: the URL still names one (a client retries; the console says which are lost).
  registry.set('b', { ...registry.get('b')!, lost: true });
  t.is(redisAccess(placed, registry, false).address, '10.0.0.1:6380');
});

test('the console serves what the backend gives, and asks it for the admin actions', async (t) => {
  const secret = randomBytes(32);
  const asked: string[] = [];
  const event: ClusterEvent = { seq: 1, at: new Date(0).toISOString(), kind: 'scale-up', reason: 'a test' };
  const backend: ConsoleBackend = {
    clusterView: () => ({
      controller: '127.0.0.1:7070',
      metadata: ['127.0.0.1:7071'],
      nodes: [],
      jobs: 1,
      prices: DEFAULT_PRICES,
      autoscaler: null,
    }),
    nodeViews: () => [],
    nodeFigures: () => [],
    jobViews: () => [jobDetail(job, 0, IDLE_JOB, DEFAULT_PRICES, () => 0)],
    jobDetail: (id): JobDetail | undefined => (id === job.id ? jobDetail(job, 0, IDLE_JOB, DEFAULT_PRICES, () => 0) : undefined),
    redisCredentials: (id) => {
      if (id !== job.id) return undefined;
      asked.push(`redis-url ${id}`);
      return { url: 'redis://sort-1:v2.sort-1.x.y@127.0.0.1:6379', expiresAt: new Date(0).toISOString() };
    },
    clusterEvents: (after = 0) => (after < 1 ? [event] : []),
    onClusterEvent: () => () => {},
    nodeLoads: () => [],
    nodeCallFailures: () => new Map([['drop_job', 3]]),
    spareJobs: () => ({ ready: 2, taken: 5, missed: 1 }),
    hasNode: (id) => id === 'a',
    canLaunchNodes: () => false,
    registerJob: async (name) => {
      asked.push(`register ${name}`);
      return { jobId: 'x-1', token: 't', ticket: 'st1_x', leaseMs: 1, placement: null, driverToken: 'd' };
    },
    deregisterJob: async (id) => void asked.push(`deregister ${id}`),
    launchNode: async (tier) => void asked.push(`launch ${tier}`),
    removeNode: async (id) => {
      asked.push(`remove ${id}`);
      return { node: id, jobs: 0, keys: 0, bytes: 0, seconds: 0 };
    },
  };
  const app = buildConsole(backend, { adminToken: signToken(secret, ADMIN_SUBJECT), viewerToken: signToken(secret, VIEWER_SUBJECT) });
  t.teardown(() => app.close());
  const headers = { authorization: `Bearer ${signToken(secret, ADMIN_SUBJECT)}` };
  t.like((await app.inject({ url: '/api/cluster', headers })).json(), { controller: '127.0.0.1:7070', jobs: 1 });
  const detail = (await app.inject({ url: `/api/jobs/${job.id}`, headers })).json();
  t.like(detail, { id: job.id, hints: job.hints, placement: job.placement });
  t.false('perNode' in detail, "the API's shape is as it was");
  t.is((await app.inject({ url: '/api/jobs/nope', headers })).statusCode, 404);
  t.deepEqual((await app.inject({ url: '/api/events?after=0', headers })).json(), [event]);
  const metrics = (await app.inject({ url: '/metrics', headers })).body;
  t.regex(metrics, /^satchel_controller_node_call_failures_total\{op="drop_job"\} 3$/m);
  t.regex(metrics, /^satchel_spare_jobs 2$/m);
  t.regex(metrics, /^satchel_spare_job_lookups_total\{outcome="taken"\} 5$/m);
  t.regex(metrics, /^satchel_spare_job_lookups_total\{outcome="missed"\} 1$/m);
  t.is((await app.inject({ method: 'POST', url: '/api/nodes', headers, payload: { tier: 'dram' } })).statusCode, 409, 'no provisioner');
  t.is((await app.inject({ method: 'DELETE', url: '/api/nodes/zz', headers })).statusCode, 404);
  t.is((await app.inject({ method: 'DELETE', url: '/api/nodes/a', headers })).statusCode, 200);
  t.is((await app.inject({ method: 'POST', url: '/api/jobs', headers, payload: { name: 'made' } })).statusCode, 201);
  const viewer = { authorization: `Bearer ${signToken(secret, VIEWER_SUBJECT)}` };
  t.is(
    (await app.inject({ method: 'POST', url: `/api/jobs/${job.id}/redis-url`, headers: viewer })).statusCode,
    403,
    'a credential: admin only',
  );
  t.is((await app.inject({ method: 'POST', url: '/api/jobs/nope/redis-url', headers })).json().code, 'NO_SUCH_JOB');
  const credentials = await app.inject({ method: 'POST', url: `/api/jobs/${job.id}/redis-url`, headers });
  t.deepEqual(credentials.json(), { url: 'redis://sort-1:v2.sort-1.x.y@127.0.0.1:6379', expiresAt: new Date(0).toISOString() });
  t.is((await app.inject({ method: 'DELETE', url: `/api/jobs/${job.id}`, headers })).statusCode, 204);
  t.deepEqual(asked, ['remove a', 'register made', `redis-url ${job.id}`, `deregister ${job.id}`]);
});

test('a node view survives JSON: its per-job figures become objects (a Map would serialize as {}); per-job rates stay off it', (t) => {
  const node = { id: 'a', tier: 'dram', address: '127.0.0.1:1', capacity: GiB, bandwidth: 1, reserved: 0 };
  const stats = {
    at: 1,
    cpu: 0.1,
    bytesInPerSec: 0,
    bytesOutPerSec: 0,
    opsPerSec: 0,
    used: 5,
    capacity: GiB,
    jobs: new Map([['sort-1', 5]]),
    fullRefusals: new Map([['sort-1', 3]]),
    jobRates: new Map([['sort-1', IDLE_JOB]]),
    latencyP50Us: null,
    latencyP99Us: null,
  };
  const sent = JSON.parse(JSON.stringify(nodeView(node as never, stats, false))) as {
    stats: { jobs: unknown; fullRefusals: unknown; jobRates?: unknown };
  };
  t.deepEqual(sent.stats.jobs, { 'sort-1': 5 });
  t.deepEqual(sent.stats.fullRefusals, { 'sort-1': 3 });
  t.false('jobRates' in sent.stats, "a job's rates are on its row, not the node's");
});

/**
 * The console over a ConsoleBackend that is not a Controller: what it serves comes from the interface alone.
 * And the per-job detail a page can show: requested (hints), reserved and used, node by node.
 */

import { randomBytes } from 'node:crypto';
import test from 'ava';
import { ADMIN_SUBJECT, signToken, VIEWER_SUBJECT } from '../proto/index.ts';
import { buildConsole } from './console.ts';
import { type ConsoleBackend, type JobDetail, jobDetail, nodeView } from './console-backend.ts';
import { DEFAULT_PRICES } from './cost.ts';
import type { ClusterEvent } from './events.ts';
import { IDLE_JOB } from './node-stats.ts';
import type { JobRecord } from './registry.ts';

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
    jobViews: () => [jobDetail(job, 0, IDLE_JOB, DEFAULT_PRICES, () => 0)],
    jobDetail: (id): JobDetail | undefined => (id === job.id ? jobDetail(job, 0, IDLE_JOB, DEFAULT_PRICES, () => 0) : undefined),
    clusterEvents: (after = 0) => (after < 1 ? [event] : []),
    onClusterEvent: () => () => {},
    nodeLoads: () => [],
    nodeCallFailures: () => new Map([['drop_job', 3]]),
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
  t.regex((await app.inject({ url: '/metrics', headers })).body, /^satchel_controller_node_call_failures_total\{op="drop_job"\} 3$/m);
  t.is((await app.inject({ method: 'POST', url: '/api/nodes', headers, payload: { tier: 'dram' } })).statusCode, 409, 'no provisioner');
  t.is((await app.inject({ method: 'DELETE', url: '/api/nodes/zz', headers })).statusCode, 404);
  t.is((await app.inject({ method: 'DELETE', url: '/api/nodes/a', headers })).statusCode, 200);
  t.is((await app.inject({ method: 'POST', url: '/api/jobs', headers, payload: { name: 'made' } })).statusCode, 201);
  t.is((await app.inject({ method: 'DELETE', url: `/api/jobs/${job.id}`, headers })).statusCode, 204);
  t.deepEqual(asked, ['remove a', 'register made', `deregister ${job.id}`]);
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

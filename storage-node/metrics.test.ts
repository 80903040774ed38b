import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { pino } from 'pino';
import { NodeConnection, Op, Status, signToken } from '../proto/index.ts';
import { promtoolCheck, sample } from '../test/helpers/promtool.ts';
import { NodeMetrics, OpKind } from './metrics.ts';
import { type RunningStorageNode, type StorageNodeOptions, startStorageNode } from './node.ts';

const MiB = 1024 * 1024;
const secret = randomBytes(32);
const logger = pino({ level: 'silent' });

async function startNode(t: ExecutionContext, options: Partial<StorageNodeOptions> = {}): Promise<RunningStorageNode> {
  const node = await startStorageNode({ tier: 'dram', capacity: 64 * MiB, secret, logger, host: '127.0.0.1', metricsPort: 0, ...options });
  t.teardown(() => node.close());
  return node;
}

function connect(t: ExecutionContext, address: string, job = 'job-m'): NodeConnection {
  const connection = new NodeConnection(address, signToken(secret, job), { timeoutMs: 5_000 });
  t.teardown(() => connection.destroy());
  return connection;
}

test('GET /metrics counts ops, value bytes and service times by op and tier, with capacity and usage; promtool accepts it', async (t) => {
  const node = await startNode(t);
  t.regex(node.metricsAddress ?? '', /^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
  const c = connect(t, node.address);
  for (const [key, size] of [
    ['a', 1000],
    ['b', 24],
    ['c', 1],
  ] as const) {
    t.is((await c.request({ op: Op.PUT, epoch: 1, key, value: Buffer.alloc(size, 7) })).status, Status.OK);
  }
  t.is((await c.request({ op: Op.GET, epoch: 1, key: 'a' })).status, Status.OK);
  t.is((await c.request({ op: Op.GET, epoch: 1, key: 'missing' })).status, Status.NOT_FOUND);
  t.is((await c.request({ op: Op.STAT, epoch: 1, key: 'b' })).status, Status.OK);
  t.is((await c.request({ op: Op.DELETE, epoch: 1, key: 'c' })).status, Status.OK);
  t.is((await c.request({ op: Op.LIST, epoch: 1 })).status, Status.OK);
  t.is((await c.request({ op: Op.PUT, epoch: 1, value: Buffer.from('x') })).status, Status.BAD_REQUEST, 'an empty key is refused');

  const response = await fetch(node.metricsAddress!);
  t.is(response.status, 200);
  t.regex(response.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  const text = await response.text();
  const at = (series: string) => sample(text, series);
  t.is(at('satchel_node_ops_total{op="put",tier="dram",status="ok"}'), 3);
  t.is(at('satchel_node_ops_total{op="put",tier="dram",status="error"}'), 1);
  t.is(at('satchel_node_ops_total{op="get",tier="dram",status="ok"}'), 1);
  t.is(at('satchel_node_ops_total{op="get",tier="dram",status="not_found"}'), 1);
  t.is(at('satchel_node_ops_total{op="stat",tier="dram",status="ok"}'), 1);
  t.is(at('satchel_node_ops_total{op="delete",tier="dram",status="ok"}'), 1);
  t.is(at('satchel_node_ops_total{op="list",tier="dram",status="ok"}'), 1);
  t.is(at('satchel_node_ops_total{op="other",tier="dram",status="ok"}'), 1, 'the HELLO');
  t.is(at('satchel_node_bytes_total{direction="in",tier="dram"}'), 1025, 'value bytes of the PUTs that got that far');
  t.is(at('satchel_node_bytes_total{direction="out",tier="dram"}'), 1000, 'value bytes of the GET answers');
  // One op at a time: every one is timed, so the histogram counts match the op counts exactly.
  t.is(at('satchel_node_op_duration_seconds_count{op="put",tier="dram"}'), 4);
  t.is(at('satchel_node_op_duration_seconds_bucket{op="put",tier="dram",le="+Inf"}'), 4);
  t.is(at('satchel_node_op_duration_seconds_count{op="get",tier="dram"}'), 2);
  t.true((at('satchel_node_op_duration_seconds_sum{op="get",tier="dram"}') ?? 0) > 0);
  t.true((at('satchel_node_op_duration_seconds_sum{op="get",tier="dram"}') ?? 1) < 1, 'seconds, not ms');
  t.is(at(`satchel_node_capacity_bytes{tier="dram",node="${node.id}"}`), 64 * MiB);
  t.is(at(`satchel_node_used_bytes{tier="dram",node="${node.id}"}`), node.server.engine.used);
  t.true(node.server.engine.used > 0);
  t.is(at(`satchel_node_jobs{tier="dram",node="${node.id}"}`), 1);
  t.is(at(`satchel_node_connections{tier="dram",node="${node.id}"}`), 1);
  t.not(at('satchel_node_process_cpu_user_seconds_total'), undefined, 'process metrics, with the node prefix');
  t.regex(text, /^satchel_node_nodejs_eventloop_lag_seconds /m);

  const check = promtoolCheck(text);
  t.is(check.code, 0, `promtool check metrics:\n${check.output}`);
});

test('the metrics server answers only GET /metrics, and closes with the node', async (t) => {
  const node = await startNode(t);
  const base = node.metricsAddress!.replace(/\/metrics$/, '');
  t.is((await fetch(`${base}/`)).status, 404);
  t.is((await fetch(`${base}/metricsx`)).status, 404);
  t.is((await fetch(`${base}/metrics`, { method: 'POST', body: 'x' })).status, 404);
  t.is((await fetch(`${base}/metrics?x=1`)).status, 200);
  await node.close();
  await t.throwsAsync(fetch(node.metricsAddress!));
});

test('without metricsPort a node serves no metrics, but still counts', async (t) => {
  const node = await startNode(t, { metricsPort: undefined });
  t.is(node.metricsAddress, null);
  const c = connect(t, node.address);
  t.is((await c.request({ op: Op.PUT, epoch: 1, key: 'k', value: Buffer.from('v') })).status, Status.OK);
  t.is(node.server.metrics.opsCount('put', 'ok'), 1);
  t.is(node.server.metrics.valueBytes('in'), 1);
});

test('a disk tier is counted and timed under its own tier (answers from the engine promise)', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'satchel-metrics-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const node = await startNode(t, { tier: 'ssd', path: dir });
  const c = connect(t, node.address);
  const replies = await Promise.all([
    c.request({ op: Op.PUT, epoch: 1, key: 'a', value: Buffer.alloc(100 * 1024, 1) }),
    c.request({ op: Op.PUT, epoch: 1, key: 'b', value: Buffer.from('bee') }),
    c.request({ op: Op.GET, epoch: 1, key: 'b' }),
  ]);
  t.deepEqual(
    replies.map((r) => r.status),
    [Status.OK, Status.OK, Status.OK],
  );
  const text = await (await fetch(node.metricsAddress!)).text();
  t.is(sample(text, 'satchel_node_ops_total{op="put",tier="ssd",status="ok"}'), 2);
  t.is(sample(text, 'satchel_node_ops_total{op="get",tier="ssd",status="ok"}'), 1);
  t.is(sample(text, 'satchel_node_op_duration_seconds_count{op="put",tier="ssd"}'), 2);
  t.is(sample(text, 'satchel_node_op_duration_seconds_count{op="get",tier="ssd"}'), 1);
  t.is(sample(text, 'satchel_node_bytes_total{direction="in",tier="ssd"}'), 100 * 1024 + 3);
  t.is(sample(text, 'satchel_node_bytes_total{direction="out",tier="ssd"}'), 3);
  t.is(promtoolCheck(text).code, 0);
});

test('a value over the limit counts as a failed put', async (t) => {
  const node = await startNode(t, { maxValueBytes: 1024 });
  const c = connect(t, node.address);
  t.is((await c.request({ op: Op.PUT, epoch: 1, key: 'big', value: Buffer.alloc(2048) })).status, Status.TOO_LARGE);
  t.is(
    (await c.request({ op: Op.PUT, epoch: 1, key: 'huge', value: Buffer.alloc(MiB) })).status,
    Status.TOO_LARGE,
    'skipped unread by the decoder',
  );
  t.is(node.server.metrics.opsCount('put', 'error'), 2);
  t.is(node.server.metrics.valueBytes('in'), 0);
});

/** Records one op of `ms` milliseconds (the clock set back by that much, as a read would have). */
function op(metrics: NodeMetrics, kind: number, ms: number, status: number = Status.OK): void {
  metrics.markFree();
  metrics.clock[0]! -= ms;
  metrics.beginOp();
  metrics.record(kind, status);
}

test('takeLatency: p50 and p99 of the interval, in µs, then a fresh interval', (t) => {
  const metrics = new NodeMetrics({ node: 'n', tier: 'dram' });
  t.deepEqual(metrics.takeLatency(), { p50Us: null, p99Us: null });
  for (let i = 0; i < 90; i++) op(metrics, OpKind.get, 0.05);
  for (let i = 0; i < 10; i++) op(metrics, OpKind.put, 5);
  op(metrics, OpKind.other, 100); // HELLO, PING, admin: not the data path's service time
  const { p50Us, p99Us } = metrics.takeLatency();
  t.true(p50Us! >= 50 * 0.93 && p50Us! < 50 * 1.07 + 30, `p50 ${p50Us}`);
  t.true(p99Us! >= 5000 * 0.93 && p99Us! < 5000 * 1.07 + 30, `p99 ${p99Us}`);
  t.deepEqual(metrics.takeLatency(), { p50Us: null, p99Us: null }, 'the interval starts over');
  op(metrics, OpKind.list, 1);
  const next = metrics.takeLatency();
  t.true(next.p50Us! >= 930 && next.p50Us! < 1100 && next.p50Us === next.p99Us);
});

test('under load service time is sampled, each sample standing for the untimed ops of its kind', async (t) => {
  const metrics = new NodeMetrics({ node: 'n', tier: 'dram' });
  const count = async (op: 'get' | 'put') => {
    const values = metrics.durationValues('d');
    return values.find((v) => v.metricName === 'd_count' && v.labels.op === op)!.value;
  };
  // One read carrying 100 frames, answered back to back.
  metrics.markFree();
  for (let i = 0; i < 100; i++) {
    metrics.beginOp();
    metrics.record(i % 4 === 0 ? OpKind.put : OpKind.get, Status.OK);
  }
  t.is(metrics.opsCount('get', 'ok'), 75);
  t.is(metrics.opsCount('put', 'ok'), 25);
  const gets = await count('get');
  const puts = await count('put');
  t.true(gets + puts < 100, 'not every op was timed');
  t.true(gets > 0 && puts > 0, `${gets} gets, ${puts} puts`);
  // The next read's first op carries what its kind left untimed: the counts add up again.
  op(metrics, OpKind.get, 0.01);
  op(metrics, OpKind.put, 0.01);
  t.is(await count('get'), 76);
  t.is(await count('put'), 26);
});

/**
 * End to end against a real local cluster (controller, metadata and two DRAM storage nodes as child processes,
 * as `satchel up` runs them). One cluster for the file; every test registers its own job.
 */

import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import test, { type ExecutionContext } from 'ava';
import { type RegisteredJob, Satchel } from '../client/index.ts';
import { LocalCluster } from '../deploy/index.ts';
import { decodeTicket } from '../proto/index.ts';
import { firstCall, pattern, rejection } from './helpers/assert.ts';
import { runTs } from './helpers/process.ts';

const MiB = 1024 * 1024;
const FUNCTION = fileURLToPath(new URL('./fixtures/function.ts', import.meta.url));

let cluster: LocalCluster;
let satchel: Satchel;

test.before(async () => {
  cluster = await LocalCluster.start({ dram: 2, dramCapacity: 256 * MiB });
  satchel = await Satchel.connect(cluster.controller, { key: cluster.tenantKey, timeoutMs: 10_000 });
});

test.after.always(async () => {
  satchel?.close();
  await cluster?.stop();
});

/** A throughput hint past one node's declared 1 GB/s: the policy places the job on both nodes. */
const TWO_NODES = { peakThroughput: 1.5e9 };

async function register(t: ExecutionContext, name: string, hints = {}): Promise<RegisteredJob> {
  const job = await satchel.registerJob(name, hints);
  t.teardown(() => job.deregister().catch(() => {}));
  return job;
}

test('the cluster is up: controller, metadata and two DRAM nodes, each its own process', (t) => {
  t.regex(cluster.controller, /^127\.0\.0\.1:\d+$/);
  t.is(cluster.info.metadata.length, 1);
  t.is(cluster.info.nodes.length, 2);
  t.is(cluster.nodePids.size, 2);
  const pids = new Set(cluster.pids);
  t.is(pids.size, 4);
  t.false(pids.has(process.pid));
});

test('register, then a function in a separate process attaches from the ticket, reads and writes', async (t) => {
  const job = await register(t, 'sort-10g');
  await job.put('input/0', 'hello from the driver');
  const run = await runTs(FUNCTION, [job.ticket, 'input/0', 'output/0']);
  t.is(run.code, 0, run.stderr + run.stdout);
  const summary = JSON.parse(run.stdout.trim()) as { job: string; input: string; keys: string[]; size: number; bigOk: boolean };
  t.is(summary.job, job.id);
  t.is(summary.input, 'hello from the driver');
  t.deepEqual(summary.keys, ['output/0', 'output/0/big']);
  t.is(summary.size, 'HELLO FROM THE DRIVER'.length);
  t.true(summary.bigOk);
  // What the function wrote, the driver reads.
  t.is((await job.get('output/0'))?.toString(), 'HELLO FROM THE DRIVER');
  t.deepEqual(await job.stat('output/0/big'), { key: 'output/0/big', size: 3 * MiB + 7, blocks: 4 });
});

test('put / get / stat / delete / overwrite through the client', async (t) => {
  const job = await register(t, 'basic');
  t.is(await job.get('k'), null);
  await job.put('k', 'v1');
  t.is((await job.get('k'))?.toString(), 'v1');
  await job.put('k', Buffer.from('value two'));
  t.is((await job.get('k'))?.toString(), 'value two');
  t.deepEqual(await job.stat('k'), { key: 'k', size: 9, blocks: 1 });
  t.true(await job.delete('k'));
  t.false(await job.delete('k'));
  t.is(await job.get('k'), null);
  t.is(await job.stat('k'), null);
  // Many keys at once, pipelined over both nodes.
  const values = Array.from({ length: 300 }, (_, i) => pattern(100 + i * 7, i));
  await Promise.all(values.map((v, i) => job.put(`many/${i}`, v)));
  const back = await Promise.all(values.map((_, i) => job.get(`many/${i}`)));
  t.true(back.every((b, i) => b?.equals(values[i]!)));
});

test('a 5 MiB value is striped into blocks and read back whole; overwriting it with a small value works', async (t) => {
  const job = await register(t, 'striped', TWO_NODES);
  const value = pattern(5 * MiB, 42);
  await job.put('big', value);
  t.deepEqual(await job.stat('big'), { key: 'big', size: 5 * MiB, blocks: 5 });
  t.true((await job.get('big'))!.equals(value));
  // A second handle in this process reads the same bytes.
  const other = await Satchel.attach(job.ticket);
  t.teardown(() => other.close());
  t.true((await other.get('big'))!.equals(value));
  await job.put('big', 'small');
  t.deepEqual(await job.stat('big'), { key: 'big', size: 5, blocks: 1 });
  t.is((await other.get('big'))?.toString(), 'small');
  const keys: string[] = [];
  for await (const key of job.list()) keys.push(key);
  t.deepEqual(keys, ['big'], 'no block key is ever listed');
});

test('list pages across both DRAM nodes: sorted and complete', async (t) => {
  const job = await register(t, 'listing', TWO_NODES);
  const keys = Array.from({ length: 1200 }, (_, i) => `part-${(i * 7919) % 1200}`.padEnd(12, 'x'));
  await Promise.all(keys.map((k) => job.put(k, k)));
  await job.put('zzz-other', 'x');
  const want = [...keys].sort();
  for (const pageSize of [13, 1000]) {
    const got: string[] = [];
    for await (const key of job.list('part-', { pageSize })) got.push(key);
    t.deepEqual(got, want, `pageSize ${pageSize}`);
  }
  const all: string[] = [];
  for await (const key of job.list()) all.push(key);
  t.is(all.length, 1201);
  t.is(all.at(-1), 'zzz-other');
});

test('deregister deletes the data: attach → NO_SUCH_JOB, an old handle → NO_SUCH_JOB', async (t) => {
  const job = await satchel.registerJob('short-lived');
  const old = await Satchel.attach(job.ticket, { timeoutMs: 5_000 });
  t.teardown(() => old.close());
  await job.put('a', 'x');
  await job.put('big', pattern(2 * MiB, 1));
  t.is((await old.get('a'))?.toString(), 'x');
  await job.deregister();
  t.is((await rejection(t, firstCall(job.ticket))).code, 'NO_SUCH_JOB');
  t.is((await rejection(t, old.get('a'))).code, 'NO_SUCH_JOB');
  t.is((await rejection(t, old.get('big'))).code, 'NO_SUCH_JOB');
  t.is((await rejection(t, old.put('a', 'y'))).code, 'NO_SUCH_JOB');
  // A function started after the deregistration fails the same way, with a typed error.
  const run = await runTs(FUNCTION, [job.ticket, 'a', 'b']);
  t.is(run.code, 3, run.stderr);
  t.is(JSON.parse(run.stdout.trim()).error, 'NO_SUCH_JOB');
});

test('a ticket with a wrong token → UNAUTHORIZED, in this process and in a separate one', async (t) => {
  const job = await register(t, 'guarded');
  const parsed = decodeTicket(job.ticket);
  const forged = `st1_${Buffer.from(JSON.stringify({ ...parsed, token: `${parsed.token.slice(0, -4)}AAAA` })).toString('base64url')}`;
  t.is((await rejection(t, firstCall(forged))).code, 'UNAUTHORIZED');
  const run = await runTs(FUNCTION, [forged, 'a', 'b']);
  t.is(run.code, 3, run.stderr);
  t.is(JSON.parse(run.stdout.trim()).error, 'UNAUTHORIZED');
  // Nor can a job's token deregister another job.
  const other = await register(t, 'victim');
  const otherParsed = decodeTicket(other.ticket);
  const stolen = `st1_${Buffer.from(JSON.stringify({ ...otherParsed, token: parsed.token })).toString('base64url')}`;
  t.is((await rejection(t, firstCall(stolen))).code, 'UNAUTHORIZED');
  await other.put('still', 'here');
  t.is((await other.get('still'))?.toString(), 'here');
});

test('a value over the job maxValueBytes hint → TOO_LARGE', async (t) => {
  const job = await register(t, 'limited', { maxValueBytes: 64 * 1024 });
  await job.put('ok', Buffer.alloc(64 * 1024));
  t.is((await rejection(t, job.put('big', Buffer.alloc(64 * 1024 + 1)))).code, 'TOO_LARGE');
  t.is(await job.get('big'), null);
  t.is((await job.stat('ok'))?.size, 64 * 1024);
});

test('the console: cluster and job JSON; DELETE needs the admin token', async (t) => {
  const job = await satchel.registerJob('console-visible', { capacity: 32 * MiB, ...TWO_NODES });
  t.teardown(() => job.deregister().catch(() => {}));
  const base = cluster.info.console;
  t.regex(base, /^http:\/\/127\.0\.0\.1:\d+$/);
  const clusterInfo = await fetch(`${base}/api/cluster`, { headers: { authorization: `Bearer ${cluster.viewerToken}` } });
  t.is(clusterInfo.status, 200);
  t.regex(clusterInfo.headers.get('content-type') ?? '', /application\/json/);
  const body = (await clusterInfo.json()) as {
    controller: string;
    nodes: { address: string; tier: string; capacity: number; bandwidth: number }[];
    jobs: number;
  };
  t.is(body.controller, cluster.controller);
  t.deepEqual(body.nodes.map((n) => n.address).sort(), cluster.info.nodes.map((n) => n.address).sort());
  t.true(body.jobs >= 1);
  const jobInfo = await fetch(`${base}/api/jobs/${job.id}`, { headers: { authorization: `Bearer ${cluster.viewerToken}` } });
  t.is(jobInfo.status, 200);
  const detail = (await jobInfo.json()) as { id: string; tier: string; reservation: number; nodes: unknown[] };
  t.is(detail.id, job.id);
  t.is(detail.tier, 'dram');
  // Pocket's rule: max(capacity hint, throughput share of the tier's bandwidth × the tier's capacity).
  const capacity = body.nodes.reduce((acc, n) => acc + n.capacity, 0);
  const bandwidth = body.nodes.reduce((acc, n) => acc + n.bandwidth, 0);
  t.is(detail.reservation, Math.max(32 * MiB, (TWO_NODES.peakThroughput / bandwidth) * capacity));
  t.is(detail.nodes.length, 2);
  t.is((await fetch(`${base}/api/jobs/no-such-job-1234`, { headers: { authorization: `Bearer ${cluster.viewerToken}` } })).status, 404);
  // DELETE without, or with a wrong, token: 401 and the job stays.
  t.is((await fetch(`${base}/api/jobs/${job.id}`, { method: 'DELETE' })).status, 401);
  t.is((await fetch(`${base}/api/jobs/${job.id}`, { method: 'DELETE', headers: { authorization: 'Bearer nope' } })).status, 401);
  const jobToken = decodeTicket(job.ticket).token;
  t.is(
    (await fetch(`${base}/api/jobs/${job.id}`, { method: 'DELETE', headers: { authorization: `Bearer ${jobToken}` } })).status,
    401,
    'a job token is not the admin token',
  );
  await job.put('k', 'v');
  t.is((await job.get('k'))?.toString(), 'v');
  // With the admin token: 204, and the job is gone everywhere.
  const deleted = await fetch(`${base}/api/jobs/${job.id}`, {
    method: 'DELETE',
    headers: { authorization: `Bearer ${cluster.adminToken}` },
  });
  t.is(deleted.status, 204);
  t.is((await fetch(`${base}/api/jobs/${job.id}`, { headers: { authorization: `Bearer ${cluster.viewerToken}` } })).status, 404);
  t.is((await rejection(t, job.get('k'))).code, 'NO_SUCH_JOB');
  t.is((await rejection(t, firstCall(job.ticket))).code, 'NO_SUCH_JOB');
  const metrics = await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${cluster.viewerToken}` } });
  t.is(metrics.status, 200);
  t.regex(await metrics.text(), /satchel_jobs/);
});

const THP_ENABLED = '/sys/kernel/mm/transparent_hugepage/enabled';

/** AnonHugePages of a process, in kB (0 where the kernel does not report it). */
function hugePagesKb(pid: number): number {
  const rollup = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  return Number(/^AnonHugePages:\s+(\d+) kB/m.exec(rollup)?.[1] ?? 0);
}

test("storage nodes ask glibc for transparent huge pages, and a job's values land on them where the kernel allows", async (t) => {
  // deploy's STORAGE_NODE_ENV: a sort's GiB faulted in per 2 MiB instead of per 4 KiB (perf/RESULTS.md).
  for (const pid of cluster.nodePids.values()) {
    const environ = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
    t.true(environ.includes('GLIBC_TUNABLES=glibc.malloc.hugetlb=1'), `node ${pid}: ${environ.filter((e) => e.startsWith('GLIBC'))}`);
  }
  const thp = existsSync(THP_ENABLED) ? /\[(\w+)\]/.exec(readFileSync(THP_ENABLED, 'utf8'))?.[1] : 'not built into this kernel';
  if (thp !== 'madvise' && thp !== 'always') {
    t.log(`transparent huge pages are "${thp}" here: the nodes' memory stays on 4 KiB pages`);
    return;
  }
  const before = [...cluster.nodePids.values()].reduce((sum, pid) => sum + hugePagesKb(pid), 0);
  const job = await register(t, 'huge-pages', TWO_NODES);
  // A node idle for 10 s has them off, and turns them on within 0.5 s of a request (storage-node/huge-pages.ts).
  await Promise.all(Array.from({ length: 16 }, (_, i) => job.put(`wake/${i}`, 'x'))); // both nodes
  await new Promise((resolve) => setTimeout(resolve, 1_000));
  const value = Buffer.alloc(256 * 1024, 7);
  for (let i = 0; i < 256; i++) await job.put(`v/${i}`, value); // 64 MiB over the two nodes
  const after = [...cluster.nodePids.values()].reduce((sum, pid) => sum + hugePagesKb(pid), 0);
  t.true(after - before >= 16 * 1024, `AnonHugePages ${before} → ${after} kB after 64 MiB stored`);
});

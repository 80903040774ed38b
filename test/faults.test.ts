/**
 * Faults on a real cluster (`LocalCluster`: every part its own process), each part killed by PID with SIGKILL
 * while a job's function keeps reading and writing: a storage node (replicas 1), the controller, the metadata
 * server. Every operation is timed: none may outlive the function's `timeoutMs` by more than a margin. Each test
 * starts its own cluster on 127.0.0.1 with OS-picked ports and stops it (every process) in its teardown.
 */
import test, { type ExecutionContext } from 'ava';
import pino from 'pino';
import { type Job, Satchel, SatchelError } from '../client/index.ts';
import type { ClusterEvent } from '../controller/index.ts';
import { LocalCluster, type LocalClusterOptions } from '../deploy/index.ts';
import { MetadataServer } from '../metadata/index.ts';
import { addService, bindServer, CONTROLLER_SERVICE, ControlClient, grpc, METADATA_SERVICE } from '../proto/grpc.ts';
import {
  ADMIN_SUBJECT,
  type ControllerMethods,
  keySlot,
  type MetadataMethods,
  pickNode,
  type ServiceImpl,
  signToken,
  type WirePlacement,
  type WirePlacementNode,
} from '../proto/index.ts';
import { firstCall, rejection, withoutPlacement } from './helpers/assert.ts';
import { alive } from './helpers/process.ts';
import { eventually } from './helpers/raw-client.ts';
import { counter, waitFor } from './helpers/wait.ts';

const MiB = 1024 * 1024;
/** The function's per-operation timeout. */
const TIMEOUT_MS = 2_000;
/** How far past it an operation may settle (a metadata refresh after a failure, a loaded test machine). */
const MARGIN_MS = 1_500;
/** Spans both DRAM nodes (controller/README.md: as many nodes as the throughput needs). */
const TWO_NODE_HINTS = { latencySensitive: true, peakThroughput: 1.5e9 };

async function startCluster(t: ExecutionContext, options: LocalClusterOptions = {}): Promise<LocalCluster> {
  t.timeout(60_000);
  const cluster = await LocalCluster.start({ dram: 2, dramCapacity: 256 * MiB, ...options });
  t.teardown(() => cluster.stop());
  return cluster;
}

/** A console read, with the viewer token (`cluster.viewerToken`). */
async function getJson<T>(url: string, viewerToken: string): Promise<T> {
  const response = await fetch(url, { headers: { authorization: `Bearer ${viewerToken}` } });
  if (!response.ok) throw new Error(`${url}: ${response.status} ${await response.text()}`);
  return (await response.json()) as T;
}

interface JobDetail {
  epoch: number;
  nodes: WirePlacementNode[];
}

interface NodeRow {
  id: string;
  address: string;
  stats: { at: number; used: number; jobs: Record<string, number> } | null;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const ok = (r: OpRecord) => r.error === undefined;

/** `count` keys per node of `nodes`, by the placement hash, as [key, node id]. */
function keysPerNode(nodes: WirePlacementNode[], prefix: string, count: number): [string, string][] {
  const byNode = new Map(nodes.map((n) => [n.id, [] as string[]]));
  for (let i = 0; [...byNode.values()].some((keys) => keys.length < count); i++) {
    const key = `${prefix}/${i}`;
    const keys = byNode.get(nodes[pickNode(nodes, keySlot(key))]!.id)!;
    if (keys.length < count) keys.push(key);
  }
  // Interleaved, so every lane of a load touches every node.
  const out: [string, string][] = [];
  for (let i = 0; i < count; i++) for (const [node, keys] of byNode) out.push([keys[i]!, node]);
  return out;
}

interface OpRecord {
  op: 'put' | 'get';
  key: string;
  node: string;
  start: number;
  end: number;
  /** Undefined: it succeeded (and a get read back what the lane last wrote). */
  error?: string;
  code?: string;
}

/**
 * A function's work: `lanes` loops, each writing then reading back its own keys (spread over every node), every
 * operation recorded with its timing and outcome, until `stop()`.
 */
class Load {
  readonly records: OpRecord[] = [];
  private running = true;
  private readonly done: Promise<void>;

  constructor(job: Job, keys: [string, string][], lanes = 8) {
    this.done = Promise.all(
      Array.from({ length: lanes }, async (_, lane) => {
        const mine = keys.filter((_, i) => i % lanes === lane);
        const written = new Map<string, string>();
        for (let i = 0; this.running; i++) {
          const [key, node] = mine[i % mine.length]!;
          const put = Math.floor(i / mine.length) % 2 === 0 || !written.has(key);
          const value = `${key}#${i}`;
          const record: OpRecord = { op: put ? 'put' : 'get', key, node, start: Date.now(), end: 0 };
          try {
            if (put) {
              await job.put(key, value);
              written.set(key, value);
            } else {
              const got = (await job.get(key))?.toString() ?? null;
              if (got !== written.get(key)) record.error = `read ${got}, expected ${written.get(key)}`;
            }
          } catch (error) {
            record.error = (error as Error).message;
            record.code = error instanceof SatchelError ? error.code : 'not a SatchelError';
            // A put that timed out may still land later: the key's value is unknown until written again.
            if (put) written.delete(key);
            // What fails fails fast (a refused connection): do not spin.
            await sleep(5);
          }
          record.end = Date.now();
          this.records.push(record);
        }
      }),
    ).then(() => {});
  }

  /** Resolves once `count` recorded ops match `which` (every op by default): the load has done what a step needs. */
  async ran(count: number, what: string, which: (r: OpRecord) => boolean = () => true): Promise<void> {
    const matching = counter(this.records, which);
    await waitFor(() => matching() >= count, { what, detail: () => `${matching()} of ${count} so far; ${summary(this.records)}` });
  }

  async stop(): Promise<OpRecord[]> {
    this.running = false;
    await this.done;
    return this.records;
  }
}

function slowest(records: OpRecord[]): number {
  return records.reduce((max, r) => Math.max(max, r.end - r.start), 0);
}

function summary(records: OpRecord[]): string {
  const ok = records.filter((r) => r.error === undefined).length;
  const codes = new Map<string, number>();
  for (const r of records) if (r.code !== undefined) codes.set(r.code, (codes.get(r.code) ?? 0) + 1);
  return `${records.length} ops, ${ok} ok, failed ${JSON.stringify(Object.fromEntries(codes))}, slowest ${slowest(records)} ms`;
}

function distinct(values: string[]): string[] {
  return [...new Set(values)];
}

test('a storage node killed under load (replicas 1): its keys fail fast with UNAVAILABLE, the other node keeps serving', async (t) => {
  const cluster = await startCluster(t);
  const satchel = await Satchel.connect(cluster.controller, { key: cluster.tenantKey });
  t.teardown(() => satchel.close());
  const driver = await satchel.registerJob('node-fault', TWO_NODE_HINTS);
  t.teardown(() => driver.deregister().catch(() => {}));
  const detail = await getJson<JobDetail>(`${cluster.info.console}/api/jobs/${driver.id}`, cluster.viewerToken);
  t.is(detail.nodes.length, 2, 'the job spans both DRAM nodes');
  const [victim, survivor] = detail.nodes.map((n) => n.id) as [string, string];
  const pid = cluster.nodePids.get(victim)!;

  const fn = await Satchel.attach(driver.ticket, { timeoutMs: TIMEOUT_MS });
  t.teardown(() => fn.close());
  const keys = keysPerNode(detail.nodes, 'live', 32);
  const stored = keysPerNode(detail.nodes, 'stored', 4);
  await Promise.all(stored.map(([key]) => fn.put(key, `stored ${key}`)));
  // A function parked on a key of the victim (WAIT), and one on a key of the survivor.
  const victimKey = stored.find(([, node]) => node === victim)![0];
  const survivorKey = stored.find(([, node]) => node === survivor)![0];
  const parkedAtVictim = timed(fn.waitFor(keyOn(detail.nodes, victim, 'never'), { timeoutMs: 30_000 }));
  const parkedAtSurvivor = fn.waitFor(keyOn(detail.nodes, survivor, 'later'), { timeoutMs: 30_000 });

  // The victim has reported to the controller at least once (to see what the controller does with its silence).
  await eventually(
    async () => (await getJson<NodeRow[]>(`${cluster.info.console}/api/nodes`, cluster.viewerToken)).every((n) => n.stats !== null),
    5_000,
    'first reports',
  );
  const load = new Load(fn, keys);
  await load.ran(100, 'the load running on both nodes before the kill', ok);
  const killedAt = Date.now();
  process.kill(pid, 'SIGKILL');
  await eventually(() => !alive(pid), 5_000, 'node process gone');
  // The load goes on past the kill: the survivor serving, the victim's keys failing.
  await load.ran(150, "the survivor's keys served after the kill", (r) => r.node === survivor && r.start > killedAt + 100);
  await load.ran(20, "the victim's keys tried after the kill", (r) => r.node === victim && r.start > killedAt + 100);
  const records = await load.stop();

  const before = records.filter((r) => r.end < killedAt);
  const after = records.filter((r) => r.start > killedAt + 100);
  const atSurvivor = records.filter((r) => r.node === survivor);
  const atVictimAfter = after.filter((r) => r.node === victim);
  t.log(`before the kill: ${summary(before)}`);
  t.log(`survivor, whole run: ${summary(atSurvivor)}; after the kill: ${summary(after.filter((r) => r.node === survivor))}`);
  t.log(`victim, after the kill: ${summary(atVictimAfter)}`);
  t.log(`victim, in flight at the kill: ${summary(records.filter((r) => r.node === victim && r.start <= killedAt && r.end >= killedAt))}`);
  t.deepEqual(
    before.filter((r) => r.error !== undefined),
    [],
    'nothing failed before the kill',
  );
  t.deepEqual(
    atSurvivor.filter((r) => r.error !== undefined),
    [],
    "the survivor's keys never failed",
  );
  t.true(after.filter((r) => r.node === survivor).length > 100, 'the survivor kept serving after the kill');
  t.true(atVictimAfter.length > 0);
  t.deepEqual(distinct(records.filter((r) => r.error !== undefined).map((r) => r.code!)), ['UNAVAILABLE'], 'every failure is UNAVAILABLE');
  t.deepEqual(
    atVictimAfter.filter((r) => r.error === undefined),
    [],
    "no operation on the victim's keys succeeded after the kill",
  );
  t.true(slowest(records) <= TIMEOUT_MS + MARGIN_MS, `slowest op ${slowest(records)} ms`);

  // The WAIT parked at the victim ends with UNAVAILABLE at once; the one at the survivor still stands.
  const parked = await parkedAtVictim;
  t.is(parked.code, 'UNAVAILABLE', parked.message);
  t.true(parked.at - killedAt <= TIMEOUT_MS + MARGIN_MS, `the WAIT at the victim failed ${parked.at - killedAt} ms after the kill`);
  await fn.put(keyOn(detail.nodes, survivor, 'later'), 'arrived');
  t.is((await parkedAtSurvivor).toString(), 'arrived');

  // A function attached after the kill: the same split, each call bounded.
  const late = await Satchel.attach(driver.ticket, { timeoutMs: TIMEOUT_MS });
  t.teardown(() => late.close());
  t.is((await late.get(survivorKey))?.toString(), `stored ${survivorKey}`);
  const started = Date.now();
  const error = await rejection(t, late.get(victimKey));
  t.is(error.code, 'UNAVAILABLE', error.message);
  t.true(Date.now() - started <= TIMEOUT_MS + MARGIN_MS);
  // A list needs every node: it fails (bounded) rather than returning half the keys.
  t.is(
    (
      await rejection(
        t,
        (async () => {
          for await (const _ of late.list('stored/'));
        })(),
      )
    ).code,
    'UNAVAILABLE',
  );

  // What the controller makes of it today, logged (not asserted): the node stays listed, its last report ages,
  // no event until the node timeout (the next test).
  const nodes = await getJson<NodeRow[]>(`${cluster.info.console}/api/nodes`, cluster.viewerToken);
  const dead = nodes.find((n) => n.id === victim);
  const events = await getJson<ClusterEvent[]>(`${cluster.info.console}/api/events`, cluster.viewerToken);
  t.log(
    `controller ${Date.now() - killedAt} ms after the kill: node listed: ${dead !== undefined}, last report ${dead?.stats ? `${Date.now() - dead.stats.at} ms old` : 'none'}, events about it: ${JSON.stringify(events.filter((e) => e.node === victim).map((e) => e.kind))}`,
  );

  // Deregistration still completes (the dead node's DROP_JOB fails fast) and the survivor's data goes.
  await driver.deregister();
  t.is((await rejection(t, late.get(survivorKey))).code, 'NO_SUCH_JOB');
});

test('a storage node frozen (SIGSTOP) under load: its keys fail with TIMEOUT within timeoutMs, the other node keeps serving, and it recovers on SIGCONT', async (t) => {
  const cluster = await startCluster(t);
  const satchel = await Satchel.connect(cluster.controller, { key: cluster.tenantKey });
  t.teardown(() => satchel.close());
  const driver = await satchel.registerJob('node-frozen', TWO_NODE_HINTS);
  t.teardown(() => driver.deregister().catch(() => {}));
  const detail = await getJson<JobDetail>(`${cluster.info.console}/api/jobs/${driver.id}`, cluster.viewerToken);
  t.is(detail.nodes.length, 2);
  const [victim, survivor] = detail.nodes.map((n) => n.id) as [string, string];
  const pid = cluster.nodePids.get(victim)!;
  t.teardown(() => void process.kill(pid, 'SIGCONT')); // before the cluster's stop (teardowns run last first)
  const fn = await Satchel.attach(driver.ticket, { timeoutMs: TIMEOUT_MS });
  t.teardown(() => fn.close());
  const load = new Load(fn, keysPerNode(detail.nodes, 'live', 32));
  await load.ran(100, 'the load running on both nodes before the freeze', ok);
  const frozenAt = Date.now();
  process.kill(pid, 'SIGSTOP');
  // Sent while it was frozen, with a deadline well before it resumes: the ops this test is about.
  const sentFrozen = (r: OpRecord, resumedAt: number) =>
    r.node === victim && r.start > frozenAt + 50 && r.start + TIMEOUT_MS + 200 < resumedAt;
  const sentAfterFreeze = counter(load.records, (r) => r.node === victim && r.start > frozenAt + 50);
  await waitFor(() => load.records.some((r) => sentFrozen(r, Date.now())), {
    what: 'an op sent to the frozen node, its deadline passed 200 ms ago',
    intervalMs: 20,
    detail: () => `${sentAfterFreeze()} ops on the victim sent after the freeze`,
  });
  const resumedAt = Date.now();
  process.kill(pid, 'SIGCONT');
  await load.ran(
    50,
    "the victim's keys served again after SIGCONT",
    (r) => r.node === victim && r.start > resumedAt + 50 && r.error === undefined,
  );
  const records = await load.stop();

  const frozen = records.filter((r) => sentFrozen(r, resumedAt));
  const after = records.filter((r) => r.start > resumedAt + 50);
  t.log(`survivor: ${summary(records.filter((r) => r.node === survivor))}`);
  t.log(`victim while frozen: ${summary(frozen)}; everything after SIGCONT: ${summary(after)}`);
  t.deepEqual(
    records.filter((r) => r.node === survivor && r.error !== undefined),
    [],
    "the survivor's keys never failed",
  );
  t.true(frozen.length > 0);
  t.deepEqual(distinct(frozen.map((r) => r.code ?? 'ok')), ['TIMEOUT'], 'a frozen node: TIMEOUT (the connection stays up)');
  t.true(slowest(records) <= TIMEOUT_MS + MARGIN_MS, `slowest op ${slowest(records)} ms`);
  t.deepEqual(
    after.filter((r) => r.error !== undefined),
    [],
    'after SIGCONT everything works again, on the same connection',
  );
  t.true(after.filter((r) => r.node === victim).length > 10);
});

// Reports come every second; a node silent for --node-timeout-ms (5 s by default) is lost: an event names it,
// and nothing new is placed on it (controller/README.md, "Replicas and lost nodes").
test('the controller notices a storage node that stopped reporting, and places no new job on it', async (t) => {
  const cluster = await startCluster(t);
  const satchel = await Satchel.connect(cluster.controller, { key: cluster.tenantKey });
  t.teardown(() => satchel.close());
  const victim = cluster.info.nodes[0]!.id;
  const pid = cluster.nodePids.get(victim)!;
  process.kill(pid, 'SIGKILL');
  await eventually(() => !alive(pid), 5_000, 'node process gone');
  const killedAt = Date.now();
  // Reports come every second; the default node timeout is 5 s, checked every second.
  await waitFor(
    async () => {
      const nodes = await getJson<NodeRow[]>(`${cluster.info.console}/api/nodes`, cluster.viewerToken);
      const events = await getJson<ClusterEvent[]>(`${cluster.info.console}/api/events`, cluster.viewerToken);
      return !nodes.some((n) => n.id === victim) || events.some((e) => e.node === victim && e.kind === 'node-lost');
    },
    { timeoutMs: 8_000, intervalMs: 100, what: 'the dead node leaving /api/nodes, or an event naming it' },
  );
  t.log(`noticed ${Date.now() - killedAt} ms after the kill`);
  const job = await satchel.registerJob('after-the-death', TWO_NODE_HINTS);
  t.teardown(() => job.deregister().catch(() => {}));
  const detail = await getJson<JobDetail>(`${cluster.info.console}/api/jobs/${job.id}`, cluster.viewerToken);
  t.false(
    detail.nodes.some((n) => n.id === victim),
    `a new job is placed on live nodes only (got ${detail.nodes.map((n) => n.id)})`,
  );
  await job.put('k', 'v');
});

test('the controller killed under load and restarted: the data path never notices, the job and its lease survive, deregistration deletes the data', async (t) => {
  const leaseMs = 4_000;
  const cluster = await startCluster(t, { leaseMs });
  const satchel = await Satchel.connect(cluster.controller, { key: cluster.tenantKey });
  t.teardown(() => satchel.close());
  const driver = await satchel.registerJob('controller-fault', TWO_NODE_HINTS);
  t.teardown(() => driver.deregister().catch(() => {}));
  const before = await getJson<JobDetail>(`${cluster.info.console}/api/jobs/${driver.id}`, cluster.viewerToken);
  const fn = await Satchel.attach(driver.ticket, { timeoutMs: TIMEOUT_MS });
  t.teardown(() => fn.close());
  const keys = keysPerNode(before.nodes, 'live', 32);
  const load = new Load(fn, keys);
  await load.ran(100, 'the load running before the controller is killed', ok);

  const pid = cluster.controllerPid;
  const killedAt = Date.now();
  process.kill(pid, 'SIGKILL');
  await eventually(() => !alive(pid), 5_000, 'controller process gone');
  // Down for real: the console and the gRPC port refuse.
  await t.throwsAsync(fetch(`${cluster.info.console}/api/jobs`, { headers: { authorization: `Bearer ${cluster.viewerToken}` } }));
  t.is((await rejection(t, Satchel.connect(cluster.controller, { key: cluster.tenantKey, timeoutMs: 1_000 }))).code, 'UNAVAILABLE');
  // An attach with the placement in its ticket needs no controller either.
  const attachedWhileDown = await Satchel.attach(driver.ticket, { timeoutMs: TIMEOUT_MS });
  t.teardown(() => attachedWhileDown.close());
  t.true((await attachedWhileDown.get(keys[0]![0]))?.toString().startsWith(`${keys[0]![0]}#`));
  await load.ran(150, 'the load running while the controller is down', (r) => r.start >= killedAt);
  const restartAt = Date.now();
  await cluster.restartController();
  const upAt = Date.now();
  await load.ran(100, 'the load running on after the restart', (r) => r.start > upAt);
  const records = await load.stop();

  const whileDown = records.filter((r) => r.start >= killedAt && r.end <= upAt);
  t.log(
    `controller down ${upAt - killedAt} ms (restart took ${upAt - restartAt} ms); ops meanwhile: ${summary(whileDown)}; whole run: ${summary(records)}`,
  );
  t.deepEqual(
    records.filter((r) => r.error !== undefined),
    [],
    'no operation failed',
  );
  t.true(whileDown.length > 100, 'the load ran while the controller was down');
  t.true(slowest(records) <= TIMEOUT_MS + MARGIN_MS, `slowest op ${slowest(records)} ms`);

  // The restarted controller has the job back from its state folder, with the same placement.
  const jobs = await getJson<{ id: string }[]>(`${cluster.info.console}/api/jobs`, cluster.viewerToken);
  t.deepEqual(
    jobs.map((j) => j.id),
    [driver.id],
  );
  const after = await getJson<JobDetail>(`${cluster.info.console}/api/jobs/${driver.id}`, cluster.viewerToken);
  t.is(after.epoch, before.epoch);
  t.deepEqual(after.nodes, before.nodes);
  // The nodes report to it again (their report loop never stopped), so it sees what the job holds.
  await eventually(
    async () => {
      const nodes = await getJson<NodeRow[]>(`${cluster.info.console}/api/nodes`, cluster.viewerToken);
      return nodes.length === 2 && nodes.every((n) => n.stats !== null && (n.stats.jobs[driver.id] ?? 0) > 0);
    },
    5_000,
    'both nodes report the job to the restarted controller',
  );
  // The driver's lease renewals reach the restarted controller: the expiry it shows moves on twice (renewals
  // come every leaseMs / 3)...
  const expiries = new Set<string>();
  await waitFor(
    async () =>
      expiries.add(
        (await getJson<{ leaseExpiresAt: string }>(`${cluster.info.console}/api/jobs/${driver.id}`, cluster.viewerToken)).leaseExpiresAt,
      ).size >= 3,
    {
      timeoutMs: 3 * leaseMs,
      intervalMs: 100,
      what: 'two lease renewals at the restarted controller',
      detail: () => [...expiries].join(', '),
    },
  );
  // ...and nothing happens once the lease the restart gave the job (leaseMs from its start, checked every
  // second) has run out: the job is not collected.
  await sleep(Math.max(0, upAt + leaseMs + 1_000 - Date.now()));
  t.deepEqual(
    (await getJson<{ id: string }[]>(`${cluster.info.console}/api/jobs`, cluster.viewerToken)).map((j) => j.id),
    [driver.id],
    'renewed by the driver',
  );
  t.true((await fn.get(keys[0]![0]))?.toString().startsWith(`${keys[0]![0]}#`));

  // Deregistration through the restarted controller deletes the job everywhere.
  await driver.deregister();
  t.is((await rejection(t, fn.get(keys[0]![0]))).code, 'NO_SUCH_JOB');
  t.is((await rejection(t, firstCall(driver.ticket))).code, 'NO_SUCH_JOB');
  t.deepEqual(await getJson<unknown[]>(`${cluster.info.console}/api/jobs`, cluster.viewerToken), []);
  await eventually(
    async () => {
      const nodes = await getJson<NodeRow[]>(`${cluster.info.console}/api/nodes`, cluster.viewerToken);
      return nodes.every((n) => n.stats !== null && n.stats.jobs[driver.id] === undefined && n.stats.used === 0);
    },
    5_000,
    'the nodes report none of its bytes',
  );
});

test('the metadata server killed under load and restarted on its port: the data path never notices, attach without a placement is UNAVAILABLE meanwhile, then everything resolves again', async (t) => {
  const cluster = await startCluster(t);
  const satchel = await Satchel.connect(cluster.controller, { key: cluster.tenantKey, timeoutMs: TIMEOUT_MS });
  t.teardown(() => satchel.close());
  const driver = await satchel.registerJob('metadata-fault', TWO_NODE_HINTS);
  t.teardown(() => driver.deregister().catch(() => {}));
  const before = await getJson<JobDetail>(`${cluster.info.console}/api/jobs/${driver.id}`, cluster.viewerToken);
  const fn = await Satchel.attach(driver.ticket, { timeoutMs: TIMEOUT_MS });
  t.teardown(() => fn.close());
  // One function that got its placement from the metadata server: its gRPC channel was open when it died.
  const fetched = await Satchel.attach(withoutPlacement(driver.ticket), { timeoutMs: TIMEOUT_MS });
  t.teardown(() => fetched.close());
  const keys = keysPerNode(before.nodes, 'live', 32);
  const load = new Load(fn, keys);
  const load2 = new Load(fetched, keysPerNode(before.nodes, 'second', 16), 4);
  await Promise.all([
    load.ran(100, 'the load running before the metadata server is killed', ok),
    load2.ran(50, 'the second load running', ok),
  ]);

  const address = cluster.info.metadata[0]!;
  const pid = cluster.metadataPid;
  const killedAt = Date.now();
  process.kill(pid, 'SIGKILL');
  await eventually(() => !alive(pid), 5_000, 'metadata process gone');

  // Without a placement in the ticket, attaching needs the metadata server: a clear UNAVAILABLE, in bounded time.
  let started = Date.now();
  const refused = await rejection(t, Satchel.attach(withoutPlacement(driver.ticket), { timeoutMs: TIMEOUT_MS }));
  t.is(refused.code, 'UNAVAILABLE', refused.message);
  t.regex(refused.message, new RegExp(`GetPlacement at ${address}`));
  t.true(Date.now() - started <= TIMEOUT_MS + MARGIN_MS, `attach failed after ${Date.now() - started} ms`);
  t.log(`attach while metadata is down: ${Date.now() - started} ms, ${refused.code}: ${refused.message}`);
  // A new job cannot be registered without a metadata server to publish its placement to: UNAVAILABLE.
  started = Date.now();
  const unregistered = await rejection(t, satchel.registerJob('while-metadata-down'));
  t.is(unregistered.code, 'UNAVAILABLE', unregistered.message);
  t.log(`registerJob while metadata is down: ${Date.now() - started} ms, ${unregistered.code}: ${unregistered.message}`);
  await load.ran(150, 'the load running while the metadata server is down', (r) => r.start >= killedAt);

  const restartAt = Date.now();
  await cluster.restartMetadata();
  const upAt = Date.now();
  t.is(cluster.info.metadata[0], address, 'same address: tickets still point at it');
  await Promise.all([
    load.ran(100, 'the load running on after the restart', (r) => r.start > upAt),
    load2.ran(50, 'the second load running on after the restart', (r) => r.start > upAt),
  ]);
  const records = [...(await load.stop()), ...(await load2.stop())];
  const whileDown = records.filter((r) => r.start >= killedAt && r.end <= upAt);
  t.log(
    `metadata down ${upAt - killedAt} ms (restart took ${upAt - restartAt} ms); ops meanwhile: ${summary(whileDown)}; whole run: ${summary(records)}`,
  );
  t.deepEqual(
    records.filter((r) => r.error !== undefined),
    [],
    'no operation failed',
  );
  t.true(whileDown.length > 100, 'the load ran while the metadata server was down');
  t.true(slowest(records) <= TIMEOUT_MS + MARGIN_MS, `slowest op ${slowest(records)} ms`);

  // The restarted server got every placement from the controller before it said it was ready.
  const fresh = await Satchel.attach(withoutPlacement(driver.ticket), { timeoutMs: TIMEOUT_MS });
  t.teardown(() => fresh.close());
  t.is(fresh.epoch, before.epoch);
  t.true((await fresh.get(keys[0]![0]))?.toString().startsWith(`${keys[0]![0]}#`));
  // Its /metrics is back on the port cluster.json lists, and counts the one placement.
  const metrics = await Promise.all(
    cluster.info.metrics.map(async (url) => (await fetch(url, { headers: { authorization: `Bearer ${cluster.viewerToken}` } })).text()),
  );
  t.deepEqual(
    metrics.flatMap((text) => text.match(/^satchel_metadata_placements .*$/m) ?? []),
    ['satchel_metadata_placements 1'],
  );
  // New jobs register again.
  const another = await satchel.registerJob('after-metadata-restart');
  await another.put('k', 'v');
  await another.deregister();

  // Clients refresh their placement from the restarted server: drain one of the job's nodes while both old
  // handles work; the node answers STALE, and every handle looks the placement up again.
  const loads = [new Load(fn, keys), new Load(fetched, keysPerNode(before.nodes, 'second', 16), 4)];
  await Promise.all(loads.map((l) => l.ran(50, 'the loads running before the drain', ok)));
  const drained = before.nodes[0]!.id;
  const response = await fetch(`${cluster.info.console}/api/nodes/${drained}`, {
    method: 'DELETE',
    headers: { authorization: `Bearer ${cluster.adminToken}` },
  });
  t.is(response.status, 200, await response.clone().text());
  const drainedAt = Date.now();
  await Promise.all(loads.map((l) => l.ran(50, 'the loads running on past the drain', (r) => r.start > drainedAt)));
  const afterDrain = [...(await loads[0]!.stop()), ...(await loads[1]!.stop())];
  t.log(`load across the drain: ${summary(afterDrain)}`);
  t.deepEqual(
    afterDrain.filter((r) => r.error !== undefined),
    [],
    'no operation failed across the drain',
  );
  const moved = await getJson<JobDetail>(`${cluster.info.console}/api/jobs/${driver.id}`, cluster.viewerToken);
  t.true(moved.epoch > before.epoch);
  t.false(moved.nodes.some((n) => n.id === drained));
  for (const handle of [fn, fetched]) {
    await handle.put(keys[0]![0], 'after the drain');
    t.is(handle.epoch, moved.epoch, 'the handle refreshed its placement from the restarted metadata server');
  }
});

test('a metadata server that restarts answers UNAVAILABLE, not NO_SUCH_JOB, until the controller has sent it the placements', async (t) => {
  // In process: a controller stand-in that holds back the placements it sends a registering metadata server.
  const secret = new Uint8Array(32).fill(7);
  const adminToken = signToken(secret, ADMIN_SUBJECT);
  const placement: WirePlacement = {
    jobId: 'held-1',
    epoch: 3,
    generations: [{ nodes: [{ id: 'n1', address: '127.0.0.1:1', weight: 1 }] }],
    blockSize: MiB,
    maxValueBytes: MiB,
  };
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  let registered!: (address: string) => void;
  const registering = new Promise<string>((resolve) => (registered = resolve));
  const server = new grpc.Server();
  const impl = {
    RegisterMetadata: async ({ address }: { address: string }) => {
      registered(address);
      await released;
      const metadata = new ControlClient<MetadataMethods>(METADATA_SERVICE, address);
      try {
        await metadata.call('SetPlacement', { placement, token: adminToken });
      } finally {
        metadata.close();
      }
      return {};
    },
  } as unknown as ServiceImpl<ControllerMethods>;
  addService(server, CONTROLLER_SERVICE, impl, () => {});
  const controller = await bindServer(server, '127.0.0.1', 0);
  t.teardown(() => void server.forceShutdown());
  const metadata = new MetadataServer({ secret, logger: pino({ level: 'silent' }), controller });
  t.teardown(() => metadata.close());
  const listening = metadata.listen(0, '127.0.0.1');
  listening.catch(() => {}); // awaited below; a failed test must not leave it unhandled
  // Bound (it told the controller its address, and the controller is about to send to it) but holding nothing.
  const address = await registering;
  const client = new ControlClient<MetadataMethods>(METADATA_SERVICE, address, 2_000);
  t.teardown(() => client.close());
  const early = await rejection(t, client.call('GetPlacement', { jobId: 'held-1', token: signToken(secret, 'held-1') }));
  t.is(early.code, 'UNAVAILABLE', early.message);
  release();
  await listening;
  t.is((await client.call('GetPlacement', { jobId: 'held-1', token: signToken(secret, 'held-1') })).epoch, 3);
  // Once loaded, a job it does not hold is NO_SUCH_JOB again.
  t.is((await rejection(t, client.call('GetPlacement', { jobId: 'gone-1', token: signToken(secret, 'gone-1') }))).code, 'NO_SUCH_JOB');
});

/** A promise's rejection with the time it came (a SatchelError expected). */
async function timed(promise: Promise<unknown>): Promise<SatchelError & { at: number }> {
  try {
    await promise;
  } catch (error) {
    return Object.assign(error as SatchelError, { at: Date.now() });
  }
  throw new Error('expected a rejection');
}

/** A key under `prefix` that `nodeId` owns. */
function keyOn(nodes: WirePlacementNode[], nodeId: string, prefix: string): string {
  for (let i = 0; ; i++) {
    const key = `${prefix}/${i}`;
    if (nodes[pickNode(nodes, keySlot(key))]!.id === nodeId) return key;
  }
}

/**
 * A storage node's metrics: operations, value bytes and service time by op, capacity and usage, and the process
 * (prom-client's default metrics), served as Prometheus text on `/metrics` (metricsPort), plus the service-time
 * percentiles of the last interval for the node's report to the controller (`takeLatency`).
 *
 * The hot path (~150k+ ops/s) never touches prom-client: a prom-client Counter/Histogram hashes its labels and
 * allocates on every inc/observe, even through a `labels()` child. Each op is counted into plain typed arrays
 * (`record`: a few array increments, no allocation) and turned into prom-client values only when scraped, from
 * the metrics' `collect()`/`get()`.
 *
 * Service time is sampled under load (see `clock`): a clock read costs ~40 ns here and allocates a heap number,
 * and timing every op cost ~6 % of 1 KiB PUTs/s in `bench micro` (the counts alone cost nothing measurable).
 *
 * prom-client (with its dependencies) and node:http are loaded only when the metrics are served, so a node
 * without `metricsPort` keeps the heap it had: see storage-node/README.md (Metrics) for why that matters.
 */
import type { Histogram, MetricType, Registry } from 'prom-client';
import { Op, Status } from '../proto/index.ts';

type PromClient = typeof import('prom-client');

/** prom-client default metrics that fail `promtool check metrics` (gauges with a `_total` suffix). */
const LINT_FAILURES = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'];
type DurationMetric = Awaited<ReturnType<Histogram<'op' | 'tier'>['get']>>;

export const OP_NAMES = ['put', 'get', 'delete', 'stat', 'list', 'other'] as const;
export type OpName = (typeof OP_NAMES)[number];
export const STATUS_NAMES = ['ok', 'not_found', 'error'] as const;

/**
 * Why the node closed a client's connection on its own (connection.ts): no HELLO within the deadline, too many
 * frames answered before one, or answers piling up unread past the output limits.
 */
export const DISCONNECT_REASONS = ['hello_timeout', 'pre_auth_output', 'pre_auth_crowded', 'output_buffer'] as const;
export type DisconnectReason = (typeof DISCONNECT_REASONS)[number];

/** Index of each op in OP_NAMES: what `record` takes. */
export const OpKind = { put: 0, get: 1, delete: 2, stat: 3, list: 4, other: 5 } as const;
const OPS = OP_NAMES.length;
const STATUSES = STATUS_NAMES.length;

/**
 * One job's requests on this node since the process started (what each JobUsage in a report carries): a typed
 * array on the job's state (job-table.ts `AnnouncedJob.traffic`), so counting a request only increments numbers
 * the request already has in hand (no allocation, no double boxed). [TRAFFIC_OPS] requests answered, [TRAFFIC_IN]
 * and [TRAFFIC_OUT] their frames' bytes (headers counted, as the node-wide counters), [TRAFFIC_SERVICE_US] their
 * service times summed, estimated as the node's histogram is (`record`: each timed op of the job stands for its
 * kind's untimed ops of the job before it, counted from [TRAFFIC_UNTIMED + kind]).
 */
export const TRAFFIC_OPS = 0;
export const TRAFFIC_IN = 1;
export const TRAFFIC_OUT = 2;
export const TRAFFIC_SERVICE_US = 3;
const TRAFFIC_UNTIMED = 4;

export function newJobTraffic(): Float64Array {
  return new Float64Array(TRAFFIC_UNTIMED + OPS);
}

/** Wire op code → OpKind (HELLO, PING, admin ops and unknown codes: other). */
const KIND_OF_CODE = new Uint8Array(256).fill(OpKind.other);
KIND_OF_CODE[Op.PUT] = OpKind.put;
KIND_OF_CODE[Op.GET] = OpKind.get;
KIND_OF_CODE[Op.DELETE] = OpKind.delete;
KIND_OF_CODE[Op.STAT] = OpKind.stat;
KIND_OF_CODE[Op.LIST] = OpKind.list;

export function opKindOf(code: number): number {
  return KIND_OF_CODE[code & 0xff]!;
}

/** Upper bounds of `satchel_node_op_duration_seconds`: a DRAM op takes ~10 µs, a disk op on an emulated HDD up to a second. */
export const DURATION_BUCKETS_SECONDS = [
  0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
];
const BOUNDS_MS = Float64Array.from(DURATION_BUCKETS_SECONDS, (s) => s * 1000);
/** Bucket slots per op: one per bound, and one past the last (+Inf). */
const SLOTS = BOUNDS_MS.length + 1;

/**
 * The interval histogram behind `takeLatency`: log-linear over nanoseconds, 16 sub-buckets per power of two
 * (≤ 6.25 % error), up to 2^31 ns (2.1 s; longer ops land in the last bucket). Indexing is a clz, no log.
 */
const SUB_BITS = 4;
const SUB = 1 << SUB_BITS;
const FINE_SLOTS = SUB + (31 - SUB_BITS) * SUB;
const MAX_NS = 0x7fffffff;

function fineIndex(ns: number): number {
  if (ns < SUB) return ns;
  const e = 31 - Math.clz32(ns);
  return SUB + (e - SUB_BITS) * SUB + ((ns >>> (e - SUB_BITS)) & (SUB - 1));
}

/** The middle of a fine bucket, in ns. */
function fineValue(index: number): number {
  if (index < SUB) return index;
  const e = ((index - SUB) >> SUB_BITS) + SUB_BITS;
  const width = 2 ** (e - SUB_BITS);
  return (SUB + ((index - SUB) & (SUB - 1))) * width + width / 2;
}

/** Ops timed at the start of every read (all of them when reads carry few frames). */
const TIME_FIRST = 2;
/**
 * Past those, about one op in this many is timed (the gaps drawn from 8 to 23, so a workload's own period, say
 * one PUT every four frames, cannot hide a kind from the samples), and stands for the ops of its kind not timed
 * before it.
 */
const SAMPLE_EVERY = 16;

/** What the node's gauges read at scrape time. */
export interface NodeGaugeSource {
  capacity(): number;
  used(): number;
  /** Jobs holding data on the node. */
  jobs(): number;
  connections(): number;
  /** WAIT requests parked until their key appears, and WATCHes open (coordination.ts). */
  waiters(): number;
  watches(): number;
  /** Bytes of request bodies received and not yet stored or refused (a disk engine's writes in flight). */
  inflightBodyBytes?(): number;
}

export interface NodeMetricsOptions {
  node: string;
  tier: string;
  gauges?: NodeGaugeSource;
}

export interface IntervalLatency {
  p50Us: number | null;
  p99Us: number | null;
}

export class NodeMetrics {
  readonly node: string;
  readonly tier: string;
  /** Operations answered: [kind * STATUSES + status]. */
  private readonly ops = new Float64Array(OPS * STATUSES);
  /** Service-time buckets (not cumulative): [kind * SLOTS + slot]. */
  private readonly buckets = new Float64Array(OPS * SLOTS);
  /** Service time summed per kind, ms. */
  private readonly sumMs = new Float64Array(OPS);
  /** Value bytes: [0] received in PUTs, [1] sent in GET answers. */
  private readonly bytes = new Float64Array(2);
  /** Service times since the last takeLatency (data ops only). */
  private readonly interval = new Float64Array(FINE_SLOTS);
  private intervalCount = 0;
  /** Connections the node closed, by DISCONNECT_REASONS index. */
  private readonly disconnects = new Float64Array(DISCONNECT_REASONS.length);
  /** What the gauges read (the server sets it). */
  gauges: NodeGaugeSource | undefined;
  private registryInstance: Promise<Registry> | null = null;

  constructor(options: NodeMetricsOptions) {
    this.node = options.node;
    this.tier = options.tier;
    this.gauges = options.gauges;
  }

  /**
   * Service time: from a frame reaching the session to its answer being queued. Clock (performance.now(), ms)
   * readings live in a typed array so that no double is ever boxed: `clock[0]` is the current op's start when
   * `timing` is set.
   *
   * `markFree` reads the clock as a read arrives (and after a frame left to an engine's promise); the first
   * TIME_FIRST frames of the read are timed back to back, each starting where the previous answer was queued,
   * one clock read each. Past those, `beginOp` starts the clock for about one frame in SAMPLE_EVERY (two reads), and
   * that frame's observation is weighted by the frames of its kind that went untimed since its kind's last
   * observation, so histogram counts still add up to the ops answered (`_count` trails ops_total by at most the
   * untimed ops not yet represented) and percentiles are not biased towards the first frames of a read. A
   * lightly loaded node, or a disk tier, times every op.
   *
   * One clock serves every session: frames are handed over only while their read is being decoded, right after
   * that read's `markFree`, and an engine's late answer puts its op's start back first (connection.ts `settle`).
   */
  readonly clock = new Float64Array(1);
  timing = false;
  private chain = 0;
  private sinceSample = 0;
  private gap = SAMPLE_EVERY;
  /** xorshift32 state for the gaps between samples. */
  private seed = 0x2545f491;
  /** Per kind: ops answered untimed since that kind's last observation. */
  private readonly untimed = new Float64Array(OPS);

  markFree(): void {
    this.clock[0] = performance.now();
    this.timing = true;
    this.chain = 0;
  }

  /** A frame reached the session. */
  beginOp(): void {
    if (this.timing || ++this.sinceSample < this.gap) return;
    this.sinceSample = 0;
    let x = this.seed;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.seed = x;
    this.gap = SAMPLE_EVERY / 2 + (x & (SAMPLE_EVERY - 1));
    this.clock[0] = performance.now();
    this.timing = true;
  }

  /**
   * The current op was answered: `kind` from `opKindOf`, `status` the wire status, `job` its job's counts
   * (`newJobTraffic`; null: no job's, a HELLO say), whose service time it adds to. Allocates nothing but a clock
   * read.
   */
  record(kind: number, status: number, job: Float64Array | null = null): void {
    this.ops[kind * STATUSES + (status === Status.OK ? 0 : status === Status.NOT_FOUND ? 1 : 2)]!++;
    if (!this.timing) {
      this.untimed[kind]!++;
      if (job !== null) job[TRAFFIC_UNTIMED + kind]!++;
      return;
    }
    const now = performance.now();
    const ms = now - this.clock[0]!;
    this.clock[0] = now;
    this.timing = ++this.chain < TIME_FIRST;
    const weight = this.untimed[kind]! + 1;
    this.untimed[kind] = 0;
    if (job !== null) {
      job[TRAFFIC_SERVICE_US]! += (ms > 0 ? ms * 1000 : 0) * (job[TRAFFIC_UNTIMED + kind]! + 1);
      job[TRAFFIC_UNTIMED + kind] = 0;
    }
    let slot = 0;
    while (slot < BOUNDS_MS.length && ms > BOUNDS_MS[slot]!) slot++;
    this.buckets[kind * SLOTS + slot]! += weight;
    this.sumMs[kind]! += ms * weight;
    if (kind !== OpKind.other) {
      const ns = ms > 0 ? ms * 1e6 : 0;
      this.interval[fineIndex(ns < MAX_NS ? ns | 0 : MAX_NS)]! += weight;
      this.intervalCount += weight;
    }
  }

  bytesIn(n: number): void {
    this.bytes[0]! += n;
  }

  bytesOut(n: number): void {
    this.bytes[1]! += n;
  }

  /** The node closed a client's connection for `reason`. */
  disconnected(reason: DisconnectReason): void {
    this.disconnects[DISCONNECT_REASONS.indexOf(reason)]!++;
  }

  disconnectedCount(reason: DisconnectReason): number {
    return this.disconnects[DISCONNECT_REASONS.indexOf(reason)]!;
  }

  /** Value bytes received in PUTs (in) or sent in GET answers (out) so far. */
  valueBytes(direction: 'in' | 'out'): number {
    return this.bytes[direction === 'in' ? 0 : 1]!;
  }

  /** Operations answered so far with this op and status. */
  opsCount(op: OpName, status: (typeof STATUS_NAMES)[number]): number {
    return this.ops[OpKind[op] * STATUSES + STATUS_NAMES.indexOf(status)]!;
  }

  /**
   * p50 and p99 of the service time of the data operations answered since the last call (null: none), in µs,
   * within 6.25 %; starts the next interval.
   */
  takeLatency(): IntervalLatency {
    const total = this.intervalCount;
    if (total === 0) return { p50Us: null, p99Us: null };
    const rank50 = Math.ceil(total * 0.5);
    const rank99 = Math.ceil(total * 0.99);
    let p50: number | null = null;
    let p99: number | null = null;
    let seen = 0;
    for (let i = 0; i < FINE_SLOTS; i++) {
      const n = this.interval[i]!;
      if (n === 0) continue;
      seen += n;
      if (p50 === null && seen >= rank50) p50 = fineValue(i) / 1000;
      if (seen >= rank99) {
        p99 = fineValue(i) / 1000;
        break;
      }
    }
    this.interval.fill(0);
    this.intervalCount = 0;
    return { p50Us: p50, p99Us: p99 };
  }

  /**
   * The node's own registry, with the process metrics: created on first use, and prom-client is only loaded
   * then (see the top of this file).
   */
  registry(): Promise<Registry> {
    return (this.registryInstance ??= import('prom-client').then((prom) => buildRegistry(prom, this)));
  }

  /** `satchel_node_op_duration_seconds` as prom-client values, from the typed arrays. */
  durationValues(name: string): { labels: Record<string, string | number>; value: number; metricName: string }[] {
    const values: { labels: Record<string, string | number>; value: number; metricName: string }[] = [];
    for (let k = 0; k < OPS; k++) {
      const op = OP_NAMES[k]!;
      let cumulative = 0;
      for (let slot = 0; slot < SLOTS; slot++) {
        cumulative += this.buckets[k * SLOTS + slot]!;
        const le = slot < DURATION_BUCKETS_SECONDS.length ? DURATION_BUCKETS_SECONDS[slot]! : '+Inf';
        values.push({ labels: { op, tier: this.tier, le }, value: cumulative, metricName: `${name}_bucket` });
      }
      values.push({ labels: { op, tier: this.tier }, value: this.sumMs[k]! / 1000, metricName: `${name}_sum` });
      values.push({ labels: { op, tier: this.tier }, value: cumulative, metricName: `${name}_count` });
    }
    return values;
  }
}

const DURATION_NAME = 'satchel_node_op_duration_seconds';
const DURATION_HELP =
  "The node's service time, from a request frame reaching its connection to its answer being queued; sampled under load, each sample counted for the untimed ops of its op before it";

/** A registry reading `metrics` at every scrape: the process metrics, then the node's. */
function buildRegistry(prom: PromClient, metrics: NodeMetrics): Registry {
  const { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } = prom;
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'satchel_node_' });
  // Gauges named `_total`, which `promtool check metrics` rejects; the same counts are there by type
  // (`satchel_node_nodejs_active_handles{type}`, ...).
  for (const name of LINT_FAILURES) registry.removeSingleMetric(`satchel_node_${name}`);
  const tier = metrics.tier;
  new Counter({
    name: 'satchel_node_ops_total',
    help: 'Operations the node answered, by op (put, get, delete, stat, list; other: hello, ping, admin) and status',
    labelNames: ['op', 'tier', 'status'],
    registers: [registry],
    collect() {
      this.reset();
      for (const op of OP_NAMES) for (const status of STATUS_NAMES) this.inc({ op, tier, status }, metrics.opsCount(op, status));
    },
  });
  new Counter({
    name: 'satchel_node_bytes_total',
    help: 'Value bytes received in PUTs (in) and sent in GET answers (out)',
    labelNames: ['direction', 'tier'],
    registers: [registry],
    collect() {
      this.reset();
      this.inc({ direction: 'in', tier }, metrics.valueBytes('in'));
      this.inc({ direction: 'out', tier }, metrics.valueBytes('out'));
    },
  });
  new Counter({
    name: 'satchel_node_clients_disconnected_total',
    help: 'Connections the node closed on its own: no HELLO in time (hello_timeout), too many frames before one (pre_auth_output), answers unread past the output limits (output_buffer)',
    labelNames: ['reason', 'tier'],
    registers: [registry],
    collect() {
      this.reset();
      for (const reason of DISCONNECT_REASONS) this.inc({ reason, tier }, metrics.disconnectedCount(reason));
    },
  });

  /**
   * prom-client has no way to set a histogram's buckets, so this one answers `get` (and `getForPromString`,
   * what the registry asks when it renders text) from the typed arrays.
   */
  class PresetHistogram extends Histogram<'op' | 'tier'> {
    constructor() {
      super({ name: DURATION_NAME, help: DURATION_HELP, labelNames: ['op', 'tier'], buckets: DURATION_BUCKETS_SECONDS, registers: [] });
    }

    override async get(): Promise<DurationMetric> {
      return {
        name: DURATION_NAME,
        help: DURATION_HELP,
        // The typings declare a numeric enum; the registry prints the string prom-client itself uses.
        type: 'histogram' as unknown as MetricType,
        aggregator: 'sum',
        collect: () => {},
        values: metrics.durationValues(DURATION_NAME),
      };
    }

    async getForPromString(): Promise<DurationMetric> {
      return this.get();
    }
  }
  registry.registerMetric(new PresetHistogram());

  const gauge = (name: string, help: string, read: (source: NodeGaugeSource) => number) =>
    new Gauge({
      name,
      help,
      labelNames: ['tier', 'node'],
      registers: [registry],
      collect() {
        if (metrics.gauges !== undefined) this.set({ tier, node: metrics.node }, read(metrics.gauges));
      },
    });
  gauge('satchel_node_capacity_bytes', 'Bytes the node may hold', (g) => g.capacity());
  gauge('satchel_node_used_bytes', 'Bytes the node holds (keys, values and a fixed per-entry overhead)', (g) => g.used());
  gauge('satchel_node_jobs', 'Jobs holding data on the node', (g) => g.jobs());
  gauge('satchel_node_connections', 'Open client and admin connections', (g) => g.connections());
  gauge('satchel_node_waiters', 'WAIT requests parked until their key appears', (g) => g.waiters());
  gauge('satchel_node_watches', 'WATCH requests open', (g) => g.watches());
  gauge(
    'satchel_node_inflight_body_bytes',
    'Bytes of request bodies received and not yet stored (writes in flight to a disk engine)',
    (g) => g.inflightBodyBytes?.() ?? 0,
  );
  return registry;
}

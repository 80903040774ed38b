/**
 * One client process of `bench soak` (forked by perf/soak.ts). It runs jobs the way serverless jobs run: a
 * driver registers a short-lived job (DRAM or SSD, in turn), several functions attach its ticket, each for a
 * short invocation and then again, doing mixed operations on their own keys; at the end the driver reads every
 * key back and deregisters the job. Every value read is compared with what was written: a mismatch is lost
 * data. Counts and latency histograms go to the driver process at every tick.
 */
import { randomBytes } from 'node:crypto';
import { type Job, type RegisteredJob, Satchel, SatchelError } from '../client/index.ts';
import {
  addSample,
  answerDriver,
  emptyStats,
  type LaneState,
  Pacer,
  SAMPLES_KEPT,
  type SoakOp,
  type SoakWorkerConfig,
  smallValueSize,
} from './soak-protocol.ts';

const BLOCK = 1024 * 1024;
const LARGE_MAX = 3 * BLOCK;
/** Every value is a slice of this: what was written is known by (offset, size) alone. */
const pool = randomBytes(LARGE_MAX + BLOCK);

let config: SoakWorkerConfig;
let satchel: Satchel;
const state: LaneState = { stats: emptyStats(), running: true };

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const random = (n: number) => Math.floor(Math.random() * n);

function record(op: SoakOp, tier: string, micros: number): void {
  addSample((state.stats.ops[op] ??= {}), micros);
  if (op !== 'register' && op !== 'deregister' && op !== 'verify') addSample((state.stats.byTier[tier] ??= {}), micros);
}

function failed(what: string, error: unknown): void {
  state.stats.errors++;
  if (state.stats.errorSamples.length < SAMPLES_KEPT) {
    const code = error instanceof SatchelError ? error.code : ((error as Error)?.name ?? 'Error');
    state.stats.errorSamples.push(`${what}: ${code}: ${(error as Error)?.message ?? String(error)}`);
  }
}

function lost(what: string): void {
  state.stats.lost++;
  if (state.stats.lostSamples.length < SAMPLES_KEPT) state.stats.lostSamples.push(what);
}

interface Written {
  offset: number;
  size: number;
}

const valueFor = (w: Written) => pool.subarray(w.offset, w.offset + w.size);

function describe(got: Buffer | null, expected: Written | undefined): string {
  const want = expected === undefined ? 'nothing' : `${expected.size} bytes`;
  const have =
    got === null ? 'nothing' : `${got.length} bytes${expected !== undefined && got.length === expected.size ? ' (different content)' : ''}`;
  return `expected ${want}, read ${have}`;
}

/** What one lane wrote in its job; keys whose last write or delete failed are unknown until written again. */
class Model {
  readonly written = new Map<string, Written>();
  readonly unknown = new Set<string>();

  /** Compares a value read with the last acknowledged write; false (and counted) on a mismatch. */
  check(job: string, key: string, got: Buffer | null): boolean {
    if (this.unknown.has(key)) return true;
    const expected = this.written.get(key);
    const ok = expected === undefined ? got === null : got !== null && got.length === expected.size && got.equals(valueFor(expected));
    state.stats.verified++;
    if (!ok) lost(`${job} ${key}: ${describe(got, expected)}`);
    return ok;
  }
}

/** Small values: log-uniform from 16 bytes to 64 KiB. Large: over one block, up to 3 MiB. */
function newValue(large: boolean): Written {
  const size = large ? BLOCK + 1 + random(LARGE_MAX - BLOCK) : smallValueSize();
  return { offset: random(pool.length - size), size };
}

interface JobState {
  name: string;
  tier: string;
  driver: RegisteredJob;
  deadline: number;
  /** Increments of the job's counter acknowledged, and ones that failed (may or may not have counted). */
  incrs: number;
  incrsUnsure: number;
}

async function runLane(lane: number, job: JobState, pacer: Pacer): Promise<Model> {
  const model = new Model();
  const prefix = `l${lane}/`;
  const keys = Array.from({ length: config.keysPerLane }, (_, i) => `${prefix}k${i}`);
  let handle: Job | null = null;
  let invocationEnd = 0;
  let lastCount = 0;
  let waits = 0;
  try {
    while (state.running && performance.now() < job.deadline) {
      await pacer.wait();
      if (!state.running) break;
      // A function invocation: attach the ticket, work a while, close; then the next invocation.
      if (handle === null || performance.now() > invocationEnd) {
        await handle?.close();
        handle = null;
        try {
          handle = await Satchel.attach(job.driver.ticket);
          state.stats.attaches++;
        } catch (error) {
          failed(`attach ${job.name}`, error);
          await sleep(500);
          continue;
        }
        invocationEnd = performance.now() + config.invocationSeconds * 1000 * (0.5 + Math.random());
      }
      const h = handle;
      const r = Math.random();
      const key = keys[random(keys.length)]!;
      const t0 = performance.now();
      const took = () => (performance.now() - t0) * 1000;
      let op: SoakOp = 'get';
      try {
        if (r < 0.25 + config.largeFraction) {
          const large = r < config.largeFraction;
          op = large ? 'put_large' : 'put';
          const value = newValue(large);
          model.unknown.add(key);
          await h.put(key, valueFor(value));
          record(op, job.tier, took());
          model.unknown.delete(key);
          model.written.set(key, value);
          state.stats.bytesWritten += value.size;
        } else if (r < 0.55) {
          op = (model.written.get(key)?.size ?? 0) > BLOCK ? 'get_large' : 'get';
          const got = await h.get(key);
          record(op, job.tier, took());
          state.stats.bytesRead += got?.length ?? 0;
          model.check(job.name, key, got);
        } else if (r < 0.63) {
          op = 'stat';
          const stat = await h.stat(key);
          record(op, job.tier, took());
          if (!model.unknown.has(key)) {
            const expected = model.written.get(key);
            state.stats.verified++;
            if ((stat?.size ?? null) !== (expected?.size ?? null) || (stat !== null && stat.blocks > 1 !== stat.size > BLOCK)) {
              lost(
                `${job.name} ${key}: stat ${stat === null ? 'absent' : `${stat.size} bytes in ${stat.blocks} blocks`}, expected ${expected?.size ?? 'absent'}`,
              );
            }
          }
        } else if (r < 0.71) {
          op = 'delete';
          const had = model.unknown.has(key) ? null : model.written.has(key);
          model.unknown.add(key);
          const deleted = await h.delete(key);
          record(op, job.tier, took());
          model.unknown.delete(key);
          model.written.delete(key);
          state.stats.verified++;
          if (had !== null && deleted !== had)
            lost(`${job.name} ${key}: delete answered ${deleted}, the key was ${had ? 'there' : 'absent'}`);
        } else if (r < 0.75) {
          op = 'list';
          const listed: string[] = [];
          for await (const k of h.list(prefix)) listed.push(k);
          record(op, job.tier, took());
          const expected = [...model.written.keys()].filter((k) => !model.unknown.has(k)).sort();
          const seen = listed.filter((k) => !model.unknown.has(k)).sort();
          state.stats.verified++;
          if (expected.join('\n') !== seen.join('\n')) {
            const missing = expected.filter((k) => !seen.includes(k));
            const extra = seen.filter((k) => !expected.includes(k));
            lost(`${job.name} list ${prefix}: missing [${missing.join(', ')}], extra [${extra.join(', ')}]`);
          }
        } else if (r < 0.87) {
          op = 'incr';
          job.incrsUnsure++;
          const count = await h.incr('counter');
          record(op, job.tier, took());
          job.incrsUnsure--;
          job.incrs++;
          state.stats.verified++;
          if (count <= lastCount) lost(`${job.name} counter: incr returned ${count} after ${lastCount}`);
          lastCount = count;
        } else {
          // A waiter parked by this function, woken by the driver's write on its own connections.
          op = 'wait';
          const waitKey = `w/${lane}/${waits++}`;
          const value = newValue(false);
          let woke = 0;
          const waited = h.waitFor(waitKey, { timeoutMs: 10_000 }).then((v) => {
            woke = performance.now();
            return v;
          });
          const wrote = job.driver.put(waitKey, valueFor(value));
          const [got, put] = await Promise.allSettled([waited, wrote]);
          if (put.status === 'rejected') throw put.reason;
          if (got.status === 'rejected') throw got.reason;
          record(op, job.tier, (woke - t0) * 1000);
          state.stats.verified++;
          if (!got.value.equals(valueFor(value))) lost(`${job.name} ${waitKey}: waitFor ${describe(got.value, value)}`);
        }
      } catch (error) {
        failed(`${op} ${job.name} ${key}`, error);
      }
    }
  } finally {
    await handle?.close().catch(() => {});
  }
  return model;
}

async function readBack(job: JobState, models: Model[]): Promise<void> {
  const t0 = performance.now();
  for (const model of models) {
    const keys = [...model.written.keys()].filter((k) => !model.unknown.has(k));
    const values = await job.driver.getMany(keys);
    for (const [i, key] of keys.entries()) model.check(job.name, key, values[i] ?? null);
  }
  if (job.incrs + job.incrsUnsure > 0) {
    const text = (await job.driver.get('counter'))?.toString() ?? '0';
    const total = Number(text);
    state.stats.verified++;
    if (!(total >= job.incrs && total <= job.incrs + job.incrsUnsure))
      lost(`${job.name} counter: ${text} after ${job.incrs} increments (${job.incrsUnsure} unsure)`);
  }
  record('verify', job.tier, (performance.now() - t0) * 1000);
}

/** After deregistration the job's data is gone: its old ticket gets NO_SUCH_JOB (or nothing), never a value. */
async function checkGone(job: JobState, key: string): Promise<void> {
  let handle: Job | null = null;
  try {
    handle = await Satchel.attach(job.driver.ticket);
    const got = await handle.get(key);
    if (got !== null) failed(`after deregister ${job.name} ${key}`, new Error(`a deregistered job's key still reads ${got.length} bytes`));
  } catch (error) {
    if (!(error instanceof SatchelError && (error.code === 'NO_SUCH_JOB' || error.code === 'UNAUTHORIZED')))
      failed(`after deregister ${job.name}`, error);
  } finally {
    await handle?.close().catch(() => {});
  }
}

/** One job slot: jobs one after another, each with its lanes as functions. */
async function jobSlot(slot: number, lanes: number[], pacers: Pacer[]): Promise<void> {
  for (let n = 0; state.running; n++) {
    const tier = config.tiers[(slot + n) % config.tiers.length]!;
    const name = `soak-${tier}-${config.worker}-${slot}-${n}`;
    let driver: RegisteredJob;
    const t0 = performance.now();
    try {
      driver = await satchel.registerJob(name, { latencySensitive: tier === 'dram', capacity: config.jobCapacity });
      record('register', tier, (performance.now() - t0) * 1000);
      state.stats.jobsRegistered++;
    } catch (error) {
      failed(`register ${name}`, error);
      await sleep(1000);
      continue;
    }
    const job: JobState = {
      name,
      tier,
      driver,
      deadline: performance.now() + config.jobSeconds * 1000 * (0.5 + Math.random()),
      incrs: 0,
      incrsUnsure: 0,
    };
    const models = await Promise.all(lanes.map((lane, i) => runLane(lane, job, pacers[i]!)));
    try {
      await readBack(job, models);
    } catch (error) {
      failed(`read back ${name}`, error);
    }
    const t1 = performance.now();
    try {
      await driver.deregister();
      record('deregister', tier, (performance.now() - t1) * 1000);
      state.stats.jobsDeregistered++;
    } catch (error) {
      failed(`deregister ${name}`, error);
      await driver.close().catch(() => {});
      continue;
    }
    const anyKey = models.flatMap((m) => [...m.written.keys()])[0];
    if (anyKey !== undefined) await checkGone(job, anyKey);
  }
}

async function start(options: SoakWorkerConfig): Promise<{ done: Promise<void> }> {
  config = options;
  satchel = await Satchel.connect(config.controller, { key: config.key });
  const period = config.opsPerSecond > 0 ? (config.lanes / config.opsPerSecond) * 1000 : 0;
  const slots: Promise<void>[] = [];
  for (let slot = 0, lane = 0; lane < config.lanes; slot++) {
    const lanes: number[] = [];
    for (; lanes.length < config.lanesPerJob && lane < config.lanes; lane++) lanes.push(lane);
    // Pacers outlive jobs: a lane keeps its rate across the job boundary.
    slots.push(
      jobSlot(
        slot,
        lanes,
        lanes.map(() => new Pacer(period)),
      ),
    );
  }
  // Wrapped: an async function returning a promise would wait for it.
  return { done: Promise.all(slots).then(() => undefined) };
}

answerDriver('client process', state, start, () => satchel?.close());

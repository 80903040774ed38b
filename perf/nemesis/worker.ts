/**
 * One client process of `bench nemesis` (forked by run.ts): `lanes` loops, each doing one operation at a time
 * on the driver's current jobs — put (a value unique in the run), get, delete, incr (on counters), waitFor — and
 * appending each to its history file as it settles: invoke and complete times on the run's clock, the outcome
 * and what was read. It judges nothing; perf/nemesis/checker.ts does, from the file.
 */
import { once } from 'node:events';
import { createWriteStream, type WriteStream } from 'node:fs';
import { type Job, Satchel, SatchelError } from '../../client/index.ts';
import type { HistoryOp, OpKind, OpOutcome } from './history.ts';
import type { NemesisJob, ToDriver, ToWorker, WorkerConfig } from './protocol.ts';

const send = (message: ToDriver) => process.send?.(message);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const pick = <T>(items: readonly T[]): T => items[Math.floor(Math.random() * items.length)]!;

/** Codes a server (or the client) answers before anything is applied: such a write is known not to have happened. */
const NOT_APPLIED = new Set(['BAD_REQUEST', 'UNAUTHORIZED', 'TOO_LARGE']);
/** How long a waitFor waits: short, so a lane keeps moving (a TIMEOUT is a failed read, not an anomaly). */
const WAIT_MS = 1_000;

let config: WorkerConfig;
let jobs: NemesisJob[] = [];
let generation = 0;
let running = true;
let out: WriteStream;
let ops = 0;
const handles = new Map<string, Promise<Job>>();
let laneGenerations: number[] = [];
let acknowledged = 0;

function now(): number {
  return performance.timeOrigin + performance.now() - config.startedAt;
}

function handleOf(job: NemesisJob): Promise<Job> {
  let handle = handles.get(job.id);
  if (handle === undefined) {
    handle = Satchel.attach(job.ticket, { timeoutMs: config.timeoutMs });
    handles.set(job.id, handle);
    handle.catch(() => handles.delete(job.id));
  }
  return handle;
}

function record(op: HistoryOp): void {
  ops++;
  if (!out.write(`${JSON.stringify(op)}\n`)) out.once('drain', () => {});
}

/** An error's outcome: reads change nothing (fail); a write is unknown (info) unless refused before applying. */
function outcomeOf(op: OpKind, code: string): OpOutcome {
  if (op === 'get' || op === 'wait') return 'fail';
  return NOT_APPLIED.has(code) ? 'fail' : 'info';
}

async function lane(index: number): Promise<void> {
  const process_ = `w${config.worker}.${index}`;
  let seq = 0;
  while (running) {
    if (laneGenerations[index] !== generation) {
      laneGenerations[index] = generation;
      maybeAcknowledge();
    }
    const job = pick(jobs);
    const started = performance.now();
    const roll = Math.random();
    const op: OpKind = roll < 0.35 ? 'put' : roll < 0.72 ? 'get' : roll < 0.78 ? 'delete' : roll < 0.9 ? 'incr' : 'wait';
    // Deletes, and a quarter of puts and gets, on keys that get deleted; waits on keys that never are.
    const deletable = op === 'delete' || ((op === 'put' || op === 'get') && Math.random() < 0.25);
    // A tenth of gets read a ballast key: data only the faults move, checked all along, not only at the end.
    const ballast = op === 'get' && !deletable && Math.random() < 0.1 && job.ballast > 0;
    const key =
      op === 'incr'
        ? pick(job.counters)
        : deletable
          ? pick(job.deletable)
          : ballast
            ? `b${Math.floor(Math.random() * job.ballast)}`
            : pick(job.keys);
    const value = op === 'put' ? `${process_}.${seq++}` : undefined;
    const invokeMs = now();
    let outcome: OpOutcome = 'ok';
    let result: string | number | null | undefined;
    let errorCode: string | undefined;
    let errorMessage: string | undefined;
    try {
      const handle = await handleOf(job);
      switch (op) {
        case 'put':
          await handle.put(key, value!);
          break;
        case 'get': {
          const got = await handle.get(key);
          result = got === null ? null : got.toString();
          break;
        }
        case 'delete':
          await handle.delete(key);
          break;
        case 'incr':
          result = await handle.incr(key);
          break;
        case 'wait':
          result = (await handle.waitFor(key, { timeoutMs: WAIT_MS })).toString();
          break;
      }
    } catch (error) {
      errorCode = error instanceof SatchelError ? error.code : 'ERROR';
      errorMessage = String((error as Error)?.message).slice(0, 300);
      outcome = outcomeOf(op, errorCode);
    }
    const line: HistoryOp & { epoch?: number; errorMessage?: string } = {
      process: process_,
      job: job.id,
      replicas: job.replicas,
      op,
      key,
      invokeMs,
      completeMs: now(),
      outcome,
    };
    const handle = await handles.get(job.id)?.catch(() => undefined);
    if (handle !== undefined) line.epoch = handle.epoch;
    if (value !== undefined) line.value = value;
    if (op === 'incr') line.amount = 1;
    if (result !== undefined) line.result = result;
    if (errorCode !== undefined) line.errorCode = errorCode;
    if (errorMessage !== undefined) line.errorMessage = errorMessage;
    record(line);
    if (outcome !== 'ok') await sleep(5); // what fails fast (a refused connection) must not spin
    if (config.ratePerLane > 0) {
      const gap = 1000 / config.ratePerLane - (performance.now() - started);
      if (gap > 0) await sleep(gap);
    }
  }
}

/** Once every lane has moved to the newest generation of jobs, the driver hears so. */
function maybeAcknowledge(): void {
  if (acknowledged >= generation || laneGenerations.some((g) => g !== generation)) return;
  acknowledged = generation;
  send({ type: 'switched', generation });
  // Handles of jobs no longer worked on are closed (their last calls have settled: every lane moved on).
  const current = new Set(jobs.map((j) => j.id));
  for (const [id, handle] of handles) {
    if (current.has(id)) continue;
    handles.delete(id);
    void handle.then((h) => h.close()).catch(() => {});
  }
}

let lanes: Promise<void>[] = [];

process.on('message', (message: ToWorker) => {
  switch (message.type) {
    case 'start':
      config = message.config;
      jobs = message.jobs;
      out = createWriteStream(config.historyFile, { flags: 'a', highWaterMark: 1 << 20 });
      laneGenerations = Array.from({ length: config.lanes }, () => 0);
      lanes = laneGenerations.map((_, i) =>
        lane(i).catch((error: unknown) => {
          send({ type: 'error', message: String(error) });
        }),
      );
      return;
    case 'jobs':
      jobs = message.jobs;
      generation = message.generation;
      return;
    case 'stop':
      running = false;
      void (async () => {
        await Promise.all(lanes);
        out.end();
        await once(out, 'finish');
        await Promise.all([...handles.values()].map((h) => h.then((job) => job.close()).catch(() => {})));
        send({ type: 'stopped', ops });
        process.disconnect();
      })();
      return;
  }
});

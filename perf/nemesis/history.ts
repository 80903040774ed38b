/**
 * What a `satchel bench nemesis` run records, and all the checker (checker.ts) reads: every client operation
 * with its real-time window and outcome, and every fault injected. The driver emits these; the checker judges
 * them without knowing anything about how Satchel works inside.
 *
 * Times are milliseconds since the run started, from one clock shared by every client process (the driver's
 * start time plus `performance.now()` deltas). Fractional milliseconds are welcome: two events with the same
 * timestamp are treated as concurrent, so coarse clocks only make the checker more lenient, never wrong.
 *
 * The order of `ops` does not matter. Build each op as one object literal (or parse them from JSON): V8 reads
 * objects made by spreading a shared base (`{ ...base, op: 'put' }`) an order of magnitude slower, which for a
 * million ops is seconds of the check.
 */

export type OpKind = 'put' | 'get' | 'delete' | 'incr' | 'wait';

/** Outcomes, as Jepsen has them: `info` is the honest answer when the client cannot know. */
export type OpOutcome = 'ok' | 'fail' | 'info';

export interface HistoryOp {
  /** Which client (process/lane) did it; one op at a time per process. */
  process: string;
  /** The job's label, e.g. 'r2'. */
  job: string;
  replicas: 1 | 2 | 3;
  op: OpKind;
  key: string;
  /** put: the value written. The driver makes every written value unique per key, so a read names its write. */
  value?: string;
  /** incr: the amount added (1 when absent, as `job.incr(key)`). */
  amount?: number;
  /** When the call was made, ms since the run started. */
  invokeMs: number;
  /** When it settled, ms since the run started. */
  completeMs: number;
  /**
   * ok: acknowledged (for get/wait: `result` is what was read). fail: definitely not applied (e.g. a refusal
   * the server answered before doing anything: UNAUTHORIZED, BAD_REQUEST, NO_SUCH_JOB, FULL...). info: unknown
   * whether it took effect (TIMEOUT, UNAVAILABLE on a write, connection lost).
   */
  outcome: OpOutcome;
  /** get/wait: the value read (null = absent); incr: the new total. */
  result?: string | number | null;
  /** The SatchelError code when not ok. */
  errorCode?: string;
  /** True for the read-back of every key after the faults ended and the cluster healed. */
  final?: boolean;
}

/** One injected fault, e.g. `{ kind: 'kill', target: 'node-2', startMs, endMs }` (end: restarted/resumed/healed). */
export interface FaultEvent {
  kind: string;
  target: string;
  startMs: number;
  endMs: number;
  note?: string;
}

export interface History {
  /** ISO date of the run's start. */
  startedAt: string;
  durationMs: number;
  ops: HistoryOp[];
  faults: FaultEvent[];
}

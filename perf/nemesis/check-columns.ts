/**
 * The checker's history reader: each op read once into typed columns (its kind and outcome as small integers),
 * or named malformed with the reason it cannot be judged. The models (check-models.ts) read only these columns.
 */
import type { HistoryOp } from './history.ts';

// Op kinds and outcomes as small integers, so that the per-op columns are typed arrays.
export const PUT = 0;
export const DELETE = 1;
export const GET = 2;
export const WAIT = 3;
export const INCR = 4;
export const OK = 0;
export const FAIL = 1;
export const INFO = 2;

function kindCode(kind: unknown): number {
  switch (kind) {
    case 'put':
      return PUT;
    case 'delete':
      return DELETE;
    case 'get':
      return GET;
    case 'wait':
      return WAIT;
    case 'incr':
      return INCR;
    default:
      return -1;
  }
}

function outcomeCode(outcome: unknown): number {
  return outcome === 'ok' ? OK : outcome === 'fail' ? FAIL : outcome === 'info' ? INFO : -1;
}

/** One op's fields, read from the op object exactly once. */
interface OpFields {
  job: unknown;
  key: unknown;
  replicas: unknown;
  kind: number;
  outcome: number;
  invokeMs: number;
  completeMs: number;
  final: boolean;
  /** put: the value; an ok read or incr: its result. */
  datum: string | number | null | undefined;
  amount: number;
}

export function readOp(op: HistoryOp): OpFields {
  const kind = kindCode(op.op);
  const outcome = outcomeCode(op.outcome);
  return {
    job: op.job,
    key: op.key,
    replicas: op.replicas,
    kind,
    outcome,
    invokeMs: op.invokeMs,
    completeMs: op.completeMs,
    final: op.final === true,
    datum: kind === PUT ? op.value : outcome === OK && kind !== DELETE ? op.result : undefined,
    amount: kind === INCR ? (op.amount ?? 1) : 0,
  };
}

/** Why an op cannot be judged, or undefined when it can. */
export function malformation(op: HistoryOp, f: OpFields, jobReplicas: number | undefined, horizonMs: number): string | undefined {
  if (typeof f.job !== 'string' || typeof f.key !== 'string') return 'job and key must be strings';
  if (f.replicas !== 1 && f.replicas !== 2 && f.replicas !== 3) return `replicas ${String(f.replicas)} is not 1, 2 or 3`;
  if (jobReplicas !== undefined && f.replicas !== jobReplicas) return `job ${f.job} has replicas ${jobReplicas} elsewhere`;
  if (
    typeof f.invokeMs !== 'number' ||
    typeof f.completeMs !== 'number' ||
    !Number.isFinite(f.invokeMs) ||
    !Number.isFinite(f.completeMs)
  ) {
    return 'times must be finite numbers';
  }
  if (f.completeMs < f.invokeMs) return 'completeMs before invokeMs';
  // A wall-clock time (Date.now()) where ms since the start belong would also make a timeline of 10^12 ms.
  if (f.invokeMs < 0 || f.completeMs > horizonMs) return `times outside the run (0 to durationMs + 1 h): not ms since its start?`;
  if (f.outcome < 0) return `outcome ${String(op.outcome)}`;
  if (f.kind < 0) return `unknown op ${String(op.op)}`;
  if (f.kind === PUT && typeof f.datum !== 'string') return 'put without a string value';
  if (f.kind === INCR && !Number.isFinite(f.amount)) return 'incr amount must be a finite number';
  if ((f.kind === GET || f.kind === WAIT) && f.outcome === OK && f.datum === undefined) return `ok ${String(op.op)} without a result`;
  if (f.final && f.kind !== GET && f.kind !== WAIT) return 'only reads can be final';
  return undefined;
}

/**
 * The history read once into columns. Every later step reads these typed arrays, and the op objects only to
 * report an anomaly: a history's objects may come in any shape (parsed JSON, spread literals, fields added
 * later), and V8 reads a field of mixed-shape objects many times slower than an array element.
 */
export class Columns {
  readonly invoke: Float64Array;
  readonly complete: Float64Array;
  readonly kind: Uint8Array;
  readonly outcome: Uint8Array;
  readonly final: Uint8Array;
  readonly amount: Float64Array;
  readonly datum: (string | number | null | undefined)[];
  readonly byComplete = (a: number, b: number): number => this.complete[a]! - this.complete[b]!;
  readonly byInvoke = (a: number, b: number): number => this.invoke[a]! - this.invoke[b]!;

  constructor(readonly ops: readonly HistoryOp[]) {
    const n = ops.length;
    this.invoke = new Float64Array(n);
    this.complete = new Float64Array(n);
    this.kind = new Uint8Array(n);
    this.outcome = new Uint8Array(n);
    this.final = new Uint8Array(n);
    this.amount = new Float64Array(n);
    this.datum = new Array<string | number | null | undefined>(n);
  }

  set(i: number, f: OpFields): void {
    this.invoke[i] = f.invokeMs;
    this.complete[i] = f.completeMs;
    this.kind[i] = f.kind;
    this.outcome[i] = f.outcome;
    this.final[i] = f.final ? 1 : 0;
    this.amount[i] = f.amount;
    this.datum[i] = f.datum;
  }
}

/** One (job, key): its ops are members[start, start + size) of the grouped order, in history order. */
export interface KeyGroup {
  key: string;
  start: number;
  size: number;
}

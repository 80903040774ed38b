/**
 * Control-plane calls to storage nodes and metadata servers whose failure the controller does not pass on (it
 * tries again later: on the node's next report, the next tick, or when the node is back). None is dropped in
 * silence: each is logged (warn, with the node or server and the job) and counted by operation, which the
 * console's `/metrics` exports as `satchel_controller_node_call_failures_total{op}`.
 */
import type { Logger } from 'pino';

/** What failed: the node's admin operations (ANNOUNCE also tells a member a new epoch) and the metadata calls. */
export type ControlOp = 'announce' | 'drop_job' | 'limit_job' | 'set_placement' | 'drop_placement';

export const CONTROL_OPS: readonly ControlOp[] = ['announce', 'drop_job', 'limit_job', 'set_placement', 'drop_placement'];

export class CallFailures {
  private readonly counts = new Map<ControlOp, number>(CONTROL_OPS.map((op) => [op, 0]));

  constructor(private readonly logger: Logger) {}

  /** One call that failed; `context` names the node (or metadata server) and the job, and what happens next. */
  record(op: ControlOp, error: unknown, context: { node?: string; metadata?: string; job?: string }, next: string): void {
    this.counts.set(op, (this.counts.get(op) ?? 0) + 1);
    this.logger.warn({ err: error, op, ...context }, `${op} failed: ${next}`);
  }

  /** Failures so far, by operation (every operation present, at 0 before its first). */
  get byOp(): ReadonlyMap<ControlOp, number> {
    return this.counts;
  }
}

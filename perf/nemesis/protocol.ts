/** Messages between the nemesis driver (run.ts) and its client processes (worker.ts), over the fork's IPC. */

/** One job the clients work on: its keys, counters and ticket. */
export interface NemesisJob {
  id: string;
  replicas: 1 | 2 | 3;
  ticket: string;
  /** Written before the clients start, then overwritten, read and waited for; never deleted. */
  keys: string[];
  /** Written, read and deleted; never waited for (a wait for a deleted key only times out). */
  deletable: string[];
  /** Only ever incremented (and read). */
  counters: string[];
  /** Keys `b0`… written once before the clients start: read now and then, never written. */
  ballast: number;
}

export interface WorkerConfig {
  worker: number;
  lanes: number;
  /** Epoch ms the run's clock starts at: every time in the history is ms since then. */
  startedAt: number;
  /** Where the worker appends its operations, one JSON HistoryOp per line. */
  historyFile: string;
  /** The client's per-operation timeout. */
  timeoutMs: number;
  /** Operations per second per lane at most (0: as fast as answers come). */
  ratePerLane: number;
}

export type ToWorker =
  | { type: 'start'; config: WorkerConfig; jobs: NemesisJob[] }
  /** The jobs to work on from now on (generation `generation`); the worker answers `switched` once it does. */
  | { type: 'jobs'; generation: number; jobs: NemesisJob[] }
  | { type: 'stop' };

export type ToDriver =
  | { type: 'switched'; generation: number }
  /** Every lane stopped and the history file is flushed. */
  | { type: 'stopped'; ops: number }
  | { type: 'error'; message: string };

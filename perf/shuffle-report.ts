/**
 * The JSON `satchel bench shuffle` and `satchel bench jobs` write (DESIGN.md's benchmark rows, plus the time
 * series the HTML report draws). Kept in one place so the runner, the HTML report and the tests agree.
 */

export interface MachineInfo {
  cpus: number;
  cpu: string;
  memory_bytes: number;
  node: string;
  platform: string;
}

export interface OpLatency {
  count: number;
  p50_us: number;
  p99_us: number;
  p999_us: number;
  max_us: number;
}

/** One sort on one system. `verified` is always true in a written report: a run that fails is an error. */
export interface ShuffleRow {
  /** `satchel-dram`, `satchel-ssd`, `redis`, `redis-4-shards`, … */
  system: string;
  bytes: number;
  records: number;
  mappers: number;
  reducers: number;
  /** Functions running at once. */
  concurrency: number;
  /** Completion time: first mapper start to last reducer end (input load and verification excluded). */
  seconds: number;
  phases: {
    /** Wall time of the map stage. */
    map_s: number;
    /** The part of the reduce stage's wall time reducers spent reading their inputs. */
    shuffle_read_s: number;
    /** Wall time of the reduce stage (includes shuffle_read_s). */
    reduce_s: number;
  };
  /** Writing the input before the sort, and reading the output back to verify it (not part of `seconds`). */
  load_s: number;
  verify_s: number;
  /** Storage operations of the sort itself (map and reduce), and the bytes they moved. */
  ops: number;
  op_bytes: number;
  p50_us: number;
  p99_us: number;
  p999_us: number;
  max_us: number;
  by_op: Record<string, OpLatency>;
  /** Seconds summed over functions, by part: where the functions' time went. */
  function_seconds: Record<string, number>;
  verified: boolean;
}

/** Bytes moved through the store per interval during one system's sort (map and reduce operations). */
export interface Timeline {
  system: string;
  interval_s: number;
  /** Start of each interval, seconds since the system's map stage started. */
  t: number[];
  bytes_per_s: number[];
  ops_per_s: number[];
}

export interface ShuffleReport {
  benchmark: 'shuffle';
  date: string;
  command: string;
  machine: MachineInfo;
  options: Record<string, unknown>;
  results: ShuffleRow[];
  timelines: Timeline[];
}

export interface JobRun {
  system: string;
  name: string;
  /** Seconds since the run started. */
  start_s: number;
  end_s: number;
  seconds: number;
  verified: boolean;
}

/** One second of the staggered run: per tier, bytes reserved for jobs and bytes they hold. */
export interface CapacitySample {
  system: string;
  t: number;
  tiers: Record<string, { reserved_bytes: number; used_bytes: number }>;
}

export interface JobsReport {
  benchmark: 'jobs';
  date: string;
  command: string;
  machine: MachineInfo;
  options: Record<string, unknown>;
  jobs: JobRun[];
  samples: CapacitySample[];
  summary: {
    system: string;
    /** Mean reserved bytes over mean used bytes, over the seconds any job held data. */
    reserved_over_used: number;
    mean_reserved_bytes: number;
    mean_used_bytes: number;
    /** Last job's end minus first job's start. */
    makespan_s: number;
  }[];
}

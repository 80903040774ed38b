/**
 * What `satchel bench soak` reports (soak.ts runs it): a row per interval from the clients' merged statistics
 * and the servers' readings, the summary of the run against its targets, and the text for the terminal.
 */
import { descriptorsAdded } from './proc.ts';
import { countOf, DATA_OPS, mergeInto, percentileOf, type SoakOp, type SoakStats } from './soak-protocol.ts';
import type { IdleReading, ProcessReading, ServerProcess } from './soak-servers.ts';
import { round } from './stats.ts';

export interface OpFigures {
  count: number;
  p50_us: number;
  p99_us: number;
  p999_us: number;
  max_us: number;
}

export interface SoakInterval {
  index: number;
  end_s: number;
  seconds: number;
  ops: number;
  ops_per_s: number;
  errors: number;
  lost: number;
  /** Over the data operations (everything but register, deregister and a job's final read-back). */
  p50_us: number;
  p99_us: number;
  p999_us: number;
  max_us: number;
  by_op: Partial<Record<SoakOp, OpFigures>>;
  by_tier: Record<string, OpFigures>;
  /** The baseline's round trips in the same interval (soak-floor.ts): what the machine alone adds. */
  floor: OpFigures | null;
  verified: number;
  bytes_written: number;
  bytes_read: number;
  jobs_registered: number;
  jobs_deregistered: number;
  attaches: number;
  processes: ProcessReading[];
  clients: ProcessReading[];
  error_samples: string[];
  lost_samples: string[];
}

export interface ProcessSummary {
  name: string;
  role: string;
  pid: number | null;
  rss_warmup_bytes: number | null;
  rss_end_bytes: number | null;
  rss_growth_pct: number | null;
  fds_idle_before: number | null;
  fds_warmup: number | null;
  fds_end: number | null;
  fds_idle_after: number | null;
  /** Descriptors open once the run was over and idle that were not before it (proc.ts descriptorsAdded), at most 20. */
  fds_added: string[] | null;
  rss_ok: boolean | null;
  fds_ok: boolean | null;
}

export interface SoakSummary {
  intervals: number;
  seconds: number;
  ops: number;
  errors: number;
  lost: number;
  verified: number;
  jobs_registered: number;
  jobs_deregistered: number;
  processes: ProcessSummary[];
  p99_first_us: number;
  p99_last_us: number;
  p99_ratio: number | null;
  /** The last interval's p99 over the baseline's in it (soak-floor.ts); null without a baseline. */
  floor_p99_last_us: number | null;
  p99_over_floor: number | null;
  /** After the run: soak jobs the controller still lists, and jobs nodes still hold that the controller does not know. */
  jobs_left: number | null;
  orphaned_jobs_on_nodes: number | null;
  orphaned_bytes: number | null;
  error_samples: string[];
  lost_samples: string[];
  targets: {
    rss_growth_under_10_pct: boolean | null;
    fds_flat: boolean | null;
    p99_within_2x: boolean | null;
    nothing_left: boolean | null;
    no_errors: boolean;
    no_lost_data: boolean;
  };
}

export interface SoakReport {
  cluster: { mode: 'local' | 'existing'; controller: string; processes: ServerProcess[] };
  intervals: SoakInterval[];
  /** Operations of the jobs the clients finished after the last interval (the wind-down). */
  wind_down: { ops: number; errors: number; lost: number; verified: number; jobs_deregistered: number };
  summary: SoakSummary;
}

function figures(histogram: Record<number, number>): OpFigures {
  return { count: countOf(histogram), ...tail(histogram) };
}

/** p50, p99, p99.9 and max of a histogram (2 % buckets: soak-protocol.ts), µs. */
function tail(histogram: Record<number, number>): { p50_us: number; p99_us: number; p999_us: number; max_us: number } {
  return {
    p50_us: round(percentileOf(histogram, 50)),
    p99_us: round(percentileOf(histogram, 99)),
    p999_us: round(percentileOf(histogram, 99.9)),
    max_us: round(percentileOf(histogram, 100)),
  };
}

export function intervalRow(
  index: number,
  endS: number,
  seconds: number,
  stats: SoakStats,
  processes: ProcessReading[],
  clients: ProcessReading[],
): SoakInterval {
  const data: Record<number, number> = {};
  for (const op of DATA_OPS) mergeInto(data, stats.ops[op]);
  const ops = countOf(data);
  const byOp: Partial<Record<SoakOp, OpFigures>> = {};
  for (const [op, histogram] of Object.entries(stats.ops)) if (op !== 'floor') byOp[op as SoakOp] = figures(histogram);
  const byTier: Record<string, OpFigures> = {};
  for (const [tier, histogram] of Object.entries(stats.byTier)) byTier[tier] = figures(histogram!);
  return {
    index,
    end_s: round(endS, 1),
    seconds: round(seconds, 2),
    ops,
    ops_per_s: Math.round(ops / seconds),
    errors: stats.errors,
    lost: stats.lost,
    ...tail(data),
    by_op: byOp,
    by_tier: byTier,
    floor: stats.ops.floor === undefined ? null : figures(stats.ops.floor),
    verified: stats.verified,
    bytes_written: stats.bytesWritten,
    bytes_read: stats.bytesRead,
    jobs_registered: stats.jobsRegistered,
    jobs_deregistered: stats.jobsDeregistered,
    attaches: stats.attaches,
    processes,
    clients,
    error_samples: stats.errorSamples,
    lost_samples: stats.lostSamples,
  };
}

/**
 * Allowed drift of a server's open descriptors. From idle before the load to idle after it: 8 or 10 %
 * (servers keep a few connections to each other once used, the controller's admin connections to nodes).
 * From the warm-up to the end, under load, also as many as the clients can hold open at once (`clientSlack`:
 * one connection per lane and per driver), since a sample catches however many functions are connected at
 * that second (a DRAM node: 45 at one minute's end, 69 at another's, 24 idle after). A leak of one per job or
 * per connection grows far past either in minutes (~96 jobs a minute).
 */
export function fdsFlat(before: number, after: number, clientSlack = 0): boolean {
  return after - before <= Math.max(8, before * 0.1, clientSlack);
}

export type Leftovers = Pick<SoakSummary, 'jobs_left' | 'orphaned_jobs_on_nodes' | 'orphaned_bytes'>;

export function windDownRow(stats: SoakStats): SoakReport['wind_down'] {
  const data: Record<number, number> = {};
  for (const op of DATA_OPS) mergeInto(data, stats.ops[op]);
  return {
    ops: countOf(data),
    errors: stats.errors,
    lost: stats.lost,
    verified: stats.verified,
    jobs_deregistered: stats.jobsDeregistered,
  };
}

export function summarize(
  clientSlack: number,
  rows: SoakInterval[],
  windDown: SoakStats,
  servers: ServerProcess[],
  idleBefore: IdleReading[],
  idleAfter: IdleReading[],
  leftovers: Leftovers,
): SoakSummary {
  const first = rows[0]!;
  const last = rows[rows.length - 1]!;
  const comparable = rows.length >= 2;
  const processes: ProcessSummary[] = servers.map((server, i) => {
    const warm = first.processes[i]!;
    const end = last.processes[i]!;
    const growth =
      comparable && warm.rss_bytes !== null && end.rss_bytes !== null
        ? round(((end.rss_bytes - warm.rss_bytes) / warm.rss_bytes) * 100, 1)
        : null;
    const before = idleBefore[i]!.fds;
    const after = idleAfter[i]!.fds;
    const fdsOk =
      comparable && warm.fds !== null && end.fds !== null
        ? fdsFlat(warm.fds, end.fds, clientSlack) && (before === null || after === null || fdsFlat(before, after))
        : null;
    return {
      name: server.name,
      role: server.role,
      pid: server.pid,
      rss_warmup_bytes: warm.rss_bytes,
      rss_end_bytes: end.rss_bytes,
      rss_growth_pct: growth,
      fds_idle_before: idleBefore[i]!.fds,
      fds_warmup: warm.fds,
      fds_end: end.fds,
      fds_idle_after: idleAfter[i]!.fds,
      fds_added: added(idleBefore[i]!.targets, idleAfter[i]!.targets),
      rss_ok: growth === null ? null : growth < 10,
      fds_ok: fdsOk,
    };
  });
  const errors = rows.reduce((n, r) => n + r.errors, 0) + windDown.errors;
  const lost = rows.reduce((n, r) => n + r.lost, 0) + windDown.lost;
  const all = <T>(values: (T | null)[], test: (v: T) => boolean) =>
    values.every((v) => v === null) ? null : values.every((v) => v === null || test(v));
  const errorSamples = [...rows.flatMap((r) => r.error_samples), ...windDown.errorSamples].slice(0, 10);
  const lostSamples = [...rows.flatMap((r) => r.lost_samples), ...windDown.lostSamples].slice(0, 10);
  const ratio = comparable && first.p99_us > 0 ? round(last.p99_us / first.p99_us, 2) : null;
  const floorP99 = last.floor?.p99_us ?? null;
  return {
    intervals: rows.length,
    seconds: last.end_s,
    ops: rows.reduce((n, r) => n + r.ops, 0),
    errors,
    lost,
    verified: rows.reduce((n, r) => n + r.verified, 0) + windDown.verified,
    jobs_registered: rows.reduce((n, r) => n + r.jobs_registered, 0) + windDown.jobsRegistered,
    jobs_deregistered: rows.reduce((n, r) => n + r.jobs_deregistered, 0) + windDown.jobsDeregistered,
    processes,
    p99_first_us: first.p99_us,
    p99_last_us: last.p99_us,
    p99_ratio: ratio,
    floor_p99_last_us: floorP99,
    p99_over_floor: floorP99 === null || floorP99 <= 0 ? null : round(last.p99_us / floorP99, 2),
    ...leftovers,
    error_samples: errorSamples,
    lost_samples: lostSamples,
    targets: {
      rss_growth_under_10_pct: all(
        processes.map((p) => p.rss_ok),
        (ok) => ok,
      ),
      fds_flat: all(
        processes.map((p) => p.fds_ok),
        (ok) => ok,
      ),
      p99_within_2x: ratio === null ? null : ratio <= 2,
      nothing_left: leftovers.jobs_left === null ? null : leftovers.jobs_left === 0 && leftovers.orphaned_jobs_on_nodes === 0,
      no_errors: errors === 0,
      no_lost_data: lost === 0,
    },
  };
}

/** Descriptors open after the run and not before (at most 20 kinds), or null without both readings. */
function added(before: string[] | null, after: string[] | null): string[] | null {
  return before === null || after === null ? null : descriptorsAdded(before, after).slice(0, 20);
}

const mb = (bytes: number | null) => (bytes === null ? '-' : (bytes / 2 ** 20).toFixed(1));
const ms = (us: number) => (us / 1000).toFixed(2);

/** The table's header: interval figures, then RSS MB / open fds of each server. */
export function soakHeader(processes: ServerProcess[]): string {
  const cells = processes.map((p) => p.name.padStart(14)).join('');
  return `${'#'.padStart(3)} ${'end s'.padStart(6)} ${'ops/s'.padStart(7)} ${'errors'.padStart(6)} ${'lost'.padStart(5)} ${'p50 ms'.padStart(7)} ${'p99 ms'.padStart(7)} ${'floor p99'.padStart(9)} ${'jobs +/-'.padStart(9)}${cells}\n${' '.repeat(64)}${processes.map(() => 'MB/fds'.padStart(14)).join('')}`;
}

export function soakRow(row: SoakInterval): string {
  const cells = row.processes.map((p) => `${mb(p.rss_bytes)}/${p.fds ?? '-'}`.padStart(14)).join('');
  return `${String(row.index).padStart(3)} ${row.end_s.toFixed(0).padStart(6)} ${String(row.ops_per_s).padStart(7)} ${String(row.errors).padStart(6)} ${String(row.lost).padStart(5)} ${ms(row.p50_us).padStart(7)} ${ms(row.p99_us).padStart(7)} ${(row.floor === null ? '-' : ms(row.floor.p99_us)).padStart(9)} ${`${row.jobs_registered}/${row.jobs_deregistered}`.padStart(9)}${cells}`;
}

export function soakSummaryText(report: SoakReport): string {
  const s = report.summary;
  const mark = (ok: boolean | null) => (ok === null ? 'n/a' : ok ? 'ok' : 'OVER');
  const lines = [
    '',
    `after the warm-up (interval 1) to the end (interval ${s.intervals}):`,
    'process         RSS warm-up MB   end MB   growth   fds idle/warm-up/end/idle after',
  ];
  for (const p of s.processes) {
    const growth = p.rss_growth_pct === null ? '-' : `${p.rss_growth_pct.toFixed(1)} %`;
    lines.push(
      `${p.name.padEnd(15)} ${mb(p.rss_warmup_bytes).padStart(14)} ${mb(p.rss_end_bytes).padStart(8)} ${growth.padStart(8)} ${mark(p.rss_ok).padStart(4)}   ${[p.fds_idle_before, p.fds_warmup, p.fds_end, p.fds_idle_after].map((v) => v ?? '-').join('/')} ${mark(p.fds_ok)}`,
    );
    // What stayed open, where the count did not come back: the first thing to look at.
    if (p.fds_ok === false && p.fds_added !== null && p.fds_added.length > 0)
      lines.push(`  ${p.name}: open after the run, not before: ${p.fds_added.join('; ')}`);
  }
  lines.push(
    `p99 first interval ${ms(s.p99_first_us)} ms, last ${ms(s.p99_last_us)} ms: ${s.p99_ratio === null ? '-' : `${s.p99_ratio.toFixed(2)}×`} (target ≤ 2×: ${mark(s.targets.p99_within_2x)})`,
    `p99 of the last interval against the machine's own (bare Node.js round trips beside the run, soak-floor.ts): ${ms(s.p99_last_us)} vs ${s.floor_p99_last_us === null ? '-' : ms(s.floor_p99_last_us)} ms (${s.p99_over_floor === null ? '-' : `${s.p99_over_floor.toFixed(2)}×`})`,
    `RSS growth < 10 %: ${mark(s.targets.rss_growth_under_10_pct)}; fds flat: ${mark(s.targets.fds_flat)}; left behind: ${s.jobs_left ?? '-'} soak jobs registered, ${s.orphaned_jobs_on_nodes ?? '-'} jobs (${mb(s.orphaned_bytes)} MB) on nodes the controller no longer knows`,
    `ops ${s.ops} (+${report.wind_down.ops} winding down), jobs ${s.jobs_registered} registered / ${s.jobs_deregistered} deregistered, values verified ${s.verified}, errors ${s.errors}, lost ${s.lost}`,
  );
  for (const e of s.error_samples) lines.push(`  error: ${e}`);
  for (const e of s.lost_samples) lines.push(`  lost: ${e}`);
  return lines.join('\n') + '\n';
}

/**
 * What a bar's colour means. Pure functions: controller/console-web/levels.test.ts runs them in Node.
 *
 * Levels, in the order of concern: `none` (no figure), `slack` (room set aside and not used: costs money, no
 * danger), `ok`, `warn` (past what was planned: something is about to act, or should), `hot` (about to refuse
 * work).
 */
export type Level = 'none' | 'slack' | 'ok' | 'warn' | 'hot';

/** The autoscaler's utilization band (`--band`, 60–80 % by default; `/api/cluster` has it). */
export interface Band {
  low: number;
  high: number;
}

export const DEFAULT_BAND: Band = { low: 0.6, high: 0.8 };

/** A node at this share of its capacity is about to answer FULL; of its CPU or network, saturated. */
export const NEARLY_FULL = 0.95;

/**
 * A node's CPU, network or capacity (max of reserved and used), as a fraction of what it declared. The
 * autoscaler holds each tier inside the band, so up to its top is where a node should be: `ok`. Above it the
 * autoscaler is about to add a node (`warn`); past NEARLY_FULL writes start to fail or queue (`hot`).
 */
export function nodeLevel(fraction: number | null, band: Band = DEFAULT_BAND): Level {
  if (fraction === null || !Number.isFinite(fraction)) return 'none';
  if (fraction > NEARLY_FULL) return 'hot';
  if (fraction > band.high) return 'warn';
  return 'ok';
}

/**
 * A job's use against its reservation. The reservation follows use by design: once a job holds data the
 * controller resets it to 1.25 × what it holds whenever it leaves [held, 1.5 × held] (checked every second), so
 * a healthy job sits at 67–100 % of it, 80 % just after a reset. Colouring that range red, as the page used to,
 * flagged every healthy job. So: up to 100 % is `ok`; under two thirds the job has room set aside it does not
 * use (`slack`: normal before it writes, when the reservation comes from its hints, and trimmed once it holds
 * data); over 100 % it holds more than was set aside (`warn`: the controller raises the reservation within a
 * second; if that persists, its nodes lack room). `hot` would be a job at its byte quota, which the console's
 * API does not say today.
 */
export function jobLevel(used: number, reserved: number): Level {
  if (!(reserved > 0) || !Number.isFinite(used)) return 'none';
  const fraction = used / reserved;
  if (fraction > 1) return 'warn';
  if (fraction < 1 / 1.5) return 'slack';
  return 'ok';
}

/** Words for a level, for the bars' tooltips and the legend. */
export const JOB_LEVEL_MEANING: Record<Level, string> = {
  none: 'nothing reserved yet',
  slack: 'reserved well above what it holds (normal before it writes; trimmed once it holds data)',
  ok: 'within its reservation (reservations follow use at 1.25 × what a job holds)',
  warn: 'holds more than its reservation: the controller raises it within a second',
  hot: 'at its quota: writes refused',
};

/**
 * What a job costs: byte-seconds reserved on each tier, priced per GB-month. Defaults are public list prices
 * for the kind of capacity each tier stands for: memory-class (DRAM) ≈ $1.87 per GB-month, block SSD ≈ $0.10,
 * HDD ≈ $0.045. Reservations, not usage, because reserved capacity is what a provider holds for the job.
 */
import type { Tier } from '../proto/index.ts';
import type { JobRecord } from './registry.ts';

export type Prices = Record<Tier, number>;

export const DEFAULT_PRICES: Prices = { dram: 1.87, ssd: 0.1, hdd: 0.045 };

const SECONDS_PER_MONTH = 30 * 24 * 3600;

/** Adds `seconds` of the job's current reservation, split over tiers by its newest generation's weights. */
export function accrueCost(job: JobRecord, tierOf: (nodeId: string) => string | undefined, seconds: number): void {
  const nodes = job.placement.generations[0]?.nodes ?? [];
  const total = nodes.reduce((acc, n) => acc + n.weight, 0);
  const spent = (job.byteSeconds ??= {});
  for (const node of nodes) {
    const tier = tierOf(node.id) ?? job.tier;
    const share = total > 0 ? node.weight / total : 1 / nodes.length;
    spent[tier] = (spent[tier] ?? 0) + job.reservation * share * seconds;
  }
}

/** US dollars for byte-seconds by tier. */
export function costOf(byteSeconds: Record<string, number> | undefined, prices: Prices): number {
  let usd = 0;
  for (const [tier, bytes] of Object.entries(byteSeconds ?? {})) usd += ((bytes / 1e9) * (prices[tier as Tier] ?? 0)) / SECONDS_PER_MONTH;
  return usd;
}

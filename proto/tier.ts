/**
 * The storage tiers, once for every part: what nodes declare (RegisterNode's `tier`), what jobs are placed on,
 * what the CLI takes in `--tier`. Fastest first: the order the allocation policy falls back through.
 */
export const TIERS = ['dram', 'ssd', 'hdd'] as const;

export type Tier = (typeof TIERS)[number];

export function isTier(value: unknown): value is Tier {
  return value === 'dram' || value === 'ssd' || value === 'hdd';
}

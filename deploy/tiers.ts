import type { Tier } from '../proto/index.ts';

/**
 * The profile a node of each tier declares when no flag says otherwise. On this machine every tier shares one
 * disk: the declared capacity and bandwidth are what the controller plans with (DESIGN.md, "Disk tiers").
 * DRAM's 1 GB/s is what one node moved in `bench micro` here; SSD and HDD are typical devices' figures.
 */
export const TIER_PROFILES: Record<Tier, { capacity: number; bandwidth: number }> = {
  dram: { capacity: 1024 ** 3, bandwidth: 1e9 },
  ssd: { capacity: 4 * 1024 ** 3, bandwidth: 500e6 },
  hdd: { capacity: 8 * 1024 ** 3, bandwidth: 150e6 },
};

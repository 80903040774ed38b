import { isTier, SatchelError, type Tier } from '../proto/index.ts';

const UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1e3,
  kb: 1e3,
  kib: 1024,
  m: 1e6,
  mb: 1e6,
  mib: 1024 ** 2,
  g: 1e9,
  gb: 1e9,
  gib: 1024 ** 3,
  t: 1e12,
  tb: 1e12,
  tib: 1024 ** 4,
};

/** "512MiB", "1.5GB", "1048576" → bytes. */
export function parseBytes(text: string, flag: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(text);
  const unit = match ? UNITS[match[2]!.toLowerCase()] : undefined;
  if (!match || unit === undefined)
    throw new SatchelError('BAD_REQUEST', `${flag}: not a size: ${JSON.stringify(text)} (try 512MiB or 2GiB)`);
  return Math.round(Number(match[1]) * unit);
}

/** A port number; 0 means any free port. */
export function parsePort(text: string, flag: string): number {
  const port = Number(text);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new SatchelError('BAD_REQUEST', `${flag}: not a port: ${JSON.stringify(text)}`);
  return port;
}

export function parseCount(text: string, flag: string, max = 64): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0 || n > max)
    throw new SatchelError('BAD_REQUEST', `${flag}: expected a whole number from 0 to ${max}, got ${JSON.stringify(text)}`);
  return n;
}

/** "60-80" → [60, 80]: a utilization band in percent. */
export function parseBand(text: string, flag: string): [number, number] {
  const match = /^\s*(\d+(?:\.\d+)?)\s*-\s*(\d+(?:\.\d+)?)\s*$/.exec(text);
  const low = Number(match?.[1]);
  const high = Number(match?.[2]);
  if (!match || !(low > 0 && low < high && high <= 100)) {
    throw new SatchelError(
      'BAD_REQUEST',
      `${flag}: expected LOW-HIGH in percent with 0 < LOW < HIGH ≤ 100, e.g. 60-80; got ${JSON.stringify(text)}`,
    );
  }
  return [low, high];
}

/** The most nodes per tier `--min-nodes`/`--max-nodes` take: bench scale runs the controller with 10,000. */
export const MAX_TIER_NODES = 100_000;

/** "dram=1,ssd=0" → { dram: 1, ssd: 0 }. */
export function parseTierCounts(text: string, flag: string): Partial<Record<Tier, number>> {
  const counts: Partial<Record<Tier, number>> = {};
  for (const part of text.split(',')) {
    const [tier, n] = part.split('=');
    if (!isTier(tier?.trim()) || n === undefined) {
      throw new SatchelError('BAD_REQUEST', `${flag}: expected TIER=N[,TIER=N…] with tiers dram, ssd, hdd; got ${JSON.stringify(text)}`);
    }
    counts[tier!.trim() as Tier] = parseCount(n.trim(), flag, MAX_TIER_NODES);
  }
  return counts;
}

/** A whole number of milliseconds, at least `min`. */
export function parseMs(text: string, flag: string, min = 0): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < min)
    throw new SatchelError('BAD_REQUEST', `${flag}: expected a whole number of milliseconds ≥ ${min}, got ${JSON.stringify(text)}`);
  return n;
}

/** The autoscaler's policy as flags give it (`--band`, `--min-nodes`, …): what is not given keeps the defaults. */
export interface AutoscaleOptions {
  /** Percent, e.g. [60, 80]. */
  band?: [number, number];
  minNodes?: Partial<Record<Tier, number>>;
  maxNodes?: Partial<Record<Tier, number>>;
  scaleUpAfterMs?: number;
  scaleDownAfterMs?: number;
  cooldownMs?: number;
}

// A disk engine's options: what they mean, their defaults, and the checks `new DiskEngine` makes of them.
import { SatchelError } from '../../proto/index.ts';
import type { DeviceEmulation } from './device.ts';

export interface DiskEngineOptions {
  tier: 'ssd' | 'hdd';
  /** A directory the engine owns: created if missing, its earlier contents wiped on open. */
  path: string;
  /** Bytes the engine may hold (keys + values + a fixed per-entry overhead, as in DRAM). */
  capacity: number;
  /** Values of this many bytes or more go to segment files; smaller ones live in LevelDB. Default 64 KiB. */
  inlineMax?: number;
  /** A segment is closed for appends once it holds this many bytes. Default 64 MiB. */
  segmentBytes?: number;
  /** A closed segment whose dead share passes this is compacted. Default 0.5. */
  compactDeadFraction?: number;
  /** Emulates a slower device (the `hdd` tier on a machine without one); off by default. */
  emulate?: DeviceEmulation;
}

const KiB = 1024;
const MiB = 1024 * KiB;
export const DEFAULT_INLINE_MAX = 64 * KiB;
export const DEFAULT_SEGMENT_BYTES = 64 * MiB;
export const DEFAULT_COMPACT_DEAD_FRACTION = 0.5;

/** The options with their defaults filled in, each checked: a bad one is BAD_REQUEST. */
export function checkOptions(options: DiskEngineOptions): Required<Omit<DiskEngineOptions, 'emulate'>> {
  if (options.tier !== 'ssd' && options.tier !== 'hdd')
    throw new SatchelError('BAD_REQUEST', `a disk engine serves the ssd or hdd tier, not ${String(options.tier)}`);
  if (typeof options.path !== 'string' || options.path.length === 0)
    throw new SatchelError('BAD_REQUEST', `the ${options.tier} tier needs a directory (path)`);
  if (!(options.capacity > 0)) throw new SatchelError('BAD_REQUEST', 'capacity must be a positive number of bytes');
  const segmentBytes = positive(options.segmentBytes ?? DEFAULT_SEGMENT_BYTES, 'segmentBytes');
  // Offsets are u32 in the index; one record larger than a segment still starts at 0.
  if (segmentBytes > 2 ** 31) throw new SatchelError('BAD_REQUEST', 'segmentBytes must be at most 2 GiB');
  const compactDeadFraction = options.compactDeadFraction ?? DEFAULT_COMPACT_DEAD_FRACTION;
  if (!(compactDeadFraction > 0 && compactDeadFraction < 1))
    throw new SatchelError('BAD_REQUEST', 'compactDeadFraction must be between 0 and 1');
  return {
    tier: options.tier,
    path: options.path,
    capacity: options.capacity,
    inlineMax: positive(options.inlineMax ?? DEFAULT_INLINE_MAX, 'inlineMax'),
    segmentBytes,
    compactDeadFraction,
  };
}

function positive(value: number, name: string): number {
  if (!Number.isInteger(value) || value <= 0) throw new SatchelError('BAD_REQUEST', `${name} must be a positive integer`);
  return value;
}

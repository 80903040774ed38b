// A storage node: the data-plane server and its storage engines. Imports proto only.

export type { DeviceEmulation } from './disk/device.ts';
export { DiskEngine, type DiskEngineOptions, type DiskEngineStats } from './disk/disk-engine.ts';
export { DramEngine } from './dram-engine.ts';
export type { ListPage, PutOutcome, StorageEngine, StoredEntry } from './engine.ts';
export {
  DISCONNECT_REASONS,
  DURATION_BUCKETS_SECONDS,
  type IntervalLatency,
  type NodeGaugeSource,
  NodeMetrics,
  OP_NAMES,
  STATUS_NAMES,
} from './metrics.ts';
export { type NodeLimits, type RunningStorageNode, type StorageNodeOptions, startStorageNode } from './node.ts';
export { DEFAULT_HELLO_TIMEOUT_MS, PRE_AUTH_MAX_FRAMES, type StorageCounters, StorageServer, type StorageServerOptions } from './server.ts';

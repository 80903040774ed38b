// A storage node: the data-plane server and its storage engines. Imports proto only.
export { startStorageNode, type StorageNodeOptions, type NodeLimits, type RunningStorageNode } from './node.ts';
export { StorageServer, PRE_AUTH_MAX_FRAMES, DEFAULT_HELLO_TIMEOUT_MS, type StorageServerOptions, type StorageCounters } from './server.ts';
export { DramEngine } from './dram-engine.ts';
export { DiskEngine, type DiskEngineOptions, type DiskEngineStats } from './disk/disk-engine.ts';
export type { DeviceEmulation } from './disk/device.ts';
export type { StorageEngine, StoredEntry, PutOutcome, ListPage } from './engine.ts';
export {
  NodeMetrics,
  OP_NAMES,
  STATUS_NAMES,
  DISCONNECT_REASONS,
  DURATION_BUCKETS_SECONDS,
  type IntervalLatency,
  type NodeGaugeSource,
} from './metrics.ts';

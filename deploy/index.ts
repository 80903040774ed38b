// How processes run: the local cluster (`satchel up`), one role per process, the CLI. Imports every part.

export { STORAGE_NODE_ENV } from './child-process.ts';
export type { ClusterInfoFile } from './cluster-files.ts';
export { DEFAULT_DRAM_CAPACITY, LocalCluster, stopLocalClusters } from './local-cluster.ts';
export type { LocalClusterOptions } from './local-cluster-options.ts';
export { parseBytes } from './options.ts';
export { PortInUseError } from './port-in-use.ts';
export { type LockRecord, type StaleLock, StateDirBusyError } from './state-lock.ts';
export { USAGE } from './usage.ts';

// How processes run: the local cluster (`satchel up`), one role per process, the CLI. Imports every part.
export { LocalCluster, DEFAULT_DRAM_CAPACITY, type LocalClusterOptions } from './local-cluster.ts';
export type { ClusterInfoFile } from './cluster-files.ts';
export { parseBytes } from './options.ts';
export { USAGE } from './usage.ts';
export { StateDirBusyError, type LockRecord, type StaleLock } from './state-lock.ts';
export { PortInUseError } from './port-in-use.ts';

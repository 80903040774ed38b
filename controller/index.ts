// The controller: job registry, allocation, console. Imports proto only (its NodeConnection reaches nodes as an admin).

export {
  type Allocation,
  allocateJob,
  DEFAULT_BLOCK_SIZE,
  DEFAULT_CAPACITY,
  DEFAULT_MAX_VALUE_BYTES,
  HDD_MAX_TOUCH_RATE,
  type NodeState,
} from './allocation.ts';
export { Autoscaler, type AutoscalerConfig, DEFAULT_AUTOSCALER, decideScaling } from './autoscaler.ts';
export { buildConsole, type ConsoleOptions } from './console.ts';
export type { ClusterView, ConsoleBackend, JobDetail, JobView, NodeView } from './console-backend.ts';
export { type ClusterEvent, EventLog } from './events.ts';
export type { Provisioner } from './provisioner.ts';
export { Controller, type ControllerOptions, type DrainResult } from './server.ts';
export { DEFAULT_TENANT, defaultTenantKey, type TenantRecord } from './tenants.ts';

// The controller: job registry, allocation, console. Imports proto only (its NodeConnection reaches nodes as an admin).
export { Controller, type ControllerOptions, type DrainResult } from './server.ts';
export type { Provisioner } from './provisioner.ts';
export { EventLog, type ClusterEvent } from './events.ts';
export { DEFAULT_TENANT, defaultTenantKey, type TenantRecord } from './tenants.ts';
export { Autoscaler, DEFAULT_AUTOSCALER, decideScaling, type AutoscalerConfig } from './autoscaler.ts';
export { buildConsole, type ConsoleOptions } from './console.ts';
export type { ConsoleBackend, ClusterView, NodeView, JobView, JobDetail } from './console-backend.ts';
export {
  allocateJob,
  DEFAULT_BLOCK_SIZE,
  DEFAULT_CAPACITY,
  DEFAULT_MAX_VALUE_BYTES,
  HDD_MAX_TOUCH_RATE,
  type Allocation,
  type NodeState,
} from './allocation.ts';

/**
 * The control plane's messages and methods as TypeScript sees them (control.proto is the truth; control.ts
 * serves and calls them with grpc-js, control-light.ts calls the client's few with node:http2). Types only:
 * importing this loads nothing.
 */
export interface JobHints {
  latencySensitive?: boolean;
  capacity?: number;
  peakThroughput?: number;
  functions?: number;
  replicas?: number;
  maxValueBytes?: number;
}
export interface RegisterJobRequest { name: string; hints?: JobHints; key?: string }
/** `token`: the data token (in `ticket` too); `driverToken`: renew, grow, deregister, never handed to functions. */
export interface RegisterJobReply { jobId: string; token: string; ticket: string; leaseMs: number; placement: WirePlacement | null; driverToken: string }
export interface GrowJobRequest { jobId: string; token: string; fullNodeId: string; epoch: number }
export interface RenewLeaseRequest { jobId: string; token: string }
export interface RenewLeaseReply { leaseMs: number; ticket: string }
export interface DeregisterJobRequest { jobId: string; token: string }
export interface NodeInfo {
  id: string;
  tier: string;
  address: string;
  capacity: number;
  bandwidth: number;
  /** Fresh at every process start: the same id with another boot id is a new, empty incarnation of the node. */
  bootId?: string;
}
export interface RegisterNodeRequest { node: NodeInfo; token: string }
export interface RegisterNodeReply { nodeId: string; leaseMs?: number }
export interface RegisterMetadataRequest { address: string; token: string }
export interface JobUsage {
  jobId: string;
  bytes: number;
  /** The placement epoch the node knows for the job. */
  epoch?: number;
  /** The job moved off the node (it answers STALE to it); absent or false: the node serves it. */
  moved?: boolean;
  /** Writes of the job the node refused FULL for want of room, since it started (growth waits for one). */
  fullRefusals?: number;
}
export interface NodeReport {
  nodeId: string;
  token: string;
  cpu: number;
  bytesIn: number;
  bytesOut: number;
  ops: number;
  used: number;
  capacity: number;
  jobs: JobUsage[];
  /** The node's service time over the interval (0: it served nothing, or an older node). */
  latencyP50Us?: number;
  latencyP99Us?: number;
  /** The reporting process's boot id (NodeInfo). */
  bootId?: string;
}
/** `leaseMs`: the node may serve replicated jobs this long after it sent this report (storage-node/README.md). */
export interface NodeReportReply { unknown: boolean; leaseMs?: number }
export interface GetClusterRequest { token?: string }
export interface ClusterInfo { nodes: NodeInfo[]; metadata: string[]; jobs: number }
export interface TenantInfo { name: string; quotaBytes: number; maxJobs: number; jobs: number; reservedBytes: number }
export interface AddTenantRequest { token: string; name: string; quotaBytes?: number; maxJobs?: number }
export interface AddTenantReply { tenant: TenantInfo | null; key: string }
export interface ListTenantsRequest { token: string }
export interface ListTenantsReply { tenants: TenantInfo[] }
export interface RemoveTenantRequest { token: string; name: string }
export interface RemoveTenantReply { jobsDeregistered: number }
export type Empty = Record<string, never>;
export interface WirePlacementNode { id: string; address: string; weight: number }
export interface WirePlacement {
  jobId: string;
  epoch: number;
  generations: { nodes: WirePlacementNode[] }[];
  blockSize: number;
  maxValueBytes: number;
  /** Copies of every key, on that many distinct nodes of each generation (absent or 0: 1). */
  replicas?: number;
}
export interface GetPlacementRequest { jobId: string; token: string }
export interface SetPlacementRequest { placement: WirePlacement; token: string }
export interface DropPlacementRequest { jobId: string; token: string }

/** Method name → [request, reply]: the typing of the generic client and server below. */
export type ControllerMethods = {
  RegisterJob: [RegisterJobRequest, RegisterJobReply];
  DeregisterJob: [DeregisterJobRequest, Empty];
  RenewLease: [RenewLeaseRequest, RenewLeaseReply];
  GrowJob: [GrowJobRequest, WirePlacement];
  RegisterNode: [RegisterNodeRequest, RegisterNodeReply];
  RegisterMetadata: [RegisterMetadataRequest, Empty];
  ReportNode: [NodeReport, NodeReportReply];
  GetCluster: [GetClusterRequest, ClusterInfo];
  AddTenant: [AddTenantRequest, AddTenantReply];
  ListTenants: [ListTenantsRequest, ListTenantsReply];
  RemoveTenant: [RemoveTenantRequest, RemoveTenantReply];
};
export type MetadataMethods = {
  GetPlacement: [GetPlacementRequest, WirePlacement];
  SetPlacement: [SetPlacementRequest, Empty];
  DropPlacement: [DropPlacementRequest, Empty];
};

export type Methods = Record<string, [unknown, unknown]>;
export type ServiceImpl<M extends Methods> = { [K in keyof M]: (request: M[K][0]) => Promise<M[K][1]> };

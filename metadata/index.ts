// The metadata service: owns each job's placement. Imports proto only.

export { MetadataMetrics } from './metrics.ts';
export { PlacementStore } from './placement-store.ts';
export { MetadataServer, type MetadataServerOptions } from './server.ts';

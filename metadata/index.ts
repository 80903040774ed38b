// The metadata service: owns each job's placement. Imports proto only.
export { MetadataServer, type MetadataServerOptions } from './server.ts';
export { PlacementStore } from './placement-store.ts';
export { MetadataMetrics } from './metrics.ts';

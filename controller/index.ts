// The controller: job registry, allocation, console. Imports proto, and client (to reach nodes as an admin).
export { Controller, type ControllerOptions } from './server.ts';
export { buildConsole, type ConsoleOptions } from './console.ts';
export { allocateJob, DEFAULT_BLOCK_SIZE, DEFAULT_CAPACITY, DEFAULT_MAX_VALUE_BYTES, type Allocation } from './allocation.ts';

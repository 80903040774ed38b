/// <reference types="node" preserve="true" />
// The library function code imports: `import { Satchel, SatchelError } from 'satchel'`.
// The reference above is kept in the published index.d.ts: the typings name Node's types (Buffer, NodeJS.Timeout),
// and a project whose tsconfig lists no `types` (TypeScript 6 and later default to none) still finds them in
// @types/node, which it must have installed (client/README.md).

export { type ErrorCode, SatchelError } from '../proto/index.ts';
export { Job, type Stat } from './job.ts';
export type { BatchOptions, JobOptions, ListOptions, WaitOptions } from './options.ts';
export { type ConnectOptions, type JobHints, RegisteredJob, Satchel } from './satchel.ts';
export { Watch, type WatchEvent, type WatchOptions } from './watch.ts';

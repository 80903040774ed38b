// The library function code imports: `import { Satchel, SatchelError } from 'satchel'`.

export { type ErrorCode, SatchelError } from '../proto/index.ts';
export { Job, type Stat } from './job.ts';
export type { BatchOptions, JobOptions, ListOptions, WaitOptions } from './options.ts';
export { type ConnectOptions, type JobHints, RegisteredJob, Satchel } from './satchel.ts';
export { Watch, type WatchEvent, type WatchOptions } from './watch.ts';

// The library function code imports: `import { Satchel, SatchelError } from 'satchel'`.
export { Satchel, RegisteredJob, type ConnectOptions, type JobHints } from './satchel.ts';
export { Job, type Stat } from './job.ts';
export type { JobOptions, ListOptions, WaitOptions, BatchOptions } from './options.ts';
export { Watch, type WatchEvent, type WatchOptions } from './watch.ts';
export { SatchelError, type ErrorCode } from '../proto/index.ts';

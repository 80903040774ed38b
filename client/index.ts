// The library function code imports: `import { Satchel, SatchelError } from 'satchel'`.
export { Satchel, RegisteredJob, type ConnectOptions, type JobHints } from './satchel.ts';
export { Job, type JobOptions, type Stat, type ListOptions, type WaitOptions, type BatchOptions } from './job.ts';
export { Watch, type WatchEvent, type WatchOptions } from './watch.ts';
export { SatchelError, type ErrorCode } from '../proto/index.ts';

/**
 * A warm function container: a process that runs one function invocation at a time, as the pool hands them
 * over IPC, and exits when the pool goes away. Every invocation connects to its store afresh.
 */
import { SatchelError } from '../client/index.ts';
import { runSortFunction, type SortTask } from './sort-functions.ts';

interface Invocation {
  id: number;
  task: SortTask;
}

process.on('message', (message: Invocation) => {
  runSortFunction(message.task).then(
    (result) => process.send!({ id: message.id, result }),
    (error: unknown) => {
      // Errors cross the process boundary as data; anything not a SatchelError (Redis's own) is UNAVAILABLE.
      const code = error instanceof SatchelError ? error.code : 'UNAVAILABLE';
      process.send!({ id: message.id, error: { code, message: error instanceof Error ? error.message : String(error) } });
    },
  );
});
process.on('disconnect', () => process.exit(0));

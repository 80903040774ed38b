/**
 * A pool of function worker processes with a concurrency limit: what a serverless platform gives a job. Each
 * worker runs one invocation at a time; invocations queue for a free worker. A worker that dies fails the
 * invocation it was running (with UNAVAILABLE) and is replaced.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SatchelError } from '../client/index.ts';
import type { SortResult, SortTask } from './sort-functions.ts';

const WORKER = fileURLToPath(new URL(`./function-worker${extname(fileURLToPath(import.meta.url))}`, import.meta.url));

interface Worker {
  child: ChildProcess;
  busy: { id: number; resolve: (r: SortResult) => void; reject: (e: Error) => void } | null;
}

interface Queued {
  task: SortTask;
  resolve: (r: SortResult) => void;
  reject: (e: Error) => void;
}

export class FunctionPool {
  private readonly workers: Worker[] = [];
  private readonly queue: Queued[] = [];
  private nextId = 1;
  private closed = false;

  constructor(readonly size: number) {
    for (let i = 0; i < size; i++) this.workers.push(this.spawn());
  }

  invoke(task: SortTask): Promise<SortResult> {
    if (this.closed) return Promise.reject(new SatchelError('CLOSED', 'function pool is closed'));
    return new Promise((resolve, reject) => {
      this.queue.push({ task, resolve, reject });
      this.dispatch();
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const queued of this.queue.splice(0)) queued.reject(new SatchelError('CLOSED', 'function pool is closed'));
    await Promise.all(
      this.workers.map(
        ({ child }) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) return resolve();
            child.once('exit', () => resolve());
            child.kill('SIGTERM');
          }),
      ),
    );
  }

  private spawn(): Worker {
    const child = fork(WORKER, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: process.execArgv });
    const worker: Worker = { child, busy: null };
    child.on('message', (message: { id: number; result?: SortResult; error?: { code: string; message: string } }) => {
      const busy = worker.busy;
      if (busy === null || busy.id !== message.id) return;
      worker.busy = null;
      if (message.error) busy.reject(new SatchelError(message.error.code as never, message.error.message));
      else busy.resolve(message.result!);
      this.dispatch();
    });
    child.on('exit', (code, signal) => {
      const busy = worker.busy;
      worker.busy = null;
      busy?.reject(new SatchelError('UNAVAILABLE', `function worker exited (${signal ?? code}) during an invocation`));
      if (this.closed) return;
      this.workers[this.workers.indexOf(worker)] = this.spawn();
      this.dispatch();
    });
    return worker;
  }

  private dispatch(): void {
    for (const worker of this.workers) {
      if (this.queue.length === 0) return;
      if (worker.busy !== null || !worker.child.connected) continue;
      const { task, resolve, reject } = this.queue.shift()!;
      const id = this.nextId++;
      worker.busy = { id, resolve, reject };
      worker.child.send({ id, task });
    }
  }
}

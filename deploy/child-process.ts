/**
 * One role of a LocalCluster as a child process: forked from the CLI with an IPC channel and its log as stdout
 * and stderr, ready once it reports its bound address over the channel, stopped by signal. The child exits when
 * the channel closes, so no process outlives the cluster. Knows nothing of the cluster's files or members.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { closeSync, existsSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { SatchelError } from '../proto/index.ts';
import { PortInUseError } from './port-in-use.ts';
import type { ReadyMessage } from './roles.ts';

/**
 * glibc malloc settings for storage nodes. glibc returns free memory at the top of the heap to the OS past
 * 128 KiB by default, and a node streaming large values then page-faults the same memory back in for every
 * read chunk. Measured with 1 MiB PUTs one at a time: 543 µs of system time per PUT on the node with the
 * default, 190 µs with a 128 MiB threshold (wall time 886 → 507 µs). Setting it also freezes glibc's mmap
 * threshold at 128 KiB, so every 1 MiB block would get fresh pages from mmap and fault them in: a 32 MiB
 * threshold keeps blocks on the heap, where freed memory is reused (a 256×256 sort: 6.1 → 3.5 s of the node's
 * CPU copying into new buffers). What the heap keeps free the node gives back every 10 s itself
 * (storage-node/heap-trim.ts: with a smaller mmap threshold instead, malloc still took large blocks from free
 * heap space first, and the heap still kept the most the node had ever held).
 *
 * `glibc.malloc.hugetlb=1` has glibc ask for transparent huge pages (madvise) on its heap, where the kernel's
 * `transparent_hugepage/enabled` is `madvise` or `always`. A node taking in data touches fresh memory, and on
 * this VM a 4 KiB page's first touch costs ~13 µs (1 GiB copied into new 16 KiB buffers: 3.4 s, against 2.1 s on
 * huge pages and 0.06 s into memory already touched). A 256×256 sort (2.3 GB held at its peak): the node's CPU
 * 28.7–28.8 → 18.7–18.9 s and the round 21.8–22.0 → 15.2–15.3 s. The price is in churn: under `bench soak`
 * (jobs of ~10 s, the heap trimmed every 10 s or more) the DRAM node used 14.4–15.6 s of CPU per 100 s
 * instead of 11.5–12.4, with the same p99 and RSS. An idle node turns them off (storage-node/huge-pages.ts:
 * khugepaged refilled a trimmed heap, 76–127 MB where it held 74). Containers running
 * `satchel storage-node` should set the same variables (deploy/kubernetes does); a GLIBC_TUNABLES of the
 * caller's own replaces this one.
 */
export const STORAGE_NODE_ENV = {
  MALLOC_TRIM_THRESHOLD_: String(128 * 1024 * 1024),
  MALLOC_MMAP_THRESHOLD_: String(32 * 1024 * 1024),
  GLIBC_TUNABLES: 'glibc.malloc.hugetlb=1',
};

/**
 * V8 flags of the control plane (controller, metadata): they hold a few MB of live state and answer a few
 * hundred calls a second, so memory matters more than V8's speed. With V8's defaults their heap grew in a
 * saw-tooth (at least 8 MB of garbage between full collections, a young generation growing to 16 MB) and a
 * 10-minute soak saw the controller's RSS grow 10–14 % after its first minute with a flat live heap;
 * `--optimize-for-size` (full collections every 2 MB, a 1 MB young generation) and smaller LevelDB buffers
 * (controller/store.ts) held it to 3 % (perf/RESULTS.md). Not for storage nodes: their data path pays for it
 * (bench micro, 64 KiB PUTs × 64 in flight: 22,953 → 16,804/s).
 * `--single-threaded-gc`: below. Node refuses these flags in NODE_OPTIONS, so they go on the command line;
 * containers do the same (deploy/kubernetes).
 */
export const CONTROL_PLANE_V8_FLAGS = ['--optimize-for-size', '--single-threaded-gc'];

/**
 * The controller's flags for a cluster of thousands of nodes (`controllerHeap: 'large'`): V8's own heap sizing.
 * Its live heap is then hundreds of MB, and `--optimize-for-size`'s full collection every few MB allocated took
 * 37 % of its CPU at 10,000 nodes: 5 registrations a second, against 32 without it (bench scale, perf/RESULTS.md).
 */
export const LARGE_CONTROLLER_V8_FLAGS = ['--single-threaded-gc'];

/** How the controller's heap is run: 'small' (CONTROL_PLANE_V8_FLAGS, the default) or 'large'. */
export type ControllerHeap = 'small' | 'large';

/**
 * V8 flags of storage nodes. `--single-threaded-gc`: V8 hands each collection to helper threads, one per core, and
 * the main thread waits for them; on a host whose cores the other processes keep busy those helpers wait to be
 * scheduled, and a 4 MB scavenge took 2–16 ms (--trace-gc). `bench soak --large-fraction 0` (1,000 ops/s, one
 * minute, two runs each, this 2-core VM): p99 17–20 ms with V8's default, 9–14 ms with the flag on every server
 * and 8–14 ms on every server and client (perf/RESULTS.md). The control plane gets it too (above).
 */
export const STORAGE_NODE_V8_FLAGS = ['--single-threaded-gc'];

const READY_TIMEOUT_MS = 20_000;
const STOP_TIMEOUT_MS = 5_000;

/**
 * The CLI each role runs: this module's sibling (cli.ts under tsx, cli.js in dist/), or the built CLI named by
 * SATCHEL_ROLE_CLI, run without tsx. The e2e tests set it (after `npm run build`): tsx costs each process ~0.75 s
 * of CPU to start (`satchel bench shuffle --mappers 0`: 1.4 s of CPU through tsx, 0.65 s built), and the tier
 * starts hundreds of them.
 */
const BUILT_CLI = process.env.SATCHEL_ROLE_CLI || undefined;
const CLI = BUILT_CLI ?? fileURLToPath(new URL(`./cli${extname(fileURLToPath(import.meta.url))}`, import.meta.url));
const EXEC_ARGV = BUILT_CLI === undefined ? process.execArgv : withoutTsx(process.execArgv);

/** Node's flags for a role's process: the parent's (tsx's loader dropped for a built CLI) and the role's own. */
export function roleExecArgv(role: string, controllerHeap: ControllerHeap = 'small'): string[] {
  const own =
    role === 'storage-node'
      ? STORAGE_NODE_V8_FLAGS
      : role === 'controller' && controllerHeap === 'large'
        ? LARGE_CONTROLLER_V8_FLAGS
        : CONTROL_PLANE_V8_FLAGS;
  return [...EXEC_ARGV, ...own];
}

/** Node's flags without tsx's loader (`--import tsx`, `--import=tsx`), which a built CLI does not need. */
export function withoutTsx(execArgv: readonly string[]): string[] {
  const kept: string[] = [];
  for (let i = 0; i < execArgv.length; i++) {
    const flag = execArgv[i]!;
    if ((flag === '--import' || flag === '--require' || flag === '--loader') && /\btsx\b/.test(execArgv[i + 1] ?? '')) i++;
    else if (!/^--(import|require|loader)=.*\btsx\b/.test(flag)) kept.push(flag);
  }
  return kept;
}

/**
 * Forks `satchel <args>` for a role, its stdout and stderr going to the open log `logFd` (closed here once the
 * child holds it). Storage nodes get STORAGE_NODE_ENV and STORAGE_NODE_V8_FLAGS, the control plane CONTROL_PLANE_V8_FLAGS.
 */
export function forkRole(
  role: string,
  args: string[],
  logFd: number,
  env: NodeJS.ProcessEnv | undefined,
  controllerHeap: ControllerHeap = 'small',
): ChildProcess {
  const child = fork(CLI, args, {
    stdio: ['ignore', logFd, logFd, 'ipc'],
    env: { ...(role === 'storage-node' ? STORAGE_NODE_ENV : {}), ...process.env, ...env },
    execArgv: roleExecArgv(role, controllerHeap),
  });
  closeSync(logFd);
  return child;
}

/**
 * Resolves with the child's ready message. A child that exits first, or says nothing within 20 s, is killed and
 * the promise rejects with why, from its log (`log`): a PortInUseError, or an UNAVAILABLE naming the log.
 */
export function readyOf(child: ChildProcess, role: string, log: string): Promise<ReadyMessage> {
  return new Promise<ReadyMessage>((resolve, reject) => {
    const timer = setTimeout(() => fail(`${role} did not start within ${READY_TIMEOUT_MS} ms`, false), READY_TIMEOUT_MS);
    const fail = (what: string, exited: boolean) => {
      clearTimeout(timer);
      child.off('message', onMessage);
      child.off('exit', onExit);
      child.kill('SIGKILL');
      readFile(log, 'utf8').then(
        (text) => reject(startError(what, log, text, exited)),
        () => reject(new SatchelError('UNAVAILABLE', `${what} (its log: ${log})`)),
      );
    };
    const onMessage = (message: unknown) => {
      const m = message as ReadyMessage;
      if (m?.type !== 'ready') return;
      clearTimeout(timer);
      child.off('exit', onExit);
      resolve(m);
    };
    const onExit = (code: number | null, signal: string | null) =>
      fail(`${role} exited during start (${signal === null ? `code ${code}` : `signal ${signal}`})`, true);
    child.on('message', onMessage);
    child.once('exit', onExit);
  });
}

/**
 * Why a process did not start, from its log: its own `satchel: …` lines (not the usage text after them), or the
 * log's last lines when it printed none. A port in use comes back as a PortInUseError, for the caller to name
 * its own flag.
 */
function startError(what: string, log: string, text: string, exited: boolean): SatchelError {
  const said = exited ? satchelLines(text) : [];
  const port = said.length > 0 ? PortInUseError.parse(said.join('\n')) : undefined;
  if (port !== undefined) return port;
  const lines = said.length > 0 ? said : text.trimEnd().split('\n').slice(-15);
  return new SatchelError('UNAVAILABLE', `${what}: ${lines.join('\n  ')}\n  (its log: ${log})`);
}

/** The error lines the CLI printed (`satchel: message`, maybe on several lines, then a blank line or the end). */
function satchelLines(text: string): string[] {
  const lines = text.split('\n');
  const found: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (!lines[i]!.startsWith('satchel: ')) continue;
    found.push(lines[i]!.slice('satchel: '.length));
    while (i + 1 < lines.length && lines[i + 1] !== '' && !lines[i + 1]!.startsWith('{') && !lines[i + 1]!.startsWith('Usage:'))
      found.push(lines[++i]!);
  }
  return found;
}

export function running(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

/**
 * Stops a child and waits for its exit: `signal`, then SIGCONT (a frozen process gets a SIGTERM only once
 * resumed; SIGCONT to a running one does nothing), then SIGKILL after 5 s.
 */
export function stopChild(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (!running(child)) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill(signal);
    if (signal !== 'SIGKILL' && signal !== 'SIGSTOP') child.kill('SIGCONT');
  });
}

/** After a SIGSTOP: resolves once /proc says the process is stopped (at most a second; at once off Linux). */
export async function waitStopped(pid: number): Promise<void> {
  const until = Date.now() + 1_000;
  while (Date.now() < until && existsSync(`/proc/${pid}/status`) && !/^State:\s+T/m.test(readText(`/proc/${pid}/status`))) await sleep(5);
}

function readText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

/**
 * The lock a cluster holds on its state folder (`DIR/satchel.lock`), so that a second `satchel up` (or
 * LocalCluster) on the same folder refuses instead of overwriting the first one's secret, cluster.json, database
 * and data folders. Taken with O_EXCL before anything else in the folder is touched; a lock whose owner is gone
 * (its process killed: the children then exit on their own, their IPC channel closed) is taken over.
 */
import { constants, existsSync, readFileSync } from 'node:fs';
import { type FileHandle, mkdir, open, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { isAbsolute, join, normalize, resolve, sep } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { SatchelError } from '../proto/index.ts';

export const LOCK_FILE = 'satchel.lock';

/** What the lock file holds (JSON). Fields after `startedAt` are filled in as the cluster starts. */
export interface LockRecord {
  pid: number;
  /** ISO time the owner took the lock. */
  startedAt: string;
  /** The owner's identity on Linux (boot id and start time in clock ticks): a reused PID does not match it. */
  process?: string;
  controller?: string;
  console?: string;
  /** The owner's child processes: a takeover waits until they are gone. */
  children?: { pid: number; process?: string }[];
  /** Paths, relative to the folder ('.' for the folder itself), the owner created: its stop removes them. */
  created?: string[];
}

/** A live cluster holds the folder. */
export class StateDirBusyError extends SatchelError {
  constructor(
    readonly dir: string,
    readonly owner: LockRecord,
  ) {
    super('UNAVAILABLE', `a cluster is already running from ${dir} (pid ${owner.pid}${owner.console ? `, ${owner.console}` : ''})`);
    this.name = 'StateDirBusyError';
  }

  /** Plain `instanceof` (SatchelError's brand check would take any SatchelError for one). */
  static override [Symbol.hasInstance](value: unknown): boolean {
    // biome-ignore lint/complexity/noThisInStatic: `this` is the class instanceof was asked about (a subclass too)
    return Function.prototype[Symbol.hasInstance].call(this, value);
  }
}

/** A lock left by an owner that is gone, as found by the process taking it over. */
export interface StaleLock {
  /** What the old lock said; undefined when it did not parse. */
  record: LockRecord | undefined;
  /** Why it is stale, e.g. "pid 123 is not running". */
  reason: string;
}

const TAKEOVER_SUFFIX = '.takeover';
/** How long a lock that does not parse is given to be written by its new owner before it counts as stale. */
const GARBLED_GRACE_MS = 500;
/** A takeover marker older than this was left by a process that died during the few ms it holds it. */
const TAKEOVER_ABANDONED_MS = 10_000;
/** How long a takeover waits for the old owner's children to exit (they stop within 5 s of losing it). */
const CHILDREN_GONE_MS = 10_000;

/** Folders locked by this process: its own PID in a lock means another LocalCluster here holds it. */
const heldHere = new Set<string>();

export class StateLock {
  private record: LockRecord;
  private released = false;

  private constructor(
    readonly dir: string,
    record: LockRecord,
    /** The topmost folder made to hold the lock (the state folder or an ancestor), if any. */
    readonly madeDir: string | undefined,
    /** Set when this lock replaced one whose owner was gone. */
    readonly takenOver: StaleLock | undefined,
  ) {
    this.record = record;
  }

  get path(): string {
    return join(this.dir, LOCK_FILE);
  }

  /**
   * Takes the lock on `dir`, creating the folder if needed. A live owner: throws StateDirBusyError at once,
   * having created, changed and deleted nothing. A gone owner: waits for its children to exit, then replaces
   * its lock (`takenOver` says so). The check reads /proc on Linux: the owner must be the very process that
   * wrote the lock (its start time recorded), or, for a lock without one, a process running the satchel CLI.
   */
  static async acquire(dirPath: string): Promise<StateLock> {
    const dir = resolve(dirPath);
    const path = join(dir, LOCK_FILE);
    let madeDir: string | undefined;
    let garbledSince: number | undefined;
    for (;;) {
      const found = await readLock(path);
      if (found.kind === 'held') {
        const stale = staleness(dir, found.record);
        if (stale === undefined) throw new StateDirBusyError(dir, found.record);
        const lock = await StateLock.takeOver(dir, found.text, { record: found.record, reason: stale }, madeDir);
        if (lock !== undefined) return lock;
        continue; // someone else moved first: look again
      }
      if (found.kind === 'garbled') {
        // Being written this instant by a new owner (O_EXCL create, then write), or junk left by a crash.
        garbledSince ??= Date.now();
        if (Date.now() - garbledSince < GARBLED_GRACE_MS) {
          await sleep(25);
          continue;
        }
        const lock = await StateLock.takeOver(dir, found.text, { record: undefined, reason: 'the lock file does not parse' }, madeDir);
        if (lock !== undefined) return lock;
        continue;
      }
      madeDir ??= await mkdir(dir, { recursive: true });
      const record = newRecord();
      if (await createLock(path, record)) {
        heldHere.add(dir);
        return new StateLock(dir, record, madeDir, undefined);
      }
    }
  }

  /**
   * Replaces a stale lock, unless it changed since it was read. Only the holder of `satchel.lock.takeover`
   * (O_EXCL, held for a few ms) may remove another process's lock, so two processes taking over the same
   * stale lock cannot both win; undefined means "look again".
   */
  private static async takeOver(
    dir: string,
    staleText: string,
    stale: StaleLock,
    madeDir: string | undefined,
  ): Promise<StateLock | undefined> {
    const path = join(dir, LOCK_FILE);
    await waitForChildren(dir, stale.record);
    const marker = path + TAKEOVER_SUFFIX;
    try {
      await writeFile(marker, `${process.pid}\n`, { flag: 'wx', mode: 0o600 });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const age = await stat(marker).then(
        (s) => Date.now() - s.mtimeMs,
        () => 0,
      );
      if (age > TAKEOVER_ABANDONED_MS) await rm(marker, { force: true });
      else await sleep(20);
      return undefined;
    }
    try {
      const now = await readFile(path, 'utf8').catch(() => undefined);
      if (now !== staleText) return undefined;
      await rm(path);
      const record = newRecord();
      if (!(await createLock(path, record))) return undefined;
      heldHere.add(dir);
      return new StateLock(dir, record, madeDir, stale);
    } finally {
      await rm(marker, { force: true });
    }
  }

  /** The record as last written. */
  get current(): Readonly<LockRecord> {
    return this.record;
  }

  /** Rewrites the lock with more of the record (atomically: a reader sees the old or the new file). */
  async update(fields: Partial<Omit<LockRecord, 'pid' | 'startedAt' | 'process'>>): Promise<void> {
    if (this.released) return;
    this.record = { ...this.record, ...fields };
    const temporary = `${this.path}.${process.pid}.tmp`;
    await writeFile(temporary, JSON.stringify(this.record, null, 2) + '\n', { mode: 0o600 });
    await rename(temporary, this.path);
  }

  /** Removes the lock file if it is still this process's. Idempotent. */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    heldHere.delete(this.dir);
    const found = await readLock(this.path);
    if (found.kind === 'held' && found.record.pid === process.pid && found.record.startedAt === this.record.startedAt)
      await rm(this.path, { force: true });
  }
}

/**
 * Relative paths a lock says its owner created, keeping only ones inside the folder (the file is only as
 * trustworthy as the folder, but a typo or a stray edit must not make a takeover remove anything outside it).
 */
export function createdPaths(record: LockRecord | undefined): string[] {
  return (record?.created ?? []).filter(
    (p) => typeof p === 'string' && p !== '' && !isAbsolute(p) && normalize(p) === p && p !== '..' && !p.startsWith(`..${sep}`),
  );
}

type Found = { kind: 'absent' } | { kind: 'garbled'; text: string } | { kind: 'held'; text: string; record: LockRecord };

async function readLock(path: string): Promise<Found> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT' || (error as NodeJS.ErrnoException).code === 'ENOTDIR')
      return { kind: 'absent' };
    throw error;
  }
  try {
    const record = JSON.parse(text) as LockRecord;
    if (Number.isInteger(record?.pid) && record.pid > 0 && typeof record.startedAt === 'string') return { kind: 'held', text, record };
  } catch {
    // fall through
  }
  return { kind: 'garbled', text };
}

/** O_EXCL create with the record; false if a lock appeared meanwhile. */
async function createLock(path: string, record: LockRecord): Promise<boolean> {
  let handle: FileHandle | undefined;
  try {
    handle = await open(path, constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY, 0o600);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  }
  try {
    await handle.writeFile(JSON.stringify(record, null, 2) + '\n');
  } finally {
    await handle.close();
  }
  return true;
}

function newRecord(): LockRecord {
  const identity = processIdentity(process.pid);
  return { pid: process.pid, startedAt: new Date().toISOString(), ...(identity === undefined ? {} : { process: identity }) };
}

/** Undefined when the owner is alive; otherwise why the lock is stale. */
function staleness(dir: string, record: LockRecord): string | undefined {
  if (record.pid === process.pid) return heldHere.has(dir) ? undefined : `pid ${record.pid} is this process now`;
  return processAlive(record.pid, record.process)
    ? undefined
    : `pid ${record.pid} is ${running(record.pid) ? 'now another program' : 'not running'}`;
}

/** The CLI's entry points: `satchel up` runs as one of these (through bin/, tsx or the build). */
const SATCHEL_CLI = [/(^|\/)bin\/satchel\.js$/, /(^|\/)deploy\/cli\.ts$/, /(^|\/)dist\/deploy\/cli\.js$/, /(^|\/)satchel$/];

/**
 * True while `pid` is the process a lock (or its child list) names. Linux: not a zombie, and its identity (boot
 * id + start time) is the one recorded, or with none recorded, its command line runs the satchel CLI. Elsewhere:
 * the PID exists.
 */
export function processAlive(pid: number, identity?: string): boolean {
  if (!running(pid)) return false;
  let status: string;
  try {
    status = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return !existsSync('/proc/self/stat'); // no /proc here: the PID existing is all we can know
  }
  if (statField(status, 3) === 'Z') return false;
  if (identity !== undefined) return processIdentity(pid) === identity;
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    return argv.some((arg) => SATCHEL_CLI.some((pattern) => pattern.test(arg)));
  } catch {
    return false;
  }
}

/** `boot id:start time` of a process on Linux, undefined elsewhere. */
export function processIdentity(pid: number): string | undefined {
  try {
    const start = statField(readFileSync(`/proc/${pid}/stat`, 'utf8'), 22);
    let boot = '';
    try {
      boot = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    } catch {
      // some sandboxes hide it; the start time alone still tells a reused PID apart within a boot
    }
    return start === undefined ? undefined : `${boot}:${start}`;
  } catch {
    return undefined;
  }
}

/** Field `n` (1-based, as proc(5) numbers them) of /proc/PID/stat; the command name in field 2 may hold spaces. */
function statField(stat: string, n: number): string | undefined {
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return rest[n - 3];
}

function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** A killed owner's children exit on their own within seconds; starting beside them would share their files. */
async function waitForChildren(dir: string, record: LockRecord | undefined): Promise<void> {
  const children = record?.children ?? [];
  const deadline = Date.now() + CHILDREN_GONE_MS;
  for (;;) {
    const left = children.filter((c) => Number.isInteger(c.pid) && processAlive(c.pid, c.process));
    if (left.length === 0) return;
    if (Date.now() > deadline) {
      throw new SatchelError(
        'UNAVAILABLE',
        `the cluster that ran from ${dir} (pid ${record!.pid}) is gone, but its processes ${left.map((c) => c.pid).join(', ')} still run: stop them, then start again`,
      );
    }
    await sleep(50);
  }
}

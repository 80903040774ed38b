/**
 * The servers `satchel bench soak` watches: found from a cluster it started (LocalCluster's processes) or from
 * an existing one's console (each address's listening process on this machine), then read every second from
 * /proc (RSS, open descriptors), each interval's readings taken as their median and maximum.
 */
import { readdir, readFile, readlink } from 'node:fs/promises';
import type { LocalCluster } from '../deploy/index.ts';
import { consoleJson } from './cluster-access.ts';
import { fdsOf, fdTargetsOf, rssOf } from './proc.ts';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export interface ServerProcess {
  name: string;
  role: 'controller' | 'metadata' | 'storage-node';
  pid: number | null;
}

export interface ProcessReading {
  name: string;
  pid: number | null;
  /**
   * Median of the interval's one-second readings (null: could not be read). Not a reading at its end: a
   * storage node's RSS follows the data it holds, which swings 25–126 MB within 20 s in this workload, so
   * five seconds caught whichever phase of it they fell on (a DRAM node: 246, 202, 242 MB at three minutes'
   * ends, 258, 258, 251 MB at their peaks).
   */
  rss_bytes: number | null;
  rss_max_bytes: number | null;
  fds: number | null;
  fds_max: number | null;
}

/** The role a Satchel process was started with: the first of its arguments naming one. */
async function roleOf(pid: number): Promise<ServerProcess['role'] | null> {
  try {
    const args = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0');
    return (args.find((a) => a === 'controller' || a === 'metadata' || a === 'storage-node') as ServerProcess['role'] | undefined) ?? null;
  } catch {
    return null;
  }
}

/** The process listening on a TCP port on this machine (/proc/net/tcp{,6} → socket inode → /proc/<pid>/fd). */
async function pidListeningOn(port: number): Promise<number | null> {
  const inodes = new Set<string>();
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    const text = await readFile(file, 'utf8').catch(() => '');
    for (const line of text.split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (fields.length < 10 || fields[3] !== '0A') continue; // 0A: LISTEN
      if (Number.parseInt(fields[1]!.split(':')[1]!, 16) === port) inodes.add(`socket:[${fields[9]}]`);
    }
  }
  if (inodes.size === 0) return null;
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const fds = await readdir(`/proc/${entry}/fd`).catch(() => [] as string[]);
    for (const fd of fds) {
      const link = await readlink(`/proc/${entry}/fd/${fd}`).catch(() => '');
      if (inodes.has(link)) return Number(entry);
    }
  }
  return null;
}

const portOf = (address: string) => Number(address.slice(address.lastIndexOf(':') + 1));

/** The servers of a cluster this process started: roles from their command lines, nodes named by tier. */
export async function localProcesses(cluster: LocalCluster): Promise<ServerProcess[]> {
  const processes: ServerProcess[] = [];
  const nodes = new Map(cluster.info.nodes.map((n) => [n.pid, n]));
  const perTier = new Map<string, number>();
  for (const pid of cluster.pids) {
    const node = nodes.get(pid);
    if (node !== undefined) {
      const n = perTier.get(node.tier) ?? 0;
      perTier.set(node.tier, n + 1);
      processes.push({ name: `${node.tier}-${n}`, role: 'storage-node', pid });
    } else {
      const role = await roleOf(pid);
      if (role !== null) processes.push({ name: role, role, pid });
    }
  }
  return byRole(processes);
}

/** Controller, metadata, then storage nodes by tier (DRAM, SSD, HDD). */
function byRole(processes: ServerProcess[]): ServerProcess[] {
  const order = (p: ServerProcess) =>
    ({ controller: 0, metadata: 1, 'storage-node': 2 })[p.role] * 10 + ['dram', 'ssd', 'hdd'].indexOf(p.name.split('-')[0]!);
  return processes.sort((a, b) => order(a) - order(b));
}

/** The servers of an existing cluster, from its console; a process not running on this machine has no pid. */
export async function existingProcesses(console: string, token: string): Promise<{ controller: string; processes: ServerProcess[] }> {
  const cluster = await consoleJson<{ controller: string; metadata: string[]; nodes: { id: string; tier: string; address: string }[] }>(
    console,
    '/api/cluster',
    token,
  );
  const processes: ServerProcess[] = [{ name: 'controller', role: 'controller', pid: await pidListeningOn(portOf(cluster.controller)) }];
  for (const [i, address] of cluster.metadata.entries())
    processes.push({
      name: cluster.metadata.length > 1 ? `metadata-${i}` : 'metadata',
      role: 'metadata',
      pid: await pidListeningOn(portOf(address)),
    });
  const perTier = new Map<string, number>();
  for (const node of cluster.nodes) {
    const n = perTier.get(node.tier) ?? 0;
    perTier.set(node.tier, n + 1);
    processes.push({ name: `${node.tier}-${n}`, role: 'storage-node', pid: await pidListeningOn(portOf(node.address)) });
  }
  return { controller: cluster.controller, processes: byRole(processes) };
}

interface Reading {
  at: number;
  rss: number | null;
  fds: number | null;
}

/** Every second: RSS and fds of each watched process, kept until the interval takes them. */
export class Sampler {
  private readings = new Map<number, Reading[]>();
  private timer: NodeJS.Timeout | null = null;
  private busy = false;

  constructor(private readonly pids: () => number[]) {}

  start(): void {
    this.timer = setInterval(() => void this.sample(), 1000);
    void this.sample();
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
  }

  async sample(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      await Promise.all(
        this.pids().map(async (pid) => {
          const [rss, fds] = await Promise.all([rssOf(pid), fdsOf(pid)]);
          let list = this.readings.get(pid);
          if (list === undefined) this.readings.set(pid, (list = []));
          list.push({ at: performance.now(), rss, fds });
        }),
      );
    } finally {
      this.busy = false;
    }
  }

  /** The interval's figures for a process, and a fresh start for the next one. */
  take(name: string, pid: number | null): ProcessReading {
    const list = pid === null ? [] : (this.readings.get(pid) ?? []);
    if (pid !== null) this.readings.set(pid, []);
    const median = (values: number[]) => (values.length === 0 ? null : values.sort((a, b) => a - b)[Math.floor((values.length - 1) / 2)]!);
    const numbers = (key: 'rss' | 'fds', from: Reading[]) => from.map((r) => r[key]).filter((v): v is number => v !== null);
    const max = (values: number[]) => (values.length === 0 ? null : Math.max(...values));
    return {
      name,
      pid,
      rss_bytes: median(numbers('rss', list)),
      rss_max_bytes: max(numbers('rss', list)),
      fds: median(numbers('fds', list)),
      fds_max: max(numbers('fds', list)),
    };
  }
}

/**
 * A quiet reading: the median of three, a second apart. With `settleMs`, readings go on (a second apart, for at
 * most that long) until the last three agree on the descriptors, and the last three count: a node drops a job's
 * files and connections a few seconds after its deregistration, and the SSD node read 41 descriptors at the end
 * of a soak and its idle 29 two seconds later, which failed the soak's "fds flat" with nothing leaked.
 */
export async function idleReading(
  pid: number | null,
  options: {
    settleMs?: number;
    read?: (pid: number) => Promise<[number | null, number | null]>;
    /** What the descriptors are, read once at the end (default /proc: fdTargetsOf). */
    describe?: (pid: number) => Promise<string[] | null>;
    pauseMs?: number;
  } = {},
): Promise<IdleReading> {
  if (pid === null) return { rss: null, fds: null, targets: null };
  const read = options.read ?? ((p: number) => Promise.all([rssOf(p), fdsOf(p)]));
  const pauseMs = options.pauseMs ?? 1000;
  const until = Date.now() + (options.settleMs ?? 0);
  const readings: [number | null, number | null][] = [];
  const settled = () => {
    const last = readings.slice(-3).map((r) => r[1]);
    return last.every((f) => f === last[0]);
  };
  while (readings.length < 3 || (!settled() && Date.now() < until)) {
    if (readings.length > 0) await sleep(pauseMs);
    readings.push(await read(pid));
  }
  const median = (values: (number | null)[]) => {
    const known = values.filter((v): v is number => v !== null).sort((a, b) => a - b);
    return known.length === 0 ? null : known[Math.floor((known.length - 1) / 2)]!;
  };
  const last = readings.slice(-3);
  const targets = await (options.describe ?? fdTargetsOf)(pid);
  return { rss: median(last.map((r) => r[0])), fds: median(last.map((r) => r[1])), targets };
}

/** A quiet reading of a server: RSS and descriptors, and what the descriptors are (fdTargetsOf). */
export interface IdleReading {
  rss: number | null;
  fds: number | null;
  targets: string[] | null;
}

/**
 * What a LocalCluster keeps in its state folder, and only that: cluster.json, the lock's record, the logs and
 * disk nodes' data folders. Every path it creates is recorded (the lock lists them, so a cluster taking over a
 * gone one's folder knows what is its to remove), and removal at stop touches nothing else.
 */
import { existsSync, openSync } from 'node:fs';
import { chmod, rm, rmdir, writeFile } from 'node:fs/promises';
import { join, resolve, sep } from 'node:path';
import type { Tier } from '../proto/index.ts';
import { createdPaths, type StateLock } from './state-lock.ts';

/** cluster.json: how to reach the cluster, with its credentials (mode 0600). */
export interface ClusterInfoFile {
  controller: string;
  console: string;
  adminToken: string;
  /** Read-only console access (`/api`, the live stream, `/metrics`): the page takes it from `#token=`. */
  viewerToken: string;
  /** The default tenant's key: `Satchel.connect(controller, { key: tenantKey })` registers jobs with it. */
  tenantKey: string;
  metadata: string[];
  nodes: {
    id: string;
    tier: string;
    address: string;
    /** The node's current (or last) process. */
    pid: number;
    metrics?: string;
    /** host:port of its RESP front door (Redis clients: a job's redisUrl names one). */
    resp?: string;
    /** Absent while it runs; 'down' once its process exited (killNode, or killed by PID); 'frozen' by freezeNode. */
    state?: 'down' | 'frozen';
  }[];
  /** `/metrics` of every process: the controller's console, each metadata server, each node. */
  metrics: string[];
  /**
   * The controller's and each metadata server's current process (in `metadata`'s order; null while one is down),
   * for an operator's kill -9; a node's is in `nodes`. Written by `satchel up`.
   */
  pids?: { controller: number | null; metadata: (number | null)[] };
}

/** What the files describe at the moment they are written. */
export interface ClusterState {
  /** Undefined until the controller is up. */
  info: ClusterInfoFile | undefined;
  /** Every forked process still running, with its identity (state-lock.ts). */
  children: { pid: number; process: string | undefined }[];
  /** The controller's and each metadata server's current process, in cluster.json (`pids`) for operators' kill -9. */
  pids?: ClusterInfoFile['pids'];
}

const isLog = (path: string) => path === 'logs' || path.startsWith(`logs${sep}`);

export class StateFiles {
  /**
   * What this cluster created in stateDir, relative ('.' for the folder itself), in order: remove() takes these
   * and nothing else. A takeover inherits what the lock of the gone cluster listed.
   */
  private readonly created = new Set<string>();
  /** cluster.json and lock writes, one after another; none once the files are being removed. */
  private persisting: Promise<void> = Promise.resolve();
  private cleaning = false;
  private diskNodes = 0;
  private logs = 0;

  constructor(
    readonly stateDir: string,
    private readonly lock: StateLock,
    /** The topmost folder this cluster made to hold stateDir (stateDir itself or an ancestor). */
    private readonly madeDir: string | undefined,
    private readonly state: () => ClusterState,
  ) {
    if (madeDir !== undefined) this.created.add('.');
    for (const path of createdPaths(lock.takenOver?.record)) this.created.add(path);
  }

  get secretFile(): string {
    return join(this.stateDir, 'secret');
  }

  /** Records a path as this cluster's if nothing is there yet (the lock keeps any other cluster out). */
  claim(path: string): void {
    if (!existsSync(join(this.stateDir, path))) this.created.add(path);
  }

  /** A new log file, logs/<role>-<n>.log: numbered by spawn, never one already there (a restart's, or kept). */
  openLog(role: string): { log: string; fd: number } {
    for (;;) {
      const name = join('logs', `${role}-${this.logs++}.log`);
      try {
        const fd = openSync(join(this.stateDir, name), 'wx', 0o600);
        this.created.add(name);
        return { log: join(this.stateDir, name), fd };
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      }
    }
  }

  /** A disk node's folder, data/<tier>-<n>: a fresh name, or one this cluster owns (a gone cluster's, taken over). */
  newDataPath(tier: Tier): string {
    this.claim('data');
    for (;;) {
      const name = join('data', `${tier}-${this.diskNodes++}`);
      if (this.created.has('data') || this.created.has(name) || !existsSync(join(this.stateDir, name))) {
        this.claim(name);
        return join(this.stateDir, name);
      }
    }
  }

  /** Writes cluster.json (once the controller is up) and the lock (processes, what was created), in turn. */
  persist(): Promise<void> {
    const write = this.persisting.then(() => this.write());
    this.persisting = write.catch(() => {});
    return write;
  }

  private async write(): Promise<void> {
    if (this.cleaning) return;
    const { info, children, pids } = this.state();
    if (info !== undefined) {
      this.claim('cluster.json');
      const { controller, console, adminToken, viewerToken, tenantKey } = info;
      const text =
        JSON.stringify(
          {
            controller,
            console,
            adminToken,
            viewerToken,
            tenantKey,
            metadata: info.metadata,
            nodes: info.nodes,
            metrics: info.metrics,
            pids,
          },
          null,
          2,
        ) + '\n';
      await writeFile(join(this.stateDir, 'cluster.json'), text, { mode: 0o600 });
      // `mode` applies only to a file writeFile creates: one left by an earlier cluster keeps its own.
      await chmod(join(this.stateDir, 'cluster.json'), 0o600);
    }
    await this.lock.update({ controller: info?.controller, console: info?.console, children, created: [...this.created] });
  }

  /**
   * A gone cluster's state describes processes that are all dead (its controller's database lists its metadata
   * server and nodes): what it created goes, as its own stop would have removed it, but its logs, which may say
   * why it died (they go at this cluster's stop, unless kept).
   */
  async clearTakenOver(): Promise<void> {
    const gone = createdPaths(this.lock.takenOver?.record).reverse();
    for (const path of gone) if (path !== '.' && !isLog(path)) await rm(join(this.stateDir, path), { recursive: true, force: true });
  }

  /**
   * Once every process is gone: removes what this cluster created (or took over from a gone one) but the logs
   * when `keepLogs`, and `keepLog` (relative) in any case; releases the lock. A folder that was there, a secret
   * someone put there, another run's kept logs stay.
   */
  async remove(keepLogs: boolean, keepLog?: string): Promise<void> {
    this.cleaning = true;
    await this.persisting;
    const kept = (path: string) =>
      (keepLogs && isLog(path)) || (keepLog !== undefined && (path === keepLog || keepLog.startsWith(path + sep)));
    for (const path of [...this.created].reverse()) {
      if (path !== '.' && !kept(path)) await rm(join(this.stateDir, path), { recursive: true, force: true });
    }
    await this.lock.release();
    if (this.created.has('.')) await removeEmptyFolders(this.stateDir, this.madeDir);
  }
}

/** rmdir stateDir, then each parent up to `top` while they are empty; never their contents. */
async function removeEmptyFolders(dir: string, top: string | undefined): Promise<void> {
  for (let folder = dir; ; folder = resolve(folder, '..')) {
    try {
      await rmdir(folder);
    } catch {
      return; // not empty, or gone
    }
    if (top === undefined || folder === top || !folder.startsWith(top + sep)) return;
  }
}

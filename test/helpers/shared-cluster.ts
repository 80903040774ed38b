/**
 * One in-process cluster (two DRAM nodes) and one client shared by every test of a file, each test registering
 * its own job, deregistered when the test ends. Not a test file itself.
 */
import type { ExecutionContext, TestFn } from 'ava';
import { type RegisteredJob, Satchel } from '../../client/index.ts';
import { type InProcessCluster, startInProcessCluster } from './in-process.ts';

const MiB = 1024 * 1024;

/** A throughput hint past one node's declared 1 GB/s: the policy places the job on both nodes. */
export const TWO_NODES = { peakThroughput: 1.5e9 };

export interface SharedCluster {
  readonly cluster: InProcessCluster;
  readonly satchel: Satchel;
  /** A job named `<prefix>-<the test's title>`, deregistered after the test. */
  register(t: ExecutionContext, hints?: object): Promise<RegisteredJob>;
}

/** Starts the cluster before the file's tests (ava `before`) and stops it after them. */
export function useSharedCluster(test: TestFn, prefix: string): SharedCluster {
  let cluster: InProcessCluster | undefined;
  let satchel: Satchel | undefined;
  test.before(async () => {
    cluster = await startInProcessCluster({ dram: 2, capacity: 256 * MiB });
    satchel = await Satchel.connect(cluster.controllerAddress, { key: cluster.tenantKey, timeoutMs: 5_000 });
  });
  test.after.always(async () => {
    satchel?.close();
    await cluster?.close();
  });
  return {
    get cluster() {
      return cluster!;
    },
    get satchel() {
      return satchel!;
    },
    async register(t, hints = {}) {
      const job = await satchel!.registerJob(`${prefix}-${t.title.slice(0, 20).replace(/[^a-z0-9-]/gi, '-')}`, hints);
      t.teardown(() => job.deregister().catch(() => {}));
      return job;
    },
  };
}

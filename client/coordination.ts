/**
 * Functions coordinating through the job: `waitFor` (one WAIT parked at the key's node), `incr` (an atomic counter
 * on the node, added once through retries and copies), `barrier` (built on both) and `watch` (watch.ts).
 */
import { randomFillSync } from 'node:crypto';
import { Flag, Op, type PlacementNode, type Reply, SatchelError, Status } from '../proto/index.ts';
import type { KeyValue } from './batches.ts';
import type { Blocks } from './blocks.ts';
import { pastDeadline, settleBy, shareOf } from './deadline.ts';
import { MAX_ATTEMPTS, WAIT_GRACE_MS } from './defaults.ts';
import { isKeyLost, keyLostError } from './lost-keys.ts';
import { checkKey, checkPrefix, isPositiveInteger, optionsObject, type WaitOptions, waitTimeout } from './options.ts';
import { incrOnce, readReplicas, tellIncrement } from './replicas.ts';
import { deletedVersion, expectOk } from './replies.ts';
import type { Router } from './routing.ts';
import { Watch, type WatchOptions } from './watch.ts';

export class Coordination {
  private readonly watches = new Set<Watch>();

  constructor(
    private readonly router: Router,
    private readonly blocks: Blocks,
    private readonly values: KeyValue,
  ) {}

  /**
   * The value under `key` as soon as it exists: at once if it does, else when a PUT (or INCR) stores it. One
   * request parked at the node that owns the key, no polling. TIMEOUT when `timeoutMs` passes first,
   * NO_SUCH_JOB when the job is deregistered meanwhile.
   */
  async waitFor(key: string, options: WaitOptions | undefined): Promise<Buffer> {
    checkKey(key);
    const router = this.router;
    router.checkOpen();
    const timeoutMs = waitTimeout(options);
    const deadline = Date.now() + timeoutMs;
    let stale = 0;
    let unreachable = 0;
    for (;;) {
      // With older generations (the job grew, or is moving) the key may be in one of them: read as GET does,
      // newest first, so an older generation's copy never answers for a newer one. Then wait where new writes go.
      if (router.placement.generations.length > 1) {
        const now = await this.values.get(key);
        if (now !== null) return now;
      }
      const remaining = deadline - Date.now();
      if (remaining <= 0) throw new SatchelError('TIMEOUT', `${key} did not appear within ${timeoutMs} ms`);
      let reply: Reply;
      const epoch = router.placement.epoch;
      try {
        reply = await this.waitOnce(key, remaining);
      } catch (error) {
        if (++unreachable >= MAX_ATTEMPTS || pastDeadline(deadline)) throw error;
        await router.afterUnreachable(error, epoch, deadline);
        continue;
      }
      if (reply.status === Status.OK) {
        if ((reply.flags & Flag.MANIFEST) === 0) return reply.body;
        const value = await this.blocks.read(key, reply);
        if (value !== null) return value;
        // Overwritten while its blocks were read: the key exists, so the current value is the answer.
        const current = await this.values.get(key);
        if (current !== null) return current;
      } else if (reply.status === Status.STALE) {
        if (++stale >= MAX_ATTEMPTS * 4)
          throw new SatchelError('UNAVAILABLE', `placement of job ${router.jobId} kept changing while waiting for ${key}`);
        await router.refreshPast(reply.arg);
      } else if (reply.status === Status.TIMEOUT) {
        throw new SatchelError('TIMEOUT', `${key} did not appear within ${timeoutMs} ms`);
      } else {
        expectOk(reply);
      }
    }
  }

  /** One WAIT at the key's newest owner (its primary with replicas): answered at once if the key is there. */
  private waitOnce(key: string, remaining: number): Promise<Reply> {
    const node = this.router.holders(key)[0]![0]!;
    return this.router
      .connectionTo(node)
      .park({ op: Op.WAIT, epoch: this.router.placement.epoch, arg: remaining, key }, { backstopMs: remaining + WAIT_GRACE_MS }).reply;
  }

  /**
   * Adds `by` to the counter under `key`, created at 0, and returns the new total, atomically: concurrent
   * increments from any number of processes all count.
   */
  async incr(key: string, by: number): Promise<number> {
    checkKey(key);
    const router = this.router;
    router.checkOpen();
    if (!Number.isSafeInteger(by)) throw new SatchelError('BAD_REQUEST', 'by must be a safe integer');
    // The amount, then this increment's token: a retry (a lost answer, a node replaced) is recognised by the
    // node that applied it, or by the replica it told, and answered with the total it made, not added again.
    const amount = Buffer.allocUnsafe(16);
    amount.writeBigInt64BE(BigInt(by));
    randomFillSync(amount, 8, 8);
    const deadline = Date.now() + router.timeoutMs; // the whole call's (deadline.ts)
    for (let attempt = 1; ; attempt++) {
      let reply: Reply;
      const epoch = router.placement.epoch;
      // Always on the newest generation, as every write: a counter incremented in two generations would count
      // twice over. One that lives in an older one (the job grew, or is moving) is brought forward first.
      const holders = router.holders(key);
      const nodes = holders[0]!;
      try {
        // Within the call's deadline (deadline.ts): with copies, half of what is left, so a frozen primary leaves
        // a retry time.
        const until = nodes.length > 1 ? shareOf(deadline) : deadline;
        reply = await settleBy(this.incrAt(holders, key, amount), until, router.timeoutMs);
      } catch (error) {
        if (attempt >= MAX_ATTEMPTS || isKeyLost(error) || pastDeadline(deadline)) throw error;
        await router.afterUnreachable(error, epoch, deadline);
        continue;
      }
      if (reply.status === Status.OK) {
        // Applied by the primary: told to the other holders, never sent to a primary again (replicas.ts
        // `tellIncrement`). Within the call's whole time, as a frozen holder is only let go once it is replaced.
        if (nodes.length > 1) await tellIncrement(router, nodes, reply, key, amount, deadline);
        return Number(reply.body.readBigInt64BE(0));
      }
      if (attempt >= MAX_ATTEMPTS || pastDeadline(deadline)) expectOk(reply);
      if (reply.status === Status.STALE) await router.refreshPast(reply.arg, deadline);
      else if (reply.status === Status.FULL) await router.grow(nodes[0]!.id, epoch);
      else expectOk(reply);
    }
  }

  /** One attempt of `incr` at the newest generation's holders, bringing the counter forward first if it is older. */
  private async incrAt(holders: PlacementNode[][], key: string, amount: Buffer): Promise<Reply> {
    const reply = await incrOnce(this.router, holders[0]!, holders.length > 1 ? Flag.EXISTING : 0, key, amount);
    if (reply.status !== Status.NOT_FOUND) return reply;
    // Deleted in the newest generation since anything older had it (also a lost key: an outsider's incr after a
    // delete failed UNAVAILABLE while get said null): the counter starts again here.
    if (deletedVersion(reply) === undefined) await this.bringForward(key, holders);
    return incrOnce(this.router, holders[0]!, 0, key, amount);
  }

  /**
   * Copies the newest value `key` has in an older generation (with its version, as the controller's copies:
   * it lands only where nothing newer is) to its holders in the newest one. Nothing when no generation has it.
   */
  private async bringForward(key: string, holders: PlacementNode[][]): Promise<void> {
    for (const older of holders.slice(1)) {
      const live = older.filter((node) => !node.lost);
      // A remnant whose copies of the counter all died (routing.ts `keyLostError`): starting it at 0 would lie.
      if (live.length === 0) throw keyLostError(this.router.placement, key, older);
      // With its recent increments (Flag.INCREMENTS): this call's own retry may be one of them.
      const reply = await readReplicas(this.router, live, Op.GET, key, Flag.VERSION | Flag.INCREMENTS);
      if (reply.status !== Status.OK) continue;
      for (const node of holders[0]!) {
        const copied = await this.router.connectionTo(node).request({
          op: Op.PUT,
          flags: Flag.COPY | (reply.flags & (Flag.MANIFEST | Flag.INCREMENTS)),
          epoch: reply.epoch,
          arg: reply.arg,
          key,
          value: reply.body,
        });
        expectOk(copied);
      }
      return;
    }
  }

  /** `parties` callers meet at `name`: `incr(name/arrived)`, and the last to arrive writes `name/open`. */
  async barrier(name: string, parties: number, options: WaitOptions | undefined): Promise<void> {
    if (typeof name !== 'string') throw new SatchelError('BAD_REQUEST', 'barrier name must be a string');
    checkKey(`${name}/arrived`);
    waitTimeout(options); // checked before arriving: a caller counted and then refused would hold the others up
    if (!Number.isSafeInteger(parties) || parties < 1) throw new SatchelError('BAD_REQUEST', 'parties must be a positive integer');
    const arrived = await this.incr(`${name}/arrived`, 1);
    if (arrived > parties) throw new SatchelError('BAD_REQUEST', `barrier ${name} already had its ${parties} parties`);
    if (arrived === parties) await this.values.put(`${name}/open`, String(parties));
    else await this.waitFor(`${name}/open`, options);
  }

  /** A watch on every node of the job, resolved once it is registered on each. */
  async watch(prefix: string, given: WatchOptions | undefined): Promise<Watch> {
    if (typeof prefix !== 'string' || prefix.includes('\u0000'))
      throw new SatchelError('BAD_REQUEST', 'prefix must be a string without NUL');
    const options = optionsObject(given);
    if (options.maxBuffered !== undefined && !isPositiveInteger(options.maxBuffered))
      throw new SatchelError('BAD_REQUEST', 'maxBuffered must be a positive integer');
    checkPrefix(prefix);
    this.router.checkOpen();
    const watch = new Watch(this.router, prefix, options, () => this.watches.delete(watch));
    this.watches.add(watch);
    try {
      await watch.ready;
    } catch (error) {
      await watch.close();
      throw error;
    }
    return watch;
  }

  /** Closes every watch still open (Job.close). */
  async close(): Promise<void> {
    await Promise.all([...this.watches].map((watch) => watch.close()));
  }
}

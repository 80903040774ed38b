/**
 * A job with `replicas: 2` or `3`: each key's copies, primary first. Writes reach every copy, ordered by the
 * primary; reads go to the primary and fall back to a copy that has the key; an increment is added once, by the
 * primary, and its total handed to the others.
 */
import {
  Flag,
  type NodeConnection,
  Op,
  type Placement,
  type PlacementNode,
  type Reply,
  SatchelError,
  Status,
  writtenGenerations,
} from '../proto/index.ts';
import { pastDeadline, settleBy, shareOf } from './deadline.ts';
import { isTransient, MAX_ATTEMPTS } from './defaults.ts';
import { expectOk } from './replies.ts';

/** What the copies need of the job's routing (routing.ts implements it; an interface, so this module does not import it back). */
export interface ReplicaHost {
  readonly placement: Placement;
  readonly timeoutMs: number;
  callNode(
    node: PlacementNode,
    op: number,
    flags: number,
    arg: number,
    key: string,
    value: Uint8Array | null,
    into?: Buffer | null,
  ): Promise<Reply>;
  connectionTo(node: PlacementNode): NodeConnection;
  afterUnreachable(error: unknown, epoch: number, callDeadline?: number): Promise<void>;
  /** No answer may be read into `into` any more (NodeConnection.releaseInto on every connection). */
  releaseInto(into: Buffer): void;
}

/**
 * A read from the primary, or when it cannot be reached, from a replica that has the key. The primary has
 * every acknowledged write; a replica may not yet (the controller may be copying the key to it after a loss),
 * so its NOT_FOUND is no answer: with no replica holding the key, the primary's failure is thrown, and the
 * caller waits for a placement without it (`afterUnreachable`). Each copy gets half of what is left of the call's
 * time (`deadline`: deadline.ts); none is asked past it.
 */
export async function readReplicas(
  host: ReplicaHost,
  replicas: readonly PlacementNode[],
  op: number,
  key: string,
  flags = 0,
  into: Buffer | null = null,
  deadline = Infinity,
): Promise<Reply> {
  let failure: unknown;
  for (let i = 0; i < replicas.length; i++) {
    try {
      // One copy at a time: `into` (a block's place in its value) is written by one answer, or rewritten whole; a
      // copy given up on writes there no more.
      const asked = host.callNode(replicas[i]!, op, flags, 0, key, null, into);
      // Half of what is left of the call's time (`shareOf`): a frozen copy leaves the next one, or the placement
      // that replaces it, time to answer within the call's.
      const reply = await settleBy(asked, shareOf(deadline), host.timeoutMs, into === null ? undefined : () => host.releaseInto(into));
      if (failure === undefined || reply.status !== Status.NOT_FOUND) return reply;
    } catch (error) {
      if (!isTransient(error)) throw error;
      failure ??= error;
      if (pastDeadline(deadline)) break;
    }
  }
  throw failure;
}

/**
 * A write to a key's copies, acknowledged only when all have it. The primary (the first) orders it: it stores
 * the write under a version it chooses (the placement's epoch, and a seq after every earlier write of the key);
 * the others then take that version as a replica (Flag.REPLICA), each keeping whichever version is newest. So
 * concurrent writers leave every copy with the same value, and a replica never holds a write its primary
 * does not. An INCR's replicas take the primary's new total (and the increment's token). The answer is the primary's, unless a
 * replica's is not OK (STALE, FULL: the caller refreshes or grows, and writes again). A replica that cannot be
 * reached fails the write with UNAVAILABLE: `afterUnreachable` then waits for the controller to replace it. The
 * primary, then the others together, get half of what is left of the call's time each (`deadline`: deadline.ts),
 * so a write to a frozen node has time left for the placement that replaces it.
 */
export async function writeReplicas(
  host: ReplicaHost,
  replicas: readonly PlacementNode[],
  op: number,
  flags: number,
  key: string,
  value: Uint8Array | null,
  deadline = Infinity,
): Promise<Reply> {
  // One holder (a single-copy job's DELETE): its retry would go to the same node, so it gets the call's whole time.
  if (replicas.length === 1) return settleBy(host.callNode(replicas[0]!, op, flags, 0, key, value), deadline, host.timeoutMs);
  const primary = await settleBy(host.callNode(replicas[0]!, op, flags, 0, key, value), shareOf(deadline), host.timeoutMs);
  if (primary.status !== Status.OK) return primary;
  const replies = await settleBy(
    Promise.all(replicas.slice(1).map((node) => host.callNode(node, op, flags | Flag.REPLICA, primary.arg, key, value))),
    shareOf(deadline),
    host.timeoutMs,
  );
  const refused = replies.findIndex((reply) => reply.status !== Status.OK);
  if (refused < 0) return primary;
  refusers.set(replies[refused]!, replicas[refused + 1]!);
  return replies[refused]!;
}

/** Which copy a `writeReplicas` refusal came from, when not the primary's. */
const refusers = new WeakMap<Reply, PlacementNode>();

/**
 * The node that answered `reply` when it was a copy's refusal, not the primary's: a FULL there is that node's to
 * grow past. Before, the primary was named, which had not reported FULL, and the growth was refused (an
 * outsider's replicas-2 SSD job: 8–48 puts a run failed 'has not reported job … full').
 */
export function refusedBy(reply: Reply): PlacementNode | undefined {
  return refusers.get(reply);
}

/**
 * One INCR (`amount`: the amount, then the increment's token) at the counter's primary, `holders[0]`; its
 * answer carries the new total and its version. The other holders are told by `tellIncrement`.
 */
export async function incrOnce(
  host: ReplicaHost,
  holders: readonly PlacementNode[],
  flags: number,
  key: string,
  amount: Buffer,
): Promise<Reply> {
  const epoch = host.placement.epoch;
  const primary = await host.connectionTo(holders[0]!).request({ op: Op.INCR, flags, epoch, key, value: amount });
  // The total is 8 bytes: a shorter answer would be a RangeError where it is read.
  if (primary.status === Status.OK && primary.body.length < 8)
    throw new SatchelError('UNAVAILABLE', `node ${holders[0]!.id} answered INCR without a total`);
  return primary;
}

/**
 * An increment the primary applied (`primary`: its answer, the version's epoch and seq), its new total with the token told to the
 * other holders of the same set. Unlike a PUT, an applied increment is never sent again to whatever primary
 * the placement names next: that node's copy of the counter may already count it without knowing the token, and
 * it would add it twice (an outsider's SIGSTOP of one of three nodes: 10 of 50 counters +2 for one acknowledged
 * increment, the call cut at half its time while a frozen replica was told). So each holder of the set gets it,
 * as a copy (Flag.COPY: no placement check, still only over older versions), whatever the placement became
 * meanwhile, within the call's `deadline`; a holder that cannot be reached and leaves the placement while the
 * primary stays is left to the controller, which restores the copies from the primary's side.
 */
export async function tellIncrement(
  host: ReplicaHost,
  holders: readonly PlacementNode[],
  primary: Reply,
  key: string,
  amount: Buffer,
  deadline: number,
): Promise<void> {
  const told = Buffer.concat([primary.body.subarray(0, 8), amount.subarray(8, 16)]);
  await Promise.all(holders.slice(1).map((node) => tellOne(host, node, holders[0]!, primary.epoch, primary.arg, key, told, deadline)));
}

/**
 * A replica of an increment (its total and token at version (epoch, seq)) to one holder; see `tellIncrement`. A
 * holder that is down and then leaves the placement is let go while the primary stays in it (the controller
 * restores the copies from the primary's side); if the primary left too, its copies may not hold the increment,
 * and the error goes to the caller. Each try gets half of what is left of the call's time (a frozen holder
 * leaves the rest to see it replaced).
 */
async function tellOne(
  host: ReplicaHost,
  node: PlacementNode,
  primary: PlacementNode,
  epoch: number,
  seq: number,
  key: string,
  told: Buffer,
  deadline: number,
): Promise<void> {
  // In a generation that takes writes: a remnant (control.proto Generation.remnant) names a lost holder that is never
  // coming back for this increment (the one-minute nemesis: told in vain until the attempts ran out, the increment
  // was retried and counted twice).
  const placed = (id: string) => writtenGenerations(host.placement).some((nodes) => nodes.some((n) => n.id === id));
  for (let attempt = 1; ; attempt++) {
    try {
      const reply = await settleBy(
        host.connectionTo(node).request({ op: Op.INCR, flags: Flag.REPLICA | Flag.COPY, epoch, arg: seq, key, value: told }),
        shareOf(deadline),
        host.timeoutMs,
      );
      // STALE: the job moved off that node (drained); the copies it made came from the primary's side too.
      if (reply.status !== Status.STALE) expectOk(reply);
      return;
    } catch (error) {
      if (!isTransient(error) || attempt >= MAX_ATTEMPTS || pastDeadline(deadline)) throw error;
      await host.afterUnreachable(error, host.placement.epoch, deadline);
      if (!placed(node.id)) {
        if (placed(primary.id)) return;
        throw error;
      }
    }
  }
}

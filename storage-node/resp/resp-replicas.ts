/**
 * Writes to a job that keeps copies (`replicas` 2 or 3), through the RESP front door. A Redis client sends a
 * write to the key's slot owner, which is the key's primary (proto/placement.ts: the slot's highest-scoring
 * node of the newest generation; the copies are the next ones). The primary stores the write under the version
 * it orders (the job's epoch, the next seq of the key), then hands that version to the other copies as the native
 * client does (client/replicas.ts: Flag.REPLICA, the seq in arg), over the node's own connections to them
 * (peer-links.ts), and answers once every copy has it. So a Redis client's writes are as safe as the native
 * client's: concurrent writers leave every copy with the same value, and a copy never holds a write the primary
 * does not.
 *
 * A copy that cannot be reached, or that is past the job's epoch, fails the write with TRYAGAIN: cluster clients
 * (redis-py, ioredis, go-redis, Jedis) retry it, and the primary orders the retry after the first attempt. An
 * INCR is the exception, as in the native client (`incrOnce`): an increment the primary applied is answered
 * even when a copy missed it (writing it again would count it twice); the controller restores copies from the
 * primary when it replaces a lost node.
 */
import { randomFillSync } from 'node:crypto';
import {
  type AnnouncedNode,
  type AnnouncedPlacement,
  Flag,
  keySlot,
  Op,
  pickNodes,
  type Reply,
  SatchelError,
  Status,
  someSlotLost,
} from '../../proto/index.ts';
import type { AnnouncedJob } from '../job-table.ts';
import type { RespContext } from './resp-context.ts';
import type { SatchelCode } from './resp-errors.ts';

/** A copy's refusal of a write, as the RESP error it becomes. */
interface Refusal {
  code: SatchelCode;
  message: string;
}

/**
 * The other holders of `key` in the newest generation, when the job keeps copies and this node is the key's
 * primary: empty for a single-copy job. A refusal when a holder's data-plane address is unknown (an announcement
 * from a controller older than this node).
 */
export function otherCopies(job: AnnouncedJob, key: string, self: string): AnnouncedNode[] | Refusal {
  const placement = job.placement;
  if (!job.replicated || placement === null || placement.replicas < 2) return [];
  const generation = placement.generations[0] ?? [];
  const holders = pickNodes(generation, keySlot(key), placement.replicas).map((i) => generation[i]!);
  const others = holders.filter((node) => node.id !== self);
  for (const node of others)
    if (node.address === undefined || node.address === '')
      return { code: 'UNAVAILABLE', message: `the job's placement does not say where node ${node.id} takes copies` };
  return others;
}

/**
 * Which of this node's keys of `job` are copies it holds for another node, the key's primary in the newest
 * generation: SCAN and DBSIZE leave them out, so a cluster client scanning every node sees each key once, from
 * its primary, as CLUSTER NODES maps it. Null when none can be (a single-copy job, no placement).
 */
export function copiesHeldFor(job: AnnouncedJob | undefined, self: string): ((key: string) => boolean) | null {
  const placement = job?.placement ?? null;
  if (job?.replicated !== true || placement === null || placement.replicas < 2) return null;
  const generation = placement.generations[0] ?? [];
  const selfIndex = generation.findIndex((node) => node.id === self);
  if (selfIndex < 0) return null;
  const replicas = placement.replicas;
  return (key) => {
    const holders = pickNodes(generation, keySlot(key), replicas);
    return holders[0] !== selfIndex && holders.includes(selfIndex);
  };
}

/** Per announced placement (never edited in place: a new one comes with each announcement), `keysLostIn`'s answer. */
const lostKeysMessages = new WeakMap<AnnouncedPlacement, string | null>();

/**
 * Why a scan of the job's keys would miss some, or null: a placement keeping an older generation (a remnant:
 * control.proto Generation.remnant) with keys whose every holder is marked lost — a replicated job's copies all
 * restarted before they were restored, or a single-copy job's node restarted and its new process took the job
 * again. SCAN and DBSIZE answer it as an error, as the native client's list does, rather than leave those keys out.
 */
export function keysLostIn(job: AnnouncedJob | undefined): string | null {
  const placement = job?.placement ?? null;
  if (placement === null || placement.generations.length < 2) return null;
  let message = lostKeysMessages.get(placement);
  if (message === undefined) {
    const remnant = placement.generations.slice(1).find((nodes) => someSlotLost(nodes, placement.replicas));
    const ids = remnant
      ?.filter((n) => n.lost === true)
      .map((n) => n.id)
      .join(', ');
    message =
      remnant === undefined
        ? null
        : placement.replicas < 2
          ? `node ${ids} restarted since the job was placed on it, and the job keeps one copy: a scan would miss the keys it held`
          : `every copy of some keys of the job was lost (nodes ${ids} restarted before their copies were restored): a scan would miss them`;
    lostKeysMessages.set(placement, message);
  }
  return message;
}

function refusalOf(node: AnnouncedNode, reply: Reply): Refusal | null {
  if (reply.status === Status.OK) return null;
  if (reply.status === Status.STALE)
    return { code: 'STALE', message: `node ${node.id}, a copy of the key, is at a newer placement (epoch ${reply.arg})` };
  if (reply.status === Status.FULL) return { code: 'FULL', message: `node ${node.id}, a copy of the key, is full: ${reply.message}` };
  return { code: 'UNAVAILABLE', message: `node ${node.id}, a copy of the key, refused it: ${reply.message}` };
}

function failureOf(node: AnnouncedNode, error: unknown): Refusal {
  const text = error instanceof SatchelError ? `${error.code}: ${error.message}` : String(error);
  return { code: 'UNAVAILABLE', message: `node ${node.id}, a copy of the key, did not take it (${text})` };
}

/** One write at version (epoch, seq) to every copy in `others`; what went wrong with the first that failed, or null. */
function toCopies(
  s: RespContext,
  others: readonly AnnouncedNode[],
  op: number,
  flags: number,
  epoch: number,
  seq: number,
  key: string,
  value: Uint8Array | null,
): Promise<Refusal | null> {
  const jobId = s.job!;
  return Promise.all(
    others.map((node) =>
      s.host.peers
        .connection(jobId, node.address!)
        .request({ op, flags: flags | Flag.REPLICA, epoch, arg: seq, key, value })
        .then(
          (reply) => refusalOf(node, reply),
          (error: unknown) => failureOf(node, error),
        ),
    ),
  ).then((refusals) => refusals.find((r) => r !== null) ?? null);
}

/**
 * After this node stored a PUT (`value`) or DELETE (`value` null) of `key` at version (`epoch`, `seq`): the same
 * to the key's other copies, then `then`. Answers the refusal itself when a copy did not take it. At once for a
 * single-copy job.
 */
export function replicateWrite(
  s: RespContext,
  job: AnnouncedJob,
  key: string,
  value: Buffer | null,
  epoch: number,
  seq: number,
  then: () => void,
): void {
  if (!job.replicated) return then();
  const others = otherCopies(job, key, s.host.options.id);
  if (!Array.isArray(others)) return s.refuse(others.code, others.message);
  if (others.length === 0) return then();
  s.wait(toCopies(s, others, value === null ? Op.DELETE : Op.PUT, 0, epoch, seq, key, value), (refusal) => {
    if (refusal !== null) return s.refuse(refusal.code, refusal.message);
    then();
  });
}

/**
 * After this node, the counter's primary, applied an increment making `total` at version (`epoch`, `seq`):
 * the total to the other copies (with a token of its own, as the native client's increments carry), then
 * `then` whatever they answered (see the top of the file); a copy that missed it is logged.
 */
export function replicateIncrement(
  s: RespContext,
  job: AnnouncedJob,
  key: string,
  total: number,
  epoch: number,
  seq: number,
  then: () => void,
): void {
  if (!job.replicated) return then();
  const others = otherCopies(job, key, s.host.options.id);
  if (!Array.isArray(others) || others.length === 0) return then();
  const told = Buffer.allocUnsafe(16);
  told.writeBigInt64BE(BigInt(total));
  randomFillSync(told, 8, 8);
  s.wait(toCopies(s, others, Op.INCR, Flag.COPY, epoch, seq, key, told), (refusal) => {
    if (refusal !== null)
      s.host.options.logger.warn({ job: s.job, key, code: refusal.code, reason: refusal.message }, 'a copy missed a RESP increment');
    then();
  });
}

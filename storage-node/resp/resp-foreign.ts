/**
 * A job this node does not serve — never placed here, placed on the node's previous incarnation, or moved off —
 * reached by a Redis client through a `redisUrl` that names this node. Its placement is looked up at a metadata
 * server (placement-lookup.ts) and the client is told where the job is, as any Redis Cluster node tells a client
 * about slots it does not hold: CLUSTER SLOTS, SHARDS and NODES describe the job's nodes, INFO answers, and every
 * key gets `MOVED slot host:port`. Nothing of the job is served here. So any node of the cluster is a seed for any
 * job, and a function handed a `redisUrl` before a drain or restart still finds the job's keys.
 */
import { isPromise } from '../client-connection.ts';
import type { AnnouncedJob } from '../job-table.ts';
import { newJobTraffic } from '../metrics.ts';
import type { CommandSpec, RespContext } from './resp-context.ts';

/** Counts of requests for jobs this node does not serve: not any job's, never reported. */
const NOBODY = newJobTraffic();

/** The view of each looked-up placement: one object per lookup, not one per command. */
const views = new WeakMap<object, AnnouncedJob>();

/**
 * A stand-in for a job this node does not serve, from its looked-up placement; null when the command cannot be
 * answered for such a job or the lookup failed (the error was answered), a promise while it is looked up (the
 * caller runs the command again once it settles).
 */
export function foreignJob(s: RespContext, spec: CommandSpec, jobId: string, why: string): AnnouncedJob | null | Promise<unknown> {
  const lookup = s.host.lookup;
  if (lookup === null || (spec.keys === undefined && spec.answersForeign !== true)) {
    s.refuse('UNAVAILABLE', why);
    return null;
  }
  const result = lookup.placementOf(jobId);
  if (isPromise(result)) return result;
  if ('gone' in result) {
    s.refuse('NO_SUCH_JOB', `job ${jobId} was deregistered`);
    return null;
  }
  if ('error' in result) {
    s.refuse('UNAVAILABLE', `${why}; where it is now could not be looked up (${result.error.code}: ${result.error.message})`);
    return null;
  }
  const placement = result.placement;
  let view = views.get(placement);
  if (view === undefined) {
    view = {
      epoch: placement.epoch,
      moved: false,
      replicated: placement.replicas > 1,
      copyingUntil: 0,
      traffic: NOBODY,
      placement,
      foreign: true,
    };
    views.set(placement, view);
  }
  return view;
}

/**
 * Why a key is refused when the job's placement (as looked up) names this node as the slot's owner but the
 * controller never announced the job to this process. Two states the node cannot tell apart, for it knows the
 * same in both (no job in its table, a placement naming its id, nothing from the controller):
 * - the announcement failed (its connection to this node, say) and comes with the node's next report, within
 *   about a second: the key is served then;
 * - this node restarted since the job was placed on its id: the controller made it the job's lost member
 *   (controller/README.md "Replicas and lost nodes") and never announces the job to it again; that is recorded
 *   only in the controller's job record, not in the placement the metadata servers hold. A single-copy job's keys
 *   here are gone for good; a replicated job's placement is replaced by one without this node once its copies
 *   are restored, and a retry then gets MOVED.
 * So the reply stays TRYAGAIN (UNAVAILABLE), as a Redis client must retry in the first state; the text says what
 * the second means for a person reading it. The frame protocol answers UNAVAILABLE for both, too (session.ts).
 */
export function unannouncedOwner(nodeId: string, jobId: string, replicated: boolean): string {
  const restarted = replicated
    ? 'this node restarted since the job was placed on it and its copies are being restored on other nodes'
    : 'this node restarted since the job was placed on it and the keys it held for the job are gone: retrying will not bring them back';
  return `node ${nodeId} does not serve job ${jobId}: either the controller's announcement is still on its way, or ${restarted}`;
}

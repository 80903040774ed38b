/**
 * A job this node does not serve — never placed here, placed on the node's previous incarnation, or moved off —
 * reached by a Redis client through a `redisUrl` that names this node. Its placement is looked up at a metadata
 * server (placement-lookup.ts) and the client is told where the job is, as any Redis Cluster node tells a client
 * about slots it does not hold: CLUSTER SLOTS, SHARDS and NODES describe the job's nodes, INFO answers, and every
 * key gets `MOVED slot host:port`. Nothing of the job is served here. So any node of the cluster is a seed for any
 * job, and a function handed a `redisUrl` before a drain or restart still finds the job's keys — or, for a
 * single-copy job's keys that this node held before it restarted, a final error saying they are gone.
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
 * Whether the job's looked-up placement marks this node lost, the job keeping one copy (control.proto
 * PlacementNode.lost): this node restarted since the job was placed on its id, the controller made it the job's
 * lost member (controller/README.md "Replicas and lost nodes") and never announces the job to it again, and what
 * it held of the job is gone. Its keys are then answered `ERR … [UNAVAILABLE]` (`lostKeys`, resp-errors.ts
 * `respFinalErrorText`): a TRYAGAIN would be retried in vain.
 */
export function lostOwner(job: AnnouncedJob, nodeId: string): boolean {
  if (job.replicated || job.placement === null) return false;
  return job.placement.generations.some((generation) => generation.some((node) => node.id === nodeId && node.lost === true));
}

/** Why a single-copy job's key is refused for good on a node its placement marks lost (`lostOwner`). */
export function lostKeys(nodeId: string, jobId: string): string {
  return `node ${nodeId} restarted since job ${jobId} was placed on it: the keys it held are gone, and the job keeps one copy`;
}

/**
 * Why a key is refused when the job's placement (as looked up) names this node as the slot's owner, does not mark
 * it lost (`lostOwner`), and the controller never announced the job to this process. Most often the announcement
 * failed (its connection to this node, say) and comes with the node's next report, within about a second: the key
 * is served then. It may also be a restart not marked yet — the controller marks the node lost in a single-copy
 * job's placement once the job's earlier placement changes are done, and a lookup is kept two seconds
 * (placement-lookup.ts) — or marked by no one (a controller from before the mark); a replicated job's placement is
 * replaced by one without this node once its copies are restored, and a retry then gets MOVED. So the reply is
 * TRYAGAIN (UNAVAILABLE), as a Redis client must retry in the first state; the text names the others for a person
 * reading it. The frame protocol answers UNAVAILABLE in every case (session.ts; the client tells a lost node by
 * the same mark).
 */
export function unannouncedOwner(nodeId: string, jobId: string, replicated: boolean): string {
  const restarted = replicated
    ? 'this node restarted since the job was placed on it and its copies are being restored on other nodes'
    : 'this node restarted since the job was placed on it and the keys it held for the job are gone: retrying will not bring them back';
  return `node ${nodeId} does not serve job ${jobId}: either the controller's announcement is still on its way, or ${restarted}`;
}

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

/**
 * Making a placement a job's placement, in the order that keeps every client's view safe:
 *
 * 1. the job record (placement and any pending copy) is persisted: what a restarted controller resumes from;
 * 2. nodes joining the job are announced it, before any client can route to them (a node refuses a job it was
 *    not announced, so a client must never learn of a node that has not been told);
 * 3. the nodes already serving the job learn the new epoch: from then on clients holding an older placement get
 *    STALE (and wait for step 4: client/job.ts `refreshPast`);
 * 4. the metadata servers get the placement.
 * 5. nodes that left the job are told it moved, and drop its data.
 *
 * Steps 3 before 4: no client works with the new placement while another can still write with the old one. The
 * other way round, a write under the old placement to an older generation, acknowledged after a write of the
 * same key under the new one, would be hidden by it (reads go newest generation first), and a counter could be
 * incremented in two generations at once.
 *
 * Nodes the controller considers lost are skipped (a frozen node would hold the change up for the admin call's
 * timeout); what they missed is told to them when they report again (`reconcileNode`).
 *
 * A new job's first placement (`placeNew`, registration) needs none of that order: no client knows the job until
 * the registration's reply, which carries the placement, and no node serves it yet (no step 3 or 5). Its record,
 * its nodes and the metadata servers are told at once, so registering waits for the slowest of them instead of
 * for each in turn.
 */
import type { Logger } from 'pino';
import type { WirePlacement } from '../proto/index.ts';
import type { CallFailures, ControlOp } from './call-failures.ts';
import {
  announcedPlacementOf,
  announceFlagsOf,
  isLostMember,
  membersOf,
  nodesOf,
  pruneLostNodes,
  withLostMarks,
  withRejoined,
  withRespAddresses,
} from './members.ts';
import type { NodeAdmin } from './node-admin.ts';
import type { JobRecord, NodeRecord } from './registry.ts';

export interface PublisherHost {
  readonly admin: NodeAdmin;
  readonly nodes: ReadonlyMap<string, NodeRecord>;
  readonly logger: Logger;
  /** Where calls to nodes that failed are logged and counted. */
  readonly failures: CallFailures;
  /** Sends the placement to every metadata server. */
  publish(placement: WirePlacement): Promise<void>;
  /** Writes the job record to the controller's durable store (a no-op without one). */
  persist(job: JobRecord): Promise<void>;
  /** When a deregistered job's last token expires (ms since 1970), for nodes dropping it. */
  tokensExpireBy(): number;
  /** The job's placement was replaced (the registry indexes which nodes it names: registry.ts `JobMap`). */
  placed?(job: JobRecord): void;
}

export class PlacementPublisher {
  constructor(private readonly host: PublisherHost) {}

  /**
   * Steps 1–5 for `next` (the record's `pending` set or cleared by the caller beforehand). `next` may have the
   * current epoch: the same placement with what changed for nodes and metadata servers alone (its lost members
   * marked, `markLost`), which the metadata servers take (they refuse only an older epoch). The job gets
   * `proposed` with its lost members marked (members.ts `withLostMarks`): callers read `job.placement` after.
   */
  async apply(job: JobRecord, proposed: WirePlacement): Promise<void> {
    const before = membersOf(job);
    withRejoined(job, proposed);
    const next = withLostMarks(proposed, job.lostNodes, job.rejoined);
    withRespAddresses(next, this.host.nodes);
    job.placement = next;
    this.host.placed?.(job);
    pruneLostNodes(job);
    const after = membersOf(job);
    this.host.logger.info(
      {
        job: job.id,
        epoch: next.epoch,
        generations: next.generations.map((g) => [
          ...(g.remnant === true ? ['remnant'] : []),
          ...g.nodes.map((n) => `${n.id}${n.lost === true ? '(lost)' : ''}:${+n.weight.toFixed(3)}`),
        ]),
        pending: job.pending,
        lost: job.lostNodes,
      },
      'placement changed',
    );
    await this.host.persist(job);
    await this.announce(
      job,
      [...after].filter((id) => !before.has(id)),
    );
    await this.announce(
      job,
      [...after].filter((id) => before.has(id)),
    );
    await this.host.publish(next);
    await this.moveOff(
      job,
      [...before].filter((id) => !after.has(id)),
    );
  }

  /**
   * A node's incarnation ended holding the only copy of some of the job's keys (nodes.ts): its placement, at the
   * same epoch, marks the job's lost members (`withLostMarks`), and is persisted, told to the job's nodes and
   * published, so a lookup at a metadata server or an announcement tells the keys are gone rather than not there
   * yet. Run in the job's queue of changes (placement-changes.ts `change`). False when nothing was to be marked.
   */
  async markLost(job: JobRecord): Promise<boolean> {
    if (withLostMarks(job.placement, job.lostNodes, job.rejoined) === job.placement) return false;
    await this.apply(job, job.placement);
    return true;
  }

  /**
   * A new job's first placement: persisted, announced to its nodes and published to the metadata servers at once
   * (its record holds no placement yet: `job.placement` has no generation). Resolves once all three are done. A
   * failure to persist or publish (announcements' failures are logged and counted, as in `apply`) rejects, but
   * only once every part has settled, so that the caller's undo (dropping the job from its nodes, the metadata
   * servers and the store) comes after anything it undoes, never before a write still in flight.
   */
  async placeNew(job: JobRecord, first: WirePlacement): Promise<void> {
    if (job.placement.generations.length > 0) throw new Error(`placeNew: job ${job.id} already has a placement`);
    withRespAddresses(first, this.host.nodes);
    job.placement = first;
    this.host.placed?.(job);
    // The metadata servers' round trip is the longest: sent first. (The caller logs the placement: 'job registered'.)
    await allSettledOrFirstFailure([this.host.publish(first), this.announce(job, membersOf(job)), this.host.persist(job)]);
  }

  /**
   * A spare job's placement (spare-jobs.ts) to its nodes and metadata servers, as `placeNew` without the record:
   * nothing is persisted or indexed until a registration takes it. Unlike a registration's, an announcement that
   * fails fails it (a spare is only worth taking if every node has it: no report would tell a node of it), and
   * so does a member not registered or lost. Throws the first failure once all have settled.
   */
  async placeSpare(placement: WirePlacement): Promise<void> {
    withRespAddresses(placement, this.host.nodes);
    const flags = announceFlagsOf({ placement });
    const announced = announcedPlacementOf(placement, this.host.nodes);
    const calls: Promise<unknown>[] = [this.host.publish(placement)];
    for (const id of nodesOf(placement)) {
      const node = this.host.nodes.get(id);
      if (node === undefined || node.lost === true) throw new Error(`spare ${placement.jobId}: node ${id} is not serving`);
      calls.push(this.host.admin.announce(node.address, placement.jobId, placement.epoch, flags, node.bootId ?? '', announced));
    }
    await allSettledOrFirstFailure(calls);
  }

  /** Announces the job at its current epoch and flags to each node (not lost) of `ids`. Failures are logged and counted. */
  async announce(job: JobRecord, ids: Iterable<string>): Promise<void> {
    const flags = announceFlagsOf(job);
    const epoch = job.placement.epoch;
    const placement = announcedPlacementOf(job.placement, this.host.nodes);
    // Members as of now, not as of the caller's list: a node that restarted meanwhile (`each` reads its new
    // record, boot id and all) became a lost member first (nodes.ts), and its empty process must not get the job
    // (a restoration then listed it, found nothing, and dropped the remnant of keys whose every copy had died).
    const members = [...ids].filter((id) => !isLostMember(job, id));
    await this.each(members, job.id, async (node, step) => {
      step.op = 'announce';
      await this.host.admin.announce(node.address, job.id, epoch, flags, node.bootId ?? '', placement);
    });
  }

  /**
   * Tells each node of `ids` the job moved on (its current epoch, then DROP_JOB moved). A replicated job's node
   * keeps its copies aside a while (DropFlag.KEEP): one restored without it may come back to it (a top-up), and
   * then takes back what did not change instead of having it sent again.
   */
  async moveOff(job: JobRecord, ids: Iterable<string>): Promise<void> {
    const epoch = job.placement.epoch;
    const placement = announcedPlacementOf(job.placement, this.host.nodes);
    const keep = (job.placement.replicas ?? 1) > 1;
    await this.each(ids, job.id, async (node, step) => {
      step.op = 'announce';
      await this.host.admin.announce(node.address, job.id, epoch, 0, node.bootId ?? '', placement);
      step.op = 'drop_job';
      await this.host.admin.dropJob(node.address, job.id, true, undefined, keep);
    });
  }

  /** Drops a deregistered job from each node of `ids` (its tokens refused from then on). */
  async drop(jobId: string, ids: Iterable<string>): Promise<void> {
    const until = this.host.tokensExpireBy();
    await this.each(ids, jobId, async (node, step) => {
      step.op = 'drop_job';
      await this.host.admin.dropJob(node.address, jobId, false, until);
    });
  }

  /** `call` on each node of `ids` not lost, at once; a failure is recorded under the step it failed at. */
  private async each(
    ids: Iterable<string>,
    jobId: string,
    call: (node: NodeRecord, step: { op: ControlOp }) => Promise<void>,
  ): Promise<void> {
    const calls: Promise<void>[] = [];
    for (const id of ids) {
      const node = this.host.nodes.get(id);
      if (node === undefined || node.lost === true) continue;
      const step: { op: ControlOp } = { op: 'announce' };
      calls.push(
        call(node, step).catch((error: unknown) => {
          this.host.failures.record(step.op, error, { node: id, job: jobId }, 'the node is told when it reports next');
        }),
      );
    }
    await Promise.all(calls);
  }
}

/**
 * Waits for every call to settle, then throws the first failure: an undo by the caller never overtakes a write
 * still in flight.
 */
async function allSettledOrFirstFailure(calls: readonly Promise<unknown>[]): Promise<void> {
  const results = await Promise.allSettled(calls);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed !== undefined) throw failed.reason;
}

/**
 * A key the slot's newest owner lacks while older generations of the job's placement hold the slot on other nodes
 * (the job grew, or is moving). GET is sent there with ASK (resp-data.ts `askedElsewhere`), but a command that
 * answers from what is there, or reads and then writes, cannot be: it took the key for absent. After a growth,
 * redis-cli's INCR started a counter of 5 again at 1, SET NX overwrote the value, EXISTS and STRLEN said 0
 * (2026-12-07). So the owner first fetches the key's newest copy from the older generations, as the native
 * client's incr brings a counter forward (client/coordination.ts `bringForward`), and keeps it under its version.
 */
import { type AnnouncedPlacement, Flag, keySlot, newerVersion, Op, type Reply, SatchelError, Status } from '../../proto/index.ts';
import type { PutOutcome, StoredEntry } from '../engine.ts';
import type { AnnouncedJob } from '../job-table.ts';
import type { RespContext } from './resp-context.ts';
import { olderOwner } from './resp-routing.ts';

/**
 * Runs `then` once this node holds `key`'s newest copy from the older generations, if they have one (nothing to
 * do when the placement has one generation); for commands that change the key (INCR, SET NX/XX), which read it
 * themselves as they write.
 */
export function withOlderCopy(s: RespContext, job: AnnouncedJob, key: string, then: () => void): void {
  if (job.placement === null || job.placement.generations.length < 2) return then();
  readHere(s, job, key, () => then());
}

/**
 * `key` as this node holds it, after fetching its newest copy from the older generations when this node has none
 * and remembers no delete of it (one engine read when it holds the key, or the placement has one generation). An
 * older owner that does not answer: TRYAGAIN, which cluster clients retry.
 */
export function readHere(s: RespContext, job: AnnouncedJob, key: string, then: (entry: StoredEntry | undefined) => void): void {
  const placement = job.placement;
  const engine = s.host.engine;
  const jobId = s.job!;
  s.wait(engine.get(jobId, key), (entry) => {
    if (entry !== undefined || placement === null || placement.generations.length < 2 || engine.deletedAt(jobId, key) !== undefined)
      return then(entry);
    s.wait(newestOlderCopy(s, job.epoch, placement, key), (found) => {
      if (found instanceof SatchelError) return s.refuse('UNAVAILABLE', found.message);
      if (found === null) return then(undefined);
      const value = s.host.pool.takeSmall(found.body.length) ?? Buffer.allocUnsafeSlow(found.body.length);
      found.body.copy(value);
      // Under the copy's own version: a write that landed here meanwhile is newer, and stays.
      s.wait(engine.put(jobId, key, value, found.flags & Flag.MANIFEST, found.epoch, found.arg), (outcome: PutOutcome) => {
        if (!outcome.ok) return s.refuse(outcome.reason, outcome.message);
        if (outcome.skipped === true) s.host.pool.release(value);
        // Read again: a write that landed meanwhile is what is here now (rare: a key fetched from elsewhere).
        s.wait(engine.get(jobId, key), then);
      });
    });
  });
}

/**
 * The newest copy of `key` in the older generations (a GET with Flag.VERSION: its version in epoch and arg),
 * generation by generation as a read's ASKs go (`olderOwner`); past a delete one remembers, only a newer copy
 * counts. Null when none has it (or every holder of the slot there is lost: the command's own check answers that).
 */
/**
 * GET of a key this node, its newest owner, lacks while older generations hold the slot elsewhere: their newest
 * copy, fetched here and answered (`absent` when none has it; a value the native client stored in blocks is
 * TOO_LARGE), not stored. Redis Cluster would answer ASK, but Debian's redis-py (4.3.4) cannot follow an ASK to a
 * node CLUSTER SLOTS does not list — an older generation's — and failed with an AttributeError (an outsider's
 * run, during a restoration). An older owner that does not answer: TRYAGAIN.
 */
export function getFromOlder(s: RespContext, placement: AnnouncedPlacement, epoch: number, key: string, absent: () => void): void {
  s.wait(newestOlderCopy(s, epoch, placement, key), (found) => {
    if (found instanceof SatchelError) return s.refuse('UNAVAILABLE', found.message);
    // None has it, or a remnant's holders of the slot are all lost: the caller tells which.
    if (found === null) return absent();
    const before = s.out.bytesEncoded;
    if ((found.flags & Flag.MANIFEST) !== 0) return s.refuse('TOO_LARGE', `${key} holds a value stored in blocks by the Satchel client`);
    s.host.metrics.bytesOut(found.body.length);
    s.out.bulk(found.body);
    s.replied(before);
  });
}

async function newestOlderCopy(
  s: RespContext,
  epoch: number,
  placement: AnnouncedPlacement,
  key: string,
): Promise<Reply | null | SatchelError> {
  const slot = keySlot(key);
  let deleted: { epoch: number; seq: number } | undefined;
  for (let owner = olderOwner(placement, slot, s.host.options.id); owner !== null && owner !== 'lost'; ) {
    if (owner.address === undefined || owner.address === '')
      return new SatchelError('UNAVAILABLE', `the job's placement does not say where node ${owner.id} serves older copies`);
    let reply: Reply;
    try {
      reply = await s.host.peers.connection(s.job!, owner.address).request({ op: Op.GET, flags: Flag.VERSION, epoch, key });
    } catch (error) {
      return new SatchelError(
        'UNAVAILABLE',
        `node ${owner.id}, which holds older copies of the job's keys, did not answer (${(error as Error).message})`,
      );
    }
    if (reply.status === Status.OK) {
      return deleted === undefined || newerVersion(reply.epoch, reply.arg, deleted.epoch, deleted.seq) ? reply : null;
    }
    if (reply.status !== Status.NOT_FOUND)
      return new SatchelError(
        'UNAVAILABLE',
        `node ${owner.id}, which holds older copies of the job's keys, answered ${reply.message || reply.status}`,
      );
    if ((reply.flags & Flag.DELETED) !== 0 && (deleted === undefined || newerVersion(reply.epoch, reply.arg, deleted.epoch, deleted.seq)))
      deleted = { epoch: reply.epoch, seq: reply.arg };
    owner = olderOwner(placement, slot, owner.id, true);
  }
  return null;
}

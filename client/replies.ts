/** What a node's answer means to the client, where it is not simply OK. */
import { errorCodeOf, Flag, type Reply, SatchelError, Status } from '../proto/index.ts';

/** Throws the SatchelError an answer other than OK stands for. */
export function expectOk(reply: Reply): void {
  if (reply.status === Status.OK) return;
  if (reply.status === Status.NOT_FOUND) throw new SatchelError('UNAVAILABLE', 'block of a large value is missing');
  // The placement moved on every try, within the call's time: transient, as an unreachable node is. Not a code of
  // the client's (README "Errors"): an outsider's run under load got one.
  if (reply.status === Status.STALE)
    throw new SatchelError('UNAVAILABLE', `the job's placement kept changing (a node is at epoch ${reply.arg}): try again`);
  throw new SatchelError(errorCodeOf(reply.status), reply.message || `node answered status ${reply.status}`);
}

/** The version of the delete a NOT_FOUND reports (Flag.DELETED), if it does. */
export function deletedVersion(reply: Reply): { epoch: number; seq: number } | undefined {
  return reply.status === Status.NOT_FOUND && (reply.flags & Flag.DELETED) !== 0 ? { epoch: reply.epoch, seq: reply.arg } : undefined;
}

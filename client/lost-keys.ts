/**
 * What the client answers for keys whose copies are gone: a single-copy job's node that restarted (its keys lost
 * with it), and a remnant key every holder of which is marked lost. UNAVAILABLE, final (no placement brings them
 * back), never "absent".
 */
import { type Placement, type PlacementNode, refusingNode, SatchelError } from '../proto/index.ts';

/**
 * The error for a refusal (`refusingNode`) by a node `placement` marks lost: what it held of the job is gone, so no
 * retry helps. Still UNAVAILABLE, the code the node answered. Undefined for any other error or node.
 */
export function lostNodeError(placement: Placement, error: unknown): SatchelError | undefined {
  const address = refusingNode(error);
  if (address === undefined) return undefined;
  for (const generation of placement.generations)
    for (const node of generation)
      if (node.address === address && node.lost === true)
        return new SatchelError(
          'UNAVAILABLE',
          `node ${node.id} restarted since job ${placement.jobId} was placed on it: the keys it held are gone, and the job keeps one copy`,
          { cause: error },
        );
  return undefined;
}

/**
 * Every holder of `key` in a remnant generation is marked lost (control.proto Generation.remnant): its copies all
 * died, each process restarting before the controller could restore them from another (or, one copy, its only
 * holder restarted). The key may have held a value: UNAVAILABLE, never "absent".
 */
export function keyLostError(placement: Placement, key: string, holders: readonly PlacementNode[]): SatchelError {
  const ids = holders.map((node) => node.id).join(', ');
  // A block of a large value (proto/manifest.ts `blockKey`: the user's key, NUL, …): named by the value's key.
  const nul = key.indexOf('\u0000');
  const what = nul < 0 ? `key ${JSON.stringify(key)}` : `a block of the value of key ${JSON.stringify(key.slice(0, nul))}`;
  const error = new SatchelError(
    'UNAVAILABLE',
    placement.replicas === 1
      ? `node ${ids} restarted since job ${placement.jobId} was placed on it: the keys it held are gone, and the job keeps one copy`
      : `every copy of ${what} of job ${placement.jobId} was lost: its holders (${ids}) restarted before its copies were restored, so what it held is gone`,
  );
  lostKeys.add(error);
  return error;
}

/** `keyLostError`s: final, no new placement brings the key back (`call` does not wait for one). */
const lostKeys = new WeakSet<object>();

/** Whether `error` is a `keyLostError`: thrown at once, not retried after a placement lookup. */
export function isKeyLost(error: unknown): boolean {
  return typeof error === 'object' && error !== null && lostKeys.has(error);
}

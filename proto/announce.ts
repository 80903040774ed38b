/**
 * The body of an ANNOUNCE (controller → node, frame.ts): the incarnation the controller means, then what the
 * node's RESP front door needs of the job's placement to answer CLUSTER SLOTS and send MOVED — every
 * generation's nodes, newest first, with their RESP addresses and weights, and the copies per key.
 *
 * `bootId`, or `bootId \n JSON`: a body without a newline is a boot id alone, as nodes and controllers before
 * the RESP front door sent it. Not on any hot path (one per placement change per node), so JSON.
 */
import type { WirePlacement, WirePlacementNode } from './control-types.ts';

export interface AnnouncedNode {
  id: string;
  /** host:port of its RESP front door; '' when it has none. */
  resp: string;
  /**
   * host:port of its data plane: where the RESP front door of a replicated job's primary sends the other copies
   * their writes (storage-node/resp/resp-replicas.ts). Absent in announcements of older controllers.
   */
  address?: string;
  weight: number;
  /**
   * The node restarted since the job was placed on it, and the job keeps one copy (or this is a replicated job's
   * remnant generation): what it held of the job is gone (control.proto PlacementNode.lost). Absent from older controllers' announcements and metadata servers' answers,
   * and for every node that holds, or will hold, what the placement gives it.
   */
  lost?: true;
}

export interface AnnouncedPlacement {
  epoch: number;
  replicas: number;
  /** Newest first. */
  generations: AnnouncedNode[][];
}

/**
 * A placement as an announcement carries it: each node's RESP and data-plane address from `current` (what the
 * controller's registry knows now) when it knows the node, else from the placement itself (what a metadata server
 * holds); and whether the node is lost to the job, from the placement. The controller announces with it; a node that looks a job up (storage-node/placement-lookup.ts) reads
 * the metadata server's answer with it.
 */
export function announcedPlacement(
  placement: WirePlacement,
  current?: (id: string) => Pick<WirePlacementNode, 'address' | 'respAddress'> | undefined,
): AnnouncedPlacement {
  return {
    epoch: placement.epoch,
    replicas: placement.replicas ?? 1,
    generations: placement.generations.map((g) =>
      g.nodes.map((n) => {
        const now = current?.(n.id);
        const node: AnnouncedNode = {
          id: n.id,
          resp: now?.respAddress ?? n.respAddress ?? '',
          address: now?.address ?? n.address,
          weight: n.weight,
        };
        if (n.lost === true) node.lost = true;
        return node;
      }),
    ),
  };
}

export function encodeAnnounceBody(bootId: string, placement: AnnouncedPlacement | null): Buffer | null {
  if (placement === null) return bootId === '' ? null : Buffer.from(bootId);
  return Buffer.from(`${bootId}\n${JSON.stringify(placement)}`);
}

/** The boot id (null when none was named) and the placement (null when none came, or it does not parse). */
export function decodeAnnounceBody(body: string): { bootId: string | null; placement: AnnouncedPlacement | null } {
  const newline = body.indexOf('\n');
  if (newline === -1) return { bootId: body === '' ? null : body, placement: null };
  const bootId = body.slice(0, newline);
  return { bootId: bootId === '' ? null : bootId, placement: parsePlacement(body.slice(newline + 1)) };
}

function parsePlacement(text: string): AnnouncedPlacement | null {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  const p = value as AnnouncedPlacement;
  const valid =
    typeof p === 'object' &&
    p !== null &&
    Number.isInteger(p.epoch) &&
    Number.isInteger(p.replicas) &&
    p.replicas >= 1 &&
    Array.isArray(p.generations) &&
    p.generations.every(
      (g) =>
        Array.isArray(g) &&
        g.every((n) => typeof n?.id === 'string' && typeof n.resp === 'string' && typeof n.weight === 'number' && n.weight >= 0),
    );
  return valid ? p : null;
}

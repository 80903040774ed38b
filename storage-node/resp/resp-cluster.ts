/**
 * CLUSTER for the authenticated job: its slot map as Redis Cluster clients read it (SLOTS, SHARDS, NODES), and
 * INFO, KEYSLOT, MYID. The map is the newest generation of the job's placement as the controller last announced
 * it (proto/announce.ts), by rendezvous over slot buckets (proto/placement.ts `slotRanges`): the node a cluster
 * client picks for a key is the node the native client picks. A node that has heard of no placement (no
 * controller) serves every slot itself. Every node is a primary: copies of a replicated job are not replicas a
 * client may read (they are written by the native client only), so they are not listed.
 *
 * Node ids are 40 hex characters, as Redis's are (clients check): the SHA-1 of the Satchel node id.
 */
import { createHash } from 'node:crypto';
import { type AnnouncedNode, keySlotOfBytes, type RespCommand, SLOTS, type SlotRange, slotRanges } from '../../proto/index.ts';
import type { AnnouncedJob } from '../job-table.ts';
import type { RespContext } from './resp-context.ts';

const ids = new Map<string, string>();

/** A Satchel node id as a Redis node id. */
export function respNodeId(nodeId: string): string {
  let id = ids.get(nodeId);
  if (id === undefined) {
    id = createHash('sha1').update(nodeId).digest('hex');
    ids.set(nodeId, id);
  }
  return id;
}

interface MapNode {
  id: string;
  host: string;
  port: number;
  self: boolean;
}

interface SlotMap {
  nodes: MapNode[];
  /** Runs of slots, each with its owner's index in `nodes`. */
  ranges: SlotRange[];
  epoch: number;
}

function splitAddress(address: string): { host: string; port: number } {
  const colon = address.lastIndexOf(':');
  return { host: address.slice(0, colon).replace(/^\[|\]$/g, ''), port: Number(address.slice(colon + 1)) };
}

/** The job's slot map as this node knows it (a job it does not serve: as looked up, resp-foreign.ts). */
function slotMap(s: RespContext, job: AnnouncedJob): SlotMap {
  const self = s.host.options.id;
  const placement = job.placement;
  const generation: readonly AnnouncedNode[] = placement?.generations[0] ?? [];
  if (generation.length === 0) {
    const own = splitAddress(s.host.respAddress ?? '127.0.0.1:0');
    return { nodes: [{ id: respNodeId(self), ...own, self: true }], ranges: [{ start: 0, end: SLOTS - 1, node: 0 }], epoch: 0 };
  }
  const nodes = generation.map((n) => ({ id: respNodeId(n.id), ...splitAddress(n.resp || '127.0.0.1:0'), self: n.id === self }));
  // Slots of a node without a RESP address are left unassigned: no client can reach it.
  const ranges = slotRanges(generation).filter((r) => r.node >= 0 && generation[r.node]!.resp !== '');
  return { nodes, ranges, epoch: placement?.epoch ?? 0 };
}

function slots(s: RespContext, job: AnnouncedJob): void {
  const map = slotMap(s, job);
  const out = s.out;
  out.array(map.ranges.length);
  for (const range of map.ranges) {
    const node = map.nodes[range.node]!;
    out.array(3);
    out.integer(range.start);
    out.integer(range.end);
    out.array(3);
    out.bulk(node.host);
    out.integer(node.port);
    out.bulk(node.id);
  }
}

function shards(s: RespContext, job: AnnouncedJob): void {
  const map = slotMap(s, job);
  const out = s.out;
  out.array(map.nodes.length);
  map.nodes.forEach((node, index) => {
    const owned = map.ranges.filter((r) => r.node === index);
    out.map(2);
    out.bulk('slots');
    out.array(owned.length * 2);
    for (const range of owned) {
      out.integer(range.start);
      out.integer(range.end);
    }
    out.bulk('nodes');
    out.array(1);
    out.map(7);
    out.bulk('id');
    out.bulk(node.id);
    out.bulk('port');
    out.integer(node.port);
    out.bulk('ip');
    out.bulk(node.host);
    out.bulk('endpoint');
    out.bulk(node.host);
    out.bulk('role');
    out.bulk('master');
    out.bulk('replication-offset');
    out.integer(0);
    out.bulk('health');
    out.bulk('online');
  });
}

/** CLUSTER NODES: one line per node, in the format redis-cli and redis-benchmark parse. */
function nodesText(map: SlotMap): string {
  return map.nodes
    .map((node, index) => {
      const owned = map.ranges.filter((r) => r.node === index).map((r) => (r.start === r.end ? `${r.start}` : `${r.start}-${r.end}`));
      const flags = node.self ? 'myself,master' : 'master';
      return `${node.id} ${node.host}:${node.port}@0 ${flags} - 0 0 ${map.epoch} connected${owned.length > 0 ? ` ${owned.join(' ')}` : ''}\n`;
    })
    .join('');
}

function info(map: SlotMap): string {
  const assigned = map.ranges.reduce((n, r) => n + r.end - r.start + 1, 0);
  return [
    `cluster_state:${assigned === SLOTS ? 'ok' : 'fail'}`,
    `cluster_slots_assigned:${assigned}`,
    `cluster_slots_ok:${assigned}`,
    'cluster_slots_pfail:0',
    'cluster_slots_fail:0',
    `cluster_known_nodes:${map.nodes.length}`,
    `cluster_size:${map.nodes.length}`,
    `cluster_current_epoch:${map.epoch}`,
    `cluster_my_epoch:${map.epoch}`,
    '',
  ].join('\r\n');
}

/** CLUSTER <subcommand> …: what a Redis Cluster client asks. */
export function cluster(s: RespContext, args: Buffer[], _c: RespCommand, job: AnnouncedJob): void {
  const sub = args[1]!.toString('latin1').toUpperCase();
  const before = s.out.bytesEncoded;
  switch (sub) {
    case 'SLOTS':
      slots(s, job);
      break;
    case 'SHARDS':
      shards(s, job);
      break;
    case 'NODES':
      s.out.verbatim(nodesText(slotMap(s, job)));
      break;
    case 'INFO':
      s.out.verbatim(info(slotMap(s, job)));
      break;
    case 'MYID':
    case 'MYSHARDID':
      s.out.bulk(respNodeId(s.host.options.id));
      break;
    case 'KEYSLOT':
      if (args.length !== 3) return s.error("ERR wrong number of arguments for 'cluster|keyslot' command");
      s.out.integer(keySlotOfBytes(args[2]!));
      break;
    default:
      return s.error(`ERR unknown subcommand '${sub.slice(0, 64)}'. Satchel answers CLUSTER SLOTS, SHARDS, NODES, INFO, KEYSLOT, MYID.`);
  }
  s.replied(before);
}

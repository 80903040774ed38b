/**
 * Which node answers a key, for Redis Cluster clients: the slot's owner in the newest generation of the job's
 * placement as the controller last announced it (job-table.ts `placement`) — the node the native client picks
 * (proto/placement.ts). Any other node answers MOVED with the owner's RESP address. While a job grows, drains or
 * restores, a read the owner misses is sent on with ASK to the node that owned the slot in the generation before,
 * which serves it after ASKING; writes always go to the newest owner, as the native client's do.
 */
import { isUtf8 } from 'node:buffer';
import {
  type AnnouncedNode,
  type AnnouncedPlacement,
  crc16,
  holdersLost,
  keySlotOfBytes,
  MAX_KEY_BYTES,
  pickNode,
  pickNodes,
  SLOTS,
} from '../../proto/index.ts';
import type { AnnouncedJob } from '../job-table.ts';
import type { CommandSpec, RespContext } from './resp-context.ts';

/** The key arguments of a command, by its spec (first, last — negative from the end — and step, as COMMAND says). */
export function keyArgs(args: Buffer[], spec: CommandSpec): Buffer[] {
  const keys = spec.keys!;
  const last = keys.last < 0 ? args.length + keys.last : keys.last;
  const found: Buffer[] = [];
  for (let i = keys.first; i <= last && i < args.length; i += keys.step) found.push(args[i]!);
  return found;
}

/** A key as the engines take it: UTF-8 text of 1 to MAX_KEY_BYTES bytes. The error text, or null when fine. */
export function keyProblem(key: Buffer): string | null {
  if (key.length === 0) return 'ERR empty keys are not stored by Satchel [BAD_REQUEST]';
  if (key.length > MAX_KEY_BYTES) return `ERR key of ${key.length} bytes, over Satchel's limit of ${MAX_KEY_BYTES} [BAD_REQUEST]`;
  if (!isUtf8(key)) return 'ERR key is not valid UTF-8: Satchel keys are text [BAD_REQUEST]';
  return null;
}

/** The owner of `slot` in one generation, or undefined for an empty one. */
function ownerIn(generation: readonly AnnouncedNode[], slot: number): AnnouncedNode | undefined {
  if (generation.length === 0) return undefined;
  const index = pickNode(generation, slot);
  return index < 0 ? undefined : generation[index];
}

/** The slot's owner now: the newest generation's (null without a placement: a node alone serves every slot). */
export function slotOwner(placement: AnnouncedPlacement | null, slot: number): AnnouncedNode | null {
  if (placement === null) return null;
  return ownerIn(placement.generations[0] ?? [], slot) ?? null;
}

/**
 * The older owner a read the newest owner misses is sent to (ASK): the first generation after the newest whose
 * owner of the slot is another node. Null when there is none. A node serving an ASKING read it misses (`asked`)
 * sends it on from the generation after its own, so a read reaches every generation in order, never in a loop.
 * With copies, a holder marked lost (a remnant: control.proto Generation.remnant) is passed over for a live one of
 * the same generation, and `'lost'` when every holder there is marked (with one copy, its only one): the key's
 * every copy died, so its read is an error, not nil.
 */
export function olderOwner(placement: AnnouncedPlacement | null, slot: number, self: string, asked = false): AnnouncedNode | 'lost' | null {
  if (placement === null) return null;
  let g = 1;
  if (asked) {
    while (g < placement.generations.length && !isNode(answererIn(placement, g, slot), self)) g++;
    g++;
  }
  for (; g < placement.generations.length; g++) {
    const owner = answererIn(placement, g, slot);
    if (owner === 'lost') return owner;
    if (owner !== undefined && owner.id !== self) return owner.resp === '' ? null : owner;
  }
  return null;
}

/**
 * Whether some older generation answers the slot `'lost'` (`olderOwner`): a remnant whose every holder of the slot
 * restarted (one holder: a single-copy job's). Commands that take a key missing here for absent (EXISTS, INCR, SET NX …) refuse
 * it instead: it may have held a value.
 */
export function lostInOlder(placement: AnnouncedPlacement | null, slot: number): boolean {
  if (placement === null) return false;
  for (let g = 1; g < placement.generations.length; g++) if (answererIn(placement, g, slot) === 'lost') return true;
  return false;
}

function isNode(owner: AnnouncedNode | 'lost' | undefined, id: string): boolean {
  return owner !== undefined && owner !== 'lost' && owner.id === id;
}

/** Who answers a read of the slot in generation `g`: its owner, or its first live holder past lost ones (`olderOwner`). */
function answererIn(placement: AnnouncedPlacement, g: number, slot: number): AnnouncedNode | 'lost' | undefined {
  const generation = placement.generations[g]!;
  const owner = ownerIn(generation, slot);
  if (owner?.lost !== true) return owner;
  // One copy: the owner's incarnation that held the slot died (the id's new process, if placed on the job again,
  // answers in a newer generation and holds none of it).
  if (placement.replicas < 2) return 'lost';
  if (holdersLost(generation, slot, placement.replicas)) return 'lost';
  return pickNodes(generation, slot, placement.replicas)
    .map((i) => generation[i]!)
    .find((node) => node.lost !== true);
}

/**
 * Whether this node answers reads of the slot in an older generation of the placement (an ASKING read may be
 * served here): its owner there, or the live holder standing in for a lost one (`answererIn`).
 */
function ownsInSomeGeneration(placement: AnnouncedPlacement, slot: number, self: string): boolean {
  for (let g = 0; g < placement.generations.length; g++) if (isNode(answererIn(placement, g, slot), self)) return true;
  return false;
}

/**
 * The slot of a key of 1 to MAX_KEY_BYTES ASCII bytes (valid UTF-8 without asking `isUtf8`), else -1: the key
 * then goes through `keyProblem`.
 */
export function asciiKeySlot(key: Buffer): number {
  const length = key.length;
  if (length === 0 || length > MAX_KEY_BYTES) return -1;
  // One pass for the ASCII check and the hash tag's `{` (keySlotOfBytes's rule), no indexOf call.
  let open = -1;
  for (let i = 0; i < length; i++) {
    const b = key[i]!;
    if (b >= 0x80) return -1;
    if (b === 0x7b /* { */ && open === -1) open = i;
  }
  if (open !== -1) {
    let close = open + 1;
    while (close < length && key[close] !== 0x7d /* } */) close++;
    // The first `}` after the `{`; an empty tag (`{}`) or none: the whole key.
    if (close < length && close > open + 1) return crc16(key, open + 1, close) & (SLOTS - 1);
  }
  return crc16(key, 0, length) & (SLOTS - 1);
}

/**
 * Per placement (the job table replaces the object when a new one is announced, never changes one) and node:
 * whether the newest generation's owner of each slot is this node or nobody (SERVED), another node (ELSEWHERE),
 * or not worked out yet (0). Rendezvous per command (`pickNode`) and the key arguments' array made per command
 * took 4 % of a storage node's CPU under `redis-benchmark -P 16` with one node, more with several
 * (`satchel bench resp`, 2026-12-04).
 */
interface SlotOwners {
  readonly self: string;
  readonly slots: Uint8Array;
}
const SERVED = 1;
const ELSEWHERE = 2;
const owners = new WeakMap<AnnouncedPlacement, SlotOwners>();
/** The last placement looked up, which is nearly always the next one's. */
let lastPlacement: AnnouncedPlacement | null = null;
let lastOwners: SlotOwners | null = null;

/** Whether the newest owner of `slot` in `placement` is `self` or nobody (cached, see `owners`). */
function servedHere(placement: AnnouncedPlacement, slot: number, self: string): boolean {
  let known = placement === lastPlacement ? lastOwners! : owners.get(placement);
  if (known === undefined || known.self !== self) {
    known = { self, slots: new Uint8Array(SLOTS) };
    owners.set(placement, known);
  }
  lastPlacement = placement;
  lastOwners = known;
  let served = known.slots[slot]!;
  if (served === 0) {
    const owner = slotOwner(placement, slot);
    served = known.slots[slot] = owner === null || owner.id === self ? SERVED : ELSEWHERE;
  }
  return served === SERVED;
}

/**
 * Checks a keyed command's keys (valid, one slot) and that this node answers the slot; otherwise answers the
 * error (CROSSSLOT, MOVED, or why the key is refused) and returns null. Returns the slot.
 */
export function routeSlot(session: RespContext, job: AnnouncedJob, args: Buffer[], spec: CommandSpec, asking: boolean): number | null {
  const keys = spec.keys!;
  const last = Math.min(keys.last < 0 ? args.length + keys.last : keys.last, args.length - 1);
  let slot = -1;
  let ascii = true;
  for (let i = keys.first; i <= last; i += keys.step) {
    const key = args[i]!;
    let s = asciiKeySlot(key);
    if (s === -1) {
      ascii = false;
      const problem = keyProblem(key);
      if (problem !== null) {
        session.error(problem);
        return null;
      }
      s = keySlotOfBytes(key);
    }
    if (slot !== -1 && s !== slot) {
      session.error("CROSSSLOT Keys in request don't hash to the same slot");
      return null;
    }
    slot = s;
  }
  session.keysAscii = ascii;
  if (slot === -1) return 0;
  const self = session.host.options.id;
  const placement = job.placement;
  if (placement === null) return slot;
  // A job that moved off this node never gets here: the session answers it from its looked-up placement
  // (resp-foreign.ts), whose owners are all elsewhere.
  if (servedHere(placement, slot, self)) return slot;
  const owner = slotOwner(placement, slot)!;
  // A read sent here with ASKING by the newest owner, of a slot this node held in an older generation.
  if (asking && spec.write !== true && ownsInSomeGeneration(placement, slot, self)) return slot;
  if (owner.resp === '') {
    session.refuse('UNAVAILABLE', `slot ${slot} has no node with a RESP address in the job's placement`);
    return null;
  }
  session.error(`MOVED ${slot} ${owner.resp}`);
  return null;
}

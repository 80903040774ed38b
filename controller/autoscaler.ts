/**
 * The autoscaler: per tier, keeps measured utilization (CPU, network, capacity, from the nodes' reports every
 * second) inside a band. Above it on average over `upAfterMs`: launch a node (new jobs land on it). Below it on
 * average over `downAfterMs`, or far below it in every second of a quarter of that window: drain a node (the one
 * with the least data the provisioner can remove), then remove it. A tier of more than 20 nodes launches or
 * drains several at once (`STEP_SHARE`), in proportion to how far outside the band it is (bench scale: one at a
 * time removed 242 of 1,000 idle nodes in 19 minutes). A cool-down after each action, a wait for launched nodes
 * to join, and min/max nodes per tier keep it from flapping. Pocket scaled on *allocated* bandwidth and never
 * removed a node; this scales on what nodes measure and really gives them back.
 *
 * `decideScaling` is the policy, a pure function of the tier's load and the autoscaler's memory of it; the
 * `Autoscaler` class runs it every second against a controller and records each decision as an event.
 */
import type { Logger } from 'pino';
import { TIERS, type Tier } from '../proto/index.ts';

export interface AutoscalerConfig {
  /** Utilization band, as fractions: launch above `high`, drain below `low`. */
  low: number;
  high: number;
  /** How long utilization must stay above the band before a launch, and below it before a drain. */
  upAfterMs: number;
  downAfterMs: number;
  /** No new decision for a tier this long after its last one. */
  cooldownMs: number;
  /** A launched node that has not joined after this long no longer holds decisions back. */
  launchTimeoutMs: number;
  /**
   * A tier below its minimum gets a node only after this long: at start (and after a controller restart) the
   * nodes that exist are still registering. 10 s was too short for `satchel up` on a busy 2-core machine (CI):
   * its own nodes took longer to register, and the autoscaler launched three more.
   */
  minGraceMs: number;
  minNodes: Record<Tier, number>;
  maxNodes: Record<Tier, number>;
}

export const DEFAULT_AUTOSCALER: AutoscalerConfig = {
  low: 0.6,
  high: 0.8,
  upAfterMs: 2_000,
  downAfterMs: 20_000,
  cooldownMs: 10_000,
  launchTimeoutMs: 30_000,
  minGraceMs: 60_000,
  minNodes: { dram: 1, ssd: 0, hdd: 0 },
  maxNodes: { dram: 8, ssd: 8, hdd: 8 },
};

/** One node's load, from its last report. Fractions of what the node declared (1 = fully used). */
export interface NodeLoad {
  id: string;
  cpu: number;
  network: number;
  capacity: number;
  /** Bytes the node holds (a drain moves them). */
  used: number;
}

/** What the autoscaler remembers of a tier between ticks. */
export interface TierMemory {
  /**
   * Recent utilization, one entry per tick, for the node count it was measured with (a node joining or leaving
   * starts it afresh). Decisions use its mean over a window, not a streak: reports are bursty (a GC pause on
   * the load side makes one second dip), and a streak broken every few seconds never launched in
   * bench elasticity.
   */
  history: { at: number; value: number }[];
  historyNodes: number;
  belowMinimumSince: number | null;
  lastActionAt: number;
  /** When the tier last launched: its new nodes are still filling, so the quick drain waits a whole window. */
  lastLaunchAt: number;
  /** Nodes the tier had when a launch was asked for, how many were asked for, and when; null when none is pending. */
  pendingLaunch: { nodes: number; launched: number; at: number } | null;
  /** A drain in progress. */
  draining: boolean;
}

export function freshMemory(): TierMemory {
  return {
    history: [],
    historyNodes: -1,
    belowMinimumSince: null,
    lastActionAt: -Infinity,
    lastLaunchAt: -Infinity,
    pendingLaunch: null,
    draining: false,
  };
}

export interface TierUtilization {
  /** The highest of the three, and which it is. */
  value: number;
  resource: 'cpu' | 'network' | 'capacity';
  cpu: number;
  network: number;
  capacity: number;
}

export type ScalingDecision =
  | { action: 'launch'; reason: string; nodes: number }
  | { action: 'drain'; reason: string; nodes: number }
  | { action: 'none'; reason: string };

/** Mean utilization of each resource over the tier's nodes; the tier's utilization is the highest mean. */
export function tierUtilization(nodes: readonly NodeLoad[]): TierUtilization {
  const mean = (pick: (n: NodeLoad) => number) =>
    nodes.length === 0 ? 0 : nodes.reduce((acc, n) => acc + Math.min(pick(n), 1.5), 0) / nodes.length;
  const cpu = mean((n) => n.cpu);
  const network = mean((n) => n.network);
  const capacity = mean((n) => n.capacity);
  const resource = cpu >= network && cpu >= capacity ? 'cpu' : network >= capacity ? 'network' : 'capacity';
  return { value: Math.max(cpu, network, capacity), resource, cpu, network, capacity };
}

const pct = (x: number) => `${Math.round(x * 100)} %`;

/**
 * At most this share of a tier is launched or drained by one decision (rounded up: one node in a tier of up to 20,
 * so small clusters scale a node at a time as before), and only as many as bring the tier to the band's middle.
 */
export const STEP_SHARE = 1 / 20;

/**
 * The decision for one tier now. Updates `memory` (recent utilization, pending launches);
 * the caller records the action time when it acts. Pure otherwise: everything it looks at is an argument.
 */
export function decideScaling(
  tier: Tier,
  nodes: readonly NodeLoad[],
  memory: TierMemory,
  config: AutoscalerConfig,
  now: number,
): ScalingDecision {
  const util = tierUtilization(nodes);
  const count = nodes.length;
  const pending = memory.pendingLaunch;
  if (pending !== null && (count >= pending.nodes + pending.launched || now - pending.at > config.launchTimeoutMs))
    memory.pendingLaunch = null;

  if (memory.historyNodes !== count) {
    memory.history = [];
    memory.historyNodes = count;
  }
  memory.history.push({ at: now, value: util.value });
  // One sample at or before the longest window's start is kept: with ticks that are never exactly a second
  // apart, dropping everything older than the window would leave it never quite covered, and never decided.
  const keep = now - Math.max(config.upAfterMs, config.downAfterMs);
  while (memory.history.length > 1 && memory.history[1]!.at <= keep) memory.history.shift();
  /** Mean over the last `ms`, or null while the history is younger than that. */
  const mean = (ms: number): number | null => {
    if (memory.history.length === 0 || memory.history[0]!.at > now - ms) return null;
    const recent = memory.history.filter((h) => h.at >= now - ms);
    return recent.reduce((acc, h) => acc + h.value, 0) / recent.length;
  };
  /** The highest sample over the last `ms`, or null while the history is younger than that. */
  const highest = (ms: number): number | null => {
    if (memory.history.length === 0 || memory.history[0]!.at > now - ms) return null;
    return memory.history.reduce((acc, h) => (h.at >= now - ms ? Math.max(acc, h.value) : acc), 0);
  };
  memory.belowMinimumSince = count < config.minNodes[tier] ? (memory.belowMinimumSince ?? now) : null;

  if (memory.draining) return { action: 'none', reason: 'a drain is in progress' };
  if (memory.pendingLaunch !== null)
    return {
      action: 'none',
      reason: memory.pendingLaunch.launched === 1 ? 'waiting for the launched node to join' : 'waiting for the launched nodes to join',
    };
  if (memory.belowMinimumSince !== null) {
    if (now - memory.belowMinimumSince < config.minGraceMs)
      return { action: 'none', reason: `${count} ${tier} nodes, fewer than the minimum: waiting for nodes to register` };
    return { action: 'launch', reason: `${count} ${tier} nodes, fewer than the minimum of ${config.minNodes[tier]}`, nodes: 1 };
  }
  if (now - memory.lastActionAt < config.cooldownMs) return { action: 'none', reason: 'cooling down' };

  const what = `${tier} ${util.resource}`;
  /** Where a launch or drain of several nodes aims: the band's middle. */
  const middle = (config.low + config.high) / 2;
  const seconds = (ms: number) => `${(ms / 1000).toFixed(0)} s`;
  const up = mean(config.upAfterMs);
  if (up !== null && up > config.high) {
    if (count >= config.maxNodes[tier])
      return { action: 'none', reason: `${what} ${pct(up)} above the band, but at the maximum of ${config.maxNodes[tier]} nodes` };
    const most = Math.min(Math.ceil(count * STEP_SHARE), config.maxNodes[tier] - count);
    let launched = 1;
    while (launched < most && (up * count) / (count + launched) > middle) launched++;
    const more = launched === 1 ? '' : `; ${launched} nodes more: ${pct((up * count) / (count + launched))}`;
    return {
      action: 'launch',
      reason: `${what} ${pct(up)} > ${pct(config.high)} over ${seconds(config.upAfterMs)}${more}`,
      nodes: launched,
    };
  }
  const down = mean(config.downAfterMs);
  // Far below the band, sooner. A load falling through the band spends the whole window on nodes it no longer
  // needs, and the window's mean lags the fall (bench elasticity: drains 7–10 s after one node fewer would have
  // been enough). So when every sample of a quarter window says one node fewer would sit at or under the band's
  // middle, drain then. Every sample, not the mean: a stalled load generator's dip cannot trigger it. Not within
  // a window of a launch: its node is still filling, and a dip then would drain it and launch it again.
  const quickMs = Math.max(config.upAfterMs, config.downAfterMs / 4);
  const quick = count > 1 && now - memory.lastLaunchAt >= config.downAfterMs ? highest(quickMs) : null;
  const farBelow = quick !== null && (quick * count) / (count - 1) <= middle;
  /** A drain at utilization `level`: as many nodes as leave the rest at or under the middle (one at least). */
  const drain = (level: number, why: string): ScalingDecision => {
    const most = Math.min(Math.ceil(count * STEP_SHARE), count - config.minNodes[tier]);
    let drained = 1;
    while (drained < most && (level * count) / (count - drained - 1) <= middle) drained++;
    const fewer = drained === 1 ? 'one node fewer' : `${drained} nodes fewer`;
    return { action: 'drain', reason: `${what} ${why}; ${fewer}: ${pct((level * count) / (count - drained))}`, nodes: drained };
  };
  if (farBelow && count > config.minNodes[tier])
    return drain(quick, `at most ${pct(quick)} over ${seconds(quickMs)}, far below ${pct(config.low)}`);
  if (down !== null && down < config.low && count > config.minNodes[tier]) {
    // Only if the others can take the load without going over the band straight away (hysteresis).
    const after = (down * count) / (count - 1 || 1);
    if (count === 1 || after > config.high)
      return { action: 'none', reason: `${what} ${pct(down)} below the band, but one node fewer would be ${pct(after)}` };
    return drain(down, `${pct(down)} < ${pct(config.low)} over ${seconds(config.downAfterMs)}`);
  }
  return { action: 'none', reason: `${what} ${pct(util.value)} inside the band` };
}

/** What the Autoscaler needs of the controller. */
export interface ScalingHost {
  /** Current load of each placeable node of a tier. */
  loads(tier: Tier): NodeLoad[];
  launchNode(tier: Tier, reason: string, details: Record<string, number | string>): Promise<void>;
  /** Which node of those offered the provisioner can remove (StatefulSets: only the highest ordinal). */
  pickForRemoval(tier: Tier, candidates: string[]): string | null;
  removeNode(nodeId: string, reason: string): Promise<unknown>;
  scaleEvent(kind: 'scale-up' | 'scale-down', tier: Tier, reason: string, details: Record<string, number | string>): void;
}

export class Autoscaler {
  private readonly memory = new Map<Tier, TierMemory>(TIERS.map((t) => [t, freshMemory()]));
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly host: ScalingHost,
    readonly config: AutoscalerConfig,
    private readonly logger: Logger,
  ) {}

  start(intervalMs = 1_000): void {
    this.timer = setInterval(() => this.tick(Date.now()), intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  /** One round of decisions; actions run in the background (a drain takes as long as its data). */
  tick(now: number): void {
    for (const tier of TIERS) {
      const memory = this.memory.get(tier)!;
      const loads = this.host.loads(tier);
      const decision = decideScaling(tier, loads, memory, this.config, now);
      if (decision.action === 'none') continue;
      const util = tierUtilization(loads);
      const details = {
        nodes: loads.length,
        utilization: Math.round(util.value * 1000) / 1000,
        cpu: round3(util.cpu),
        network: round3(util.network),
        capacity: round3(util.capacity),
      };
      memory.lastActionAt = now;
      if (decision.action === 'launch') {
        memory.lastLaunchAt = now;
        memory.pendingLaunch = { nodes: loads.length, launched: decision.nodes, at: now };
        for (let i = 0; i < decision.nodes; i++) {
          this.host.scaleEvent('scale-up', tier, decision.reason, details);
          this.host.launchNode(tier, decision.reason, details).catch((error: unknown) => {
            memory.pendingLaunch = null;
            this.logger.error({ err: error, tier }, 'launching a node failed');
          });
        }
      } else {
        // The emptiest first, as many as decided that the provisioner can remove (a StatefulSet: its highest ordinal only).
        // Each pick taken out of the candidates in place: filtering them afresh per pick was O(picks² × nodes), a
        // second of CPU per tick when a tier of 5,000 drains 250 (bench scale at 10,000 nodes).
        const candidates = [...loads].sort((a, b) => a.used - b.used).map((n) => n.id);
        const picked: string[] = [];
        while (picked.length < decision.nodes) {
          const node = this.host.pickForRemoval(tier, candidates);
          const at = node === null ? -1 : candidates.indexOf(node);
          if (node === null || at < 0) break;
          picked.push(node);
          candidates.splice(at, 1);
        }
        if (picked.length === 0) continue;
        memory.draining = true;
        for (const node of picked) this.host.scaleEvent('scale-down', tier, decision.reason, { ...details, node });
        void Promise.allSettled(
          picked.map((node) =>
            this.host
              .removeNode(node, decision.reason)
              .catch((error: unknown) => this.logger.error({ err: error, tier, node }, 'removing a node failed')),
          ),
        ).finally(() => {
          memory.draining = false;
          memory.lastActionAt = Date.now();
        });
      }
    }
  }
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}

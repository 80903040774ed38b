import type { Tier } from '../proto/index.ts';

/**
 * What the autoscaler asks of the machinery that runs storage nodes. The controller defines it and deploy/
 * implements it (local child processes; Kubernetes StatefulSets) and hands it in, so no server part imports
 * deploy. Nodes register themselves with the controller when they are up: `launch` only has to start one.
 */
export interface Provisioner {
  /** Shown in events and logs: `local`, `kubernetes`. */
  readonly name: string;
  /** Starts one more storage node of `tier`. Resolves when the start was requested or done, not later. */
  launch(tier: Tier): Promise<void>;
  /**
   * Which of a tier's nodes a scale-down may drain, or null when none can go. A StatefulSet only ever removes its
   * highest ordinal, so the Kubernetes provisioner names that one; the local one takes any.
   */
  pickForRemoval(tier: Tier, nodeIds: readonly string[]): string | null;
  /** Stops a node the autoscaler has drained (no job places data on it any more). */
  remove(tier: Tier, nodeId: string): Promise<void>;
}

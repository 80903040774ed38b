import { SatchelError, type WirePlacement } from '../proto/index.ts';

/**
 * The placements this metadata server holds, by job. A placement only moves forward: a SetPlacement with an
 * epoch older than the one held is refused, so a late message from the controller cannot undo a newer one. The
 * same epoch replaces what is held: the controller republishes a placement at its epoch to mark a single-copy job's
 * restarted node lost (controller/nodes.ts).
 */
export class PlacementStore {
  private readonly placements = new Map<string, WirePlacement>();

  get size(): number {
    return this.placements.size;
  }

  has(jobId: string): boolean {
    return this.placements.has(jobId);
  }

  get(jobId: string): WirePlacement {
    const placement = this.placements.get(jobId);
    if (placement === undefined) throw new SatchelError('NO_SUCH_JOB', `no job ${jobId}`);
    return placement;
  }

  set(placement: WirePlacement): void {
    const held = this.placements.get(placement.jobId);
    if (held !== undefined && held.epoch > placement.epoch) {
      throw new SatchelError('STALE', `job ${placement.jobId} is at epoch ${held.epoch}, not going back to ${placement.epoch}`);
    }
    this.placements.set(placement.jobId, placement);
  }

  drop(jobId: string): boolean {
    return this.placements.delete(jobId);
  }
}

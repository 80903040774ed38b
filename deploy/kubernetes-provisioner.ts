/**
 * Storage nodes as pods of one StatefulSet per tier (deploy/kubernetes/storage-*.yaml). The controller's
 * autoscaler grows and shrinks a tier by changing the StatefulSet's replica count through the scale
 * subresource, which is all the RBAC Role grants (deploy/kubernetes/rbac.yaml): the provisioner never creates or
 * deletes pods itself, so the StatefulSet keeps stable names (the node id is the pod name) and volumes.
 */
import { ApiException, AppsV1Api, KubeConfig, type V1Scale } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { Provisioner } from '../controller/index.ts';
import { SatchelError, TIERS, type Tier } from '../proto/index.ts';

export interface KubernetesProvisionerOptions {
  /** Where the StatefulSets live (the controller's own namespace in the shipped manifests). */
  namespace: string;
  /** The StatefulSet that runs a tier's nodes; `satchel-<tier>` by default, as in deploy/kubernetes/. */
  statefulSetName?: (tier: Tier) => string;
  /** Defaults to `loadFromDefault()`: the pod's service account in a cluster, else ~/.kube/config or $KUBECONFIG. */
  kubeConfig?: KubeConfig;
  logger?: Logger;
}

/** Another writer (kubectl scale, a second launch) changing the scale between our read and write is retried. */
const CONFLICT_ATTEMPTS = 5;

export class KubernetesProvisioner implements Provisioner {
  readonly name = 'kubernetes';
  private readonly namespace: string;
  private readonly statefulSetName: (tier: Tier) => string;
  private readonly apps: AppsV1Api;
  private readonly logger: Logger | undefined;

  constructor(options: KubernetesProvisionerOptions) {
    if (!options.namespace) throw new SatchelError('BAD_REQUEST', 'the Kubernetes provisioner needs a namespace');
    this.namespace = options.namespace;
    this.statefulSetName = options.statefulSetName ?? ((tier) => `satchel-${tier}`);
    let kubeConfig = options.kubeConfig;
    if (kubeConfig === undefined) {
      kubeConfig = new KubeConfig();
      kubeConfig.loadFromDefault();
    }
    this.apps = kubeConfig.makeApiClient(AppsV1Api);
    this.logger = options.logger;
  }

  /** One more replica: the StatefulSet starts pod `<name>-<replicas>`, which registers itself once it is up. */
  async launch(tier: Tier): Promise<void> {
    const name = this.setName(tier);
    await this.rescale(name, (replicas) => replicas + 1);
  }

  /**
   * A StatefulSet scaled down deletes its highest ordinal, never a pod of our choosing, so that is the only node
   * the autoscaler may drain. Ids that are not pods of this tier's StatefulSet (nodes started by hand, another
   * tier's) are never picked.
   */
  pickForRemoval(tier: Tier, nodeIds: readonly string[]): string | null {
    const name = this.setName(tier);
    let best: { id: string; ordinal: number } | null = null;
    for (const id of nodeIds) {
      const ordinal = ordinalOf(name, id);
      if (ordinal !== null && (best === null || ordinal > best.ordinal)) best = { id, ordinal };
    }
    return best?.id ?? null;
  }

  /**
   * Scales the StatefulSet down by one, after checking against the live replica count that `nodeId` is the pod
   * that will go: otherwise the StatefulSet would delete a node that still holds data while the drained one stays.
   */
  async remove(tier: Tier, nodeId: string): Promise<void> {
    const name = this.setName(tier);
    const ordinal = ordinalOf(name, nodeId);
    if (ordinal === null) throw new SatchelError('BAD_REQUEST', `${nodeId} is not a pod of StatefulSet ${this.namespace}/${name}`);
    await this.rescale(name, (replicas) => {
      if (ordinal !== replicas - 1) {
        throw new SatchelError(
          'BAD_REQUEST',
          `cannot remove ${nodeId}: StatefulSet ${this.namespace}/${name} has ${replicas} replicas and only removes its highest ordinal ` +
            (replicas > 0 ? `(${name}-${replicas - 1})` : '(it has none)'),
        );
      }
      return replicas - 1;
    });
  }

  private setName(tier: Tier): string {
    if (!(TIERS as readonly string[]).includes(tier)) throw new SatchelError('BAD_REQUEST', `unknown tier ${JSON.stringify(tier)}`);
    return this.statefulSetName(tier);
  }

  /**
   * Read-modify-write of the scale subresource. The PUT carries the resourceVersion that was read, so a change
   * made in between (a concurrent launch, `kubectl scale`) fails with 409 Conflict instead of being overwritten;
   * then the scale is read again and `next` decides again (remove's check included).
   */
  private async rescale(name: string, next: (replicas: number) => number): Promise<void> {
    const namespace = this.namespace;
    for (let attempt = 1; ; attempt++) {
      const scale = await this.call(`read the scale of StatefulSet ${namespace}/${name}`, () =>
        this.apps.readNamespacedStatefulSetScale({ name, namespace }),
      );
      const replicas = scale.spec?.replicas ?? 0;
      const wanted = next(replicas);
      const body: V1Scale = { ...scale, apiVersion: 'autoscaling/v1', kind: 'Scale', spec: { ...scale.spec, replicas: wanted } };
      try {
        await this.call(`scale StatefulSet ${namespace}/${name} to ${wanted}`, () =>
          this.apps.replaceNamespacedStatefulSetScale({ name, namespace, body }),
        );
      } catch (error) {
        if (
          error instanceof SatchelError &&
          (error.cause as ApiException<unknown> | undefined)?.code === 409 &&
          attempt < CONFLICT_ATTEMPTS
        )
          continue;
        throw error;
      }
      this.logger?.info({ statefulSet: name, namespace, from: replicas, to: wanted }, 'scaled StatefulSet');
      return;
    }
  }

  /** Every failure to talk to the API server (refused, 403 from RBAC, 500) is UNAVAILABLE, with the HTTP status. */
  private async call<T>(what: string, request: () => Promise<T>): Promise<T> {
    try {
      return await request();
    } catch (error) {
      if (error instanceof ApiException) {
        const detail = statusMessage(error.body);
        throw new SatchelError('UNAVAILABLE', `Kubernetes API: cannot ${what}: HTTP ${error.code}${detail ? `: ${detail}` : ''}`, {
          cause: error,
        });
      }
      throw new SatchelError('UNAVAILABLE', `Kubernetes API: cannot ${what}: ${(error as Error).message}`, { cause: error });
    }
  }
}

/** The ordinal of pod `<statefulSet>-<n>`, or null for any other name (pods never have leading zeros). */
function ordinalOf(statefulSet: string, nodeId: string): number | null {
  if (!nodeId.startsWith(`${statefulSet}-`)) return null;
  const rest = nodeId.slice(statefulSet.length + 1);
  return /^(0|[1-9]\d{0,8})$/.test(rest) ? Number(rest) : null;
}

/** The API server answers errors with a Status object; its `message` says what RBAC or validation refused. */
function statusMessage(body: unknown): string | undefined {
  if (typeof body === 'string') {
    try {
      return statusMessage(JSON.parse(body));
    } catch {
      return body.slice(0, 300) || undefined;
    }
  }
  if (typeof body === 'object' && body !== null && typeof (body as { message?: unknown }).message === 'string')
    return (body as { message: string }).message;
  return undefined;
}

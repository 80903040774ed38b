/**
 * The command line of each role a LocalCluster starts (`satchel controller|metadata|storage-node …`), from the
 * cluster's options: the same flags an operator would give each process by hand.
 */
import type { Tier } from '../proto/index.ts';
import type { AutoscaleOptions } from './options.ts';
import { TIER_PROFILES } from './tiers.ts';

/** What of LocalClusterOptions reaches a command line. */
export interface RoleOptions {
  leaseMs?: number;
  nodeTimeoutMs?: number;
  autoscale?: AutoscaleOptions;
  tls?: { cert: string; key: string; ca: string };
  bandwidth?: Partial<Record<Tier, number>>;
  hddSeekMs?: number;
  maxValueBytes?: number;
  /** Metadata servers holding each job's placement (`--metadata-copies`). */
  metadataCopies?: number;
  /** Placements made ahead of registrations (`--spare-jobs`). */
  spareJobs?: number;
}

/** A storage node as started: on its first start ports 0 and no id (''), on later ones what it got then. */
export interface NodeLaunch {
  id: string;
  tier: Tier;
  capacity: number;
  port: number;
  metricsPort: number;
  /** Its RESP front door's port (0 on the first start). */
  respPort: number;
  /** A disk node's data folder (the node wipes it at start). */
  dataPath?: string;
  /** Where the node registers and reports: the controller, or what `nodeController` put in front of it. */
  controller: string;
}

/** The controller, with the local provisioner: it asks its parent over IPC for nodes. */
export function controllerArgs(options: RoleOptions, secretFile: string, stateDir: string, port: number, consolePort: number): string[] {
  const args = ['controller', '--port', String(port), '--console-port', String(consolePort)];
  args.push('--secret-file', secretFile, '--state-dir', stateDir, '--provisioner', 'local');
  if (options.leaseMs !== undefined) args.push('--lease-ms', String(options.leaseMs));
  if (options.nodeTimeoutMs !== undefined) args.push('--node-timeout-ms', String(options.nodeTimeoutMs));
  if (options.metadataCopies !== undefined) args.push('--metadata-copies', String(options.metadataCopies));
  if (options.spareJobs !== undefined) args.push('--spare-jobs', String(options.spareJobs));
  args.push(...tlsArgs(options));
  const scale = options.autoscale;
  if (scale !== undefined) {
    args.push('--autoscale');
    const perTier = (counts: Partial<Record<Tier, number>>) =>
      Object.entries(counts)
        .map(([tier, n]) => `${tier}=${n}`)
        .join(',');
    if (scale.band) args.push('--band', `${scale.band[0]}-${scale.band[1]}`);
    if (scale.minNodes) args.push('--min-nodes', perTier(scale.minNodes));
    if (scale.maxNodes) args.push('--max-nodes', perTier(scale.maxNodes));
    if (scale.scaleUpAfterMs !== undefined) args.push('--scale-up-after-ms', String(scale.scaleUpAfterMs));
    if (scale.scaleDownAfterMs !== undefined) args.push('--scale-down-after-ms', String(scale.scaleDownAfterMs));
    if (scale.cooldownMs !== undefined) args.push('--cooldown-ms', String(scale.cooldownMs));
  }
  return args;
}

export function metadataArgs(options: RoleOptions, secretFile: string, controller: string, port: number, metricsPort: number): string[] {
  return [
    'metadata',
    '--port',
    String(port),
    '--metrics-port',
    String(metricsPort),
    '--controller',
    controller,
    ...tlsArgs(options),
    '--secret-file',
    secretFile,
  ];
}

/** A storage node's command line: on its first start ports 0 and no id; on later ones what it got then. */
export function nodeArgs(options: RoleOptions, secretFile: string, node: NodeLaunch): string[] {
  const args = [
    'storage-node',
    '--tier',
    node.tier,
    '--port',
    String(node.port),
    '--metrics-port',
    String(node.metricsPort),
    '--resp-port',
    String(node.respPort),
    '--controller',
    node.controller,
  ];
  if (node.id !== '') args.push('--id', node.id);
  args.push(
    '--capacity',
    String(node.capacity),
    '--bandwidth',
    String(options.bandwidth?.[node.tier] ?? TIER_PROFILES[node.tier].bandwidth),
  );
  if (node.dataPath !== undefined) args.push('--path', node.dataPath);
  if (node.tier === 'hdd' && options.hddSeekMs !== undefined) args.push('--seek-ms', String(options.hddSeekMs));
  if (options.maxValueBytes !== undefined) args.push('--max-value', String(options.maxValueBytes));
  return [...args, ...tlsArgs(options), '--secret-file', secretFile];
}

/** Every process gets the same certificate (it names 127.0.0.1) and CA. */
function tlsArgs(options: RoleOptions): string[] {
  const tls = options.tls;
  return tls === undefined ? [] : ['--tls-cert', tls.cert, '--tls-key', tls.key, '--tls-ca', tls.ca];
}

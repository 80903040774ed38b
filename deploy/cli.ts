/**
 * The `satchel` command. Every flag is listed in USAGE; an unknown flag or a bad value exits with status 2 and
 * says which. Server roles log JSON lines (pino) on stderr; `satchel up` prints the addresses on stdout.
 */

import { join, resolve } from 'node:path';
import { type ParseArgsConfig, parseArgs } from 'node:util';
import { isTier, SatchelError, type ServerTls } from '../proto/index.ts';
import { LocalCluster } from './local-cluster.ts';
import { createLogger } from './logger.ts';
import { type AutoscaleOptions, parseBand, parseBytes, parseCount, parseMs, parsePort, parseTierCounts } from './options.ts';
import { PortInUseError } from './port-in-use.ts';
import { describeRestartId } from './process-restarts.ts';
import { readSecret } from './secret.ts';
import { tenantCommand } from './tenant-command.ts';
import { TIER_PROFILES } from './tiers.ts';
import { readTlsFiles, type TlsFiles, tlsFilesOf } from './tls.ts';
import { USAGE } from './usage.ts';

type Flags = Record<string, string | boolean | undefined>;

function positiveCount(text: string, flag: string): number {
  const n = parseCount(text, flag, 1_000_000);
  if (n === 0) throw new SatchelError('BAD_REQUEST', `${flag}: at least 1`);
  return n;
}

function parse(args: string[], options: ParseArgsConfig['options']): Flags {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: false }).values as Flags;
  } catch (error) {
    throw new SatchelError('BAD_REQUEST', (error as Error).message);
  }
}

const str = (flags: Flags, name: string): string | undefined => flags[name] as string | undefined;

function required(flags: Flags, name: string): string {
  const value = str(flags, name);
  if (value === undefined) throw new SatchelError('BAD_REQUEST', `--${name} is required`);
  return value;
}

async function up(args: string[]): Promise<void> {
  const flags = parse(args, {
    'state-dir': { type: 'string' },
    'controller-port': { type: 'string' },
    'console-port': { type: 'string' },
    dram: { type: 'string' },
    ssd: { type: 'string' },
    hdd: { type: 'string' },
    'dram-capacity': { type: 'string' },
    'ssd-capacity': { type: 'string' },
    'hdd-capacity': { type: 'string' },
    'hdd-seek-ms': { type: 'string' },
    metadata: { type: 'string' },
    'metadata-copies': { type: 'string' },
    'spare-jobs': { type: 'string' },
    'keep-logs': { type: 'boolean' },
    'no-autoscale': { type: 'boolean' },
    'no-restart': { type: 'boolean' },
    'controller-heap': { type: 'string' },
    ...autoscaleFlags,
    ...tlsFlags,
  });
  const size = (flag: string) => (str(flags, flag) ? parseBytes(str(flags, flag)!, `--${flag}`) : undefined);
  const seek = str(flags, 'hdd-seek-ms');
  if (seek !== undefined && !(Number(seek) >= 0))
    throw new SatchelError('BAD_REQUEST', `--hdd-seek-ms: not a number of milliseconds: ${JSON.stringify(seek)}`);
  const stateDir = resolve(str(flags, 'state-dir') ?? '.satchel');
  // Checked here, so a bad file is one message, not one per process; the processes get the paths.
  const files = tlsFiles(flags);
  if (files !== undefined) await readTlsFiles(files);
  const tls = files === undefined ? undefined : { cert: resolve(files.cert), key: resolve(files.key), ca: resolve(files.ca) };
  const counts = {
    dram: parseCount(str(flags, 'dram') ?? '1', '--dram'),
    ssd: parseCount(str(flags, 'ssd') ?? '1', '--ssd'),
    hdd: parseCount(str(flags, 'hdd') ?? '1', '--hdd'),
  };
  const metadataServers = str(flags, 'metadata') === undefined ? undefined : parseCount(str(flags, 'metadata')!, '--metadata', 16);
  if (metadataServers === 0) throw new SatchelError('BAD_REQUEST', '--metadata: at least one metadata server');
  const metadataCopies = metadataCopiesOf(str(flags, 'metadata-copies'));
  const spareJobs = spareJobsOf(str(flags, 'spare-jobs'));
  const controllerHeap = str(flags, 'controller-heap') ?? 'small';
  if (controllerHeap !== 'small' && controllerHeap !== 'large')
    throw new SatchelError('BAD_REQUEST', `--controller-heap: small or large, got ${JSON.stringify(controllerHeap)}`);
  // Autoscaling on by default, never below what was asked for at start.
  const autoscale = flags['no-autoscale'] === true ? undefined : { minNodes: counts, ...withoutUndefined(autoscaleOptions(flags)) };
  const controllerPort = parsePort(str(flags, 'controller-port') ?? '7070', '--controller-port');
  const consolePort = parsePort(str(flags, 'console-port') ?? '7071', '--console-port');
  const capacities = { dramCapacity: size('dram-capacity'), ssdCapacity: size('ssd-capacity'), hddCapacity: size('hdd-capacity') };
  // Every flag checked before this line: a bad one is the only thing printed.
  const started = Date.now();
  process.stdout.write(`starting Satchel in ${stateDir} ...\n`);
  const cluster = await LocalCluster.start({
    stateDir,
    controllerPort,
    consolePort,
    ...counts,
    autoscale,
    ...capacities,
    hddSeekMs: seek === undefined ? undefined : Number(seek),
    metadata: metadataServers,
    metadataCopies,
    spareJobs,
    keepLogs: flags['keep-logs'] === true,
    controllerHeap,
    tls,
    onReady: (m) => process.stdout.write(`  ${m.role.padEnd(12)} ${m.address}${m.id ? `  (${m.id})` : ''}\n`),
    restartProcesses: flags['no-restart'] !== true,
    onRestart: ({ id, pid, afterMs, error, retryMs }) => {
      const what = describeRestartId(id);
      process.stdout.write(
        error === undefined
          ? `  ${what} exited: started again after ${afterMs / 1000} s (pid ${pid})\n`
          : `  ${what} exited and did not start again after ${afterMs / 1000} s: ${error.message}` +
              (retryMs === undefined ? '\n' : `; trying again in ${retryMs / 1000} s\n`),
      );
    },
    onTakeover: ({ record, reason }) =>
      process.stdout.write(
        `  taking over ${stateDir} from a cluster that did not stop (${record === undefined ? '' : `started ${record.startedAt}, `}${reason})\n`,
      ),
  });
  // Listening before "Satchel is up" is printed: whoever reads it may signal at once (a test did, and the
  // signal arrived between the write and the handlers, killing the process with its cluster still running).
  const stopped = new Promise<void>((resolveStop) => {
    const stop = (signal: string) => {
      process.stdout.write(`${signal}: stopping ...\n`);
      cluster.stop().then(resolveStop, resolveStop);
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
  const info = cluster.info;
  process.stdout.write(
    `Satchel is up in ${Date.now() - started} ms\n` +
      `  controller   ${info.controller}\n` +
      `  console      ${info.console}/#token=${info.viewerToken}\n` +
      `  cluster file ${join(stateDir, 'cluster.json')} (holds the admin and viewer tokens, and tenantKey for Satchel.connect)\n` +
      (tls === undefined ? '' : `  TLS          on; clients check certificates against ${tls.ca}\n`) +
      `Stop with Ctrl-C.\n`,
  );
  await stopped;
  process.stdout.write('stopped\n');
}

/** The autoscaler's policy, as `satchel up` and `satchel controller` take it. */
const autoscaleFlags = {
  band: { type: 'string' },
  'min-nodes': { type: 'string' },
  'max-nodes': { type: 'string' },
  'scale-up-after-ms': { type: 'string' },
  'scale-down-after-ms': { type: 'string' },
  'cooldown-ms': { type: 'string' },
} as const;

function autoscaleOptions(flags: Flags): AutoscaleOptions {
  const ms = (flag: string) => (str(flags, flag) === undefined ? undefined : parseMs(str(flags, flag)!, `--${flag}`));
  return {
    band: str(flags, 'band') === undefined ? undefined : parseBand(str(flags, 'band')!, '--band'),
    minNodes: str(flags, 'min-nodes') === undefined ? undefined : parseTierCounts(str(flags, 'min-nodes')!, '--min-nodes'),
    maxNodes: str(flags, 'max-nodes') === undefined ? undefined : parseTierCounts(str(flags, 'max-nodes')!, '--max-nodes'),
    scaleUpAfterMs: ms('scale-up-after-ms'),
    scaleDownAfterMs: ms('scale-down-after-ms'),
    cooldownMs: ms('cooldown-ms'),
  };
}

/** `--tls-cert`, `--tls-key`, `--tls-ca`: every role, and `satchel up` for all of them. */
const tlsFlags = {
  'tls-cert': { type: 'string' },
  'tls-key': { type: 'string' },
  'tls-ca': { type: 'string' },
} as const;

const tlsFiles = (flags: Flags): TlsFiles | undefined => tlsFilesOf(str(flags, 'tls-cert'), str(flags, 'tls-key'), str(flags, 'tls-ca'));

/** A role's TLS identity, read and checked now (a bad file stops it at start), or undefined without the flags. */
async function serverTls(flags: Flags): Promise<ServerTls | undefined> {
  const files = tlsFiles(flags);
  return files === undefined ? undefined : readTlsFiles(files);
}

const serverFlags = {
  ...tlsFlags,
  host: { type: 'string' },
  advertise: { type: 'string' },
  port: { type: 'string' },
  'secret-file': { type: 'string' },
} as const;

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  // `satchel up --help` is how people ask: the usage, not "unknown option".
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(USAGE);
    return;
  }
  switch (command) {
    case 'up':
      return up(rest);
    case 'controller': {
      const flags = parse(rest, {
        ...serverFlags,
        'console-port': { type: 'string' },
        'console-host': { type: 'string' },
        'state-dir': { type: 'string' },
        'lease-ms': { type: 'string' },
        'node-timeout-ms': { type: 'string' },
        'token-ttl-ms': { type: 'string' },
        'job-quota': { type: 'string' },
        'metadata-copies': { type: 'string' },
        'spare-jobs': { type: 'string' },
        'no-default-tenant': { type: 'boolean' },
        ...autoscaleFlags,
        provisioner: { type: 'string' },
        namespace: { type: 'string' },
        autoscale: { type: 'boolean' },
      });
      const host = str(flags, 'host') ?? '127.0.0.1';
      const provisioner = str(flags, 'provisioner') ?? 'none';
      if (provisioner !== 'none' && provisioner !== 'local' && provisioner !== 'kubernetes') {
        throw new SatchelError('BAD_REQUEST', `--provisioner: expected none, local or kubernetes, got ${JSON.stringify(provisioner)}`);
      }
      if (flags.autoscale === true && provisioner === 'none')
        throw new SatchelError('BAD_REQUEST', '--autoscale needs --provisioner local or kubernetes');
      const namespace = str(flags, 'namespace');
      if (provisioner === 'kubernetes' && namespace === undefined)
        throw new SatchelError('BAD_REQUEST', '--provisioner kubernetes needs --namespace NS');
      const leaseMs = str(flags, 'lease-ms');
      if (leaseMs !== undefined && !(Number.isInteger(Number(leaseMs)) && Number(leaseMs) >= 100)) {
        throw new SatchelError('BAD_REQUEST', `--lease-ms: expected a whole number of milliseconds ≥ 100, got ${JSON.stringify(leaseMs)}`);
      }
      const tokenTtlMs = str(flags, 'token-ttl-ms');
      if (tokenTtlMs !== undefined && !(Number.isInteger(Number(tokenTtlMs)) && Number(tokenTtlMs) >= 1_000)) {
        throw new SatchelError(
          'BAD_REQUEST',
          `--token-ttl-ms: expected a whole number of milliseconds ≥ 1000, got ${JSON.stringify(tokenTtlMs)}`,
        );
      }
      const nodeTimeoutMs = str(flags, 'node-timeout-ms');
      // Reports come every second: less than two of them would call a busy node lost.
      if (nodeTimeoutMs !== undefined && !(Number.isInteger(Number(nodeTimeoutMs)) && Number(nodeTimeoutMs) >= 1_000)) {
        throw new SatchelError(
          'BAD_REQUEST',
          `--node-timeout-ms: expected a whole number of milliseconds ≥ 1000, got ${JSON.stringify(nodeTimeoutMs)}`,
        );
      }
      const { runController } = await import('./roles.ts');
      await runController({
        metadataCopies: metadataCopiesOf(str(flags, 'metadata-copies')),
        spareJobs: spareJobsOf(str(flags, 'spare-jobs')),
        stateDir: str(flags, 'state-dir'),
        leaseMs: leaseMs === undefined ? undefined : Number(leaseMs),
        nodeTimeoutMs: nodeTimeoutMs === undefined ? undefined : Number(nodeTimeoutMs),
        tokenTtlMs: tokenTtlMs === undefined ? undefined : Number(tokenTtlMs),
        jobQuotaBytes: str(flags, 'job-quota') === undefined ? undefined : parseBytes(str(flags, 'job-quota')!, '--job-quota'),
        defaultTenant: flags['no-default-tenant'] !== true,
        advertiseHost: str(flags, 'advertise'),
        host,
        port: parsePort(str(flags, 'port') ?? '7070', '--port'),
        consoleHost: str(flags, 'console-host') ?? host,
        consolePort: parsePort(str(flags, 'console-port') ?? '7071', '--console-port'),
        secret: await readSecret(required(flags, 'secret-file')),
        tls: await serverTls(flags),
        logger: createLogger('controller'),
        provisioner,
        namespace,
        autoscale: flags.autoscale === true ? autoscaleOptions(flags) : undefined,
      });
      return;
    }
    case 'metadata': {
      const flags = parse(rest, { ...serverFlags, controller: { type: 'string' }, 'metrics-port': { type: 'string' } });
      const { runMetadata } = await import('./roles.ts');
      await runMetadata({
        host: str(flags, 'host') ?? '127.0.0.1',
        advertiseHost: str(flags, 'advertise'),
        port: parsePort(str(flags, 'port') ?? '0', '--port'),
        metricsPort: str(flags, 'metrics-port') === undefined ? undefined : parsePort(str(flags, 'metrics-port')!, '--metrics-port'),
        controller: required(flags, 'controller'),
        secret: await readSecret(required(flags, 'secret-file')),
        tls: await serverTls(flags),
        logger: createLogger('metadata'),
      });
      return;
    }
    case 'storage-node': {
      const flags = parse(rest, {
        ...serverFlags,
        controller: { type: 'string' },
        tier: { type: 'string' },
        path: { type: 'string' },
        capacity: { type: 'string' },
        bandwidth: { type: 'string' },
        'seek-ms': { type: 'string' },
        'disk-bandwidth': { type: 'string' },
        'max-value': { type: 'string' },
        'job-max-connections': { type: 'string' },
        id: { type: 'string' },
        'metrics-port': { type: 'string' },
        'resp-port': { type: 'string' },
      });
      const tier = str(flags, 'tier') ?? 'dram';
      if (!isTier(tier)) throw new SatchelError('BAD_REQUEST', `--tier: expected dram, ssd or hdd, got ${JSON.stringify(tier)}`);
      const profile = TIER_PROFILES[tier];
      const seekMs = str(flags, 'seek-ms');
      if (seekMs !== undefined && !(Number(seekMs) >= 0))
        throw new SatchelError('BAD_REQUEST', `--seek-ms: not a number of milliseconds: ${JSON.stringify(seekMs)}`);
      const diskBandwidth = str(flags, 'disk-bandwidth');
      const { runStorageNode } = await import('./roles.ts');
      await runStorageNode({
        tier,
        path: str(flags, 'path'),
        metricsPort: str(flags, 'metrics-port') === undefined ? undefined : parsePort(str(flags, 'metrics-port')!, '--metrics-port'),
        respPort: str(flags, 'resp-port') === undefined ? undefined : parsePort(str(flags, 'resp-port')!, '--resp-port'),
        advertiseHost: str(flags, 'advertise'),
        host: str(flags, 'host') ?? '127.0.0.1',
        port: parsePort(str(flags, 'port') ?? '0', '--port'),
        controller: required(flags, 'controller'),
        capacity: str(flags, 'capacity') ? parseBytes(str(flags, 'capacity')!, '--capacity') : profile.capacity,
        bandwidth: str(flags, 'bandwidth') ? parseBytes(str(flags, 'bandwidth')!, '--bandwidth') : profile.bandwidth,
        emulate:
          seekMs !== undefined || diskBandwidth !== undefined
            ? {
                seekMs: seekMs === undefined ? undefined : Number(seekMs),
                bandwidthBytesPerSec: diskBandwidth === undefined ? undefined : parseBytes(diskBandwidth, '--disk-bandwidth'),
              }
            : undefined,
        maxValueBytes: str(flags, 'max-value') ? parseBytes(str(flags, 'max-value')!, '--max-value') : undefined,
        maxConnectionsPerJob:
          str(flags, 'job-max-connections') === undefined
            ? undefined
            : positiveCount(str(flags, 'job-max-connections')!, '--job-max-connections'),
        id: str(flags, 'id'),
        secret: await readSecret(required(flags, 'secret-file')),
        tls: await serverTls(flags),
        logger: createLogger(`storage-node`),
      });
      return;
    }
    case 'tenant':
      return tenantCommand(rest);
    case 'bench':
      // perf/main.ts runs the benchmarks (bin/satchel.js sends `bench` there): deploy does not import perf.
      throw new SatchelError('BAD_REQUEST', 'bench: run it as `satchel bench` (bin/satchel.js), or `node --import tsx perf/main.ts bench`');
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(USAGE);
      return;
    default:
      throw new SatchelError('BAD_REQUEST', `unknown command ${JSON.stringify(command)}`);
  }
}

/** The flags that choose each port, by command, for PortInUseError's hint (keys: the error's `owner`). */
const PORT_FLAGS: Record<string, Record<string, string>> = {
  up: { controller: '--controller-port', console: '--console-port' },
  controller: { controller: '--port', console: '--console-port' },
  metadata: { 'metadata server': '--port', 'metrics endpoint': '--metrics-port' },
  'storage-node': { 'storage node': '--port', 'metrics endpoint': '--metrics-port', 'RESP front door': '--resp-port' },
};

main(process.argv.slice(2)).catch((error: unknown) => {
  if (error instanceof SatchelError && error.code === 'BAD_REQUEST') {
    process.stderr.write(`satchel: ${error.message}\n\n${USAGE}`);
    process.exit(2);
  }
  const message =
    error instanceof PortInUseError
      ? error.withFlag(PORT_FLAGS[process.argv[2] ?? ''] ?? {})
      : error instanceof Error
        ? error.message
        : String(error);
  process.stderr.write(`satchel: ${message}\n`);
  process.exit(1);
});

function withoutUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** Flag `--name` as a whole number from `min` to `max`, or undefined when not given. */
function wholeNumberOf(name: string, value: string | undefined, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!(Number.isInteger(n) && n >= min && n <= max))
    throw new SatchelError('BAD_REQUEST', `--${name}: expected a whole number from ${min} to ${max}, got ${JSON.stringify(value)}`);
  return n;
}

/** `--metadata-copies N`: 1 to 16. */
function metadataCopiesOf(value: string | undefined): number | undefined {
  return wholeNumberOf('metadata-copies', value, 1, 16);
}

/** `--spare-jobs N`: 0 to 64. */
function spareJobsOf(value: string | undefined): number | undefined {
  return wholeNumberOf('spare-jobs', value, 0, 64);
}

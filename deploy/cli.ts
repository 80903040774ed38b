/**
 * The `satchel` command. Every flag is listed in USAGE; an unknown flag or a bad value exits with status 2 and
 * says which. Server roles log JSON lines (pino) on stderr; `satchel up` prints the addresses on stdout.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { join, resolve } from 'node:path';
import { SatchelError, isTier, type ServerTls } from '../proto/index.ts';
import { LocalCluster, type AutoscaleOptions } from './local-cluster.ts';
import { TIER_PROFILES } from './tiers.ts';
import { createLogger } from './logger.ts';
import { parseBand, parseBytes, parseCount, parseMs, parsePort, parseTierCounts } from './options.ts';
import { PortInUseError } from './port-in-use.ts';
import { readSecret } from './secret.ts';
import { readTlsFiles, tlsFilesOf, type TlsFiles } from './tls.ts';
import { TENANT_USAGE, tenantCommand } from './tenant-command.ts';

const USAGE = `Usage: satchel <command> [flags]

  up                      the whole cluster on this machine (controller + console, metadata, storage nodes)
    --state-dir DIR         where cluster.json, the secret and logs go (default ./.satchel); one cluster
                            at a time: DIR/satchel.lock keeps a second one out
    --controller-port P     controller gRPC port (default 7070; 0 = any free port)
    --console-port P        console HTTP port (default 7071; 0 = any free port)
    --dram N, --ssd N, --hdd N   storage nodes per tier (default 1 each)
    --dram-capacity SIZE    bytes per DRAM node, e.g. 512MiB (default 1GiB)
    --ssd-capacity SIZE     bytes per SSD node (default 4GiB); data in DIR/data/<node>
    --hdd-capacity SIZE     bytes per HDD node (default 8GiB)
    --hdd-seek-ms MS        emulate a spinning disk's seek on HDD nodes (default off)
    --keep-logs             keep DIR/logs after stopping
    --tls-cert FILE --tls-key FILE --tls-ca FILE   every process serves TLS with this certificate (PEM; it
                            must name 127.0.0.1), clients check it against the CA; deploy/README.md has how
    --no-autoscale          keep the nodes started; otherwise the autoscaler adds and drains nodes (local
                            processes), never going below the counts above
    --band, --min-nodes, --max-nodes, --scale-up-after-ms, --scale-down-after-ms, --cooldown-ms   as for controller

  controller              the controller and its console, for containers
    --port P --console-port P --host H --secret-file FILE
    [--tls-cert FILE --tls-key FILE --tls-ca FILE]   serve TLS with this certificate and key (PEM), and check
                            the others' certificates against the CA (all three or none; tickets carry the CA);
                            also for metadata and storage-node. deploy/README.md: making them
    [--advertise HOST]      the host others dial when it is not --host (a pod binding 0.0.0.0); also for
                            metadata and storage-node
    [--state-dir DIR]       keep jobs, nodes and placements in DIR/controller.db across restarts
    [--lease-ms MS]         a job whose driver stops renewing is collected after MS (default 60000)
    [--node-timeout-ms MS]  a storage node silent this long is lost: replicated jobs get their copies restored
                            on the others (default 5000)
    [--token-ttl-ms MS]     job tokens (and the tickets carrying them) stop working after MS; a driver's lease
                            renewals bring fresh ones (default 86400000: a day)
    [--job-quota SIZE]      bytes a job may hold, every copy counted: past it its PUTs get FULL (default none)
    [--no-default-tenant]   no default tenant (its key derived from the secret, cluster.json tenantKey): jobs
                            only for tenants added with satchel tenant add
    [--console-host H]      the console's bind host (default: --host)
    [--provisioner none|local|kubernetes]   what starts and stops storage nodes (default none: by hand;
                            local: the parent satchel up; kubernetes: scales StatefulSets satchel-<tier>)
    [--namespace NS]        the Kubernetes namespace of those StatefulSets
    [--autoscale]           keep each tier's utilization inside the band (needs a provisioner):
    [--band LOW-HIGH]         percent of CPU, network or capacity (default 60-80)
    [--min-nodes T=N,…]       per tier (default dram=1,ssd=0,hdd=0); --max-nodes T=N,… (default 8 each)
    [--scale-up-after-ms MS]  above the band this long before a launch (default 2000)
    [--scale-down-after-ms MS]  below it this long before a drain (default 20000)
    [--cooldown-ms MS]        between two actions on a tier (default 10000)
  metadata                a metadata server
    --port P --host H --controller HOST:PORT --secret-file FILE [--advertise HOST]
    [--tls-cert FILE --tls-key FILE --tls-ca FILE]   gRPC over TLS, as for controller
    [--metrics-port P]      serve Prometheus /metrics on P (0: any free port); also for storage-node
  storage-node            a storage node
    --tier dram|ssd|hdd --port P --host H --controller HOST:PORT --secret-file FILE [--advertise HOST]
    [--tls-cert FILE --tls-key FILE --tls-ca FILE]   the data plane over TLS, as for controller
    [--path DIR]            data directory, required for ssd and hdd (wiped at start: data is ephemeral)
    [--capacity SIZE]       default 1GiB dram, 4GiB ssd, 8GiB hdd
    [--bandwidth BYTES/S]   declared to the controller; default 1G dram, 500M ssd, 150M hdd
    [--seek-ms MS] [--disk-bandwidth BYTES/S]   emulate a device (off by default)
    [--max-value SIZE] [--id ID] [--metrics-port P]
    [--job-max-connections N]   connections one job may open to the node (default 1024)

${TENANT_USAGE}
  bench micro             GET/PUT latency and throughput against Satchel and Redis in the same run
    --json FILE             write the results as JSON
    --redis HOST:PORT       use this Redis instead of starting redis-server
    --seconds S             time per measurement (default 1.5)
    --tier dram,ssd,hdd     which Satchel tiers to measure (default dram), each against the same Redis

  bench register          register + attach + first PUT while another job keeps the cluster busy, against a
                          new Redis connection + first SET
    --jobs N                how many (default 200)
    --json FILE, --redis HOST:PORT

  bench shuffle           a sort of 100-byte records by M map and R reduce functions (worker processes) on
                          Satchel and on Redis in the same run; every sort's output is verified
    --bytes SIZE            input size (default 1GiB)
    --mappers M, --reducers R   functions per stage (default 64 × 64)
    --concurrency N         functions running at once (default 8)
    --tier dram|ssd|hdd     the Satchel job's tier (default dram); --nodes N storage nodes of it (default 1)
    --cluster-file FILE     run the Satchel jobs on this cluster (satchel up's cluster.json: its controller
                            and tenantKey; e.g. to watch them in its console) instead of starting one; it is
                            left running
    --controller HOST:PORT --key KEY   the same without the file (KEY: cluster.json tenantKey, or a key
                            satchel tenant add printed; --key also overrides the file's)
    --redis-shards N        redis-servers to start, keys sharded by the client (default 1)
    --redis HOST:PORT[,…]   use these Redis servers instead of starting any
    --no-redis              no Redis baseline: Satchel rows only
    --function-mbps MBPS    cap each function's network at MBPS megabits/s (real functions: ~600)
    --rounds N              sorts per system, alternating which system goes first (default 1)
    --json FILE, --html FILE   write the results, and a report with charts

  bench jobs              staggered sorts on one cluster, sampling reserved and used bytes every second
    --jobs N                how many (default 3); --stagger S seconds between starts (default 2)
    --bytes SIZE            per job (default 256MiB); --mappers, --reducers (default 16 × 16)
    --cluster-file FILE     an existing cluster, and its console for the samples (read with its viewerToken)
    --controller HOST:PORT --key KEY --console URL --viewer-token TOKEN   the same without the file
    and the other flags of bench shuffle

  bench elasticity, bench drain   the autoscaler under a ramp, and a node drained under load (perf/README.md)

  bench wait              waiting for data: a waiter in another process learning of a put (Satchel waitFor vs
                          Redis BLPOP), and idle waiters parked on one node (memory, CPU) vs blocked Redis clients
    --notifications N       measured per system (default 1000)
    --waiters N             parked on the Satchel node (default 10000); --redis-waiters N (default 2000)
    --idle-seconds S        how long idle CPU is measured (default 10); --json FILE

  bench soak              mixed operations from many clients for minutes (short-lived DRAM and SSD jobs, values
                          over 1 MiB, incr, waitFor, every value read back checked); every interval: RSS and
                          open fds of each server, op p50/p99, ops, errors; exits 1 on errors or lost data
    --minutes N             length of the run (default 10; fractions allowed)
    --interval-seconds S    reporting period; the first is the warm-up (default 60)
    --processes N, --lanes N   client processes and requests in flight in each (default 4 × 16)
    --lanes-per-job N       functions sharing one job (default 4); --job-seconds S mean job life (default 10)
    --rate OPS/S            target operations per second over all clients (default 1000; 0 = flat out)
    --large-fraction F      share of operations writing a value over 1 MiB (default 0.02)
    --cluster-file FILE     an existing cluster (its servers watched if on this machine)
    --controller HOST:PORT --key KEY --console URL --viewer-token TOKEN   the same without the file
    --json FILE

  bench abuse             a well-behaved job (8 in flight, 1 KiB PUT/GET) alone, then under each attack in
                          turn from another process, then alone again: its p99 against the baseline, what
                          was refused or disconnected, node and controller RSS; exits 1 if the job had a failure
    --seconds S             each phase (default 10)
    --sse-seconds S         the stalled console streams' phase (default 30; the issue's figure: 300), after
                            half as long (at most 60 s) of job churn alone
    --hello-seconds S       the idle-connection phase at least (default 12: the node's HELLO deadline is 10 s)
    --rate OPS/S            the well-behaved job's rate (default 4000); --scale F the attacks' sizes (default 1)
    --attacks A,B,…         some of anonymous-register, huge-capacity, grow-loop, epoch-max, idle-connections,
                            stalled-watchers, long-waits, stalled-sse, internal-keys (default all)
    --json FILE

  help                    this text
`;

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
    'keep-logs': { type: 'boolean' },
    'no-autoscale': { type: 'boolean' },
    ...autoscaleFlags,
    ...tlsFlags,
  });
  const size = (flag: string) => (str(flags, flag) ? parseBytes(str(flags, flag)!, `--${flag}`) : undefined);
  const seek = str(flags, 'hdd-seek-ms');
  if (seek !== undefined && !(Number(seek) >= 0)) throw new SatchelError('BAD_REQUEST', `--hdd-seek-ms: not a number of milliseconds: ${JSON.stringify(seek)}`);
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
  // Autoscaling on by default, never below what was asked for at start.
  const autoscale = flags['no-autoscale'] === true ? undefined : { minNodes: counts, ...withoutUndefined(autoscaleOptions(flags)) };
  const started = Date.now();
  process.stdout.write(`starting Satchel in ${stateDir} ...\n`);
  const cluster = await LocalCluster.start({
    stateDir,
    controllerPort: parsePort(str(flags, 'controller-port') ?? '7070', '--controller-port'),
    consolePort: parsePort(str(flags, 'console-port') ?? '7071', '--console-port'),
    ...counts,
    autoscale,
    dramCapacity: size('dram-capacity'),
    ssdCapacity: size('ssd-capacity'),
    hddCapacity: size('hdd-capacity'),
    hddSeekMs: seek === undefined ? undefined : Number(seek),
    keepLogs: flags['keep-logs'] === true,
    tls,
    onReady: (m) => process.stdout.write(`  ${m.role.padEnd(12)} ${m.address}${m.id ? `  (${m.id})` : ''}\n`),
    onTakeover: ({ record, reason }) =>
      process.stdout.write(`  taking over ${stateDir} from a cluster that did not stop (${record === undefined ? '' : `started ${record.startedAt}, `}${reason})\n`),
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
  await new Promise<void>((resolveStop) => {
    const stop = (signal: string) => {
      process.stdout.write(`${signal}: stopping ...\n`);
      cluster.stop().then(resolveStop, resolveStop);
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
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
      if (flags.autoscale === true && provisioner === 'none') throw new SatchelError('BAD_REQUEST', '--autoscale needs --provisioner local or kubernetes');
      const namespace = str(flags, 'namespace');
      if (provisioner === 'kubernetes' && namespace === undefined) throw new SatchelError('BAD_REQUEST', '--provisioner kubernetes needs --namespace NS');
      const leaseMs = str(flags, 'lease-ms');
      if (leaseMs !== undefined && !(Number.isInteger(Number(leaseMs)) && Number(leaseMs) >= 100)) {
        throw new SatchelError('BAD_REQUEST', `--lease-ms: expected a whole number of milliseconds ≥ 100, got ${JSON.stringify(leaseMs)}`);
      }
      const tokenTtlMs = str(flags, 'token-ttl-ms');
      if (tokenTtlMs !== undefined && !(Number.isInteger(Number(tokenTtlMs)) && Number(tokenTtlMs) >= 1_000)) {
        throw new SatchelError('BAD_REQUEST', `--token-ttl-ms: expected a whole number of milliseconds ≥ 1000, got ${JSON.stringify(tokenTtlMs)}`);
      }
      const nodeTimeoutMs = str(flags, 'node-timeout-ms');
      // Reports come every second: less than two of them would call a busy node lost.
      if (nodeTimeoutMs !== undefined && !(Number.isInteger(Number(nodeTimeoutMs)) && Number(nodeTimeoutMs) >= 1_000)) {
        throw new SatchelError('BAD_REQUEST', `--node-timeout-ms: expected a whole number of milliseconds ≥ 1000, got ${JSON.stringify(nodeTimeoutMs)}`);
      }
      const { runController } = await import('./roles.ts');
      await runController({
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
      });
      const tier = str(flags, 'tier') ?? 'dram';
      if (!isTier(tier)) throw new SatchelError('BAD_REQUEST', `--tier: expected dram, ssd or hdd, got ${JSON.stringify(tier)}`);
      const profile = TIER_PROFILES[tier];
      const seekMs = str(flags, 'seek-ms');
      if (seekMs !== undefined && !(Number(seekMs) >= 0)) throw new SatchelError('BAD_REQUEST', `--seek-ms: not a number of milliseconds: ${JSON.stringify(seekMs)}`);
      const diskBandwidth = str(flags, 'disk-bandwidth');
      const { runStorageNode } = await import('./roles.ts');
      await runStorageNode({
        tier,
        path: str(flags, 'path'),
        metricsPort: str(flags, 'metrics-port') === undefined ? undefined : parsePort(str(flags, 'metrics-port')!, '--metrics-port'),
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
        maxConnectionsPerJob: str(flags, 'job-max-connections') === undefined ? undefined : positiveCount(str(flags, 'job-max-connections')!, '--job-max-connections'),
        id: str(flags, 'id'),
        secret: await readSecret(required(flags, 'secret-file')),
        tls: await serverTls(flags),
        logger: createLogger(`storage-node`),
      });
      return;
    }
    case 'tenant':
      return tenantCommand(rest);
    case 'bench': {
      const { runBench } = await import('../perf/index.ts');
      return runBench(rest);
    }
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
  'storage-node': { 'storage node': '--port', 'metrics endpoint': '--metrics-port' },
};

main(process.argv.slice(2)).catch((error: unknown) => {
  if (error instanceof SatchelError && error.code === 'BAD_REQUEST') {
    process.stderr.write(`satchel: ${error.message}\n\n${USAGE}`);
    process.exit(2);
  }
  const message = error instanceof PortInUseError ? error.withFlag(PORT_FLAGS[process.argv[2] ?? ''] ?? {}) : error instanceof Error ? error.message : String(error);
  process.stderr.write(`satchel: ${message}\n`);
  process.exit(1);
});

function withoutUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}

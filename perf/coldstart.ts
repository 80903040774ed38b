/**
 * `satchel bench coldstart` (issue 16): what a function pays to start using Satchel against ioredis, in the
 * same run. Two figures.
 *
 * Install footprint: the Satchel client as an outside user gets it (a tarball `npm pack` made, installed into
 * an empty project with `npm install --omit=dev`), and ioredis (the version in the repository's
 * package-lock.json) in another empty project: bytes of each node_modules, packages, native modules (a `.node`
 * file, a `binding.gyp` or a `prebuilds` folder in the package). The issue's target: Satchel ≤ 1.0× ioredis,
 * with no native module. (The install and what it measures: coldstart-footprint.ts.)
 *
 * Cold first GET: a fresh Node process per sample, from inside each temporary project, importing the client
 * by its package name, attaching with a ticket (Satchel) or connecting (ioredis) and reading a 1 KiB value
 * that exists, against a cluster of one DRAM node and a redis-server this bench starts. The child marks
 * `performance.now()` (milliseconds since its process began) as it starts running its script, after the
 * import, after attach/connect and once it holds the value; the parent times from just before spawn to the
 * value (both sides' `Date.now()`: the one clock two processes share) and to the child's exit. Samples alternate the two
 * systems, each preceded by one unreported warm-up (the process is cold; the files are in the page cache).
 */
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { type RegisteredJob, Satchel } from '../client/index.ts';
import { LocalCluster } from '../deploy/index.ts';
import { SatchelError } from '../proto/index.ts';
import { clientPackageDir, type Footprint, installInto, lockedVersion, npm, tail } from './coldstart-footprint.ts';
import { Progress } from './progress.ts';
import { RedisProcess } from './redis-server.ts';
import { round } from './stats.ts';

export const SYSTEMS = ['satchel', 'ioredis'] as const;
export type ColdstartSystem = (typeof SYSTEMS)[number];

export interface ColdstartOptions {
  /** Measured processes per system (each system also gets one unreported warm-up). */
  samples: number;
  /** A tarball of the Satchel client to install; when absent, `npm pack` of the package `packDir` holds. */
  clientTarball?: string;
  /** The folder to pack: the package named `satchel`, or a workspace root with such a workspace (default: the repo root). */
  packDir?: string;
  /** Keep the temporary projects here (created if needed) instead of a temporary folder removed at the end. */
  keepDir?: string;
  /** Size of the value read (1 KiB). */
  valueBytes: number;
  /** Per child process, and per npm command. */
  childTimeoutMs: number;
  npmTimeoutMs: number;
}

export interface ColdSample {
  system: ColdstartSystem;
  /** Parent: just before spawn → the child holds the value (Date.now() on both sides). */
  spawn_to_value_ms: number;
  /** Child: its process start (performance.timeOrigin) → the value. */
  in_process_ms: number;
  /** Parent: just before spawn → the child's exit. */
  wall_ms: number;
  /** Child: process start → its script runs (Node's own start-up). */
  boot_ms: number;
  import_ms: number;
  /** Satchel.attach(ticket), or new Redis() + connect(). */
  connect_ms: number;
  first_get_ms: number;
}

export interface Spread {
  median: number;
  p90: number;
}

export interface ColdSummary {
  samples: number;
  spawn_to_value_ms: Spread;
  in_process_ms: Spread;
  wall_ms: Spread;
  /** Medians of each phase in the child. */
  breakdown_ms: { boot: number; import: number; connect: number; first_get: number };
  /** The unreported warm-up sample. */
  warmup: ColdSample;
}

export interface ColdstartReport {
  client: {
    /** `npm pack` of this folder, or null when given --client-tarball. */
    packed_from: string | null;
    tarball: string;
    tarball_bytes: number;
    /** From `npm pack --json` (null for a given tarball). */
    unpacked_bytes: number | null;
    tarball_files: number | null;
  };
  ioredis_version: string;
  footprint: Record<ColdstartSystem, Footprint> & {
    ratio: { file_bytes: number; du_bytes: number; allocated_bytes: number; packages: number };
    targets: { satchel_bytes_le_1x_ioredis: boolean; satchel_zero_native_modules: boolean };
  };
  cold_first_get: Record<ColdstartSystem, ColdSummary> & {
    ratio: { spawn_to_value_median: number; spawn_to_value_p90: number; in_process_median: number; wall_median: number; wall_p90: number };
    value_bytes: number;
  };
  samples: ColdSample[];
}

/** Where the repository is: the nearest folder up from this file holding a package-lock.json (the workspace root after a split). */
export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package-lock.json'))) return dir;
    const up = dirname(dir);
    if (up === dir) throw new SatchelError('UNAVAILABLE', `no package-lock.json above ${fileURLToPath(import.meta.url)}`);
    dir = up;
  }
}

export async function runColdstart(options: ColdstartOptions): Promise<ColdstartReport> {
  const progress = new Progress('bench coldstart', 4 + 2 * (options.samples + 1));
  const root = repoRoot();
  const ioredisVersion = await lockedVersion(root, 'ioredis');
  const work = options.keepDir !== undefined ? resolve(options.keepDir) : await mkdtemp(join(tmpdir(), 'satchel-coldstart-'));
  let cluster: LocalCluster | null = null;
  let redisProcess: RedisProcess | null = null;
  let satchel: Satchel | null = null;
  let job: RegisteredJob | null = null;
  let redis: Redis | null = null;
  try {
    await mkdir(work, { recursive: true });
    // 1. The client's tarball, and the two projects.
    let client: ColdstartReport['client'];
    if (options.clientTarball !== undefined) {
      const tarball = resolve(options.clientTarball);
      const size = await stat(tarball).catch(() => {
        throw new SatchelError('BAD_REQUEST', `--client-tarball: cannot read ${tarball}`);
      });
      client = { packed_from: null, tarball, tarball_bytes: size.size, unpacked_bytes: null, tarball_files: null };
      progress.step(`tarball ${basename(tarball)}`);
    } else {
      const dir = await clientPackageDir(resolve(options.packDir ?? root));
      const packed = await mkdtemp(join(work, 'pack-'));
      // Packs what is built (`npm run build` first): the package's own build scripts are not run, so a tree
      // being edited elsewhere cannot fail the pack.
      const run = await npm(['pack', '--ignore-scripts', '--json', '--pack-destination', packed], dir, options.npmTimeoutMs);
      const info = (JSON.parse(run.stdout) as { filename: string; size: number; unpackedSize: number; entryCount: number }[])[0]!;
      const tarball = join(packed, basename(info.filename));
      client = { packed_from: dir, tarball, tarball_bytes: info.size, unpacked_bytes: info.unpackedSize, tarball_files: info.entryCount };
      progress.step(`packed ${info.filename} from ${dir}`);
    }
    const projects = { satchel: join(work, 'satchel-project'), ioredis: join(work, 'ioredis-project') };
    const satchelFootprint = await installInto(projects.satchel, client.tarball, basename(client.tarball), options.npmTimeoutMs);
    progress.step(
      `installed ${satchelFootprint.package}: ${mb(satchelFootprint.node_modules.file_bytes)}, ${satchelFootprint.packages} packages`,
    );
    const ioredisFootprint = await installInto(
      projects.ioredis,
      `ioredis@${ioredisVersion}`,
      `ioredis@${ioredisVersion}`,
      options.npmTimeoutMs,
    );
    progress.step(
      `installed ioredis@${ioredisVersion}: ${mb(ioredisFootprint.node_modules.file_bytes)}, ${ioredisFootprint.packages} packages`,
    );

    // 2. The servers, and the value each child reads.
    cluster = await LocalCluster.start({ dram: 1 });
    redisProcess = await RedisProcess.start();
    satchel = await Satchel.connect(cluster.controller, { key: cluster.tenantKey });
    job = await satchel.registerJob('bench-coldstart', { latencySensitive: true, capacity: 16 * 1024 * 1024 });
    const key = 'coldstart/value';
    const value = randomBytes(options.valueBytes);
    const sha256 = createHash('sha256').update(value).digest('hex');
    await job.put(key, value);
    redis = new Redis({ host: redisProcess.host, port: redisProcess.port, protocol: 2, lazyConnect: true, maxRetriesPerRequest: 1 });
    await redis.connect();
    await redis.set(key, value);
    progress.step('cluster and redis-server up, the value written to both');

    const scripts = {
      satchel: join(projects.satchel, 'coldstart-satchel.mjs'),
      ioredis: join(projects.ioredis, 'coldstart-ioredis.mjs'),
    };
    await writeFile(scripts.satchel, SATCHEL_CHILD);
    await writeFile(scripts.ioredis, IOREDIS_CHILD);
    const env: Record<ColdstartSystem, NodeJS.ProcessEnv> = {
      satchel: { COLDSTART_PACKAGE: satchelFootprint.package, COLDSTART_TICKET: job.ticket, COLDSTART_KEY: key, COLDSTART_SHA256: sha256 },
      ioredis: {
        COLDSTART_HOST: redisProcess.host,
        COLDSTART_PORT: String(redisProcess.port),
        COLDSTART_KEY: key,
        COLDSTART_SHA256: sha256,
      },
    };
    const one = (system: ColdstartSystem) => coldSample(system, scripts[system], env[system], options.childTimeoutMs);

    // 3. Cold first GETs: a warm-up each, then samples alternating which system goes first.
    const warmup = {} as Record<ColdstartSystem, ColdSample>;
    for (const system of SYSTEMS) {
      warmup[system] = await one(system);
      progress.step(`${system} warm-up: ${warmup[system].spawn_to_value_ms.toFixed(0)} ms`);
    }
    const samples: ColdSample[] = [];
    for (let i = 0; i < options.samples; i++) {
      const order = i % 2 === 0 ? SYSTEMS : [...SYSTEMS].reverse();
      for (const system of order) {
        const sample = await one(system);
        samples.push(sample);
        progress.step(`${system} ${i + 1}/${options.samples}: ${sample.spawn_to_value_ms.toFixed(0)} ms`);
      }
    }
    progress.end();

    const summary = (system: ColdstartSystem): ColdSummary => {
      const mine = samples.filter((s) => s.system === system);
      const median = (pick: (s: ColdSample) => number) => round(percentile(mine.map(pick), 50), 2);
      const spread = (pick: (s: ColdSample) => number): Spread => ({ median: median(pick), p90: round(percentile(mine.map(pick), 90), 2) });
      return {
        samples: mine.length,
        spawn_to_value_ms: spread((s) => s.spawn_to_value_ms),
        in_process_ms: spread((s) => s.in_process_ms),
        wall_ms: spread((s) => s.wall_ms),
        breakdown_ms: {
          boot: median((s) => s.boot_ms),
          import: median((s) => s.import_ms),
          connect: median((s) => s.connect_ms),
          first_get: median((s) => s.first_get_ms),
        },
        warmup: warmup[system],
      };
    };
    const cold = { satchel: summary('satchel'), ioredis: summary('ioredis') };
    const ratio = (a: number, b: number) => (b > 0 ? round(a / b, 2) : 0);
    const s = satchelFootprint;
    const r = ioredisFootprint;
    return {
      client: { ...client, tarball: options.clientTarball !== undefined ? client.tarball : basename(client.tarball) },
      ioredis_version: ioredisVersion,
      footprint: {
        satchel: s,
        ioredis: r,
        ratio: {
          file_bytes: ratio(s.node_modules.file_bytes, r.node_modules.file_bytes),
          du_bytes: ratio(s.node_modules.du_bytes, r.node_modules.du_bytes),
          allocated_bytes: ratio(s.node_modules.allocated_bytes, r.node_modules.allocated_bytes),
          packages: ratio(s.packages, r.packages),
        },
        targets: {
          satchel_bytes_le_1x_ioredis: s.node_modules.du_bytes <= r.node_modules.du_bytes,
          satchel_zero_native_modules: s.native_modules === 0,
        },
      },
      cold_first_get: {
        ...cold,
        ratio: {
          spawn_to_value_median: ratio(cold.satchel.spawn_to_value_ms.median, cold.ioredis.spawn_to_value_ms.median),
          spawn_to_value_p90: ratio(cold.satchel.spawn_to_value_ms.p90, cold.ioredis.spawn_to_value_ms.p90),
          in_process_median: ratio(cold.satchel.in_process_ms.median, cold.ioredis.in_process_ms.median),
          wall_median: ratio(cold.satchel.wall_ms.median, cold.ioredis.wall_ms.median),
          wall_p90: ratio(cold.satchel.wall_ms.p90, cold.ioredis.wall_ms.p90),
        },
        value_bytes: options.valueBytes,
      },
      samples,
    };
  } finally {
    await job?.deregister().catch(() => {});
    satchel?.close();
    redis?.disconnect();
    await redisProcess?.stop();
    await cluster?.stop();
    if (options.keepDir === undefined) await rm(work, { recursive: true, force: true });
  }
}

/**
 * The child processes. Plain ESM written into each project, so the client resolves by its package name from
 * that project's node_modules, as an outside user's code would. Only dynamic imports: the first mark is taken
 * before any of the client's code loads. The value is checked after the last mark.
 */
const CHILD_TAIL = `const { createHash } = await import('node:crypto');
const { writeSync } = await import('node:fs');
const sha256 = value === null ? null : createHash('sha256').update(value).digest('hex');
writeSync(1, JSON.stringify({ boot, imported, connected, read, at, bytes: value === null ? null : value.length, ok: sha256 === process.env.COLDSTART_SHA256 }) + '\\n');
`;

const SATCHEL_CHILD = `const boot = performance.now();
const { Satchel } = await import(process.env.COLDSTART_PACKAGE);
const imported = performance.now();
const job = await Satchel.attach(process.env.COLDSTART_TICKET);
const connected = performance.now();
const value = await job.get(process.env.COLDSTART_KEY);
const read = performance.now();
const at = Date.now();
await job.close();
${CHILD_TAIL}`;

const IOREDIS_CHILD = `const boot = performance.now();
const { Redis } = await import('ioredis');
const imported = performance.now();
const client = new Redis({ host: process.env.COLDSTART_HOST, port: Number(process.env.COLDSTART_PORT), protocol: 2, lazyConnect: true });
await client.connect();
const connected = performance.now();
const value = await client.getBuffer(process.env.COLDSTART_KEY);
const read = performance.now();
const at = Date.now();
client.disconnect();
${CHILD_TAIL}`;

interface ChildMarks {
  boot: number;
  imported: number;
  connected: number;
  read: number;
  at: number;
  bytes: number | null;
  ok: boolean;
}

async function coldSample(system: ColdstartSystem, script: string, extra: NodeJS.ProcessEnv, timeoutMs: number): Promise<ColdSample> {
  // The child starts clean: no --import or --require an outer run (tsx, a profiler) put in NODE_OPTIONS.
  const env = { ...process.env, ...extra };
  delete env.NODE_OPTIONS;
  const started = performance.now();
  // The wall clock on both sides: performance.timeOrigin + now() of a long-running parent drifts from a new
  // child's (seconds apart in one run here), so only Date.now() compares across processes (to the millisecond).
  const spawnedAt = Date.now();
  const child = spawn(process.execPath, [script], { cwd: dirname(script), env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const outcome = await new Promise<{ code: number | null; signal: NodeJS.Signals | null; error?: Error }>((done) => {
    child.once('error', (error) => done({ code: null, signal: null, error }));
    child.once('exit', (code, signal) => done({ code, signal }));
  });
  const wall = performance.now() - started;
  clearTimeout(timer);
  // 'exit' can come before the pipes are drained: wait for them to close.
  await Promise.all([child.stdout, child.stderr].map((s) => (s.closed ? null : new Promise((done) => s.once('close', done)))));
  const why =
    outcome.error?.message ?? (outcome.signal === 'SIGKILL' ? `killed after ${timeoutMs} ms` : (outcome.signal ?? `exit ${outcome.code}`));
  let marks: ChildMarks | null = null;
  try {
    marks = JSON.parse(stdout.trim().split('\n').at(-1) ?? '') as ChildMarks;
  } catch {
    // reported below
  }
  if (outcome.code !== 0 || marks === null) {
    throw new SatchelError('UNAVAILABLE', `bench coldstart: the ${system} process failed (${why}): ${tail(stderr || stdout)}`);
  }
  if (!marks.ok)
    throw new SatchelError(
      'UNAVAILABLE',
      `bench coldstart: the ${system} process read ${marks.bytes === null ? 'null' : `${marks.bytes} bytes`}, not the value written`,
    );
  return {
    system,
    spawn_to_value_ms: round(marks.at - spawnedAt, 2),
    in_process_ms: round(marks.read, 2),
    wall_ms: round(wall, 2),
    boot_ms: round(marks.boot, 2),
    import_ms: round(marks.imported - marks.boot, 2),
    connect_ms: round(marks.connected - marks.imported, 2),
    first_get_ms: round(marks.read - marks.connected, 2),
  };
}

/** Nearest rank, as stats.ts. */
function percentile(values: number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

function mb(bytes: number): string {
  return `${(bytes / 1e6).toFixed(1)} MB`;
}

/** The human summary: each figure for both, and Satchel's over ioredis's. */
export function coldstartText(report: ColdstartReport): string {
  const f = report.footprint;
  const c = report.cold_first_get;
  const x = (a: number, b: number) => (b > 0 ? `${(a / b).toFixed(2)}×` : '-');
  const row = (label: string, a: string, b: string, ratio: string) =>
    `${label.padEnd(30)} ${a.padStart(12)} ${b.padStart(12)} ${ratio.padStart(10)}`;
  const ms = (n: number) => n.toFixed(1);
  const lines = [
    `install footprint (npm install --omit=dev)  satchel: ${report.client.tarball}, ioredis@${report.ioredis_version}`,
    row('', 'satchel', 'ioredis', 'ratio'),
    row(
      'node_modules bytes (files)',
      mb(f.satchel.node_modules.file_bytes),
      mb(f.ioredis.node_modules.file_bytes),
      `${f.ratio.file_bytes.toFixed(2)}×`,
    ),
    row(
      'node_modules bytes (du -sb)',
      mb(f.satchel.node_modules.du_bytes),
      mb(f.ioredis.node_modules.du_bytes),
      `${f.ratio.du_bytes.toFixed(2)}×`,
    ),
    row(
      'on disk (du -s)',
      mb(f.satchel.node_modules.allocated_bytes),
      mb(f.ioredis.node_modules.allocated_bytes),
      `${f.ratio.allocated_bytes.toFixed(2)}×`,
    ),
    row(
      'files',
      String(f.satchel.node_modules.files),
      String(f.ioredis.node_modules.files),
      x(f.satchel.node_modules.files, f.ioredis.node_modules.files),
    ),
    row('packages', String(f.satchel.packages), String(f.ioredis.packages), `${f.ratio.packages.toFixed(2)}×`),
    row('native modules', String(f.satchel.native_modules), String(f.ioredis.native_modules), ''),
    row('npm install s', f.satchel.install_s.toFixed(1), f.ioredis.install_s.toFixed(1), x(f.satchel.install_s, f.ioredis.install_s)),
  ];
  if (f.satchel.native.length > 0)
    lines.push(`  satchel's native modules: ${f.satchel.native.map((n) => `${n.name}@${n.version}`).join(', ')}`);
  lines.push(
    '',
    `cold first GET of ${c.value_bytes} B, a new process each, ${c.satchel.samples} samples each (median / p90, ms)`,
    row('', 'satchel', 'ioredis', 'ratio'),
    row(
      'spawn → value',
      `${ms(c.satchel.spawn_to_value_ms.median)} / ${ms(c.satchel.spawn_to_value_ms.p90)}`,
      `${ms(c.ioredis.spawn_to_value_ms.median)} / ${ms(c.ioredis.spawn_to_value_ms.p90)}`,
      `${c.ratio.spawn_to_value_median.toFixed(2)}×`,
    ),
    row(
      'process start → value',
      `${ms(c.satchel.in_process_ms.median)} / ${ms(c.satchel.in_process_ms.p90)}`,
      `${ms(c.ioredis.in_process_ms.median)} / ${ms(c.ioredis.in_process_ms.p90)}`,
      `${c.ratio.in_process_median.toFixed(2)}×`,
    ),
    row(
      '  node start-up',
      ms(c.satchel.breakdown_ms.boot),
      ms(c.ioredis.breakdown_ms.boot),
      x(c.satchel.breakdown_ms.boot, c.ioredis.breakdown_ms.boot),
    ),
    row(
      '  import',
      ms(c.satchel.breakdown_ms.import),
      ms(c.ioredis.breakdown_ms.import),
      x(c.satchel.breakdown_ms.import, c.ioredis.breakdown_ms.import),
    ),
    row(
      '  attach / connect',
      ms(c.satchel.breakdown_ms.connect),
      ms(c.ioredis.breakdown_ms.connect),
      x(c.satchel.breakdown_ms.connect, c.ioredis.breakdown_ms.connect),
    ),
    row(
      '  first GET',
      ms(c.satchel.breakdown_ms.first_get),
      ms(c.ioredis.breakdown_ms.first_get),
      x(c.satchel.breakdown_ms.first_get, c.ioredis.breakdown_ms.first_get),
    ),
    row(
      'spawn → exit',
      `${ms(c.satchel.wall_ms.median)} / ${ms(c.satchel.wall_ms.p90)}`,
      `${ms(c.ioredis.wall_ms.median)} / ${ms(c.ioredis.wall_ms.p90)}`,
      `${c.ratio.wall_median.toFixed(2)}×`,
    ),
    '',
    `targets (issue 16): satchel ≤ 1.0× ioredis on disk: ${f.targets.satchel_bytes_le_1x_ioredis ? 'ok' : 'MISSED'}; zero native modules: ${f.targets.satchel_zero_native_modules ? 'ok' : 'MISSED'}`,
  );
  return lines.join('\n') + '\n';
}

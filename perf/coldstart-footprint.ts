/**
 * The install footprint half of `satchel bench coldstart`: a package installed into an empty project as an
 * outside user gets it (`npm install --omit=dev`), and what landed in its node_modules: files and bytes (as
 * `du`), package folders, native modules, install scripts. Also where the client's package is to pack, and the
 * ioredis version the repository locks.
 */
import { spawn } from 'node:child_process';
import { lstat, mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { SatchelError } from '../proto/index.ts';
import { round } from './stats.ts';

export interface DiskUsage {
  /** Regular files under node_modules. */
  files: number;
  /** Sum of their sizes. */
  file_bytes: number;
  /** As `du -sb`: apparent sizes of files, folders and symlinks, hard links once. */
  du_bytes: number;
  /** Blocks allocated on disk (`du -s` in bytes). */
  allocated_bytes: number;
}

export interface NativeModule {
  name: string;
  version: string;
  node_files: number;
  binding_gyp: boolean;
  prebuilds: boolean;
}

export interface Footprint {
  /** What `npm install` was given: the tarball's file name, or `ioredis@VERSION`. */
  spec: string;
  /** The package name the child imports, and its installed version. */
  package: string;
  version: string;
  install_s: number;
  node_modules: DiskUsage;
  packages: number;
  native_modules: number;
  native: NativeModule[];
  /** Packages declaring a preinstall, install or postinstall script (npm may not have run them: allowScripts). */
  install_scripts: { name: string; version: string; scripts: Record<string, string> }[];
}

/** `npm init -y`, then `npm install --omit=dev` of one spec into an empty project; then what landed in node_modules. */
export async function installInto(project: string, spec: string, shown: string, timeoutMs: number): Promise<Footprint> {
  await rm(project, { recursive: true, force: true });
  await mkdir(project, { recursive: true });
  await npm(['init', '-y'], project, timeoutMs);
  const started = performance.now();
  await npm(['install', '--omit=dev', '--no-audit', '--no-fund', spec], project, timeoutMs);
  const installSeconds = (performance.now() - started) / 1000;
  // The package the project now depends on is the one the child imports (npm names a tarball's by its package.json).
  const manifest = JSON.parse(await readFile(join(project, 'package.json'), 'utf8')) as { dependencies?: Record<string, string> };
  const name = Object.keys(manifest.dependencies ?? {})[0];
  if (name === undefined)
    throw new SatchelError('UNAVAILABLE', `bench coldstart: npm install ${shown} added no dependency to ${project}/package.json`);
  const nodeModules = join(project, 'node_modules');
  const packages = await packagesIn(nodeModules);
  const installed = packages.find((p) => p.name === name && p.dir === join(nodeModules, name));
  const native = packages.filter((p) => p.native.node_files > 0 || p.native.binding_gyp || p.native.prebuilds);
  return {
    spec: shown,
    package: name,
    version: installed?.version ?? '',
    install_s: round(installSeconds, 2),
    node_modules: await diskUsage(nodeModules),
    packages: packages.length,
    native_modules: native.length,
    native: native.map((p) => ({ name: p.name, version: p.version, ...p.native })),
    install_scripts: packages
      .filter((p) => Object.keys(p.installScripts).length > 0)
      .map((p) => ({ name: p.name, version: p.version, scripts: p.installScripts })),
  };
}

interface PackageFolder {
  dir: string;
  name: string;
  version: string;
  installScripts: Record<string, string>;
  native: { node_files: number; binding_gyp: boolean; prebuilds: boolean };
}

/** Every package folder under a node_modules (`name`, `@scope/name`, and theirs nested), with its native parts. */
export async function packagesIn(nodeModules: string): Promise<PackageFolder[]> {
  const found: PackageFolder[] = [];
  const visitNodeModules = async (dir: string): Promise<void> => {
    for (const entry of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
      if (!entry.isDirectory() || entry.name.startsWith('.')) continue;
      if (entry.name.startsWith('@')) {
        for (const scoped of await readdir(join(dir, entry.name), { withFileTypes: true })) {
          if (scoped.isDirectory()) await visitPackage(join(dir, entry.name, scoped.name));
        }
      } else {
        await visitPackage(join(dir, entry.name));
      }
    }
  };
  const visitPackage = async (dir: string): Promise<void> => {
    let manifest: { name?: string; version?: string; scripts?: Record<string, string> };
    try {
      manifest = JSON.parse(await readFile(join(dir, 'package.json'), 'utf8')) as typeof manifest;
    } catch {
      return; // not a package (a stray folder)
    }
    const native = { node_files: 0, binding_gyp: false, prebuilds: false };
    const scan = async (folder: string): Promise<void> => {
      for (const entry of await readdir(folder, { withFileTypes: true })) {
        const path = join(folder, entry.name);
        if (entry.isDirectory()) {
          if (entry.name === 'node_modules') await visitNodeModules(path);
          else {
            if (entry.name === 'prebuilds') native.prebuilds = true;
            await scan(path);
          }
        } else if (entry.isFile()) {
          if (entry.name.endsWith('.node')) native.node_files++;
          if (entry.name === 'binding.gyp') native.binding_gyp = true;
        }
      }
    };
    await scan(dir);
    const installScripts: Record<string, string> = {};
    for (const hook of ['preinstall', 'install', 'postinstall']) {
      const script = manifest.scripts?.[hook];
      if (typeof script === 'string') installScripts[hook] = script;
    }
    found.push({ dir, name: manifest.name ?? basename(dir), version: manifest.version ?? '', installScripts, native });
  };
  await visitNodeModules(nodeModules);
  return found.sort((a, b) => a.dir.localeCompare(b.dir));
}

/** Sizes under a folder, without following symlinks, each inode once (as du). */
export async function diskUsage(root: string): Promise<DiskUsage> {
  const usage: DiskUsage = { files: 0, file_bytes: 0, du_bytes: 0, allocated_bytes: 0 };
  const seen = new Set<string>();
  const visit = async (path: string): Promise<void> => {
    const info = await lstat(path, { bigint: false });
    const id = `${info.dev}:${info.ino}`;
    if (seen.has(id)) return;
    seen.add(id);
    usage.du_bytes += info.size;
    usage.allocated_bytes += info.blocks * 512;
    if (info.isFile()) {
      usage.files++;
      usage.file_bytes += info.size;
    } else if (info.isDirectory()) {
      for (const name of await readdir(path)) await visit(join(path, name));
    }
  };
  await visit(root);
  return usage;
}

/**
 * The folder holding the package named `satchel`: `dir` itself, or (after the split into npm workspaces) the
 * workspace of that name under it.
 */
export async function clientPackageDir(dir: string): Promise<string> {
  const manifest = await readManifest(dir);
  if (manifest === null) throw new SatchelError('BAD_REQUEST', `--pack-dir: no package.json in ${dir}`);
  if (manifest.name === 'satchel') return dir;
  const patterns = Array.isArray(manifest.workspaces) ? manifest.workspaces : (manifest.workspaces?.packages ?? []);
  for (const pattern of patterns) {
    const candidates = pattern.endsWith('/*')
      ? (await readdir(join(dir, pattern.slice(0, -2)), { withFileTypes: true }).catch(() => []))
          .filter((e) => e.isDirectory())
          .map((e) => join(dir, pattern.slice(0, -2), e.name))
      : [join(dir, pattern)];
    for (const candidate of candidates) if ((await readManifest(candidate))?.name === 'satchel') return candidate;
  }
  throw new SatchelError(
    'BAD_REQUEST',
    `--pack-dir: ${dir} holds ${JSON.stringify(manifest.name)}, and no workspace named satchel; pass --pack-dir DIR or --client-tarball FILE`,
  );
}

async function readManifest(dir: string): Promise<{ name?: string; workspaces?: string[] | { packages?: string[] } } | null> {
  try {
    return JSON.parse(await readFile(join(dir, 'package.json'), 'utf8')) as {
      name?: string;
      workspaces?: string[] | { packages?: string[] };
    };
  } catch {
    return null;
  }
}

/** The version of `name` the repository's package-lock.json installs (top level first). */
export async function lockedVersion(root: string, name: string): Promise<string> {
  const lock = JSON.parse(await readFile(join(root, 'package-lock.json'), 'utf8')) as { packages?: Record<string, { version?: string }> };
  const packages = lock.packages ?? {};
  const path = Object.keys(packages)
    .filter((p) => p === `node_modules/${name}` || p.endsWith(`/node_modules/${name}`))
    .sort((a, b) => a.length - b.length)[0];
  const version = path === undefined ? undefined : packages[path]?.version;
  if (version === undefined) throw new SatchelError('UNAVAILABLE', `bench coldstart: ${name} is not in ${join(root, 'package-lock.json')}`);
  return version;
}

/** Runs npm in `cwd`. The environment an outer `npm run` sets for its script (its prefix, its package) is left out. */
export function npm(args: string[], cwd: string, timeoutMs: number): Promise<{ stdout: string; stderr: string }> {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^npm_(package_|lifecycle_|config_(local_|global_)?prefix$)/i.test(k) || k === 'INIT_CWD') continue;
    env[k] = v;
  }
  delete env.NODE_OPTIONS;
  return new Promise((done, fail) => {
    const child = spawn('npm', args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      fail(new SatchelError('UNAVAILABLE', `bench coldstart: cannot run npm (${error.message})`));
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) done({ stdout, stderr });
      else
        fail(
          new SatchelError(
            'UNAVAILABLE',
            `bench coldstart: npm ${args.join(' ')} in ${cwd} failed (${signal === 'SIGKILL' ? `no answer in ${timeoutMs / 1000} s` : (signal ?? `exit ${code}`)}): ${tail(stderr)}`,
          ),
        );
    });
  });
}

export function tail(text: string): string {
  const lines = text.trim().split('\n');
  return lines.slice(-8).join('\n');
}

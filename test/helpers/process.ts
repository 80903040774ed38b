/** Helpers for tests that run Satchel's processes: spawn with captured output, check PIDs. */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface Finished {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs a TypeScript file of this repository with `node --import tsx`, collecting its output — or its build in
 * dist/ without tsx when SATCHEL_ROLE_CLI is set (the e2e tier builds first and sets it, deploy/child-process.ts):
 * tsx costs a process ~0.75 s of CPU to start, and these tests start hundreds of CLIs.
 */
export function runTs(file: string, args: string[], options: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<Finished> {
  const child = spawnTs(file, args, options.env);
  return finished(child, options.timeoutMs ?? 30_000);
}

export function spawnTs(file: string, args: string[], env?: NodeJS.ProcessEnv): ChildProcess {
  const built = process.env.SATCHEL_ROLE_CLI ? builtOf(file) : undefined;
  return spawn(process.execPath, built === undefined ? ['--import', 'tsx', file, ...args] : [built, ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** dist/'s build of a source file of this repository (`deploy/cli.ts` → `dist/deploy/cli.js`), if there is one. */
function builtOf(file: string): string | undefined {
  const source = relative(ROOT, resolve(ROOT, file));
  if (!source.endsWith('.ts') || source.startsWith('..')) return undefined;
  const built = join(ROOT, 'dist', `${source.slice(0, -'.ts'.length)}.js`);
  return existsSync(built) ? built : undefined;
}

/** Waits for a child to exit (SIGKILL after `timeoutMs`, so a hung child fails the test instead of hanging it). */
export function finished(child: ChildProcess, timeoutMs = 30_000): Promise<Finished> {
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** True while a process with this PID exists (and is not a zombie). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    // A zombie still answers kill(0); /proc (where there is one) says it is gone.
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return true;
  }
}

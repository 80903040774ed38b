/**
 * What every `satchel bench` command shares: its flags parsed strictly (a bad one is BAD_REQUEST, which main.ts
 * turns into exit 2 with the usage), and what each report says about how it ran — the command without its
 * secrets, the options without the tenant key, the machine.
 */
import os from 'node:os';
import { parseArgs } from 'node:util';
import { SatchelError } from '../proto/index.ts';
import type { ExistingCluster } from './cluster-access.ts';

type FlagOptions = Record<string, { type: 'string' | 'boolean' }>;
/** The flags given, by name: a string flag's text, a boolean flag's presence (what parseArgs gives, named here so
 * that an exported function can return it). */
type FlagValues<T extends FlagOptions> = { -readonly [K in keyof T]?: T[K]['type'] extends 'boolean' ? boolean : string };

/** Strict: an unknown flag or a stray argument is BAD_REQUEST, never a run with the typo silently ignored. */
export function parseFlags<T extends FlagOptions>(args: string[], options: T): FlagValues<T> {
  try {
    return parseArgs({ args, strict: true, allowPositionals: false, options }).values as FlagValues<T>;
  } catch (error) {
    throw new SatchelError('BAD_REQUEST', (error as Error).message);
  }
}

/** A flag's whole number from `min` to `max`, or `fallback` when the flag is absent. */
export function whole(text: string | undefined, fallback: number, flag: string, min = 1, max = 100_000): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isInteger(n) || n < min || n > max)
    throw new SatchelError('BAD_REQUEST', `${flag}: expected a whole number from ${min} to ${max}, got ${JSON.stringify(text)}`);
  return n;
}

/** Options as a report shows them: an existing cluster by its addresses, never its tenant key or token. */
export function reportedOptions<T extends { redis?: unknown; cluster?: ExistingCluster }>(options: T): Record<string, unknown> {
  const { cluster, ...rest } = options;
  return {
    ...rest,
    redis: undefined,
    cluster: cluster === undefined ? undefined : { controller: cluster.controller, console: cluster.console },
  };
}

/** The command as reports show it: secrets given as flags (a tenant key, a console token) left out. */
export function commandLine(name: string, args: string[]): string {
  const secret = new Set(['--key', '--viewer-token']);
  const shown = args.map((arg, i) => {
    const eq = arg.indexOf('=');
    if (eq > 0 && secret.has(arg.slice(0, eq))) return `${arg.slice(0, eq)}=…`;
    return i > 0 && secret.has(args[i - 1]!) ? '…' : arg;
  });
  return ['satchel', 'bench', name, ...shown].join(' ');
}

/** What the figures were measured on: reports from different machines do not compare. */
export function machine() {
  return {
    cpus: os.cpus().length,
    cpu: os.cpus()[0]?.model ?? 'unknown',
    memory_bytes: os.totalmem(),
    node: process.version,
    platform: `${os.platform()} ${os.release()}`,
  };
}

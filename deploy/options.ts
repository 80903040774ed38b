import { SatchelError } from '../proto/index.ts';

const UNITS: Record<string, number> = {
  '': 1, b: 1,
  k: 1e3, kb: 1e3, kib: 1024,
  m: 1e6, mb: 1e6, mib: 1024 ** 2,
  g: 1e9, gb: 1e9, gib: 1024 ** 3,
  t: 1e12, tb: 1e12, tib: 1024 ** 4,
};

/** "512MiB", "1.5GB", "1048576" → bytes. */
export function parseBytes(text: string, flag: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(text);
  const unit = match ? UNITS[match[2]!.toLowerCase()] : undefined;
  if (!match || unit === undefined) throw new SatchelError('BAD_REQUEST', `${flag}: not a size: ${JSON.stringify(text)} (try 512MiB or 2GiB)`);
  return Math.round(Number(match[1]) * unit);
}

/** A port number; 0 means any free port. */
export function parsePort(text: string, flag: string): number {
  const port = Number(text);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new SatchelError('BAD_REQUEST', `${flag}: not a port: ${JSON.stringify(text)}`);
  return port;
}

export function parseCount(text: string, flag: string, max = 64): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0 || n > max) throw new SatchelError('BAD_REQUEST', `${flag}: expected a whole number from 0 to ${max}, got ${JSON.stringify(text)}`);
  return n;
}

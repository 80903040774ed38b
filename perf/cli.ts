import { writeFile } from 'node:fs/promises';
import os from 'node:os';
import { parseArgs } from 'node:util';
import { SatchelError } from '../proto/index.ts';
import type { Tier } from '../storage-node/index.ts';
import { formatSize, runMicro, type MicroRow } from './micro.ts';
import { runRegister } from './register.ts';

/** `satchel bench <name> [flags]`. */
export async function runBench(args: string[]): Promise<void> {
  const [name, ...rest] = args;
  switch (name) {
    case 'micro':
      return micro(rest);
    case 'register':
      return register(rest);
    default:
      throw new SatchelError('BAD_REQUEST', `unknown benchmark ${JSON.stringify(name ?? '')} (available: micro, register)`);
  }
}

async function micro(args: string[]): Promise<void> {
  let values;
  try {
    values = parseArgs({
      args,
      strict: true,
      options: {
        json: { type: 'string' },
        redis: { type: 'string' },
        seconds: { type: 'string' },
        sizes: { type: 'string' },
        concurrency: { type: 'string' },
        tier: { type: 'string' },
      },
    }).values;
  } catch (error) {
    throw new SatchelError('BAD_REQUEST', (error as Error).message);
  }
  const seconds = Number(values.seconds ?? '1.5');
  if (!(seconds > 0)) throw new SatchelError('BAD_REQUEST', '--seconds must be a positive number');
  const list = (text: string | undefined, fallback: number[], flag: string) => {
    if (text === undefined) return fallback;
    const numbers = text.split(',').map(Number);
    if (numbers.some((n) => !Number.isInteger(n) || n <= 0)) throw new SatchelError('BAD_REQUEST', `${flag}: expected positive whole numbers separated by commas`);
    return numbers;
  };
  const tiers = (values.tier ?? 'dram').split(',');
  for (const tier of tiers) {
    if (tier !== 'dram' && tier !== 'ssd' && tier !== 'hdd') throw new SatchelError('BAD_REQUEST', `--tier: expected dram, ssd or hdd (comma-separated), got ${JSON.stringify(tier)}`);
  }
  const rows = await runMicro({
    tiers: tiers as Tier[],
    sizes: list(values.sizes, [1024, 64 * 1024, 1024 * 1024], '--sizes'),
    concurrencies: list(values.concurrency, [1, 64], '--concurrency'),
    ops: ['get', 'put'],
    seconds,
    warmupSeconds: Math.min(0.5, seconds / 3),
    redis: values.redis,
  });
  const report = { benchmark: 'micro', date: new Date().toISOString(), machine: machine(), results: rows };
  if (values.json) await writeFile(values.json, JSON.stringify(report, null, 2) + '\n');
  process.stdout.write(table(rows));
  if (values.json) process.stdout.write(`results written to ${values.json}\n`);
}

async function register(args: string[]): Promise<void> {
  let values;
  try {
    values = parseArgs({ args, strict: true, options: { json: { type: 'string' }, redis: { type: 'string' }, jobs: { type: 'string' } } }).values;
  } catch (error) {
    throw new SatchelError('BAD_REQUEST', (error as Error).message);
  }
  const jobs = Number(values.jobs ?? '200');
  if (!Number.isInteger(jobs) || jobs < 1) throw new SatchelError('BAD_REQUEST', '--jobs must be a positive whole number');
  const rows = await runRegister({ jobs, backgroundInFlight: 16, redis: values.redis });
  const report = { benchmark: 'register', date: new Date().toISOString(), machine: machine(), results: rows };
  if (values.json) await writeFile(values.json, JSON.stringify(report, null, 2) + '\n');
  for (const row of rows) {
    process.stdout.write(`${row.system.padEnd(13)} ${row.op.padEnd(20)} p50 ${(row.p50_us / 1000).toFixed(2)} ms  p99 ${(row.p99_us / 1000).toFixed(2)} ms  (${row.count} times, background ${row.background_ops_per_s} ops/s)\n`);
  }
}

function machine() {
  return { cpus: os.cpus().length, cpu: os.cpus()[0]?.model ?? 'unknown', memory_bytes: os.totalmem(), node: process.version, platform: `${os.platform()} ${os.release()}` };
}

/** The human summary: Satchel against Redis, cell by cell, with the ratio that the targets are stated in. */
function table(rows: MicroRow[]): string {
  const lines = ['op   size    inflight  system         p50 µs   p99 µs     ops/s        MB/s   vs redis'];
  for (const row of rows) {
    const base = rows.find((r) => r.system === 'redis' && r.op === row.op && r.size === row.size && r.concurrency === row.concurrency);
    const ratio = row.system !== 'redis' && base ? `${(row.ops_per_s / base.ops_per_s).toFixed(2)}× ops, p50 ${(row.p50_us / base.p50_us).toFixed(2)}×` : '';
    lines.push(
      `${row.op.padEnd(4)} ${formatSize(row.size).padEnd(7)} ${String(row.concurrency).padStart(8)}  ${row.system.padEnd(13)} ${row.p50_us.toFixed(1).padStart(8)} ${row.p99_us.toFixed(1).padStart(8)} ${String(row.ops_per_s).padStart(9)} ${(row.bytes_per_s / 1e6).toFixed(1).padStart(11)}   ${ratio}`,
    );
  }
  return lines.join('\n') + '\n';
}

/** Assertion helpers shared by the test files. */
import type { ExecutionContext } from 'ava';
import { SatchelError } from '../../proto/index.ts';

/** Awaits a rejection and checks it is a SatchelError (callers then check its code). */
export async function rejection(t: ExecutionContext, promise: Promise<unknown>): Promise<SatchelError> {
  const error = await t.throwsAsync(promise);
  t.true(error instanceof SatchelError, String(error));
  return error as SatchelError;
}

/** Deterministic bytes that differ at every offset and per seed, so a misplaced block shows. */
export function pattern(length: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i++) b[i] = (i * 7 + seed + (i >> 11)) & 0xff;
  return b;
}

/**
 * Attaches from a ticket and makes one call. Attaching does no round trip when the ticket carries the
 * placement, so a revoked or forged ticket shows on the first call, which is what this returns.
 */
export async function firstCall(ticket: string): Promise<unknown> {
  const { Satchel } = await import('../../client/index.ts');
  const job = await Satchel.attach(ticket, { timeoutMs: 5_000 });
  try {
    return await job.get('probe');
  } finally {
    await job.close();
  }
}

/** The same ticket without its placement snapshot: attaching asks the metadata server. */
export function withoutPlacement(ticket: string): string {
  const parsed = JSON.parse(Buffer.from(ticket.slice(4), 'base64url').toString('utf8')) as Record<string, unknown>;
  delete parsed.placement;
  return `st1_${Buffer.from(JSON.stringify(parsed)).toString('base64url')}`;
}

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

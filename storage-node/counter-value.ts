// What a counter is on a node: decimal text of a safe integer. INCR of the frame protocol (session.ts) and of RESP
// (resp/) read totals the same way.
import { Flag } from '../proto/index.ts';
import type { StoredEntry } from './engine.ts';

/** A counter's total: decimal text of a safe integer (at most 16 digits and a sign); null for anything else. */
export function counterValue(entry: StoredEntry): number | null {
  const { value } = entry;
  if ((entry.flags & Flag.MANIFEST) !== 0 || value.length === 0 || value.length > 17) return null;
  const text = value.toString('latin1');
  if (!/^-?\d+$/.test(text)) return null;
  const n = Number(text);
  return Number.isSafeInteger(n) ? n : null;
}

/**
 * Connections of closed job handles, kept open a few seconds for the next handle of the same token in this
 * process. A serverless function's warm invocations attach the same ticket again and again, and a new
 * connection's first call took ~1 ms here against ~0.15 ms for the next (a Node.js connect alone is 0.5 ms to its
 * connect event on this VM): under `bench soak` those first calls were 3.5 % of all operations and the slowest of
 * them (perf/RESULTS.md, 2026-12-07 evening). A kept connection does not keep the process alive, and one its node
 * closes meanwhile is simply opened again by its next call.
 */
import type { NodeConnection } from '../proto/index.ts';

/** How long a connection is kept unused before it is closed. */
export const IDLE_KEPT_MS = 5_000;
/** At most this many are kept in a process; past it the one kept longest is closed. */
export const MAX_IDLE_KEPT = 64;

interface Kept {
  key: string;
  connection: NodeConnection;
  timer: NodeJS.Timeout;
}

const kept: Kept[] = [];

/** Connections differ by node, token (the job and its scope) and the handle's timeout; nothing else of a handle reaches them. */
const keyOf = (address: string, token: string, timeoutMs: number) => `${timeoutMs} ${address} ${token}`;

/** A kept connection to `address` opened with `token` and `timeoutMs`, now the caller's; undefined if none. */
export function takeIdle(address: string, token: string, timeoutMs: number): NodeConnection | undefined {
  const key = keyOf(address, token, timeoutMs);
  for (let i = kept.length - 1; i >= 0; i--) {
    const entry = kept[i]!;
    if (entry.key !== key) continue;
    kept.splice(i, 1);
    clearTimeout(entry.timer);
    entry.connection.holdProcess(true);
    return entry.connection;
  }
  return undefined;
}

/**
 * Closes `connection` once what it carries is answered, or keeps it for the next handle of its token when it is
 * open and idle then (`NodeConnection.quiesce`).
 */
export async function closeOrKeep(connection: NodeConnection, timeoutMs: number): Promise<void> {
  if (!(await connection.quiesce())) return connection.close();
  if (kept.length >= MAX_IDLE_KEPT) forget(kept[0]!);
  const entry: Kept = {
    key: keyOf(connection.address, connection.token, timeoutMs),
    connection,
    timer: setTimeout(() => forget(entry), IDLE_KEPT_MS).unref(),
  };
  connection.holdProcess(false);
  kept.push(entry);
}

/** Closes every kept connection opened with `token`: its job was deregistered. */
export function closeIdleOf(token: string): void {
  for (const entry of kept.filter((e) => e.connection.token === token)) forget(entry);
}

function forget(entry: Kept): void {
  const at = kept.indexOf(entry);
  if (at >= 0) kept.splice(at, 1);
  clearTimeout(entry.timer);
  void entry.connection.close();
}

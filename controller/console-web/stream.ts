/**
 * The live stream, `GET /api/stream`: server-sent events (`events` once, `history` once, then `snapshot` every
 * second and `cluster-event` as they happen), read with fetch rather than EventSource, which can neither send
 * the token in a header nor tell a refused token (401) from a dropped connection. Reconnects after a failure
 * (1 s, doubling to 15 s).
 */
import { getAccessToken } from './session.ts';
import { setConnection } from './status.ts';
import type { ClusterEvent, HistoryPoint, Snapshot } from './types.ts';

export interface StreamHandlers {
  snapshot(snapshot: Snapshot): void;
  history(points: HistoryPoint[]): void;
  events(events: ClusterEvent[]): void;
  /** The console refused the token (401): the stream is stopped. */
  refused(): void;
  /** Each time the stream is (re)opened. */
  opened(): void;
}

let abort: AbortController | null = null;
let retryTimer: ReturnType<typeof setTimeout> | null = null;
let retryMs = 1000;

/** One event block (the lines between blank lines): its type, and its data parsed as JSON. */
function dispatch(block: string, handlers: StreamHandlers): void {
  let type = 'message';
  const data: string[] = [];
  for (const line of block.split('\n')) {
    if (line.startsWith('event:')) type = line.slice(6).trim();
    else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
  }
  if (data.length === 0) return;
  let parsed: unknown;
  try {
    parsed = JSON.parse(data.join('\n'));
  } catch (error) {
    console.error('bad event from /api/stream', type, error);
    return;
  }
  if (parsed === null) return;
  if (type === 'snapshot') handlers.snapshot(parsed as Snapshot);
  else if (type === 'history' && Array.isArray(parsed)) handlers.history(parsed as HistoryPoint[]);
  else if (type === 'events' && Array.isArray(parsed)) handlers.events(parsed as ClusterEvent[]);
  else if (type === 'cluster-event') handlers.events([parsed as ClusterEvent]);
}

/** Reads the stream until it ends or fails (throws), or resolves 'unauthorized' when the token is refused. */
async function read(token: string, signal: AbortSignal, handlers: StreamHandlers): Promise<'unauthorized'> {
  const response = await fetch('/api/stream', {
    headers: { Authorization: `Bearer ${token}`, Accept: 'text/event-stream' },
    cache: 'no-store',
    signal,
  });
  if (response.status === 401) return 'unauthorized';
  if (!response.ok || response.body === null) {
    const text = await response.text();
    let message = response.statusText;
    try {
      message = (JSON.parse(text) as { message?: string }).message ?? message;
    } catch {
      // not JSON: the status says it
    }
    throw new Error(`${response.status} ${message}`);
  }
  retryMs = 1000;
  setConnection('live', 'live');
  handlers.opened();
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  let from = 0;
  for (;;) {
    const chunk = await reader.read();
    if (chunk.done) throw new Error('the console ended the stream');
    buffer += decoder.decode(chunk.value, { stream: true });
    let end: number;
    while ((end = buffer.indexOf('\n\n', from)) >= 0) {
      dispatch(buffer.slice(0, end), handlers);
      buffer = buffer.slice(end + 2);
      from = 0;
    }
    from = Math.max(0, buffer.length - 1);
  }
}

export function stopStream(): void {
  if (retryTimer !== null) clearTimeout(retryTimer);
  retryTimer = null;
  abort?.abort();
  abort = null;
}

/** Opens the stream with the access token (the caller made sure there is one). */
export function startStream(handlers: StreamHandlers): void {
  stopStream();
  const mine = new AbortController();
  abort = mine;
  setConnection('connecting…', '');
  // read() only returns when the token is refused; a stream that ends or fails throws.
  read(getAccessToken(), mine.signal, handlers).then(
    () => {
      if (mine.signal.aborted) return;
      abort = null;
      handlers.refused();
    },
    (error: Error) => {
      if (mine.signal.aborted) return;
      abort = null;
      setConnection('reconnecting…', 'down', error.message);
      retryTimer = setTimeout(() => startStream(handlers), retryMs);
      retryMs = Math.min(retryMs * 2, 15_000);
    },
  );
}

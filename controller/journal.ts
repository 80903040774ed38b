/**
 * An append-only file of the job records' writes, so that a write is durable when the call returns: one
 * `write` in the calling thread, where a LevelDB put goes through libuv's thread pool and back (a thread woken,
 * then the event loop). A registration taking a spare placement waits for nothing else: with no put at all it
 * was 0.3–0.4 ms faster (of ~1.5 ms p50, busy 2-core machine), with this journal and LevelDB 20 ms behind it
 * 0.05–0.15 ms (perf/RESULTS.md, register). The store (store.ts) applies the same writes to LevelDB, in order,
 * and empties the file once LevelDB has them all; at start it replays what the file holds.
 *
 * Durable as LevelDB's own unsynced writes are: in the kernel's page cache when `append` returns, so they survive
 * the process being killed (SIGKILL, OOM), not the machine losing power.
 */
import { closeSync, fstatSync, ftruncateSync, openSync, readFileSync, writeSync } from 'node:fs';

/** One write: a put of `value` under `key`, or (value null) a delete. */
export interface JournalEntry {
  key: string;
  value: string | null;
}

/** Emptied once LevelDB has every write and it holds more than this: not a truncate per write. */
const TRUNCATE_AT_BYTES = 64 * 1024;

export class Journal {
  private bytes: number;

  private constructor(
    private readonly fd: number,
    readonly path: string,
  ) {
    this.bytes = fstatSync(fd).size;
  }

  /** Opens (creating) the file at `path` for appending. */
  static open(path: string): Journal {
    return new Journal(openSync(path, 'a+'), path);
  }

  /**
   * The writes the file holds, oldest first. A last line cut short (the process died inside a write) is left
   * out: that write was never acknowledged.
   */
  entries(): JournalEntry[] {
    const text = readFileSync(this.path, 'utf8');
    const out: JournalEntry[] = [];
    for (const line of text.split('\n')) {
      const tab = line.indexOf('\t');
      if (tab < 1) continue;
      const op = line.slice(0, tab);
      const rest = line.slice(tab + 1);
      if (op === 'del') out.push({ key: rest, value: null });
      else if (op === 'put') {
        const split = rest.indexOf('\t');
        if (split < 1) continue;
        const value = rest.slice(split + 1);
        if (!isJson(value)) continue;
        out.push({ key: rest.slice(0, split), value });
      }
    }
    return out;
  }

  /** Appends one write; durable (in the page cache) on return. Throws what `write` throws (ENOSPC, EIO). */
  append(entry: JournalEntry): void {
    // Keys are `job/<id>` and values JSON (no tab, no newline): one line each.
    const line = entry.value === null ? `del\t${entry.key}\n` : `put\t${entry.key}\t${entry.value}\n`;
    this.bytes += writeSync(this.fd, line);
  }

  /** LevelDB holds every write appended so far: the file may be emptied. */
  applied(): void {
    if (this.bytes < TRUNCATE_AT_BYTES) return;
    ftruncateSync(this.fd, 0);
    this.bytes = 0;
  }

  /** Empties the file now (after a replay was written to LevelDB). */
  clear(): void {
    ftruncateSync(this.fd, 0);
    this.bytes = 0;
  }

  close(): void {
    closeSync(this.fd);
  }
}

function isJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

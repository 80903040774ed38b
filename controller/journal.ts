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
import { closeSync, fstatSync, ftruncateSync, openSync, readFileSync, renameSync, writeFileSync, writeSync } from 'node:fs';

/** One write: a put of `value` under `key`, or (value null) a delete. */
export interface JournalEntry {
  key: string;
  value: string | null;
}

/** Emptied once LevelDB has every write and it holds more than this: not a truncate per write. */
const TRUNCATE_AT_BYTES = 64 * 1024;
/** Rewritten with only the writes LevelDB lacks past this, when writes never stop long enough to empty it. */
const REWRITE_AT_BYTES = 4 * 1024 * 1024;

export class Journal {
  private bytes: number;

  private constructor(
    private fd: number,
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
    const lines = text.split('\n');
    lines.pop(); // after the last newline: empty, or a write cut short
    const out: JournalEntry[] = [];
    for (const line of lines) {
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

  /**
   * Appends one write; durable (in the page cache) on return. Throws what `write` throws (EIO), and when it
   * wrote only part of the line (a disk filling): the part is cut off again, so the next write starts a line.
   */
  append(entry: JournalEntry): void {
    const line = Buffer.from(lineOf(entry));
    const written = writeSync(this.fd, line);
    if (written !== line.length) {
      ftruncateSync(this.fd, this.bytes);
      throw new Error(`journal ${this.path}: ${written} of ${line.length} bytes written (is the disk full?)`);
    }
    this.bytes += written;
  }

  /**
   * LevelDB holds every write but `pending` (the ones queued for it, oldest first): the file is emptied when
   * nothing is pending, or rewritten with only those once it is large. The rewrite goes to a new file renamed
   * over this one, so a process killed in the middle leaves one or the other whole.
   */
  applied(pending: readonly JournalEntry[]): void {
    if (pending.length === 0) {
      if (this.bytes < TRUNCATE_AT_BYTES) return;
      ftruncateSync(this.fd, 0);
      this.bytes = 0;
      return;
    }
    if (this.bytes < REWRITE_AT_BYTES) return;
    const text = pending.map(lineOf).join('');
    writeFileSync(`${this.path}.new`, text);
    renameSync(`${this.path}.new`, this.path);
    closeSync(this.fd);
    this.fd = openSync(this.path, 'a+');
    this.bytes = Buffer.byteLength(text);
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

/** Keys are `job/<id>` and values JSON (no tab, no newline): one line each. */
function lineOf(entry: JournalEntry): string {
  return entry.value === null ? `del\t${entry.key}\n` : `put\t${entry.key}\t${entry.value}\n`;
}

function isJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

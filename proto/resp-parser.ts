/**
 * What Redis clients send a server, parsed incrementally: multibulk commands (`*<n>\r\n` then n × `$<len>\r\n
 * <bytes>\r\n`) and inline commands (a line of words, split as Redis's sdssplitargs does). Protocol errors carry
 * Redis's own texts (networking.c processMultibulkBuffer / processInlineBuffer) and end the stream.
 *
 * Arguments lying whole inside the last chunk pushed are views of it (valid until the next push: `owned(i)` is
 * false), but for the command's name, a buffer of its own shared by the commands that repeat it; one that spans
 * chunks is assembled into its own buffer, allocated as its bytes arrive (never for a
 * declared length alone: a stranger declaring 500 MiB bulks makes us allocate what it sent, no more).
 */
export interface RespParserLimits {
  /** The largest argument (a value), in bytes. */
  maxBulkBytes: number;
  /**
   * The largest argument read past rather than breaking the stream (0, the default: none): a command with one
   * over `maxBulkBytes` and within this comes out as `RespOversized`, its bytes dropped as they arrive.
   */
  maxSkippedBulkBytes?: number;
  /** The most arguments in one command (Redis: 1024 × 1024). */
  maxArgs?: number;
  /** The longest inline command or length line (Redis: 64 KiB). */
  maxInlineBytes?: number;
}

export interface RespCommand {
  args: Buffer[];
  /** Whether argument `i` is a buffer of its own (true) or a view of a read chunk, valid until the next push. */
  owned(i: number): boolean;
}

/** A broken stream: Redis's error text, after which the parser yields nothing more. */
export interface RespProtocolError {
  error: string;
}

/** A whole command with an argument over `maxBulkBytes` (its length here), read past: the stream goes on. */
export interface RespOversized {
  oversized: number;
}

const CR = 13;
const LF = 10;
const EMPTY = Buffer.alloc(0);
/** Up-front allocation of a spanning bulk is capped here; it grows as its bytes arrive. */
const FIRST_ALLOCATION = 64 * 1024;
/** Command names up to this long are shared between the commands that repeat them (`RespParser.name`). */
const MAX_NAME_BYTES = 32;
/** How many names a connection's parser keeps. */
const NAMES = 8;

class Command implements RespCommand {
  /**
   * `whole` hands the arguments in an array of their number (an array grown by push holds 17 slots from the
   * first: what the collector sees per command); the incremental path pushes them.
   */
  constructor(
    readonly args: Buffer[] = [],
    /** Which of the first 31 arguments are owned, a bit each (the name usually is: `RespParser.name`). */
    private ownedBits = 0,
  ) {}

  /** Which later arguments are owned; null while none is. */
  private ownedMask: boolean[] | null = null;

  add(arg: Buffer, owned: boolean): void {
    const i = this.args.length;
    if (owned) {
      if (i < 31) this.ownedBits |= 1 << i;
      else (this.ownedMask ??= [])[i] = true;
    }
    this.args.push(arg);
  }

  owned(i: number): boolean {
    return i < 31 ? (this.ownedBits & (1 << i)) !== 0 : this.ownedMask?.[i] === true;
  }
}

export class RespParser {
  private maxBulkBytes: number;
  private maxSkippedBulkBytes: number;
  private maxArgs: number;
  private maxInlineBytes: number;
  /** Bytes not yet consumed: the unconsumed tail of earlier chunks (copied) followed by the newest chunk. */
  private buf: Buffer = Buffer.alloc(0);
  private pos = 0;
  /** The command being read: arguments still expected (-1: none started), and a bulk in progress. */
  private expected = -1;
  private command: Command | null = null;
  private bulkLength = -1;
  private bulk: Buffer | null = null;
  private bulkFilled = 0;
  /** The largest argument over `maxBulkBytes` in the command being read (0: none). */
  private oversized = 0;
  private broken: string | null = null;
  /** The command names this connection sent last, each a buffer of its own (`name`). */
  private readonly names: Buffer[] = [];
  private reportedBroken = false;

  constructor(limits: RespParserLimits) {
    this.maxBulkBytes = limits.maxBulkBytes;
    this.maxSkippedBulkBytes = limits.maxSkippedBulkBytes ?? 0;
    this.maxArgs = limits.maxArgs ?? 1024 * 1024;
    this.maxInlineBytes = limits.maxInlineBytes ?? 64 * 1024;
  }

  limit(limits: Partial<RespParserLimits>): void {
    if (limits.maxBulkBytes !== undefined) this.maxBulkBytes = limits.maxBulkBytes;
    if (limits.maxSkippedBulkBytes !== undefined) this.maxSkippedBulkBytes = limits.maxSkippedBulkBytes;
    if (limits.maxArgs !== undefined) this.maxArgs = limits.maxArgs;
    if (limits.maxInlineBytes !== undefined) this.maxInlineBytes = limits.maxInlineBytes;
  }

  push(chunk: Buffer): void {
    if (this.broken !== null) return;
    if (this.pos >= this.buf.length) this.buf = chunk;
    else this.buf = Buffer.concat([this.buf.subarray(this.pos), chunk]); // only the unconsumed tail: a partial line
    this.pos = 0;
  }

  /** The next whole command, a protocol error (once), or null when more bytes are needed. */
  next(): RespCommand | RespProtocolError | RespOversized | null {
    if (this.broken !== null) {
      if (this.reportedBroken) return null;
      this.reportedBroken = true;
      return { error: this.broken };
    }
    for (;;) {
      if (this.expected === -1) {
        if (this.pos >= this.buf.length) return null;
        if (this.buf[this.pos] === 0x2a /* * */) {
          const whole = this.whole();
          if (whole !== null) return whole;
        }
        if (this.buf[this.pos] !== 0x2a /* * */) {
          const inline = this.inline();
          if (inline === 'more') return null;
          if (inline === 'skip') continue;
          if (inline === 'broken') return this.next();
          return inline;
        }
        const count = this.lengthLine('mbulk');
        if (count === null) return this.next();
        if (count === undefined) return null;
        if (count <= 0) continue; // *0 and *-1: nothing, as Redis
        this.expected = count;
        this.command = new Command();
      }
      while (this.expected > 0) {
        if (this.bulkLength === -1) {
          if (this.pos >= this.buf.length) return null;
          if (this.buf[this.pos] !== 0x24 /* $ */) {
            this.fail(`Protocol error: expected '$', got '${String.fromCharCode(this.buf[this.pos]!)}'`);
            return this.next();
          }
          const length = this.lengthLine('bulk');
          if (length === null) return this.next();
          if (length === undefined) return null;
          this.bulkLength = length;
        }
        if (!this.readBulk()) return null;
      }
      const done = this.command!;
      this.command = null;
      this.expected = -1;
      if (this.oversized > 0) {
        const oversized = this.oversized;
        this.oversized = 0;
        return { oversized };
      }
      return done;
    }
  }

  /**
   * The usual case in one pass: a multibulk command lying whole in the buffer, with plain lengths (no sign, no
   * leading zero, within the limits). Null when it is anything else, nothing consumed: the incremental path then
   * reads it (and words the errors). Scanning each length line in place, with no `indexOf` call per line, and
   * the command's name shared by the commands that repeat it (`names`) took the parser from 7.3 to 3.1 % of a
   * storage node's CPU under `redis-benchmark -t get -P 16 -c 50` (CPU profiles, 2026-12-04, perf/RESULTS.md).
   */
  private whole(): Command | null {
    const buf = this.buf;
    const end = buf.length;
    let p = this.pos + 1;
    let count = 0;
    let c = 0;
    for (; p < end; p++) {
      c = buf[p]!;
      if (c < 0x30 || c > 0x39) break;
      count = count * 10 + c - 0x30;
    }
    const digits = p - this.pos - 1;
    if (c !== CR || p + 1 >= end || digits === 0 || digits > 9 || buf[this.pos + 1] === 0x30) return null;
    if (count > this.maxArgs || p - this.pos > this.maxInlineBytes) return null;
    p += 2;
    // Sized up front only for a short command: a declared count alone allocates nothing large.
    const args: Buffer[] = count <= 16 ? new Array(count) : [];
    let ownedBits = 0;
    for (let i = 0; i < count; i++) {
      if (p >= end || buf[p] !== 0x24 /* $ */) return null;
      const line = p++;
      let length = 0;
      for (; p < end; p++) {
        c = buf[p]!;
        if (c < 0x30 || c > 0x39) break;
        length = length * 10 + c - 0x30;
      }
      const lengthDigits = p - line - 1;
      if (c !== CR || p + 1 >= end || lengthDigits === 0 || lengthDigits > 15) return null;
      if ((lengthDigits > 1 && buf[line + 1] === 0x30) || length > this.maxBulkBytes || p - line > this.maxInlineBytes) return null;
      p += 2;
      if (end - p < length + 2) return null;
      if (i === 0 && length <= MAX_NAME_BYTES) {
        args[0] = this.name(p, length);
        ownedBits = 1;
      } else args[i] = buf.subarray(p, p + length);
      p += length + 2;
    }
    this.pos = p;
    return new Command(args, ownedBits);
  }

  /**
   * The command name at `buf[at, at + length)` as a buffer of its own, the same one each time the connection
   * sends that name again (the last NAMES names are kept): no view made per command, and the session knows the
   * command by the buffer's identity.
   */
  private name(at: number, length: number): Buffer {
    const buf = this.buf;
    const names = this.names;
    next: for (let n = 0; n < names.length; n++) {
      const name = names[n]!;
      if (name.length !== length) continue;
      for (let i = 0; i < length; i++) if (name[i] !== buf[at + i]) continue next;
      return name;
    }
    const name = Buffer.from(buf.subarray(at, at + length));
    if (names.length >= NAMES) names.pop();
    names.unshift(name);
    return name;
  }

  /** The stream is broken: `next` reports `text` once, then nothing more. */
  private fail(text: string): void {
    this.broken = text;
    this.buf = Buffer.alloc(0);
    this.pos = 0;
  }

  /**
   * A `*<n>` or `$<n>` line: its number, undefined when the line is not whole yet, null when broken (the error
   * recorded).
   */
  private lengthLine(kind: 'mbulk' | 'bulk'): number | null | undefined {
    const end = this.buf.indexOf(CR, this.pos);
    // Too long however the stream was cut: the line so far, or the whole line once its CR is here.
    if ((end === -1 ? this.buf.length : end) - this.pos > this.maxInlineBytes) {
      this.fail(`Protocol error: too big ${kind} count string`);
      return null;
    }
    if (end === -1 || end + 1 >= this.buf.length) return undefined;
    const n = lengthOf(this.buf, this.pos + 1, end);
    if (kind === 'mbulk') {
      if (!Number.isInteger(n) || n > this.maxArgs) {
        this.fail('Protocol error: invalid multibulk length');
        return null;
      }
    } else if (!Number.isInteger(n) || n < 0 || n > Math.max(this.maxBulkBytes, this.maxSkippedBulkBytes)) {
      this.fail('Protocol error: invalid bulk length');
      return null;
    }
    this.pos = end + 2;
    return n;
  }

  /** Reads the bulk in progress (and its CRLF); false when more bytes are needed. */
  private readBulk(): boolean {
    const length = this.bulkLength;
    if (length > this.maxBulkBytes) return this.skipBulk(length);
    const available = this.buf.length - this.pos;
    if (this.bulk === null && available >= length + 2) {
      // Whole in the buffer: a view of it, valid until the next push.
      this.command!.add(this.buf.subarray(this.pos, this.pos + length), false);
      this.pos += length + 2;
      this.bulkLength = -1;
      this.expected--;
      return true;
    }
    if (this.bulkFilled < length) {
      if (this.bulk === null) {
        this.bulk = Buffer.allocUnsafeSlow(Math.min(length, Math.max(FIRST_ALLOCATION, available)));
        this.bulkFilled = 0;
      }
      const take = Math.min(length - this.bulkFilled, available);
      if (this.bulkFilled + take > this.bulk.length) {
        const grown = Buffer.allocUnsafeSlow(Math.min(length, Math.max(this.bulk.length * 2, this.bulkFilled + take)));
        this.bulk.copy(grown, 0, 0, this.bulkFilled);
        this.bulk = grown;
      }
      this.buf.copy(this.bulk, this.bulkFilled, this.pos, this.pos + take);
      this.bulkFilled += take;
      this.pos += take;
      if (this.bulkFilled < length) return false;
    }
    if (this.buf.length - this.pos < 2) return false;
    this.command!.add(this.bulk ?? Buffer.alloc(0), true);
    this.bulk = null;
    this.bulkFilled = 0;
    this.pos += 2;
    this.bulkLength = -1;
    this.expected--;
    return true;
  }

  /**
   * Drops the bulk in progress as its bytes arrive (one over `maxBulkBytes`: `maxSkippedBulkBytes`), so the
   * command is answered TOO_LARGE and the connection goes on, as a native client's PUT over the limit is.
   * Nothing is allocated for it. False when more bytes are needed.
   */
  private skipBulk(length: number): boolean {
    const take = Math.min(length - this.bulkFilled, this.buf.length - this.pos);
    this.bulkFilled += take;
    this.pos += take;
    if (this.bulkFilled < length || this.buf.length - this.pos < 2) return false;
    this.oversized = Math.max(this.oversized, length);
    this.command!.add(EMPTY, false);
    this.bulkFilled = 0;
    this.pos += 2;
    this.bulkLength = -1;
    this.expected--;
    return true;
  }

  /** An inline command line: the command, 'skip' for an empty line, 'more' when the line is not whole. */
  private inline(): RespCommand | 'more' | 'skip' | 'broken' {
    const newline = this.buf.indexOf(LF, this.pos);
    if (newline === -1 || newline - this.pos > this.maxInlineBytes) {
      if (this.buf.length - this.pos <= this.maxInlineBytes) return 'more';
      this.fail('Protocol error: too big inline request');
      return 'broken';
    }
    let end = newline;
    if (end > this.pos && this.buf[end - 1] === CR) end--;
    const line = this.buf.toString('latin1', this.pos, end);
    this.pos = newline + 1;
    const words = splitArgs(line);
    if (words === null) {
      this.fail('Protocol error: unbalanced quotes in request');
      return 'broken';
    }
    if (words.length === 0) return 'skip';
    if (words.length > this.maxArgs) {
      this.fail('Protocol error: too big inline request');
      return 'broken';
    }
    const command = new Command();
    for (const word of words) command.add(Buffer.from(word, 'latin1'), true);
    return command;
  }
}

/** C's isspace: what sdssplitargs skips between words and wants after a closing quote (not /\s/: no \xa0). */
const SPACE = /[ \t\n\v\f\r]/;
/** What ends an unquoted word in sdssplitargs (\v and \f do not). */
const WORD_END = /[ \t\n\r]/;

/**
 * The number in `buf[start, end)` as Redis's string2ll reads it (`0` or `-?[1-9]\d{0,17}`: no leading zero, no
 * `-0`; `$03` and `*-0` are protocol errors there too), else NaN. Read from the bytes in place: as a latin1 string
 * tested by a RegExp it took 6 % of a storage node's CPU under `redis-benchmark -P 16` (three length lines per SET;
 * `satchel bench resp`, 2026-12-04).
 */
function lengthOf(buf: Buffer, start: number, end: number): number {
  let i = start;
  const negative = i < end && buf[i] === 0x2d; /* - */
  if (negative) i++;
  const digits = end - i;
  if (digits < 1 || digits > 18) return Number.NaN;
  // A leading zero only as the whole of a non-negative number.
  if (buf[i] === 0x30 && (digits > 1 || negative)) return Number.NaN;
  let n = 0;
  for (; i < end; i++) {
    const digit = buf[i]! - 0x30;
    if (digit < 0 || digit > 9) return Number.NaN;
    n = n * 10 + digit;
  }
  return negative ? -n : n;
}

/** Redis's sdssplitargs: words, "double quoted" with escapes, 'single quoted'; null for unbalanced quotes. */
export function splitArgs(line: string): string[] | null {
  const words: string[] = [];
  let i = 0;
  for (;;) {
    while (i < line.length && SPACE.test(line[i]!)) i++;
    if (i >= line.length) return words;
    let word = '';
    let inDouble = false;
    let inSingle = false;
    for (;;) {
      const c = line[i];
      if (inDouble) {
        if (c === undefined) return null;
        if (c === '\\' && line[i + 1] === 'x' && /^[0-9a-fA-F]{2}$/.test(line.slice(i + 2, i + 4))) {
          word += String.fromCharCode(parseInt(line.slice(i + 2, i + 4), 16));
          i += 3;
        } else if (c === '\\' && i + 1 < line.length) {
          const e = line[++i]!;
          word += { n: '\n', r: '\r', t: '\t', b: '\b', a: '\x07' }[e] ?? e;
        } else if (c === '"') {
          if (i + 1 < line.length && !SPACE.test(line[i + 1]!)) return null;
          inDouble = false;
          i++;
          break;
        } else word += c;
      } else if (inSingle) {
        if (c === undefined) return null;
        if (c === '\\' && line[i + 1] === "'") {
          word += "'";
          i++;
        } else if (c === "'") {
          if (i + 1 < line.length && !SPACE.test(line[i + 1]!)) return null;
          inSingle = false;
          i++;
          break;
        } else word += c;
      } else {
        if (c === undefined || WORD_END.test(c)) break;
        if (c === '"') inDouble = true;
        else if (c === "'") inSingle = true;
        else word += c;
      }
      i++;
    }
    words.push(word);
  }
}

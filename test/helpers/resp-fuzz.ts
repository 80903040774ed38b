/**
 * Fuzzing helpers for the RESP front door: a generator of what clients send (multibulk and inline commands,
 * valid, mutated, broken and random), a reference model of how a RESP server reads it (Redis's networking.c
 * processMultibulkBuffer / processInlineBuffer and sds.c sdssplitargs, written the plain, slow way over the whole
 * stream, sharing no code with proto/resp-parser.ts), and a reader of what the server answers (RESP2 and RESP3).
 * Not a test file itself (ava runs `*.test.ts` only).
 *
 * Where the model departs from Redis, on purpose:
 * - A NUL byte is an ordinary byte in an inline command (Redis's C strings end there).
 * - A length line longer than the inline limit is "too big … count string" however it arrives (Redis says
 *   "invalid … length" when its CR came in the same read), so the error does not depend on how TCP cut the stream.
 * - Numbers have at most 18 digits (Redis: any 64-bit integer). Every longer one is past any limit, but a
 *   multibulk count of -10^18 or less, which Redis ignores as it does `*-1`, is refused.
 * - Inline commands obey the argument limit too ("too big inline request").
 * As Redis: the two bytes after a length line's CR and after a bulk are skipped unread (their CRLF is not
 * checked), leading zeros and `-0` are not numbers, and only space, tab, CR and LF end an unquoted word.
 */
import type { Rng } from './fuzz.ts';

export { Growing } from './fuzz.ts';

export interface RespLimits {
  maxBulkBytes: number;
  maxArgs: number;
  maxInlineBytes: number;
  /** A bulk over maxBulkBytes and within this is read past: the command is an 'oversized' event (RespParser). */
  maxSkippedBulkBytes?: number;
}

export type RespModelEvent = { kind: 'command'; args: Buffer[] } | { kind: 'error'; text: string } | { kind: 'oversized'; length: number };

export interface RespModel {
  events: RespModelEvent[];
  /** idle: the stream ends between commands; partial: inside one; dead: after a protocol error. */
  end: 'idle' | 'partial' | 'dead';
  /** Where the command the stream ends in (or after) starts, to read on from when more is appended. */
  resume: { at: number; commands: number; limits: RespLimits };
}

const CR = 13;
const LF = 10;
const STAR = 0x2a;
const DOLLAR = 0x24;
const DQ = 0x22;
const SQ = 0x27;
const BACKSLASH = 0x5c;

/** C's isspace in the C locale. */
function isSpace(c: number | undefined): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0b || c === 0x0c || c === 0x0d;
}

function hexValue(c: number | undefined): number {
  if (c === undefined) return -1;
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x41 && c <= 0x46) return c - 0x41 + 10;
  if (c >= 0x61 && c <= 0x66) return c - 0x61 + 10;
  return -1;
}

/** sds.c sdssplitargs over bytes, transcribed: the words, or null for unbalanced quotes. */
export function modelSplitArgs(line: Buffer): Buffer[] | null {
  const words: Buffer[] = [];
  let p = 0;
  for (;;) {
    while (p < line.length && isSpace(line[p])) p++;
    if (p >= line.length) return words;
    const current: number[] = [];
    let inDouble = false;
    let inSingle = false;
    let done = false;
    while (!done) {
      const c = line[p];
      if (inDouble) {
        if (c === BACKSLASH && line[p + 1] === 0x78 /* x */ && hexValue(line[p + 2]) >= 0 && hexValue(line[p + 3]) >= 0) {
          current.push(hexValue(line[p + 2]) * 16 + hexValue(line[p + 3]));
          p += 3;
        } else if (c === BACKSLASH && p + 1 < line.length) {
          p++;
          const e = line[p]!;
          const escapes: Record<number, number> = { 110: 0x0a, 114: 0x0d, 116: 0x09, 98: 0x08, 97: 0x07 };
          current.push(escapes[e] ?? e);
        } else if (c === DQ) {
          if (p + 1 < line.length && !isSpace(line[p + 1])) return null;
          done = true;
        } else if (c === undefined) return null;
        else current.push(c);
      } else if (inSingle) {
        if (c === BACKSLASH && line[p + 1] === SQ) {
          p++;
          current.push(SQ);
        } else if (c === SQ) {
          if (p + 1 < line.length && !isSpace(line[p + 1])) return null;
          done = true;
        } else if (c === undefined) return null;
        else current.push(c);
      } else if (c === undefined || c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) done = true;
      else if (c === DQ) inDouble = true;
      else if (c === SQ) inSingle = true;
      else current.push(c);
      if (p < line.length) p++;
    }
    words.push(Buffer.from(current));
  }
}

/** Redis's string2ll (no sign but `-`, no leading zero, no `-0`), up to 18 digits: the number, or null. */
export function modelInteger(text: Buffer): number | null {
  let i = 0;
  if (text.length === 1 && text[0] === 0x30) return 0;
  const negative = text[0] === 0x2d;
  if (negative) i++;
  const digits = text.length - i;
  if (digits < 1 || digits > 18) return null;
  if (text[i]! < 0x31 || text[i]! > 0x39) return null;
  let n = 0;
  for (; i < text.length; i++) {
    const c = text[i]!;
    if (c < 0x30 || c > 0x39) return null;
    n = n * 10 + (c - 0x30);
  }
  return negative ? -n : n;
}

/**
 * How a RESP server reads `stream`: every command and the protocol error that ends it. `after` is called after
 * each command (its index among the commands) and may change the limits for what follows, as AUTH does.
 */
export function modelParse(
  stream: Buffer,
  initial: RespLimits,
  after?: (args: Buffer[], index: number) => Partial<RespLimits> | undefined,
  resume?: RespModel,
): RespModel {
  const limits = { ...(resume?.resume.limits ?? initial) };
  const events: RespModelEvent[] = resume?.events ?? [];
  let commands = resume?.resume.commands ?? 0;
  let at = resume?.resume.at ?? 0;
  /** Where the command being read starts. */
  let start = at;
  const stop = (end: 'idle' | 'partial'): RespModel => ({ events, end, resume: { at: start, commands, limits } });
  const error = (text: string): RespModel => {
    events.push({ kind: 'error', text: `Protocol error: ${text}` });
    return { events, end: 'dead', resume: { at: start, commands, limits } };
  };
  const emit = (args: Buffer[]) => {
    events.push({ kind: 'command', args });
    Object.assign(limits, after?.(args, commands++));
  };
  /** The `*n` / `$n` line at `at`: its number text and where the next line starts, 'more' or 'big'. */
  const lengthLine = (): { text: Buffer; next: number } | 'more' | 'big' => {
    const cr = stream.indexOf(CR, at);
    const lineLength = (cr === -1 ? stream.length : cr) - at;
    if (lineLength > limits.maxInlineBytes) return 'big';
    if (cr === -1 || cr + 1 >= stream.length) return 'more';
    return { text: stream.subarray(at + 1, cr), next: cr + 2 };
  };
  for (;;) {
    start = at;
    if (at >= stream.length) return stop('idle');
    if (stream[at] === STAR) {
      const line = lengthLine();
      if (line === 'more') return stop('partial');
      if (line === 'big') return error('too big mbulk count string');
      const count = modelInteger(line.text);
      if (count === null || count > limits.maxArgs) return error('invalid multibulk length');
      at = line.next;
      if (count <= 0) continue;
      const args: Buffer[] = [];
      let oversized = 0;
      while (args.length < count) {
        if (at >= stream.length) return stop('partial');
        if (stream[at] !== DOLLAR) return error(`expected '$', got '${String.fromCharCode(stream[at]!)}'`);
        const bulk = lengthLine();
        if (bulk === 'more') return stop('partial');
        if (bulk === 'big') return error('too big bulk count string');
        const length = modelInteger(bulk.text);
        if (length === null || length < 0 || length > Math.max(limits.maxBulkBytes, limits.maxSkippedBulkBytes ?? 0))
          return error('invalid bulk length');
        at = bulk.next;
        if (stream.length - at < length + 2) return stop('partial');
        if (length > limits.maxBulkBytes) oversized = Math.max(oversized, length);
        args.push(stream.subarray(at, at + length));
        at += length + 2;
      }
      if (oversized > 0) events.push({ kind: 'oversized', length: oversized });
      else emit(args);
    } else {
      const newline = stream.indexOf(LF, at);
      const lineLength = (newline === -1 ? stream.length : newline) - at;
      if (lineLength > limits.maxInlineBytes) return error('too big inline request');
      if (newline === -1) return stop('partial');
      const end = newline > at && stream[newline - 1] === CR ? newline - 1 : newline;
      const words = modelSplitArgs(stream.subarray(at, end));
      at = newline + 1;
      if (words === null) return error('unbalanced quotes in request');
      if (words.length > limits.maxArgs) return error('too big inline request');
      if (words.length > 0) emit(words);
    }
  }
}

/** A multibulk command as clients send it. */
export function multibulk(args: (Buffer | string)[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const arg of args) {
    const b = typeof arg === 'string' ? Buffer.from(arg) : arg;
    parts.push(Buffer.from(`$${b.length}\r\n`), b, Buffer.from('\r\n'));
  }
  return Buffer.concat(parts);
}

export type RespPieceKind = 'multibulk' | 'inline' | 'empty' | 'mutated' | 'length' | 'count' | 'crlf' | 'nested' | 'huge' | 'garbage';

export interface RespGeneratorOptions {
  /** The limits the reader holds, so lengths and counts around them are tried. */
  limits: RespLimits;
  /** A valid command's arguments (random words by default). */
  command?: (rng: Rng) => Buffer[];
}

const NAMES = ['GET', 'SET', 'PING', 'ECHO', 'DEL', 'AUTH', 'HELLO', 'INCR', 'MGET', 'CLIENT', 'get', 'Set'];
/** Bytes that mean something to a RESP reader: put where they do not belong. */
const SPECIAL = [CR, LF, STAR, DOLLAR, 0x2d, 0x30, 0x31, 0x39, DQ, SQ, BACKSLASH, 0x20, 0x09, 0x0b, 0x0c, 0x00, 0xa0, 0xff, 0x2b, 0x3a];
const BAD_NUMBERS = ['', '-', '-0', '+3', ' 3', '3 ', '03', '0x10', 'abc', '1e3', '3.0', '4294967296', '9223372036854775807'];
const HUGE_NUMBERS = ['2147483648', '4294967295', '999999999999999999', '1000000000000000000', '99999999999999999999'];
const RESP3_TYPES = ['*1', '*2', ':1', '+OK', '-ERR', '%1', '~1', '_', '>1', ',1.5', '#t', '(1', '=4', '!3', '|1'];

export class RespGenerator {
  readonly counts: Record<RespPieceKind, number> = {
    multibulk: 0,
    inline: 0,
    empty: 0,
    mutated: 0,
    length: 0,
    count: 0,
    crlf: 0,
    nested: 0,
    huge: 0,
    garbage: 0,
  };

  constructor(
    private readonly rng: Rng,
    readonly options: RespGeneratorOptions,
  ) {}

  /** What the last piece was. */
  last: RespPieceKind = 'empty';

  /** One piece; `fuzzRate` is the chance it is anything but a valid command. */
  piece(fuzzRate = 0.2): Buffer {
    const rng = this.rng;
    if (!rng.chance(fuzzRate)) {
      const roll = rng.int(100);
      const kind: RespPieceKind = roll < 75 ? 'multibulk' : roll < 96 ? 'inline' : 'empty';
      this.counts[kind]++;
      this.last = kind;
      return kind === 'multibulk' ? this.multibulk() : kind === 'inline' ? this.inline() : this.empty();
    }
    const kinds: RespPieceKind[] = ['mutated', 'mutated', 'mutated', 'length', 'count', 'crlf', 'nested', 'huge', 'garbage', 'garbage'];
    const kind = rng.pick(kinds);
    this.counts[kind]++;
    this.last = kind;
    switch (kind) {
      case 'mutated':
        return this.mutate(rng.chance(0.7) ? this.multibulk() : this.inline());
      case 'length':
        return this.badLength();
      case 'count':
        return this.badCount();
      case 'crlf':
        return this.badCrlf();
      case 'nested':
        return this.nested();
      case 'huge':
        return this.huge();
      default:
        return this.rng.bytes(rng.range(1, 64));
    }
  }

  /** A valid command's arguments. */
  args(): Buffer[] {
    if (this.options.command !== undefined) return this.options.command(this.rng);
    const rng = this.rng;
    const limits = this.options.limits;
    const roll = rng.int(100);
    const count =
      roll < 20
        ? 1
        : roll < 75
          ? rng.range(2, 3)
          : roll < 95 || limits.maxArgs > 64
            ? rng.range(4, 10)
            : rng.pick([limits.maxArgs - 1, limits.maxArgs, limits.maxArgs + 1]);
    const args: Buffer[] = [Buffer.from(rng.pick(NAMES))];
    for (let i = 1; i < Math.max(count, 1); i++) args.push(this.value());
    return args;
  }

  /** An argument: mostly short, sometimes around the bulk limit, any bytes. */
  value(): Buffer {
    const rng = this.rng;
    const max = this.options.limits.maxBulkBytes;
    const roll = rng.int(100);
    const length =
      roll < 10
        ? 0
        : roll < 65
          ? rng.range(1, 16)
          : roll < 95
            ? rng.range(17, 300)
            : roll < 99 || (max > 4096 && !rng.chance(0.1))
              ? rng.range(301, 4096)
              : Math.max(0, max + rng.range(-1, 1));
    const b = rng.bytes(length);
    if (rng.chance(0.5)) return b;
    // Text: letters, with a byte in ten something a reader might trip on.
    for (let i = 0; i < length; i++) b[i] = 0x61 + (b[i]! % 26);
    for (let n = length / 10; n > 0; n--) b[rng.int(length)] = rng.pick(SPECIAL);
    return b;
  }

  multibulk(): Buffer {
    return multibulk(this.args());
  }

  /** An inline command: words bare, "double quoted" with escapes or 'single quoted', and odd spacing. */
  inline(): Buffer {
    const rng = this.rng;
    const args = this.options.command?.(rng);
    const count = args?.length ?? rng.range(1, 6);
    const parts: string[] = [];
    if (rng.chance(0.1)) parts.push(rng.pick([' ', '\t', '  ', '\v', '\f']));
    for (let i = 0; i < count; i++) {
      if (i > 0) parts.push(rng.pick([' ', ' ', ' ', '\t', '  ', ' \t ', '\v', '\f', '\xa0']));
      const word = args?.[i]?.toString('latin1') ?? (i === 0 ? rng.pick(NAMES) : this.word());
      const style = rng.int(10);
      if (style < 6 && /^[^\s"'\\]+$/.test(word)) parts.push(word);
      else if (style < 9) parts.push(doubleQuoted(rng, word));
      else parts.push(`'${word.replace(/'/g, "\\'")}'`);
    }
    if (rng.chance(0.1)) parts.push(rng.pick([' ', '\t', '\v']));
    parts.push(rng.chance(0.7) ? '\r\n' : '\n');
    return Buffer.from(parts.join(''), 'latin1');
  }

  private word(): string {
    const rng = this.rng;
    const length = rng.range(0, 12);
    let word = '';
    for (let i = 0; i < length; i++)
      word += rng.chance(0.15) ? String.fromCharCode(rng.pick(SPECIAL)) : String.fromCharCode(rng.range(0x21, 0x7e));
    return word;
  }

  private empty(): Buffer {
    return Buffer.from(this.rng.pick(['\r\n', '\n', '*0\r\n', '*-1\r\n', ' \r\n', '\t\n']));
  }

  /** A valid piece with one to three byte-level mutations. */
  mutate(b: Buffer): Buffer {
    const rng = this.rng;
    let out = Buffer.from(b);
    for (let n = rng.range(1, 3); n > 0; n--) {
      const at = rng.int(out.length + 1);
      switch (rng.int(6)) {
        case 0:
          if (at < out.length) out[at]! ^= 1 << rng.int(8);
          break;
        case 1:
          if (at < out.length) out[at] = rng.pick(SPECIAL);
          break;
        case 2:
          out = Buffer.concat([out.subarray(0, at), out.subarray(at + 1)]);
          break;
        case 3:
          out = Buffer.concat([out.subarray(0, at), Buffer.from([rng.pick(SPECIAL)]), out.subarray(at)]);
          break;
        case 4:
          out = out.subarray(0, at);
          break;
        default: {
          const from = rng.int(out.length + 1);
          out = Buffer.concat([out.subarray(0, at), out.subarray(from, from + rng.range(1, 16)), out.subarray(at)]);
        }
      }
    }
    return out;
  }

  /** A command whose `$` length is off by one, negative, huge, around the limit or not a number. */
  private badLength(): Buffer {
    const rng = this.rng;
    const args = this.args();
    const i = rng.int(args.length);
    const real = args[i]!.length;
    const max = this.options.limits.maxBulkBytes;
    const declared = rng.pick([
      String(real + 1),
      String(real - 1),
      String(real + rng.range(2, 100)),
      String(-rng.range(1, 3)),
      String(max),
      String(max + 1),
      rng.pick(BAD_NUMBERS),
      rng.pick(HUGE_NUMBERS),
    ]);
    const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
    for (const [j, a] of args.entries()) parts.push(Buffer.from(`$${j === i ? declared : a.length}\r\n`), a, Buffer.from('\r\n'));
    return Buffer.concat(parts);
  }

  /** A `*` count that is negative, zero, huge, around the limit or not a number, then some arguments. */
  private badCount(): Buffer {
    const rng = this.rng;
    const max = this.options.limits.maxArgs;
    const count = rng.pick([
      '-1',
      '-2',
      String(-rng.range(3, 1_000_000)),
      '0',
      String(max),
      String(max + 1),
      rng.pick(BAD_NUMBERS),
      rng.pick(HUGE_NUMBERS),
      `-${rng.pick(HUGE_NUMBERS)}`,
    ]);
    const args = this.args();
    return Buffer.concat([Buffer.from(`*${count}\r\n`), multibulk(args).subarray(`*${args.length}\r\n`.length)]);
  }

  /** A command with one line's CR, LF or both missing or replaced. */
  private badCrlf(): Buffer {
    const rng = this.rng;
    const b = this.multibulk();
    const ends: number[] = [];
    for (let i = b.indexOf(CR); i !== -1; i = b.indexOf(CR, i + 1)) ends.push(i);
    const at = rng.pick(ends);
    const replacement = rng.pick([Buffer.alloc(0), Buffer.from('\r'), Buffer.from('\n'), Buffer.from('\n\r'), Buffer.from('  ')]);
    const length = rng.pick([1, 2]);
    return Buffer.concat([b.subarray(0, at), replacement, b.subarray(at + length)]);
  }

  /** RESP types clients must not send, where a bulk or a command belongs. */
  private nested(): Buffer {
    const rng = this.rng;
    const type = rng.pick(RESP3_TYPES);
    switch (rng.int(3)) {
      case 0:
        return Buffer.from(`*2\r\n$3\r\nGET\r\n${type}\r\n$1\r\nx\r\n`);
      case 1:
        return Buffer.concat([Buffer.from('*2\r\n$4\r\nECHO\r\n'), multibulk(['a', 'b'])]);
      default:
        return Buffer.from(`${type}\r\n`);
    }
  }

  /** A bulk declared long, within or past the limit, with only some of it sent. */
  private huge(): Buffer {
    const rng = this.rng;
    const max = this.options.limits.maxBulkBytes;
    // Whole, a little over the limit: a reader that skips such bulks (maxSkippedBulkBytes) answers and reads on.
    if (rng.chance(0.3)) return multibulk(['SET', 'fuzz/{t}huge', rng.bytes(max + rng.range(1, 4096))]);
    const declared = rng.pick([max, max + 1, 2 ** 31 - 1, 2 ** 32, 2 ** 40, 500 * 1024 * 1024]);
    return Buffer.concat([Buffer.from(`*2\r\n$3\r\nSET\r\n$${declared}\r\n`), this.rng.bytes(rng.range(0, 512))]);
  }
}

/** `word` "double quoted": quotes and backslashes escaped, control bytes as \n, \r or \xNN, others often too. */
function doubleQuoted(rng: Rng, word: string): string {
  let out = '"';
  for (const c of word) {
    const code = c.charCodeAt(0);
    if (c === '"' || c === '\\') out += `\\${c}`;
    else if (code === 10 && rng.chance(0.5)) out += '\\n';
    else if (code === 13 && rng.chance(0.5)) out += '\\r';
    else if (code < 0x20 || (code >= 0x7f && rng.chance(0.5))) out += `\\x${code.toString(16).padStart(2, '0')}`;
    else out += c;
  }
  return `${out}"`;
}

/** `bytes` cut into chunks of random sizes: single bytes, a few, a line's worth, kilobytes, all the rest. */
export function respChunks(rng: Rng, bytes: Buffer): Buffer[] {
  const chunks: Buffer[] = [];
  let at = 0;
  while (at < bytes.length) {
    const roll = rng.int(10);
    const size =
      roll < 2 ? 1 : roll < 4 ? rng.range(2, 8) : roll < 6 ? rng.range(1, 64) : roll < 8 ? rng.range(1, 4096) : bytes.length - at;
    chunks.push(bytes.subarray(at, Math.min(bytes.length, at + size)));
    at += size;
  }
  return chunks;
}

/** One reply as read: its type byte, the line of a simple type, the bytes of a bulk one. */
export interface RespReply {
  type: string;
  line?: string;
  bulk?: Buffer;
  /** Elements of an aggregate (a map's keys and values in turn). */
  elements?: RespReply[];
}

type Read = { reply: RespReply; end: number } | 'more' | { malformed: string };

/**
 * Reads what a RESP server sends: whole RESP2 and RESP3 replies, in order, or the first thing that is not one
 * (a CR or LF inside a line, a line not ended by CRLF, a bad length, a bulk not followed by CRLF, an unknown type).
 */
export class RespReplyReader {
  readonly replies: RespReply[] = [];
  malformed: string | null = null;
  private buf: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): void {
    if (this.malformed !== null) return;
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    let at = 0;
    for (;;) {
      if (at >= this.buf.length) break;
      const read = readReply(this.buf, at, 0);
      if (read === 'more') break;
      if ('malformed' in read) {
        this.malformed = `${read.malformed} at byte ${at} of ${JSON.stringify(this.buf.toString('latin1', at, at + 80))}`;
        return;
      }
      this.replies.push(read.reply);
      at = read.end;
    }
    this.buf = Buffer.from(this.buf.subarray(at));
  }

  /** Bytes received that do not make a whole reply yet. */
  get pending(): number {
    return this.buf.length;
  }
}

/** The line from `at` to its CRLF: its text and where the next starts, 'more', or what is wrong with it. */
function readLine(buf: Buffer, at: number): { text: string; next: number } | 'more' | { malformed: string } {
  for (let i = at; i < buf.length; i++) {
    const c = buf[i];
    if (c === LF) return { malformed: 'LF inside a line' };
    if (c === CR) {
      if (i + 1 >= buf.length) return 'more';
      if (buf[i + 1] !== LF) return { malformed: 'CR not followed by LF' };
      return { text: buf.toString('latin1', at, i), next: i + 2 };
    }
  }
  return 'more';
}

function readReply(buf: Buffer, at: number, depth: number): Read {
  if (depth > 32) return { malformed: 'nested past 32 levels' };
  const type = String.fromCharCode(buf[at]!);
  const line = readLine(buf, at + 1);
  if (line === 'more' || 'malformed' in line) return line;
  const { text, next } = line;
  const integer = /^-?(0|[1-9]\d*)$/.test(text) ? Number(text) : Number.NaN;
  switch (type) {
    case '+':
    case '-':
      return { reply: { type, line: text }, end: next };
    case ':':
    case '(':
      return Number.isNaN(integer) ? { malformed: `integer ${JSON.stringify(text)}` } : { reply: { type, line: text }, end: next };
    case ',':
      return /^(-?\d+(\.\d+)?([eE][+-]?\d+)?|inf|-inf|nan)$/.test(text)
        ? { reply: { type, line: text }, end: next }
        : { malformed: `double ${JSON.stringify(text)}` };
    case '#':
      return text === 't' || text === 'f' ? { reply: { type, line: text }, end: next } : { malformed: `boolean ${text}` };
    case '_':
      return text === '' ? { reply: { type }, end: next } : { malformed: 'null with a payload' };
    case '$':
    case '=':
    case '!': {
      if (type === '$' && integer === -1) return { reply: { type, line: '-1' }, end: next };
      if (!(integer >= 0)) return { malformed: `${type} length ${JSON.stringify(text)}` };
      if (buf.length < next + integer + 2) return 'more';
      if (buf[next + integer] !== CR || buf[next + integer + 1] !== LF) return { malformed: `${type}${integer} not followed by CRLF` };
      const bulk = buf.subarray(next, next + integer);
      if (type === '=' && (integer < 4 || bulk[3] !== 0x3a)) return { malformed: 'verbatim string without its format' };
      return { reply: { type, bulk: Buffer.from(bulk) }, end: next + integer + 2 };
    }
    case '*':
    case '~':
    case '>':
    case '%':
    case '|': {
      if (type === '*' && integer === -1) return { reply: { type, line: '-1' }, end: next };
      if (!(integer >= 0)) return { malformed: `${type} count ${JSON.stringify(text)}` };
      const count = type === '%' || type === '|' ? integer * 2 : integer;
      const elements: RespReply[] = [];
      let end = next;
      for (let i = 0; i < count; i++) {
        if (end >= buf.length) return 'more';
        const element = readReply(buf, end, depth + 1);
        if (element === 'more' || 'malformed' in element) return element;
        elements.push(element.reply);
        end = element.end;
      }
      if (type !== '|') return { reply: { type, elements }, end };
      // An attribute comes before the reply it describes.
      if (end >= buf.length) return 'more';
      return readReply(buf, end, depth + 1);
    }
    default:
      return { malformed: `unknown type byte 0x${buf[at]!.toString(16)}` };
  }
}

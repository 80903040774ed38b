/**
 * Fuzzing helpers shared by the data-plane fuzz tests: a seeded PRNG (so a failure is reproducible from the seed
 * the test prints), a generator of data-plane frames (valid, mutated, truncated, random, huge declared lengths),
 * and a reference model of the frame codec — the decoder's expected behaviour written the plain, slow way — that
 * the tests check the real decoder and node against. Not a test file itself (ava runs `*.test.ts` only).
 */
import { randomInt } from 'node:crypto';
import { Field, HEADER_SIZE, MAX_KEY_BYTES, Op, PROTOCOL_VERSION } from '../../proto/index.ts';

/** sfc32: small, fast, good enough for fuzzing; every stream is determined by one 32-bit seed. */
export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(readonly seed: number) {
    this.a = 0x9e3779b9;
    this.b = 0x243f6a88;
    this.c = 0xb7e15162;
    this.d = seed >>> 0;
    for (let i = 0; i < 16; i++) this.u32();
  }

  u32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return n <= 0x1_0000_0000 ? Math.floor((this.u32() / 0x1_0000_0000) * n) : Math.floor(this.float() * n);
  }

  /** An integer in [lo, hi]. */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }

  float(): number {
    return (this.u32() * 0x20_0000 + (this.u32() >>> 11)) / 2 ** 53;
  }

  chance(p: number): boolean {
    return this.u32() < p * 0x1_0000_0000;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }

  bytes(n: number): Buffer {
    const b = Buffer.allocUnsafe(n);
    let x = 0;
    for (let i = 0; i < n; i++) {
      if ((i & 3) === 0) x = this.u32();
      b[i] = x & 0xff;
      x >>>= 8;
    }
    return b;
  }

  /** A derived generator: reproducible sub-streams (one per connection) that do not depend on scheduling. */
  fork(): Rng {
    return new Rng(this.u32());
  }
}

/** The seed from SATCHEL_FUZZ_SEED (decimal or 0x hex), or a fresh random one. */
export function fuzzSeed(): number {
  const text = process.env.SATCHEL_FUZZ_SEED;
  if (text !== undefined && text !== '') {
    const seed = Number(text);
    if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff)
      throw new Error(`SATCHEL_FUZZ_SEED must be a 32-bit unsigned integer, got ${text}`);
    return seed;
  }
  return randomInt(0, 0xffffffff);
}

/** A positive integer from the environment, or `fallback`. */
export function envCount(name: string, fallback: number): number {
  const text = process.env[name];
  if (text === undefined || text === '') return fallback;
  const n = Number(text.replace(/_/g, ''));
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a non-negative integer, got ${text}`);
  return n;
}

/** Every request opcode, the coordination ones included, and codes no version defines. */
export const REQUEST_OPS = [
  Op.HELLO,
  Op.PUT,
  Op.GET,
  Op.DELETE,
  Op.STAT,
  Op.LIST,
  Op.WAIT,
  Op.INCR,
  Op.DROP_JOB,
  Op.PING,
  Op.ANNOUNCE,
  Op.WATCH,
  Op.CANCEL,
] as const;
const ODD_OPS = [0x00, 0x0e, 0x0f, 0x10, 0x7f, 0x80, 0xfe, 0xff];
/** Ops a job connection sends most (weights by repetition). */
const COMMON_OPS = [
  Op.PUT,
  Op.PUT,
  Op.PUT,
  Op.GET,
  Op.GET,
  Op.GET,
  Op.DELETE,
  Op.STAT,
  Op.LIST,
  Op.WAIT,
  Op.WAIT,
  Op.INCR,
  Op.INCR,
  Op.PING,
  Op.WATCH,
  Op.CANCEL,
  Op.CANCEL,
];

/** One frame laid out as the wire has it, with any field values (valid or not). */
export function encodeFrame(fields: {
  code: number;
  flags?: number;
  id?: number;
  epoch?: number;
  arg?: number;
  key?: Buffer;
  value?: Buffer;
  version?: number;
  reserved?: number;
  bodyLength?: number;
  keyLength?: number;
}): Buffer {
  const key = fields.key ?? EMPTY;
  const value = fields.value ?? EMPTY;
  const b = Buffer.allocUnsafe(HEADER_SIZE + key.length + value.length);
  b.writeUInt32BE((fields.bodyLength ?? key.length + value.length) >>> 0, Field.BodyLength);
  b[Field.Version] = fields.version ?? PROTOCOL_VERSION;
  b[Field.Code] = fields.code;
  b.writeUInt16BE(fields.flags ?? 0, Field.Flags);
  b.writeUInt32BE((fields.id ?? 0) >>> 0, Field.Id);
  b.writeUInt32BE((fields.epoch ?? 0) >>> 0, Field.Epoch);
  b.writeUInt32BE((fields.arg ?? 0) >>> 0, Field.Arg);
  b.writeUInt16BE(fields.keyLength ?? key.length, Field.KeyLength);
  b.writeUInt16BE(fields.reserved ?? 0, Field.Reserved);
  key.copy(b, HEADER_SIZE);
  value.copy(b, HEADER_SIZE + key.length);
  return b;
}

const EMPTY = Buffer.alloc(0);
const KEYS = ['a', 'b', 'k/1', 'k/2', 'k/3', 'map-0/part-1', 'counter', 'done', 'ключ', '🙂'].map((k) => Buffer.from(k));
const PREFIXES = ['', 'k/', 'map-', 'c'].map((k) => Buffer.from(k));

export interface GeneratorOptions {
  /** The node's (or decoder's) body limit: lengths around it are tried. */
  maxBody: number;
  /** Largest value a valid frame carries (keeps memory and time in check); occasional ones reach maxBody. */
  maxValue?: number;
  /** Tokens worth sending in a HELLO (a valid one, say); garbage ones are made up. */
  tokens?: readonly string[];
}

/** What a generated piece is, for the counts the tests report. */
export type PieceKind = 'valid' | 'bitflip' | 'field' | 'truncated' | 'random' | 'huge' | 'hello';

export class FrameGenerator {
  readonly counts: Record<PieceKind, number> = { valid: 0, bitflip: 0, field: 0, truncated: 0, random: 0, huge: 0, hello: 0 };
  /** Request ids of WAITs and WATCHes sent, for CANCELs to aim at. */
  private readonly parkedIds: number[] = [];

  constructor(
    private readonly rng: Rng,
    private readonly options: GeneratorOptions,
  ) {}

  /**
   * Any one piece of fuzz: mostly valid or lightly mutated frames (so the stream stays in sync for a while).
   * `fuzzRate` is the share of pieces that are not valid frames (1: the mix below; lower: longer valid runs).
   */
  piece(fuzzRate = 1): Buffer {
    const rng = this.rng;
    if (fuzzRate < 1 && !rng.chance(fuzzRate)) return this.count('valid', this.validFrame());
    const roll = rng.int(100);
    if (roll < 45) return this.count('valid', this.validFrame());
    if (roll < 60) return this.count('bitflip', this.bitFlip(this.validFrame()));
    if (roll < 82) return this.count('field', this.fieldOverwrite(this.validFrame()));
    if (roll < 88) return this.count('truncated', this.truncate(this.validFrame()));
    if (roll < 94) return this.count('random', this.randomBytes());
    if (roll < 97) return this.count('huge', this.hugeLength());
    return this.count('hello', this.hello());
  }

  /** A well-formed request of a random op with plausible (sometimes edge-case) key, value, flags and arg. */
  validFrame(
    op: number = this.rng.chance(0.9)
      ? this.rng.pick(COMMON_OPS)
      : this.rng.chance(0.7)
        ? this.rng.pick(REQUEST_OPS)
        : this.rng.pick(ODD_OPS),
  ): Buffer {
    const rng = this.rng;
    const id = rng.chance(0.1) ? rng.pick([0, 1, 0xffffffff]) : rng.range(1, 5000);
    const epoch = rng.chance(0.9) ? 0 : rng.chance(0.5) ? rng.range(0, 3) : rng.u32();
    let flags = rng.chance(0.8) ? 0 : rng.chance(0.5) ? rng.pick([0x0001, 0x0008, 0x0010, 0x0020, 0x0009]) : rng.int(0x10000);
    let arg = 0;
    let key = this.key();
    let value: Buffer = EMPTY;
    switch (op) {
      case Op.HELLO:
        return this.hello();
      case Op.PUT:
        value = this.value();
        if (!rng.chance(0.05)) flags &= 0x0009;
        break;
      case Op.LIST:
        key = rng.pick(PREFIXES);
        if (rng.chance(0.3)) value = rng.pick(KEYS);
        arg = rng.chance(0.7) ? rng.range(0, 20) : rng.u32();
        break;
      case Op.WAIT:
        // Mostly short timeouts so parked requests end within the test; some park until the connection closes.
        arg = rng.chance(0.8) ? rng.range(1, 30) : rng.chance(0.5) ? 0 : rng.u32();
        this.parkedIds.push(id);
        break;
      case Op.WATCH:
        key = rng.pick(PREFIXES);
        this.parkedIds.push(id);
        break;
      case Op.CANCEL:
        key = EMPTY;
        arg = this.parkedIds.length > 0 && rng.chance(0.8) ? rng.pick(this.parkedIds) : rng.u32();
        break;
      case Op.INCR: {
        const amount = Buffer.alloc(8);
        const choice = rng.int(6);
        if (choice === 0) amount.writeBigInt64BE(2n ** 53n - 1n);
        else if (choice === 1) amount.writeBigInt64BE(-(2n ** 63n));
        else if (choice === 2) amount.writeBigInt64BE(BigInt(rng.range(-5, 5)));
        else if (choice === 3) rng.bytes(8).copy(amount);
        else amount.writeBigInt64BE(1n);
        value = rng.chance(0.9) ? amount : rng.bytes(rng.range(0, 12));
        break;
      }
      case Op.DROP_JOB:
      case Op.ANNOUNCE:
        key = Buffer.from(rng.pick(['fuzz-nobody', 'x', '', '@admin']));
        arg = rng.chance(0.5) ? rng.range(0, 3) : rng.u32();
        break;
      case Op.PING:
        key = rng.chance(0.9) ? EMPTY : key;
        break;
      default:
        if (rng.chance(0.5)) value = this.value();
    }
    return encodeFrame({ code: op, flags, id, epoch, arg, key, value });
  }

  /** A HELLO with a known token (often valid) or garbage where the token goes. */
  hello(): Buffer {
    const rng = this.rng;
    const tokens = this.options.tokens ?? [];
    let token: Buffer;
    const roll = rng.int(10);
    if (roll < 4 && tokens.length > 0) token = Buffer.from(rng.pick(tokens));
    else if (roll < 5) token = EMPTY;
    else if (roll < 6) token = rng.bytes(rng.range(1, 64));
    else if (roll < 7) token = Buffer.from(`v1.${'a'.repeat(rng.range(0, 80))}.${'A'.repeat(rng.range(0, 40))}`);
    else if (roll < 8) token = Buffer.from('v1.@admin.' + 'x'.repeat(32));
    else if (roll < 9) token = rng.bytes(MAX_KEY_BYTES);
    else {
      // A valid token with one byte changed.
      token = Buffer.from(tokens.length > 0 ? rng.pick(tokens) : 'v1.job.mac');
      const at = rng.int(token.length);
      token[at] = token[at]! ^ (1 << rng.int(8));
    }
    return encodeFrame({ code: Op.HELLO, id: rng.chance(0.8) ? 0 : rng.u32(), key: token, arg: rng.chance(0.9) ? 0 : rng.u32() });
  }

  private key(): Buffer {
    const rng = this.rng;
    const roll = rng.int(100);
    if (roll < 75) return rng.pick(KEYS);
    if (roll < 80) return EMPTY;
    if (roll < 85) return rng.bytes(rng.range(1, 32)); // not UTF-8, usually
    if (roll < 88) return Buffer.from(`k\u0000${rng.int(10)}\u00000`); // an internal (block) key
    if (roll < 92) return Buffer.alloc(MAX_KEY_BYTES, 0x61);
    if (roll < 95) return Buffer.alloc(MAX_KEY_BYTES, 0xff);
    return Buffer.from(`k/${rng.u32()}`);
  }

  private value(): Buffer {
    const rng = this.rng;
    const roll = rng.int(1000);
    const maxValue = this.options.maxValue ?? 4096;
    if (roll < 700) return rng.bytes(rng.range(0, 64));
    if (roll < 900) return rng.bytes(rng.range(0, Math.min(maxValue, 4096)));
    if (roll < 990) return Buffer.from(String(rng.range(-100, 100))); // a counter's text
    return Buffer.alloc(rng.range(0, maxValue), 0x5a);
  }

  private bitFlip(frame: Buffer): Buffer {
    const rng = this.rng;
    const flips = rng.range(1, 3);
    for (let i = 0; i < flips; i++) {
      // Mostly in the header, where a flip matters most.
      const at = rng.chance(0.8) || frame.length === HEADER_SIZE ? rng.int(HEADER_SIZE) : rng.range(HEADER_SIZE, frame.length - 1);
      frame[at] = frame[at]! ^ (1 << rng.int(8));
    }
    return frame;
  }

  private fieldOverwrite(frame: Buffer): Buffer {
    const rng = this.rng;
    const body = frame.length - HEADER_SIZE;
    const maxBody = this.options.maxBody;
    switch (rng.int(9)) {
      case 0:
        frame[Field.Version] = rng.pick([0, 2, 3, 0x7f, 0xff, rng.int(256)]);
        break;
      case 1:
        frame[Field.Code] = rng.pick([...REQUEST_OPS, ...ODD_OPS, rng.int(256)]);
        break;
      case 2:
        frame.writeUInt16BE(rng.int(0x10000), Field.Flags);
        break;
      case 3: {
        const keyLength = rng.pick([0, body, body + 1, MAX_KEY_BYTES, MAX_KEY_BYTES + 1, 0xffff, rng.int(0x10000), Math.max(0, body - 1)]);
        frame.writeUInt16BE(keyLength & 0xffff, Field.KeyLength);
        break;
      }
      case 4:
        frame.writeUInt16BE(rng.range(1, 0xffff), Field.Reserved);
        break;
      case 5: {
        const bodyLength = rng.pick([
          0,
          Math.max(0, body - 1),
          body + 1,
          body + 24,
          maxBody,
          maxBody + 1,
          0x7fffffff,
          0xffffffff,
          rng.u32(),
          rng.int(1 << 16),
        ]);
        frame.writeUInt32BE(bodyLength >>> 0, Field.BodyLength);
        break;
      }
      case 6:
        frame.writeUInt32BE(rng.pick([0, 0xffffffff, rng.u32()]), Field.Id);
        break;
      case 7:
        frame.writeUInt32BE(rng.pick([0, 1, 0xffffffff, rng.u32()]), Field.Epoch);
        break;
      default:
        frame.writeUInt32BE(rng.pick([0, 1, 0xffffffff, rng.u32()]), Field.Arg);
    }
    return frame;
  }

  private truncate(frame: Buffer): Buffer {
    return frame.subarray(0, this.rng.int(frame.length));
  }

  private randomBytes(): Buffer {
    const rng = this.rng;
    const b = rng.bytes(rng.chance(0.8) ? rng.range(1, 48) : rng.range(1, 512));
    // Sometimes a plausible version byte, so the garbage gets past the first check.
    if (b.length > Field.Version && rng.chance(0.5)) b[Field.Version] = PROTOCOL_VERSION;
    return b;
  }

  /** A header that declares far more body than will ever be sent (or than the limit allows). */
  private hugeLength(): Buffer {
    const rng = this.rng;
    const maxBody = this.options.maxBody;
    const bodyLength = rng.pick([0xffffffff, 0x80000000, 0x7fffffff, maxBody + 1, maxBody * 2 + 7, 2 ** 30]);
    return encodeFrame({
      code: rng.pick([Op.PUT, Op.GET, Op.HELLO, Op.INCR, Op.WATCH, rng.int(256)]),
      id: rng.u32(),
      bodyLength,
      keyLength: rng.int(2) === 0 ? 0 : 3,
      key: EMPTY,
    });
  }

  private count(kind: PieceKind, b: Buffer): Buffer {
    this.counts[kind]++;
    return b;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The reference model of the decoder (proto/README.md "Bad input"), written for clarity, not speed.

export const enum ModelEventKind {
  Frame,
  Oversize,
  Error,
}

export interface ModelEvent {
  kind: ModelEventKind;
  code: number;
  flags: number;
  id: number;
  epoch: number;
  arg: number;
  keyLength: number;
  bodyLength: number;
  /** Where the body starts in the stream (frames only). */
  bodyStart: number;
}

export type ModelState =
  | { state: 'header'; partial: number }
  | { state: 'body'; remaining: number; bodyLength: number }
  | { state: 'skip'; remaining: number }
  | { state: 'dead' };

/**
 * What a conforming decoder does with `stream`, byte for byte: its callbacks in order, and where it is left.
 * `resume` continues an earlier call on a longer stream (the same bytes, more at the end): pass back the
 * `resumeAt` and `eventCount` that call returned, with its events array.
 */
export function modelDecode(
  stream: Buffer,
  /** The largest body, or what it is given the events so far (a node raises it once a HELLO succeeds). */
  maxBody: number | ((events: readonly ModelEvent[]) => number),
  events: ModelEvent[] = [],
  resume: { resumeAt: number; eventCount: number } = { resumeAt: 0, eventCount: 0 },
): { events: ModelEvent[]; end: ModelState; resumeAt: number; eventCount: number } {
  events.length = resume.eventCount;
  let at = resume.resumeAt;
  for (;;) {
    // Where the unit (header and body) being read starts, and the events before it: a later call resumes there.
    const unit = at;
    const before = events.length;
    if (stream.length - at < HEADER_SIZE)
      return { events, end: { state: 'header', partial: stream.length - at }, resumeAt: unit, eventCount: before };
    const version = stream[at + Field.Version]!;
    const reserved = stream.readUInt16BE(at + Field.Reserved);
    const event: ModelEvent = {
      kind: ModelEventKind.Frame,
      code: stream[at + Field.Code]!,
      flags: stream.readUInt16BE(at + Field.Flags),
      id: stream.readUInt32BE(at + Field.Id),
      epoch: stream.readUInt32BE(at + Field.Epoch),
      arg: stream.readUInt32BE(at + Field.Arg),
      keyLength: stream.readUInt16BE(at + Field.KeyLength),
      bodyLength: stream.readUInt32BE(at + Field.BodyLength),
      bodyStart: at + HEADER_SIZE,
    };
    at += HEADER_SIZE;
    if (version !== PROTOCOL_VERSION || reserved !== 0 || event.keyLength > MAX_KEY_BYTES || event.keyLength > event.bodyLength) {
      event.kind = ModelEventKind.Error;
      events.push(event);
      return { events, end: { state: 'dead' }, resumeAt: unit, eventCount: before };
    }
    if (event.bodyLength > (typeof maxBody === 'number' ? maxBody : maxBody(events))) {
      event.kind = ModelEventKind.Oversize;
      events.push(event);
      const rest = stream.length - at;
      if (rest < event.bodyLength)
        return { events, end: { state: 'skip', remaining: event.bodyLength - rest }, resumeAt: unit, eventCount: before };
      at += event.bodyLength;
      continue;
    }
    if (stream.length - at < event.bodyLength) {
      const end: ModelState = { state: 'body', remaining: event.bodyLength - (stream.length - at), bodyLength: event.bodyLength };
      return { events, end, resumeAt: unit, eventCount: before };
    }
    events.push(event);
    at += event.bodyLength;
  }
}

/** `bytes` cut into chunks of random sizes: single bytes, a few bytes, whole frames' worth, everything at once. */
export function randomChunks(rng: Rng, bytes: Buffer): Buffer[] {
  const chunks: Buffer[] = [];
  let at = 0;
  while (at < bytes.length) {
    const roll = rng.int(10);
    const size = roll < 2 ? 1 : roll < 4 ? rng.range(1, HEADER_SIZE + 8) : roll < 8 ? rng.range(1, 512) : bytes.length - at;
    chunks.push(bytes.subarray(at, Math.min(bytes.length, at + size)));
    at += size;
  }
  return chunks;
}

/** A buffer that grows by doubling, so a model can re-read the stream as each piece is added (both fuzzers). */
export class Growing {
  private buf = Buffer.allocUnsafe(4096);
  private length = 0;

  reset(): void {
    this.length = 0;
  }

  append(piece: Buffer): void {
    if (this.length + piece.length > this.buf.length) {
      const bigger = Buffer.allocUnsafeSlow(Math.max(this.buf.length * 2, this.length + piece.length));
      this.buf.copy(bigger, 0, 0, this.length);
      this.buf = bigger;
    }
    piece.copy(this.buf, this.length);
    this.length += piece.length;
  }

  view(): Buffer {
    return this.buf.subarray(0, this.length);
  }
}

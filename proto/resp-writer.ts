/**
 * RESP replies, in RESP2 or RESP3 (`version`, switched by HELLO), encoded into a slab and handed to the sink in
 * one corked batch per flush, as FrameWriter does for frames (writer.ts): small replies packed back to back, a
 * value over COPY_THRESHOLD written by reference with a `sent` callback once the sink is done with it.
 */
import { type ByteSink, COPY_THRESHOLD } from './writer.ts';

const SLAB_SIZE = 64 * 1024;
/** Flush without waiting for the caller once this much is queued, so a long pipeline keeps the socket busy. */
const FLUSH_THRESHOLD = 256 * 1024;
/** Encoded bytes up to this much are moved to a new slab rather than flushed as a segment of their own (`room`). */
const CARRY_BYTES = 32 * 1024;
const CRLF = '\r\n';

export class RespWriter {
  /** 2 or 3: what RESP3 types become in RESP2 (maps as flat arrays, null as `$-1`, verbatim as bulk). */
  version: 2 | 3 = 2;
  private slab = Buffer.allocUnsafeSlow(SLAB_SIZE);
  private start = 0;
  private pos = 0;
  private readonly queued: Uint8Array[] = [];
  private readonly sentCallbacks: (((error?: Error | null) => void) | undefined)[] = [];
  /**
   * The slab of each flushed slab segment the sink has not called back for yet, in order (the sink calls back
   * in order), from `inFlightHead` on; `slabInFlight` of them are the current slab's. With none, and nothing of
   * it queued, the slab is free to be written over from its start (`room`).
   */
  private readonly inFlight: Buffer[] = [];
  /** The slab each queued segment was cut from (unset for a value queued by reference). */
  private readonly segmentSlabs: (Buffer | undefined)[] = [];
  private inFlightHead = 0;
  private slabInFlight = 0;
  private readonly written = (): void => {
    const slab = this.inFlight[this.inFlightHead++];
    if (this.inFlightHead === this.inFlight.length) {
      this.inFlight.length = 0;
      this.inFlightHead = 0;
    }
    if (slab === this.slab) this.slabInFlight--;
  };
  private queuedBytes = 0;
  /** Every byte encoded so far (replies are counted by the difference). */
  bytesEncoded = 0;

  constructor(private readonly sink: ByteSink) {}

  get pendingBytes(): number {
    return this.queuedBytes + (this.pos - this.start);
  }

  simple(text: string): void {
    this.room(text.length + 3);
    const at = this.pos;
    this.slab[this.pos++] = 0x2b; // +
    this.latin1(text);
    this.crlf();
    this.encoded(at);
  }

  /**
   * `text` is the whole error (prefix first: `ERR …`, `MOVED 3999 host:port`); CR and LF become spaces. In UTF-8:
   * latin1 would write a character past \xff as its low byte, a CR or LF for some (Ċ, U+010A, from an argument
   * decoded as UTF-8, broke the line).
   */
  error(text: string): void {
    const line = `-${text.replace(/[\r\n]+/g, ' ')}${CRLF}`;
    const length = Buffer.byteLength(line);
    this.room(length);
    this.pos += this.slab.write(line, this.pos, 'utf8');
    this.bytesEncoded += length;
    this.maybeFlush();
  }

  integer(n: number): void {
    if (!Number.isSafeInteger(n)) return this.ascii(`:${n}${CRLF}`);
    this.header(0x3a /* : */, n);
  }

  /** A bulk string; null is RESP2's `$-1` or RESP3's `_`. */
  bulk(value: Uint8Array | string | null, sent?: () => void): void {
    if (value === null) return this.ascii(this.version === 3 ? `_${CRLF}` : `$-1${CRLF}`);
    if (typeof value === 'string') {
      const length = Buffer.byteLength(value);
      this.room(length + 24);
      const at = this.pos;
      this.lengthHeader(0x24 /* $ */, length);
      this.pos += this.slab.write(value, this.pos, 'utf8');
      this.crlf();
      this.encoded(at);
      return this.maybeFlush();
    }
    if (value.length <= COPY_THRESHOLD) {
      // Header and CRLF written as bytes, no string built per reply (`satchel bench resp`: GET -P 16 of 1 KiB
      // values spent 4 % of the node's CPU formatting and writing the `$1024\r\n` strings).
      this.room(value.length + 24);
      const at = this.pos;
      this.lengthHeader(0x24 /* $ */, value.length);
      this.slab.set(value, this.pos);
      this.pos += value.length;
      this.crlf();
      this.encoded(at);
      return this.maybeFlush();
    }
    this.header(0x24 /* $ */, value.length);
    this.cut();
    this.queued.push(value);
    this.sentCallbacks[this.queued.length - 1] = sent;
    this.queuedBytes += value.length;
    this.bytesEncoded += value.length;
    this.ascii(CRLF);
  }

  array(n: number): void {
    this.header(0x2a /* * */, n);
  }

  /** A map of n pairs (RESP2: a flat array of 2n). */
  map(n: number): void {
    if (this.version === 3) this.header(0x25 /* % */, n);
    else this.header(0x2a /* * */, n * 2);
  }

  set(n: number): void {
    this.header(this.version === 3 ? 0x7e /* ~ */ : 0x2a /* * */, n);
  }

  /** An out-of-band push (pub/sub messages; RESP2: an array). */
  push(n: number): void {
    this.header(this.version === 3 ? 0x3e /* > */ : 0x2a /* * */, n);
  }

  /** Text for people (INFO, CLUSTER NODES): RESP3's verbatim string, a bulk string in RESP2. */
  verbatim(text: string): void {
    if (this.version === 2) return this.bulk(text);
    const body = `txt:${text}`;
    const length = Buffer.byteLength(body);
    this.room(length + 24);
    const header = `=${length}${CRLF}`;
    this.pos += this.slab.write(header, this.pos, 'latin1');
    this.pos += this.slab.write(body, this.pos, 'utf8');
    this.pos += this.slab.write(CRLF, this.pos, 'latin1');
    this.bytesEncoded += header.length + length + 2;
    this.maybeFlush();
  }

  /** Hands everything encoded to the sink in one corked batch (one segment, the usual flush: written as it is). */
  flush(): void {
    this.cut();
    const queued = this.queued.length;
    if (queued === 0) return;
    const sink = this.sink;
    if (queued === 1) sink.write(this.queued[0]!, this.sent(0));
    else {
      sink.cork?.();
      for (let i = 0; i < queued; i++) sink.write(this.queued[i]!, this.sent(i));
      sink.uncork?.();
    }
    this.queued.length = 0;
    this.sentCallbacks.length = 0;
    this.segmentSlabs.length = 0;
    this.queuedBytes = 0;
  }

  /** Queued segment `i`'s callback: a value's own `sent`, or for a slab segment `written` (counted in flight). */
  private sent(i: number): ((error?: Error | null) => void) | undefined {
    const slab = this.segmentSlabs[i];
    if (slab === undefined) return this.sentCallbacks[i];
    this.inFlight.push(slab);
    if (slab === this.slab) this.slabInFlight++;
    return this.written;
  }

  private ascii(text: string): void {
    this.room(text.length);
    const at = this.pos;
    this.latin1(text);
    this.encoded(at);
  }

  /** `type` then the integer `n` then CRLF: a length or an integer reply, written as bytes. */
  private header(type: number, n: number): void {
    this.room(24);
    const at = this.pos;
    this.lengthHeader(type, n);
    this.encoded(at);
  }

  /** `type`, the safe integer `n` in decimal, CRLF, at `pos` (room made by the caller: 21 bytes at most). */
  private lengthHeader(type: number, n: number): void {
    const slab = this.slab;
    slab[this.pos++] = type;
    if (n < 0) {
      slab[this.pos++] = 0x2d; // -
      n = -n;
    }
    let digits = 1;
    for (let rest = n; rest >= 10; rest = Math.floor(rest / 10)) digits++;
    let p = this.pos + digits;
    this.pos = p;
    do {
      slab[--p] = 0x30 + (n % 10);
      n = Math.floor(n / 10);
    } while (n > 0);
    this.crlf();
  }

  private crlf(): void {
    this.slab[this.pos++] = 0x0d;
    this.slab[this.pos++] = 0x0a;
  }

  /** `text`'s chars as bytes (latin1), at `pos` (room made by the caller). Short texts byte by byte. */
  private latin1(text: string): void {
    if (text.length > 64) {
      this.pos += this.slab.write(text, this.pos, 'latin1');
      return;
    }
    const slab = this.slab;
    let pos = this.pos;
    for (let i = 0; i < text.length; i++) slab[pos++] = text.charCodeAt(i);
    this.pos = pos;
  }

  /** What was encoded since `at` is counted, and flushed when enough is queued. */
  private encoded(at: number): void {
    this.bytesEncoded += this.pos - at;
    this.maybeFlush();
  }

  /**
   * Room for `bytes` more in the slab. When it is short and the sink has called back for every segment of it
   * (a socket does once it wrote them: the next event-loop turn on loopback), the part not flushed yet moves to
   * its start and the slab is used again: a 64 KiB allocUnsafeSlow costs ~3 µs and external memory for the
   * collector, once per four turns of `-t get -P 16` per connection. Else a new slab. What is encoded and not
   * queued yet moves to
   * the new slab when it is all that waits for the flush and small (the usual turn's answers): the flush is then
   * one write, not a writev of two segments. Under `redis-benchmark -t get -P 16 -c 50` (16.5 KB of answers per
   * connection per turn) every fourth flush was a writev (2,985 of the node's 12,522 writes for 200,000 GETs,
   * strace; 6 after), whose stream path around the syscall (cork, uncork, the chunk list) took ~1 % of the
   * node's CPU (profile, 2026-12-04). Otherwise the encoded part is queued as it is.
   */
  private room(bytes: number): void {
    if (this.pos + bytes <= this.slab.length) return;
    const pending = this.pos - this.start;
    if (this.queued.length === 0 && this.slabInFlight === 0 && pending + bytes <= this.slab.length) {
      // The sink is done with every segment of this slab: its start is written over, no new slab.
      this.slab.copyWithin(0, this.start, this.pos);
      this.start = 0;
      this.pos = pending;
      return;
    }
    if (this.queued.length === 0 && pending <= CARRY_BYTES) {
      const slab = Buffer.allocUnsafeSlow(Math.max(SLAB_SIZE, pending + bytes));
      this.slab.copy(slab, 0, this.start, this.pos);
      this.slab = slab;
      this.slabInFlight = 0;
      this.start = 0;
      this.pos = pending;
      return;
    }
    this.cut();
    this.slab = Buffer.allocUnsafeSlow(Math.max(SLAB_SIZE, bytes));
    this.slabInFlight = 0;
    this.start = 0;
    this.pos = 0;
  }

  /** Queues the slab's encoded bytes not yet queued (a segment the slab never touches again). */
  private cut(): void {
    if (this.pos === this.start) return;
    this.segmentSlabs[this.queued.length] = this.slab;
    this.queued.push(this.slab.subarray(this.start, this.pos));
    this.queuedBytes += this.pos - this.start;
    this.start = this.pos;
  }

  private maybeFlush(): void {
    if (this.pendingBytes >= FLUSH_THRESHOLD) this.flush();
  }
}

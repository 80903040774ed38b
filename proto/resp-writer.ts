/**
 * RESP replies, in RESP2 or RESP3 (`version`, switched by HELLO), encoded into a slab and handed to the sink in
 * one corked batch per flush, as FrameWriter does for frames (writer.ts): small replies packed back to back, a
 * value over COPY_THRESHOLD written by reference with a `sent` callback once the sink is done with it.
 */
import { type ByteSink, COPY_THRESHOLD } from './writer.ts';

const SLAB_SIZE = 64 * 1024;
/** Flush without waiting for the caller once this much is queued, so a long pipeline keeps the socket busy. */
const FLUSH_THRESHOLD = 256 * 1024;
const CRLF = '\r\n';

export class RespWriter {
  /** 2 or 3: what RESP3 types become in RESP2 (maps as flat arrays, null as `$-1`, verbatim as bulk). */
  version: 2 | 3 = 2;
  private slab = Buffer.allocUnsafeSlow(SLAB_SIZE);
  private start = 0;
  private pos = 0;
  private readonly queued: Uint8Array[] = [];
  private readonly sentCallbacks: (((error?: Error | null) => void) | undefined)[] = [];
  private queuedBytes = 0;
  /** Every byte encoded so far (replies are counted by the difference). */
  bytesEncoded = 0;

  constructor(private readonly sink: ByteSink) {}

  get pendingBytes(): number {
    return this.queuedBytes + (this.pos - this.start);
  }

  simple(text: string): void {
    this.ascii(`+${text}${CRLF}`);
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
    this.ascii(`:${n}${CRLF}`);
  }

  /** A bulk string; null is RESP2's `$-1` or RESP3's `_`. */
  bulk(value: Uint8Array | string | null, sent?: () => void): void {
    if (value === null) return this.ascii(this.version === 3 ? `_${CRLF}` : `$-1${CRLF}`);
    if (typeof value === 'string') {
      const length = Buffer.byteLength(value);
      this.room(length + 24);
      this.pos += this.slab.write(`$${length}${CRLF}`, this.pos, 'latin1');
      this.pos += this.slab.write(value, this.pos, 'utf8');
      this.pos += this.slab.write(CRLF, this.pos, 'latin1');
      this.bytesEncoded += length + String(length).length + 5;
      return this.maybeFlush();
    }
    const header = `$${value.length}${CRLF}`;
    if (value.length <= COPY_THRESHOLD) {
      this.room(value.length + header.length + 2);
      this.pos += this.slab.write(header, this.pos, 'latin1');
      this.slab.set(value, this.pos);
      this.pos += value.length;
      this.pos += this.slab.write(CRLF, this.pos, 'latin1');
      this.bytesEncoded += header.length + value.length + 2;
      return this.maybeFlush();
    }
    this.ascii(header);
    this.cut();
    this.queued.push(value);
    this.sentCallbacks[this.queued.length - 1] = sent;
    this.queuedBytes += value.length;
    this.bytesEncoded += value.length;
    this.ascii(CRLF);
  }

  array(n: number): void {
    this.ascii(`*${n}${CRLF}`);
  }

  /** A map of n pairs (RESP2: a flat array of 2n). */
  map(n: number): void {
    this.ascii(this.version === 3 ? `%${n}${CRLF}` : `*${n * 2}${CRLF}`);
  }

  set(n: number): void {
    this.ascii(this.version === 3 ? `~${n}${CRLF}` : `*${n}${CRLF}`);
  }

  /** An out-of-band push (pub/sub messages; RESP2: an array). */
  push(n: number): void {
    this.ascii(this.version === 3 ? `>${n}${CRLF}` : `*${n}${CRLF}`);
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

  /** Hands everything encoded to the sink in one corked batch. */
  flush(): void {
    this.cut();
    if (this.queued.length === 0) return;
    const sink = this.sink;
    sink.cork?.();
    for (let i = 0; i < this.queued.length; i++) sink.write(this.queued[i]!, this.sentCallbacks[i]);
    sink.uncork?.();
    this.queued.length = 0;
    this.sentCallbacks.length = 0;
    this.queuedBytes = 0;
  }

  private ascii(text: string): void {
    this.room(text.length);
    this.pos += this.slab.write(text, this.pos, 'latin1');
    this.bytesEncoded += text.length;
    this.maybeFlush();
  }

  /** Room for `bytes` more in the slab: the written part is queued and a new slab started when it is short. */
  private room(bytes: number): void {
    if (this.pos + bytes <= this.slab.length) return;
    this.cut();
    this.slab = Buffer.allocUnsafeSlow(Math.max(SLAB_SIZE, bytes));
    this.start = 0;
    this.pos = 0;
  }

  /** Queues the slab's encoded bytes not yet queued (a segment the slab never touches again). */
  private cut(): void {
    if (this.pos === this.start) return;
    this.queued.push(this.slab.subarray(this.start, this.pos));
    this.queuedBytes += this.pos - this.start;
    this.start = this.pos;
  }

  private maybeFlush(): void {
    if (this.pendingBytes >= FLUSH_THRESHOLD) this.flush();
  }
}

import { HEADER_SIZE, PROTOCOL_VERSION } from './frame.ts';

/** Where encoded frames go: a net.Socket, or anything with its write/cork/uncork (tests use an array). */
export interface ByteSink {
  write(chunk: Uint8Array, done?: (error?: Error | null) => void): unknown;
  cork?(): void;
  uncork?(): void;
}

const SLAB_SIZE = 64 * 1024;
/** Values up to this size are copied next to their header; larger ones are written as they are (zero copy). */
export const COPY_THRESHOLD = 16 * 1024;
/** Flush without waiting for the caller once this much is queued, so a long pipeline keeps the socket busy. */
const FLUSH_THRESHOLD = 256 * 1024;
const MAX_KEY_ENCODED = 3 * 1024; // worst case UTF-8 bytes of a key the caller has validated
/** Slabs kept for the next writers (`release`): 64 of them, 4 MiB at most per process. */
const SPARE_SLABS_KEPT = 64;
const EMPTY = Buffer.alloc(0);

/**
 * Slabs of writers whose connections ended, for the next connections: a serverless function opens a connection
 * per invocation, and a fresh slab per connection was 5 % of a node's CPU answering one GET per connection, the
 * allocation and its count against V8's external memory (which starts collections), and its pages' first touch
 * (perf/RESULTS.md, 2026-12-07 evening).
 */
const spareSlabs: Buffer[] = [];

function takeSlab(): Buffer {
  return spareSlabs.pop() ?? Buffer.allocUnsafeSlow(SLAB_SIZE);
}

/**
 * Encodes frames into a shared slab and hands them to the sink in one corked batch (one writev).
 *
 * Small frames are packed back to back in a 64 KiB slab carved like Node's Buffer pool: a written segment is
 * never touched again, a new slab replaces a full one. So a pipelined burst of small requests costs one
 * allocation per 64 KiB and one syscall per flush, not one of each per frame (figures: perf/RESULTS.md).
 */
export class FrameWriter {
  /** Empty until the first frame, and again once released (`release`). */
  private slab: Buffer = EMPTY;
  private start = 0; // first byte of the slab not yet handed to the sink
  private pos = 0; // next free byte of the slab
  private readonly queued: Uint8Array[] = [];
  /** `queued[i]`'s `sent` callback where it has one (shorter than `queued` when the last ones have none). */
  private readonly sentCallbacks: (((error?: Error | null) => void) | undefined)[] = [];
  private queuedBytes = 0;

  constructor(private readonly sink: ByteSink) {}

  /** Bytes encoded but not yet handed to the sink. */
  get pendingBytes(): number {
    return this.queuedBytes + (this.pos - this.start);
  }

  /**
   * Appends one frame. `key` must already be validated (UTF-8 length within MAX_KEY_BYTES); `value` may be
   * null. `sent`, for a value over COPY_THRESHOLD (written by reference), runs once the sink is done with it
   * (written, or the connection gone): from then on its memory may be reused. A value copied into the slab is
   * free as soon as this returns, and `sent` is not called for it.
   */
  frame(
    code: number,
    flags: number,
    id: number,
    epoch: number,
    arg: number,
    key: string,
    value: Uint8Array | null,
    sent?: (error?: Error | null) => void,
  ): void {
    const valueLength = value === null ? 0 : value.length;
    const copyValue = valueLength <= COPY_THRESHOLD;
    const need = HEADER_SIZE + MAX_KEY_ENCODED + (copyValue ? valueLength : 0);
    if (this.slab.length - this.pos < need) this.newSlab();
    const slab = this.slab;
    const at = this.pos;
    const keyLength = key.length === 0 ? 0 : slab.write(key, at + HEADER_SIZE, 'utf8');
    slab.writeUInt32BE(keyLength + valueLength, at);
    slab[at + 4] = PROTOCOL_VERSION;
    slab[at + 5] = code;
    slab.writeUInt16BE(flags, at + 6);
    slab.writeUInt32BE(id, at + 8);
    slab.writeUInt32BE(epoch, at + 12);
    slab.writeUInt32BE(arg, at + 16);
    slab.writeUInt16BE(keyLength, at + 20);
    slab.writeUInt16BE(0, at + 22);
    this.pos = at + HEADER_SIZE + keyLength;
    if (valueLength > 0) {
      if (copyValue) {
        slab.set(value!, this.pos);
        this.pos += valueLength;
      } else {
        this.cutSegment();
        if (sent !== undefined) {
          while (this.sentCallbacks.length < this.queued.length) this.sentCallbacks.push(undefined);
          this.sentCallbacks.push(sent);
        }
        this.queued.push(value!);
        this.queuedBytes += valueLength;
      }
    }
    if (this.pendingBytes >= FLUSH_THRESHOLD) this.flush();
  }

  /** Hands everything encoded so far to the sink as one corked batch. */
  flush(): void {
    this.cutSegment();
    const queued = this.queued;
    if (queued.length === 0) return;
    const sink = this.sink;
    const sent = this.sentCallbacks;
    if (queued.length === 1) {
      sink.write(queued[0]!, sent[0]);
    } else {
      sink.cork?.();
      for (let i = 0; i < queued.length; i++) sink.write(queued[i]!, sent[i]);
      sink.uncork?.();
    }
    queued.length = 0;
    sent.length = 0;
    this.queuedBytes = 0;
  }

  private cutSegment(): void {
    if (this.pos > this.start) {
      this.queued.push(this.slab.subarray(this.start, this.pos));
      this.queuedBytes += this.pos - this.start;
      this.start = this.pos;
    }
  }

  private newSlab(): void {
    this.cutSegment();
    this.slab = takeSlab();
    this.start = 0;
    this.pos = 0;
  }

  /**
   * The sink is gone for good (its socket's 'close': every write it was handed has been written or dropped):
   * the slab goes to the next writer, and what was not flushed is dropped. A frame after this starts a slab of
   * its own, so a late answer to a closed connection never lands in another connection's bytes.
   */
  release(): void {
    // A value queued by reference and never handed over: its owner is told it is free, as the sink would.
    for (const done of this.sentCallbacks) done?.(new Error('connection closed'));
    const slab = this.slab;
    this.slab = EMPTY;
    this.start = 0;
    this.pos = 0;
    this.queued.length = 0;
    this.sentCallbacks.length = 0;
    this.queuedBytes = 0;
    if (slab.length === SLAB_SIZE && spareSlabs.length < SPARE_SLABS_KEPT) spareSlabs.push(slab);
  }
}

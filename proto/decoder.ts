import { SatchelError } from './errors.ts';
import { Field, HEADER_SIZE, MAX_KEY_BYTES, PROTOCOL_VERSION } from './frame.ts';

/**
 * One decoded frame. The decoder reuses a single instance for every frame, so a consumer reads what it needs
 * inside the callback and keeps nothing but `buf` (and `buf` only when `owned`).
 */
export interface FrameView {
  code: number;
  flags: number;
  id: number;
  epoch: number;
  arg: number;
  keyLength: number;
  bodyLength: number;
  /** Holds the body at [bodyStart, bodyStart + bodyLength): the key, then the value. */
  buf: Buffer;
  bodyStart: number;
  /** True when `buf` was assembled for this frame alone, so a consumer may keep it instead of copying. */
  owned: boolean;
}

export interface FrameDecoderOptions {
  /** Largest body accepted; a bigger one is reported to `onOversize` and its bytes skipped. */
  maxBody: number;
  onFrame(frame: FrameView): void;
  /** The header of a frame whose body was too large; `buf` is empty. The connection stays usable. */
  onOversize(frame: FrameView): void;
  /** A header that cannot be trusted (wrong version, bad lengths): the stream cannot be resynchronised. */
  onError(error: SatchelError): void;
  /**
   * Where a body that spans chunks is assembled (default Buffer.allocUnsafe), given the frame's header: a node
   * recycles large ones, a client reads a block into the value it is part of.
   */
  allocate?(size: number, frame: FrameView): Buffer;
}

const EMPTY = Buffer.alloc(0);

const enum State {
  Header,
  Body,
  Skip,
  Dead,
}

/**
 * A length-prefix decoder as a state machine over `subarray` views, in the manner of grpc-js's
 * stream-decoder: a frame that lies wholly inside one chunk is handed out as a view of that chunk (no copy);
 * only a frame that spans chunks is copied, once, into a buffer of its exact size. No `Buffer.concat` per
 * chunk, which is quadratic on large values.
 */
export class FrameDecoder {
  private state = State.Header;
  private readonly header = Buffer.alloc(HEADER_SIZE);
  private headerFill = 0;
  private body: Buffer = EMPTY;
  private bodyFill = 0;
  private skipLeft = 0;
  private readonly view: FrameView = {
    code: 0,
    flags: 0,
    id: 0,
    epoch: 0,
    arg: 0,
    keyLength: 0,
    bodyLength: 0,
    buf: EMPTY,
    bodyStart: 0,
    owned: false,
  };

  constructor(private readonly options: FrameDecoderOptions) {}

  /** Changes the largest body accepted from the next header on (a node raises it once a HELLO succeeds). */
  limit(maxBody: number): void {
    this.options.maxBody = maxBody;
  }

  get dead(): boolean {
    return this.state === State.Dead;
  }

  /**
   * If the frame being read is being assembled into `body` (from `allocate`), the rest of it is skipped and it is
   * never delivered: its reader gave up on it (a timed-out request), and `body` is no longer ours to write.
   */
  abandon(body: Buffer): void {
    if (this.state !== State.Body || this.body !== body) return;
    this.skipLeft = body.length - this.bodyFill;
    this.body = EMPTY;
    this.state = State.Skip;
  }

  push(chunk: Buffer): void {
    let offset = 0;
    const end = chunk.length;
    while (offset < end) {
      switch (this.state) {
        case State.Header: {
          if (this.headerFill === 0 && end - offset >= HEADER_SIZE) {
            // Fast path: the whole header is in this chunk.
            if (!this.readHeader(chunk, offset)) return;
            offset += HEADER_SIZE;
          } else {
            const n = Math.min(HEADER_SIZE - this.headerFill, end - offset);
            chunk.copy(this.header, this.headerFill, offset, offset + n);
            this.headerFill += n;
            offset += n;
            if (this.headerFill < HEADER_SIZE) return;
            this.headerFill = 0;
            if (!this.readHeader(this.header, 0)) return;
          }
          const view = this.view;
          const bodyLength = view.bodyLength;
          if (bodyLength > this.options.maxBody) {
            view.buf = EMPTY;
            view.bodyStart = 0;
            view.owned = false;
            this.options.onOversize(view);
            this.skipLeft = bodyLength;
            this.state = State.Skip;
            continue;
          }
          if (end - offset >= bodyLength) {
            view.buf = chunk;
            view.bodyStart = offset;
            view.owned = false;
            offset += bodyLength;
            this.options.onFrame(view);
            continue;
          }
          this.body = this.options.allocate ? this.options.allocate(bodyLength, view) : Buffer.allocUnsafe(bodyLength);
          this.bodyFill = 0;
          this.state = State.Body;
          continue;
        }
        case State.Body: {
          const n = Math.min(this.body.length - this.bodyFill, end - offset);
          chunk.copy(this.body, this.bodyFill, offset, offset + n);
          this.bodyFill += n;
          offset += n;
          if (this.bodyFill < this.body.length) return;
          const view = this.view;
          view.buf = this.body;
          view.bodyStart = 0;
          view.owned = true;
          this.body = EMPTY;
          this.state = State.Header;
          this.options.onFrame(view);
          continue;
        }
        case State.Skip: {
          const n = Math.min(this.skipLeft, end - offset);
          this.skipLeft -= n;
          offset += n;
          if (this.skipLeft === 0) this.state = State.Header;
          continue;
        }
        case State.Dead:
          return;
      }
    }
  }

  private readHeader(b: Buffer, at: number): boolean {
    const view = this.view;
    const version = b[at + Field.Version];
    view.bodyLength = b.readUInt32BE(at + Field.BodyLength);
    view.code = b[at + Field.Code]!;
    view.flags = b.readUInt16BE(at + Field.Flags);
    view.id = b.readUInt32BE(at + Field.Id);
    view.epoch = b.readUInt32BE(at + Field.Epoch);
    view.arg = b.readUInt32BE(at + Field.Arg);
    view.keyLength = b.readUInt16BE(at + Field.KeyLength);
    const reserved = b.readUInt16BE(at + Field.Reserved);
    let problem: string | null = null;
    if (version !== PROTOCOL_VERSION) problem = `unsupported protocol version ${version}`;
    else if (reserved !== 0) problem = 'reserved header field is not zero';
    else if (view.keyLength > MAX_KEY_BYTES) problem = `key of ${view.keyLength} bytes exceeds ${MAX_KEY_BYTES}`;
    else if (view.keyLength > view.bodyLength) problem = 'key length exceeds body length';
    if (problem === null) return true;
    this.state = State.Dead;
    this.options.onError(new SatchelError('BAD_REQUEST', `malformed frame: ${problem}`));
    return false;
  }
}

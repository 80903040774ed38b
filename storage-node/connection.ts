// One client connection of the node's own protocol, below what its requests mean: the frame decoder and writer,
// the pre-HELLO allowance, malformed frames. client-connection.ts is its transport and limits; session.ts the
// rest: HELLO and the data, coordination and admin operations.
import type net from 'node:net';
import {
  FrameDecoder,
  type FrameView,
  FrameWriter,
  HEADER_SIZE,
  MAX_KEY_BYTES,
  type SatchelError,
  type StatusCode,
  statusOf,
} from '../proto/index.ts';
import { ClientConnection, type SessionHost } from './client-connection.ts';
import { opKindOf } from './metrics.ts';
import { PRE_AUTH_MAX_FRAMES } from './server-options.ts';

export { isPromise, type SessionHost } from './client-connection.ts';

/** A connection of the node's frame protocol; `handle` (session.ts) answers its frames. */
export abstract class Connection extends ClientConnection {
  protected readonly decoder: FrameDecoder;
  private readonly writer: FrameWriter;
  protected readonly authName = 'HELLO';
  /** Frames received before a HELLO succeeded (at most PRE_AUTH_MAX_FRAMES are answered). */
  private preAuthFrames = 0;

  constructor(server: SessionHost, socket: net.Socket) {
    // Frames keep nothing of a read chunk: the decoder copies a frame that spans reads, and a PUT copies its value
    // unless the decoder assembled it (session.ts), so reads may land in the shared buffer.
    super(server, socket, true);
    this.writer = new FrameWriter(socket);
    this.decoder = new FrameDecoder({
      // Until a HELLO succeeds a frame carries at most a token: a stranger cannot make the node buffer a value.
      maxBody: MAX_KEY_BYTES,
      onFrame: (frame) => this.onFrame(frame),
      onOversize: (frame) => {
        if (this.closing || this.preAuthOver()) return;
        this.opKind = opKindOf(frame.code);
        this.fail(
          frame.id,
          frame.epoch,
          'TOO_LARGE',
          `value of ${frame.bodyLength} bytes exceeds the node's limit of ${server.maxValueBytes}`,
        );
        this.opKind = -1;
      },
      onError: (error) => this.protocolError(error),
      allocate: (size) => server.pool.allocate(size),
    });
  }

  /** The socket closed: its writer's slab goes to the next connection (proto/writer.ts `release`). */
  override released(): void {
    this.writer.release();
    super.released();
  }

  protected received(chunk: Buffer): void {
    this.decoder.push(chunk);
  }

  protected pendingOutput(): number {
    return this.writer.pendingBytes;
  }

  protected flushOutput(): void {
    this.writer.flush();
  }

  /** Before a successful HELLO: counts a frame, and closes the connection once past PRE_AUTH_MAX_FRAMES. */
  private preAuthOver(): boolean {
    if (this.jobId !== null || this.admin || ++this.preAuthFrames <= PRE_AUTH_MAX_FRAMES) return false;
    // The answers given so far go out, then the connection ends (`flush`); nothing more is read from it.
    this.endAfterAnswers('pre_auth_output', `more than ${PRE_AUTH_MAX_FRAMES} frames before a HELLO`);
    return true;
  }

  private protocolError(error: SatchelError): void {
    if (this.closing) return; // already answered and ended: nothing more may be written
    this.server.options.logger.warn({ remote: this.socket.remoteAddress, reason: error.message }, 'closing connection: malformed frame');
    this.fail(0, 0, 'BAD_REQUEST', error.message);
    this.closing = true;
    this.flush();
  }

  protected respond(
    status: StatusCode,
    flags: number,
    id: number,
    epoch: number,
    arg: number,
    body: Uint8Array | null,
    sent?: () => void,
  ): void {
    this.writer.frame(status, flags, id, epoch, arg, '', body, sent);
    this.answered(status, HEADER_SIZE + (body === null ? 0 : body.length));
  }

  /** An answer to a parked WAIT or WATCH (coordination.ts), outside the request being handled. */
  push(status: StatusCode, flags: number, id: number, epoch: number, arg: number, key: string, body: Uint8Array | null): void {
    if (this.socket.destroyed || this.closing) return;
    this.writer.frame(status, flags, id, epoch, arg, key, body);
    this.pushed(HEADER_SIZE + (key.length === 0 ? 0 : Buffer.byteLength(key)) + (body === null ? 0 : body.length));
  }

  protected fail(id: number, epoch: number, code: SatchelError['code'], message: string): void {
    this.respond(statusOf(code), 0, id, epoch, 0, Buffer.from(message));
  }

  /** The node's service time runs from here to the answer being queued (`respond`). */
  private onFrame(f: FrameView): void {
    if (this.closing || this.preAuthOver()) return;
    this.begin(opKindOf(f.code));
    this.handle(f);
    // Parked (WAIT, WATCH: answered later by `push`, counted for the job by neither) or left to an engine's
    // promise (settle kept the job's counts): the session is free from now.
    this.handled();
  }

  /** Answers one frame, HELLO included: by `respond`, `fail`, or `settle` of an engine's result. */
  protected abstract handle(f: FrameView): void;
}

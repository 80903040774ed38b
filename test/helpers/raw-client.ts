/**
 * Test helpers: a raw data-plane socket (sends arbitrary bytes, collects decoded answers) and small utilities.
 * Not a test file itself (ava runs `*.test.ts` only).
 */
import net from 'node:net';
import { Field, FrameDecoder, FrameWriter, HEADER_SIZE, PROTOCOL_VERSION } from '../../proto/index.ts';
import { waitFor } from './wait.ts';

export interface RawFrame {
  code: number;
  flags: number;
  id: number;
  epoch: number;
  arg: number;
  body: Buffer;
}

export class RawClient {
  readonly frames: RawFrame[] = [];
  /** Resolves when the server closed (or reset) the connection. */
  readonly closed: Promise<void>;
  private waiters: (() => void)[] = [];
  private readonly writer: FrameWriter;

  private constructor(readonly socket: net.Socket) {
    const decoder = new FrameDecoder({
      maxBody: 2 ** 31 - 1,
      onFrame: (f) => {
        this.frames.push({
          code: f.code,
          flags: f.flags,
          id: f.id,
          epoch: f.epoch,
          arg: f.arg,
          body: Buffer.from(f.buf.subarray(f.bodyStart, f.bodyStart + f.bodyLength)),
        });
        this.wake();
      },
      onOversize: () => {},
      onError: (error) => socket.destroy(error),
    });
    socket.on('data', (chunk: Buffer) => decoder.push(chunk));
    socket.on('error', () => {});
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
    void this.closed.then(() => this.wake());
    this.writer = new FrameWriter(socket);
  }

  static connect(address: string): Promise<RawClient> {
    const [host, port] = splitAddress(address);
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host, port, noDelay: true });
      socket.once('connect', () => resolve(new RawClient(socket)));
      socket.once('error', reject);
    });
  }

  /** Encodes and sends one frame. */
  send(
    code: number,
    id: number,
    key = '',
    value: Uint8Array | null = null,
    options: { flags?: number; epoch?: number; arg?: number } = {},
  ): void {
    this.writer.frame(code, options.flags ?? 0, id, options.epoch ?? 0, options.arg ?? 0, key, value);
    this.writer.flush();
  }

  /** Sends bytes as they are. */
  write(bytes: Uint8Array): void {
    this.socket.write(bytes);
  }

  /** Waits until `count` frames have arrived in all (or the connection closed), returns them all. */
  async waitFrames(count: number): Promise<RawFrame[]> {
    while (this.frames.length < count && !this.socket.destroyed && this.socket.readable) {
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
    return this.frames;
  }

  /** Waits for the answer to request `id`. */
  async reply(id: number): Promise<RawFrame | undefined> {
    for (;;) {
      const found = this.frames.find((f) => f.id === id);
      if (found !== undefined || this.socket.destroyed || !this.socket.readable) return found;
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
  }

  destroy(): void {
    this.socket.destroy();
  }

  private wake(): void {
    const waiters = this.waiters.splice(0);
    for (const w of waiters) w();
  }
}

export function splitAddress(address: string): [string, number] {
  const i = address.lastIndexOf(':');
  return [address.slice(0, i), Number(address.slice(i + 1))];
}

/** A frame header with any field values, valid or not. */
export function rawHeader(fields: {
  bodyLength: number;
  code: number;
  id?: number;
  keyLength?: number;
  version?: number;
  reserved?: number;
}): Buffer {
  const b = Buffer.alloc(HEADER_SIZE);
  b.writeUInt32BE(fields.bodyLength, Field.BodyLength);
  b[Field.Version] = fields.version ?? PROTOCOL_VERSION;
  b[Field.Code] = fields.code;
  b.writeUInt32BE(fields.id ?? 1, Field.Id);
  b.writeUInt16BE(fields.keyLength ?? 0, Field.KeyLength);
  b.writeUInt16BE(fields.reserved ?? 0, Field.Reserved);
  return b;
}

/** Polls `check` every 20 ms until it returns true; throws after `timeoutMs` (wait.ts's waitFor, positionally). */
export function eventually(check: () => boolean | Promise<boolean>, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  return waitFor(check, { timeoutMs, what, intervalMs: 20 });
}

/** A port nothing listens on (bound, then released). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as net.AddressInfo).port;
      server.close(() => resolve(port));
    });
  });
}

/** Decodes a LIST answer body: u16 length + UTF-8 key, repeated. */
export function decodeKeyList(body: Buffer): string[] {
  const keys: string[] = [];
  for (let at = 0; at < body.length; ) {
    const n = body.readUInt16BE(at);
    keys.push(body.toString('utf8', at + 2, at + 2 + n));
    at += 2 + n;
  }
  return keys;
}

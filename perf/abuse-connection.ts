/**
 * How the attacker of `bench abuse` (abuse-attacker.ts) talks to a node and counts what the servers did: a raw
 * data-plane connection speaking frames as a stranger would (no client library in between, so it can send what
 * the client never would), one that is opened again when the node closes it, and the tally of answers by code
 * that each attack reports.
 */

import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { errorCodeOf, Flag, FrameDecoder, FrameWriter, Op, SatchelError, Status } from '../proto/index.ts';
import type { AttackOutcome } from './abuse-protocol.ts';

/** An answer's status as a name: OK, NOT_FOUND, STALE, or the SatchelError code. */
export function statusName(code: number): string {
  return code === Status.OK ? 'OK' : code === Status.NOT_FOUND ? 'NOT_FOUND' : code === Status.STALE ? 'STALE' : errorCodeOf(code);
}

export function splitAddress(address: string): { host: string; port: number } {
  const i = address.lastIndexOf(':');
  return { host: address.slice(0, i), port: Number(address.slice(i + 1)) };
}

/** Answers by code, connections closed on the attacker, and a few messages. */
export class Tally {
  sent = 0;
  closedByServer = 0;
  readonly answers: Record<string, number> = {};
  readonly samples: string[] = [];

  answer(code: string, message = ''): void {
    this.answers[code] = (this.answers[code] ?? 0) + 1;
    if (code !== 'OK' && this.samples.length < 5) {
      const line = `${code}: ${message.slice(0, 200)}`;
      if (!this.samples.includes(line)) this.samples.push(line);
    }
  }

  error(error: unknown): void {
    this.answer(
      error instanceof SatchelError ? error.code : ((error as Error)?.name ?? 'Error'),
      (error as Error)?.message ?? String(error),
    );
  }

  outcome(details: AttackOutcome['details'] = {}): AttackOutcome {
    const answered = Object.values(this.answers).reduce((a, b) => a + b, 0);
    const answers = { ...this.answers };
    if (this.sent > answered) answers.unanswered = this.sent - answered;
    return { sent: this.sent, answers, closed_by_server: this.closedByServer, details, samples: this.samples };
  }
}

export interface Answer {
  code: number;
  flags: number;
  id: number;
  arg: number;
  message: string;
}

/**
 * One raw data-plane connection: frames out through a FrameWriter, frames in through a FrameDecoder. Requests
 * are matched to answers by id; EVENT frames go to `onEvent`. A connection the node closes answers what was
 * waiting with code -1.
 */
export class RawConnection {
  private readonly writer: FrameWriter;
  private readonly waiting = new Map<number, (answer: Answer) => void>();
  private nextId = 1;
  private ours = false;
  closedByServer = false;
  gone = false;
  bytesIn = 0;
  frames = 0;
  onEvent: ((kind: number) => void) | null = null;
  onAnswer: ((answer: Answer) => void) | null = null;
  readonly closed: Promise<void>;

  private constructor(readonly socket: net.Socket) {
    const decoder = new FrameDecoder({
      maxBody: 64 * 1024 * 1024,
      onFrame: (f) => {
        this.frames++;
        if ((f.flags & Flag.EVENT) !== 0) return this.onEvent?.(f.arg);
        const message =
          f.code === Status.OK
            ? ''
            : f.buf.toString('utf8', f.bodyStart + f.keyLength, f.bodyStart + Math.min(f.bodyLength, f.keyLength + 300));
        const answer: Answer = { code: f.code, flags: f.flags, id: f.id, arg: f.arg, message };
        this.onAnswer?.(answer);
        const resolve = this.waiting.get(f.id);
        this.waiting.delete(f.id);
        resolve?.(answer);
      },
      onOversize: () => {},
      onError: () => socket.destroy(),
    });
    socket.on('data', (chunk: Buffer) => {
      this.bytesIn += chunk.length;
      decoder.push(chunk);
    });
    socket.on('error', () => {});
    this.closed = new Promise((resolve) =>
      socket.once('close', () => {
        this.gone = true;
        if (!this.ours) this.closedByServer = true;
        for (const resolve of this.waiting.values())
          resolve({ code: -1, flags: 0, id: 0, arg: 0, message: 'connection closed by the node' });
        this.waiting.clear();
        resolve();
      }),
    );
    this.writer = new FrameWriter(socket);
  }

  /** Connects, and with a token sends HELLO (request id 0) without waiting for its answer, as clients do. */
  static open(address: string, token: string | null): Promise<RawConnection> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ ...splitAddress(address), noDelay: true });
      socket.once('error', reject);
      socket.once('connect', () => {
        socket.off('error', reject);
        const connection = new RawConnection(socket);
        if (token !== null) connection.send(Op.HELLO, 0, token, null);
        resolve(connection);
      });
    });
  }

  /** Sends one frame; returns its request id. */
  send(
    op: number,
    id: number,
    key: string,
    value: Uint8Array | null,
    options: { flags?: number; epoch?: number; arg?: number } = {},
  ): number {
    this.writer.frame(op, options.flags ?? 0, id, options.epoch ?? 0, options.arg ?? 0, key, value);
    this.writer.flush();
    return id;
  }

  /** Sends a request and resolves with its answer (code -1: the connection closed first). */
  request(
    op: number,
    key: string,
    value: Uint8Array | null,
    options: { flags?: number; epoch?: number; arg?: number } = {},
  ): Promise<Answer> {
    if (this.gone) return Promise.resolve({ code: -1, flags: 0, id: 0, arg: 0, message: 'connection closed by the node' });
    const id = this.nextId++;
    const answer = new Promise<Answer>((resolve) => this.waiting.set(id, resolve));
    this.send(op, id, key, value, options);
    return answer;
  }

  destroy(): void {
    this.ours = true;
    this.socket.destroy();
  }
}

/** A connection to a node that is opened again (counted) whenever the node closes it. */
export class Reopening {
  private current: Promise<RawConnection> | null = null;
  constructor(
    private readonly address: string,
    private readonly token: string,
    private readonly tally: Tally,
  ) {}

  async get(): Promise<RawConnection> {
    if (this.current !== null) {
      const connection = await this.current.catch(() => null);
      if (connection !== null && !connection.gone) return connection;
      if (connection?.closedByServer === true) this.tally.closedByServer++;
      await sleep(20);
    }
    this.current = RawConnection.open(this.address, this.token);
    return this.current;
  }

  async close(): Promise<void> {
    (await this.current?.catch(() => null))?.destroy();
  }
}

/**
 * A scripted stand-in for a storage node: it decodes requests and lets the test decide when and how (or whether)
 * to answer, which a real node cannot be made to do (time out, answer out of order, drop the connection).
 */
import net from 'node:net';
import { FrameDecoder, FrameWriter, Op, Status } from '../proto/index.ts';

export interface FakeRequest {
  code: number;
  flags: number;
  id: number;
  epoch: number;
  arg: number;
  key: string;
  value: Buffer;
  socket: net.Socket;
  /** Sends the answer to this request. */
  answer(status?: number, body?: Uint8Array | null, options?: { flags?: number; arg?: number; epoch?: number }): void;
}

export interface FakeNode {
  address: string;
  /** Every request received (HELLOs included), in arrival order. */
  requests: FakeRequest[];
  sockets: Set<net.Socket>;
  /** Resolves once `count` requests other than HELLO have arrived. */
  received(count: number): Promise<void>;
  close(): Promise<void>;
}

/**
 * `onRequest` decides what to do with each request; by default HELLO is answered OK and nothing else is answered.
 */
export async function startFakeNode(onRequest: (request: FakeRequest) => void = () => {}): Promise<FakeNode> {
  const requests: FakeRequest[] = [];
  const sockets = new Set<net.Socket>();
  let waiters: (() => void)[] = [];
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    const writer = new FrameWriter(socket);
    const decoder = new FrameDecoder({
      maxBody: 64 * 1024 * 1024,
      onFrame(f) {
        const keyEnd = f.bodyStart + f.keyLength;
        const id = f.id;
        const request: FakeRequest = {
          code: f.code,
          flags: f.flags,
          id,
          epoch: f.epoch,
          arg: f.arg,
          key: f.buf.toString('utf8', f.bodyStart, keyEnd),
          value: Buffer.from(f.buf.subarray(keyEnd, f.bodyStart + f.bodyLength)),
          socket,
          answer(status = Status.OK, body = null, options = {}) {
            if (socket.destroyed) return;
            writer.frame(status, options.flags ?? 0, id, options.epoch ?? 0, options.arg ?? 0, '', body);
            writer.flush();
          },
        };
        requests.push(request);
        if (request.code === Op.HELLO) request.answer(Status.OK, Buffer.from('fake'));
        else onRequest(request);
        const w = waiters;
        waiters = [];
        for (const wake of w) wake();
      },
      onOversize() {},
      onError: () => socket.destroy(),
    });
    socket.on('data', (chunk: Buffer) => decoder.push(chunk));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    address: `127.0.0.1:${port}`,
    requests,
    sockets,
    async received(count) {
      while (requests.filter((r) => r.code !== Op.HELLO).length < count) await new Promise<void>((resolve) => waiters.push(resolve));
    },
    close() {
      for (const socket of sockets) socket.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

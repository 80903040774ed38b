/**
 * `bench resp --floor`: the least a Node.js process can do to answer redis-benchmark's SET and GET, run beside
 * redis-server and Satchel in the same rounds. It parses RESP multibulk commands, keeps values in one Map, and
 * answers with one socket write per read — no auth, versions, quotas, routing, metrics or limits. What it reaches
 * is the ceiling any storage node written in Node could reach on this machine, so Satchel's figures are read
 * against it as well as against Redis (perf/RESULTS.md, "resp floor").
 *
 * A SET over a value of the same length writes into the old value's buffer, as Satchel's node reuses a replaced
 * value's buffer for the next SET of its size (resp-data.ts `spares`): redis-benchmark without `-r` writes one
 * key. Anything but SET, GET, DBSIZE, PING and the probes redis-benchmark and ioredis send gets an error.
 */
import net from 'node:net';

const OK = Buffer.from('+OK\r\n');
const NIL = Buffer.from('$-1\r\n');
const CRLF = Buffer.from('\r\n');
/** Replies of one read are packed here, then copied into the one buffer written (the socket keeps it). */
const OUT_BYTES = 256 * 1024;

export interface FloorServer {
  readonly port: number;
  close(): Promise<void>;
}

/** A floor server on 127.0.0.1, port 0 unless given. */
export function startFloorServer(port = 0): Promise<FloorServer> {
  const store = new Map<string, Buffer>();
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ noDelay: true }, (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    serve(socket, store);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      const address = server.address() as net.AddressInfo;
      resolve({
        port: address.port,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            for (const socket of sockets) socket.destroy();
          }),
      });
    });
  });
}

/** One connection's replies: packed into `out`, written once per read (the socket keeps the copy it is given). */
class Replies {
  readonly out = Buffer.allocUnsafe(OUT_BYTES);
  pos = 0;

  constructor(private readonly socket: net.Socket) {}

  room(bytes: number): void {
    if (this.pos + bytes > OUT_BYTES) this.flush();
  }

  bytes(source: Buffer, start = 0, end = source.length): void {
    if (end - start > OUT_BYTES) {
      this.flush();
      this.socket.write(source.subarray(start, end));
      return;
    }
    this.room(end - start);
    this.pos += source.copy(this.out, this.pos, start, end);
  }

  /** `$<n>\r\n`, digits written as bytes: no string per reply. */
  bulkHeader(n: number): void {
    this.room(24);
    const out = this.out;
    out[this.pos++] = 0x24;
    let digits = 1;
    for (let rest = n; rest >= 10; rest = Math.floor(rest / 10)) digits++;
    let p = this.pos + digits;
    this.pos = p;
    do {
      out[--p] = 0x30 + (n % 10);
      n = Math.floor(n / 10);
    } while (n > 0);
    out[this.pos++] = 0x0d;
    out[this.pos++] = 0x0a;
  }

  flush(): void {
    if (this.pos === 0) return;
    this.socket.write(Buffer.from(this.out.subarray(0, this.pos)));
    this.pos = 0;
  }
}

function serve(socket: net.Socket, store: Map<string, Buffer>): void {
  let pending: Buffer | null = null;
  const replies = new Replies(socket);
  // Offsets and lengths of the current command's arguments (no array of views per command).
  const at: number[] = [];
  const len: number[] = [];
  socket.on('data', (chunk: Buffer) => {
    const buf = pending === null ? chunk : Buffer.concat([pending, chunk]);
    pending = null;
    const end = buf.length;
    let p = 0;
    while (p < end) {
      const start = p;
      const count = lengthLine(buf, p, 0x2a /* * */);
      if (count === PROTOCOL) return protocolError(socket);
      if (count === MORE) {
        pending = buf.subarray(start);
        break;
      }
      p = next;
      let whole = true;
      for (let i = 0; i < count; i++) {
        const n = lengthLine(buf, p, 0x24 /* $ */);
        if (n === PROTOCOL) return protocolError(socket);
        if (n === MORE || next + n + 2 > end) {
          whole = false;
          break;
        }
        at[i] = next;
        len[i] = n;
        p = next + n + 2;
      }
      if (!whole) {
        pending = buf.subarray(start);
        break;
      }
      if (count > 0) execute(buf, count, at, len, store, replies);
    }
    replies.flush();
  });
  socket.on('error', () => {});
}

const MORE = -1;
const PROTOCOL = -2;
/** Where the line `lengthLine` read ends (past its CRLF). */
let next = 0;

/** `<type><digits>\r\n` at `p`: its number (`next` set past it), MORE, or PROTOCOL. */
function lengthLine(buf: Buffer, p: number, type: number): number {
  if (p >= buf.length) return MORE;
  if (buf[p] !== type) return PROTOCOL;
  let n = 0;
  let i = p + 1;
  for (; i < buf.length && buf[i] !== 0x0d; i++) {
    const c = buf[i]!;
    if (c < 0x30 || c > 0x39 || i - p > 12) return PROTOCOL;
    n = n * 10 + c - 0x30;
  }
  if (i + 1 >= buf.length) return MORE;
  next = i + 2;
  return n;
}

/** Whether the 3-byte name at `at` is `upper` in any case (no string made for it). */
function named(buf: Buffer, at: number, length: number, upper: string): boolean {
  if (length !== upper.length) return false;
  for (let i = 0; i < length; i++) if ((buf[at + i]! & 0xdf) !== upper.charCodeAt(i)) return false;
  return true;
}

function execute(buf: Buffer, count: number, at: number[], len: number[], store: Map<string, Buffer>, replies: Replies): void {
  if (count === 3 && named(buf, at[0]!, len[0]!, 'SET')) {
    const key = buf.toString('latin1', at[1]!, at[1]! + len[1]!);
    const old = store.get(key);
    if (old !== undefined && old.length === len[2]) buf.copy(old, 0, at[2]!, at[2]! + len[2]!);
    else store.set(key, Buffer.from(buf.subarray(at[2]!, at[2]! + len[2]!)));
    return replies.bytes(OK);
  }
  if (count === 2 && named(buf, at[0]!, len[0]!, 'GET')) {
    const value = store.get(buf.toString('latin1', at[1]!, at[1]! + len[1]!));
    if (value === undefined) return replies.bytes(NIL);
    replies.bulkHeader(value.length);
    replies.bytes(value);
    return replies.bytes(CRLF);
  }
  const name = buf.toString('latin1', at[0]!, at[0]! + Math.min(len[0]!, 32)).toUpperCase();
  if (name === 'DBSIZE') return replies.bytes(Buffer.from(`:${store.size}\r\n`));
  if (name === 'PING') return replies.bytes(Buffer.from('+PONG\r\n'));
  // ioredis's ready check.
  if (name === 'INFO') return replies.bytes(Buffer.from('$9\r\nloading:0\r\n'));
  replies.bytes(Buffer.from(`-ERR unknown command '${name.replace(/[^ -~]/g, '?')}'\r\n`));
}

function protocolError(socket: net.Socket): void {
  socket.end('-ERR Protocol error\r\n');
}

// As a child process (resp.ts forks it): listen, say the port, stop with the parent.
if (process.send !== undefined && process.argv[2] === 'serve') {
  const floor = await startFloorServer();
  process.send({ port: floor.port });
  process.on('disconnect', () => process.exit(0));
}

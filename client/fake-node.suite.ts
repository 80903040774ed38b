/**
 * Stand-ins for a storage node and for the control plane, for client tests that must be exact (the ioredis
 * mock_server habit, STYLE.md): they speak the real wire — frames through proto's FrameDecoder and FrameWriter,
 * gRPC over node:http2 with the client's own message tables — and let a test decide what a real server cannot
 * be made to do on cue: answer one chosen request STALE, FULL or NOT_FOUND, never answer it, or drop the
 * connection under it.
 *
 * - `startFakeNode(onRequest)`: every request goes to the test, which answers it (or not) as it likes.
 * - `startFakeCluster(t, …)`: fake nodes that hold data as a node does (FakeStore: PUT, GET, STAT, DELETE, LIST,
 *   with versions, tombstones and an epoch past which they answer STALE), a fake metadata server and controller
 *   (FakeControl: GetPlacement, GrowJob), and a ticket for them, so `Satchel.attach` runs with no cluster at all.
 */

import http2 from 'node:http2';
import net from 'node:net';
import type { ExecutionContext } from 'ava';
import { LIGHT_METHODS } from '../proto/control-schema.ts';
import {
  type ErrorCode,
  encodeKeyList,
  encodeTicket,
  Flag,
  FrameDecoder,
  FrameWriter,
  newerVersion,
  Op,
  Status,
  type WirePlacement,
} from '../proto/index.ts';
import { decodeMessage, encodeMessage } from '../proto/protobuf-lite.ts';
import { type Job, type JobOptions, Satchel } from './index.ts';

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

/** What a scripted request gets instead of the store's answer: a status (with fields), no answer ever, or a dropped connection. */
/** An answer (after `delayMs`, if given), no answer ever ('hang'), or the connection closed. */
export type FakeAction =
  | { status: number; arg?: number; flags?: number; epoch?: number; body?: Uint8Array; delayMs?: number }
  | 'hang'
  | 'close';

interface Script {
  op: number;
  key: string | undefined;
  left: number;
  action: FakeAction;
}

interface Entry {
  value: Buffer;
  /** Flag.MANIFEST or 0. */
  flags: number;
  epoch: number;
  seq: number;
}

/**
 * A job's data on one node, answered as a storage node answers (storage-node/README.md), for the ops the
 * key-value API and its retries use. Each write gets a version (its frame's epoch, a seq); a replica or copy
 * (Flag.REPLICA, Flag.COPY) lands only over an older one; a delete leaves a tombstone that GET reports
 * (Flag.DELETED). Requests under an epoch older than `epoch` are answered STALE, as a node the controller told
 * about a newer placement does.
 */
export class FakeStore {
  /** The placement epoch this node serves the job from. */
  epoch = 1;
  readonly entries = new Map<string, Entry>();
  readonly tombstones = new Map<string, { epoch: number; seq: number }>();
  private seq = 0;
  private readonly scripts: Script[] = [];

  /** The next `times` requests of `op` (for `key` only, if given) get `action` instead of the store's answer. */
  script(op: number, action: FakeAction, options: { key?: string; times?: number } = {}): void {
    this.scripts.push({ op, key: options.key, left: options.times ?? 1, action });
  }

  /** Stores `value` as a write at version (epoch, seq) would have. */
  seed(key: string, value: string | Buffer, version: { epoch?: number; seq?: number; flags?: number } = {}): void {
    const seq = version.seq ?? ++this.seq;
    this.seq = Math.max(this.seq, seq);
    this.entries.set(key, { value: Buffer.from(value), flags: version.flags ?? 0, epoch: version.epoch ?? this.epoch, seq });
  }

  /** A tombstone for `key` at version (epoch, seq), as a delete leaves. */
  seedDeleted(key: string, epoch: number, seq: number): void {
    this.entries.delete(key);
    this.tombstones.set(key, { epoch, seq });
    this.seq = Math.max(this.seq, seq);
  }

  handle(request: FakeRequest): void {
    const script = this.scripts.find((s) => s.op === request.code && (s.key === undefined || s.key === request.key));
    if (script !== undefined) {
      if (--script.left === 0) this.scripts.splice(this.scripts.indexOf(script), 1);
      const { action } = script;
      if (action === 'hang') return;
      if (action === 'close') {
        request.socket.destroy();
        return;
      }
      if (action.delayMs === undefined) request.answer(action.status, action.body ?? null, action);
      else setTimeout(() => request.answer(action.status, action.body ?? null, action), action.delayMs);
      return;
    }
    // Copies carry a version, not a placement epoch, in the epoch field; CANCEL and admin ops carry none.
    if ((request.flags & Flag.COPY) === 0 && request.code !== Op.CANCEL && request.epoch < this.epoch) {
      request.answer(Status.STALE, null, { arg: this.epoch, epoch: this.epoch });
      return;
    }
    switch (request.code) {
      case Op.PUT:
        return this.put(request);
      case Op.GET:
      case Op.STAT:
        return this.read(request);
      case Op.DELETE:
        return this.delete(request);
      case Op.LIST:
        return this.list(request);
      default:
        request.answer(Status.BAD_REQUEST, Buffer.from(`the fake node does not serve op ${request.code}`));
    }
  }

  private put(request: FakeRequest): void {
    const old = this.entries.get(request.key);
    const flags = request.flags & Flag.MANIFEST;
    if ((request.flags & (Flag.REPLICA | Flag.COPY)) !== 0) {
      // A version another node chose: stored only over an older one (arg 1 = stored).
      const newest = old ?? this.tombstones.get(request.key);
      if (newest !== undefined && !newerVersion(request.epoch, request.arg, newest.epoch, newest.seq))
        return request.answer(Status.OK, null, { arg: 0 });
      this.entries.set(request.key, { value: request.value, flags, epoch: request.epoch, seq: request.arg });
      this.seq = Math.max(this.seq, request.arg);
      return request.answer(Status.OK, null, { arg: 1 });
    }
    const seq = ++this.seq;
    this.entries.set(request.key, { value: request.value, flags, epoch: request.epoch, seq });
    this.tombstones.delete(request.key);
    const replaced = old !== undefined && (old.flags & Flag.MANIFEST) !== 0;
    request.answer(Status.OK, replaced ? old.value : null, {
      arg: seq,
      epoch: request.epoch,
      flags: replaced ? Flag.REPLACED_MANIFEST : 0,
    });
  }

  private read(request: FakeRequest): void {
    const entry = this.entries.get(request.key);
    if (entry === undefined) {
      const deleted = this.tombstones.get(request.key);
      if (deleted === undefined) return request.answer(Status.NOT_FOUND);
      return request.answer(Status.NOT_FOUND, null, { flags: Flag.DELETED, epoch: deleted.epoch, arg: deleted.seq });
    }
    if ((request.flags & Flag.VERSION) !== 0)
      return request.answer(Status.OK, entry.value, { flags: entry.flags, epoch: entry.epoch, arg: entry.seq });
    if (request.code === Op.STAT) {
      // A manifest's STAT carries the manifest (the size is in it); a plain value's, its size.
      return request.answer(Status.OK, entry.flags !== 0 ? entry.value : null, { flags: entry.flags, arg: entry.value.length });
    }
    request.answer(Status.OK, entry.value, { flags: entry.flags });
  }

  private delete(request: FakeRequest): void {
    const old = this.entries.get(request.key);
    const seq = (request.flags & Flag.REPLICA) !== 0 ? request.arg : ++this.seq;
    // As a node of a job with older generations: a key never there still gets its tombstone (engine.ts).
    this.tombstones.set(request.key, { epoch: request.epoch, seq });
    if (old === undefined) return request.answer(Status.OK, null, { arg: seq });
    this.entries.delete(request.key);
    const replaced = (old.flags & Flag.MANIFEST) !== 0;
    request.answer(Status.OK, replaced ? old.value : null, { arg: seq, flags: Flag.EXISTED | (replaced ? Flag.REPLACED_MANIFEST : 0) });
  }

  private list(request: FakeRequest): void {
    const after = request.value.toString('utf8');
    const internal = (request.flags & Flag.INTERNAL_KEYS) !== 0;
    const keys = [...this.entries.keys()]
      .filter((key) => key.startsWith(request.key) && key > after && (internal || !key.includes('\u0000')))
      .sort();
    const page = keys.slice(0, request.arg);
    request.answer(Status.OK, encodeKeyList(page), { flags: keys.length > page.length ? Flag.MORE : 0 });
  }
}

export interface FakeStorageNode extends FakeNode {
  /** The id the placements give it. */
  id: string;
  store: FakeStore;
}

/** A fake node holding data as a node does, its answers scriptable (`store.script`). */
export async function startFakeStorageNode(id: string): Promise<FakeStorageNode> {
  const store = new FakeStore();
  const node = await startFakeNode((request) => store.handle(request));
  return Object.assign(node, { id, store });
}

export interface FakeControlCall {
  /** `GetPlacement`, `GrowJob`. */
  method: string;
  request: Record<string, unknown>;
}

/** A metadata server and a controller in one: the two control-plane services a job's client calls. */
export interface FakeControl {
  address: string;
  /** What GetPlacement answers; set it to move the job. */
  placement: WirePlacement;
  /** Answered by GetPlacement before `placement`, one per call: a metadata server that has not caught up yet. */
  behind: WirePlacement[];
  /** GrowJob's answer: the job's new placement (GetPlacement answers it from then on), or the code it fails with. */
  onGrow: (request: Record<string, unknown>) => WirePlacement | ErrorCode | Promise<WirePlacement | ErrorCode>;
  /** Every call, in order. */
  calls: FakeControlCall[];
  /** The calls of one method. */
  callsOf(method: string): Record<string, unknown>[];
  close(): Promise<void>;
}

export async function startFakeControl(placement: WirePlacement): Promise<FakeControl> {
  const server = http2.createServer();
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on('session', (session) => {
    sessions.add(session);
    session.on('close', () => sessions.delete(session));
  });
  const control: FakeControl = {
    address: '',
    placement,
    behind: [],
    onGrow: () => 'FULL',
    calls: [],
    callsOf: (method) => control.calls.filter((c) => c.method === method).map((c) => c.request),
    close: () =>
      new Promise((resolve) => {
        for (const session of sessions) session.destroy();
        server.close(() => resolve());
      }),
  };
  server.on('stream', (stream, headers) => {
    const path = String(headers[':path']).slice(1);
    const chunks: Buffer[] = [];
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.on('error', () => {});
    stream.on('end', async () => {
      const schemas = LIGHT_METHODS[path];
      const method = path.slice(path.indexOf('/') + 1);
      if (schemas === undefined || (method !== 'GetPlacement' && method !== 'GrowJob'))
        return fail('BAD_REQUEST', `the fake control plane does not serve ${path}`);
      const request = decodeMessage(schemas[0], Buffer.concat(chunks).subarray(5));
      control.calls.push({ method, request });
      let reply: WirePlacement | ErrorCode;
      if (method === 'GrowJob') {
        reply = await control.onGrow(request);
        if (typeof reply !== 'string') control.placement = reply;
      } else {
        reply = control.behind.shift() ?? control.placement;
      }
      if (typeof reply === 'string') return fail(reply, `${reply} from the fake ${method}`);
      const message = encodeMessage(schemas[1], reply as unknown as Record<string, unknown>);
      const framed = Buffer.alloc(5 + message.length);
      framed.writeUInt32BE(message.length, 1);
      message.copy(framed, 5);
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
      stream.end(framed);
    });
    /** A trailers-only answer, as the servers give an error: gRPC UNKNOWN, with the code in `satchel-code`. */
    function fail(code: ErrorCode, message: string): void {
      stream.respond(
        {
          ':status': 200,
          'content-type': 'application/grpc',
          'grpc-status': '2',
          'grpc-message': encodeURIComponent(message),
          'satchel-code': code,
        },
        { endStream: true },
      );
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  control.address = `127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  return control;
}

export interface FakeCluster {
  jobId: string;
  nodes: FakeStorageNode[];
  control: FakeControl;
  /** A placement of the fake nodes: `generations` newest first, each a list of indexes into `nodes`. */
  placement(epoch: number, generations: number[][], replicas?: number): WirePlacement;
  /** A ticket for the job, carrying the placement the cluster started with. */
  ticket: string;
  /** `Satchel.attach(ticket)`, closed when the test ends. */
  attach(options?: JobOptions): Promise<Job>;
}

/**
 * `nodes` fake nodes (ids n0, n1, …) and a fake control plane, placed at epoch 1 as `generations` says (default:
 * every node, one generation); everything is closed when the test ends.
 */
export async function startFakeCluster(
  t: ExecutionContext,
  options: { nodes: number; generations?: number[][]; replicas?: number; blockSize?: number },
): Promise<FakeCluster> {
  const jobId = 'fake-job';
  const nodes = await Promise.all(Array.from({ length: options.nodes }, (_, i) => startFakeStorageNode(`n${i}`)));
  t.teardown(() => Promise.all(nodes.map((node) => node.close())));
  const placement = (epoch: number, generations: number[][], replicas = options.replicas ?? 1): WirePlacement => ({
    jobId,
    epoch,
    generations: generations.map((indexes) => ({
      nodes: indexes.map((i) => ({ id: nodes[i]!.id, address: nodes[i]!.address, weight: 1 })),
    })),
    blockSize: options.blockSize ?? 1024 * 1024,
    maxValueBytes: 2 ** 30,
    replicas,
  });
  const first = placement(1, options.generations ?? [nodes.map((_, i) => i)]);
  const control = await startFakeControl(first);
  t.teardown(() => control.close());
  const ticket = encodeTicket({
    v: 1,
    job: jobId,
    token: `v1.${jobId}.fake`,
    metadata: [control.address],
    controller: control.address,
    placement: first,
  });
  return {
    jobId,
    nodes,
    control,
    placement,
    ticket,
    async attach(given) {
      const job = await Satchel.attach(ticket, given);
      t.teardown(() => job.close());
      return job;
    },
  };
}

/** The requests of `op` a fake node received, in order. */
export function requestsOf(node: FakeNode, op: number): FakeRequest[] {
  return node.requests.filter((r) => r.code === op);
}

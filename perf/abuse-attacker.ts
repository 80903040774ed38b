/**
 * The attacker of `bench abuse` (forked by perf/abuse.ts), in its own process so that its floods and its
 * thousands of sockets cost the measuring process nothing. Told which attack to make, it sets it up, says so
 * (`armed`), keeps it up until told to stop, takes it down and answers with what the servers did: every answer
 * by code, the connections they closed, and the attack's own figures. It speaks the protocols as a stranger
 * would: gRPC to the controller, raw frames to a node (proto/README.md), HTTP to the console.
 */

import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { Satchel } from '../client/index.ts';
import { CONTROLLER_SERVICE, ControlClient } from '../proto/grpc.ts';
import {
  type ControllerMethods,
  Flag,
  keySlot,
  MAX_WAIT_MS,
  Op,
  pickNode,
  type RegisterJobRequest,
  type SatchelError,
  Status,
  WatchEvent,
} from '../proto/index.ts';
import { RawConnection, Reopening, splitAddress, statusName, Tally } from './abuse-connection.ts';
import type { AttackName, AttackOutcome, AttackSizes, AttackTarget, FromAttacker, ToAttacker } from './abuse-protocol.ts';

const send = (message: FromAttacker) => process.send!(message);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const VALUE = randomBytes(1024);
/** What the attacker's PUTs claim as the job's placement epoch: the largest the frame can carry. */
const EPOCH_MAX = 0xffffffff;

/** `count` loops, each running `once(n)` (n counting over all of them) until `stop` resolves. */
async function loops(count: number, stop: { stopped: boolean }, once: (n: number) => Promise<unknown>): Promise<void> {
  let n = 0;
  await Promise.all(
    Array.from({ length: count }, async () => {
      while (!stop.stopped) await once(n++);
    }),
  );
}

interface Run {
  target: AttackTarget;
  sizes: AttackSizes;
  stop: { stopped: boolean };
  stopped: Promise<void>;
  arm(note: string): void;
}

/** (a) RegisterJob without a tenant key, or with a made-up one: every one should be UNAUTHORIZED. */
function anonymousRegister(run: Run): Promise<AttackOutcome> {
  const madeUp = `satchel-key-${randomBytes(24).toString('base64url')}`;
  return registerFlood(run, 'half without a key, half with a made-up one', (n) => ({
    name: `abuse-anonymous-${n}`,
    hints: { capacity: 1024 * 1024 },
    key: n % 2 === 0 ? '' : madeUp,
  }));
}

/** (b) RegisterJob with the tenant key and a capacity hint of 1e18 bytes: BAD_REQUEST, nothing reserved. */
function hugeCapacity(run: Run): Promise<AttackOutcome> {
  return registerFlood(run, 'with the tenant key and hints { capacity: 1e18 }', (n) => ({
    name: `abuse-huge-${n}`,
    hints: { capacity: 1e18 },
    key: run.target.tenantKey,
  }));
}

/** RegisterJob calls in flight until the phase ends, each `request(n)`; any job that registers is deregistered. */
async function registerFlood(run: Run, what: string, request: (n: number) => RegisterJobRequest): Promise<AttackOutcome> {
  const client = new ControlClient<ControllerMethods>(CONTROLLER_SERVICE, run.target.controller, 5_000);
  const tally = new Tally();
  let registered = 0;
  run.arm(`${run.sizes.inFlight} RegisterJob calls in flight, ${what}`);
  await loops(run.sizes.inFlight, run.stop, async (n) => {
    tally.sent++;
    try {
      const reply = await client.call('RegisterJob', request(n));
      tally.answer('OK');
      registered++;
      await client.call('DeregisterJob', { jobId: reply.jobId, token: reply.driverToken }).catch(() => {});
    } catch (error) {
      tally.error(error);
    }
  });
  client.close();
  return tally.outcome({ jobs_registered: registered });
}

/** (c) GrowJob in a loop with the job's data token (what any function holds), naming its node full when it is not. */
async function growLoop(run: Run): Promise<AttackOutcome> {
  const client = new ControlClient<ControllerMethods>(CONTROLLER_SERVICE, run.target.controller, 10_000);
  const tally = new Tally();
  let granted = 0;
  let highestEpoch = run.target.epoch;
  run.arm(`${run.sizes.inFlight} GrowJob calls in flight with the job's data token, naming node ${run.target.nodes[0]!.id} full`);
  await loops(run.sizes.inFlight, run.stop, async () => {
    tally.sent++;
    try {
      const placement = await client.call('GrowJob', {
        jobId: run.target.jobId,
        token: run.target.dataToken,
        fullNodeId: run.target.nodes[0]!.id,
        epoch: run.target.epoch,
      });
      tally.answer('OK');
      if (placement.epoch > run.target.epoch) granted++;
      highestEpoch = Math.max(highestEpoch, placement.epoch);
    } catch (error) {
      tally.error(error);
    }
  });
  client.close();
  return tally.outcome({ growths_granted: granted, epoch_before: run.target.epoch, highest_epoch_answered: highestEpoch });
}

/** (d) PUTs on the job's own keys claiming placement epoch 2^32 − 1, over raw connections with its data token. */
async function epochMax(run: Run): Promise<AttackOutcome> {
  const tally = new Tally();
  const nodes = run.target.nodes;
  const connections = nodes.map((node) => new Reopening(node.address, run.target.dataToken, tally));
  let stored = 0;
  run.arm(`${run.sizes.inFlight} PUTs in flight on the job's ${run.target.keys} keys of this phase, frame epoch ${EPOCH_MAX}`);
  await loops(run.sizes.inFlight, run.stop, async (n) => {
    const key = `${run.target.prefix}${n % run.target.keys}`;
    const connection = await connections[pickNode(nodes, keySlot(key))]!.get().catch(() => null);
    if (connection === null) {
      tally.sent++;
      tally.answer('UNAVAILABLE', 'could not connect to the node');
      await sleep(50);
      return;
    }
    tally.sent++;
    const answer = await connection.request(Op.PUT, key, VALUE, { epoch: EPOCH_MAX });
    if (answer.code === -1) {
      tally.answer('CLOSED', answer.message);
      return;
    }
    tally.answer(statusName(answer.code), answer.message);
    if (answer.code === Status.OK) stored++;
  });
  await Promise.all(connections.map((c) => c.close()));
  return tally.outcome({ stored_with_epoch_max: stored });
}

/** (e) Many TCP connections to the job's node that never send a byte (no HELLO): the node should close them. */
async function idleConnections(run: Run): Promise<AttackOutcome> {
  const tally = new Tally();
  const address = splitAddress(run.target.nodes[0]!.address);
  const sockets: net.Socket[] = [];
  const delays: number[] = [];
  let opened = 0;
  let connectErrors = 0;
  let ours = false;
  const openOne = () =>
    new Promise<void>((resolve) => {
      tally.sent++;
      const socket = net.connect(address);
      let openedAt = 0;
      socket.once('connect', () => {
        opened++;
        openedAt = performance.now();
        sockets.push(socket);
        resolve();
      });
      socket.on('error', () => {});
      socket.once('close', () => {
        if (openedAt === 0) {
          connectErrors++;
          return resolve();
        }
        if (ours) return;
        tally.closedByServer++;
        delays.push(performance.now() - openedAt);
      });
      socket.on('data', () => {});
    });
  for (let i = 0; i < run.sizes.idleConnections && !run.stop.stopped; i += 100) {
    await Promise.all(Array.from({ length: Math.min(100, run.sizes.idleConnections - i) }, openOne));
  }
  run.arm(`${opened} connections open to ${run.target.nodes[0]!.address}, none sending a byte`);
  await run.stopped;
  ours = true;
  const openAtStop = sockets.filter((s) => !s.destroyed).length;
  for (const socket of sockets) socket.destroy();
  delays.sort((a, b) => a - b);
  if (connectErrors > 0) tally.answer('CONNECT_FAILED', `${connectErrors} connections could not be opened`);
  return tally.outcome({
    opened,
    connect_errors: connectErrors,
    open_at_stop: openAtStop,
    closed_after_ms_min: delays.length > 0 ? Math.round(delays[0]!) : null,
    closed_after_ms_p50: delays.length > 0 ? Math.round(delays[Math.floor((delays.length - 1) / 2)]!) : null,
    closed_after_ms_max: delays.length > 0 ? Math.round(delays[delays.length - 1]!) : null,
  });
}

/**
 * (f) WATCHes of every key of the job on one connection that then stops reading, while the job's PUTs land:
 * each PUT is an event for each watch, which the node must not pile up without bound.
 */
async function stalledWatchers(run: Run): Promise<AttackOutcome> {
  const tally = new Tally();
  const connection = await RawConnection.open(run.target.nodes[0]!.address, run.target.dataToken);
  let started = 0;
  let events = 0;
  connection.onEvent = (kind) => {
    if (kind === WatchEvent.STARTED) started++;
    else events++;
  };
  connection.onAnswer = (answer) => {
    if (answer.id !== 0 || answer.code !== Status.OK) tally.answer(statusName(answer.code), answer.message);
  };
  for (let id = 1; id <= run.sizes.watchers; id++) {
    tally.sent++;
    connection.send(Op.WATCH, id, '', null, { epoch: run.target.epoch });
  }
  const until = performance.now() + 5_000;
  while (
    started + Object.values(tally.answers).reduce((a, b) => a + b, 0) < run.sizes.watchers &&
    !connection.gone &&
    performance.now() < until
  )
    await sleep(10);
  connection.socket.pause();
  const startedBeforeStall = started;
  run.arm(`${started} watches of every key started on one connection, which then stopped reading`);
  await run.stopped;
  // Read again for two seconds: whether the node had closed the connection (what it still had for it comes
  // first, then the end), and how much came. The job keeps writing meanwhile, so a connection the node kept
  // goes on getting events.
  const before = connection.bytesIn;
  connection.socket.resume();
  const drainUntil = performance.now() + 2_000;
  while (!connection.gone && performance.now() < drainUntil) await sleep(50);
  const closedByServer = connection.closedByServer;
  if (closedByServer) tally.closedByServer++;
  connection.destroy();
  return tally.outcome({
    watches_started: startedBeforeStall,
    events_received: events,
    bytes_read_2s_after_stall: connection.bytesIn - before,
    connection_closed_by_node: closedByServer,
  });
}

/** (g) One-hour WAITs for keys nobody writes, all on one connection. */
async function longWaits(run: Run): Promise<AttackOutcome> {
  const tally = new Tally();
  const connection = await RawConnection.open(run.target.nodes[0]!.address, run.target.dataToken);
  connection.onAnswer = (answer) => {
    if (answer.id !== 0 || answer.code !== Status.OK) tally.answer(statusName(answer.code), answer.message);
  };
  for (let id = 1; id <= run.sizes.waits; id++) {
    tally.sent++;
    connection.send(Op.WAIT, id, `abuse/wait/${id}`, null, { epoch: run.target.epoch, arg: MAX_WAIT_MS });
  }
  await sleep(300);
  run.arm(`${run.sizes.waits} WAITs of ${MAX_WAIT_MS / 60_000} minutes sent on one connection`);
  await run.stopped;
  const closedByServer = connection.closedByServer;
  if (closedByServer) tally.closedByServer++;
  const answered = Object.values(tally.answers).reduce((a, b) => a + b, 0);
  connection.destroy();
  return tally.outcome({ parked_at_stop: closedByServer ? 0 : run.sizes.waits - answered, connection_closed_by_node: closedByServer });
}

/** (h) Console live streams that never read, while jobs come and go (each a row the stream sends). */
async function stalledSse(run: Run): Promise<AttackOutcome> {
  const tally = new Tally();
  const url = new URL(run.target.console);
  const port = Number(url.port || 80);
  const statuses: Record<string, number> = {};
  // The churn first, alone for the lead-in: the controller's RSS at its end is what the streams are measured against.
  const satchel = await Satchel.connect(run.target.controller, { key: run.target.tenantKey });
  let churned = 0;
  let churnErrors = 0;
  const churnSamples: string[] = [];
  const churn = loops(2, run.stop, async (n) => {
    try {
      const job = await satchel.registerJob(`abuse-churn-${n}`, { capacity: 1024 * 1024 });
      await job.put('k', VALUE);
      await job.deregister();
      churned++;
    } catch (error) {
      churnErrors++;
      if (churnSamples.length < 3) churnSamples.push(`${(error as SatchelError).code ?? ''} ${(error as Error).message}`.slice(0, 200));
      await sleep(100);
    }
    await sleep(50);
  });
  await Promise.race([sleep(run.sizes.sseLeadInSeconds * 1000), run.stopped]);
  const churnedInLeadIn = churned;
  const streams: { socket: net.Socket; bytes: number; closedByServer: boolean; ours: boolean }[] = [];
  await Promise.all(
    Array.from(
      { length: run.sizes.sseClients },
      () =>
        new Promise<void>((resolve) => {
          tally.sent++;
          const socket = net.connect({ host: url.hostname, port });
          const stream = { socket, bytes: 0, closedByServer: false, ours: false };
          streams.push(stream);
          let head = '';
          // A console that sends no status line within 5 s: counted as such, the attack goes on.
          const timer = setTimeout(() => {
            statuses['no-answer'] = (statuses['no-answer'] ?? 0) + 1;
            resolve();
          }, 5_000);
          socket.on('error', () => {});
          socket.once('close', () => {
            clearTimeout(timer);
            if (!stream.ours) stream.closedByServer = true;
            resolve();
          });
          socket.on('data', (chunk: Buffer) => {
            stream.bytes += chunk.length;
            if (head.includes('\r\n\r\n')) return;
            head += chunk.toString('latin1');
            if (!head.includes('\r\n\r\n')) return;
            clearTimeout(timer);
            const status = /^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 'no-status';
            statuses[status] = (statuses[status] ?? 0) + 1;
            tally.answer(status === '200' ? 'OK' : `HTTP_${status}`, head.split('\r\n')[0] ?? '');
            // From here on it reads nothing: the console's bytes pile up in the socket buffers, then in the console.
            socket.pause();
            resolve();
          });
          socket.once('connect', () => {
            socket.write(
              `GET /api/stream HTTP/1.1\r\nHost: ${url.host}\r\nAccept: text/event-stream\r\nAuthorization: Bearer ${run.target.viewerToken}\r\n\r\n`,
            );
          });
        }),
    ),
  );
  run.arm(
    `${statuses['200'] ?? 0} of ${run.sizes.sseClients} streams open and not reading (${
      Object.entries(statuses)
        .map(([s, n]) => `${s}×${n}`)
        .join(', ') || 'no answers'
    }); jobs churning`,
  );
  await run.stopped;
  await churn;
  satchel.close();
  // Read what each stream still had coming, and whether the console had dropped it.
  const bytesBefore = streams.reduce((sum, s) => sum + s.bytes, 0);
  for (const stream of streams) stream.socket.resume();
  // What piled up arrives within moments; a dropped stream then ends. A live one keeps getting updates.
  const until = performance.now() + 2_000;
  while (performance.now() < until && !streams.every((s) => s.closedByServer)) await sleep(100);
  const dropped = streams.filter((s) => s.closedByServer).length;
  tally.closedByServer = dropped;
  for (const stream of streams) {
    stream.ours = true;
    stream.socket.destroy();
  }
  for (const sample of churnSamples) if (tally.samples.length < 5) tally.samples.push(`churn: ${sample}`);
  return tally.outcome({
    streams_open: statuses['200'] ?? 0,
    streams_dropped_by_console: dropped,
    bytes_read_after_stall: streams.reduce((sum, s) => sum + s.bytes, 0) - bytesBefore,
    jobs_churned_lead_in: churnedInLeadIn,
    jobs_churned: churned - churnedInLeadIn,
    churn_errors: churnErrors,
  });
}

/** (i) LIST with INTERNAL_KEYS (migration's flag) from the job's data token: UNAUTHORIZED. */
async function internalKeys(run: Run): Promise<AttackOutcome> {
  const tally = new Tally();
  const connection = new Reopening(run.target.nodes[0]!.address, run.target.dataToken, tally);
  let pagesListed = 0;
  run.arm(`${run.sizes.inFlight} LISTs in flight with INTERNAL_KEYS, over the job's data token`);
  await loops(run.sizes.inFlight, run.stop, async () => {
    const c = await connection.get().catch(() => null);
    tally.sent++;
    if (c === null) {
      tally.answer('UNAVAILABLE', 'could not connect to the node');
      await sleep(50);
      return;
    }
    const answer = await c.request(Op.LIST, '', null, { flags: Flag.INTERNAL_KEYS, epoch: run.target.epoch, arg: 100 });
    if (answer.code === -1) {
      tally.answer('CLOSED', answer.message);
      return;
    }
    tally.answer(statusName(answer.code), answer.message);
    if (answer.code === Status.OK) pagesListed++;
  });
  await connection.close();
  return tally.outcome({ pages_listed: pagesListed });
}

const RUNS: Record<AttackName, (run: Run) => Promise<AttackOutcome>> = {
  'anonymous-register': anonymousRegister,
  'huge-capacity': hugeCapacity,
  'grow-loop': growLoop,
  'epoch-max': epochMax,
  'idle-connections': idleConnections,
  'stalled-watchers': stalledWatchers,
  'long-waits': longWaits,
  'stalled-sse': stalledSse,
  'internal-keys': internalKeys,
};

let stopCurrent: (() => void) | null = null;

process.on('message', (message: ToAttacker) => {
  if ('start' in message) {
    const { attack, target, sizes } = message.start;
    const stop = { stopped: false };
    let resolveStopped!: () => void;
    const stopped = new Promise<void>((resolve) => (resolveStopped = resolve));
    stopCurrent = () => {
      stop.stopped = true;
      resolveStopped();
    };
    let armed = false;
    const arm = (note: string) => {
      if (armed) return;
      armed = true;
      send({ armed: { note } });
    };
    RUNS[attack]({ target, sizes, stop, stopped, arm }).then(
      (outcome) => {
        // An attack that failed before it was armed still answers the start.
        arm('the attack ended before it was set up');
        send({ outcome });
      },
      (error: unknown) => send({ fatal: `${attack}: ${(error as Error)?.stack ?? String(error)}` }),
    );
  } else {
    stopCurrent?.();
    stopCurrent = null;
  }
});

process.on('uncaughtException', (error) => send({ fatal: `uncaught: ${error.stack ?? error.message}` }));
process.on('unhandledRejection', (error) => send({ fatal: `unhandled rejection: ${(error as Error)?.stack ?? String(error)}` }));

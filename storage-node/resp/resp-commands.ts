/**
 * The commands the RESP front door answers, as a table (what COMMAND reports too), and the connection's own
 * commands: PING, ECHO, QUIT, AUTH, HELLO, SELECT, CLIENT, COMMAND, INFO, READONLY, READWRITE, ASKING. The data
 * commands are resp-data.ts's, CLUSTER resp-cluster.ts's.
 */
import { OpKind } from '../metrics.ts';
import { cluster } from './resp-cluster.ts';
import type { CommandSpec, RespContext } from './resp-context.ts';
import { COORDINATION_SPECS } from './resp-coordination.ts';
import * as data from './resp-data.ts';

/** The Redis version clients are told: the commands here are those of Redis 7 (CLUSTER SHARDS, HELLO, SETINFO). */
export const REDIS_VERSION = '7.2.0';

function reply(s: RespContext, write: () => void): void {
  const before = s.out.bytesEncoded;
  write();
  s.replied(before);
}

function ping(s: RespContext, args: Buffer[]): void {
  if (args.length > 2) return s.error("ERR wrong number of arguments for 'ping' command");
  // A RESP2 connection with subscriptions answers PING as an event-shaped array (Redis's rule).
  if (s.subscriptions.size > 0 && s.out.version === 2)
    return reply(s, () => {
      s.out.array(2);
      s.out.bulk('pong');
      s.out.bulk(args.length === 2 ? args[1]! : '');
    });
  reply(s, () => (args.length === 2 ? s.out.bulk(args[1]!) : s.out.simple('PONG')));
}

function auth(s: RespContext, args: Buffer[]): void {
  if (args.length > 3) return s.error('ERR syntax error');
  // AUTH <token> works too: the token names its job (clients that know only a password).
  const failure = s.authenticate(args.length === 3 ? args[1]!.toString('utf8') : null, args.at(-1)!.toString('utf8'));
  if (failure !== null) return s.error(failure);
  reply(s, () => s.out.simple('OK'));
}

/** HELLO [protover [AUTH username password] [SETNAME name]]: switches RESP2/RESP3 and answers the server's map. */
function hello(s: RespContext, args: Buffer[]): void {
  let version = s.out.version;
  if (args.length >= 2) {
    const asked = Number(args[1]!.toString('latin1'));
    if (asked !== 2 && asked !== 3) return s.error('NOPROTO unsupported protocol version');
    version = asked;
  }
  let name: string | null = null;
  for (let i = 2; i < args.length; i++) {
    const option = args[i]!.toString('latin1').toUpperCase();
    if (option === 'AUTH' && i + 2 < args.length) {
      const failure = s.authenticate(args[i + 1]!.toString('utf8'), args[i + 2]!.toString('utf8'));
      if (failure !== null) return s.error(failure);
      i += 2;
    } else if (option === 'SETNAME' && i + 1 < args.length) name = args[++i]!.toString('utf8');
    else return s.error(`ERR Syntax error in HELLO option '${option.slice(0, 64)}'`);
  }
  if (s.job === null)
    return s.error(
      'NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time',
    );
  if (name !== null) s.clientName = name;
  // The answer is in the protocol it switched to, as Redis does.
  s.out.version = version as 2 | 3;
  reply(s, () => {
    const out = s.out;
    out.map(7);
    out.bulk('server');
    out.bulk('redis');
    out.bulk('version');
    out.bulk(REDIS_VERSION);
    out.bulk('proto');
    out.integer(version);
    out.bulk('id');
    out.integer(s.clientId);
    out.bulk('mode');
    out.bulk('cluster');
    out.bulk('role');
    out.bulk('master');
    out.bulk('modules');
    out.array(0);
  });
}

function select(s: RespContext, args: Buffer[]): void {
  if (args[1]!.toString('latin1') !== '0') return s.error('ERR SELECT is not allowed in cluster mode');
  reply(s, () => s.out.simple('OK'));
}

function ok(s: RespContext): void {
  reply(s, () => s.out.simple('OK'));
}

function asking(s: RespContext): void {
  ok(s);
}

function quit(s: RespContext): void {
  ok(s);
  s.quit();
}

function clientInfo(s: RespContext): string {
  const socket = s.socket;
  return `id=${s.clientId} addr=${socket.remoteAddress}:${socket.remotePort} laddr=${socket.localAddress}:${socket.localPort} name=${s.clientName} db=0 user=${s.job ?? 'default'} resp=${s.out.version} lib-name=${s.libName} lib-ver=${s.libVersion}\n`;
}

function client(s: RespContext, args: Buffer[]): void {
  const sub = args[1]!.toString('latin1').toUpperCase();
  switch (sub) {
    case 'SETNAME': {
      const name = args[2]?.toString('utf8');
      if (name === undefined || args.length !== 3) return s.error("ERR wrong number of arguments for 'client|setname' command");
      if (/[\s]/.test(name)) return s.error('ERR Client names cannot contain spaces, newlines or special characters.');
      s.clientName = name;
      return ok(s);
    }
    case 'GETNAME':
      return reply(s, () => s.out.bulk(s.clientName === '' ? null : s.clientName));
    case 'ID':
      return reply(s, () => s.out.integer(s.clientId));
    case 'INFO':
    case 'LIST':
      return reply(s, () => s.out.verbatim(clientInfo(s)));
    case 'SETINFO': {
      const attribute = args[2]?.toString('latin1').toUpperCase();
      const value = args[3]?.toString('utf8');
      if (args.length !== 4 || value === undefined) return s.error("ERR wrong number of arguments for 'client|setinfo' command");
      if (attribute === 'LIB-NAME') s.libName = value;
      else if (attribute === 'LIB-VER') s.libVersion = value;
      else return s.error(`ERR Unrecognized option '${args[2]!.toString('utf8').slice(0, 64)}'`);
      return ok(s);
    }
    case 'NO-EVICT':
    case 'NO-TOUCH':
      return ok(s);
    default:
      return s.error(`ERR unknown subcommand '${sub.slice(0, 64)}'. Satchel answers CLIENT SETNAME, GETNAME, ID, INFO, LIST, SETINFO.`);
  }
}

/** One COMMAND entry, Redis 7's ten fields. */
function commandEntry(s: RespContext, spec: CommandSpec): void {
  const out = s.out;
  out.array(10);
  out.bulk(spec.name.toLowerCase());
  out.integer(spec.arity);
  out.set(spec.flags.length);
  for (const flag of spec.flags) out.simple(flag);
  out.integer(spec.keys?.first ?? 0);
  out.integer(spec.keys?.last ?? 0);
  out.integer(spec.keys?.step ?? 0);
  out.set(1);
  out.simple(`@${spec.group}`);
  out.array(0); // tips
  out.array(0); // key specs
  out.array(0); // subcommands
}

function command(s: RespContext, args: Buffer[]): void {
  const sub = args[1]?.toString('latin1').toUpperCase();
  if (sub === undefined)
    return reply(s, () => {
      s.out.array(COMMANDS.size);
      for (const spec of COMMANDS.values()) commandEntry(s, spec);
    });
  if (sub === 'COUNT') return reply(s, () => s.out.integer(COMMANDS.size));
  const named = args.slice(2).map((a) => a.toString('latin1').toUpperCase());
  if (sub === 'INFO')
    return reply(s, () => {
      const specs = named.length === 0 ? [...COMMANDS.values()] : named.map((n) => COMMANDS.get(n));
      s.out.array(specs.length);
      for (const spec of specs) {
        if (spec === undefined) s.out.bulk(null);
        else commandEntry(s, spec);
      }
    });
  if (sub === 'DOCS')
    return reply(s, () => {
      const specs = (named.length === 0 ? [...COMMANDS.values()] : named.map((n) => COMMANDS.get(n))).filter((x) => x !== undefined);
      s.out.map(specs.length);
      for (const spec of specs) {
        s.out.bulk(spec.name.toLowerCase());
        s.out.map(3);
        s.out.bulk('summary');
        s.out.bulk(spec.summary);
        s.out.bulk('since');
        s.out.bulk('1.0.0');
        s.out.bulk('group');
        s.out.bulk(spec.group);
      }
    });
  if (sub === 'LIST')
    return reply(s, () => {
      s.out.array(COMMANDS.size);
      for (const name of COMMANDS.keys()) s.out.bulk(name.toLowerCase());
    });
  s.error(`ERR unknown subcommand '${sub.slice(0, 64)}'. Satchel answers COMMAND, COMMAND COUNT, INFO, DOCS, LIST.`);
}

/** INFO [section …]: server, clients, memory, keyspace (the job's keys on this node), cluster. */
function info(s: RespContext, args: Buffer[]): void {
  const asked = new Set(args.slice(1).map((a) => a.toString('latin1').toLowerCase()));
  const all = asked.size === 0 || asked.has('all') || asked.has('everything') || asked.has('default');
  const want = (section: string) => all || asked.has(section);
  const server = s.host;
  const write = (keys: number | null) =>
    reply(s, () => {
      const lines: string[] = [];
      if (want('server'))
        lines.push(
          '# Server',
          `redis_version:${REDIS_VERSION}`,
          'redis_mode:cluster',
          `satchel_node:${server.options.id}`,
          `satchel_tier:${server.engine.tier}`,
          `process_id:${process.pid}`,
          `tcp_port:${s.socket.localPort}`,
          `uptime_in_seconds:${Math.floor(process.uptime())}`,
          '',
        );
      if (want('clients')) lines.push('# Clients', `connected_clients:${server.counters.connections}`, '');
      if (want('memory'))
        lines.push(
          '# Memory',
          `used_memory:${server.engine.used}`,
          `maxmemory:${server.engine.capacity}`,
          `satchel_job_bytes:${server.engine.usageByJob().get(s.job!) ?? 0}`,
          '',
        );
      if (want('cluster')) lines.push('# Cluster', 'cluster_enabled:1', '');
      if (keys !== null) lines.push('# Keyspace', ...(keys > 0 ? [`db0:keys=${keys},expires=0,avg_ttl=0`] : []), '');
      s.out.verbatim(lines.join('\r\n'));
    });
  if (!want('keyspace')) return write(null);
  // The job's keys on this node, page by page (a disk tier answers each later).
  let count = 0;
  const next = (after: string): void =>
    s.wait(server.engine.list(s.job!, '', after, 1000), (page) => {
      count += page.keys.length;
      if (page.more && page.keys.length > 0) return next(page.keys.at(-1)!);
      write(count);
    });
  next('');
}

const KEY = { first: 1, last: 1, step: 1 };
const KEYS = { first: 1, last: -1, step: 1 };
const other = OpKind.other;

const SPECS: CommandSpec[] = [
  {
    name: 'PING',
    arity: -1,
    flags: ['fast', 'stale'],
    beforeAuth: true,
    opKind: other,
    summary: 'Answers PONG.',
    group: 'connection',
    run: ping,
  },
  {
    name: 'ECHO',
    arity: 2,
    flags: ['fast'],
    opKind: other,
    summary: 'Answers its argument.',
    group: 'connection',
    run: (s, a) => reply(s, () => s.out.bulk(a[1]!)),
  },
  {
    name: 'QUIT',
    arity: -1,
    flags: ['fast'],
    beforeAuth: true,
    opKind: other,
    summary: 'Closes the connection.',
    group: 'connection',
    run: quit,
  },
  {
    name: 'AUTH',
    arity: -2,
    flags: ['noscript', 'loading', 'stale', 'fast', 'no_auth'],
    beforeAuth: true,
    opKind: other,
    summary: 'AUTH <job id> <token>: opens the job.',
    group: 'connection',
    run: auth,
  },
  {
    name: 'HELLO',
    arity: -1,
    flags: ['noscript', 'loading', 'stale', 'fast', 'no_auth'],
    beforeAuth: true,
    opKind: other,
    summary: 'Switches RESP2/RESP3, optionally authenticating.',
    group: 'connection',
    run: hello,
  },
  {
    name: 'SELECT',
    arity: 2,
    flags: ['loading', 'stale', 'fast'],
    opKind: other,
    summary: 'Only database 0 exists.',
    group: 'connection',
    run: select,
  },
  {
    name: 'CLIENT',
    arity: -2,
    flags: ['loading', 'stale'],
    opKind: other,
    summary: 'SETNAME, GETNAME, ID, INFO, LIST, SETINFO.',
    group: 'connection',
    run: client,
  },
  {
    name: 'COMMAND',
    arity: -1,
    flags: ['loading', 'stale'],
    opKind: other,
    summary: 'The commands this node answers.',
    group: 'server',
    run: command,
  },
  {
    name: 'INFO',
    arity: -1,
    flags: ['loading', 'stale'],
    opKind: other,
    summary: 'Server, clients, memory, keyspace, cluster.',
    group: 'server',
    run: info,
    needsJob: true,
    answersForeign: true,
  },
  {
    name: 'READONLY',
    arity: 1,
    flags: ['loading', 'stale', 'fast'],
    opKind: other,
    summary: 'Accepted; reads go to the owner.',
    group: 'cluster',
    run: (s) => ok(s),
  },
  {
    name: 'READWRITE',
    arity: 1,
    flags: ['loading', 'stale', 'fast'],
    opKind: other,
    summary: 'Accepted.',
    group: 'cluster',
    run: (s) => ok(s),
  },
  {
    name: 'ASKING',
    arity: 1,
    flags: ['fast'],
    opKind: other,
    summary: 'The next command may read a slot moving here or away.',
    group: 'cluster',
    run: asking,
  },
  {
    name: 'CLUSTER',
    arity: -2,
    flags: ['loading', 'stale'],
    opKind: other,
    summary: 'SLOTS, SHARDS, NODES, INFO, KEYSLOT, MYID for the job.',
    group: 'cluster',
    run: cluster,
    needsJob: true,
    answersForeign: true,
  },
  {
    name: 'GET',
    arity: 2,
    flags: ['readonly', 'fast'],
    keys: KEY,
    opKind: OpKind.get,
    summary: 'The value of a key.',
    group: 'string',
    run: data.get,
  },
  {
    name: 'SET',
    arity: -3,
    flags: ['write', 'denyoom'],
    keys: KEY,
    write: true,
    opKind: OpKind.put,
    summary: 'SET key value [NX|XX] [GET]; no expiry.',
    group: 'string',
    run: data.set,
  },
  {
    name: 'GETDEL',
    arity: 2,
    flags: ['write', 'fast'],
    keys: KEY,
    write: true,
    opKind: OpKind.delete,
    summary: 'The value of a key, deleted.',
    group: 'string',
    run: data.getdel,
  },
  {
    name: 'MGET',
    arity: -2,
    flags: ['readonly', 'fast'],
    keys: KEYS,
    opKind: OpKind.get,
    summary: 'The values of keys of one slot.',
    group: 'string',
    run: data.mget,
  },
  {
    name: 'MSET',
    arity: -3,
    flags: ['write', 'denyoom'],
    keys: { first: 1, last: -1, step: 2 },
    write: true,
    opKind: OpKind.put,
    summary: 'Sets keys of one slot (not atomic).',
    group: 'string',
    run: data.mset,
  },
  {
    name: 'DEL',
    arity: -2,
    flags: ['write'],
    keys: KEYS,
    write: true,
    opKind: OpKind.delete,
    summary: 'Deletes keys of one slot.',
    group: 'keyspace',
    run: data.del,
  },
  {
    name: 'UNLINK',
    arity: -2,
    flags: ['write', 'fast'],
    keys: KEYS,
    write: true,
    opKind: OpKind.delete,
    summary: 'Deletes keys of one slot.',
    group: 'keyspace',
    run: data.del,
  },
  {
    name: 'EXISTS',
    arity: -2,
    flags: ['readonly', 'fast'],
    keys: KEYS,
    opKind: OpKind.stat,
    summary: 'How many of the keys exist.',
    group: 'keyspace',
    run: data.exists,
  },
  {
    name: 'STRLEN',
    arity: 2,
    flags: ['readonly', 'fast'],
    keys: KEY,
    opKind: OpKind.stat,
    summary: 'The length of a value.',
    group: 'string',
    run: data.strlen,
  },
  {
    name: 'TYPE',
    arity: 2,
    flags: ['readonly', 'fast'],
    keys: KEY,
    opKind: OpKind.stat,
    summary: 'string, or none.',
    group: 'keyspace',
    run: data.type,
  },
  {
    name: 'INCR',
    arity: 2,
    flags: ['write', 'denyoom', 'fast'],
    keys: KEY,
    write: true,
    opKind: OpKind.put,
    summary: 'Adds 1 to a counter.',
    group: 'string',
    run: data.increment(1, false),
  },
  {
    name: 'INCRBY',
    arity: 3,
    flags: ['write', 'denyoom', 'fast'],
    keys: KEY,
    write: true,
    opKind: OpKind.put,
    summary: 'Adds to a counter.',
    group: 'string',
    run: data.increment(1, true),
  },
  {
    name: 'DECR',
    arity: 2,
    flags: ['write', 'denyoom', 'fast'],
    keys: KEY,
    write: true,
    opKind: OpKind.put,
    summary: 'Takes 1 from a counter.',
    group: 'string',
    run: data.increment(-1, false),
  },
  {
    name: 'DECRBY',
    arity: 3,
    flags: ['write', 'denyoom', 'fast'],
    keys: KEY,
    write: true,
    opKind: OpKind.put,
    summary: 'Takes from a counter.',
    group: 'string',
    run: data.increment(-1, true),
  },
  {
    name: 'SCAN',
    arity: -2,
    flags: ['readonly'],
    needsJob: true,
    opKind: OpKind.list,
    summary: 'The job’s keys on this node, a page at a time.',
    group: 'keyspace',
    run: data.scan,
  },
  {
    name: 'DBSIZE',
    arity: 1,
    flags: ['readonly', 'fast'],
    needsJob: true,
    opKind: OpKind.list,
    summary: 'How many of the job’s keys this node holds.',
    group: 'keyspace',
    run: data.dbsize,
  },
];

/** By upper-case name. */
export const COMMANDS: ReadonlyMap<string, CommandSpec> = new Map([...SPECS, ...COORDINATION_SPECS].map((spec) => [spec.name, spec]));

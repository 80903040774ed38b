/**
 * What Linux's /proc says of a process the benchmarks watch (a server's memory, descriptors and CPU): null when
 * it cannot be read (the process is gone, or this is not Linux), never an exception.
 */
import { readdir, readFile, readlink } from 'node:fs/promises';

/** Resident memory, bytes (/proc/<pid>/status VmRSS). */
export async function rssOf(pid: number): Promise<number | null> {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const kb = /VmRSS:\s+(\d+)/.exec(status)?.[1];
    return kb === undefined ? null : Number(kb) * 1024;
  } catch {
    return null;
  }
}

/** Open file descriptors (/proc/<pid>/fd). */
export async function fdsOf(pid: number): Promise<number | null> {
  try {
    return (await readdir(`/proc/${pid}/fd`)).length;
  } catch {
    return null;
  }
}

/**
 * What each open descriptor is, sorted: a file's path, `pipe:[…]`, `anon_inode:[eventfd]`, and for a TCP socket
 * its ends and state from /proc/<pid>/net/tcp and tcp6 (`tcp 127.0.0.1:5001 ⇄ 127.0.0.1:40122 ESTABLISHED`), a
 * UDP socket as `udp <ends>`, netlink and unix sockets as such; any other (a TCP socket closed under a descriptor
 * still open) stays `socket:[inode]`. So a count that did not come back down can say what stayed open.
 */
export async function fdTargetsOf(pid: number): Promise<string[] | null> {
  try {
    const fds = await readdir(`/proc/${pid}/fd`);
    const sockets = await socketsByInode(pid);
    const targets = await Promise.all(
      fds.map(async (fd) => {
        const target = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => null);
        if (target === null) return null; // closed since the listing
        const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1];
        return (inode === undefined ? undefined : sockets.get(inode)) ?? target;
      }),
    );
    return targets.filter((t): t is string => t !== null).sort();
  } catch {
    return null;
  }
}

const TCP_STATES = [
  '',
  'ESTABLISHED',
  'SYN_SENT',
  'SYN_RECV',
  'FIN_WAIT1',
  'FIN_WAIT2',
  'TIME_WAIT',
  'CLOSE',
  'CLOSE_WAIT',
  'LAST_ACK',
  'LISTEN',
  'CLOSING',
];

/**
 * TCP, UDP, netlink and unix sockets of the process's network namespace by inode, each described (TCP and UDP:
 * their ends, and TCP its state). UDP and netlink because a socket no TCP table lists may be one of those (a
 * DNS resolver's, getaddrinfo's) rather than a TCP connection closed under its descriptor.
 */
async function socketsByInode(pid: number): Promise<Map<string, string>> {
  const byInode = new Map<string, string>();
  for (const table of ['tcp', 'tcp6', 'udp', 'udp6']) {
    const text = await readFile(`/proc/${pid}/net/${table}`, 'utf8').catch(() => '');
    const udp = table.startsWith('udp');
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10) continue;
      const ends = `${endpoint(f[1]!)} ⇄ ${endpoint(f[2]!)}`;
      byInode.set(f[9]!, udp ? `udp ${ends}` : `tcp ${ends} ${TCP_STATES[Number.parseInt(f[3]!, 16)] ?? f[3]}`);
    }
  }
  // Netlink: the protocol number in the 2nd column, the inode in the 10th.
  const netlink = await readFile(`/proc/${pid}/net/netlink`, 'utf8').catch(() => '');
  for (const line of netlink.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length >= 10) byInode.set(f[9]!, `netlink socket (protocol ${f[1]})`);
  }
  // Unix sockets (an IPC channel to a parent, a socketpair): inode in the 7th column, a path in the 8th if bound.
  const unix = await readFile(`/proc/${pid}/net/unix`, 'utf8').catch(() => '');
  for (const line of unix.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length >= 7) byInode.set(f[6]!, f[7] === undefined ? 'unix socket' : `unix socket ${f[7]}`);
  }
  return byInode;
}

/** `0100007F:1389` (tcp) or a 32-digit IPv6 address (tcp6), as /proc writes them, to `127.0.0.1:5001`. */
function endpoint(hexAddress: string): string {
  const [address, port] = hexAddress.split(':') as [string, string];
  const portNumber = Number.parseInt(port, 16);
  // IPv4 (and IPv4 mapped into IPv6: the last 8 digits): the bytes of each 32-bit word are little-endian.
  const v4 = address.length === 8 ? address : /^0{16}0000FFFF([0-9A-F]{8})$/i.exec(address)?.[1];
  if (v4 !== undefined) {
    const bytes = [6, 4, 2, 0].map((i) => Number.parseInt(v4.slice(i, i + 2), 16));
    return `${bytes.join('.')}:${portNumber}`;
  }
  return `[${address.toLowerCase()}]:${portNumber}`;
}

/**
 * What `after` holds that `before` did not, counting repeats (`tcp … ESTABLISHED ×3`), most first: the
 * descriptors a process kept open across a run.
 */
export function descriptorsAdded(before: readonly string[], after: readonly string[]): string[] {
  const left = new Map<string, number>();
  for (const target of before) left.set(target, (left.get(target) ?? 0) + 1);
  const added = new Map<string, number>();
  for (const target of after) {
    const n = left.get(target) ?? 0;
    if (n > 0) left.set(target, n - 1);
    else added.set(target, (added.get(target) ?? 0) + 1);
  }
  return [...added].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).map(([target, n]) => (n === 1 ? target : `${target} ×${n}`));
}

/** Linux's USER_HZ: /proc times are in these ticks (100 on every mainstream architecture). */
const CLOCK_TICKS = 100;

/** CPU seconds a process has used (/proc/<pid>/stat utime + stime). */
export async function cpuSecondsOf(pid: number | undefined): Promise<number | null> {
  if (pid === undefined) return null;
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces), from the third: utime and stime are the 14th and 15th.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return null;
  }
}

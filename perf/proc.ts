/**
 * What Linux's /proc says of a process the benchmarks watch (a server's memory, descriptors and CPU): null when
 * it cannot be read (the process is gone, or this is not Linux), never an exception.
 */
import { readdir, readFile } from 'node:fs/promises';

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

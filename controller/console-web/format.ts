/** How figures read on the page. Pure functions: controller/console-web/format.test.ts runs them in Node. */

type Maybe = number | null | undefined;

const known = (n: Maybe): n is number => n !== null && n !== undefined && Number.isFinite(n);

export function fmtBytes(n: Maybe): string {
  if (!known(n)) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let i = 0;
  while (Math.abs(n) >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${i === 0 ? String(Math.round(n)) : n.toFixed(n < 10 ? 2 : 1)} ${units[i]}`;
}

export function fmtRate(bytesPerSec: Maybe): string {
  if (!known(bytesPerSec)) return '–';
  if (bytesPerSec >= 1e9) return `${(bytesPerSec / 1e9).toFixed(2)} GB/s`;
  if (bytesPerSec >= 1e6) return `${(bytesPerSec / 1e6).toFixed(1)} MB/s`;
  if (bytesPerSec >= 1e3) return `${(bytesPerSec / 1e3).toFixed(1)} kB/s`;
  return `${Math.round(bytesPerSec)} B/s`;
}

export function fmtNum(n: Maybe, digits = 0): string {
  if (!known(n)) return '–';
  return n.toLocaleString(undefined, { maximumFractionDigits: digits });
}

/** A latency the servers give in µs, read in ms (what the charts plot): 0.042 ms, 0.21 ms, 3.4 ms, 85 ms, 1.2 s. */
export function fmtLatency(us: Maybe): string {
  if (!known(us)) return '–';
  return fmtMs(us / 1000);
}

export function fmtMs(ms: number): string {
  if (ms >= 1000) return `${(ms / 1000).toFixed(ms >= 10_000 ? 0 : 1)} s`;
  if (ms >= 10) return `${Math.round(ms)} ms`;
  return `${Number(ms.toPrecision(2))} ms`;
}

/** A log axis's tick: only 1, 2 and 5 times a power of ten are labelled, so labels never crowd. */
export function logTick(ms: number): string {
  const mantissa = ms / 10 ** Math.floor(Math.log10(ms) + 1e-9);
  return [1, 2, 5].some((m) => Math.abs(mantissa - m) < 1e-6) ? fmtMs(ms) : '';
}

export function fmtPct(fraction: Maybe): string {
  return known(fraction) ? `${Math.round(fraction * 100)}%` : '–';
}

export function fmtUsd(usd: Maybe): string {
  if (!known(usd)) return '–';
  if (usd === 0) return '$0';
  if (usd >= 1) return `$${usd.toFixed(2)}`;
  const decimals = Math.min(12, Math.max(2, Math.ceil(-Math.log10(usd)) + 2));
  return `$${usd.toFixed(decimals)}`;
}

export function fmtDuration(ms: number): string {
  const s = Math.round(Math.abs(ms) / 1000);
  if (s < 90) return `${s} s`;
  const m = Math.round(s / 60);
  if (m < 90) return `${m} min`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

export function fmtClock(ms: number): string {
  return new Date(ms).toLocaleTimeString(undefined, { hour12: false });
}

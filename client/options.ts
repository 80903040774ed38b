/**
 * What callers pass: the options' types, and the checks of everything besides the job's data — keys, prefixes,
 * value types, options objects and hints. Functions are often plain JavaScript handed event payloads, so a wrong
 * type is answered BAD_REQUEST here, before it can reach a timer or the wire as something else (a TypeError, a
 * deadline out of range, a NaN in a frame).
 */
import { type ClientTls, type JobHints, MAX_TIMEOUT_MS, MAX_USER_KEY_BYTES, MAX_WAIT_MS, SatchelError } from '../proto/index.ts';
import { CLIENT_DEFAULTS } from './defaults.ts';

export interface JobOptions {
  /** Every operation fails with TIMEOUT after this long (default 10 s). */
  timeoutMs?: number;
  /** Block GET/PUTs of one large value in flight at once (default 8). */
  blockParallelism?: number;
}

/** JobOptions with every default filled in (CLIENT_DEFAULTS). */
export type ResolvedJobOptions = Required<JobOptions>;

export interface WaitOptions {
  /** Fail with TIMEOUT when the key has not appeared after this long (default 60 s, at most one hour). */
  timeoutMs?: number;
}

export interface BatchOptions {
  /** Operations in flight at once (default 1024); every connection sends what is queued for it as one write. */
  window?: number;
}

export interface ListOptions {
  /** Keys fetched per round trip from each node: 1 to 1000 (default 100); anything else is BAD_REQUEST. */
  pageSize?: number;
}

function bad(message: string): SatchelError {
  return new SatchelError('BAD_REQUEST', message);
}

/** `options`, or `{}` when undefined; BAD_REQUEST when it is not an object. */
export function optionsObject<T extends object>(options: T | undefined, what = 'options'): T {
  if (options === undefined) return {} as T;
  if (typeof options !== 'object' || options === null || Array.isArray(options)) throw bad(`${what} must be an object`);
  return options;
}

export function isPositiveInteger(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 1;
}

/** A timeout a timer (and a gRPC deadline) can wait: more than 0 ms, at most ~24.8 days. */
export function checkTimeout(value: unknown, what = 'timeoutMs'): void {
  if (value !== undefined && !(typeof value === 'number' && value > 0 && value <= MAX_TIMEOUT_MS)) {
    throw bad(`${what} must be a number of ms above 0 and at most ${MAX_TIMEOUT_MS}`);
  }
}

/** JobOptions (`Satchel.attach`, and the job options of `Satchel.connect`). */
export function checkJobOptions<T extends JobOptions>(options: T | undefined): T {
  const checked = optionsObject(options);
  checkTimeout(checked.timeoutMs);
  if (checked.blockParallelism !== undefined && !isPositiveInteger(checked.blockParallelism))
    throw bad('blockParallelism must be a positive integer');
  return checked;
}

/** JobOptions, checked, with the defaults of what the caller left out. */
export function resolveJobOptions(options: JobOptions | undefined): ResolvedJobOptions {
  const { timeoutMs = CLIENT_DEFAULTS.timeoutMs, blockParallelism = CLIENT_DEFAULTS.blockParallelism } = checkJobOptions(options);
  return { timeoutMs, blockParallelism };
}

/** ConnectOptions.tls: a CA (PEM, as a string or bytes) and, optionally, the name its certificate carries. */
export function checkClientTls(tls: unknown): ClientTls | undefined {
  if (tls === undefined) return undefined;
  const { ca, servername } = optionsObject(tls as ClientTls, 'tls');
  if (typeof ca !== 'string' && !(ca instanceof Uint8Array)) throw bad('tls.ca must be the CA certificate as PEM (a string or a Buffer)');
  if (servername !== undefined && (typeof servername !== 'string' || servername.length === 0))
    throw bad('tls.servername must be a non-empty string');
  return tls as ClientTls;
}

const NUMERIC_HINTS = ['capacity', 'peakThroughput', 'maxValueBytes'] as const;
/**
 * Every hint there is (a Record, so a hint added to JobHints must be added here): a misspelt one
 * (`latencySenstive`) is refused, not quietly ignored.
 */
const HINTS: Record<keyof JobHints, true> = {
  latencySensitive: true,
  capacity: true,
  peakThroughput: true,
  functions: true,
  replicas: true,
  maxValueBytes: true,
};
const KNOWN_HINTS: ReadonlySet<string> = new Set(Object.keys(HINTS));

/** The hints of registerJob, by type; what the cluster can meet is the controller's to judge. */
export function checkHints(hints: JobHints | undefined): JobHints {
  const checked = optionsObject(hints, 'hints');
  for (const name of Object.keys(checked)) {
    if (!KNOWN_HINTS.has(name)) throw bad(`unknown hint ${JSON.stringify(name)}; the hints are ${[...KNOWN_HINTS].join(', ')}`);
  }
  if (checked.latencySensitive !== undefined && typeof checked.latencySensitive !== 'boolean')
    throw bad('hint latencySensitive must be a boolean');
  for (const name of NUMERIC_HINTS) {
    const value = checked[name];
    if (value !== undefined && !(typeof value === 'number' && Number.isFinite(value)))
      throw bad(`hint ${name} must be a finite number of bytes`);
  }
  // Integers on the wire: 1.5 or -1 would arrive as something else (uint32).
  if (
    checked.functions !== undefined &&
    !(Number.isInteger(checked.functions) && checked.functions >= 0 && checked.functions <= 0xffffffff)
  ) {
    throw bad('hint functions must be a whole number');
  }
  if (checked.replicas !== undefined && !(Number.isInteger(checked.replicas) && checked.replicas >= 1 && checked.replicas <= 3)) {
    throw bad('hint replicas must be 1, 2 or 3');
  }
  return checked;
}

export function checkKey(key: unknown): asserts key is string {
  if (typeof key !== 'string' || key.length === 0) throw bad('key must be a non-empty string');
  // UTF-8 takes at most 3 bytes per UTF-16 unit: only long keys need their bytes counted.
  if (key.length * 3 > MAX_USER_KEY_BYTES && Buffer.byteLength(key) > MAX_USER_KEY_BYTES) {
    throw bad(`key longer than ${MAX_USER_KEY_BYTES} bytes`);
  }
  if (key.includes('\u0000')) throw bad('key may not contain NUL');
  // A lone surrogate has no UTF-8: Buffer.from would store U+FFFD in its place, a key other than the one given.
  if (LONE_SURROGATE.test(key)) throw bad('key is not well-formed text: it has a lone surrogate (U+D800 to U+DFFF)');
}

/** In a `u` RegExp a surrogate pair is one code point, so \p{Surrogate} matches only the unpaired halves. */
const LONE_SURROGATE = /\p{Surrogate}/u;

/**
 * A prefix of list or watch. Its length is checked here: a prefix over the frame's key limit would be a malformed
 * frame, and the node would close the connection under every other call in flight on it.
 */
export function checkPrefix(prefix: unknown): asserts prefix is string {
  if (typeof prefix !== 'string' || prefix.includes('\u0000')) throw bad('prefix must be a string without NUL');
  if (prefix.length * 3 > MAX_USER_KEY_BYTES && Buffer.byteLength(prefix) > MAX_USER_KEY_BYTES) {
    throw bad(`prefix longer than ${MAX_USER_KEY_BYTES} bytes`);
  }
  if (LONE_SURROGATE.test(prefix)) throw bad('prefix is not well-formed text: it has a lone surrogate (U+D800 to U+DFFF)');
}

export function toBytes(value: unknown): Uint8Array {
  if (value instanceof Uint8Array) return value;
  if (typeof value === 'string') return Buffer.from(value, 'utf8');
  throw bad('value must be a Uint8Array, Buffer or string');
}

/** WaitOptions.timeoutMs, checked, or its default. */
export function waitTimeout(options: WaitOptions | undefined): number {
  const { timeoutMs = CLIENT_DEFAULTS.waitTimeoutMs } = optionsObject(options);
  if (!Number.isInteger(timeoutMs) || timeoutMs <= 0 || timeoutMs > MAX_WAIT_MS) {
    throw bad(`timeoutMs must be a whole number of ms from 1 to ${MAX_WAIT_MS}`);
  }
  return timeoutMs;
}

/** BatchOptions.window, checked, or its default. */
export function batchWindow(options: BatchOptions | undefined): number {
  const { window = CLIENT_DEFAULTS.batchWindow } = optionsObject(options);
  if (!isPositiveInteger(window)) throw bad('window must be a positive integer');
  return window;
}

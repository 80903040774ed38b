/**
 * Checks of what callers pass besides keys and values: options objects and hints. Functions are often plain
 * JavaScript handed event payloads, so a wrong type is answered BAD_REQUEST here, before it can reach grpc-js,
 * a timer or the wire as something else (a TypeError, a deadline grpc-js throws on, a NaN in a frame).
 */
import { MAX_TIMEOUT_MS, SatchelError, type ClientTls, type JobHints } from '../proto/index.ts';

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
export function checkJobOptions<T extends { timeoutMs?: number; blockParallelism?: number }>(options: T | undefined): T {
  const checked = optionsObject(options);
  checkTimeout(checked.timeoutMs);
  if (checked.blockParallelism !== undefined && !isPositiveInteger(checked.blockParallelism)) throw bad('blockParallelism must be a positive integer');
  return checked;
}

/** ConnectOptions.tls: a CA (PEM, as a string or bytes) and, optionally, the name its certificate carries. */
export function checkClientTls(tls: unknown): ClientTls | undefined {
  if (tls === undefined) return undefined;
  const { ca, servername } = optionsObject(tls as ClientTls, 'tls');
  if (typeof ca !== 'string' && !(ca instanceof Uint8Array)) throw bad('tls.ca must be the CA certificate as PEM (a string or a Buffer)');
  if (servername !== undefined && (typeof servername !== 'string' || servername.length === 0)) throw bad('tls.servername must be a non-empty string');
  return tls as ClientTls;
}

const NUMERIC_HINTS = ['capacity', 'peakThroughput', 'maxValueBytes'] as const;

/** The hints of registerJob, by type; what the cluster can meet is the controller's to judge. */
export function checkHints(hints: JobHints | undefined): JobHints {
  const checked = optionsObject(hints, 'hints');
  if (checked.latencySensitive !== undefined && typeof checked.latencySensitive !== 'boolean') throw bad('hint latencySensitive must be a boolean');
  for (const name of NUMERIC_HINTS) {
    const value = checked[name];
    if (value !== undefined && !(typeof value === 'number' && Number.isFinite(value))) throw bad(`hint ${name} must be a finite number of bytes`);
  }
  // Integers on the wire: 1.5 or -1 would arrive as something else (uint32).
  if (checked.functions !== undefined && !(Number.isInteger(checked.functions) && checked.functions >= 0 && checked.functions <= 0xffffffff)) {
    throw bad('hint functions must be a whole number');
  }
  if (checked.replicas !== undefined && !(Number.isInteger(checked.replicas) && checked.replicas >= 1 && checked.replicas <= 3)) {
    throw bad('hint replicas must be 1, 2 or 3');
  }
  return checked;
}

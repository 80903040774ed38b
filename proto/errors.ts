/**
 * The one error type users see. `code` is stable: callers switch on it, so a code is never renamed.
 * `instanceof` works across two copies of the package (a function bundle and a shared layer, say)
 * through a `Symbol.for` brand, the way undici does it.
 */
export const ERROR_CODES = [
  'UNAUTHORIZED',
  'NO_SUCH_JOB',
  'FULL',
  'TOO_LARGE',
  'TIMEOUT',
  'UNAVAILABLE',
  'BAD_REQUEST',
  'STALE',
  'CLOSED',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

const brand = Symbol.for('satchel.error');

export class SatchelError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SatchelError';
    this.code = code;
  }

  get [brand](): true {
    return true;
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[brand] === true;
  }
}

export function isErrorCode(value: string): value is ErrorCode {
  return (ERROR_CODES as readonly string[]).includes(value);
}

import { isErrorCode, SatchelError } from './errors.ts';

/** gRPC status codes told apart here (grpc/status.h). */
const DEADLINE_EXCEEDED = 4;
const RESOURCE_EXHAUSTED = 8;

/**
 * A failed control-plane call as the SatchelError the caller sees, for both clients (control.ts over grpc-js,
 * control-light.ts over node:http2): the server's `satchel-code` trailer gives the code; without it a deadline
 * is TIMEOUT, RESOURCE_EXHAUSTED is a message over a size limit (TOO_LARGE), and anything else UNAVAILABLE.
 */
export function controlCallError(status: number, satchelCode: unknown, details: string, what: string, cause?: unknown): SatchelError {
  const options = cause === undefined ? undefined : { cause };
  if (typeof satchelCode === 'string' && isErrorCode(satchelCode)) return new SatchelError(satchelCode, details, options);
  if (status === DEADLINE_EXCEEDED) return new SatchelError('TIMEOUT', `${what}: timed out`, options);
  if (status === RESOURCE_EXHAUSTED) return new SatchelError('TOO_LARGE', `${what}: ${details}`, options);
  return new SatchelError('UNAVAILABLE', `${what}: ${details || `gRPC status ${status}`}`, options);
}

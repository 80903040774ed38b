import type { Logger } from 'pino';

let libc: Promise<{ func(signature: string): unknown }> | undefined;

/**
 * A function of glibc (libc.so.6) through koffi, an FFI with prebuilt binaries (nothing to compile), or null
 * where there is none: not Linux, not glibc (musl), no koffi build for the platform. A null is logged at info
 * as `unavailable` says, once per caller. libc is loaded once for the process.
 */
export async function libcFunction<F>(signature: string, logger: Logger, unavailable: string): Promise<F | null> {
  if (process.platform !== 'linux') return null;
  try {
    libc ??= import('koffi').then(({ default: koffi }) => koffi.load('libc.so.6'));
    return (await libc).func(signature) as F;
  } catch (error) {
    logger.info({ err: error }, unavailable);
    return null;
  }
}

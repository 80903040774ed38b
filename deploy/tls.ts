import { readFile } from 'node:fs/promises';
import { createSecureContext } from 'node:tls';
import { SatchelError, type ServerTls } from '../proto/index.ts';

/** `--tls-cert`, `--tls-key`, `--tls-ca`: PEM files (deploy/README.md says how to make them). */
export interface TlsFiles {
  cert: string;
  key: string;
  ca: string;
}

/** The three flags together, or none of them (no TLS); one or two alone are a mistake. */
export function tlsFilesOf(cert: string | undefined, key: string | undefined, ca: string | undefined): TlsFiles | undefined {
  if (cert === undefined && key === undefined && ca === undefined) return undefined;
  if (cert === undefined || key === undefined || ca === undefined) {
    throw new SatchelError('BAD_REQUEST', '--tls-cert, --tls-key and --tls-ca go together: give all three, or none for plain TCP');
  }
  return { cert, key, ca };
}

/**
 * Reads the files and checks they make a usable identity (PEM that parses, a key that matches the certificate)
 * before anything listens: a role with a broken certificate stops at start, saying which file.
 */
export async function readTlsFiles(files: TlsFiles): Promise<ServerTls> {
  const read = async (flag: string, path: string) => {
    try {
      return await readFile(path);
    } catch (error) {
      throw new SatchelError('BAD_REQUEST', `${flag}: cannot read ${path}: ${(error as Error).message}`, { cause: error });
    }
  };
  const [cert, key, ca] = await Promise.all([read('--tls-cert', files.cert), read('--tls-key', files.key), read('--tls-ca', files.ca)]);
  if (!ca.includes('-----BEGIN CERTIFICATE-----')) throw new SatchelError('BAD_REQUEST', `--tls-ca: ${files.ca} holds no PEM certificate`);
  try {
    createSecureContext({ cert, key });
  } catch (error) {
    throw new SatchelError('BAD_REQUEST', `--tls-cert ${files.cert} / --tls-key ${files.key}: ${(error as Error).message}`, {
      cause: error,
    });
  }
  try {
    createSecureContext({ ca });
  } catch (error) {
    throw new SatchelError('BAD_REQUEST', `--tls-ca ${files.ca}: ${(error as Error).message}`, { cause: error });
  }
  return { cert, key, ca };
}

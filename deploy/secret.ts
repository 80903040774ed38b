import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { SatchelError } from '../proto/index.ts';

/**
 * The cluster secret signs every token. It is generated on first start and stored with mode 0600; it is never
 * logged or printed (the admin token derived from it is what operators use).
 */
export async function loadOrCreateSecret(path: string): Promise<Buffer> {
  try {
    return decode(await readFile(path, 'utf8'), path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  const secret = randomBytes(32);
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  await writeFile(path, secret.toString('base64') + '\n', { mode: 0o600, flag: 'wx' }).catch(async (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EEXIST') throw error; // another process created it first: use theirs
  });
  return decode(await readFile(path, 'utf8'), path);
}

export async function readSecret(path: string): Promise<Buffer> {
  try {
    return decode(await readFile(path, 'utf8'), path);
  } catch (error) {
    if (error instanceof SatchelError) throw error;
    throw new SatchelError('BAD_REQUEST', `cannot read the cluster secret at ${path}: ${(error as Error).message}`, { cause: error });
  }
}

function decode(text: string, path: string): Buffer {
  const secret = Buffer.from(text.trim(), 'base64');
  if (secret.length < 16) throw new SatchelError('BAD_REQUEST', `cluster secret at ${path} is too short`);
  return secret;
}

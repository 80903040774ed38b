// The directory a disk engine owns: made if missing and emptied of what an earlier run left (the data is
// ephemeral: the controller re-places a restarted node's jobs), but only if it is the engine's own.
import fsp from 'node:fs/promises';
import path from 'node:path';
import { SatchelError } from '../../proto/index.ts';

/** The file that says a directory is a disk engine's; a non-empty directory without it is never wiped. */
const MARKER = 'SATCHEL-DISK-ENGINE';

/** Makes `dir` exist, hold the marker and nothing else; refuses (BAD_REQUEST) a foreign non-empty one. */
export async function claimDirectory(dir: string, tier: string): Promise<void> {
  await fsp.mkdir(dir, { recursive: true });
  const entries = await fsp.readdir(dir);
  if (entries.length > 0 && !entries.includes(MARKER)) {
    throw new SatchelError('BAD_REQUEST', `refusing to use ${dir}: not empty and not a satchel ${tier} directory (no ${MARKER} file)`);
  }
  await fsp.writeFile(path.join(dir, MARKER), 'Satchel storage-engine data. Wiped whenever a storage node starts here.\n');
  for (const name of entries) {
    if (name !== MARKER) await fsp.rm(path.join(dir, name), { recursive: true, force: true });
  }
}

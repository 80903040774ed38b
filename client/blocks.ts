/**
 * Values above the placement's block size: split into blocks under internal keys (the user key, NUL, a version,
 * NUL, the index) that hash over every node of the job, written in parallel before their manifest goes under the
 * key itself, so a reader sees the old value or the whole new one. A PUT or DELETE that replaces a manifest gets
 * the old one back, and its blocks are freed.
 */

import { constants } from 'node:buffer';
import { randomBytes } from 'node:crypto';
import {
  blockKey,
  decodeManifest,
  encodeManifest,
  Flag,
  forEachLimit,
  type Manifest,
  Op,
  type Reply,
  SatchelError,
  Status,
} from '../proto/index.ts';
import { expectOk } from './replies.ts';
import type { ReplacedValues, Router } from './routing.ts';

/** The largest Buffer this Node can allocate. */
const MAX_BUFFER_BYTES = constants.MAX_LENGTH;

export class Blocks implements ReplacedValues {
  constructor(private readonly router: Router) {}

  /** A value larger than the block size: blocks first, then the manifest. */
  async put(key: string, bytes: Uint8Array): Promise<void> {
    const blockSize = this.router.placement.blockSize;
    const manifest: Manifest = {
      size: bytes.length,
      blockSize,
      blockCount: Math.ceil(bytes.length / blockSize),
      version: randomBytes(6).toString('base64url'),
    };
    try {
      await this.forEachBlock(manifest, async (index) => {
        const start = index * blockSize;
        const reply = await this.router.call(Op.PUT, 0, blockKey(key, manifest.version, index), bytes.subarray(start, start + blockSize));
        expectOk(reply);
      });
    } catch (error) {
      void this.deleteBlocks(key, manifest).catch(() => {});
      throw error;
    }
    const reply = await this.router.call(Op.PUT, Flag.MANIFEST, key, encodeManifest(manifest));
    if (reply.status !== Status.OK) void this.deleteBlocks(key, manifest).catch(() => {});
    return this.afterReplace(key, reply, manifest.version);
  }

  /** Assembles the large value a GET answered with its manifest (Flag.MANIFEST); null when a block is missing (the value changed under us). */
  async read(key: string, reply: Reply): Promise<Buffer | null> {
    const manifest = decodeManifest(reply.body);
    // Checked, as decodeManifest checks its header: a size no Buffer can have would be a RangeError here.
    const { size, blockSize, blockCount } = manifest;
    if (
      !(Number.isSafeInteger(size) && size >= 0 && size <= MAX_BUFFER_BYTES && blockSize > 0 && blockCount === Math.ceil(size / blockSize))
    ) {
      throw new SatchelError('BAD_REQUEST', `corrupt block manifest under ${key}`);
    }
    const out = Buffer.allocUnsafe(manifest.size);
    let missing = false;
    await this.forEachBlock(manifest, async (index) => {
      if (missing) return;
      const start = index * blockSize;
      // Read straight into its place in `out` where the connection can (RequestFrame.into): a block in a buffer
      // of its own, copied after, cost a 3 MiB GET twice the memory traffic and fresh pages to fault in.
      const into = out.subarray(start, Math.min(start + blockSize, size));
      const reply = await this.router.call(Op.GET, 0, blockKey(key, manifest.version, index), null, into);
      if (reply.status === Status.NOT_FOUND) {
        missing = true;
        return;
      }
      expectOk(reply);
      if (!(reply.body.buffer === out.buffer && reply.body.byteOffset === into.byteOffset)) reply.body.copy(out, start);
    });
    return missing ? null : out;
  }

  /**
   * After a PUT or DELETE: surface an error, and free the blocks of a large value that was replaced — unless it is
   * the value this PUT wrote (`written`, its version): a manifest PUT tried again (a copy answered STALE or could
   * not be reached after the primary stored it) replaces its own first try, and freeing those blocks lost the
   * value it acknowledged.
   */
  async afterReplace(key: string, reply: Reply, written?: string): Promise<void> {
    expectOk(reply);
    if ((reply.flags & Flag.REPLACED_MANIFEST) !== 0) {
      const replaced = decodeManifest(reply.body);
      if (replaced.version === written) return;
      await this.deleteBlocks(key, replaced).catch(() => {
        // Orphaned blocks cost space until the job ends; they are never visible. Nothing to tell the caller.
      });
    }
  }

  private async deleteBlocks(key: string, manifest: Manifest): Promise<void> {
    // Every generation's owner: a block written before the placement changed (a GrowJob racing the write)
    // sits with its owner then, and would otherwise stay until the job ends.
    await this.forEachBlock(manifest, async (index) => {
      await this.router.deleteAtOwners(blockKey(key, manifest.version, index), this);
    });
  }

  /**
   * Runs `task` for every block index, `blockParallelism` at once. After the first failure no block starts, and
   * the call rejects only once the tasks already running have finished: a caller that cleans up after a failed
   * write (deleteBlocks) must not race block PUTs still on their way, or they outlive it.
   */
  private forEachBlock(manifest: Manifest, task: (index: number) => Promise<void>): Promise<void> {
    const indexes = Array.from({ length: manifest.blockCount }, (_, index) => index);
    return forEachLimit(indexes, this.router.options.blockParallelism, task);
  }
}

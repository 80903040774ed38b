/**
 * `putMany` and `getMany`: every key and value checked first, then each sent straight to its node as a put or a
 * get, at most `window` in flight; calls bound for one node in the same tick leave as one write (NodeConnection).
 */
import { forEachLimit, mapLimit, SatchelError } from '../proto/index.ts';
import { type BatchOptions, batchWindow, checkKey } from './options.ts';
import type { Router } from './routing.ts';

/** The job's key-value API, as batches and coordination use it (Job implements it). */
export interface KeyValue {
  put(key: string, value: Uint8Array | string): Promise<void>;
  get(key: string): Promise<Buffer | null>;
}

export class Batches {
  constructor(
    private readonly router: Router,
    private readonly values: KeyValue,
  ) {}

  /** Stores every entry; on a failure the rest still finish, then the first error is thrown, naming its key. */
  async putMany(
    entries: Iterable<readonly [string, Uint8Array | string]> | Record<string, Uint8Array | string>,
    options: BatchOptions | undefined,
  ): Promise<void> {
    if (typeof entries !== 'object' || entries === null) {
      throw new SatchelError('BAD_REQUEST', 'entries must be an iterable of [key, value] pairs, or an object of values by key');
    }
    const list = Symbol.iterator in entries ? [...(entries as Iterable<readonly [string, Uint8Array | string]>)] : Object.entries(entries);
    const window = batchWindow(options);
    for (const entry of list) {
      if (!Array.isArray(entry)) throw new SatchelError('BAD_REQUEST', 'each entry must be a [key, value] pair');
      const [key, value] = entry as [unknown, unknown];
      checkKey(key);
      // Checked, not converted: put converts each value when it sends it.
      if (!(value instanceof Uint8Array) && typeof value !== 'string')
        throw new SatchelError('BAD_REQUEST', 'value must be a Uint8Array, Buffer or string');
    }
    this.router.checkOpen();
    await forEachLimit(list, window, ([key, value]) =>
      this.values.put(key, value).catch((error: unknown) => Promise.reject(aboutKey(error, key))),
    );
  }

  /** The value under each key (null where there is none), in order. */
  async getMany(keys: Iterable<string>, options: BatchOptions | undefined): Promise<(Buffer | null)[]> {
    // A string is iterable too: getMany('abc') would read the keys a, b and c.
    if (typeof keys !== 'object' || keys === null || !(Symbol.iterator in keys))
      throw new SatchelError('BAD_REQUEST', 'keys must be an iterable of keys (an array, say)');
    const list = [...keys];
    const window = batchWindow(options);
    for (const key of list) checkKey(key);
    this.router.checkOpen();
    return mapLimit(list, window, (key) => this.values.get(key).catch((error: unknown) => Promise.reject(aboutKey(error, key))));
  }
}

/** The same error, its message naming the key of a batch entry. */
function aboutKey(error: unknown, key: string): unknown {
  if (!(error instanceof SatchelError)) return error;
  return new SatchelError(error.code, `${JSON.stringify(key)}: ${error.message}`, { cause: error });
}

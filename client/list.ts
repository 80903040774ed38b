/**
 * `job.list(prefix)`: the keys under a prefix from every node of every generation (keys written before a placement
 * change stay where they were), one cursor per node paging underneath, merged in sorted order.
 */
import { type PlacementNode, SatchelError } from '../proto/index.ts';
import { CLIENT_DEFAULTS } from './defaults.ts';
import { checkPrefix, type ListOptions, optionsObject } from './options.ts';
import type { Router } from './routing.ts';

/** Every key starting with `prefix`, in sorted order. Breaking out of the loop stops the paging. */
export async function* listKeys(router: Router, prefix: string, options: ListOptions | undefined): AsyncGenerator<string, void, undefined> {
  if (typeof prefix !== 'string' || prefix.includes('\u0000')) throw new SatchelError('BAD_REQUEST', 'prefix must be a string without NUL');
  const { pageSize = CLIENT_DEFAULTS.listPageSize } = optionsObject(options);
  // Out of range refused like any other bad value, not clamped: a caller asking for 5,000 learns the limit.
  if (!(Number.isSafeInteger(pageSize) && pageSize >= 1 && pageSize <= CLIENT_DEFAULTS.maxListPageSize))
    throw new SatchelError('BAD_REQUEST', `pageSize must be a whole number (1 to ${CLIENT_DEFAULTS.maxListPageSize})`);
  checkPrefix(prefix);
  router.checkOpen();
  router.listCoverage();
  const cursors = router.everyNode().map((node) => new ListCursor(router, node, prefix, pageSize));
  await Promise.all(cursors.map((c) => c.fill()));
  for (;;) {
    let best: string | undefined;
    for (const cursor of cursors) {
      const head = cursor.head;
      if (head !== undefined && (best === undefined || head < best)) best = head;
    }
    if (best === undefined) return;
    // The same key on two nodes (an old copy and its overwrite) is listed once.
    for (const cursor of cursors) {
      if (cursor.head !== best) continue;
      cursor.shift();
      if (cursor.head === undefined) await cursor.fill();
    }
    yield best;
  }
}

/** Pages through one node's keys. */
class ListCursor {
  private keys: string[] = [];
  private index = 0;
  private more = true;
  private after = '';

  constructor(
    private readonly router: Router,
    private readonly node: PlacementNode,
    private readonly prefix: string,
    private readonly pageSize: number,
  ) {}

  get head(): string | undefined {
    return this.keys[this.index];
  }

  shift(): string {
    const key = this.keys[this.index++]!;
    this.after = key;
    return key;
  }

  async fill(): Promise<void> {
    if (!this.more) return;
    const page = await this.router.listPage(this.node, this.prefix, this.after, this.pageSize);
    this.keys = page.keys;
    this.index = 0;
    this.more = page.more;
  }
}

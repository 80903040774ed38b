/**
 * `job.list(prefix)`: the keys under a prefix from every node of every generation (keys written before a placement
 * change stay where they were), one cursor per node paging underneath, merged in sorted order.
 */
import { type PlacementNode, SatchelError } from '../proto/index.ts';
import { pastDeadline } from './deadline.ts';
import { CLIENT_DEFAULTS, MAX_ATTEMPTS } from './defaults.ts';
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
  const cursors = await firstPages(router, prefix, pageSize);
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

/**
 * A cursor on every node of the placement, each with its first page. Until then nothing is yielded, so a placement
 * that moved on (a node answers STALE, or refuses the job: a handle attached from an old ticket after a node
 * restarted) is looked up again and the listing starts over on it, within the handle's timeout, as a get or put
 * would. Before, list failed there until some other call of the handle refreshed its placement (an outsider's
 * replicas-2 job, one node killed: every fresh attach's list failed for 40 s). Later pages fail as they come.
 */
async function firstPages(router: Router, prefix: string, pageSize: number): Promise<ListCursor[]> {
  const deadline = Date.now() + router.timeoutMs;
  for (let attempt = 1; ; attempt++) {
    router.listCoverage();
    const epoch = router.placement.epoch;
    const cursors = router.everyNode().map((node) => new ListCursor(router, node, prefix, pageSize));
    let stale = 0;
    try {
      const fills = await Promise.all(cursors.map((c) => c.fill()));
      for (const fill of fills) if (fill !== undefined) stale = Math.max(stale, fill);
      if (stale === 0) return cursors;
    } catch (error) {
      if (attempt >= MAX_ATTEMPTS || pastDeadline(deadline)) throw error;
      await router.afterUnreachable(error, epoch, deadline);
      continue;
    }
    if (attempt >= MAX_ATTEMPTS || pastDeadline(deadline))
      throw new SatchelError('UNAVAILABLE', `the job's placement kept changing (a node is at epoch ${stale}): try again`);
    await router.refreshPast(stale, deadline);
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

  /** The next page; a STALE answer's epoch (nothing read) for the caller to look the placement up past. */
  async fill(): Promise<number | undefined> {
    if (!this.more) return undefined;
    const page = await this.router.listPageOrStale(this.node, this.prefix, this.after, this.pageSize);
    if ('stale' in page) {
      // Past the first page: the keys listed so far came from this placement; a new one would list them again.
      if (this.after !== '')
        throw new SatchelError('UNAVAILABLE', `the job's placement changed while listing (a node is at epoch ${page.stale}): list again`);
      return page.stale;
    }
    this.keys = page.keys;
    this.index = 0;
    this.more = page.more;
    return undefined;
  }
}

/**
 * A multi-key command's keys, one after another. Each step calls `done` when finished, at once (the DRAM engine)
 * or later (a disk engine, a copy fetched from another node): while steps finish at once this is a loop, not a
 * recursion, so DEL of 1,000 keys does not go 1,000 calls deep (it took the node's stack to its limit once each
 * key's step grew by a frame, test/resp-fuzz.test.ts).
 */
export function inTurn(from: number, to: number, stride: number, step: (i: number, done: () => void) => void, end: () => void): void {
  let i = from;
  const run = (): void => {
    while (i < to) {
      let finished = false;
      let returned = false;
      step(i, () => {
        finished = true;
        // Finished later: go on from here.
        if (returned) {
          i += stride;
          run();
        }
      });
      returned = true;
      // Not finished yet (or never: the step answered a refusal itself).
      if (!finished) return;
      i += stride;
    }
    end();
  };
  run();
}

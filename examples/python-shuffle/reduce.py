#!/usr/bin/python3
"""A reduce function of the word-count shuffle: `reduce.py R M` waits until the M maps have written their part for
reducer R (EXISTS over the M keys: one slot, thanks to the hash tag), reads them with one MGET, sums the counts and
writes them to output/R, one "word<TAB>count" line per word, sorted. Exits 2 when the maps are not all done within
SATCHEL_WAIT_SECONDS (default 60): Satchel's RESP door has no blocking reads yet, so it polls.
"""

import json
import os
import sys
import time

from shuffle_common import connect, decode_counts, encode_counts, output_key, part_key


def main(r, maps):
    job = connect()
    keys = [part_key(r, m) for m in range(maps)]
    deadline = time.monotonic() + float(os.environ.get("SATCHEL_WAIT_SECONDS", "60"))
    while (done := job.exists(*keys)) < maps:
        if time.monotonic() > deadline:
            print(f"reducer {r}: only {done} of {maps} maps wrote their part", file=sys.stderr)
            sys.exit(2)
        time.sleep(0.05)
    totals = {}
    for value in job.mget(keys):
        for word, n in decode_counts(value.decode()).items():
            totals[word] = totals.get(word, 0) + n
    job.set(output_key(r), encode_counts(totals))
    print(json.dumps({"reducer": r, "words": sum(totals.values()), "distinct": len(totals)}))


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: reduce.py REDUCER_INDEX MAPS  (SATCHEL_REDIS_URL in the environment)")
    main(int(sys.argv[1]), int(sys.argv[2]))

#!/usr/bin/python3
"""A map function of the word-count shuffle: `map.py M R` counts the words of input/M (whitespace-separated, as the
driver put it) and writes, for each reducer r < R, the counts of its words to {shuffle-r}/map-M — an empty value
when it has none, so a reducer knows this map is done by the key being there. Writing again is harmless (SET
overwrites), so a retried map does no damage.
"""

import json
import sys
from collections import Counter

from shuffle_common import connect, encode_counts, input_key, part_key, partition


def main(m, reducers):
    job = connect()
    text = job.get(input_key(m))
    if text is None:
        sys.exit(f"no {input_key(m)} in the job")
    counts = Counter(text.decode().split())
    parts = [{} for _ in range(reducers)]
    for word, n in counts.items():
        parts[partition(word, reducers)][word] = n
    # One round trip per node rather than one per key: the cluster pipeline groups the SETs by node.
    pipe = job.pipeline()
    for r, part in enumerate(parts):
        pipe.set(part_key(r, m), encode_counts(part))
    pipe.execute()
    print(json.dumps({"map": m, "words": sum(counts.values()), "distinct": len(counts)}))


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: map.py MAP_INDEX REDUCERS  (SATCHEL_REDIS_URL in the environment)")
    main(int(sys.argv[1]), int(sys.argv[2]))

"""What map.py and reduce.py share: the job's connection, and where each piece of the shuffle lives.

The job is a Redis Cluster of its own (Satchel's RESP front door). Its URL, redis://<job id>:<token>@host:port
(rediss:// under TLS), comes from the driver's job.redisUrl in the environment, not on the command line, where
other users of the machine could read the token.
"""

import os
import sys
import zlib

from redis.cluster import RedisCluster


def connect():
    """The job as a RedisCluster: SATCHEL_REDIS_URL, and SATCHEL_CA (the cluster's CA, PEM) for rediss://."""
    url = os.environ.get("SATCHEL_REDIS_URL")
    if not url:
        sys.exit("SATCHEL_REDIS_URL is not set: the driver's job.redisUrl")
    ca = os.environ.get("SATCHEL_CA")
    return RedisCluster.from_url(url, **({"ssl_ca_certs": ca} if ca else {}))


def partition(word, reducers):
    """The reducer of a word: CRC-32 of its UTF-8 bytes (Python's hash() differs from process to process)."""
    return zlib.crc32(word.encode()) % reducers


def input_key(m):
    return f"input/{m}"


def part_key(r, m):
    """Map m's words for reducer r. The {hash tag} puts every part of reducer r in one slot, so the reducer reads
    them all with one EXISTS and one MGET (multi-key commands take keys of one slot, as in any Redis Cluster)."""
    return f"{{shuffle-{r}}}/map-{m}"


def output_key(r):
    return f"output/{r}"


def encode_counts(counts):
    """Word counts as text: one "word<TAB>count" line per word, sorted by word."""
    return "\n".join(f"{word}\t{n}" for word, n in sorted(counts.items()))


def decode_counts(text):
    counts = {}
    for line in text.splitlines():
        word, n = line.split("\t")
        counts[word] = counts.get(word, 0) + int(n)
    return counts

#!/usr/bin/env python3
"""Spark's classic PageRank in PySpark, given the partitioning help that the Scala Spark peer
(scala/pagerank.scala) and Tessera's notebook get: the links are hash-partitioned once and
cached, and the ranks keep that partitioner, so the join need not move the links.

    links = textFile(f, 4).map(parse).distinct(4).partitionBy(4).groupByKey(4).cache()
    ranks = links.mapValues(1.0)
    repeat ITERS: contribs = links.join(ranks, 4).flatMap(rank / outdeg to each neighbour)
                  ranks = contribs.reduceByKey(add, 4).mapValues(0.15 + 0.85 * sum)

The semantics are those of the peers' pagerank_spark.py (ranks not normalised, a page without
in-links drops out after the first iteration), and so are its outputs: the ranks, sorted by
page, in results/pagerank_partitioned_spark.txt, and a `RESULT {json}` line (spark_common.py,
which must be on PYTHONPATH) with the job's time, the number of ranked pages and their sum.

What PySpark can and cannot express, against Scala's `groupByKey(part)`, `join` and
`reduceByKey(part, _ + _)`:
- It can: a Python-side partitioner (`Partitioner(4, portable_hash)`) that `partitionBy`,
  `groupByKey`, `reduceByKey` and `mapValues` keep, and `partitionBy` skips the shuffle when
  the RDD already has that partitioner. So `groupByKey` after `partitionBy` groups in place,
  `reduceByKey(add, 4)` gives the ranks the links' partitioner, and `mapValues` keeps it.
- The join: PySpark's `join` is not Spark's CoGroupedRDD but a union of the two RDDs followed by
  a Python `groupByKey`. When both sides carry the same partitioner, the union is a
  partitioner-aware union of 4 partitions and that `groupByKey` does not shuffle either, so the
  links stay where they are, as in Scala. But every iteration still re-groups both sides in the
  Python workers (each page's links and rank buffered together per key), and the cached links
  are pickled bytes in the JVM, unpickled by a Python worker in every iteration; Scala's cache
  holds the objects and its join is a narrow dependency over them.
- It cannot: use a JVM partitioner (hash of the JVM key) or give the partitioner to
  `textFile`/`distinct`, so, as in Scala, `distinct` and the grouping are two shuffles, and the
  contributions (keyed by destination) are shuffled by `reduceByKey` every iteration, as in
  Scala and in Tessera.

Pages are kept as strings, as in pagerank_spark.py, so that partitioning is the one difference.

usage: pagerank_partitioned_spark.py EDGEFILE [ITERS=10] [PARTITIONS=4]
"""
import os
import re
import sys
import time
from operator import add

from spark_common import make_sc, report


def parse_edge(line):
    source, destination = re.split(r"\s+", line.strip())[:2]
    return source, destination


def contributions(urls_rank):
    urls, rank = urls_rank
    share = rank / len(urls)
    return ((url, share) for url in urls)


def pagerank(sc, path, iterations, partitions):
    """The ranks after `iterations`, collected: [(page, rank)]."""
    links = (sc.textFile(path, partitions).map(parse_edge).distinct(partitions)
             .partitionBy(partitions).groupByKey(partitions).cache())
    ranks = links.mapValues(lambda _: 1.0)
    for _ in range(iterations):
        contribs = links.join(ranks, partitions).values().flatMap(contributions)
        ranks = contribs.reduceByKey(add, partitions).mapValues(lambda s: 0.15 + 0.85 * s)
    return ranks.collect()


def main():
    path = sys.argv[1]
    iterations = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    partitions = int(sys.argv[3]) if len(sys.argv) > 3 else 4
    sc, startup, sampler = make_sc("PythonPageRankPartitioned")
    started = time.time()
    out = pagerank(sc, path, iterations, partitions)
    total = time.time() - started
    out.sort(key=lambda kv: int(kv[0]))
    os.makedirs("results", exist_ok=True)
    with open("results/pagerank_partitioned_spark.txt", "w") as f:
        for page, rank in out:
            f.write(f"{page} {rank!r}\n")
    report("pagerank_partitioned", {
        "iters": iterations, "partitions": partitions, "total_s": round(total, 3),
        "n_ranked": len(out), "rank_sum": sum(rank for _, rank in out),
        "top5": sorted(out, key=lambda kv: -kv[1])[:5]}, sampler, startup)
    sc.stop()


if __name__ == "__main__":
    main()

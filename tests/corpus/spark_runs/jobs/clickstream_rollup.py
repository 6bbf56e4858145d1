"""Clickstream rollup (RDD API): page views per page and hour, reduced by key, then the top pages of the day.

The rollup's shuffle is computed once and read by two actions (the daily count and the top pages); --pause-file
makes the driver wait between the two, so the corpus generator can act on the shuffle files in between.
"""

import argparse
import os
import random
import sys
import time
from operator import add

from pyspark.sql import SparkSession

PAGES = [f"/product/{i}" for i in range(400)] + ["/", "/cart", "/checkout", "/search", "/account"]


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--out", required=True)
    p.add_argument("--events-per-partition", type=int, default=50_000)
    p.add_argument("--partitions", type=int, default=6)
    p.add_argument("--reducers", type=int, default=4)
    p.add_argument("--pause-file", help="write <file>.ready after the first action, wait for <file>.go")
    p.add_argument("--pause-max-seconds", type=float, default=60.0)
    p.add_argument("--reduce-seconds", type=float, default=0.0, help="each reduce task of the 2nd action sleeps")
    return p.parse_args(argv)


def generate(index: int, n: int):
    rnd = random.Random(index)
    for _ in range(n):
        hour = rnd.randrange(24)
        page = PAGES[min(int(rnd.paretovariate(1.2)) - 1, len(PAGES) - 1)]
        yield ((page, hour), 1)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    spark = SparkSession.builder.appName("clickstream-rollup").getOrCreate()
    sc = spark.sparkContext
    n = args.events_per_partition

    views = sc.parallelize(range(args.partitions), args.partitions).flatMap(lambda i: generate(i, n))
    rollup = views.reduceByKey(add, numPartitions=args.reducers)
    print(f"distinct (page, hour) pairs: {rollup.count()}")

    if args.pause_file:
        with open(args.pause_file + ".ready", "w") as f:
            f.write("ready\n")
        deadline = time.time() + args.pause_max_seconds
        while not os.path.exists(args.pause_file + ".go") and time.time() < deadline:
            time.sleep(0.2)

    reduce_seconds = args.reduce_seconds

    def slow(it):
        if reduce_seconds:
            time.sleep(reduce_seconds)
        return it

    per_page = rollup.mapPartitions(slow).map(lambda kv: (kv[0][0], kv[1])).reduceByKey(add)
    top = per_page.takeOrdered(10, key=lambda kv: -kv[1])
    for page, views_count in top:
        print(f"{page}\t{views_count}")
    spark.createDataFrame(per_page, ["page", "views"]).write.mode("overwrite").parquet(args.out)
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

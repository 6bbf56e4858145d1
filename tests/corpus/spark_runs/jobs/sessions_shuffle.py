"""Web sessions: synthetic hits hashed into sessions, repartitioned by session and aggregated, written as Parquet.

A wide shuffle of random payloads: --rows and --reducers size it.
"""

import argparse
import sys

from pyspark.sql import SparkSession
from pyspark.sql import functions as sf


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--out", required=True)
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--partitions", type=int, default=4)
    p.add_argument("--reducers", type=int, default=16)
    return p.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    spark = SparkSession.builder.appName("web-sessions").getOrCreate()
    hits = spark.range(0, args.rows, numPartitions=args.partitions).select(
        (sf.col("id") % 20011).alias("session_id"),
        sf.sha2(sf.concat_ws(":", sf.col("id"), sf.rand(11)), 512).alias("user_agent_hash"),
        (sf.col("id") % 3600).alias("offset_s"),
    )
    sessions = (
        hits.repartition(args.reducers, "session_id")
        .groupBy("session_id")
        .agg(
            sf.count("*").alias("hits"),
            sf.min("offset_s").alias("first_s"),
            sf.max("offset_s").alias("last_s"),
            sf.approx_count_distinct("user_agent_hash").alias("agents"),
        )
    )
    sessions.write.mode("overwrite").parquet(args.out)
    print(f"sessions: {spark.read.parquet(args.out).count()}")
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Customer export: builds one wide record per customer and collects the records to the driver for a report.

--kind chooses the shape: "export" (collect many medium rows), "wide" (few huge rows),
"history" (one collect_list of every event per customer group, aggregated on the executors).
"""

import argparse
import sys

from pyspark.sql import SparkSession
from pyspark.sql import functions as sf


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--kind", choices=["export", "wide", "history"], default="export")
    p.add_argument("--rows", type=int, default=20_000)
    p.add_argument("--partitions", type=int, default=8)
    p.add_argument("--width", type=int, default=100, help="characters of payload per row")
    p.add_argument("--groups", type=int, default=100)
    return p.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    spark = SparkSession.builder.appName("customer-export").getOrCreate()
    base = spark.range(0, args.rows, numPartitions=args.partitions)

    if args.kind == "history":
        events = base.select(
            (sf.col("id") % args.groups).alias("customer_group"),
            sf.concat(sf.col("id").cast("string"), sf.lit(":"), sf.sha2(sf.col("id").cast("string"), 256)).alias(
                "event"
            ),
        )
        history = events.groupBy("customer_group").agg(sf.collect_list("event").alias("events"))
        rows = history.select("customer_group", sf.size("events").alias("n")).collect()
        print(f"groups: {len(rows)}, events: {sum(r['n'] for r in rows)}")
    else:
        records = base.select(
            sf.col("id").alias("customer_id"),
            sf.concat(sf.lit("customer-"), sf.col("id")).alias("name"),
            sf.expr(
                f"substring(repeat(sha2(cast(id as string), 512), {args.width // 128 + 1}), 1, {args.width})"
            ).alias("profile"),
        )
        if args.kind == "wide":
            records = records.groupBy((sf.col("customer_id") % args.partitions).alias("shard")).agg(
                sf.concat_ws("|", sf.collect_list("profile")).alias("profile")
            )
        rows = records.collect()
        print(f"collected {len(rows)} records, {sum(len(r['profile']) for r in rows)} characters")
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

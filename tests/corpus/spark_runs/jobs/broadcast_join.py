"""Sales by store: a large fact table joined with a small store dimension that is broadcast to every task.

The dimension is enriched by a Python lookup; --lookup-seconds makes that lookup slow.
"""

import argparse
import sys
import time

from pyspark.sql import SparkSession, types
from pyspark.sql import functions as sf


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--out", required=True)
    p.add_argument("--rows", type=int, default=2_000_000)
    p.add_argument("--lookup-seconds", type=float, default=0.0, help="time the geo lookup takes per partition")
    return p.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    spark = SparkSession.builder.appName("sales-by-store").getOrCreate()

    def geo_lookup(store_id: int) -> str:
        if args.lookup_seconds and store_id % 50 == 0:
            time.sleep(args.lookup_seconds)
        return ["EMEA", "AMER", "APAC"][store_id % 3]

    lookup = sf.udf(geo_lookup, types.StringType())
    stores = spark.range(0, 500, numPartitions=2).select(
        sf.col("id").alias("store_id"), lookup(sf.col("id")).alias("geo")
    )
    sales = spark.range(0, args.rows, numPartitions=4).select(
        (sf.col("id") % 500).alias("store_id"), (sf.col("id") % 97 * 1.5).alias("amount")
    )
    by_geo = (
        sales.join(sf.broadcast(stores), "store_id").groupBy("geo").agg(sf.round(sf.sum("amount"), 2).alias("sales"))
    )
    by_geo.write.mode("overwrite").parquet(args.out)
    by_geo.orderBy("geo").show()
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

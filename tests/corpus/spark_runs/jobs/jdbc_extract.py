"""JDBC extract: reads the stores table from an operational database, joins it with the day's orders, writes Parquet.

--seed first writes a small stores table through the same JDBC URL (for an embedded database).
"""

import argparse
import sys

from pyspark.sql import SparkSession
from pyspark.sql import functions as sf


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--url", required=True)
    p.add_argument("--driver", required=True)
    p.add_argument("--table", default="stores")
    p.add_argument("--user", default="etl")
    p.add_argument("--password", default="etl")
    p.add_argument("--orders", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--seed", action="store_true")
    return p.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    spark = SparkSession.builder.appName("stores-jdbc-extract").getOrCreate()
    props = {"user": args.user, "password": args.password, "driver": args.driver}

    if args.seed:
        stores = spark.range(1, 201).select(
            sf.col("id").alias("store_id"),
            sf.concat(sf.lit("store-"), sf.col("id")).alias("store_name"),
            sf.element_at(
                sf.array(sf.lit("north"), sf.lit("south"), sf.lit("east"), sf.lit("west")),
                (sf.col("id") % 4 + 1).cast("int"),
            ).alias("region"),
        )
        stores.write.jdbc(args.url, args.table, mode="overwrite", properties=props)

    stores = spark.read.jdbc(
        args.url,
        args.table,
        column="store_id",
        lowerBound=1,
        upperBound=200,
        numPartitions=4,
        properties=props,
    )
    orders = spark.read.option("header", "true").option("inferSchema", "true").csv(args.orders)
    per_region = (
        orders.withColumn("store_id", (sf.col("order_id") % 200 + 1).cast("long"))
        .join(stores, "store_id")
        .groupBy("region")
        .agg(sf.count("*").alias("orders"), sf.round(sf.sum(sf.col("qty") * sf.col("unit_price")), 2).alias("gross"))
    )
    per_region.write.mode("overwrite").parquet(args.out)
    per_region.orderBy("region").show()
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

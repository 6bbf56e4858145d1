"""Setup helper (its log is not kept): writes two days of orders as Parquet, the second with qty as a string.

An upstream export that changed a column's type from one day to the next.
"""

import sys

from pyspark.sql import SparkSession
from pyspark.sql import functions as sf


def main(argv: list[str]) -> int:
    orders_csv, out = argv
    spark = SparkSession.builder.appName("make-parquet-inputs").getOrCreate()
    orders = spark.read.option("header", "true").option("inferSchema", "true").csv(orders_csv)
    orders = orders.withColumn("order_id", sf.col("order_id").cast("long"))
    orders = orders.withColumn("customer_id", sf.col("customer_id").cast("long"))
    orders = orders.withColumn("order_ts", sf.col("order_ts").cast("timestamp"))
    day1 = orders.filter(sf.col("order_id") % 2 == 0)
    day2 = orders.filter(sf.col("order_id") % 2 == 1).withColumn("qty", sf.format_string("%d", "qty"))
    day1.coalesce(1).write.mode("overwrite").parquet(f"{out}/dt=2024-06-01")
    day2.coalesce(1).write.mode("overwrite").parquet(f"{out}/dt=2024-06-02")
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""SQL report: registers the day's orders and customers as views and runs a report query from a .sql file.

With --hive the session uses Hive support and the report is saved as a table in the metastore.
"""

import argparse
import sys

from pyspark.sql import SparkSession


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--orders", required=True)
    p.add_argument("--customers", required=True)
    p.add_argument("--query", required=True, help="file holding the report's SELECT")
    p.add_argument("--out", help="output folder (Parquet)")
    p.add_argument("--hive", action="store_true", help="save the report as analytics.<table> in the metastore")
    p.add_argument("--table", default="daily_country_report")
    return p.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    builder = SparkSession.builder.appName("orders-sql-report")
    if args.hive:
        builder = builder.enableHiveSupport()
    spark = builder.getOrCreate()

    spark.read.option("header", "true").option("inferSchema", "true").csv(args.orders).createOrReplaceTempView("orders")
    spark.read.json(args.customers).createOrReplaceTempView("customers")

    with open(args.query, encoding="utf-8") as f:
        query = f.read()
    report = spark.sql(query)

    if args.hive:
        spark.sql("CREATE DATABASE IF NOT EXISTS analytics")
        spark.sql(f"DROP TABLE IF EXISTS analytics.{args.table}_staging")
        report.write.mode("overwrite").saveAsTable(f"analytics.{args.table}")
        rows = spark.table(f"analytics.{args.table}").count()
        print(f"analytics.{args.table}: {rows} rows")
        spark.sql("SHOW TABLES IN analytics").show(truncate=False)
    else:
        report.write.mode("overwrite").parquet(args.out)
        report.show(10, truncate=False)
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

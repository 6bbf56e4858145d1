"""Daily orders ETL: CSV orders joined with JSON customers, revenue per country and segment, written as Parquet.

The flags let the corpus generator break the run in one specific way; without them it is a plain, healthy ETL.
"""

import argparse
import sys
import traceback

from pyspark.sql import SparkSession, types
from pyspark.sql import functions as sf
from pyspark.sql.utils import AnalysisException

ORDER_SCHEMA = types.StructType(
    [
        types.StructField("order_id", types.LongType()),
        types.StructField("customer_id", types.LongType()),
        types.StructField("sku", types.StringType()),
        types.StructField("qty", types.IntegerType()),
        types.StructField("unit_price", types.DoubleType()),
        types.StructField("currency", types.StringType()),
        types.StructField("order_ts", types.TimestampType()),
        types.StructField("status", types.StringType()),
    ]
)

FX_TO_EUR = {"EUR": 1.0, "USD": 0.92, "GBP": 1.17, "SEK": 0.087}


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--orders", required=True)
    p.add_argument("--orders-format", default="csv", choices=["csv", "parquet", "json"])
    p.add_argument("--customers", required=True)
    p.add_argument("--customers-format", default="json")
    p.add_argument("--json-mode", default="PERMISSIVE", help="parse mode of the customers JSON")
    p.add_argument("--out", help="output folder (Parquet)")
    p.add_argument("--table", help="write a managed table of this name instead of a folder")
    p.add_argument("--mode", default="overwrite", help="save mode of the output")
    p.add_argument("--group-by", default="country,segment", help="comma-separated dimensions")
    p.add_argument("--returns", help="optional returns feed (CSV); skipped with a warning when missing")
    p.add_argument("--max-unknown-customers", type=int, help="data-quality gate: exit 3 above this count")
    p.add_argument("--report-currency", default="EUR", help="currency the summary is printed in")
    p.add_argument("--partitions", type=int, default=4)
    p.add_argument("--config", help="YAML file with publishing settings (partitions)")
    return p.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    spark = SparkSession.builder.appName("orders-daily-etl").getOrCreate()
    log = spark.sparkContext._jvm.org.apache.log4j.LogManager.getLogger("orders_etl")
    if args.config:
        import yaml

        with open(args.config, encoding="utf-8") as f:
            args.partitions = int(yaml.safe_load(f)["publish"]["partitions"])

    if args.orders_format == "csv":
        orders = spark.read.option("header", "true").schema(ORDER_SCHEMA).csv(args.orders)
    elif args.orders_format == "parquet":
        orders = spark.read.schema(ORDER_SCHEMA).parquet(args.orders)
    else:
        orders = spark.read.schema(ORDER_SCHEMA).json(args.orders)
    customers = spark.read.format(args.customers_format).option("mode", args.json_mode).load(args.customers)

    fx = spark.createDataFrame(list(FX_TO_EUR.items()), ["currency", "eur_rate"])
    orders = (
        orders.filter(sf.col("status") != "CANCELLED")
        .join(sf.broadcast(fx), "currency", "left")
        .withColumn("revenue_eur", sf.round(sf.col("qty") * sf.col("unit_price") * sf.col("eur_rate"), 2))
        .withColumn("order_date", sf.to_date("order_ts"))
    )

    if args.returns:
        try:
            returns = spark.read.option("header", "true").csv(args.returns).select("order_id").distinct()
            orders = orders.join(returns, "order_id", "left_anti")
        except AnalysisException:
            log.warn(f"Returns feed not available, continuing without it\n{traceback.format_exc()}")

    enriched = orders.join(customers, "customer_id", "left")
    unknown = enriched.filter(sf.col("country").isNull()).count()
    log.info(f"orders with an unknown customer: {unknown}")
    if args.max_unknown_customers is not None and unknown > args.max_unknown_customers:
        print(
            f"Data quality gate failed: {unknown} orders reference unknown customers "
            f"(allowed: {args.max_unknown_customers}); not publishing",
            file=sys.stderr,
        )
        spark.stop()
        return 3

    dims = [c.strip() for c in args.group_by.split(",")]
    daily = (
        enriched.groupBy("order_date", *dims)
        .agg(
            sf.countDistinct("order_id").alias("orders"),
            sf.sum("qty").alias("units"),
            sf.round(sf.sum("revenue_eur"), 2).alias("revenue_eur"),
        )
        .repartition(args.partitions, "order_date")
    )
    writer = daily.write.mode(args.mode).partitionBy("order_date")
    if args.table:
        writer.format("parquet").saveAsTable(args.table)
    else:
        writer.parquet(args.out)

    total = daily.agg(sf.sum("revenue_eur")).first()[0] or 0.0
    rate = FX_TO_EUR[args.report_currency]
    print(f"published {daily.count()} rows, revenue {total / rate:,.2f} {args.report_currency}")
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

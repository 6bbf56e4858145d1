"""Streaming metrics: a rate source aggregated into 5-second windows, each micro-batch appended as Parquet.

Runs for --seconds, then stops the query and the session cleanly.
"""

import argparse
import sys
import time

from pyspark.sql import SparkSession
from pyspark.sql import functions as sf


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--out", required=True)
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--seconds", type=float, default=15.0)
    return p.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    spark = SparkSession.builder.appName("streaming-metrics").getOrCreate()
    spark.conf.set("spark.sql.shuffle.partitions", "2")
    ticks = spark.readStream.format("rate").option("rowsPerSecond", 50).load()
    windows = (
        ticks.withWatermark("timestamp", "5 seconds")
        .groupBy(sf.window("timestamp", "5 seconds"))
        .agg(sf.count("*").alias("events"), sf.sum("value").alias("value_sum"))
    )
    query = (
        windows.writeStream.outputMode("append")
        .format("parquet")
        .option("path", args.out)
        .option("checkpointLocation", args.checkpoint)
        .trigger(processingTime="2 seconds")
        .start()
    )
    deadline = time.time() + args.seconds
    while time.time() < deadline and query.isActive:
        time.sleep(1)
    progress = query.lastProgress
    query.stop()
    written = spark.read.parquet(args.out).count()
    print(f"last batch: {progress['batchId'] if progress else None}, windows written: {written}")
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Card transactions scoring: synthetic transactions scored by a Python UDF, flagged ones written as Parquet.

Each flag breaks the scoring in one way the corpus generator asks for; without flags the run is healthy.
"""

import argparse
import os
import signal
import sys
import threading
import time

from pyspark import TaskContext
from pyspark.sql import SparkSession, types
from pyspark.sql import functions as sf

CATEGORIES = ["grocery", "fuel", "travel", "electronics", "gaming", "pharmacy", "restaurants", "gift_cards"]
WEIGHTS = {"grocery": 0.1, "fuel": 0.2, "travel": 0.6, "electronics": 0.7, "gaming": 0.5, "pharmacy": 0.1}


class MetricsClient:
    """A client that keeps a lock: it cannot be shipped to executors."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.sent = 0

    def incr(self) -> None:
        with self._lock:
            self.sent += 1


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--out", required=True)
    p.add_argument("--rows", type=int, default=200_000)
    p.add_argument("--partitions", type=int, default=8)
    p.add_argument("--unknown-category", choices=["score", "raise"], default="score")
    p.add_argument("--transient-failure", action="store_true", help="partition 1 fails on its first attempt")
    p.add_argument("--crash-first-attempt", action="store_true", help="partition 1's worker dies on attempt 0")
    p.add_argument("--segfault", action="store_true", help="the worker dies of SIGSEGV on partition 2")
    p.add_argument("--rules-dir", help="folder with fraud_rules.py, put on the driver's sys.path only")
    p.add_argument("--sc-in-udf", action="store_true", help="the UDF reads a setting through the SparkContext")
    p.add_argument("--metrics-in-udf", action="store_true", help="the UDF counts calls on a MetricsClient")
    p.add_argument("--buffer-mb", type=int, default=0, help="per-batch lookup buffer the UDF allocates")
    p.add_argument("--task-seconds", type=float, default=0.0, help="each partition sleeps this long")
    p.add_argument("--straggler-seconds", type=float, default=0.0, help="partition 0, attempt 0 sleeps this long")
    return p.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    spark = SparkSession.builder.appName("card-risk-scoring").getOrCreate()
    # Only referenced by the UDF when asked: a closure that mentions the SparkContext cannot be pickled.
    conf_source = spark.sparkContext if args.sc_in_udf else None
    metrics = MetricsClient() if args.metrics_in_udf else None
    rules = None
    if args.rules_dir:
        sys.path.insert(0, args.rules_dir)
        import fraud_rules  # only the driver has it on its path

        rules = fraud_rules

    def risk_score(amount: float, category: str, country: str) -> float:
        ctx = TaskContext.get()
        part, attempt = ctx.partitionId(), ctx.attemptNumber()
        if args.transient_failure and part == 1 and attempt == 0:
            raise ConnectionError("feature store timed out (attempt 0), try again")
        if args.crash_first_attempt and part == 1 and attempt == 0:
            os.kill(os.getpid(), signal.SIGKILL)
        if args.segfault and part == 2:
            import ctypes

            ctypes.string_at(0)
        if conf_source is not None:
            threshold = float(conf_source.getConf().get("spark.risk.threshold", "0.8"))
            amount = amount * threshold
        if metrics is not None:
            metrics.incr()
        if rules is not None:
            return float(rules.score(amount, category, country))
        if category not in WEIGHTS and args.unknown_category == "raise":
            raise ValueError(f"no risk weight for merchant category {category!r}")
        weight = WEIGHTS.get(category, 0.3)
        return min(1.0, weight * amount / 500.0 + (0.2 if country not in ("SE", "NO", "DK") else 0.0))

    score_udf = sf.udf(risk_score, types.DoubleType())

    def slow_partitions(rows):
        ctx = TaskContext.get()
        if args.straggler_seconds and ctx.partitionId() == 0 and ctx.attemptNumber() == 0:
            time.sleep(args.straggler_seconds)
        if args.task_seconds:
            time.sleep(args.task_seconds)
        buffer = bytearray(args.buffer_mb * 1024 * 1024) if args.buffer_mb else b""
        for row in rows:
            yield (*row, len(buffer))

    base = spark.range(0, args.rows, numPartitions=args.partitions).select(
        sf.col("id").alias("txn_id"),
        (sf.col("id") % 5000).alias("card_id"),
        sf.round(sf.rand(7) * 900 + 1, 2).alias("amount"),
        sf.element_at(
            sf.array(*[sf.lit(c) for c in CATEGORIES]), (sf.col("id") % len(CATEGORIES) + 1).cast("int")
        ).alias("category"),
        sf.element_at(
            sf.array(*[sf.lit(c) for c in ["SE", "NO", "DK", "DE", "US"]]), (sf.col("id") % 5 + 1).cast("int")
        ).alias("country"),
    )
    txns = base
    if args.task_seconds or args.straggler_seconds or args.buffer_mb:
        schema = types.StructType([*base.schema.fields, types.StructField("buffer_bytes", types.LongType())])
        txns = spark.createDataFrame(base.rdd.mapPartitions(slow_partitions), schema)

    scored = txns.withColumn("risk", score_udf("amount", "category", "country"))
    flagged = scored.filter(sf.col("risk") > 0.8)
    flagged.write.mode("overwrite").parquet(args.out)
    summary = spark.read.parquet(args.out).groupBy("category").agg(sf.count("*").alias("flagged")).orderBy("category")
    summary.show(truncate=False)
    if metrics is not None:
        print(f"metrics sent: {metrics.sent}")
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Runs small PySpark ETL jobs on Spark 3.5, broken on purpose or healthy, and keeps the logs Spark wrote.

Run with the Python of a virtualenv that has pyspark 3.5 (never the project's own .venv):

    python3 -m venv /work/spark-venv && /work/spark-venv/bin/pip install 'pyspark==3.5.*'
    apt-get install libpostgresql-jdbc-java     # the JDBC driver of the network_error cases
    /work/spark-venv/bin/python tests/corpus/spark_runs/generate.py [--only ID...] [--out DIR]
    (--list shows the cases; --manifest-only rewrites manifest.yaml after a label or `why` changed in CASES)

Each case of CASES sets up its inputs in a temporary folder, runs spark-submit in local mode or against a
standalone Master and Workers it starts on 127.0.0.1 (and tears down after the run), breaks the run the way
the case says (a configuration, an environment, a process killed at the right moment, a file deleted), and
keeps what Spark itself printed: the driver's output as spark-submit prints it (stdout and stderr
interleaved, Spark's default INFO level), and in standalone mode each executor's stderr from the Worker's
work folder. They are written gzipped (no name, mtime 0) to runs/<id>/driver.log.gz and
executor-<n>.log.gz, and manifest.yaml lists every run with its label.

The labels are the corpus's (../README.md), given by what was broken and by reading the logs, following
the judging principles; a case whose breakage produced something else than planned says so in `why`.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
JOBS = HERE / "jobs"
PG_JAR = Path("/usr/share/java/postgresql.jar")
NOBODY = 65534
SPARK_VERSION = "3.5.9"

# A port on 127.0.0.1 that nothing listens on (checked before each run that uses it).
CLOSED_PORT = 5999


# ---------------------------------------------------------------------------------------------------------
# The cases
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Action:
    """Something the generator does to the run while it is running."""

    kind: str  # kill_executor | delete_shuffle | kill_executor_at_pause | stop_executor_at_pause | kill_app
    after: str = ""  # a regex the driver log must show first
    delay: float = 0.0  # seconds to wait after that
    executor: str = "any"  # which executor id ("any": the first one found)
    times: int = 1  # kill_executor: how many executors, one after the other


@dataclass(frozen=True)
class Case:
    id: str
    mode: str  # local | standalone
    job: str
    args: tuple[str, ...]
    breakage: str
    expected: str
    why: str
    also_accepted: tuple[str, ...] = ()
    planned: str = "failed"  # the outcome the breakage is meant to give (checked, reported)
    evidence: tuple[str, ...] = ()  # text the logs must show for the label, " | " between alternatives (reported)
    master: str = "local[2]"
    workers: int = 1
    worker_cores: int = 2
    worker_memory: str = "2g"
    confs: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    submit: tuple[str, ...] = ()  # spark-submit options before the job (--driver-memory, --jars, ...)
    timeout: float = 150.0
    nofile: int = 0  # open-files limit (soft and hard) of every JVM of the run
    tmpfs_mb: int = 0  # local dirs on a tmpfs this big, in a private mount namespace
    as_nobody: bool = False  # every process of the run as user nobody
    action: Action | None = None
    setup: tuple[str, ...] = ()  # a spark-submit (job and args) run first, its log discarded
    executor_logs: int = 0  # keep only the first n executors' logs (0: all)

    @property
    def platform(self) -> str:
        return self.mode

    @property
    def mode_text(self) -> str:
        if self.mode == "local":
            return self.master
        return f"standalone, {self.workers} worker(s) x {self.worker_cores} core(s), {self.worker_memory}"


ORDERS = ("--orders", "{in}/orders.csv", "--customers", "{in}/customers.json")
SQL_INPUTS = ("--orders", "{in}/orders.csv", "--customers", "{in}/customers.json")
KRYO = {"spark.serializer": "org.apache.spark.serializer.KryoSerializer"}

CASES: list[Case] = [
    # ----------------------------------------------------------------------------------------- healthy
    Case(
        id="local-orders-etl-healthy",
        mode="local",
        job="orders_etl.py",
        args=(*ORDERS, "--out", "{out}/daily_revenue"),
        breakage="none: CSV + JSON join, aggregation, partitioned Parquet write",
        expected="no_failure",
        planned="succeeded",
        why="A plain ETL run: only start-up INFO/WARN lines, every task finished, the context stopped cleanly.",
    ),
    Case(
        id="standalone-orders-etl-healthy",
        mode="standalone",
        job="orders_etl.py",
        args=(*ORDERS, "--out", "{out}/daily_revenue"),
        breakage="none: CSV + JSON join, aggregation, partitioned Parquet write on one worker",
        expected="no_failure",
        planned="succeeded",
        why="A plain standalone run; the executor's only ERROR is the 'RECEIVED SIGNAL TERM' every executor "
        "logs when the Worker stops it at the end of a finished application.",
    ),
    Case(
        id="local-udf-transient-failure-retried",
        mode="local",
        job="udf_scoring.py",
        args=("--out", "{out}/flagged", "--transient-failure"),
        master="local[2,4]",
        breakage="a UDF raises ConnectionError on the first attempt of partition 1 only; local[2,4] retries it",
        expected="no_failure",
        planned="succeeded",
        evidence=("ConnectionError", "Lost task 1.0"),
        why="The first attempt of one task fails with a Python ConnectionError (WARN TaskSetManager: Lost task), "
        "the retry succeeds and the job finishes: retried tasks in a run that finished.",
    ),
    Case(
        id="standalone-udf-transient-failure-retried",
        mode="standalone",
        job="udf_scoring.py",
        args=("--out", "{out}/flagged", "--transient-failure"),
        breakage="a UDF raises ConnectionError on the first attempt of partition 1 only (spark.task.maxFailures=4)",
        expected="no_failure",
        planned="succeeded",
        evidence=("ConnectionError",),
        why="One task attempt fails with a Python exception, its retry succeeds and the application finishes.",
    ),
    Case(
        id="local-python-worker-crash-retried",
        mode="local",
        job="udf_scoring.py",
        args=("--out", "{out}/flagged", "--crash-first-attempt"),
        master="local[2,4]",
        breakage="the Python worker of partition 1 SIGKILLs itself on the first attempt; the retry succeeds",
        expected="no_failure",
        planned="succeeded",
        evidence=("Python worker exited unexpectedly",),
        why="A Python worker crashes once (WARN Lost task ... Python worker exited unexpectedly), the task is "
        "retried and the job finishes: a retried failure in a run that succeeded.",
    ),
    Case(
        id="local-handled-missing-optional-input",
        mode="local",
        job="orders_etl.py",
        args=(*ORDERS, "--out", "{out}/daily_revenue", "--returns", "{in}/returns/dt=2024-06-01"),
        breakage="an optional returns feed is missing; the job catches the AnalysisException and logs a WARN",
        expected="no_failure",
        planned="succeeded",
        evidence=("Returns feed not available, continuing without it",),
        why="The missing path shows up only in a WARN the job itself writes ('Returns feed not available, "
        "continuing without it', with the AnalysisException's traceback); the run then finishes: a handled "
        "exception.",
    ),
    Case(
        id="standalone-handled-missing-optional-input",
        mode="standalone",
        job="orders_etl.py",
        args=(*ORDERS, "--out", "{out}/daily_revenue", "--returns", "{in}/returns/dt=2024-06-01"),
        breakage="an optional returns feed is missing; the job catches the AnalysisException and logs a WARN",
        expected="no_failure",
        planned="succeeded",
        evidence=("Returns feed not available, continuing without it",),
        why="The PATH_NOT_FOUND traceback is inside the job's own WARN saying it continues without the "
        "feed; the application then finishes.",
    ),
    Case(
        id="local-structured-streaming-stops-cleanly",
        mode="local",
        job="streaming_rate.py",
        args=("--out", "{out}/windows", "--checkpoint", "{tmp}/checkpoint", "--seconds", "14"),
        breakage="none: a rate source aggregated in windows for 14 seconds, then query.stop()",
        expected="no_failure",
        planned="succeeded",
        why="Micro-batches run and commit (one WARN that a batch fell behind its trigger), then the query and the "
        "context stop; a batch in flight at the stop may be aborted, which is what stopping a query looks like.",
    ),
    Case(
        id="standalone-structured-streaming-stops-cleanly",
        mode="standalone",
        job="streaming_rate.py",
        args=("--out", "{out}/windows", "--checkpoint", "{tmp}/checkpoint", "--seconds", "14"),
        breakage="none: a rate source aggregated in windows for 14 seconds, then query.stop()",
        expected="no_failure",
        planned="succeeded",
        why="Streaming micro-batches on a standalone executor, then query.stop() and a clean stop of the app. A "
        "batch in flight at the stop, if any, is aborted (ERROR FileFormatWriter: Aborting job, tasks TaskKilled): "
        "that is what stopping a query looks like, not a failure.",
    ),
    Case(
        id="local-jdbc-derby-healthy",
        mode="local",
        job="jdbc_extract.py",
        args=(
            "--url",
            "jdbc:derby:memory:ops;create=true",
            "--driver",
            "org.apache.derby.jdbc.EmbeddedDriver",
            "--seed",
            "--orders",
            "{in}/orders.csv",
            "--out",
            "{out}/per_region",
        ),
        breakage="none: a JDBC write and partitioned JDBC read against an embedded Derby database",
        expected="no_failure",
        planned="succeeded",
        why="The JDBC extract seeds and reads the table, joins and writes; nothing fails.",
    ),
    Case(
        id="local-hive-local-metastore-noise",
        mode="local",
        job="sql_report.py",
        args=(*SQL_INPUTS, "--query", "{in}/sql/report.sql", "--hive"),
        confs={"spark.sql.warehouse.dir": "{tmp}/warehouse"},
        breakage="none: Hive support with the embedded Derby metastore (its usual WARN noise)",
        expected="no_failure",
        planned="succeeded",
        why="The embedded metastore prints its usual start-up WARNs (HiveConf of name ... does not exist, "
        "version information not found, failed to get database global_temp); the table is saved and read back.",
    ),
    Case(
        id="standalone-hive-local-metastore-noise",
        mode="standalone",
        job="sql_report.py",
        args=(*SQL_INPUTS, "--query", "{in}/sql/report.sql", "--hive"),
        confs={"spark.sql.warehouse.dir": "{tmp}/warehouse"},
        breakage="none: Hive support with the embedded Derby metastore, executors on a standalone worker",
        expected="no_failure",
        planned="succeeded",
        why="Only the embedded metastore's start-up WARN noise; the Hive table is written and counted.",
    ),
    Case(
        id="local-deprecated-configs-noise",
        mode="local",
        job="orders_etl.py",
        args=(*ORDERS, "--out", "{out}/daily_revenue"),
        confs={
            "spark.yarn.executor.memoryOverhead": "512",
            "spark.shuffle.spill": "false",
            "fs.s3a.fast.upload": "true",
            "spark.sql.legacy.timeParserPolicy": "LEGACY",
        },
        breakage="none: deprecated and non-Spark configuration keys that Spark warns about",
        expected="no_failure",
        planned="succeeded",
        evidence=("deprecated",),
        why="Warnings about deprecated or ignored configuration keys at start-up, then a normal, finished run.",
    ),
    Case(
        id="local-broadcast-join-healthy",
        mode="local",
        job="broadcast_join.py",
        args=("--out", "{out}/sales_by_geo"),
        breakage="none: a broadcast join of a 2M-row fact with a 500-row dimension",
        expected="no_failure",
        planned="succeeded",
        why="The broadcast join and the write finish; nothing fails.",
    ),
    Case(
        id="standalone-executor-killed-and-replaced",
        mode="standalone",
        job="udf_scoring.py",
        args=("--out", "{out}/flagged", "--partitions", "12", "--task-seconds", "2.5"),
        workers=2,
        worker_cores=1,
        action=Action("kill_executor", after=r"Starting task \d+\.0 in stage \d+\.0 \(TID 3\)", delay=1.0),
        breakage="one executor JVM SIGKILLed mid-stage; the Master launches a replacement and the tasks rerun",
        expected="no_failure",
        planned="succeeded",
        evidence=("Lost executor",),
        why="An executor is lost mid-stage (exit 137), its tasks are resubmitted to the surviving and the "
        "replacement executor and the application finishes: a lost executor that was replaced in a run "
        "that succeeded.",
    ),
    Case(
        id="standalone-speculation-straggler",
        mode="standalone",
        job="udf_scoring.py",
        args=("--out", "{out}/flagged", "--partitions", "8", "--straggler-seconds", "12"),
        workers=2,
        worker_cores=1,
        confs={
            "spark.speculation": "true",
            "spark.speculation.multiplier": "2",
            "spark.speculation.quantile": "0.5",
            "spark.speculation.minTaskRuntime": "2s",
        },
        breakage="speculation on; partition 0's first attempt is a 12 s straggler",
        expected="no_failure",
        planned="succeeded",
        evidence=("as speculatable",),
        why="The straggler is marked speculatable; no copy is launched (Spark never runs a speculative copy on "
        "the host of the original, and both workers are on 127.0.0.1) and the straggler finishes: a healthy run.",
    ),
    Case(
        id="standalone-shuffle-files-lost-recovered",
        mode="standalone",
        job="clickstream_rollup.py",
        args=("--out", "{out}/top_pages", "--pause-file", "{tmp}/pause"),
        workers=2,
        worker_cores=1,
        action=Action("delete_shuffle"),
        breakage="shuffle files deleted between two actions; the fetch fails, the map stage is resubmitted",
        expected="no_failure",
        planned="succeeded",
        evidence=("FetchFailed",),
        why="The second action's shuffle read fails (FetchFailed, missing shuffle files), Spark resubmits the "
        "map stage and the job finishes: fetch failures that were retried in a run that succeeded.",
    ),
    Case(
        id="standalone-kryo-small-buffer-survives",
        mode="standalone",
        job="collect_report.py",
        args=("--kind", "wide", "--rows", "100000", "--width", "200", "--partitions", "4"),
        confs={**KRYO, "spark.kryoserializer.buffer.max": "1m"},
        breakage="Kryo with spark.kryoserializer.buffer.max=1m and 5 MB records collected to the driver",
        expected="no_failure",
        planned="succeeded",
        why="Planned as kryo_buffer, but Spark 3.4+ writes task results through a Kryo stream that flushes, so "
        "5 MB records never overflow the 1m buffer: the run finishes and shows no failure.",
    ),
    # ----------------------------------------------------------------------------------------- oom_heap
    Case(
        id="local-driver-heap-oom-collect",
        mode="local",
        job="collect_report.py",
        args=("--kind", "export", "--rows", "400000", "--width", "4000", "--partitions", "8"),
        submit=("--driver-memory", "512m"),
        timeout=180,
        breakage="driver heap 512m; collect() of 400k rows x 4 KB to the driver",
        expected="oom_heap",
        evidence=("OutOfMemoryError",),
        why="java.lang.OutOfMemoryError: Java heap space while the driver gathers the collected rows.",
    ),
    Case(
        id="local-aggregation-heap-oom",
        mode="local",
        job="collect_report.py",
        args=("--kind", "history", "--rows", "12000000", "--groups", "1", "--partitions", "8"),
        submit=("--driver-memory", "512m"),
        timeout=240,
        breakage="driver (and local executor) heap 512m; collect_list of 12M events into a single group",
        expected="oom_heap",
        evidence=("OutOfMemoryError",),
        why="Tasks fail with java.lang.OutOfMemoryError: Java heap space building one huge collect_list "
        "buffer; SparkUncaughtExceptionHandler then ends the JVM and spark-submit exits with code 52.",
    ),
    Case(
        id="standalone-executor-heap-oom",
        mode="standalone",
        job="collect_report.py",
        args=("--kind", "history", "--rows", "12000000", "--groups", "1", "--partitions", "8"),
        confs={"spark.executor.memory": "512m", "spark.task.maxFailures": "2"},
        timeout=240,
        breakage="executor heap 512m; collect_list of 12M events into a single group",
        expected="oom_heap",
        evidence=("OutOfMemoryError",),
        why="The executor dies of java.lang.OutOfMemoryError: Java heap space (exit 52) building one huge "
        "collect_list; the OOM beats the executor loss it causes.",
    ),
    Case(
        id="local-python-memoryerror",
        mode="local",
        job="udf_scoring.py",
        args=("--out", "{out}/flagged", "--buffer-mb", "700"),
        confs={"spark.executor.pyspark.memory": "400m"},
        breakage="spark.executor.pyspark.memory=400m caps the Python workers; the job allocates 700 MB buffers",
        expected="oom_heap",
        evidence=("MemoryError",),
        why="The Python worker raises MemoryError under the address-space limit Spark set for it.",
    ),
    Case(
        id="standalone-python-memoryerror",
        mode="standalone",
        job="udf_scoring.py",
        args=("--out", "{out}/flagged", "--buffer-mb", "700"),
        confs={"spark.executor.pyspark.memory": "400m"},
        breakage="spark.executor.pyspark.memory=400m caps the Python workers; the job allocates 700 MB buffers",
        expected="oom_heap",
        evidence=("MemoryError",),
        why="A Python MemoryError in the executors' Python workers (capped by spark.executor.pyspark.memory), "
        "four times, then the job aborts.",
    ),
    # ----------------------------------------------------------------------------------------- executor_lost
    Case(
        id="standalone-executors-killed-repeatedly",
        mode="standalone",
        job="udf_scoring.py",
        args=("--out", "{out}/flagged", "--partitions", "4", "--task-seconds", "20"),
        workers=1,
        worker_cores=2,
        confs={"spark.task.maxFailures": "2"},
        action=Action("kill_executor", after=r"Starting task", delay=4.0, times=3),
        timeout=200,
        breakage="every executor SIGKILLed a few seconds into its tasks (x3), spark.task.maxFailures=2",
        expected="executor_lost",
        evidence=("ExecutorLostFailure",),
        why="Executors exit with code 137 while running tasks (ExecutorLostFailure ... Command exited with code "
        "137) until a task has failed twice and the job aborts; no memory or other cause in the text.",
    ),
    Case(
        id="standalone-executor-hung-heartbeat-timeout-recovered",
        mode="standalone",
        job="clickstream_rollup.py",
        args=("--out", "{out}/top_pages", "--pause-file", "{tmp}/pause", "--reducers", "4"),
        workers=2,
        worker_cores=1,
        confs={
            "spark.network.timeout": "15s",
            "spark.network.timeoutInterval": "5s",
            "spark.executor.heartbeatInterval": "3s",
            "spark.shuffle.io.maxRetries": "1",
            "spark.shuffle.io.retryWait": "1s",
        },
        action=Action("stop_executor_at_pause", executor="1"),
        timeout=200,
        breakage="the executor holding the shuffle output is frozen (SIGSTOP) between two actions",
        expected="no_failure",
        planned="succeeded",
        evidence=("Executor heartbeat timed out",),
        why="Planned as a failure, but Spark survives it: 'Removing executor 1 with no recent heartbeats', Lost "
        "executor 1 (heartbeat timed out), its shuffle output is recomputed on the other executor and a "
        "replacement is launched; the job finishes, so the lost executor is not a failure here.",
    ),
    Case(
        id="standalone-executor-killed-between-shuffle-stages-recovered",
        mode="standalone",
        job="clickstream_rollup.py",
        args=("--out", "{out}/top_pages", "--pause-file", "{tmp}/pause", "--reducers", "4"),
        workers=2,
        worker_cores=1,
        confs={"spark.stage.maxConsecutiveAttempts": "1"},
        action=Action("kill_executor_at_pause", executor="1"),
        breakage="the executor holding the shuffle output SIGKILLed between two actions (no shuffle service)",
        expected="no_failure",
        planned="succeeded",
        evidence=("Shuffle files lost for executor",),
        why="Planned as a fetch failure, but the driver hears of the loss (Lost executor 1: Command exited with "
        "code 137, 'Shuffle files lost for executor: 1') before the next stage reads, so it reruns the lost map "
        "tasks on a replacement executor without any FetchFailed, and the job finishes: no_failure.",
    ),
    # ----------------------------------------------------------------------------------------- python_error
    Case(
        id="local-udf-value-error",
        mode="local",
        job="udf_scoring.py",
        args=("--out", "{out}/flagged", "--unknown-category", "raise"),
        breakage="the scoring UDF raises ValueError for a merchant category it has no weight for",
        expected="python_error",
        evidence=("ValueError: no risk weight",),
        why="PythonException from the UDF: ValueError: no risk weight for merchant category 'restaurants'.",
    ),
    Case(
        id="standalone-udf-value-error",
        mode="standalone",
        job="udf_scoring.py",
        args=("--out", "{out}/flagged", "--unknown-category", "raise"),
        breakage="the scoring UDF raises ValueError for a merchant category it has no weight for",
        expected="python_error",
        evidence=("ValueError: no risk weight",),
        why="The UDF's ValueError fails a task four times and aborts the job (PythonException with the traceback).",
    ),
    Case(
        id="local-driver-key-error",
        mode="local",
        job="orders_etl.py",
        args=(*ORDERS, "--out", "{out}/daily_revenue", "--report-currency", "CHF"),
        breakage="after the write, the driver looks up a currency missing from its FX table",
        expected="python_error",
        evidence=("KeyError: 'CHF'",),
        why="A Python traceback in the driver: KeyError: 'CHF' after the Spark work finished.",
    ),
    Case(
        id="local-python-worker-segfault",
        mode="local",
        job="udf_scoring.py",
        args=("--out", "{out}/flagged", "--segfault"),
        confs={"spark.python.worker.faulthandler.enabled": "true"},
        breakage="the UDF dereferences a NULL pointer (ctypes) on partition 2; faulthandler on",
        expected="python_error",
        also_accepted=("other",),
        evidence=("Python worker exited unexpectedly | Connection reset",),
        why="The UDF's worker dies of SIGSEGV: 'ERROR PythonUDFRunner: Python worker exited unexpectedly "
        "(crashed)', EOFError and java.net.SocketException: Connection reset, and the job aborts. faulthandler was "
        "on, but its dump did not reach the log. A crashed Python worker: python_error, or other.",
    ),
    Case(
        id="standalone-python-worker-killed",
        mode="standalone",
        job="udf_scoring.py",
        args=("--out", "{out}/flagged", "--crash-first-attempt"),
        confs={"spark.task.maxFailures": "1"},
        breakage="the Python worker of partition 1 SIGKILLs itself; spark.task.maxFailures=1",
        expected="python_error",
        also_accepted=("other",),
        evidence=("Python worker exited unexpectedly | Connection reset",),
        why="The job aborts because the task's Python worker died on a live executor: 'Python worker exited "
        "unexpectedly (crashed)' with EOFException (or, as the race goes, java.net.SocketException: Connection "
        "reset in PythonRunner's writer thread, the socket to that worker). A crashed Python worker: python_error, "
        "or other; not a network failure.",
    ),
    # ----------------------------------------------------------------------------------------- input_not_found
    Case(
        id="local-input-path-missing",
        mode="local",
        job="orders_etl.py",
        args=("--orders", "{in}/orders/dt=2024-06-02", "--customers", "{in}/customers.json", "--out", "{out}/d"),
        breakage="the day's orders folder does not exist",
        expected="input_not_found",
        evidence=("PATH_NOT_FOUND",),
        why="AnalysisException: [PATH_NOT_FOUND] Path does not exist: file:/.../orders/dt=2024-06-02.",
    ),
    Case(
        id="standalone-input-path-missing",
        mode="standalone",
        job="sql_report.py",
        args=(
            "--orders",
            "{in}/orders.csv",
            "--customers",
            "{in}/crm/customers/",
            "--query",
            "{in}/sql/report.sql",
            "--out",
            "{out}/report",
        ),
        breakage="the customers export folder does not exist",
        expected="input_not_found",
        evidence=("PATH_NOT_FOUND",),
        why="AnalysisException: [PATH_NOT_FOUND] Path does not exist for the customers JSON.",
    ),
    # ----------------------------------------------------------------------------------------- sql_analysis_error
    Case(
        id="local-unresolved-column",
        mode="local",
        job="orders_etl.py",
        args=(*ORDERS, "--out", "{out}/d", "--group-by", "country,customer_segment"),
        breakage="a dimension that is not a column (customer_segment instead of segment)",
        expected="sql_analysis_error",
        evidence=("UNRESOLVED_COLUMN",),
        why="AnalysisException: [UNRESOLVED_COLUMN.WITH_SUGGESTION] A column ... `customer_segment` cannot be "
        "resolved.",
    ),
    Case(
        id="standalone-unresolved-column-sql",
        mode="standalone",
        job="sql_report.py",
        args=(*SQL_INPUTS, "--query", "{in}/sql/unresolved_column.sql", "--out", "{out}/report"),
        breakage="the report's SQL selects c.region, which the customers view does not have",
        expected="sql_analysis_error",
        evidence=("UNRESOLVED_COLUMN",),
        why="AnalysisException: [UNRESOLVED_COLUMN.WITH_SUGGESTION] for `c`.`region` in the report query.",
    ),
    Case(
        id="local-sql-syntax-error",
        mode="local",
        job="sql_report.py",
        args=(*SQL_INPUTS, "--query", "{in}/sql/syntax_error.sql", "--out", "{out}/report"),
        breakage="the report's SQL has a JOIN without ON and a trailing comma",
        expected="sql_analysis_error",
        evidence=("PARSE_SYNTAX_ERROR",),
        why="ParseException: [PARSE_SYNTAX_ERROR] Syntax error at or near ... in the report query.",
    ),
    Case(
        id="standalone-sql-syntax-error",
        mode="standalone",
        job="sql_report.py",
        args=(*SQL_INPUTS, "--query", "{in}/sql/syntax_error.sql", "--out", "{out}/report"),
        breakage="the report's SQL has a JOIN without ON and a trailing comma",
        expected="sql_analysis_error",
        evidence=("PARSE_SYNTAX_ERROR",),
        why="ParseException: [PARSE_SYNTAX_ERROR] in the report query; no task ever ran.",
    ),
    Case(
        id="local-table-not-found",
        mode="local",
        job="sql_report.py",
        args=(*SQL_INPUTS, "--query", "{in}/sql/missing_table.sql", "--out", "{out}/report"),
        breakage="the report's SQL reads a view (orders_enriched) nothing registered",
        expected="sql_analysis_error",
        evidence=("TABLE_OR_VIEW_NOT_FOUND",),
        why="AnalysisException: [TABLE_OR_VIEW_NOT_FOUND] The table or view `orders_enriched` cannot be found.",
    ),
    # ----------------------------------------------------------------------------------------- dependency
    Case(
        id="local-module-missing-on-executors",
        mode="local",
        job="udf_scoring.py",
        args=("--out", "{out}/flagged", "--rules-dir", "{in}/rules"),
        breakage="the UDF calls fraud_rules, a module on the driver's sys.path only (not shipped with --py-files)",
        expected="python_error",
        also_accepted=("dependency_conflict",),
        evidence=("No module named 'fraud_rules'",),
        why="The Python workers fail to unpickle the UDF: ModuleNotFoundError: No module named 'fraud_rules'.",
    ),
    Case(
        id="standalone-module-missing-on-executors",
        mode="standalone",
        job="udf_scoring.py",
        args=("--out", "{out}/flagged", "--rules-dir", "{in}/rules"),
        breakage="the UDF calls fraud_rules, a module on the driver's sys.path only (not shipped with --py-files)",
        expected="python_error",
        also_accepted=("dependency_conflict",),
        evidence=("No module named 'fraud_rules'",),
        why="The executors' Python workers cannot import the UDF's module: ModuleNotFoundError: No module named "
        "'fraud_rules'.",
    ),
    Case(
        id="local-driver-module-missing",
        mode="local",
        job="orders_etl.py",
        args=(*ORDERS, "--out", "{out}/d", "--config", "{in}/etl.yaml"),
        breakage="the job reads a YAML config with PyYAML, which the environment does not have",
        expected="dependency_conflict",
        also_accepted=("python_error",),
        evidence=("No module named 'yaml'",),
        why="A driver traceback: ModuleNotFoundError: No module named 'yaml' - a missing Python library.",
    ),
    Case(
        id="local-avro-data-source-missing",
        mode="local",
        job="orders_etl.py",
        args=(*ORDERS[:2], "--customers", "{in}/customers.avro", "--customers-format", "avro", "--out", "{out}/d"),
        breakage="format('avro') without the spark-avro package",
        expected="dependency_conflict",
        evidence=("Failed to find data source: avro",),
        why="AnalysisException: Failed to find data source: avro. Avro is built-in but external data source module "
        "since Spark 2.4 - a data source package that was not deployed.",
    ),
    Case(
        id="standalone-avro-data-source-missing",
        mode="standalone",
        job="orders_etl.py",
        args=(*ORDERS[:2], "--customers", "{in}/customers.avro", "--customers-format", "avro", "--out", "{out}/d"),
        breakage="format('avro') without the spark-avro package",
        expected="dependency_conflict",
        evidence=("Failed to find data source: avro",),
        why="AnalysisException: Failed to find data source: avro ... Please deploy the application as per the "
        "deployment section of Apache Avro Data Source Guide.",
    ),
    Case(
        id="local-jdbc-driver-class-missing",
        mode="local",
        job="jdbc_extract.py",
        args=(
            "--url",
            f"jdbc:postgresql://127.0.0.1:{CLOSED_PORT}/ops",
            "--driver",
            "org.postgresql.Driver",
            "--orders",
            "{in}/orders.csv",
            "--out",
            "{out}/per_region",
        ),
        breakage="a PostgreSQL JDBC read without the driver jar on the classpath",
        expected="dependency_conflict",
        evidence=("ClassNotFoundException: org.postgresql.Driver",),
        why="java.lang.ClassNotFoundException: org.postgresql.Driver - the JDBC driver is not deployed.",
    ),
    # ----------------------------------------------------------------------------------------- driver_result_size
    Case(
        id="local-max-result-size",
        mode="local",
        job="collect_report.py",
        args=("--kind", "export", "--rows", "200000", "--width", "200", "--partitions", "8"),
        confs={"spark.driver.maxResultSize": "1m"},
        breakage="spark.driver.maxResultSize=1m and a collect() of ~40 MB",
        expected="driver_result_size",
        evidence=("spark.driver.maxResultSize",),
        why="Job aborted: Total size of serialized results of N tasks (...) is bigger than "
        "spark.driver.maxResultSize (1024.0 KiB).",
    ),
    Case(
        id="standalone-max-result-size",
        mode="standalone",
        job="collect_report.py",
        args=("--kind", "export", "--rows", "200000", "--width", "200", "--partitions", "8"),
        confs={"spark.driver.maxResultSize": "1m"},
        breakage="spark.driver.maxResultSize=1m and a collect() of ~40 MB",
        expected="driver_result_size",
        evidence=("spark.driver.maxResultSize",),
        why="Total size of serialized results ... is bigger than spark.driver.maxResultSize (1024.0 KiB).",
    ),
    # ----------------------------------------------------------------------------------------- serialization
    Case(
        id="local-sparkcontext-in-udf",
        mode="local",
        job="udf_scoring.py",
        args=("--out", "{out}/flagged", "--sc-in-udf"),
        breakage="the UDF reads a setting through the SparkContext (SPARK-5063)",
        expected="task_not_serializable",
        evidence=("SPARK-5063",),
        why="PicklingError: Could not serialize object: ... It appears that you are attempting to reference "
        "SparkContext from a broadcast variable, action, or transformation ... SPARK-5063.",
    ),
    Case(
        id="standalone-lock-in-closure",
        mode="standalone",
        job="udf_scoring.py",
        args=("--out", "{out}/flagged", "--metrics-in-udf"),
        breakage="the UDF's closure holds a client with a threading.Lock",
        expected="task_not_serializable",
        evidence=("cannot pickle '_thread.lock' object",),
        why="PicklingError: Could not serialize object: TypeError: cannot pickle '_thread.lock' object.",
    ),
    # ----------------------------------------------------------------------------------------- open files
    Case(
        id="local-too-many-open-files",
        mode="local",
        job="sessions_shuffle.py",
        args=("--out", "{out}/sessions", "--rows", "400000", "--reducers", "1500"),
        confs={"spark.shuffle.sort.bypassMergeThreshold": "5000", "spark.sql.adaptive.enabled": "false"},
        nofile=1024,
        breakage="open-files limit 1024 for the JVM; a shuffle into 1500 partitions with the bypass writer",
        expected="too_many_open_files",
        evidence=("Too many open files",),
        why="The shuffle writer opens one file per reducer: java.io.FileNotFoundException ... (Too many open files).",
    ),
    Case(
        id="standalone-too-many-open-files",
        mode="standalone",
        job="sessions_shuffle.py",
        args=("--out", "{out}/sessions", "--rows", "400000", "--reducers", "1500"),
        confs={"spark.shuffle.sort.bypassMergeThreshold": "5000", "spark.sql.adaptive.enabled": "false"},
        nofile=1024,
        breakage="open-files limit 1024 for the Worker and its executors; a shuffle into 1500 partitions",
        expected="too_many_open_files",
        evidence=("Too many open files",),
        why="Executor tasks fail with FileNotFoundException ... (Too many open files) writing shuffle files.",
    ),
    # ----------------------------------------------------------------------------------------- network / metastore
    Case(
        id="local-jdbc-connection-refused",
        mode="local",
        job="jdbc_extract.py",
        args=(
            "--url",
            f"jdbc:postgresql://127.0.0.1:{CLOSED_PORT}/ops",
            "--driver",
            "org.postgresql.Driver",
            "--orders",
            "{in}/orders.csv",
            "--out",
            "{out}/per_region",
        ),
        submit=("--jars", str(PG_JAR)),
        breakage="a PostgreSQL JDBC read against a closed port on 127.0.0.1",
        expected="network_error",
        evidence=("Connection refused",),
        why="PSQLException: Connection to 127.0.0.1:5999 refused ... java.net.ConnectException: Connection refused.",
    ),
    Case(
        id="standalone-jdbc-connection-refused",
        mode="standalone",
        job="jdbc_extract.py",
        args=(
            "--url",
            f"jdbc:postgresql://127.0.0.1:{CLOSED_PORT}/ops",
            "--driver",
            "org.postgresql.Driver",
            "--orders",
            "{in}/orders.csv",
            "--out",
            "{out}/per_region",
        ),
        submit=("--jars", str(PG_JAR)),
        breakage="a PostgreSQL JDBC read against a closed port on 127.0.0.1",
        expected="network_error",
        evidence=("Connection refused",),
        why="PSQLException: Connection to 127.0.0.1:5999 refused (ConnectException) when the driver resolves "
        "the table's schema.",
    ),
    Case(
        id="local-hive-metastore-unreachable",
        mode="local",
        job="sql_report.py",
        args=(*SQL_INPUTS, "--query", "{in}/sql/report.sql", "--hive"),
        confs={
            "spark.hadoop.hive.metastore.uris": f"thrift://127.0.0.1:{CLOSED_PORT}",
            "spark.sql.warehouse.dir": "{tmp}/warehouse",
        },
        breakage="hive.metastore.uris points at a closed port",
        expected="metastore_unavailable",
        evidence=("metastore",),
        why="Failed to connect to the MetaStore Server / Unable to instantiate SessionHiveMetaStoreClient, "
        "caused by a refused connection to thrift://127.0.0.1:5999.",
    ),
    Case(
        id="standalone-hive-metastore-unreachable",
        mode="standalone",
        job="sql_report.py",
        args=(*SQL_INPUTS, "--query", "{in}/sql/report.sql", "--hive"),
        confs={
            "spark.hadoop.hive.metastore.uris": f"thrift://127.0.0.1:{CLOSED_PORT}",
            "spark.sql.warehouse.dir": "{tmp}/warehouse",
        },
        breakage="hive.metastore.uris points at a closed port",
        expected="metastore_unavailable",
        evidence=("metastore",),
        why="The Hive client cannot reach thrift://127.0.0.1:5999 (connection refused) and the session's "
        "catalog fails to instantiate the metastore client.",
    ),
    # ----------------------------------------------------------------------------------------- broadcast
    Case(
        id="local-broadcast-timeout",
        mode="local",
        job="broadcast_join.py",
        args=("--out", "{out}/sales_by_geo", "--lookup-seconds", "4"),
        confs={"spark.sql.broadcastTimeout": "5", "spark.sql.adaptive.enabled": "false"},
        breakage="spark.sql.broadcastTimeout=5 (AQE off) while the broadcast side takes ~20 s to compute",
        expected="broadcast_timeout",
        evidence=("broadcast",),
        why="Could not execute broadcast in 5 secs (TimeoutException), with the advice to raise "
        "spark.sql.broadcastTimeout or disable broadcast join.",
    ),
    Case(
        id="standalone-broadcast-timeout",
        mode="standalone",
        job="broadcast_join.py",
        args=("--out", "{out}/sales_by_geo", "--lookup-seconds", "4"),
        confs={"spark.sql.broadcastTimeout": "5", "spark.sql.adaptive.enabled": "false"},
        breakage="spark.sql.broadcastTimeout=5 (AQE off) while the broadcast side takes ~20 s to compute",
        expected="broadcast_timeout",
        evidence=("broadcast",),
        why="Could not execute broadcast in 5 secs (TimeoutException) on the driver.",
    ),
    # ----------------------------------------------------------------------------------------- permissions
    Case(
        id="local-output-dir-not-writable",
        mode="local",
        job="orders_etl.py",
        args=(*ORDERS, "--out", "{ro}/daily_revenue"),
        as_nobody=True,
        breakage="run as user nobody; the output's parent folder belongs to root, mode 0755",
        expected="permission_denied",
        also_accepted=("other",),
        evidence=("Mkdirs failed to create",),
        why="Run as nobody into a folder owned by root: FileOutputCommitter 'Mkdirs failed to create "
        "file:/.../daily_revenue/_temporary/0' and tasks fail with IOException: Mkdirs failed to create ... "
        "(exists=false). Hadoop's local file system does not say 'Permission denied' here; the failed mkdirs of the "
        "output is the permission symptom (permission_denied), or other.",
    ),
    Case(
        id="standalone-input-not-readable",
        mode="standalone",
        job="orders_etl.py",
        args=("--orders", "{in}/secured/orders.csv", "--customers", "{in}/customers.json", "--out", "{out}/d"),
        as_nobody=True,
        breakage="cluster and driver run as user nobody; the orders file is root's, mode 0600",
        expected="permission_denied",
        evidence=("Permission denied",),
        why="Executor tasks fail opening the input: java.io.FileNotFoundException: .../orders.csv (Permission denied).",
    ),
    # ----------------------------------------------------------------------------------------- output exists
    Case(
        id="local-output-path-exists",
        mode="local",
        job="orders_etl.py",
        args=(*ORDERS, "--out", "{in}/published/daily_revenue", "--mode", "errorifexists"),
        breakage="the output folder already exists and the save mode is errorifexists",
        expected="output_already_exists",
        evidence=("PATH_ALREADY_EXISTS",),
        why="AnalysisException: [PATH_ALREADY_EXISTS] Path file:/.../daily_revenue already exists. Set mode as "
        '"overwrite" to overwrite the existing path.',
    ),
    Case(
        id="standalone-table-location-exists",
        mode="standalone",
        job="orders_etl.py",
        args=(*ORDERS, "--table", "daily_revenue"),
        confs={"spark.sql.warehouse.dir": "{in}/warehouse"},
        breakage="saveAsTable of a managed table whose warehouse folder is left over from an earlier run",
        expected="output_already_exists",
        evidence=("LOCATION_ALREADY_EXISTS",),
        why="SparkRuntimeException: [LOCATION_ALREADY_EXISTS] Cannot name the managed table as "
        "`spark_catalog`.`default`.`daily_revenue`, as its associated location ... already exists.",
    ),
    # ----------------------------------------------------------------------------------------- data_corruption
    Case(
        id="local-corrupt-parquet",
        mode="local",
        job="orders_etl.py",
        args=("--orders", "{in}/orders_parquet", "--orders-format", "parquet", *ORDERS[2:], "--out", "{out}/d"),
        breakage="one of the orders Parquet files is truncated garbage (no footer)",
        expected="data_corruption",
        evidence=("Parquet",),
        why="java.lang.RuntimeException: file:/.../part-00000-....snappy.parquet is not a Parquet file. "
        "Expected magic number at tail, but found [...] - a corrupt input file.",
    ),
    Case(
        id="standalone-truncated-gzip-csv",
        mode="standalone",
        job="orders_etl.py",
        args=("--orders", "{in}/orders_gz", *ORDERS[2:], "--out", "{out}/d"),
        breakage="the orders CSV is a gzip file cut off half way",
        expected="data_corruption",
        evidence=("Unexpected end of input stream",),
        why="java.io.EOFException: Unexpected end of input stream while decompressing the .csv.gz input.",
    ),
    Case(
        id="local-malformed-json-failfast",
        mode="local",
        job="orders_etl.py",
        args=(*ORDERS[:2], "--customers", "{in}/customers_bad.json", "--json-mode", "FAILFAST", "--out", "{out}/d"),
        breakage="the customers JSON has malformed records and is read with mode FAILFAST",
        expected="data_corruption",
        evidence=("Malformed records are detected",),
        why="SparkException: Malformed records are detected in schema inference. Parse Mode: FAILFAST, caused by "
        "JsonEOFException: Unexpected end-of-input - a malformed input file.",
    ),
    Case(
        id="standalone-parquet-type-mismatch",
        mode="standalone",
        job="orders_etl.py",
        args=("--orders", "{in}/orders_mixed", "--orders-format", "parquet", *ORDERS[2:], "--out", "{out}/d"),
        setup=("make_parquet_inputs.py", "{in}/orders.csv", "{in}/orders_mixed"),
        breakage="one day's orders Parquet has qty as a string; the job reads with qty INT",
        expected="data_corruption",
        evidence=("qty",),
        why="Parquet column cannot be converted in file .../dt=2024-06-02/part-....parquet, caused by "
        "SchemaColumnConvertNotSupportedException: column: [qty], physicalType: BINARY, logicalType: int - a schema "
        "that cannot be converted.",
    ),
    # ----------------------------------------------------------------------------------------- shuffle
    Case(
        id="local-shuffle-files-deleted",
        mode="local",
        job="clickstream_rollup.py",
        args=("--out", "{out}/top_pages", "--pause-file", "{tmp}/pause"),
        confs={"spark.stage.maxConsecutiveAttempts": "1"},
        action=Action("delete_shuffle"),
        breakage="shuffle files deleted from the local dir between two actions; maxConsecutiveAttempts=1",
        expected="shuffle_fetch_failed",
        evidence=("FetchFailed",),
        why="Reduce tasks fail with FetchFailed(...) / FetchFailedException caused by NoSuchFileException "
        "for shuffle_0_0_0.index, and the job aborts because the stage 'has failed the maximum allowable number of "
        "times: 1'; no executor was lost.",
    ),
    Case(
        id="standalone-shuffle-files-deleted",
        mode="standalone",
        job="clickstream_rollup.py",
        args=("--out", "{out}/top_pages", "--pause-file", "{tmp}/pause"),
        workers=2,
        worker_cores=1,
        confs={"spark.stage.maxConsecutiveAttempts": "1"},
        action=Action("delete_shuffle"),
        breakage="shuffle files deleted from the executors' local dirs between two actions; maxConsecutiveAttempts=1",
        expected="shuffle_fetch_failed",
        evidence=("FetchFailed",),
        why="FetchFailed / FetchFailedException: NoSuchFileException for the shuffle_*.index files "
        "on both live executors; ShuffleMapStage 3 'has failed the maximum allowable number of times: 1' and the "
        "job aborts. No executor was lost: missing shuffle output.",
    ),
    # ----------------------------------------------------------------------------------------- disk_full
    Case(
        id="local-local-dir-full",
        mode="local",
        job="sessions_shuffle.py",
        args=("--out", "{out}/sessions", "--rows", "1500000"),
        tmpfs_mb=24,
        breakage="spark.local.dir on a 24 MB tmpfs; a shuffle of ~150 MB of hashes",
        expected="disk_full",
        evidence=("No space left on device",),
        why="Shuffle writes fail with java.io.IOException: No space left on device.",
    ),
    Case(
        id="standalone-local-dir-full",
        mode="standalone",
        job="sessions_shuffle.py",
        args=("--out", "{out}/sessions", "--rows", "1500000"),
        tmpfs_mb=24,
        breakage="the Worker's local dirs on a 24 MB tmpfs; a shuffle of ~150 MB of hashes",
        expected="disk_full",
        evidence=("No space left on device",),
        why="Executor shuffle writes fail with java.io.IOException: No space left on device.",
    ),
    # ----------------------------------------------------------------------------------------- other
    Case(
        id="local-data-quality-gate-exit-3",
        mode="local",
        job="orders_etl.py",
        args=(*ORDERS, "--out", "{out}/d", "--max-unknown-customers", "0"),
        breakage="the job's own data-quality gate prints an error and exits with code 3 after the Spark work",
        expected="other",
        evidence=("Data quality gate failed",),
        why="No Spark error: the job prints 'Data quality gate failed: N orders reference unknown customers' and "
        "exits 3 after a clean SparkContext stop - an application-level error no category covers.",
    ),
    Case(
        id="local-invalid-timeout-configuration",
        mode="local",
        job="orders_etl.py",
        args=(*ORDERS, "--out", "{out}/d"),
        confs={"spark.network.timeout": "15s"},
        breakage="spark.network.timeout lowered below spark.network.timeoutInterval (60 s)",
        expected="other",
        also_accepted=("app_killed_or_am_failed",),
        evidence=("Error initializing SparkContext",),
        why="Error initializing SparkContext: IllegalArgumentException: requirement failed: "
        "spark.network.timeoutInterval should be less than or equal to spark.storage.blockManagerHeartbeatTimeoutMs "
        "- a configuration error, shown, that no category covers (the context never initialised).",
    ),
    Case(
        id="standalone-sql-raise-error",
        mode="standalone",
        job="sql_report.py",
        args=(*SQL_INPUTS, "--query", "{in}/sql/assert_quantities.sql", "--out", "{out}/report"),
        breakage="the report's SQL asserts that no order has a negative quantity (raise_error); some have",
        expected="other",
        evidence=("orders with a negative quantity",),
        why="Tasks fail with java.lang.RuntimeException: orders with a negative quantity: order 264 (raise_error "
        "in the query): a deliberate data assertion, an error no category covers.",
    ),
    Case(
        id="local-ansi-divide-by-zero",
        mode="local",
        job="sql_report.py",
        args=(*SQL_INPUTS, "--query", "{in}/sql/unit_price_ratio.sql", "--out", "{out}/report"),
        confs={"spark.sql.ansi.enabled": "true"},
        breakage="ANSI mode on and a ratio whose denominator is 0 for some rows",
        expected="other",
        evidence=("DIVIDE_BY_ZERO",),
        why="SparkArithmeticException: [DIVIDE_BY_ZERO] Division by zero in a task: an error in the text that "
        "no category covers.",
    ),
    Case(
        id="standalone-executor-jvm-bad-option",
        mode="standalone",
        job="orders_etl.py",
        args=(*ORDERS, "--out", "{out}/d"),
        confs={"spark.executor.extraJavaOptions": "-javaagent:/opt/monitoring/jmx_prometheus_javaagent.jar=9404"},
        timeout=45,
        executor_logs=3,
        breakage="spark.executor.extraJavaOptions loads a -javaagent jar the worker does not have; killed after 45 s",
        expected="other",
        also_accepted=("dependency_conflict",),
        evidence=("Error opening zip file or JAR manifest missing",),
        why="Every executor JVM dies at launch: its stderr says 'Error opening zip file or JAR manifest missing : "
        "/opt/monitoring/jmx_prometheus_javaagent.jar'; the driver shows executors added and removed ('Command "
        "exited with code 1') by the thousand and 'Initial job has not accepted any resources' until spark-submit is "
        "stopped. The cause is a missing agent jar on the workers: other (no category covers it), or a missing "
        "library. (Only the first 3 of the executors' logs are kept.)",
    ),
    # ----------------------------------------------------------------------------------------- capacity / killed
    Case(
        id="standalone-executor-memory-exceeds-workers",
        mode="standalone",
        job="orders_etl.py",
        args=(*ORDERS, "--out", "{out}/d"),
        worker_memory="2g",
        confs={"spark.executor.memory": "6g"},
        timeout=50,
        breakage="spark.executor.memory=6g on a cluster whose only worker offers 2 GB; killed after 50 s",
        expected="capacity_unavailable",
        evidence=("Initial job has not accepted any resources",),
        planned="failed",
        why="The job never gets an executor: 'Initial job has not accepted any resources; check your cluster UI "
        "to ensure that workers are registered and have sufficient resources' repeats until spark-submit is "
        "stopped.",
    ),
    Case(
        id="standalone-executor-cores-exceed-workers",
        mode="standalone",
        job="udf_scoring.py",
        args=("--out", "{out}/flagged"),
        workers=2,
        worker_cores=1,
        confs={"spark.executor.cores": "2"},
        timeout=50,
        breakage="spark.executor.cores=2 on workers of 1 core each; killed after 50 s",
        expected="capacity_unavailable",
        evidence=("Initial job has not accepted any resources",),
        why="No executor can be placed; the scheduler warns 'Initial job has not accepted any resources' until "
        "spark-submit is stopped.",
    ),
    Case(
        id="standalone-app-killed-from-master-ui",
        mode="standalone",
        job="udf_scoring.py",
        args=("--out", "{out}/flagged", "--partitions", "8", "--task-seconds", "5"),
        action=Action("kill_app", after=r"Starting task", delay=4.0),
        breakage="the application is killed from the Master's web UI while its tasks run",
        expected="app_killed_or_am_failed",
        evidence=("KILLED",),
        why="The driver reports 'Application has been killed. Reason: Master removed our application: KILLED' "
        "and the job is cancelled because the SparkContext was shut down.",
    ),
    Case(
        id="standalone-master-unreachable",
        mode="standalone",
        job="orders_etl.py",
        args=(*ORDERS, "--out", "{out}/d"),
        master=f"spark://127.0.0.1:{CLOSED_PORT}",
        workers=0,
        timeout=120,
        breakage="--master points at a port where no Master listens",
        expected="network_error",
        also_accepted=("app_killed_or_am_failed",),
        evidence=("Failed to connect to master",),
        why="'Failed to connect to master 127.0.0.1:5999' ... ConnectException: Connection refused, "
        "three times, then 'Application has been killed. Reason: All masters are unresponsive! Giving up.': the "
        "cause shown is a refused connection (network_error); the application-killed line is its consequence.",
    ),
]


# ---------------------------------------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------------------------------------

COUNTRIES = ["SE", "NO", "DK", "DE", "FR", "GB", "US"]
SEGMENTS = ["consumer", "smb", "enterprise"]
CURRENCIES = ["EUR", "USD", "GBP", "SEK"]

SQL = {
    "report.sql": """
SELECT c.country, c.segment, count(DISTINCT o.order_id) AS orders, round(sum(o.qty * o.unit_price), 2) AS gross
FROM orders o
JOIN customers c ON c.customer_id = o.customer_id
WHERE o.status <> 'CANCELLED'
GROUP BY c.country, c.segment
ORDER BY gross DESC
""",
    "unresolved_column.sql": """
SELECT c.region, count(*) AS orders, round(sum(o.qty * o.unit_price), 2) AS gross
FROM orders o
JOIN customers c ON c.customer_id = o.customer_id
GROUP BY c.region
""",
    "syntax_error.sql": """
SELECT c.country, c.segment, count(*) AS orders,
FROM orders o
JOIN customers c c.customer_id = o.customer_id
GROUP BY c.country, c.segment
""",
    "missing_table.sql": """
SELECT country, sum(revenue_eur) AS revenue
FROM orders_enriched
GROUP BY country
""",
    "assert_quantities.sql": """
SELECT order_id, customer_id, qty,
       CASE WHEN qty < 0 THEN raise_error(concat('orders with a negative quantity: order ', order_id))
            ELSE qty END AS checked_qty
FROM orders
""",
    "unit_price_ratio.sql": """
SELECT sku, sum(qty * unit_price) / count(CASE WHEN status = 'CANCELLED' THEN 1 END) AS revenue_per_cancellation
FROM orders
GROUP BY sku
""",
}

FRAUD_RULES = '''"""Fraud rules shared by the scoring jobs."""


def score(amount, category, country):
    base = {"travel": 0.6, "electronics": 0.7, "gift_cards": 0.9}.get(category, 0.2)
    return min(1.0, base * amount / 400.0 + (0.1 if country == "US" else 0.0))
'''


def make_inputs(root: Path) -> None:
    """The inputs every case may read (small, made with the standard library)."""
    rnd = random.Random(20240601)
    root.mkdir(parents=True)
    start = datetime(2024, 6, 1, tzinfo=UTC)
    header = "order_id,customer_id,sku,qty,unit_price,currency,order_ts,status\n"
    lines = []
    for i in range(1, 20001):
        customer = rnd.randrange(1, 2001) if rnd.random() > 0.002 else rnd.randrange(5000, 5100)
        qty = rnd.randrange(1, 6) if rnd.random() > 0.001 else -1
        ts = start + timedelta(seconds=rnd.randrange(0, 3 * 86400))
        status = rnd.choices(["SHIPPED", "PENDING", "CANCELLED"], [80, 15, 5])[0]
        lines.append(
            f"{i},{customer},SKU-{rnd.randrange(1, 300):04d},{qty},{rnd.randrange(199, 99999) / 100:.2f},"
            f"{rnd.choice(CURRENCIES)},{ts:%Y-%m-%d %H:%M:%S},{status}\n"
        )
    orders_csv = header + "".join(lines)
    (root / "orders.csv").write_text(orders_csv)

    customers = [
        {
            "customer_id": c,
            "name": f"Customer {c}",
            "country": rnd.choice(COUNTRIES),
            "segment": rnd.choice(SEGMENTS),
            "signup_date": f"20{rnd.randrange(15, 24)}-{rnd.randrange(1, 13):02d}-{rnd.randrange(1, 29):02d}",
        }
        for c in range(1, 2001)
    ]
    (root / "customers.json").write_text("".join(json.dumps(c) + "\n" for c in customers))
    bad = [json.dumps(c) for c in customers[:500]]
    bad[137] = bad[137][:-9]  # a record cut off
    bad[401] = '{"customer_id": 402, "name": "Customer 402", "country": "SE", segment: smb}'
    (root / "customers_bad.json").write_text("\n".join(bad) + "\n")

    gz = root / "orders_gz"
    gz.mkdir()
    packed = gzip.compress(orders_csv.encode(), compresslevel=6, mtime=0)
    (gz / "orders-2024-06-01.csv.gz").write_bytes(packed[: len(packed) // 2])

    pq = root / "orders_parquet"
    pq.mkdir()
    garbage = bytes(rnd.randrange(256) for _ in range(40_000))
    (pq / "part-00000-2a9c1f7e-5d3b-4c55-9a0e-7f1b2c3d4e5f-c000.snappy.parquet").write_bytes(b"PAR1" + garbage)

    published = root / "published" / "daily_revenue"
    published.mkdir(parents=True)
    (published / "_SUCCESS").write_bytes(b"")
    (published / "part-00000-0b5e0a8f-c000.snappy.parquet").write_bytes(b"PAR1")
    leftover = root / "warehouse" / "daily_revenue"
    leftover.mkdir(parents=True)
    (leftover / "part-00000-6f0e1d2c-c000.snappy.parquet").write_bytes(b"PAR1")

    secured = root / "secured"
    secured.mkdir()
    (secured / "orders.csv").write_text(orders_csv)
    (secured / "orders.csv").chmod(0o600)

    (root / "sql").mkdir()
    for name, text in SQL.items():
        (root / "sql" / name).write_text(text.lstrip())
    (root / "rules").mkdir()
    (root / "rules" / "fraud_rules.py").write_text(FRAUD_RULES)
    (root / "etl.yaml").write_text("publish:\n  format: parquet\n  partitions: 4\n")


# ---------------------------------------------------------------------------------------------------------
# Processes
# ---------------------------------------------------------------------------------------------------------


def spark_home() -> Path:
    import pyspark  # the virtualenv's

    return Path(pyspark.__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_is_closed(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) != 0


def children(pid: int) -> list[int]:
    """Every descendant of pid (from /proc)."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        fields = text[text.rfind(")") + 2 :].split()
        parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def runnable_by_all(path: Path) -> bool:
    """Whether any user may run path: every folder above it searchable, the file executable by others."""
    real = path.resolve()
    return all(p.stat().st_mode & 0o001 for p in [real, *real.parents])


def cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


class Run:
    """One case's processes, folders and environment."""

    def __init__(self, case: Case, tmp: Path) -> None:
        self.case = case
        self.tmp = tmp
        self.home = spark_home()
        self.inputs = tmp / "in"
        self.driver_log = tmp / "driver.log"
        self.workers: list[subprocess.Popen[bytes]] = []
        self.master: subprocess.Popen[bytes] | None = None
        self.master_ui = 0
        self.master_url = case.master
        self.notes: list[str] = []
        self.submit_proc: subprocess.Popen[bytes] | None = None
        # nobody may not reach the virtualenv's interpreter (a pyenv build under /root): then the system
        # Python runs the job; pyspark itself comes from SPARK_HOME, which spark-submit puts on PYTHONPATH.
        self.python = sys.executable
        if case.as_nobody and not runnable_by_all(Path(sys.executable)) and Path("/usr/bin/python3").exists():
            self.python = "/usr/bin/python3"
        for sub in ("cwd", "out", "local", "conf", "home"):
            (tmp / sub).mkdir()

    # environment -----------------------------------------------------------------------------------------
    def env(self, local_dirs: Path) -> dict[str, str]:
        env = {
            "PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
            "HOME": str(self.tmp / "home") if self.case.as_nobody else os.environ.get("HOME", "/root"),
            "LANG": "C.UTF-8",
            "SPARK_HOME": str(self.home),
            "SPARK_CONF_DIR": str(self.tmp / "conf"),
            "SPARK_LOCAL_IP": "127.0.0.1",
            "SPARK_LOCAL_DIRS": str(local_dirs),
            "PYSPARK_PYTHON": self.python,
            "PYSPARK_DRIVER_PYTHON": self.python,
            "PYTHONUNBUFFERED": "1",
        }
        if "JAVA_HOME" in os.environ:
            env["JAVA_HOME"] = os.environ["JAVA_HOME"]
        env.update({k: self.fmt(v) for k, v in self.case.env.items()})
        return env

    def fmt(self, text: str) -> str:
        return text.format(**{"in": self.inputs, "out": self.tmp / "out", "tmp": self.tmp, "ro": self.inputs})

    def wrap(self, cmd: list[str], local_dirs: Path, tmpfs: bool) -> list[str]:
        """The user, open-files limit and tmpfs local dirs of the case, around cmd."""
        if self.case.as_nobody:
            cmd = ["/usr/bin/setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--", *cmd]
        if self.case.nofile:
            n = self.case.nofile
            cmd = ["/usr/bin/prlimit", f"--nofile={n}:{n}", "--", *cmd]
        if tmpfs and self.case.tmpfs_mb:
            script = f'mount -t tmpfs -o size={self.case.tmpfs_mb}m spark-local "{local_dirs}" && exec "$@"'
            cmd = ["/usr/bin/unshare", "--mount", "--propagation", "private", "--", "/bin/sh", "-c", script, "sh", *cmd]
        return cmd

    def popen(self, cmd: list[str], log: Path, local_dirs: Path, tmpfs: bool = False) -> subprocess.Popen[bytes]:
        with log.open("wb") as out:
            return subprocess.Popen(
                self.wrap(cmd, local_dirs, tmpfs),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.tmp / "cwd",
                env=self.env(local_dirs),
                start_new_session=True,
            )

    # standalone ------------------------------------------------------------------------------------------
    def start_cluster(self) -> None:
        case = self.case
        if case.workers == 0:
            return
        port, self.master_ui = free_port(), free_port()
        self.master_url = f"spark://127.0.0.1:{port}"
        cls = str(self.home / "bin" / "spark-class")
        master = ["org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port", str(port)]
        self.master = self.popen(
            [cls, *master, "--webui-port", str(self.master_ui)],
            self.tmp / "master.log",
            self.tmp / "local",
        )
        for i in range(case.workers):
            work, local = self.tmp / f"worker-{i}", self.tmp / f"worker-{i}-local"
            work.mkdir()
            local.mkdir()
            if case.as_nobody:
                os.chown(work, NOBODY, NOBODY)
                os.chown(local, NOBODY, NOBODY)
            cmd = [cls, "org.apache.spark.deploy.worker.Worker", "--host", "127.0.0.1"]
            cmd += ["--cores", str(case.worker_cores), "--memory", case.worker_memory, "--webui-port", "0"]
            cmd += ["--work-dir", str(work), self.master_url]
            self.workers.append(self.popen(cmd, self.tmp / f"worker-{i}.log", local, tmpfs=True))
        deadline = time.time() + 90
        while time.time() < deadline:
            state = self.master_state()
            if state and state.get("aliveworkers") == case.workers:
                return
            time.sleep(0.5)
        raise RuntimeError(f"{case.id}: the standalone workers did not register in time")

    def master_state(self) -> dict[str, object] | None:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", self.master_ui, timeout=2)
            conn.request("GET", "/json/")
            body = conn.getresponse().read()
            conn.close()
            return json.loads(body)
        except (OSError, ValueError):
            return None

    def kill_app(self) -> None:
        state = self.master_state() or {}
        apps = state.get("activeapps", [])
        for app in apps if isinstance(apps, list) else []:
            conn = http.client.HTTPConnection("127.0.0.1", self.master_ui, timeout=5)
            body = f"id={app['id']}&terminate=true"
            conn.request("POST", "/app/kill/", body, {"Content-Type": "application/x-www-form-urlencoded"})
            status = conn.getresponse().status
            conn.close()
            self.notes.append(f"killed {app['id']} from the Master UI (HTTP {status})")

    def executors(self) -> dict[str, int]:
        """Executor id -> pid of the executor JVMs of this run's workers."""
        found = {}
        for worker in self.workers:
            for pid in children(worker.pid):
                args = cmdline(pid)
                if "org.apache.spark.executor.CoarseGrainedExecutorBackend" in args:
                    found[args[args.index("--executor-id") + 1]] = pid
        return found

    def stop_cluster(self) -> None:
        for proc in [*self.workers, *([self.master] if self.master else [])]:
            stop_group(proc, grace=15)

    # the run ---------------------------------------------------------------------------------------------
    def submit(self, job: str, args: tuple[str, ...], log: Path, setup: bool = False) -> subprocess.Popen[bytes]:
        """spark-submit of the case's job (or, for setup, of a helper job in local mode without the case's confs)."""
        case = self.case
        cmd = [str(self.home / "bin" / "spark-submit"), "--master", "local[2]" if setup else self.master_url]
        if not setup:
            for key, value in case.confs.items():
                cmd += ["--conf", f"{key}={self.fmt(value)}"]
            cmd += [self.fmt(a) for a in case.submit]
        cmd += [str(JOBS / job), *[self.fmt(a) for a in args]]
        return self.popen(cmd, log, self.tmp / "local", tmpfs=case.mode == "local" and not setup)


def stop_group(proc: subprocess.Popen[bytes], grace: float) -> None:
    """SIGTERM the process (as a scheduler would), then SIGKILL its whole group after grace seconds."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(grace)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(10)


def wait_for(cond: Callable[[], object], timeout: float, stop: threading.Event) -> object:
    deadline = time.time() + timeout
    while time.time() < deadline and not stop.is_set():
        value = cond()
        if value:
            return value
        time.sleep(0.2)
    return None


def saboteur(run: Run, action: Action, stop: threading.Event) -> None:
    """Does the case's action to the running job (in a thread)."""

    def log_shows(pattern: str) -> bool:
        try:
            text = run.driver_log.read_text(errors="replace")
        except OSError:
            return False
        return re.search(pattern, text) is not None

    if action.after and not wait_for(lambda: log_shows(action.after), 120, stop):
        run.notes.append(f"action {action.kind}: {action.after!r} never showed")
        return
    if stop.wait(action.delay):
        return

    if action.kind == "kill_executor":
        killed: set[str] = set()

        def busy_executor() -> tuple[str, int] | None:
            """An executor not killed yet that the driver has started a task on."""
            for exec_id, pid in sorted(run.executors().items(), key=lambda kv: int(kv[0])):
                wanted = action.executor in ("any", exec_id)
                if wanted and exec_id not in killed and log_shows(rf"\(TID \d+\) \([^,]+, executor {exec_id}, "):
                    return exec_id, pid
            return None

        for n in range(action.times):
            found = wait_for(busy_executor, 120, stop)
            if not isinstance(found, tuple) or (n and stop.wait(action.delay)):
                return
            exec_id, pid = found
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            killed.add(exec_id)
            run.notes.append(f"SIGKILLed executor {exec_id}")
        return

    pause = run.tmp / "pause"
    if action.kind in ("delete_shuffle", "kill_executor_at_pause", "stop_executor_at_pause"):
        if not wait_for(lambda: Path(f"{pause}.ready").exists(), 120, stop):
            run.notes.append("the job never paused")
            return
        if action.kind == "delete_shuffle":
            gone = [p for p in run.tmp.rglob("shuffle_*") if p.is_file()]
            for p in gone:
                p.unlink()
            run.notes.append(f"deleted {len(gone)} shuffle files")
        else:
            live = run.executors()
            pid = live.get(action.executor)
            if pid is None:
                run.notes.append(f"executor {action.executor} not found ({sorted(live)})")
            else:
                sig = signal.SIGKILL if action.kind == "kill_executor_at_pause" else signal.SIGSTOP
                os.kill(pid, sig)
                run.notes.append(f"sent {sig.name} to executor {action.executor}")
        Path(f"{pause}.go").write_text("go\n")
        return

    if action.kind == "kill_app":
        run.kill_app()
        return
    raise ValueError(action.kind)


# ---------------------------------------------------------------------------------------------------------
# One case
# ---------------------------------------------------------------------------------------------------------


@dataclass
class Result:
    case: Case
    outcome: str
    exit_code: int
    seconds: float
    files: list[str]
    notes: list[str]
    evidence_missing: list[str]


def gzip_bytes(data: bytes) -> bytes:
    """gzip -9n: no file name, mtime 0."""
    return gzip.compress(data, compresslevel=9, mtime=0)


def scrub(data: bytes) -> bytes:
    """Machine-specific text that would be a privacy issue: the user's home folder, if it shows."""
    home = os.environ.get("HOME", "")
    if home and home not in ("/", "/root") and home.encode() in data:
        data = data.replace(home.encode(), b"/home/user")
    return data


def strays() -> set[Path]:
    """What the JVMs leave in the system temp folder: Hive's session resource folders, nobody's hsperfdata."""
    system_tmp = Path(tempfile.gettempdir())
    found = {*system_tmp.glob("*_resources"), system_tmp / f"hsperfdata_{NOBODY}", system_tmp / "hsperfdata_nobody"}
    return {p for p in found if p.exists()}


def tidy(before: set[Path]) -> None:
    """Removes the empty strays a run left (and only those: not what was there before it)."""
    for path in sorted(strays() - before):
        for _ in range(20):  # the JVMs may still be exiting
            if not path.is_dir():
                break
            for child in path.iterdir():  # hsperfdata files of JVMs that have ended
                if child.is_file() and not (Path("/proc") / child.name).exists():
                    child.unlink()
            with contextlib.suppress(OSError):
                path.rmdir()
            time.sleep(0.25)


def run_case(case: Case, out_dir: Path, keep: bool) -> Result:
    before = strays()
    tmp = Path(tempfile.mkdtemp(prefix=f"spark-corpus-{case.id}-"))
    tmp.chmod(0o755)
    run = Run(case, tmp)
    make_inputs(run.inputs)
    if case.as_nobody:
        for p in tmp.iterdir():
            if p.is_dir() and p.name != "in":
                os.chown(p, NOBODY, NOBODY)
    if CLOSED_PORT and not port_is_closed(CLOSED_PORT):
        raise RuntimeError(f"port {CLOSED_PORT} on 127.0.0.1 is open: the cases need it closed")

    started = time.time()
    stop = threading.Event()
    thread = None
    try:
        if case.mode == "standalone":
            run.start_cluster()
        if case.setup:
            job, *args = case.setup
            setup_job = HERE / "jobs" / job
            assert setup_job.exists(), setup_job
            proc = run.submit(job, tuple(args), tmp / "setup.log", setup=True)
            proc.wait(300)
        started = time.time()
        run.submit_proc = proc = run.submit(case.job, case.args, run.driver_log)
        if case.action:
            thread = threading.Thread(target=saboteur, args=(run, case.action, stop), daemon=True)
            thread.start()
        try:
            code = proc.wait(case.timeout)
        except subprocess.TimeoutExpired:
            run.notes.append(f"timed out after {case.timeout:.0f} s: SIGTERM to spark-submit")
            stop_group(proc, grace=20)
            code = proc.returncode
        if case.action and case.action.kind == "stop_executor_at_pause":
            for pid in run.executors().values():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGCONT)
        stop_group(proc, grace=5)
        time.sleep(3 if case.mode == "standalone" else 0)
    finally:
        stop.set()
        if thread:
            thread.join(10)
        run.stop_cluster()
        tidy(before)
    seconds = time.time() - started

    dest = out_dir / "runs" / case.id
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    logs = [("driver.log.gz", run.driver_log)]
    executors = sorted(tmp.glob("worker-*/app-*/*/stderr"), key=lambda p: int(p.parent.name))
    if case.executor_logs and len(executors) > case.executor_logs:
        run.notes.append(f"kept {case.executor_logs} of {len(executors)} executor logs")
        executors = executors[: case.executor_logs]
    for stderr in executors:
        logs.append((f"executor-{stderr.parent.name}.log.gz", stderr))
    text = b""
    files = []
    for name, path in logs:
        data = scrub(path.read_bytes())
        text += data
        (dest / name).write_bytes(gzip_bytes(data))
        files.append(f"runs/{case.id}/{name}")
    missing = [e for e in case.evidence if not any(alt.encode() in text for alt in e.split(" | "))]
    if not keep:
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        run.notes.append(f"kept {tmp}")
    return Result(case, "failed" if code != 0 else "succeeded", code, seconds, files, run.notes, missing)


# ---------------------------------------------------------------------------------------------------------
# The manifest
# ---------------------------------------------------------------------------------------------------------

FIELDS = ("id", "files", "mode", "breakage", "expected", "also_accepted", "outcome", "platform", "spark_version", "why")


def manifest_entry(case: Case, outcome: str, files: list[str]) -> dict[str, object]:
    return {
        "id": case.id,
        "files": files,
        "mode": case.mode_text,
        "breakage": case.breakage,
        "expected": case.expected,
        "also_accepted": list(case.also_accepted),
        "outcome": outcome,
        "platform": case.platform,
        "spark_version": SPARK_VERSION,
        "why": case.why,
    }


def dump_manifest(entries: list[dict[str, object]]) -> str:
    """YAML whose every value is JSON (a YAML subset), so it reads back without a YAML library."""
    lines = [
        "# Spark runs of the accuracy corpus, written by generate.py (see its docstring and ../README.md).",
        "# Every value is JSON, a subset of YAML.",
    ]
    for entry in entries:
        for i, key in enumerate(FIELDS):
            lines.append(f"{'- ' if i == 0 else '  '}{key}: {json.dumps(entry[key], ensure_ascii=False)}")
    return "\n".join(lines) + "\n"


def load_manifest(path: Path) -> dict[str, dict[str, object]]:
    entries: dict[str, dict[str, object]] = {}
    current: dict[str, object] = {}
    if not path.exists():
        return entries
    for line in path.read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        key, _, value = line[2:].partition(": ")
        if line.startswith("- "):
            current = {}
            entries[json.loads(value)] = current
        current[key] = json.loads(value)
    return entries


# ---------------------------------------------------------------------------------------------------------


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", metavar="ID", help="run only these cases (the rest stay as they are)")
    parser.add_argument("--out", type=Path, default=HERE, help="where runs/ and manifest.yaml go")
    parser.add_argument("--list", action="store_true", help="list the cases and exit")
    parser.add_argument("--keep-tmp", action="store_true", help="keep each run's temporary folder")
    parser.add_argument(
        "--manifest-only",
        action="store_true",
        help="rewrite manifest.yaml from CASES and the outcomes it holds; run nothing",
    )
    args = parser.parse_args(argv)

    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids)), "duplicate case ids"
    if args.list:
        for c in CASES:
            print(f"{c.id:48} {c.mode:10} {c.expected}")
        return 0
    unknown = set(args.only or []) - set(ids)
    if unknown:
        parser.error(f"unknown case ids: {', '.join(sorted(unknown))}")
    if not PG_JAR.exists():
        print(f"warning: {PG_JAR} missing (apt-get install libpostgresql-jdbc-java)", file=sys.stderr)
    todo = [c for c in CASES if (not args.only or c.id in args.only) and not args.manifest_only]

    out_dir: Path = args.out.resolve()
    manifest_path = out_dir / "manifest.yaml"
    previous = load_manifest(manifest_path)
    outcomes: dict[str, tuple[str, list[str]]] = {}
    for key, entry in previous.items():
        files = entry.get("files")
        outcomes[key] = (str(entry.get("outcome")), [str(f) for f in files] if isinstance(files, list) else [])

    def interrupted(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")  # unwinds through run_case's clean-up

    signal.signal(signal.SIGTERM, interrupted)
    began = time.time()
    problems = []
    for n, case in enumerate(todo, 1):
        print(f"[{n}/{len(todo)}] {case.id} ...", end=" ", flush=True)
        result = run_case(case, out_dir, args.keep_tmp)
        outcomes[case.id] = (result.outcome, result.files)
        flag = ""
        if result.outcome != case.planned:
            flag += f" PLANNED {case.planned}"
        if result.evidence_missing:
            flag += f" MISSING {result.evidence_missing}"
        if flag:
            problems.append(f"{case.id}:{flag}")
        notes = f" ({'; '.join(result.notes)})" if result.notes else ""
        print(f"{result.outcome} (exit {result.exit_code}) in {result.seconds:.0f} s{notes}{flag}", flush=True)

        entries = [manifest_entry(c, *outcomes[c.id]) for c in CASES if c.id in outcomes]
        manifest_path.write_text(dump_manifest(entries))

    entries = [manifest_entry(c, *outcomes[c.id]) for c in CASES if c.id in outcomes]
    manifest_path.write_text(dump_manifest(entries))
    print(f"{len(todo)} run(s) in {time.time() - began:.0f} s; manifest: {manifest_path} ({len(entries)} entries)")
    for line in problems:
        print(f"check: {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

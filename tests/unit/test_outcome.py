"""The known outcome of a run as an input of the diagnosis, and what counts as a cause with it.

Logs are read because something failed: EMR said FAILED, the final status is FAILED, a person ran
``analyze`` on a failed job. Lines that healthy runs print too (lost executors, fetch failures, network
blips) are then the cause when nothing more specific is shown; ``no_failure`` is only for logs that show
success or nothing a person should act on (how-verdicts-are-judged.md, 5 and 6).
"""

from __future__ import annotations

import pytest

from emr_triage.analysis.catalogue import Catalogue, load_catalogue
from emr_triage.analysis.findings import analyse_lines
from emr_triage.analysis.verdict import diagnose
from emr_triage.models.analysis import Diagnosis, KnownOutcome, LogRead

SOURCE = "s3://acme-emr-logs/logs/j-3ANP7YJ2WQ0LC/steps/s-3H8ZKQW0EXAMP/stderr.gz"

LOST_EXECUTORS = """\
26/11/22 01:14:02 WARN HeartbeatReceiver: Removing executor 2 with no recent heartbeats: 161211 ms exceeds timeout 120000 ms
26/11/22 01:14:02 ERROR YarnScheduler: Lost executor 2 on ip-10-0-2-57.ec2.internal: Executor heartbeat timed out after 161211 ms
26/11/22 01:27:40 ERROR YarnScheduler: Lost executor 1 on ip-10-0-2-41.ec2.internal: Executor heartbeat timed out after 148877 ms
"""
JOB_FINISHED = "26/11/22 01:40:02 INFO DAGScheduler: Job 0 finished: parquet at sessionize.py:31, took 2399.1 s\n"
HANDLED = """\
26/11/22 01:14:02 WARN JdbcUtils: Could not read the watermark, starting from scratch
java.net.ConnectException: Connection refused (Connection refused)
\tat java.net.PlainSocketImpl.socketConnect(Native Method)
"""
EXECUTOR_AT_END = """\
22/12/01 04:12:50 INFO Executor: Finished task 199.0 in stage 12.0 (TID 2400). 4011 bytes result sent to driver
22/12/01 04:12:52 ERROR CoarseGrainedExecutorBackend: Executor self-exiting due to : Driver ip-10-0-1-5.ec2.internal:37501 disassociated! Shutting down.
22/12/01 04:12:52 INFO ShutdownHookManager: Shutdown hook called
"""


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return load_catalogue()


def _diagnose(catalogue: Catalogue, text: str, outcome: KnownOutcome) -> Diagnosis:
    analysis = analyse_lines(text.splitlines(), catalogue=catalogue, source=SOURCE)
    return diagnose(analysis.findings, catalogue, [LogRead(source=SOURCE, lines=analysis.lines)], outcome=outcome)


def test_a_failed_run_whose_logs_only_show_lost_executors_is_executor_lost(catalogue: Catalogue) -> None:
    # Given a driver log that only shows executors lost to heartbeat timeouts, and EMR saying FAILED
    # When it is diagnosed with the outcome known
    diagnosis = _diagnose(catalogue, LOST_EXECUTORS, "failed")
    # Then the lost executors are the cause, with a confidence that says healthy runs print such lines too
    assert diagnosis.category == "executor_lost"
    assert diagnosis.root_kind == "cause"
    assert 0.6 <= diagnosis.confidence < 0.9


def test_with_the_outcome_unknown_and_no_success_shown_the_most_specific_finding_is_the_verdict(
    catalogue: Catalogue,
) -> None:
    # Given the same lines with nothing known of the run (a paste, `analyze` on a file)
    diagnosis = _diagnose(catalogue, LOST_EXECUTORS, "unknown")
    # Then they are still the verdict, less sure than with the failure known
    assert diagnosis.category == "executor_lost"
    assert diagnosis.confidence < _diagnose(catalogue, LOST_EXECUTORS, "failed").confidence


def test_a_success_after_them_makes_lost_executors_recovered(catalogue: Catalogue) -> None:
    # Given lost executors, then the driver's word that the job finished
    diagnosis = _diagnose(catalogue, LOST_EXECUTORS + JOB_FINISHED, "unknown")
    # Then Spark recovered: no failure, and the summary says from what
    assert diagnosis.category == "no_failure"
    assert "recovering from: Executors were lost" in diagnosis.summary


def test_a_run_known_to_have_failed_is_not_no_failure_because_its_log_shows_a_job_finishing(
    catalogue: Catalogue,
) -> None:
    # Given the same log, but EMR says the step FAILED (a later job, not in this log, failed it)
    diagnosis = _diagnose(catalogue, LOST_EXECUTORS + JOB_FINISHED, "failed")
    # Then the success marker does not hide what went wrong
    assert diagnosis.category == "executor_lost"


def test_a_run_known_to_have_succeeded_is_no_failure_whatever_its_log_shows(catalogue: Catalogue) -> None:
    diagnosis = _diagnose(catalogue, LOST_EXECUTORS, "succeeded")
    assert diagnosis.category == "no_failure"
    assert diagnosis.summary.startswith("The run succeeded after recovering from")


def test_a_handled_exception_counts_only_in_a_run_known_to_have_failed(catalogue: Catalogue) -> None:
    # Given an exception a WARN record printed (caught and logged)
    # Then alone, with nothing known, it is nothing to act on
    assert _diagnose(catalogue, HANDLED, "unknown").category == "no_failure"
    # And in a run known to have failed it is the best clue there is, and says how unsure it is
    failed = _diagnose(catalogue, HANDLED, "failed")
    assert failed.category == "network_error"
    assert failed.confidence < 0.5


def test_an_executor_whose_driver_went_away_at_the_end_is_healthy_unless_the_run_failed(
    catalogue: Catalogue,
) -> None:
    # Given an executor's log that ends as every healthy run's executors do
    assert _diagnose(catalogue, EXECUTOR_AT_END, "unknown").category == "no_failure"
    # And with the run known to have failed, the driver's going away is where to look
    assert _diagnose(catalogue, EXECUTOR_AT_END, "failed").category == "app_killed_or_am_failed"


def test_a_failed_run_with_nothing_in_its_logs_is_no_failure_with_a_low_confidence(catalogue: Catalogue) -> None:
    # Given logs read that show nothing at all, for a run that failed
    diagnosis = _diagnose(catalogue, "26/11/22 01:00:03 INFO SparkContext: Running Spark version 3.5.2\n", "failed")
    # Then there is no signature to name, and the confidence says the failure is unexplained
    assert diagnosis.category == "no_failure"
    assert diagnosis.confidence <= 0.2


def test_an_uncaught_exception_after_a_warn_line_is_not_taken_as_handled(catalogue: Catalogue) -> None:
    # Given a WARN line, then an exception the JVM printed because nothing caught it
    log = (
        "2021-09-14 08:01:30,118 WARN [main] impl.MetricsConfig: Cannot locate configuration\n"
        'Exception in thread "main" java.nio.file.AccessDeniedException: s3a://drop/in/m.json: getFileStatus on '
        "s3a://drop/in/m.json: com.amazonaws.services.s3.model.AmazonS3Exception: Forbidden (Service: Amazon S3; "
        "Status Code: 403; Error Code: 403 Forbidden)\n"
    )
    # Then it is the failure, not a handled warning
    assert _diagnose(catalogue, log, "unknown").category == "s3_access_denied"


def test_debug_stacks_are_never_evidence(catalogue: Catalogue) -> None:
    # Given a DEBUG record of a class that was looked up and not found (healthy runs print many)
    log = (
        "24/01/02 10:00:00 DEBUG IsolatedClientLoader: hive class: org.apache.hadoop.hive.Foo - null\n"
        "java.lang.ClassNotFoundException: org.apache.hadoop.hive.Foo\n"
        "\tat java.net.URLClassLoader.findClass(URLClassLoader.java:387)\n"
    )
    # Then alone it is nothing to act on
    assert _diagnose(catalogue, log, "unknown").category == "no_failure"
    # And in a run known to have failed it is a handled detail, the least sure of clues
    assert _diagnose(catalogue, log, "failed").confidence < 0.5


SPARK_SHELL = """\
Spark context available as 'sc' (master = yarn, app id = application_1700000000000_0042).
Spark session available as 'spark'.
scala> spark.table("sales.orders_2023").count()
org.apache.spark.sql.AnalysisException: [TABLE_OR_VIEW_NOT_FOUND] The table or view `sales`.`orders_2023` cannot be found.
scala> spark.table("sales.orders").count()
23/06/01 10:05:00 INFO DAGScheduler: Job 0 finished: count at <console>:24, took 3.1 s
res1: Long = 1822
"""
BATCH = "".join(line + "\n" for line in SPARK_SHELL.splitlines()[3:] if not line.startswith("scala> "))


def test_in_an_interactive_session_a_later_statement_does_not_hide_a_failed_one(catalogue: Catalogue) -> None:
    # Given a spark-shell session where a statement failed and the next one succeeded
    # When it is diagnosed, with nothing known of the run
    diagnosis = _diagnose_with_reads(catalogue, SPARK_SHELL)
    # Then the failed statement's cause is the verdict
    assert diagnosis.category == "sql_analysis_error"
    # And the same lines in a batch driver's log are an error the job got past
    assert _diagnose_with_reads(catalogue, BATCH).category == "no_failure"


def _diagnose_with_reads(catalogue: Catalogue, text: str) -> Diagnosis:
    from emr_triage.analysis.engine import analyse_stream

    analysis, read = analyse_stream([text.encode()], catalogue=catalogue, source=SOURCE)
    assert read.interactive == ("Spark session available as" in text)
    return diagnose(analysis.findings, catalogue, [read])


def test_a_pyspark_exception_after_a_warn_line_is_not_that_records_handled_throwable(catalogue: Catalogue) -> None:
    # Given a start-up WARN, then the exception Python printed when the driver's query failed
    log = (
        "21/07/31 13:34:50 WARN NativeCodeLoader: Unable to load native-hadoop library for your platform\n"
        "pyspark.sql.utils.AnalysisException: \"Database 'glue_database' not found;\"\n"
    )
    # Then it is the failure (log4j prints a record's throwable, Python prints its own exceptions)
    assert _diagnose(catalogue, log, "unknown").category == "sql_analysis_error"


def _warn_stack(frames: int) -> str:
    lines = [
        "23/06/01 10:00:00 INFO SparkContext: Running Spark version 3.5.1",
        "23/06/01 10:00:01 WARN HiveClientImpl: Failed to refresh a cached table, will retry later",
        "org.apache.spark.SparkException: refresh failed",
        *(f"\tat org.apache.spark.Foo.bar{i}(Foo.scala:{i})" for i in range(frames)),
        "Caused by: com.acme.cache.CacheStaleException: entry expired",
        "\tat com.acme.cache.Cache.get(Cache.java:10)",
        "23/06/01 10:00:05 INFO BlockManager: stored block",
    ]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("frames", [30, 45])
def test_a_handled_stack_is_handled_however_deep_its_causes_are(catalogue: Catalogue, frames: int) -> None:
    # Given a WARN record's stack whose Caused by is more lines down than the record is looked for
    # Then it is still not taken for an error no rule knows
    assert _diagnose(catalogue, _warn_stack(frames), "unknown").category == "no_failure"


def test_the_jvms_own_out_of_memory_after_a_debug_line_still_counts_in_a_failed_run(catalogue: Catalogue) -> None:
    # Given an executor logging at DEBUG, and the JVM printing its OutOfMemoryError right after a record
    log = (
        "24/03/01 10:00:00 INFO Executor: Running task 3.0 in stage 2.0 (TID 17)\n"
        "24/03/01 10:00:09 DEBUG TaskMemoryManager: Task 17 acquired 64.0 MiB\n"
        "java.lang.OutOfMemoryError: Java heap space\n"
        "Dumping heap to /mnt/var/log/hadoop/heapdump.hprof ...\n"
    )
    # Then in a run known to have failed it is the cause (taken as the DEBUG record's, it is only less sure)
    assert _diagnose(catalogue, log, "failed").category == "oom_heap"


def test_a_resourcemanager_log_whose_second_attempt_succeeded_is_healthy(catalogue: Catalogue) -> None:
    rm = "INFO org.apache.hadoop.yarn.server.resourcemanager"
    log = (
        f"2024-03-01 10:00:00,003 {rm}.rmapp.attempt.RMAppAttemptImpl: appattempt_1709280000000_0007_000001 "
        "State change from FINAL_SAVING to FAILED on event = CONTAINER_FINISHED\n"
        f"2024-03-01 10:30:00,001 {rm}.rmapp.RMAppImpl: application_1709280000000_0007 State change from "
        "FINAL_SAVING to FINISHED on event = ATTEMPT_FINISHED\n"
        f"2024-03-01 10:30:00,002 {rm}.RMAppManager$ApplicationSummary: appId=application_1709280000000_0007,"
        "name=etl,state=FINISHED,finalStatus=SUCCEEDED\n"
    )
    assert _diagnose(catalogue, log, "unknown").category == "no_failure"


def test_an_am_stopped_mid_stage_after_an_earlier_job_finished_is_a_kill(catalogue: Catalogue) -> None:
    log = (
        "24/03/01 10:05:00 INFO DAGScheduler: Job 0 finished: count at etl.py:10, took 290.1 s\n"
        "24/03/01 10:05:01 INFO DAGScheduler: Submitting ResultStage 1 (MapPartitionsRDD[7] at save at etl.py:20)\n"
        "24/03/01 10:09:12 ERROR ApplicationMaster: RECEIVED SIGNAL TERM\n"
    )
    assert _diagnose(catalogue, log, "unknown").category == "app_killed_or_am_failed"


@pytest.mark.parametrize("end", ["\n", "\r\n"])
def test_an_exception_no_rule_knows_is_found_whatever_the_line_ends(catalogue: Catalogue, end: str) -> None:
    log = f"com.acme.etl.QualityGateException{end}\tat com.acme.etl.Gate.check(Gate.java:10){end}"
    assert _diagnose(catalogue, log, "unknown").category == "other"


@pytest.mark.parametrize(
    "line",
    [
        'Exception in thread "main" org.apache.spark.SparkException: Job 3 cancelled because SparkContext was shut '
        "down",
        "org.apache.spark.SparkException: Yarn application has already ended! It might have been killed or unable to "
        "launch application master.",
        "23/01/01 00:00:00 ERROR YarnClientSchedulerBackend: YARN application has exited unexpectedly with state "
        "FAILED! Check the YARN application logs for more details.",
    ],
)
def test_a_driver_that_says_its_application_was_ended_is_an_application_end_not_an_error(
    catalogue: Catalogue, line: str
) -> None:
    # Given the driver's own words that its SparkContext or YARN application ended under it, even as an
    # uncaught exception
    # Then the verdict says the application was ended (look at the AM's log), not "an error no rule knows"
    assert _diagnose(catalogue, line + "\n", "unknown").category == "app_killed_or_am_failed"

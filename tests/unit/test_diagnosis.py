"""Classification: from log lines to findings, and from findings to one root cause."""

from __future__ import annotations

import gzip
from collections.abc import Iterator

import pytest

from emr_triage.analysis.blocks import MAX_EVIDENCE_LINES
from emr_triage.analysis.catalogue import Catalogue, load_catalogue
from emr_triage.analysis.engine import analyse_stream
from emr_triage.analysis.findings import LineAnalysis, analyse_lines
from emr_triage.analysis.text import MAX_EVIDENCE_LINE_CHARS, fingerprint, mask_variables, strip_log_prefix
from emr_triage.analysis.verdict import MAX_FINDINGS_KEPT, build_report, diagnose, merge_findings
from emr_triage.models.analysis import Diagnosis, Finding, FindingKind, LogRead

STEP_STDERR = "s3://acme-emr-logs/logs/j-3ANP7YJ2WQ0LC/steps/s-3H8ZKQW0EXAMP/stderr.gz"
EXECUTOR_STDERR = (
    "s3://acme-emr-logs/logs/j-3ANP7YJ2WQ0LC/containers/application_1683190000000_0007/"
    "container_1683190000000_0007_01_000003/stderr.gz"
)

# A PySpark step in client mode: YARN kills an executor, the stage fails, the job aborts, and the driver's
# Python code dies with a Py4JJavaError. The last thing printed is the traceback; the cause is the kill.
MEMORY_KILL_LOG = """\
23/05/04 10:00:00 INFO SparkContext: Running Spark version 3.3.1-amzn-0
23/05/04 10:00:01 INFO Client: Submitted application application_1683190000000_0007
23/05/04 10:00:02 INFO Client: Application report for application_1683190000000_0007 (state: ACCEPTED)
23/05/04 10:00:03 INFO Client: Application report for application_1683190000000_0007 (state: RUNNING)
23/05/04 10:05:00 WARN YarnAllocator: Container killed by YARN for exceeding physical memory limits. \
5.5 GB of 5.5 GB physical memory used. Consider boosting spark.executor.memoryOverhead.
23/05/04 10:05:01 WARN TaskSetManager: Lost task 3.0 in stage 4.0 (TID 41) (ip-10-0-1-23.ec2.internal \
executor 2): ExecutorLostFailure (executor 2 exited caused by one of the running tasks) Reason: Container \
killed by YARN for exceeding physical memory limits. 5.5 GB of 5.5 GB physical memory used.
23/05/04 10:05:02 ERROR TaskSetManager: Task 3 in stage 4.0 failed 4 times; aborting job
Traceback (most recent call last):
  File "/mnt/tmp/spark-5d1c/daily_sales_agg.py", line 88, in <module>
    main()
  File "/mnt/tmp/spark-5d1c/daily_sales_agg.py", line 80, in main
    write_output(df)
  File "/mnt/tmp/spark-5d1c/lib/writer.py", line 12, in write_output
    df.count()
  File "/usr/lib/spark/python/lib/pyspark.zip/pyspark/sql/dataframe.py", line 804, in count
  File "/usr/lib/spark/python/lib/py4j-0.10.9.5-src.zip/py4j/java_gateway.py", line 1321, in __call__
  File "/usr/lib/spark/python/lib/pyspark.zip/pyspark/sql/utils.py", line 190, in deco
  File "/usr/lib/spark/python/lib/py4j-0.10.9.5-src.zip/py4j/protocol.py", line 326, in get_return_value
py4j.protocol.Py4JJavaError: An error occurred while calling o93.count.
: org.apache.spark.SparkException: Job aborted due to stage failure: Task 3 in stage 4.0 failed 4 times
\tat org.apache.spark.scheduler.DAGScheduler.failJobAndIndependentStages(DAGScheduler.scala:2863)
\tat org.apache.spark.scheduler.DAGScheduler.$anonfun$abortStage$2(DAGScheduler.scala:2799)
23/05/04 10:05:03 INFO SparkContext: Successfully stopped SparkContext
"""

# A Scala job in client mode whose executors ran out of disk; the exception has a Caused by chain.
DISK_FULL_LOG = """\
23/05/04 10:05:02 ERROR FileFormatWriter: Aborting job 5f3c.
Exception in thread "main" org.apache.spark.SparkException: Job aborted due to stage failure: Task 0 in \
stage 1.0 failed 4 times, most recent failure: Lost task 0.3 in stage 1.0 (TID 7) \
(ip-10-0-1-23.ec2.internal executor 3): java.io.IOException: No space left on device
\tat java.io.FileOutputStream.writeBytes(Native Method)
\tat org.apache.spark.storage.DiskBlockObjectWriter.write(DiskBlockObjectWriter.scala:310)
\tat scala.collection.Iterator.foreach(Iterator.scala:943)
\tat com.acme.etl.SalesJob$.writeOut(SalesJob.scala:77)
\tat com.acme.etl.SalesJob$.main(SalesJob.scala:21)
Driver stacktrace:
\tat org.apache.spark.scheduler.DAGScheduler.failJobAndIndependentStages(DAGScheduler.scala:2863)
Caused by: java.io.IOException: No space left on device
\tat java.io.FileOutputStream.writeBytes(Native Method)
\t... 25 more
23/05/04 10:05:03 INFO ShutdownHookManager: Shutdown hook called
"""

# A successful application: noise that must not raise an alert.
HEALTHY_LOG = """\
23/05/04 10:00:00 INFO SparkContext: Running Spark version 3.3.1-amzn-0
23/05/04 10:00:00 WARN NativeCodeLoader: Unable to load native-hadoop library for your platform... using \
builtin-java classes where applicable
23/05/04 10:00:01 INFO Client: Submitted application application_1683190000000_0008
23/05/04 10:00:01 WARN Client: launching with '-XX:OnOutOfMemoryError=kill -9 %p' -XX:+ExitOnOutOfMemoryError
23/05/04 10:00:01 INFO YarnAllocator: Launching container container_1683190000000_0008_01_000002 on host \
ip-10-0-1-23.ec2.internal with command: {{JAVA_HOME}}/bin/java -server -Xmx4743m \
'-XX:OnOutOfMemoryError=kill %p' -XX:+HeapDumpOnOutOfMemoryError \
org.apache.spark.executor.YarnCoarseGrainedExecutorBackend
23/05/04 10:00:02 WARN Utils: Service 'SparkUI' could not bind on port 4040. Attempting port 4041.
23/05/04 10:00:05 WARN TaskSetManager: Lost task 1.0 in stage 2.0 (TID 5) (ip-10-0-1-23.ec2.internal \
executor 1): TaskKilled (another attempt succeeded)
23/05/04 10:01:00 INFO ExecutorAllocationManager: Removing executor 2 because it has been idle for 60 seconds
23/05/04 10:10:00 INFO YarnAllocator: Completed container container_1683190000000_0008_01_000003 on host: \
ip-10-0-1-23.ec2.internal (state: COMPLETE, exit status: 143)
23/05/04 10:10:00 INFO YarnAllocator: Container killed on request. Exit code is 143
23/05/04 10:10:00 ERROR CoarseGrainedExecutorBackend: RECEIVED SIGNAL TERM
23/05/04 10:10:01 INFO ApplicationMaster: Final app status: SUCCEEDED, exitCode: 0
23/05/04 10:10:01 INFO SparkContext: Successfully stopped SparkContext
"""


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return load_catalogue()


def _analyse(catalogue: Catalogue, text: str, source: str = STEP_STDERR, weight: int = 3) -> LineAnalysis:
    return analyse_lines(text.splitlines(), catalogue=catalogue, source=source, source_weight=weight)


def _diagnose(catalogue: Catalogue, text: str, source: str = STEP_STDERR) -> Diagnosis:
    analysis = _analyse(catalogue, text, source)
    return diagnose(analysis.findings, catalogue, [LogRead(source=source, lines=text.count("\n"))])


def _finding(rule_id: str, source: str, *, rank: int = 20, kind: FindingKind = "cause", weight: int = 1) -> Finding:
    return Finding(
        rule_id=rule_id,
        category=rule_id,
        kind=kind,
        rank=rank,
        severity="high",
        retryable=False,
        title=f"title of {rule_id}",
        source=source,
        source_weight=weight,
        line_no=1,
        headline=f"headline of {rule_id}",
    )


# ---------------------------------------------------------------------------------------------------
# The verdict
# ---------------------------------------------------------------------------------------------------
def test_root_cause_wins_over_the_last_symptom(catalogue: Catalogue) -> None:
    # Given a log with a memory kill, then a lost executor, an aborted job and a Python traceback
    # When it is diagnosed
    diagnosis = _diagnose(catalogue, MEMORY_KILL_LOG)
    # Then the verdict is the earliest cause in the chain, not the last error printed
    assert diagnosis.category == "yarn_memory_kill"
    assert diagnosis.rule_id == "yarn_memory_kill"
    assert diagnosis.retryable is False
    assert diagnosis.line_no == 5
    assert diagnosis.headline == (
        "Container killed by YARN for exceeding physical memory limits. 5.5 GB of 5.5 GB physical memory used. "
        "Consider boosting spark.executor.memoryOverhead."
    )
    assert "memoryOverhead" in diagnosis.remediation
    # And the other findings are listed as secondary, each once
    assert sorted(s.rule_id for s in diagnosis.secondary) == [
        "executor_lost",
        "python_error",
        "python_spark_call_failed",
        "spark_job_aborted",
    ]
    by_rule = {s.rule_id: s for s in diagnosis.secondary}
    assert by_rule["python_error"].line_no == 8
    assert by_rule["spark_job_aborted"].count == 2  # "aborting job" and the wrapped "Job aborted"
    # And the user's code location is borrowed from the traceback (the memory kill has none)
    assert diagnosis.location == "writer.py:12 in write_output"
    assert diagnosis.from_logs is True
    assert diagnosis.partial is False


def test_symptoms_with_an_error_no_rule_knows_give_the_category_other(catalogue: Catalogue) -> None:
    # Given a log that says the job failed, with an error no rule knows
    log = (
        "23/05/04 10:05:02 ERROR TaskSetManager: Task 3 in stage 4.0 failed 4 times; aborting job\n"
        "23/05/04 10:05:03 INFO ApplicationMaster: Final app status: FAILED, exitCode: 15, (reason: User class "
        "threw exception: java.lang.RuntimeException: boom)\n"
    )
    # When it is diagnosed
    diagnosis = _diagnose(catalogue, log)
    # Then the category is `other`, the cause is unclear, and the first symptom is the evidence
    assert diagnosis.category == "other"
    assert diagnosis.rule_id == "spark_job_aborted"
    assert diagnosis.title == "The job failed with an error no known signature covers"
    assert diagnosis.retryable is None
    assert diagnosis.root_kind == "symptom"
    assert diagnosis.summary == "Task 3 in stage 4.0 failed 4 times; aborting job"
    assert [s.rule_id for s in diagnosis.secondary] == ["application_failed", "yarn_application_failed"]


def test_yarn_words_alone_give_app_killed_or_am_failed(catalogue: Catalogue) -> None:
    # Given a YARN client's report that the application failed, and nothing about why
    log = (
        "23/05/04 10:05:03 INFO Client: Application report for application_1683190000000_0007 (state: FAILED)\n"
        "\t final status: FAILED\n"
        'Exception in thread "main" org.apache.spark.SparkException: Application application_1683190000000_0007 '
        "finished with failed status\n"
    )
    # When it is diagnosed
    diagnosis = _diagnose(catalogue, log)
    # Then the verdict says the application failed and where to look next (the AM's log), not `other`
    assert diagnosis.category == "app_killed_or_am_failed"
    assert diagnosis.rule_id == "yarn_application_failed"
    assert diagnosis.title == "YARN says the application failed; the logs read do not say why"
    assert "_000001" in diagnosis.remediation


def test_no_findings_in_logs_read_is_no_failure(catalogue: Catalogue) -> None:
    # Given logs were read and nothing matched
    diagnosis = diagnose([], catalogue, [LogRead(source=STEP_STDERR, lines=12)])
    # Then the verdict is no_failure, from the logs
    assert diagnosis.category == "no_failure"
    assert diagnosis.rule_id is None
    assert diagnosis.severity == "low"
    assert diagnosis.summary == "The logs read show no known failure."
    assert diagnosis.from_logs is True
    assert diagnosis.fingerprint is None


def test_no_logs_read_is_no_failure_not_from_logs(catalogue: Catalogue) -> None:
    # Given no log was read at all
    diagnosis = diagnose([], catalogue)
    # Then it says so
    assert diagnosis.category == "no_failure"
    assert diagnosis.summary == "No logs were read."
    assert diagnosis.from_logs is False


def test_healthy_log_with_noise_is_no_failure(catalogue: Catalogue) -> None:
    # Given a successful run: WARN noise, OOM flags in launch commands, exit 143 when executors are released
    analysis = _analyse(catalogue, HEALTHY_LOG)
    # Then no failure rule matches, only the success marker, and the verdict is no_failure
    assert [f.rule_id for f in analysis.findings] == ["application_succeeded"]
    diagnosis = diagnose(analysis.findings, catalogue, [LogRead(source=STEP_STDERR)])
    assert diagnosis.category == "no_failure"


def test_partial_reads_are_carried_into_the_diagnosis(catalogue: Catalogue) -> None:
    # Given one complete read and one cut short
    reads = [
        LogRead(source=STEP_STDERR, lines=10),
        LogRead(source=EXECUTOR_STDERR, partial=True, notes=["gzip stream ends early"]),
    ]
    findings = _analyse(catalogue, MEMORY_KILL_LOG).findings
    # When they are diagnosed
    diagnosis = diagnose(findings, catalogue, reads)
    # Then the diagnosis is partial and says which log and why
    assert diagnosis.partial is True
    assert diagnosis.partial_notes == [f"{EXECUTOR_STDERR}: gzip stream ends early"]


def test_driver_side_log_wins_a_tie_between_equal_ranks(catalogue: Catalogue) -> None:
    # Given an executor log with a heap OOM and a step log (driver side) with a full disk, both rank 20
    executor = _analyse(catalogue, "java.lang.OutOfMemoryError: Java heap space\n", EXECUTOR_STDERR, weight=1)
    driver = _analyse(catalogue, "java.io.IOException: No space left on device\n", STEP_STDERR, weight=3)
    # When they are diagnosed together, executor first
    diagnosis = diagnose(merge_findings(executor.findings, driver.findings), catalogue)
    # Then the driver-side finding is the verdict
    assert diagnosis.category == "disk_full"
    assert diagnosis.source == STEP_STDERR


# ---------------------------------------------------------------------------------------------------
# Where in the user's code
# ---------------------------------------------------------------------------------------------------
def test_python_location_is_the_innermost_user_frame(catalogue: Catalogue) -> None:
    # Given a PySpark traceback whose innermost frames are pyspark.zip and py4j
    analysis = _analyse(catalogue, MEMORY_KILL_LOG)
    python = next(f for f in analysis.findings if f.rule_id == "python_error")
    # Then the location is the innermost frame of the user's own files
    assert python.location == "writer.py:12 in write_output"
    # And since the traceback ends in Py4JJavaError, the finding is a symptom whose headline is the Java
    # exception it wraps
    assert python.kind == "symptom"
    assert python.headline == (
        "org.apache.spark.SparkException: Job aborted due to stage failure: Task 3 in stage 4.0 failed 4 times"
    )
    # And the evidence runs from the Traceback line through the exception and the wrapped Java stack
    assert python.evidence[0] == "Traceback (most recent call last):"
    assert "py4j.protocol.Py4JJavaError: An error occurred while calling o93.count." in python.evidence
    assert (
        python.evidence[-1]
        == "\tat org.apache.spark.scheduler.DAGScheduler.$anonfun$abortStage$2(DAGScheduler.scala:2799)"
    )
    assert all("Successfully stopped" not in line for line in python.evidence)


def test_python_udf_error_from_an_executor_points_at_the_udf(catalogue: Catalogue) -> None:
    # Given a Python UDF failure as the executor reports it (framework frames under the container's pyspark.zip)
    log = (
        "23/05/04 10:05:00 ERROR Executor: Exception in task 0.0 in stage 3.0 (TID 12)\n"
        "org.apache.spark.api.python.PythonException: Traceback (most recent call last):\n"
        '  File "/mnt/yarn/usercache/hadoop/appcache/application_1683190000000_0007/container_1683190000000_0007'
        '_01_000002/pyspark.zip/pyspark/worker.py", line 686, in main\n'
        "    process()\n"
        '  File "/mnt/tmp/spark-5d1c/udfs.py", line 9, in parse_amount\n'
        "    return float(raw)\n"
        "ValueError: could not convert string to float: 'n/a'\n"
        "\n"
        "\tat org.apache.spark.api.python.BasePythonRunner$ReaderIterator.handlePythonException("
        "PythonRunner.scala:559)\n"
    )
    # When it is analysed
    finding = _analyse(catalogue, log, EXECUTOR_STDERR, weight=1).findings[0]
    # Then the UDF is the location and the Python exception the headline
    assert finding.rule_id == "python_error"
    assert finding.location == "udfs.py:9 in parse_amount"
    assert finding.headline == "ValueError: could not convert string to float: 'n/a'"


def test_java_location_is_the_first_frame_outside_the_frameworks(catalogue: Catalogue) -> None:
    # Given a Scala job's stack with java, spark and scala frames above the user's
    analysis = _analyse(catalogue, DISK_FULL_LOG)
    disk = next(f for f in analysis.findings if f.rule_id == "disk_full")
    # Then the location is the first com.acme frame
    assert disk.location == "com.acme.etl.SalesJob$.writeOut (SalesJob.scala:77)"


def test_evidence_collects_the_stack_and_caused_by_chain(catalogue: Catalogue) -> None:
    # Given a job abort with frames, "Driver stacktrace:" and a Caused by chain
    disk = next(f for f in _analyse(catalogue, DISK_FULL_LOG).findings if f.rule_id == "disk_full")
    # Then the evidence is the exception line and every line that belongs to it, and nothing after
    lines = DISK_FULL_LOG.splitlines()
    assert disk.line_no == 2
    assert disk.evidence == lines[1:12]
    assert disk.evidence[-2] == "\tat java.io.FileOutputStream.writeBytes(Native Method)"
    assert "Caused by: java.io.IOException: No space left on device" in disk.evidence
    assert "Driver stacktrace:" in disk.evidence
    # And the count includes the Caused by line
    assert disk.count == 2


def test_evidence_is_capped_but_the_location_search_goes_on(catalogue: Catalogue) -> None:
    # Given an OOM with 100 framework frames of 700 characters, then the user's frame, then 1,000 more
    frames = [f"\tat org.apache.spark.Deep{i}.run(Deep{i}.scala:{i}) {'x' * 700}" for i in range(100)]
    frames += ["\tat com.acme.etl.Recursion.go(Recursion.scala:5)"]
    frames += [f"\tat org.apache.spark.More{i}.run(More{i}.scala:{i})" for i in range(1000)]
    log = "\n".join(["java.lang.OutOfMemoryError: Java heap space", *frames, "INFO next"])
    # When it is analysed
    finding = _analyse(catalogue, log).findings[0]
    # Then the evidence is capped in lines and in characters per line
    assert len(finding.evidence) == MAX_EVIDENCE_LINES
    assert max(len(line) for line in finding.evidence) == MAX_EVIDENCE_LINE_CHARS
    assert finding.evidence[0] == "java.lang.OutOfMemoryError: Java heap space"
    # And the user's frame past the cap is still found
    assert finding.location == "com.acme.etl.Recursion.go (Recursion.scala:5)"


def test_log4j_message_then_exception_line_keeps_the_stack(catalogue: Catalogue) -> None:
    # Given the driver's log in cluster mode: log4j prints the message, then the exception, then its frames
    log = (
        "23/05/04 10:05:02 ERROR ApplicationMaster: User class threw exception: "
        "org.apache.spark.sql.AnalysisException: Path does not exist: s3://acme-data/raw/2023-05-04\n"
        "org.apache.spark.sql.AnalysisException: Path does not exist: s3://acme-data/raw/2023-05-04\n"
        "\tat org.apache.spark.sql.errors.QueryCompilationErrors$.dataPathNotExistError("
        "QueryCompilationErrors.scala:1419)\n"
        "\tat com.acme.etl.DailyJob$.readInput(DailyJob.scala:42)\n"
        "\tat com.acme.etl.DailyJob$.main(DailyJob.scala:17)\n"
        "23/05/04 10:05:03 INFO ApplicationMaster: Final app status: FAILED, exitCode: 15\n"
    )
    # When it is diagnosed
    diagnosis = _diagnose(catalogue, log)
    # Then the verdict carries the stack and the user's frame
    assert diagnosis.category == "input_not_found"
    assert diagnosis.location == "com.acme.etl.DailyJob$.readInput (DailyJob.scala:42)"
    assert "\tat com.acme.etl.DailyJob$.readInput(DailyJob.scala:42)" in diagnosis.evidence


# ---------------------------------------------------------------------------------------------------
# Application ids, headlines, fingerprints
# ---------------------------------------------------------------------------------------------------
def test_application_ids_are_collected_once_in_order(catalogue: Catalogue) -> None:
    # Given a step log submitting two applications (a retry), with repeated report lines
    log = (
        MEMORY_KILL_LOG
        + "23/05/04 10:06:00 INFO Client: Submitted application application_1683190000000_0009\n"
        + "23/05/04 10:06:01 INFO Client: Application report for application_1683190000000_0009 (state: RUNNING)\n"
    )
    # When it is analysed
    analysis = _analyse(catalogue, log)
    # Then each application id is listed once, in order of appearance
    assert analysis.application_ids == ["application_1683190000000_0007", "application_1683190000000_0009"]


def test_build_report_collects_findings_reads_and_application_ids(catalogue: Catalogue) -> None:
    # Given two analysed logs
    first = _analyse(catalogue, MEMORY_KILL_LOG, STEP_STDERR)
    second = _analyse(catalogue, DISK_FULL_LOG, EXECUTOR_STDERR, weight=1)
    reads = [LogRead(source=STEP_STDERR), LogRead(source=EXECUTOR_STDERR)]
    # When a report is built
    report = build_report([(first, reads[0]), (second, reads[1])])
    # Then it holds every read, every application id, and findings from both logs
    assert report.reads == reads
    assert report.application_ids == ["application_1683190000000_0007"]
    assert {f.source for f in report.findings} == {STEP_STDERR, EXECUTOR_STDERR}


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("23/05/04 10:05:00 WARN YarnAllocator: Container killed", "Container killed"),
        ("2023-05-04 10:05:00,123 ERROR [main] org.apache.hadoop.Foo: disk failed", "disk failed"),
        ("2023-05-04T10:05:04.123Z INFO Step failed with exitCode 1", "Step failed with exitCode 1"),
        ("Traceback (most recent call last):", "Traceback (most recent call last):"),
    ],
)
def test_strip_log_prefix(line: str, expected: str) -> None:
    assert strip_log_prefix(line) == expected


def _variant(app: str, host: str, path: str, executor: int, gb: str, line: int) -> str:
    return (
        f"23/05/0{line % 9 + 1} 10:05:00 ERROR YarnScheduler: Lost executor {executor} on {host}: Container "
        f"killed by YARN for exceeding physical memory limits. {gb} GB of 5.5 GB physical memory used. "
        f"Container container_1683190000000_{app}_01_00000{executor} wrote to {path}\n"
        f"\tat com.acme.etl.SalesJob$.writeOut(SalesJob.scala:{line})\n"
    )


def test_fingerprint_is_stable_when_only_ids_hosts_numbers_and_paths_change(catalogue: Catalogue) -> None:
    # Given the same failure on two runs: other application, host, executor, amounts, paths and line numbers
    today = _variant("0007", "ip-10-0-1-23.ec2.internal", "/mnt/yarn/usercache/hadoop/appcache/a1", 2, "5.6", 77)
    tomorrow = _variant("0042", "ip-10-9-8-7.ec2.internal", "/mnt1/yarn/usercache/hadoop/appcache/b7", 5, "6.1", 81)
    # When both are diagnosed
    first = _diagnose(catalogue, today)
    second = _diagnose(catalogue, tomorrow)
    # Then they get the same fingerprint
    assert first.headline != second.headline
    assert first.fingerprint == second.fingerprint
    assert first.fingerprint is not None
    assert len(first.fingerprint) == 16


def test_fingerprint_differs_for_a_different_error(catalogue: Catalogue) -> None:
    # Given two different failures
    kill = _diagnose(catalogue, _variant("0007", "ip-10-0-1-23.ec2.internal", "/mnt/a/b", 2, "5.6", 77))
    disk = _diagnose(catalogue, DISK_FULL_LOG)
    # Then their fingerprints differ
    assert kill.fingerprint != disk.fingerprint


def test_fingerprint_depends_on_rule_wording_and_location() -> None:
    # Given one headline
    headline = "Path does not exist: s3://acme-data/raw/2023-05-04"
    base = fingerprint("input_not_found", headline, "job.py:12 in main")
    # Then a line number or date change keeps it; another rule, wording or function changes it
    assert fingerprint("input_not_found", headline.replace("2023-05-04", "2024-12-31"), "job.py:99 in main") == base
    assert fingerprint("output_already_exists", headline, "job.py:12 in main") != base
    assert fingerprint("input_not_found", "Input path does not exist: s3://a/b", "job.py:12 in main") != base
    assert fingerprint("input_not_found", headline, "job.py:12 in load") != base


def test_mask_variables_replaces_ids_hosts_and_numbers() -> None:
    # Given a line full of variable parts
    line = (
        "Lost executor 2 on ip-10-0-1-23.ec2.internal: container_e03_1683190000000_0007_01_000002 of "
        "application_1683190000000_0007 on j-3ANP7YJ2WQ0LC s-3H8ZKQW0EXAMP i-0123456789abcdef0 10.0.1.23:7337"
    )
    # Then they become placeholders
    assert mask_variables(line) == (
        "Lost executor <n> on <host>: <container> of <app> on <cluster> <step> <instance> <ip>"
    )


# ---------------------------------------------------------------------------------------------------
# Merging findings from several logs
# ---------------------------------------------------------------------------------------------------
def test_merge_keeps_earlier_logs_first_among_equals() -> None:
    # Given the same-ranked finding from an earlier log and from a later log
    earlier = _finding("oom_heap", "s3://b/first/stderr.gz")
    later = _finding("oom_heap", "s3://b/second/stderr.gz")
    # When they are merged
    merged = merge_findings([earlier], [later])
    # Then the earlier one stays first (the verdict does not flip on ties)
    assert [f.source for f in merged] == ["s3://b/first/stderr.gz", "s3://b/second/stderr.gz"]


def test_merge_orders_causes_by_rank_and_drops_duplicates_per_log() -> None:
    # Given findings in mixed order, one of them seen again from the same log
    existing = [
        _finding("aborted", "s3://b/a", rank=90, kind="symptom"),
        _finding("executor_lost", "s3://b/a", rank=50),
    ]
    new = [_finding("node_lost", "s3://b/b", rank=10), _finding("executor_lost", "s3://b/a", rank=50)]
    # When they are merged
    merged = merge_findings(existing, new)
    # Then causes come first by rank, symptoms last, and (rule, log) appears once
    assert [(f.rule_id, f.source) for f in merged] == [
        ("node_lost", "s3://b/b"),
        ("executor_lost", "s3://b/a"),
        ("aborted", "s3://b/a"),
    ]
    assert merged[1] is existing[1]


def test_merge_caps_the_number_of_findings_keeping_the_best() -> None:
    # Given 30 findings of decreasing importance
    findings = [_finding(f"rule_{i:02d}", "s3://b/a", rank=i) for i in range(30)]
    # When they are merged
    merged = merge_findings([], reversed(findings))
    # Then only the best-ranked are kept
    assert len(merged) == MAX_FINDINGS_KEPT
    assert [f.rank for f in merged] == list(range(MAX_FINDINGS_KEPT))


# ---------------------------------------------------------------------------------------------------
# Secrets and broken streams
# ---------------------------------------------------------------------------------------------------
def test_secrets_in_evidence_and_headline_are_redacted(catalogue: Catalogue) -> None:
    # Given an error line and a frame carrying credentials
    log = (
        'Exception in thread "main" java.lang.OutOfMemoryError: Java heap space while running '
        "--conf spark.hadoop.fs.s3a.secret.key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n"
        "\tat com.acme.Loader.open(Loader.java:12) jdbc:postgresql://etl:Hunter2Pass@db.internal:5432/w\n"
        "Caused by: java.lang.IllegalStateException: key AKIAIOSFODNN7EXAMPLE rejected\n"
    )
    # When it is analysed
    finding = next(f for f in _analyse(catalogue, log).findings if f.rule_id == "oom_heap")
    # Then nothing secret is kept, neither in the headline nor in the evidence
    kept = "\n".join([finding.headline, *finding.evidence])
    for secret in ("wJalrXUtnFEMI", "Hunter2Pass", "AKIAIOSFODNN7EXAMPLE"):
        assert secret not in kept
    assert finding.headline.endswith("spark.hadoop.fs.s3a.secret.key=[REDACTED]")
    assert (
        finding.evidence[1]
        == "\tat com.acme.Loader.open(Loader.java:12) jdbc:postgresql://etl:[REDACTED]@db.internal:5432/w"
    )
    assert finding.evidence[2] == "Caused by: java.lang.IllegalStateException: key [REDACTED AWS KEY ID] rejected"


def test_analyse_stream_keeps_findings_when_the_source_fails_mid_way(catalogue: Catalogue) -> None:
    # Given a gzip log whose download resets after the first 8 KiB (the error is near the top)
    filler = [
        f"23/05/04 10:{i // 60 % 60:02d}:{i % 60:02d} INFO TaskSetManager: Finished task {i}.0 in stage "
        f"{i % 13}.0 (TID {i * 7919 % 100_003}) in {i * 31 % 9973} ms"
        for i in range(20_000)
    ]
    text = "\n".join([MEMORY_KILL_LOG.splitlines()[4], *filler]) + "\n"
    compressed = gzip.compress(text.encode())
    assert len(compressed) > 64 * 1024

    def body() -> Iterator[bytes]:
        yield compressed[:4096]
        yield compressed[4096:8192]
        raise ConnectionResetError(104, "Connection reset by peer")

    # When it is analysed
    analysis, read = analyse_stream(body(), catalogue=catalogue, source=STEP_STDERR, etag="abc")
    # Then the findings read so far are kept
    assert [f.rule_id for f in analysis.findings] == ["yarn_memory_kill"]
    # And the read is partial, with the reason first
    assert read.partial is True
    assert read.bytes_read == 8192
    assert 0 < read.lines < len(filler)
    assert read.etag == "abc"
    assert (
        read.notes[0] == "reading stopped after 8,192 bytes: ConnectionResetError: [Errno 104] Connection reset by peer"
    )


def test_analyse_stream_of_a_complete_plain_log(catalogue: Catalogue) -> None:
    # Given a plain-text step log read in one go
    analysis, read = analyse_stream([DISK_FULL_LOG.encode()], catalogue=catalogue, source=STEP_STDERR, source_weight=3)
    # Then the read is complete and the findings carry the source and its weight
    size = len(DISK_FULL_LOG.encode())
    assert read == LogRead(source=STEP_STDERR, bytes_read=size, bytes_scanned=size, lines=13)
    assert {f.rule_id for f in analysis.findings} == {"disk_full", "spark_job_aborted", "application_failed"}
    assert all(f.source == STEP_STDERR and f.source_weight == 3 for f in analysis.findings)

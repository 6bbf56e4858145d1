"""Logs that are not a plain driver log: a prefix on every line (docker-compose, kubectl, CI, journald,
an orchestrator relaying spark-submit, a markdown quote) is found in the first lines and stripped, so stack
frames, tracebacks and log levels read as they do without it."""

from __future__ import annotations

import pytest

from emr_triage.analysis.catalogue import Catalogue, load_catalogue
from emr_triage.analysis.findings import analyse_lines
from emr_triage.analysis.text import line_unwrapper
from emr_triage.analysis.verdict import diagnose
from emr_triage.models.analysis import Diagnosis, LogRead

SOURCE = "pasted.log"
# A Spark 3 driver whose job fails with a heap OOM; the frame names a class with "OutOfMemoryError" in it,
# which is never evidence by itself.
PLAIN = """\
23/06/01 10:00:00 INFO SparkContext: Running Spark version 3.4.1
23/06/01 10:00:09 WARN ErrorHandling: retrying
java.lang.IllegalStateException: transient
\tat com.acme.OutOfMemoryErrorHandler.handle(OutOfMemoryErrorHandler.java:12)
23/06/01 10:01:00 ERROR Executor: Exception in task 0.0 in stage 0.0 (TID 0)
java.lang.OutOfMemoryError: Java heap space
\tat java.util.Arrays.copyOf(Arrays.java:3236)
23/06/01 10:01:01 ERROR TaskSetManager: Task 0 in stage 0.0 failed 1 times; aborting job
"""
PREFIXES = {
    "docker-compose": "spark-master_1  | ",
    "docker-compose-v2": "spark-worker-1  | ",
    "kubectl": "[pod/etl-driver/spark-kubernetes-driver] ",
    "ci": "2023-06-01T10:00:00.1234567Z ",
    "journald": "Jun 01 10:00:00 ip-10-0-0-5 spark-submit[4411]: ",
    "airflow": "[2023-06-01, 10:00:00 UTC] {spark_submit.py:490} INFO - ",
    "livy": "23/06/01 10:00:00 INFO LineBufferedStream: stdout: ",
    "sbt": "[info] ",
    "markdown": "> ",
}


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return load_catalogue()


def _diagnose(catalogue: Catalogue, text: str) -> Diagnosis:
    analysis = analyse_lines(text.splitlines(), catalogue=catalogue, source=SOURCE)
    return diagnose(analysis.findings, catalogue, [LogRead(source=SOURCE, lines=analysis.lines)])


@pytest.mark.parametrize("name", sorted(PREFIXES))
def test_a_prefixed_log_is_diagnosed_as_the_plain_one(catalogue: Catalogue, name: str) -> None:
    # Given the same log with a prefix on every line
    prefixed = "".join(PREFIXES[name] + line + "\n" for line in PLAIN.splitlines())
    # When both are diagnosed
    plain, wrapped = _diagnose(catalogue, PLAIN), _diagnose(catalogue, prefixed)
    # Then the verdict, its evidence and the handled warning's quietness are the same
    assert plain.category == "oom_heap"
    assert (wrapped.category, wrapped.rule_id, wrapped.line_no) == (plain.category, plain.rule_id, plain.line_no)
    assert wrapped.evidence == plain.evidence
    assert wrapped.headline == plain.headline


def test_lines_without_the_prefix_are_left_as_they_are() -> None:
    # Given a docker-compose log where a few lines come from outside the containers
    sample = b"spark_1  | 23/06/01 INFO a\nspark_1  | 23/06/01 INFO b\nAttaching to spark_1\nspark_1  | c\n"
    unwrap = line_unwrapper(sample)
    assert unwrap is not None
    # Then only the prefixed lines are unwrapped
    assert unwrap("spark_1  | 23/06/01 INFO a") == "23/06/01 INFO a"
    assert unwrap("Attaching to spark_1") == "Attaching to spark_1"


def test_a_plain_log_has_no_prefix_to_strip() -> None:
    assert line_unwrapper(PLAIN.encode()) is None
    assert line_unwrapper(b"") is None


def test_a_log_whose_own_layout_starts_with_an_iso_timestamp_keeps_it(catalogue: Catalogue) -> None:
    # Given a log4j layout with ISO "...Z" timestamps (what a CI runner's prefix also looks like)
    lines = [
        "2023-06-01T10:00:00.123Z INFO SparkContext: Running Spark version 3.5.1",
        "2023-06-01T10:00:09.123Z WARN Retry: connecting again",
        "java.net.ConnectException: Connection refused",
        "2023-06-01T10:00:10.123Z INFO DAGScheduler: Job 0 finished: count at x.py:1, took 1.0 s",
    ]
    assert line_unwrapper("\n".join(lines).encode()) is None
    # Then the handled WARN stays handled
    assert _diagnose(catalogue, "\n".join(lines) + "\n").category == "no_failure"

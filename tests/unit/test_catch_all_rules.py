"""The last-resort rules: an error line or a shell script's error that no rule knows.

They name a failure that would otherwise read as ``no_failure`` (``other``, with the line as evidence), and
stay out of the way everywhere else: prose around a paste, counters, JSON and records of other levels are
not error lines; a known cause in the same logs is the verdict, and the catch-all is not listed beside it.
"""

from __future__ import annotations

import pytest

from emr_triage.analysis.catalogue import Catalogue, load_catalogue
from emr_triage.analysis.engine import analyse_stream
from emr_triage.analysis.verdict import diagnose
from emr_triage.models.analysis import Diagnosis


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return load_catalogue()


def _diagnose(catalogue: Catalogue, text: str, outcome: str = "unknown") -> Diagnosis:
    analysis, read = analyse_stream([text.encode()], catalogue=catalogue, source="driver.log")
    return diagnose(analysis.findings, catalogue, [read], outcome=outcome)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "rule_id"),
    [
        ("ERROR: (gcloud.dataproc.batches.submit.pyspark) NOT_FOUND: Method not found.\n", "error_line"),
        ("<console>:12: error: not found: value globalScope\n", "error_line"),
        (
            "[docker@node3 topwords]$ bash deploy/sbin/topwords_yarn.sh\n"
            "deploy/sbin/topwords_yarn.sh: line 65: /opt/hadoop/bin/yarn: No such file or directory\n",
            "shell_command_failed",
        ),
    ],
)
def test_an_error_no_rule_knows_is_named_not_hidden(catalogue: Catalogue, text: str, rule_id: str) -> None:
    # Given a log whose only problem is an error no specific rule knows
    # When it is diagnosed, the run's outcome unknown
    diagnosis = _diagnose(catalogue, text)
    # Then the verdict is `other` with that line as its evidence, not "no known failure"
    assert diagnosis.category == "other"
    assert diagnosis.rule_id == rule_id
    assert diagnosis.evidence and diagnosis.evidence[0] in text


@pytest.mark.parametrize(
    "text",
    [
        "This means that connection failed and lost some data in this process.\n",
        "\t\tFailed Shuffles=0\n\t\tFailed map tasks=0\n",
        "[04:03:27,683] WARN  {NativeCodeLoader} failed: using builtin-java classes where applicable\n",
        ' Failed Values":true},{"ID":2,"Name":"internal.metrics.executorDeserializeCpuTime"}\n',
        "23/05/22 13:09:35 WARN Presentation: Failed: writing data, retrying\n",
    ],
)
def test_lines_that_only_mention_a_failure_are_not_one(catalogue: Catalogue, text: str) -> None:
    # Given prose, counters, JSON or a WARN record
    # When it is diagnosed
    diagnosis = _diagnose(catalogue, text)
    # Then nothing failed
    assert diagnosis.category == "no_failure"


def test_an_error_line_never_undoes_a_success_shown(catalogue: Catalogue) -> None:
    # Given an error line before the application succeeds, or after it (a tool's complaint while the
    # application shuts down)
    record = "ERROR: (gcloud.dataproc.jobs.wait) the job's driver output could not be streamed\n"
    success = "23/05/22 13:10:00 INFO ApplicationMaster: Final app status: SUCCEEDED, exitCode: 0\n"
    # Then the run succeeded either way; with the run known to have failed, the line is named
    assert _diagnose(catalogue, record + success).category == "no_failure"
    assert _diagnose(catalogue, success + record).category == "no_failure"
    assert _diagnose(catalogue, record, outcome="failed").rule_id == "error_line"


def test_a_known_cause_is_the_verdict_and_the_catch_all_is_not_listed_beside_it(catalogue: Catalogue) -> None:
    # Given an S3 throttling error under an exception that no rule knows
    text = (
        "java.lang.IllegalStateException: the batch could not be committed\n"
        "Caused by: com.amazonaws.services.s3.model.AmazonS3Exception: Slow Down (Service: Amazon S3; Status Code:"
        " 503; Error Code: SlowDown)\n"
    )
    # When it is diagnosed
    diagnosis = _diagnose(catalogue, text, outcome="failed")
    # Then the throttling is the verdict and the catch-all is not among the other findings
    assert diagnosis.category == "s3_throttling"
    assert {s.rule_id for s in diagnosis.secondary}.isdisjoint({"error_line", "unknown_exception"})


def test_a_python_exception_line_is_read_as_python_before_the_catch_alls(catalogue: Catalogue) -> None:
    # Given a Python exception printed on its own (it also reads as an error line)
    text = " ValueError: Cannot run multiple SparkContexts at once; existing SparkContext(app=pyspark-shell)\n"
    # When it is diagnosed
    diagnosis = _diagnose(catalogue, text)
    # Then the most specific fallback takes it: a Python error
    assert (diagnosis.category, diagnosis.rule_id) == ("python_error", "python_exception_line")


def test_findings_of_one_line_come_in_rank_then_id_order(catalogue: Catalogue) -> None:
    # Given a line that two symptoms of the same rank match
    text = (
        'Exception in thread "main" org.apache.spark.SparkException: Job aborted due to stage failure: Task 0 in'
        " stage 0.0 failed 4 times\n"
    )
    analysis, _ = analyse_stream([text.encode()], catalogue=catalogue, source="driver.log")
    found = [f.rule_id for f in analysis.findings]
    # Then their order is the catalogue's rank, then the rule's id, whatever the scanner's literals are
    ranks = [(catalogue.get(rule_id).rank, rule_id) for rule_id in found]  # type: ignore[union-attr]
    assert ranks == sorted(ranks)
    assert {"application_failed", "spark_job_aborted"} <= set(found)

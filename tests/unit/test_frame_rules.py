"""Rules whose meaning is in the stack below a generic headline (``frames:``): the match stands only when
a line of its block matches; the frames themselves are never evidence."""

from __future__ import annotations

from pathlib import Path

import pytest

from emr_triage.analysis.catalogue import Catalogue, load_catalogue
from emr_triage.analysis.findings import analyse_lines
from emr_triage.analysis.verdict import diagnose
from emr_triage.models.analysis import Diagnosis, LogRead

SOURCE = "driver.log"
HIVE_SESSION = """\
pyspark.sql.utils.IllegalArgumentException: "Error while instantiating 'org.apache.spark.sql.hive.HiveSessionStateBuilder':"
\tat org.apache.spark.sql.SparkSession$.org$apache$spark$sql$SparkSession$$instantiateSessionState(SparkSession.scala:1178)
\tat org.apache.spark.sql.hive.HiveExternalCatalog.client(HiveExternalCatalog.scala:67)
\tat org.apache.hadoop.hive.metastore.HiveMetaStoreClient.open(HiveMetaStoreClient.java:478)
\tat org.apache.hadoop.hive.metastore.HiveMetaStoreClient.<init>(HiveMetaStoreClient.java:245)
"""
HIVE_SESSION_CLASSES = """\
pyspark.sql.utils.IllegalArgumentException: "Error while instantiating 'org.apache.spark.sql.hive.HiveSessionStateBuilder':"
\tat org.apache.spark.sql.SparkSession$.org$apache$spark$sql$SparkSession$$instantiateSessionState(SparkSession.scala:1178)
\tat org.apache.spark.util.Utils$.classForName(Utils.scala:238)
"""


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return load_catalogue()


def _diagnose(catalogue: Catalogue, text: str) -> Diagnosis:
    analysis = analyse_lines(text.splitlines(), catalogue=catalogue, source=SOURCE)
    return diagnose(analysis.findings, catalogue, [LogRead(source=SOURCE, lines=analysis.lines)], outcome="failed")


def test_a_hive_session_that_failed_in_the_metastore_client_is_a_metastore_problem(catalogue: Catalogue) -> None:
    # Given Spark's generic "Error while instantiating HiveSessionStateBuilder", the metastore client's
    # frames below it, and no Caused by (cut from the paste)
    diagnosis = _diagnose(catalogue, HIVE_SESSION)
    # Then the frames say what the headline means
    assert diagnosis.category == "metastore_unavailable"
    assert diagnosis.rule_id == "hive_session_metastore_frames"
    # And the headline is the evidence's first line; the frames are gathered with it, never matched alone
    assert diagnosis.evidence[0].startswith("pyspark.sql.utils.IllegalArgumentException")


def test_the_same_headline_without_the_metastore_frames_is_not_a_metastore_problem(catalogue: Catalogue) -> None:
    # Given the same headline over frames that show something else (a class missing)
    diagnosis = _diagnose(catalogue, HIVE_SESSION_CLASSES)
    # Then the frames rule does not stand
    assert diagnosis.rule_id != "hive_session_metastore_frames"


def test_a_frames_rule_whose_first_match_does_not_stand_can_stand_at_a_later_match(
    catalogue: Catalogue, tmp_path: Path
) -> None:
    # Given a user rule with frames, whose first match has other frames and whose second has them
    rules = tmp_path / "ours.yaml"
    rules.write_text(
        "version: 1\n"
        "rules:\n"
        "  - id: acme_pool_exhausted\n"
        "    category: network_error\n"
        "    rank: 50\n"
        "    severity: medium\n"
        "    retryable: true\n"
        "    title: Our connection pool ran dry\n"
        "    patterns: ['AcmeClientError: request failed']\n"
        "    frames: ['com\\.acme\\.pool\\.']\n"
        "    explanation: the pool has no free connection\n"
        "    remediation: raise acme.pool.size\n",
        encoding="utf-8",
    )
    extended = load_catalogue([rules])
    log = (
        "ERROR Main: AcmeClientError: request failed\n"
        "\tat com.acme.http.Client.send(Client.java:10)\n"
        "INFO Main: retrying\n"
        "ERROR Main: AcmeClientError: request failed\n"
        "\tat com.acme.pool.Pool.borrow(Pool.java:99)\n"
    )
    analysis = analyse_lines(log.splitlines(), catalogue=extended, source=SOURCE)
    # Then the finding is the second match, counted once
    found = [f for f in analysis.findings if f.rule_id == "acme_pool_exhausted"]
    assert [(f.line_no, f.count) for f in found] == [(4, 1)]


def test_a_handled_generic_headline_then_a_real_one_without_frames_does_not_break_the_scan(
    catalogue: Catalogue,
) -> None:
    # Given the generic headline under a WARN record (handled), then the same headline again outside it,
    # and no metastore frame anywhere
    head = "Error while instantiating 'org.apache.spark.sql.hive.HiveSessionStateBuilder'"
    lines = [
        "23/06/01 10:00:01 WARN SharedState: could not build the Hive session state, falling back",
        f"java.lang.IllegalArgumentException: {head}:",
        *(f"\tat org.apache.spark.Foo.bar{i}(Foo.scala:{i})" for i in range(45)),
        f"Caused by: java.lang.IllegalArgumentException: {head}:",
        "\tat org.apache.spark.sql.SparkSession.x(SparkSession.scala:1)",
    ]
    # When it is analysed, then it completes, and the frames rule does not stand
    assert _diagnose(catalogue, "\n".join(lines) + "\n").rule_id != "hive_session_metastore_frames"


def test_a_specific_cause_inside_the_stack_beats_the_frames_rule(catalogue: Catalogue) -> None:
    log = HIVE_SESSION + (
        "Caused by: java.lang.RuntimeException: java.lang.ClassNotFoundException: Class "
        "com.amazonaws.glue.catalog.metastore.AWSGlueDataCatalogHiveClientFactory not found\n"
    )
    assert _diagnose(catalogue, log).category == "dependency_conflict"

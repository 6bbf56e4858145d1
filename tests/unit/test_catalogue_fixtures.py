"""The catalogue names the right root cause for realistic EMR, Spark and YARN logs, and nothing for healthy ones.

Each fixture under ``tests/fixtures/logs/<category>/`` is one log (plain or gzip) that, analysed alone, must be
diagnosed as ``<category>``. ``expectations.yaml`` adds, for some fixtures, the user-code location or the rule
that must win, and marks the fixtures that show a known engine limitation.
"""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import pytest
import yaml

from emr_triage.analysis.catalogue import Catalogue, load_catalogue
from emr_triage.analysis.engine import analyse_stream
from emr_triage.analysis.verdict import diagnose
from emr_triage.models.analysis import Diagnosis, Finding

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "logs"
EXPECTATIONS: dict[str, dict[str, Any]] = yaml.safe_load((FIXTURES / "expectations.yaml").read_text("utf-8")) or {}

# Every root-cause category the catalogue can report from logs, plus the two verdicts without a cause rule.
CAUSE_CATEGORIES = (
    "oom_heap",
    "yarn_memory_kill",
    "executor_lost",
    "node_lost_spot",
    "disk_full",
    "shuffle_fetch_failed",
    "s3_access_denied",
    "s3_throttling",
    "input_not_found",
    "sql_analysis_error",
    "dependency_conflict",
    "python_error",
    "driver_result_size",
    "kryo_buffer",
    "task_not_serializable",
    "app_killed_or_am_failed",
    "metastore_unavailable",
    "broadcast_timeout",
    "too_many_open_files",
    "permission_denied",
    "network_error",
    "bootstrap_failure",
    "capacity_unavailable",
    "output_already_exists",
    "kerberos_auth",
    "data_corruption",
)
VERDICTS = (*CAUSE_CATEGORIES, "other", "no_failure")


def _fixture_paths() -> list[Path]:
    return sorted(p for p in FIXTURES.rglob("*") if p.is_file() and p.name.endswith((".log", ".log.gz")))


def _key(path: Path) -> str:
    return path.relative_to(FIXTURES).as_posix()


def _param(path: Path) -> Any:
    key = _key(path)
    reason = EXPECTATIONS.get(key, {}).get("xfail")
    marks = [pytest.mark.xfail(reason=reason, strict=False)] if reason else []
    return pytest.param(path, id=key, marks=marks)


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return load_catalogue()


def _analyse(catalogue: Catalogue, data: bytes, source: str) -> tuple[list[Finding], Diagnosis]:
    analysis, read = analyse_stream([data], catalogue=catalogue, source=source)
    return analysis.findings, diagnose(analysis.findings, catalogue, [read])


def _describe(findings: list[Finding]) -> str:
    return ", ".join(f"{f.rule_id}({f.kind}, rank {f.rank})@{f.line_no}" for f in findings) or "no findings"


# ---------------------------------------------------------------------------------------------------
# Every fixture gets the category of its directory
# ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", [_param(p) for p in _fixture_paths()])
def test_fixture_is_diagnosed_as_its_category(catalogue: Catalogue, path: Path) -> None:
    # Given a real-world log saved under the category it must be diagnosed as
    expected_category = path.relative_to(FIXTURES).parts[0]
    expectations = EXPECTATIONS.get(_key(path), {})
    data = path.read_bytes()
    # When it is analysed alone
    findings, diagnosis = _analyse(catalogue, data, str(path))
    # Then the verdict is that category
    assert diagnosis.category == expected_category, (
        f"{_key(path)}: expected {expected_category}, got {diagnosis.category} "
        f"(root rule {diagnosis.rule_id}); findings: {_describe(findings)}"
    )
    # And the extra expectations hold: the winning rule and the user-code location
    if "rule_id" in expectations:
        assert diagnosis.rule_id == expectations["rule_id"], _describe(findings)
    if "location" in expectations:
        assert diagnosis.location is not None, f"no location found; findings: {_describe(findings)}"
        assert expectations["location"] in diagnosis.location


def test_expectations_name_existing_fixtures_and_known_keys() -> None:
    # Given the expectations file
    keys = {_key(p) for p in _fixture_paths()}
    # Then every entry names a fixture and only known expectations
    for name, expected in EXPECTATIONS.items():
        assert name in keys, f"expectations.yaml names a missing fixture: {name}"
        assert set(expected) <= {"location", "rule_id", "xfail"}, name


def test_fixture_directories_are_known_verdicts() -> None:
    # Given the fixture tree
    directories = {p.relative_to(FIXTURES).parts[0] for p in _fixture_paths()}
    # Then every directory is a category the engine can report
    assert directories <= set(VERDICTS), directories - set(VERDICTS)


# ---------------------------------------------------------------------------------------------------
# Coverage of the catalogue
# ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("category", VERDICTS)
def test_every_category_has_a_rule_and_a_fixture(catalogue: Catalogue, category: str) -> None:
    # Given a category the on-call engineer can be told
    fixtures = list((FIXTURES / category).glob("*.log*"))
    # Then at least one fixture shows it
    assert fixtures, f"no fixture for {category}"
    # And a cause rule reports it (other: a symptom rule; no_failure: a success marker)
    kinds = {"other": "symptom", "no_failure": "success"}
    assert any(r.category == category and r.kind == kinds.get(category, "cause") for r in catalogue.rules), category


def test_healthy_fixtures_are_enough_and_varied() -> None:
    # Given the healthy logs
    healthy = list((FIXTURES / "no_failure").glob("*.log*"))
    # Then there are at least eight of them
    assert len(healthy) >= 8


# ---------------------------------------------------------------------------------------------------
# Lines common in healthy runs never become a verdict without a failure
# ---------------------------------------------------------------------------------------------------
def _without_success_markers(catalogue: Catalogue, text: str) -> str:
    markers = [r for r in catalogue.rules if r.kind == "success"]
    return "\n".join(line for line in text.splitlines() if not any(r.matches(line) for r in markers)) + "\n"


HEALTHY_WITH_MARKER = [
    "no_failure/am_cluster_mode_succeeded_with_noise.log",
    "no_failure/recovered_lost_node_then_succeeded.log",
    "no_failure/step_controller_succeeded.log",
    "no_failure/client_report_final_status_succeeded.log",
    "no_failure/mapreduce_streaming_completed.log",
]


@pytest.mark.parametrize("name", HEALTHY_WITH_MARKER)
def test_healthy_log_without_its_success_marker_reports_no_requires_failure_cause(
    catalogue: Catalogue, name: str
) -> None:
    # Given a healthy log whose success marker has been removed
    text = _without_success_markers(catalogue, (FIXTURES / name).read_text("utf-8"))
    assert "SUCCEEDED" not in text.replace("final status: UNDEFINED", "")
    # When it is analysed
    findings, diagnosis = _analyse(catalogue, text.encode(), name)
    # Then no line that healthy runs also print (lost executors, fetch failures, network blips) is the verdict
    root = next((f for f in findings if f.rule_id == diagnosis.rule_id), None)
    assert root is None or not root.requires_failure, _describe(findings)
    assert diagnosis.category in {"no_failure", "node_lost_spot"}, _describe(findings)


def test_requires_failure_lines_alone_are_no_failure(catalogue: Catalogue) -> None:
    # Given a log that only shows lost executors, a fetch failure and connection resets, and no failed job
    name = "no_failure/recovered_lost_node_then_succeeded.log"
    lines = (FIXTURES / name).read_text("utf-8").splitlines()
    kept = [ln for ln in lines if "*lost* node" not in ln and "Final app status" not in ln and "SUCCEEDED" not in ln]
    findings, diagnosis = _analyse(catalogue, ("\n".join(kept) + "\n").encode(), name)
    # Then findings exist, all of them requires_failure, and the verdict is no_failure
    assert findings, "the fixture should still show lost executors and fetch failures"
    assert all(f.requires_failure for f in findings if f.kind == "cause"), _describe(findings)
    assert diagnosis.category == "no_failure", _describe(findings)


def test_the_same_lines_with_a_failed_job_are_a_failure(catalogue: Catalogue) -> None:
    # Given the same recovered-looking lines, but the job then aborts
    text = (
        "23/05/04 10:04:59 ERROR YarnScheduler: Lost executor 7 on ip-10-0-1-23.ec2.internal: Executor heartbeat "
        "timed out after 161302 ms\n"
        "23/05/04 10:11:37 ERROR TaskSetManager: Task 41 in stage 9.0 failed 4 times; aborting job\n"
    )
    # When it is analysed
    findings, diagnosis = _analyse(catalogue, text.encode(), "driver.log")
    # Then the lost executor is the root cause
    assert diagnosis.category == "executor_lost", _describe(findings)


def test_gzip_fixtures_are_real_gzip() -> None:
    # Given the gzip fixtures
    for path in FIXTURES.rglob("*.log.gz"):
        # Then each one decompresses to text
        assert gzip.decompress(path.read_bytes()).decode("utf-8")

"""The failure catalogue: the shipped rules load, match real log wording, and bad rule files are refused."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from emr_triage.analysis.catalogue import Catalogue, Rule, load_catalogue
from emr_triage.exceptions import CatalogueError


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return load_catalogue()


# Real wording, per rule, from shared/reference/failure-signatures.md (Spark 2 and 3, Hadoop 2 and 3, EMR).
EXAMPLES: dict[str, list[str]] = {
    "node_lost_spot": [
        "23/05/04 10:05:00 WARN YarnAllocator: Container released on a *lost* node",
        "Application application_1683190000000_0007 failed 1 times due to AM Container for "
        "appattempt_1683190000000_0007_000001 exited with  exitCode: -100",
        "23/05/04 10:05:00 WARN YarnAllocator: Container marked as failed: container_1683190000000_0007_01_000004 "
        "on host: ip-10-0-1-23.ec2.internal. Exit status: -100. Diagnostics: Container released on a *lost* node.",
        "23/05/04 10:05:00 INFO ExecutorMonitor: Executor decommission: Spot instance interruption",
        "23/05/04 10:05:00 INFO YarnAllocator: Yarn node state updated for host ip-10-0-1-23.ec2.internal "
        "to DECOMMISSIONING",
    ],
    "yarn_memory_kill": [
        # Spark 3
        "Container killed by YARN for exceeding physical memory limits. 5.5 GB of 5.5 GB physical memory used. "
        "Consider boosting spark.executor.memoryOverhead.",
        # Spark 2
        "Container killed by YARN for exceeding memory limits. 33.2 GB of 33 GB physical memory used. Consider "
        "boosting spark.yarn.executor.memoryOverhead or disabling yarn.nodemanager.vmem-check-enabled because "
        "of YARN-4714.",
        "container killed by yarn for exceeding virtual memory limits",
        # Hadoop 3 NodeManager
        "Container [pid=4242,containerID=container_1683190000000_0007_01_000002] is running 123456789B beyond "
        "the 'PHYSICAL' memory limit. Current usage: 5.6 GB of 5.5 GB physical memory used; 7.2 GB of 27.5 GB "
        "virtual memory used. Killing container.",
        # Hadoop 2 NodeManager
        "Container [pid=4242,containerID=container_1683190000000_0007_01_000002] is running beyond virtual "
        "memory limits. Current usage: 1.1 GB of 2 GB physical memory used; 4.3 GB of 4.2 GB virtual memory used.",
    ],
    "oom_heap": [
        "java.lang.OutOfMemoryError: Java heap space",
        "23/05/04 10:05:00 ERROR Executor: Exception in task 3.0 in stage 4.0 (TID 41): java.lang.OutOfMemoryError: "
        "GC overhead limit exceeded",
        "# java.lang.OutOfMemoryError: Java heap space",
        "MemoryError",
        'Exception in thread "dispatcher-event-loop-1" java.lang.OutOfMemoryError: GC overhead limit exceeded',
    ],
    "disk_full": [
        "java.io.IOException: No space left on device",
        "Most of the disks failed. 1/1 local-dirs usable space is below utilization percentage/no more usable space",
        "23/05/04 10:05:00 ERROR DiskBlockManager: Failed to create local dir in /mnt/yarn/usercache/hadoop/"
        "appcache/application_1683190000000_0007. Ignoring this directory.",
    ],
    "s3_access_denied": [
        "com.amazonaws.services.s3.model.AmazonS3Exception: Access Denied (Service: Amazon S3; Status Code: 403; "
        "Error Code: AccessDenied; Request ID: 7TQW3Y2KB8AH)",
        "Caused by: java.nio.file.AccessDeniedException: s3://example-bucket/out/part-0000.parquet: PutObject",
        "User: arn:aws:sts::123456789012:assumed-role/EMR_EC2_DefaultRole/i-0abc is not authorized to perform: "
        "s3:PutObject on resource: arn:aws:s3:::example-bucket/out/part-0000.parquet",
    ],
    "input_not_found": [
        "org.apache.spark.sql.AnalysisException: Path does not exist: s3://acme-data/raw/2023-05-04",
        "[PATH_NOT_FOUND] Path does not exist: s3://acme-data/raw/2023-05-04.",
        "org.apache.hadoop.mapred.InvalidInputException: Input path does not exist: hdfs:///data/in",
        "org.apache.hadoop.mapred.InvalidInputException: Input Pattern s3://acme-data/raw/*.csv matches 0 files",
    ],
    "output_already_exists": [
        "org.apache.hadoop.mapred.FileAlreadyExistsException: Output directory s3://acme-curated/sales/daily "
        "already exists",
        '[PATH_ALREADY_EXISTS] Path s3://acme-curated/sales/daily already exists. Set mode as "overwrite" to '
        "overwrite the existing path.",
    ],
    "sql_analysis_error": [
        "[UNRESOLVED_COLUMN.WITH_SUGGESTION] A column or function parameter with name `amount` cannot be resolved.",
        "pyspark.errors.exceptions.captured.AnalysisException: [TABLE_OR_VIEW_NOT_FOUND] The table or view "
        "`sales`.`daily` cannot be found.",
        "org.apache.spark.sql.AnalysisException: cannot resolve 'amount' given input columns: [id, total]",
    ],
    "executor_lost": [
        "23/05/04 10:05:01 WARN TaskSetManager: Lost task 3.0 in stage 4.0 (TID 41) (ip-10-0-1-23.ec2.internal "
        "executor 2): ExecutorLostFailure (executor 2 exited caused by one of the running tasks) Reason: "
        "Container killed by YARN for exceeding physical memory limits.",
        "ExecutorLostFailure (executor 7 exited unrelated to the running tasks) Reason: Container marked as failed",
        "23/05/04 10:05:00 ERROR YarnScheduler: Lost executor 2 on ip-10-0-1-23.ec2.internal: Container killed by "
        "YARN for exceeding memory limits",
        "Executor heartbeat timed out after 130023 ms",
        "23/05/04 10:05:00 WARN HeartbeatReceiver: Removing executor 5 with no recent heartbeats: 160000 ms "
        "exceeds timeout 120000 ms",
    ],
    "python_error": [
        "Traceback (most recent call last):",
        "org.apache.spark.api.python.PythonException: Traceback (most recent call last):",
    ],
    "spark_job_aborted": [
        "org.apache.spark.SparkException: Job aborted due to stage failure: Task 3 in stage 4.0 failed 4 times, "
        "most recent failure: Lost task 3.3 in stage 4.0 (TID 57)",
        "23/05/04 10:05:02 ERROR TaskSetManager: Task 3 in stage 4.0 failed 4 times; aborting job",
        "org.apache.spark.SparkException: Job 2 cancelled because SparkContext was shut down",
    ],
    "application_failed": [
        'Exception in thread "main" org.apache.spark.SparkException: Application application_1683190000000_0007 '
        "finished with failed status",
        "23/05/04 10:05:03 INFO ApplicationMaster: Final app status: FAILED, exitCode: 15, (reason: User class "
        "threw exception: java.lang.RuntimeException: boom)",
        "23/05/04 10:05:02 ERROR ApplicationMaster: User class threw exception: java.lang.RuntimeException: boom",
        "23/05/04 10:05:03 ERROR ApplicationMaster: User application exited with status 1",
        "2023-05-04T10:05:04.123Z INFO Step failed with exitCode 1 and took 35 seconds",
    ],
}

# Lines a rule must not take as evidence: real false positives (failure-signatures §4.14) and near misses.
NOT_EVIDENCE: list[tuple[str, str]] = [
    (
        "oom_heap",
        "23/05/04 10:00:01 WARN Client: launching with '-XX:OnOutOfMemoryError=kill -9 %p' -XX:+ExitOnOutOfMemoryError",
    ),
    (
        "oom_heap",
        'exec /bin/bash -c "LD_LIBRARY_PATH=/usr/lib/hadoop/lib/native {{JAVA_HOME}}/bin/java -server '
        "-Xmx4743m '-XX:OnOutOfMemoryError=kill %p' -XX:+HeapDumpOnOutOfMemoryError "
        'org.apache.spark.executor.YarnCoarseGrainedExecutorBackend"',
    ),
    ("oom_heap", "ValueError: MemoryError is not raised here"),
    (
        "node_lost_spot",
        "23/05/04 10:10:00 INFO YarnAllocator: Completed container container_1683190000000_0008_01_000003"
        " on host: ip-10-0-1-23.ec2.internal (state: COMPLETE, exit status: 143)",
    ),
    ("node_lost_spot", "Exit status: -1000"),
    ("yarn_memory_kill", "Container killed on request. Exit code is 143"),
    (
        "executor_lost",
        "23/05/04 10:10:00 INFO ExecutorAllocationManager: Removing executor 2 because it has been "
        "idle for 60 seconds (new desired total will be 1)",
    ),
    ("application_failed", "23/05/04 10:10:01 INFO ApplicationMaster: Final app status: SUCCEEDED, exitCode: 0"),
    ("application_failed", "2023-05-04T10:10:04.123Z INFO Step succeeded with exitCode 0 and took 35 seconds"),
    ("application_failed", "23/05/04 10:10:01 INFO ApplicationMaster: User application exited with status 0"),
]

# A stack frame naming an exception class is not the exception itself (dbx-an test_frame_line_is_never_a_header).
FRAME_GUARDS: list[tuple[str, str]] = [
    ("oom_heap", "\tat java.lang.OutOfMemoryError.<init>(OutOfMemoryError.java:48)"),
    ("sql_analysis_error", "\tat com.acme.errors.AnalysisExceptionMapper.map(AnalysisExceptionMapper.java:12)"),
]


def _yaml_rule(rule_id: str = "acme_quota", **overrides: str) -> str:
    fields = {
        "id": rule_id,
        "category": "acme_quota",
        "kind": "cause",
        "rank": "25",
        "severity": "high",
        "retryable": "true",
        "title": "The Acme quota service refused the job",
        "patterns": "['AcmeQuotaExceededException']",
        "explanation": "The job used more than its daily Acme quota.",
        "remediation": "Ask the Acme team for more quota or rerun tomorrow.",
        **overrides,
    }
    first, *rest = [f"{name}: {value}" for name, value in fields.items() if value != "<omit>"]
    return "  - " + first + "\n" + "".join(f"    {line}\n" for line in rest)


def _rules_file(tmp_path: Path, body: str, name: str = "acme-rules.yaml") -> Path:
    path = tmp_path / name
    path.write_text(body, encoding="utf-8")
    return path


# ---------------------------------------------------------------------------------------------------
# The shipped catalogue
# ---------------------------------------------------------------------------------------------------
def test_shipped_catalogue_loads_with_unique_ids_and_complete_rules(catalogue: Catalogue) -> None:
    # Given the catalogue shipped in the layer
    # When it is loaded (the fixture)
    ids = [rule.id for rule in catalogue.rules]
    # Then it has a version, unique ids, and every rule has patterns and words for the on-call engineer
    assert catalogue.version == "2026.11.1"
    assert len(ids) == len(set(ids)) >= 10
    for rule in catalogue.rules:
        assert rule.patterns, rule.id
        assert all(pattern.strip() for pattern in rule.patterns), rule.id
        assert len(rule.remediation.strip()) > 10, rule.id
        assert len(rule.explanation.strip()) > 10, rule.id
        assert rule.severity in {"critical", "high", "medium", "low"}, rule.id


def test_symptom_rules_rank_after_every_cause(catalogue: Catalogue) -> None:
    # Given the shipped rules
    causes = [r.rank for r in catalogue.rules if r.kind == "cause"]
    symptoms = [r for r in catalogue.rules if r.kind == "symptom"]
    # Then symptoms exist, are reported as `other`, and rank after every cause
    assert {r.id for r in symptoms} == {"spark_job_aborted", "application_failed"}
    assert all(r.category == "other" and r.retryable is None for r in symptoms)
    assert min(r.rank for r in symptoms) > max(causes)


def test_every_shipped_rule_has_examples_here(catalogue: Catalogue) -> None:
    # Given the shipped rules and this file's real-world examples
    # Then a new rule cannot ship without an example line in this test
    assert set(EXAMPLES) == {rule.id for rule in catalogue.rules}


@pytest.mark.parametrize(
    ("rule_id", "line"),
    [(rule_id, line) for rule_id, lines in EXAMPLES.items() for line in lines],
    ids=[f"{rule_id}-{n}" for rule_id, lines in EXAMPLES.items() for n in range(len(lines))],
)
def test_shipped_rule_matches_real_wording(catalogue: Catalogue, rule_id: str, line: str) -> None:
    # Given a line worded the way Spark, YARN or EMR word it
    rule = catalogue.get(rule_id)
    assert rule is not None
    # When the rule is applied
    # Then it takes the line as evidence
    assert rule.matches(line)


@pytest.mark.parametrize(
    ("rule_id", "line"), NOT_EVIDENCE, ids=[f"{rule_id}-{n}" for n, (rule_id, _) in enumerate(NOT_EVIDENCE)]
)
def test_shipped_rule_ignores_known_false_positives(catalogue: Catalogue, rule_id: str, line: str) -> None:
    # Given a line that looks like, but is not, evidence of the rule
    rule = catalogue.get(rule_id)
    assert rule is not None
    # Then the rule does not take it
    assert not rule.matches(line)


@pytest.mark.parametrize(("rule_id", "line"), FRAME_GUARDS, ids=[rule_id for rule_id, _ in FRAME_GUARDS])
def test_stack_frame_with_an_exception_class_name_is_not_evidence(
    catalogue: Catalogue, rule_id: str, line: str
) -> None:
    # Given a stack frame whose class name contains the rule's exception name
    rule = catalogue.get(rule_id)
    assert rule is not None
    # Then the pattern alone would match it, but the guard rejects it
    assert rule.matcher.search(line) is not None
    assert rule.guard is not None
    assert not rule.matches(line)


def test_oom_flags_in_a_launch_command_are_rejected_by_the_guard(catalogue: Catalogue) -> None:
    # Given a JVM launch command that carries both the OOM flags and an OOM class reference
    line = (
        "YarnAllocator: Launching container with command: java -Xmx4g '-XX:OnOutOfMemoryError=kill -9 %p' "
        "-Dspark.oom.class=java.lang.OutOfMemoryError"
    )
    rule = catalogue.get("oom_heap")
    assert rule is not None
    # Then the flag guard keeps it from being an OOM
    assert rule.matcher.search(line) is not None
    assert not rule.matches(line)


def test_emr_reasons_load(catalogue: Catalogue) -> None:
    # Given EMR's own cluster reason codes in the catalogue
    reasons = catalogue.emr_reasons
    # Then the codes EMR sends are known, with a category and advice
    assert {
        "BOOTSTRAP_FAILURE",
        "INSTANCE_FAILURE",
        "INSTANCE_FLEET_TIMEOUT",
        "VALIDATION_ERROR",
        "INTERNAL_ERROR",
        "STEP_FAILURE",
    } <= set(reasons)
    bootstrap = reasons["BOOTSTRAP_FAILURE"]
    assert bootstrap.category == "bootstrap_failure"
    assert bootstrap.retryable is False
    assert "bootstrap-actions" in bootstrap.remediation
    assert reasons["INSTANCE_FAILURE"].category == "node_lost_spot"
    assert reasons["INSTANCE_FAILURE"].retryable is True


def test_get_of_an_unknown_id_is_none(catalogue: Catalogue) -> None:
    assert catalogue.get("no_such_rule") is None


# ---------------------------------------------------------------------------------------------------
# Users' rules files
# ---------------------------------------------------------------------------------------------------
def test_user_file_adds_a_rule_and_overrides_an_existing_id(tmp_path: Path, catalogue: Catalogue) -> None:
    # Given a user file with a new rule and a replacement for oom_heap
    body = (
        "version: 3\nrules:\n"
        + _yaml_rule()
        + _yaml_rule("oom_heap", category="oom_heap", title="'Acme: heap exhausted'", patterns="['AcmeHeapGone']")
        + "emr_reasons:\n  ACME_REASON:\n    category: other\n    severity: low\n    retryable: null\n"
        "    title: Acme reason\n    remediation: Ask Acme.\n"
    )
    path = _rules_file(tmp_path, body)
    # When the catalogue is loaded with it
    merged = load_catalogue([path])
    # Then the new rule is added at the end, and oom_heap is replaced in place
    assert [r.id for r in merged.rules] == [*(r.id for r in catalogue.rules), "acme_quota"]
    added = merged.get("acme_quota")
    assert added is not None
    assert added.matches("com.acme.AcmeQuotaExceededException: quota of 100 jobs reached")
    replaced = merged.get("oom_heap")
    assert replaced is not None
    assert replaced.title == "Acme: heap exhausted"
    assert replaced.matches("AcmeHeapGone")
    assert not replaced.matches("java.lang.OutOfMemoryError: Java heap space")
    # And its version says which files made it, and EMR reasons are merged
    assert merged.version == "2026.11.1+acme-rules@3"
    assert "ACME_REASON" in merged.emr_reasons
    assert "BOOTSTRAP_FAILURE" in merged.emr_reasons


def test_rule_not_patterns_and_case_sensitivity_from_a_user_file(tmp_path: Path) -> None:
    # Given a case-sensitive user rule with a guard
    body = "version: 1\nrules:\n" + _yaml_rule(
        patterns="['QuotaExceeded']", not_patterns="['^\\s+at\\s']", ignore_case="false"
    )
    rule = load_catalogue([_rules_file(tmp_path, body)]).get("acme_quota")
    assert rule is not None
    # Then it matches the exact case only, and never a stack frame
    assert rule.matches("ERROR QuotaExceeded for tenant 7")
    assert not rule.matches("ERROR quotaexceeded for tenant 7")
    assert not rule.matches("\tat com.acme.QuotaExceeded.check(QuotaExceeded.java:3)")


@pytest.mark.parametrize(
    ("rule_overrides", "expected"),
    [
        pytest.param(
            {"patterns": "['AcmeQuota(Exceeded']"},
            r"rule 'acme_quota': patterns\[1\] 'AcmeQuota\(Exceeded' is not a valid regular expression: "
            r"missing \), unterminated subpattern",
            id="invalid-regex",
        ),
        pytest.param(
            {"not_patterns": "['[unclosed']"},
            r"rule 'acme_quota': not_patterns\[1\] '\[unclosed' is not a valid regular expression",
            id="invalid-guard-regex",
        ),
        pytest.param(
            {"remediation": "<omit>"},
            r"rule 'acme_quota': remediation: Field required",
            id="missing-field",
        ),
        pytest.param(
            {"colour": "red"},
            r"rule 'acme_quota': colour: Extra inputs are not permitted",
            id="unknown-field",
        ),
        pytest.param(
            {"severity": "urgent"},
            r"rule 'acme_quota': severity: Input should be 'critical', 'high', 'medium' or 'low'",
            id="bad-severity",
        ),
        pytest.param(
            {"patterns": "[]"},
            r"rule 'acme_quota': patterns: List should have at least 1 item",
            id="no-patterns",
        ),
        pytest.param(
            {"kind": "hunch"},
            r"rule 'acme_quota': kind: Input should be 'cause', 'symptom' or 'success'",
            id="bad-kind",
        ),
        pytest.param(
            {"rank": "5000"},
            r"rule 'acme_quota': rank: Input should be less than or equal to 1000",
            id="rank-out-of-range",
        ),
        pytest.param(
            {"id": "Acme-Quota"},
            r"rule 'Acme-Quota': id: String should match pattern",
            id="bad-id",
        ),
    ],
)
def test_bad_rule_is_rejected_naming_file_rule_and_problem(
    tmp_path: Path, rule_overrides: dict[str, str], expected: str
) -> None:
    # Given a user file with one bad rule
    path = _rules_file(tmp_path, "version: 1\nrules:\n" + _yaml_rule(**rule_overrides))
    # When the catalogue is loaded with it
    with pytest.raises(CatalogueError) as caught:
        load_catalogue([path])
    # Then the error names the file, the rule and the problem
    message = str(caught.value)
    assert message.startswith(f"rules file {path}: ")
    assert re.search(expected, message), message


def test_missing_rule_id_is_named_by_position(tmp_path: Path) -> None:
    # Given a second rule without an id
    body = "version: 1\nrules:\n" + _yaml_rule() + _yaml_rule("<omit>")
    # When it is loaded
    with pytest.raises(CatalogueError, match=r"rule '#2': id: Field required"):
        load_catalogue([_rules_file(tmp_path, body)])


def test_duplicate_id_in_one_file_is_rejected(tmp_path: Path) -> None:
    # Given a file defining the same id twice
    body = "version: 1\nrules:\n" + _yaml_rule() + _yaml_rule(title="Second definition")
    path = _rules_file(tmp_path, body)
    # When it is loaded
    # Then the error names the rule and says it is defined twice
    with pytest.raises(
        CatalogueError, match=rf"^rules file {re.escape(str(path))}: rule 'acme_quota' is defined twice$"
    ):
        load_catalogue([path])


def test_invalid_yaml_is_rejected(tmp_path: Path) -> None:
    # Given a file that is not YAML
    path = _rules_file(tmp_path, "version: 1\nrules:\n  - id: [unclosed\n")
    # When it is loaded
    with pytest.raises(CatalogueError, match=rf"^rules file {re.escape(str(path))}: not valid YAML: "):
        load_catalogue([path])


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param("", "file: Input should be a valid dictionary", id="empty-file"),
        pytest.param("rules: []\n", "version: Field required", id="no-version"),
        pytest.param("version: 1\nrules: {a: 1}\n", "rules: Input should be a valid list", id="rules-not-a-list"),
        pytest.param("version: 1\nrules: []\nextras: 1\n", "extras: Extra inputs are not permitted", id="unknown-key"),
        pytest.param(
            "version: 1\nrules:\n  - just text\n", "rules.0: Input should be a valid dictionary", id="rule-text"
        ),
    ],
)
def test_badly_shaped_file_is_rejected(tmp_path: Path, body: str, expected: str) -> None:
    # Given a YAML file of the wrong shape
    path = _rules_file(tmp_path, body)
    # When it is loaded
    with pytest.raises(CatalogueError) as caught:
        load_catalogue([path])
    # Then the error says what shape is expected and what is wrong
    assert "expected 'version', a list of 'rules' and optional 'emr_reasons'" in str(caught.value)
    assert expected in str(caught.value)


@pytest.mark.parametrize("name", ["missing.yaml", "."], ids=["missing", "directory"])
def test_unreadable_rules_path_is_rejected(tmp_path: Path, name: str) -> None:
    # Given a path that cannot be read as a file
    path = tmp_path / name
    # When it is loaded
    with pytest.raises(CatalogueError, match=rf"^rules file {re.escape(str(path))}: cannot be read \(.+\)$"):
        load_catalogue([path])


@pytest.mark.parametrize(
    "patterns",
    [
        "['(?i)acmequotaexceeded']",
        "['(?P<n>\\d+) AcmeQuotaExceeded', '(?P<n>\\d+) AcmeQuotaRefused']",
    ],
    ids=["inline-global-flag", "repeated-group-name"],
)
def test_patterns_valid_alone_are_usable_together(tmp_path: Path, patterns: str) -> None:
    # Given a user rule whose patterns each compile on their own
    path = _rules_file(tmp_path, "version: 1\nrules:\n" + _yaml_rule(patterns=patterns))

    # When it is loaded and applied to a line
    def load_and_match() -> bool:
        rule = load_catalogue([path]).get("acme_quota")
        assert isinstance(rule, Rule)
        return rule.matches("12 AcmeQuotaExceeded")

    # Then it either works, or is refused at load time naming the rule; never a raw re.error mid-analysis
    try:
        accepted_and_working = load_and_match()
    except CatalogueError as exc:
        accepted_and_working = "acme_quota" in str(exc)
    assert accepted_and_working is True

"""`emr-triage analyze PATH...`: files, folders and s3:// URIs in; a report or one JSON object out.

The log lines are written here with well-known failure strings; the tests name catalogue rules by id and
category only, never by their titles or explanations (the catalogue's wording changes).
"""

from __future__ import annotations

import gzip
import io
import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from moto import mock_aws
from tests.integration.conftest import DEMO, EVENTS

from emr_triage import cli
from emr_triage.aws.clients import reset_clients
from emr_triage.cli import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, main
from emr_triage.local import inputs
from emr_triage.local.output import short_source
from emr_triage.logs.locations import log_weight

YARN_KILL = (
    "26/11/20 02:13:01 ERROR YarnScheduler: Lost executor 7 on ip-10-0-1-23.ec2.internal: Container killed by "
    "YARN for exceeding physical memory limits. 6.6 GB of 6.6 GB physical memory used.\n"
)
HEAP_OOM = (
    "26/11/20 02:10:00 INFO Executor: Running task 3.0 in stage 1.0 (TID 3)\n"
    "26/11/20 02:13:01 ERROR Executor: Exception in task 3.0 in stage 1.0 (TID 3)\n"
    "java.lang.OutOfMemoryError: Java heap space\n"
    "\tat java.util.Arrays.copyOf(Arrays.java:3236)\n"
)
TRACEBACK = (
    "Traceback (most recent call last):\n"
    '  File "/home/hadoop/daily_job.py", line 12, in <module>\n'
    "    main()\n"
    "ValueError: unexpected row\n"
)
HEALTHY = "26/11/20 02:00:00 INFO SparkContext: Running Spark version 3.5.1\n"
ANSI = re.compile(r"\x1b\[[0-9;]*m")
JSON_KEYS = {
    "category": str,
    "title": str,
    "severity": str,
    "retryable": (bool, type(None)),
    "confidence": float,
    "summary": str,
    "remediation": (str, type(None)),
    "user_frame": (str, type(None)),
    "fingerprint": (str, type(None)),
    "exit_codes": list,
    "secondary": list,
    "secondary_findings": list,
    "evidence": list,
    "extract": list,
    "bytes_scanned": int,
    "partial": bool,
    "explanation": (str, type(None)),
    "rule_id": (str, type(None)),
    "partial_notes": list,
    "catalogue_version": str,
    "inputs": list,
    "application_ids": list,
}


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(list(argv), out=out)
    return code, out.getvalue()


def run_json(*argv: str) -> tuple[int, dict[str, Any]]:
    code, output = run("analyze", "--json", *argv)
    document: dict[str, Any] = json.loads(output)
    return code, document


def write_gzip(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(text.encode()))
    return path


def rules_file(folder: Path, *rules: dict[str, Any]) -> Path:
    path = folder / "my-rules.yaml"
    path.write_text(yaml.safe_dump({"version": 7, "rules": list(rules)}))
    return path


ACME_RULE = {
    "id": "acme_quota",
    "category": "acme_quota",
    "rank": 5,
    "severity": "high",
    "retryable": True,
    "title": "ACME API quota exhausted",
    "patterns": ["AcmeQuotaExceeded"],
    "explanation": "The ACME API refused more calls today.",
    "remediation": "Ask ACME for a higher quota.",
}


class FakeTerminal(io.StringIO):
    """A stderr that says it is a terminal."""

    def isatty(self) -> bool:
        return True


# ── files and folders ──────────────────────────────────────────────────────────────────────────────


def test_a_plain_file_gets_a_readable_report(tmp_path: Path) -> None:
    # Given a plain-text log with a YARN memory kill
    log = tmp_path / "stderr"
    log.write_text(HEALTHY + YARN_KILL)
    # When it is analysed
    code, output = run("analyze", str(log))
    # Then the report has its header, the verdict with its nature and confidence, and the evidence line
    assert code == EXIT_OK
    assert re.match(r"Analysed 1 log · [\d.]+ MB scanned in [\d.]+ s · catalogue \S+\n", output)
    assert re.search(r"verdict\s+yarn_memory_kill: ", output)
    assert re.search(r"(critical|high|medium|low) severity · .+ · confidence \d\.\d\d", output)
    assert f"{short_source(str(log))}:2  {YARN_KILL.strip()}" in output
    assert re.search(r"what to do\s+\S", output) and re.search(r"fingerprint\s+[0-9a-f]+", output)


def test_a_gzip_file_is_read_like_a_plain_one(tmp_path: Path) -> None:
    # Given the same log, gzip-compressed, under a name that does not say so
    log = write_gzip(tmp_path / "stderr", HEALTHY + HEAP_OOM)
    # When it is analysed
    code, document = run_json(str(log))
    # Then it is decompressed and diagnosed, and the report counts the text bytes
    assert code == EXIT_OK
    assert document["category"] == "oom_heap"
    assert document["bytes_scanned"] == len((HEALTHY + HEAP_OOM).encode())
    assert document["inputs"][0]["bytes_read"] == log.stat().st_size


def test_in_a_folder_tree_the_drivers_cause_wins_over_an_executors(tmp_path: Path) -> None:
    # Given a downloaded EMR log tree where an executor log (read first: containers/ sorts before steps/)
    # and the step's stderr (the driver, client mode) show the same failure, plus files that are not logs
    tree = tmp_path / "j-1ABCDEFGHIJK"
    executor = write_gzip(
        tree / "containers/application_1_0001/container_1_0001_01_000002/stderr.gz", HEALTHY + HEAP_OOM
    )
    driver = write_gzip(tree / "steps/s-1ABCDEFGHIJK/stderr.gz", HEALTHY + HEAP_OOM + TRACEBACK)
    (tree / "steps/s-1ABCDEFGHIJK/.stderr.gz.crc").write_bytes(b"\x00\x01crc")
    (tree / "steps/s-1ABCDEFGHIJK/_SUCCESS").write_text("")
    (tree / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    # When the folder is analysed
    code, document = run_json(str(tmp_path))
    # Then only the two logs were read, and the verdict points at the driver's log
    assert code == EXIT_OK
    assert [i["file"] for i in document["inputs"]] == [str(executor), str(driver)]
    assert document["category"] == "oom_heap"
    assert document["evidence"][0]["file"] == str(driver)
    assert "python_error" in document["secondary"]
    assert document["user_frame"] == "daily_job.py:12 in <module>"


def test_the_demo_scenarios_logs(tmp_path: Path) -> None:
    # When the saved demo logs are analysed
    code, output = run("analyze", str(DEMO / "logs"))
    # Then the memory kill is the verdict, read from all three logs
    assert code == EXIT_OK
    assert output.startswith("Analysed 3 logs ·")
    assert re.search(r"verdict\s+yarn_memory_kill", output)
    code, document = run_json(str(EVENTS / "logs" / "applications"))
    assert document["category"] == "s3_access_denied"


def test_json_has_every_key_with_its_type(tmp_path: Path) -> None:
    # Given a log with a cause, a user frame, evidence and an exit code
    log = tmp_path / "stderr"
    log.write_text(HEALTHY + HEAP_OOM + TRACEBACK + "26/11/20 02:14:00 ERROR ApplicationMaster: exit code 137\n")
    # When it is analysed with --json
    code, document = run_json(str(log))
    # Then every documented key is there with its type
    assert code == EXIT_OK
    for key, kind in JSON_KEYS.items():
        assert key in document, key
        assert isinstance(document[key], kind), (key, document[key])
    # And the lists hold objects with file/line
    evidence = document["evidence"]
    assert evidence[0] == {"file": str(log), "line": 4, "text": "java.lang.OutOfMemoryError: Java heap space"}
    assert [e["line"] for e in evidence] == list(range(4, 4 + len(evidence)))
    assert {"file", "line", "text", "repeat"} <= set(document["extract"][0])
    assert document["exit_codes"][0]["code"] == 137
    assert {"code", "signal", "meaning", "file", "line", "count"} == set(document["exit_codes"][0])
    assert document["secondary"] == list(dict.fromkeys(f["category"] for f in document["secondary_findings"]))
    assert document["inputs"] == [
        {
            "file": str(log),
            "bytes_read": log.stat().st_size,
            "bytes_scanned": log.stat().st_size,
            "lines": 10,
            "partial": False,
            "notes": [],
        }
    ]


def test_the_read_budget_is_16_gib_by_default_and_can_be_set(tmp_path: Path) -> None:
    # Given a log of a few KiB
    log = tmp_path / "stderr"
    log.write_text(HEALTHY * 100 + HEAP_OOM)
    # When it is analysed with the default budget, then with one smaller than the log
    code, whole = run_json(str(log))
    code_cut, cut = run_json("--max-gib", "0.000001", str(log))
    # Then the whole log is read by default, and the smaller budget cuts it and says so
    assert cli.build_parser().parse_args(["analyze", "x"]).max_gib == cli.DEFAULT_READ_BUDGET_GIB == 16
    assert code == code_cut == EXIT_OK
    assert whole["partial"] is False and whole["category"] == "oom_heap"
    assert cut["partial"] is True
    assert any("read budget of 1,073 bytes reached" in note for note in cut["partial_notes"]), cut["partial_notes"]


def test_a_second_run_reads_the_catalogue_back_from_the_cache(tmp_path: Path) -> None:
    # Given the cache folder the test environment points at, empty
    cache = Path(os.environ["EMR_TRIAGE_CACHE_DIR"])
    log = tmp_path / "stderr"
    log.write_text(HEAP_OOM)
    # When the same log is analysed twice
    first = run_json(str(log))
    assert (cache / "catalogue.json").is_file() and (cache / "hyperscan.db").is_file()
    second = run_json(str(log))
    # Then both runs say the same
    assert first == second


def test_an_empty_file_is_no_failure(tmp_path: Path) -> None:
    # Given an empty log
    log = tmp_path / "stderr"
    log.write_text("")
    # When it is analysed
    code, document = run_json(str(log))
    # Then it was read (nothing in it) and nothing failed; keys without a value are null
    assert code == EXIT_OK
    assert document["category"] == "no_failure"
    assert document["rule_id"] is None and document["user_frame"] is None and document["fingerprint"] is None
    assert document["evidence"] == [] and document["bytes_scanned"] == 0 and document["partial"] is False


# ── rules files ────────────────────────────────────────────────────────────────────────────────────


def test_a_rules_file_given_with_rules_adds_a_rule(tmp_path: Path) -> None:
    # Given a user rule for a failure our catalogue does not know
    rules = rules_file(tmp_path, ACME_RULE)
    log = tmp_path / "stderr"
    log.write_text("26/11/20 02:00:00 ERROR Main: com.acme.AcmeQuotaExceeded: daily limit reached\n")
    # When the log is analysed with --rules
    code, document = run_json("--rules", str(rules), str(log))
    # Then the user's rule gives the verdict, and the catalogue version says a user file is in force
    assert code == EXIT_OK
    assert document["category"] == "acme_quota" and document["title"] == "ACME API quota exhausted"
    assert document["catalogue_version"].endswith("+my-rules@7")


def test_a_rules_file_overrides_a_rule_of_ours(tmp_path: Path) -> None:
    # Given a user file that redefines our oom_heap rule with its own title and advice
    override = {
        **ACME_RULE,
        "id": "oom_heap",
        "category": "oom_heap",
        "retryable": False,
        "title": "Our team's heap advice",
        "patterns": ["OutOfMemoryError: Java heap space"],
        "remediation": "Page the data-platform team.",
    }
    rules = rules_file(tmp_path, override)
    log = tmp_path / "stderr"
    log.write_text(HEALTHY + HEAP_OOM)
    # When the log is analysed with --rules
    code, output = run("analyze", "--rules", str(rules), str(log))
    # Then the user's version of the rule is the one used
    assert code == EXIT_OK
    assert re.search(r"verdict\s+oom_heap: Our team's heap advice", output)
    assert "Page the data-platform team." in output


def test_the_rules_file_variable_is_used_and_rules_wins_over_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given EMR_TRIAGE_RULES_FILE naming a file with the ACME rule
    monkeypatch.setenv("EMR_TRIAGE_RULES_FILE", str(rules_file(tmp_path, ACME_RULE)))
    log = tmp_path / "stderr"
    log.write_text("26/11/20 02:00:00 ERROR Main: com.acme.AcmeQuotaExceeded: daily limit reached\n")
    # When the log is analysed without --rules
    code, document = run_json(str(log))
    # Then the variable's file is in force
    assert code == EXIT_OK and document["category"] == "acme_quota"
    # And an explicit --rules file is used instead of it
    other = tmp_path / "other"
    other.mkdir()
    renamed = rules_file(other, {**ACME_RULE, "category": "vendor_quota"})
    code, document = run_json("--rules", str(renamed), str(log))
    assert document["category"] == "vendor_quota"


def test_a_bad_rules_file_exits_2_naming_the_rule(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Given a rules file with an invalid regular expression in rule broken_rule
    rules = rules_file(tmp_path, {**ACME_RULE, "id": "broken_rule", "patterns": ["(unclosed"]})
    # When it is used
    code, output = run("analyze", "--rules", str(rules), str(DEMO / "logs"))
    # Then the command stops before reading anything, with one line naming the rule and the problem
    err = capsys.readouterr().err
    assert code == EXIT_BAD_INPUT and output == ""
    assert err.count("\n") == 1 and "broken_rule" in err and "not a valid regular expression" in err


def test_a_bad_rules_file_from_the_variable_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given EMR_TRIAGE_RULES_FILE naming a file with a rule missing its remediation
    broken = {k: v for k, v in ACME_RULE.items() if k != "remediation"}
    monkeypatch.setenv("EMR_TRIAGE_RULES_FILE", str(rules_file(tmp_path, broken)))
    # When the command runs
    code, _ = run("analyze", str(DEMO / "logs"))
    # Then it exits 2 naming the rule
    assert code == EXIT_BAD_INPUT and "acme_quota" in capsys.readouterr().err


# ── inputs that cannot be read ─────────────────────────────────────────────────────────────────────


def test_a_missing_path_alone_exits_1_with_the_reason(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # When the only input does not exist
    code, output = run("analyze", str(tmp_path / "nope.gz"))
    # Then nothing is reported, and one line on stderr says why
    err = capsys.readouterr().err
    assert code == EXIT_FAILED and output == ""
    assert err == f"emr-triage: error: no input could be read: {tmp_path / 'nope.gz'}: no such file or folder\n"


def test_an_unreadable_file_exits_1_with_the_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a log the operating system refuses to open (simulated: the tests may run as root)
    log = tmp_path / "stderr"
    log.write_text(YARN_KILL)
    real_open = Path.open

    def refuse(self: Path, *args: Any, **kwargs: Any) -> Any:
        if self == log:
            raise PermissionError(13, "Permission denied", str(self))
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", refuse)
    # When it is analysed
    code, _ = run("analyze", str(log))
    # Then the command exits 1 naming the file and the reason
    err = capsys.readouterr().err
    assert code == EXIT_FAILED and f"{log}: Permission denied" in err and err.count("\n") == 1


def test_a_binary_file_alone_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Given a file that is not text (e.g. a parquet file copied by mistake)
    data = tmp_path / "part-00000.parquet"
    data.write_bytes(b"PAR1" + bytes(range(256)) * 40)
    # When it is analysed
    code, output = run("analyze", str(data))
    # Then it counts as unreadable
    err = capsys.readouterr().err
    assert code == EXIT_FAILED and output == ""
    assert "binary" in err and str(data) in err


def test_an_empty_folder_exits_1_with_a_clear_message(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Given a folder holding only files that are not logs
    (tmp_path / "_SUCCESS").write_text("")
    # When it is analysed
    code, _ = run("analyze", str(tmp_path))
    # Then the message says the folder has no logs
    assert code == EXIT_FAILED and "no log files in this folder" in capsys.readouterr().err


def test_missing_and_good_inputs_exit_0_with_a_note(tmp_path: Path) -> None:
    # Given a good log, a missing one and a binary one
    good = tmp_path / "stderr"
    good.write_text(HEALTHY + YARN_KILL)
    binary = tmp_path / "core.bin"
    binary.write_bytes(bytes(range(256)) * 40)
    missing = tmp_path / "gone.gz"
    # When all three are analysed
    code, output = run("analyze", str(good), str(missing), str(binary))
    # Then the good log is diagnosed, and the report says what could not be read
    assert code == EXIT_OK
    assert output.startswith("Analysed 1 log (2 could not be read) ·")
    assert re.search(r"verdict\s+yarn_memory_kill", output)
    notes = " ".join(output[output.index("  partial ") :].split())
    assert f"partial {missing}: no such file or folder" in notes and f"{binary}: binary data" in notes
    # And the JSON marks the diagnosis partial with the same notes
    code, document = run_json(str(good), str(missing))
    assert code == EXIT_OK and document["partial"] is True
    assert document["partial_notes"] == [f"{missing}: no such file or folder"]
    assert [i["partial"] for i in document["inputs"]] == [False, True]


# ── colour and progress ────────────────────────────────────────────────────────────────────────────


def test_colour_only_when_asked_or_on_a_terminal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a failing log
    log = tmp_path / "stderr"
    log.write_text(YARN_KILL)
    # When the report goes to a StringIO (not a terminal): no escape codes
    assert "\x1b[" not in run("analyze", str(log))[1]
    # When --color always: the verdict is red and file:line dim
    _, coloured = run("analyze", "--color", "always", str(log))
    assert "\x1b[31m" in coloured and f"\x1b[2m{short_source(str(log))}:1\x1b[0m" in coloured
    assert ANSI.sub("", coloured).splitlines()[2:] == run("analyze", str(log))[1].splitlines()[2:]
    # When on a terminal: colour, unless NO_COLOR is set or --color never
    terminal = FakeTerminal()
    main(["analyze", str(log)], out=terminal)
    assert "\x1b[" in terminal.getvalue()
    monkeypatch.setenv("NO_COLOR", "1")
    terminal = FakeTerminal()
    main(["analyze", str(log)], out=terminal)
    assert "\x1b[" not in terminal.getvalue()
    terminal = FakeTerminal()
    monkeypatch.delenv("NO_COLOR")
    main(["analyze", "--color", "never", str(log)], out=terminal)
    assert "\x1b[" not in terminal.getvalue()


def test_a_no_failure_verdict_is_green(tmp_path: Path) -> None:
    log = tmp_path / "stderr"
    log.write_text(HEALTHY)
    _, output = run("analyze", "--color", "always", str(log))
    assert "\x1b[32m" in output and "\x1b[31m" not in output


@pytest.fixture
def large_input(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A log over the (lowered) progress-bar threshold, read in several chunks."""
    monkeypatch.setattr(cli, "PROGRESS_MIN_BYTES", 1 << 20)
    log = tmp_path / "stderr"
    log.write_text(HEALTHY * 40_000 + YARN_KILL)
    assert log.stat().st_size > 2 << 20
    return log


def test_a_progress_bar_on_a_terminals_stderr_for_a_large_input(
    large_input: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given stderr is a terminal
    terminal = FakeTerminal()
    monkeypatch.setattr("sys.stderr", terminal)
    # When a large input is analysed
    code, output = run("analyze", str(large_input))
    # Then stderr showed a progress line (percent, rate, time left), erased at the end
    shown = terminal.getvalue()
    assert code == EXIT_OK
    assert re.search(r"\r  analysing \S+ +\d+%  .* MB/s  ETA \d+:\d\d", shown)
    assert "100%" in shown and shown.endswith("\r\x1b[K")
    # And the report itself has none of it
    assert "\r" not in output and "analysing" not in output


def test_no_progress_bar_in_json_stdout_nor_when_disabled_or_small(
    large_input: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    terminal = FakeTerminal()
    monkeypatch.setattr("sys.stderr", terminal)
    # When --json: stdout is exactly one JSON object
    code, output = run("analyze", "--json", str(large_input))
    assert code == EXIT_OK and json.loads(output)["category"] == "yarn_memory_kill" and "\r" not in output
    # When --no-progress: nothing on stderr
    terminal.seek(0)
    terminal.truncate()
    run("analyze", "--no-progress", str(large_input))
    assert terminal.getvalue() == ""
    # When the input is small: nothing on stderr
    small = tmp_path / "small"
    small.write_text(YARN_KILL)
    run("analyze", str(small))
    assert terminal.getvalue() == ""


def test_no_progress_bar_when_stderr_is_not_a_terminal(large_input: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run("analyze", str(large_input))
    assert capsys.readouterr().err == ""


# ── S3 ─────────────────────────────────────────────────────────────────────────────────────────────

BUCKET = "acme-emr-logs"


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """An embedded S3 (moto) with a cluster's logs: an executor and the step's stderr, gzip."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        reset_clients()
        client = boto3.client("s3")
        client.create_bucket(Bucket=BUCKET)
        logs = {
            "logs/j-2ABCDEFGHIJK/containers/application_1_0002/container_1_0002_01_000003/stderr.gz": HEALTHY
            + HEAP_OOM,
            "logs/j-2ABCDEFGHIJK/steps/s-2ABCDEFGHIJK/stderr.gz": HEALTHY + YARN_KILL + TRACEBACK,
            "logs/j-2ABCDEFGHIJK/steps/s-2ABCDEFGHIJK/stderr.gz.crc": "not a log",
        }
        for key, text in logs.items():
            client.put_object(Bucket=BUCKET, Key=key, Body=gzip.compress(text.encode()))
        client.put_object(Bucket=BUCKET, Key="logs/j-2ABCDEFGHIJK/steps/", Body=b"")  # a console "folder"
        yield client
    reset_clients()


def test_an_s3_object(s3: Any) -> None:
    # When one object is analysed, by its s3a:// name
    key = "logs/j-2ABCDEFGHIJK/steps/s-2ABCDEFGHIJK/stderr.gz"
    code, document = run_json(f"s3a://{BUCKET}/{key}")
    # Then it is read and diagnosed, named by its s3:// URI
    assert code == EXIT_OK
    assert document["category"] == "yarn_memory_kill"
    assert document["evidence"][0]["file"] == f"s3://{BUCKET}/{key}"
    assert document["user_frame"] == "daily_job.py:12 in <module>"


def test_an_s3_prefix_analyses_every_log_under_it(s3: Any) -> None:
    # When a cluster's prefix is analysed (with or without the trailing slash)
    for uri in (f"s3://{BUCKET}/logs/j-2ABCDEFGHIJK/", f"s3://{BUCKET}/logs/j-2ABCDEFGHIJK"):
        code, document = run_json(uri)
        # Then both logs (not the checksum, not the folder marker) are read, and both causes are found
        assert code == EXIT_OK
        assert [i["file"].rsplit("/", 2)[-2] for i in document["inputs"]] == [
            "container_1_0002_01_000003",
            "s-2ABCDEFGHIJK",
        ]
        assert {document["category"], *document["secondary"]} >= {"yarn_memory_kill", "oom_heap"}


def test_an_s3_prefix_over_the_cap_is_partial(s3: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a cap lower than the number of logs under the prefix
    monkeypatch.setattr(inputs, "MAX_S3_OBJECTS", 1)
    # When the prefix is analysed
    code, output = run("analyze", f"s3://{BUCKET}/logs/")
    # Then the first log is analysed, and the report says the rest was not
    assert code == EXIT_OK
    assert output.startswith("Analysed 1 log ·")
    assert "only the first 1 were analysed" in " ".join(output.split())


def test_a_missing_s3_key_is_noted_and_the_others_analysed(s3: Any, capsys: pytest.CaptureFixture[str]) -> None:
    # When a missing key is analysed alone: exit 1 with the reason
    missing = f"s3://{BUCKET}/logs/j-2ABCDEFGHIJK/steps/s-GONE/stderr.gz"
    code, _ = run("analyze", missing)
    err = capsys.readouterr().err
    assert code == EXIT_FAILED and missing in err and "no longer exists" in err
    # When it comes with a good prefix: exit 0 with a note
    code, document = run_json(missing, f"s3://{BUCKET}/logs/")
    assert code == EXIT_OK and document["partial"] is True
    assert any(note.startswith(missing) for note in document["partial_notes"])


def test_a_missing_bucket_exits_1(s3: Any, capsys: pytest.CaptureFixture[str]) -> None:
    code, _ = run("analyze", "s3://no-such-bucket-here/logs/")
    assert code == EXIT_FAILED and "no-such-bucket-here" in capsys.readouterr().err


def test_a_malformed_s3_uri_is_bad_usage(capsys: pytest.CaptureFixture[str]) -> None:
    code, _ = run("analyze", "s3://")
    assert code == EXIT_BAD_INPUT and "not an S3 URI" in capsys.readouterr().err


# ── where a log sits tells how much it weighs ──────────────────────────────────────────────────────


@pytest.mark.parametrize(
    ("location", "weight"),
    [
        ("logs/j-1ABC/steps/s-1ABC/stderr.gz", 3),
        ("logs/j-1ABC/steps/s-1ABC/controller.gz", 2),
        ("logs/j-1ABC/containers/application_1_0001/container_e02_1_0001_01_000001/stderr.gz", 3),
        ("logs/j-1ABC/containers/application_1_0001/container_1_0001_01_000004/stderr.gz", 1),
        ("/home/me/Downloads/steps/s-1ABC/stderr", 3),
        ("/home/me/Downloads/container_1_0001_01_000001/stdout.gz", 3),
        ("/tmp/applications/00f1/jobs/00f2/SPARK_DRIVER/stderr.gz", 3),
        ("/tmp/applications/00f1/jobs/00f2/SPARK_DRIVER/stdout.gz", 2),
        ("/tmp/applications/00f1/jobs/00f2/SPARK_EXECUTOR/2/stderr.gz", 1),
        ("/tmp/driver.log", 1),
    ],
)
def test_log_weight(location: str, weight: int) -> None:
    assert log_weight(location) == weight


def test_save_extract_writes_every_findings_lines_numbered_and_redacted(tmp_path: Path) -> None:
    # Given a log with a memory kill and a secret in a launch command just before it
    log = tmp_path / "stderr"
    log.write_text(
        HEALTHY + "26/11/20 02:00:01 INFO Client: --conf spark.hadoop.fs.s3a.secret.key=abcd1234SECRET\n" + YARN_KILL
    )
    extract = tmp_path / "extract.txt"
    # When it is analysed with --save-extract
    code, _ = run("analyze", "--save-extract", str(extract), str(log))
    # Then the file has the verdict, each finding's block with line numbers (the match marked), no secret
    text = extract.read_text("utf-8")
    assert code == EXIT_OK
    assert text.startswith("emr-triage diagnosis: yarn_memory_kill:")
    assert re.search(r"^\s+\d+> .*Container killed by YARN", text, re.M)
    assert "abcd1234SECRET" not in text and "secret.key=[REDACTED]" in text


def test_analyze_into_a_pipe_closed_early_stops_quietly(tmp_path: Path) -> None:
    # Given a report longer than the reader wants (`emr-triage analyze ... | head -1`)
    log = tmp_path / "driver.log"
    log.write_text(
        "".join(
            f"26/11/22 02:31:{n % 60:02d} ERROR Main: java.lang.OutOfMemoryError: Java heap space {n}\n"
            for n in range(3000)
        )
    )
    command = f"{shlex.quote(sys.executable)} -m emr_triage.cli analyze --json {shlex.quote(str(log))} | head -c 10"
    # When the reader exits after its first bytes
    shell = ["/bin/bash", "-c", f"set -o pipefail; {command}"]
    done = subprocess.run(shell, capture_output=True, text=True, check=False)
    # Then no traceback is printed, and the status says the pipe was closed
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode in (0, 141)


LOST_ONLY = (
    "26/11/22 01:14:02 WARN HeartbeatReceiver: Removing executor 2 with no recent heartbeats: 161211 ms exceeds "
    "timeout 120000 ms\n"
    "26/11/22 01:14:02 ERROR YarnScheduler: Lost executor 2 on ip-10-0-2-57.ec2.internal: Executor heartbeat "
    "timed out after 161211 ms\n"
    "26/11/22 01:20:00 INFO DAGScheduler: Job 0 finished: parquet at sessionize.py:31, took 1.0 s\n"
)


@pytest.mark.parametrize(
    ("outcome", "category", "basis"),
    [("unknown", "no_failure", "none"), ("failed", "executor_lost", "cause"), ("succeeded", "no_failure", "none")],
)
def test_analyze_takes_the_known_outcome_of_the_run(tmp_path: Path, outcome: str, category: str, basis: str) -> None:
    # Given a log with executors lost and then a job finishing
    log = tmp_path / "stderr"
    log.write_text(LOST_ONLY)
    out = io.StringIO()
    # When it is analysed with what is known of the run
    assert main(["analyze", "--json", "--outcome", outcome, str(log)], out=out) == EXIT_OK
    document = json.loads(out.getvalue())
    # Then a run known to have failed names the lost executors, the success marker wins otherwise
    assert (document["category"], document["basis"], document["outcome"]) == (category, basis, outcome)


def test_analyze_rejects_an_unknown_outcome(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as raised:
        main(["analyze", "--outcome", "maybe", str(tmp_path)])
    assert raised.value.code == EXIT_BAD_INPUT
    assert "--outcome" in capsys.readouterr().err


def test_analyze_imports_neither_the_incident_models_nor_aws_nor_slack(tmp_path: Path) -> None:
    # Given a local log, analysed by a fresh interpreter (every import `analyze` makes is start-up time)
    log = tmp_path / "stderr"
    log.write_text(YARN_KILL)
    script = (
        "import sys\n"
        "from emr_triage.cli import main\n"
        f"main(['analyze', '--json', {str(log)!r}], out=open('/dev/null', 'w'))\n"
        "print(' '.join(sorted(sys.modules)))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    # Then the modules only incidents, AWS and Slack need were never loaded
    loaded = set(done.stdout.split())
    assert "emr_triage.analysis.verdict" in loaded
    assert not loaded & {"emr_triage.models.incident", "boto3", "botocore", "slack_sdk", "moto"}


# ── hostile rules files (issue 14, class 9): one line naming the file, exit 2, never a traceback ───────


def _deep_yaml(depth: int) -> str:
    return "version: 1\nrules: " + "[" * depth + "]" * depth + "\n"


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"version: 1\nrules: []\n# caf\xe9 \xff\xfe\n", "UTF-8"),
        (_deep_yaml(50_000).encode(), "nested too deeply"),
        (b"version: 1\nrules: []\n" + b"# padding\n" * 1_100_000, "larger than"),
        (
            yaml.safe_dump({"version": 1, "rules": [{**ACME_RULE, "patterns": [r"AcmeFail (\w+\s?)*$"]}]}).encode(),
            "exponential",
        ),
        (
            (
                "version: 1\na: &a [x, x, x, x, x, x, x, x, x, x]\n"
                + "".join(f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 10)}]\n" for i in range(8))
                + "rules: [*i]\n"
            ).encode(),
            "repeats a list or mapping",
        ),
    ],
    ids=["non-utf8", "deep-nesting", "huge", "backtracking-rule", "billion-laughs"],
)
def test_a_hostile_rules_file_exits_2_with_one_line_naming_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, says: str
) -> None:
    # Given a rules file that is not UTF-8, nested 50,000 deep, over the size bound, with a slow rule, or
    # aliases that expand to 10^9 values
    rules = tmp_path / "hostile.yaml"
    rules.write_bytes(content)
    log = tmp_path / "stderr"
    log.write_text(YARN_KILL)
    # When it is used
    code, output = run("analyze", "--rules", str(rules), str(log))
    # Then the command exits 2 before reading anything, with one line naming the file and the problem
    err = capsys.readouterr().err
    assert code == EXIT_BAD_INPUT and output == "", err
    assert err.count("\n") == 1 and str(rules) in err and says in err, err
    assert "Traceback" not in err

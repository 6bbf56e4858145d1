"""A logical record (a line, a block of lines, a private key that began above the kept context) is
redacted whole, and only then cut to the lengths shown: no part of a secret survives a cut."""

from __future__ import annotations

import base64
import random

import pytest

from emr_triage.analysis.catalogue import load_catalogue
from emr_triage.analysis.extract import build_extract
from emr_triage.analysis.findings import analyse_lines
from emr_triage.analysis.record import bound_line, bounded_words, redact_record, redact_tags
from emr_triage.analysis.redact import redact
from emr_triage.analysis.text import MAX_EVIDENCE_LINE_CHARS
from emr_triage.models.analysis import Finding

CATALOGUE = load_catalogue()
ERROR = "26/11/20 02:01:00 ERROR ApplicationMaster: User class threw exception: java.lang.OutOfMemoryError: Java heap"
SECRET = "S3cr3tValueQ8mZ4pW7x"  # 20 characters
KEY_ID = "AKIAQ7PLANTEDSTRADDL"


def _texts(findings: list[Finding]) -> str:
    parts = [t for f in findings for t in (*f.evidence, *f.context_before, f.headline, f.location or "")]
    parts += [e.text for e in build_extract(findings)]
    return "\n".join(parts)


def _straddling(marker: str, secret: str, tail: str) -> str:
    """The error line, padded so that ``secret`` (after ``marker``) starts 10 characters before the cut."""
    padding = MAX_EVIDENCE_LINE_CHARS - 10 - len(ERROR) - 2 - len(marker)
    return f"{ERROR} {'x' * padding} {marker}{secret}{tail} end"


@pytest.mark.parametrize(
    ("marker", "secret", "tail"),
    [
        ("password=", SECRET, ""),
        ("", KEY_ID, ""),
        (f"s3a://{KEY_ID}:", SECRET, "@bucket/key"),
        ("jdbc:postgresql://etl:", SECRET, "@db:5432/x"),
    ],
    ids=["key=value", "aws key id", "s3a key and secret", "jdbc url password"],
)
def test_a_secret_straddling_the_500_character_cut_keeps_no_part(marker: str, secret: str, tail: str) -> None:
    # Given an error line whose secret starts 10 characters before the evidence cut at 500
    line = _straddling(marker, secret, tail)
    assert line.index(secret) == MAX_EVIDENCE_LINE_CHARS - 10
    # When the log is analysed
    findings = analyse_lines(["26/11/20 02:00:00 INFO Client: starting", line], catalogue=CATALOGUE, source="log")
    # Then the finding stands, its line is cut to 500, and not even the secret's first part is in any text
    assert findings.findings and all(len(t) <= MAX_EVIDENCE_LINE_CHARS for t in findings.findings[0].evidence)
    assert secret[:10] not in _texts(findings.findings)


def test_a_private_key_that_began_above_the_kept_context_leaks_none_of_its_lines() -> None:
    # Given a private key printed just before the error, its BEGIN line above the two lines of context kept
    body = [f"MIIEplantedkeybody{i:02d}abcdefghijklmnopqrstuvwxyz0123456789" for i in range(6)]
    lines = ["26/11/20 02:00:00 INFO Client: key follows", "-----BEGIN RSA PRIVATE KEY-----", *body, ERROR]
    # When the log is analysed
    findings = analyse_lines(lines, catalogue=CATALOGUE, source="log").findings
    # Then the two lines before the error are kept, as markers, and no line of the key is in any text
    assert len(findings[0].context_before) == 2
    assert all(line.startswith("[REDACTED") for line in findings[0].context_before)
    assert "plantedkeybody" not in _texts(findings)


def test_a_value_continued_on_the_next_line_of_a_stack_is_redacted() -> None:
    # Given an exception whose message ends with a key and its value on the next (indented) line
    lines = [f"{ERROR} connecting with password=", f"    {SECRET}", "\tat com.acme.Job.run(Job.scala:1)"]
    # When analysed
    findings = analyse_lines(lines, catalogue=CATALOGUE, source="log").findings
    # Then the value is gone, and the block keeps one line per log line (the numbers still match)
    assert SECRET not in _texts(findings)
    assert len(findings[0].evidence) == 3


def test_the_spark_application_name_is_redacted_before_it_is_cut() -> None:
    # Given a driver naming its application with a secret across the 200-character cut of a name
    name = "x" * 189 + f" password={SECRET}"
    lines = [f"26/11/20 02:00:05 INFO SparkContext: Submitted application: {name}"]
    # When analysed
    analysis = analyse_lines(lines, catalogue=CATALOGUE, source="log")
    # Then the name is kept, without the secret's first characters
    assert analysis.spark_app_name and analysis.spark_app_name.startswith("xxx")
    assert "password=" in analysis.spark_app_name
    assert SECRET[:1] not in analysis.spark_app_name.removeprefix("x" * 189).replace("[REDACTED]", "")


def _key_body(lines: int, seed: int = 14) -> list[str]:
    """A private key's body as PEM prints it: random base64 in lines of 64, the last one shorter."""
    encoded = base64.b64encode(random.Random(seed).randbytes(48 * lines - 20)).decode()
    return [encoded[i : i + 64] for i in range(0, len(encoded), 64)]


@pytest.mark.parametrize("ended", [True, False], ids=["with its END line", "cut by the error"])
def test_a_private_key_whose_begin_line_is_beyond_the_lines_redacted_with_a_match_leaks_none(ended: bool) -> None:
    # Given an RSA 8192 key (130 lines of body) printed just before the error: its BEGIN line is far above the
    # 64 lines redacted with the match, so only body lines (and perhaps the END line) are in view
    body = _key_body(130)
    end = ["-----END RSA PRIVATE KEY-----"] if ended else []
    lines = ["26/11/20 02:00:00 INFO Client: key follows", "-----BEGIN RSA PRIVATE KEY-----", *body, *end, ERROR]
    # When the log is analysed
    findings = analyse_lines(lines, catalogue=CATALOGUE, source="log").findings
    # Then the error is found, the lines kept before it stand as markers, and no piece of the key is in any text
    assert findings and "OutOfMemoryError" in findings[0].headline
    assert findings[0].context_before[-1] == ("-----END RSA PRIVATE KEY-----" if ended else "[REDACTED PRIVATE KEY]")
    text = _texts(findings)
    assert not [line for line in body if line[:12] in text or line[-12:] in text]


def test_a_value_on_the_line_after_its_key_in_the_lines_before_a_match_is_redacted() -> None:
    # Given a command echoed with its key at the end of one line and the value at the start of the next
    lines = [
        "26/11/20 02:00:00 INFO Client: running spark-submit --conf spark.hadoop.fs.s3a.secret.key=",
        f"{SECRET} --class com.acme.Job",
        ERROR,
    ]
    # When analysed
    findings = analyse_lines(lines, catalogue=CATALOGUE, source="log").findings
    # Then the value is gone, and the rest of both lines reads as before
    assert SECRET[:6] not in _texts(findings)
    assert findings[0].context_before == [lines[0], "[REDACTED] --class com.acme.Job"]


def test_a_value_on_the_stack_line_after_a_message_ending_in_its_key_is_redacted() -> None:
    # Given an exception whose message ends "password:" and whose stack's next line starts with the value
    lines = [
        f"{ERROR} while connecting with password:",
        f"  {SECRET} (SQLState 28P01)",
        "\tat com.acme.Job.run(Job.scala:1)",
    ]
    # When analysed
    findings = analyse_lines(lines, catalogue=CATALOGUE, source="log").findings
    # Then the value is gone from every text, and the error text after it stays
    assert SECRET[:6] not in _texts(findings)
    assert findings[0].evidence[1] == "  [REDACTED] (SQLState 28P01)"


def test_a_password_in_the_error_s_prose_is_redacted_and_the_sentence_kept() -> None:
    # Given an error whose message says the password in a sentence
    lines = [f"{ERROR} after: Login failed for user 'etl': password was Hunter2!xyz (attempt 3)"]
    # When analysed
    findings = analyse_lines(lines, catalogue=CATALOGUE, source="log").findings
    # Then neither the evidence nor the headline holds it, and the sentence around it reads as before
    assert "Hunter2" not in _texts(findings)
    assert findings[0].evidence[0].endswith("Login failed for user 'etl': password was [REDACTED] (attempt 3)")


def test_a_record_redacted_after_its_previous_line_loses_a_value_continued_from_it() -> None:
    # Given a record (a match and its stack) whose line before ends with a key, and one whose line before
    # opens a private key with no END line in view
    record = [f"{SECRET} java.nio.file.AccessDeniedException: s3a://acme/raw", "\tat com.acme.Job.run(Job.scala:1)"]
    # When each is redacted with that line in view
    after_key = redact_record(record, previous="--conf spark.hadoop.fs.s3a.secret.key=")
    after_begin = redact_record(record, previous="-----BEGIN RSA PRIVATE KEY-----")
    # Then the value continued from the key is gone; the open block does not take the record with it
    assert after_key == ["[REDACTED] java.nio.file.AccessDeniedException: s3a://acme/raw", record[1]]
    assert after_begin == record == redact_record(record)


def test_a_record_keeps_one_line_per_line_when_a_key_block_collapses() -> None:
    lines = ["before", "-----BEGIN PRIVATE KEY-----", "AAAA", "-----END PRIVATE KEY-----", "after"]
    assert redact_record(lines) == ["before", "[REDACTED PRIVATE KEY]", "[REDACTED]", "[REDACTED]", "after"]


def test_an_over_long_line_is_bounded_before_the_token_its_bound_would_cut() -> None:
    assert bound_line("a " * 10 + "password=secretvalue", limit=25) == "a " * 9 + "a"
    assert bound_line("short") == "short"


def test_a_tag_named_like_a_secret_has_its_value_replaced_whole_and_other_tags_stay() -> None:
    # Given tags: one whose key names a password (its value alone looks like nothing), routing tags, a team
    tags = {
        "jdbc-password": "Zq8pLmN2vX4tR7wK",
        "emr-triage:slack-channel": "#data-alerts",
        "team": "data",
        "owner": "AKIAQ7PLANTEDTAGVAL0",
    }
    # When they are redacted by key and value
    safe = redact_tags(tags)
    # Then the secret values are gone whole, and the others are unchanged
    assert safe == {
        "jdbc-password": "[REDACTED]",
        "emr-triage:slack-channel": "#data-alerts",
        "team": "data",
        "owner": "[REDACTED]",
    }


def test_step_arguments_are_cut_at_an_argument_boundary_before_redaction() -> None:
    # Given a command whose arguments run far past the bound, a secret in the last one kept
    words = ["spark-submit", "--conf", "a" * 100, "--password", "hunter2planted", *(["mysql -x"] * 200_000)]
    # When they are bounded for redaction
    bounded = bounded_words(words, limit=200)
    # Then whole arguments are kept up to the bound, and the password goes with its option
    assert bounded.startswith(f"spark-submit --conf {'a' * 100} --password hunter2planted mysql -x ")
    assert 200 - len(" mysql -x") < len(bounded) <= 200 and bounded.endswith("mysql -x")
    assert "hunter2planted" not in redact(bounded)


def test_a_stored_step_command_of_a_megabyte_of_arguments_is_built_in_well_under_a_second() -> None:
    import time

    from emr_triage.incidents.building import _step_command
    from emr_triage.models.emr import StepInfo

    # Given a step with 1 MiB of arguments of the shape that made a redaction rule quadratic
    step = StepInfo(step_id="s-1", jar="command-runner.jar", args=["mysql -h"] * 131_072)
    # When its command is built for the incident
    started = time.perf_counter()
    command = _step_command(step)
    elapsed = time.perf_counter() - started
    # Then it is bounded and quick
    assert command is not None and len(command) <= 1000
    assert elapsed < 0.5, elapsed

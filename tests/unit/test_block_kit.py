"""Every Slack message we send is Block Kit that slack-sdk's own models accept: each block parses
(``Block.parse``), passes its validators (``validate_json``: lengths, counts, required fields) and serialises
back to exactly what we send (``to_dict``, which validates the nested text objects and elements too, and
would drop an attribute slack-sdk does not know), and two limits of Slack's that slack-sdk leaves unchecked
hold: at most 50 blocks a message, at most 2,000 characters a section field. Checked on every
snapshot in tests/snapshots/slack, on the messages built from an incident at every length limit, and (through
:func:`message_problems`) on every message the scenario tests post to the fake Slack.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.blocks import Block

from emr_triage.alerts.message import (
    build_incident_message,
    build_recovery_reply,
    build_single_message,
    build_thread_reply,
)
from emr_triage.models.analysis import Diagnosis, ExitCode, ExtractLine, SecondaryFinding
from emr_triage.models.incident import AlertContext, Incident, Recurrence

SNAPSHOTS = Path(__file__).resolve().parents[1] / "snapshots" / "slack"
SNAPSHOT_FILES = sorted(SNAPSHOTS.glob("*.json"))
# Slack's limit on the blocks of one message (chat.postMessage, chat.update, incoming webhooks).
MAX_MESSAGE_BLOCKS = 50
# Slack's limit on the text of each of a section's fields.
MAX_FIELD_CHARS = 2000
AT = datetime(2026, 11, 20, 2, 13, 46, tzinfo=UTC)


def block_problems(blocks: Any) -> list[str]:
    """What slack-sdk's Block Kit models reject in a list of blocks, one line per problem (none: valid)."""
    if isinstance(blocks, str):  # a form-encoded request carries its blocks as a JSON string
        blocks = json.loads(blocks)
    if not isinstance(blocks, list):
        return [f"blocks is a {type(blocks).__name__}, not a list"]
    problems = (
        [f"{len(blocks)} blocks, more than Slack's {MAX_MESSAGE_BLOCKS}"] if len(blocks) > MAX_MESSAGE_BLOCKS else []
    )
    for number, block in enumerate(blocks):
        kind = block.get("type") if isinstance(block, dict) else repr(block)
        where = f"block {number} ({kind})"
        try:
            parsed = Block.parse(block)
            if parsed is None:
                problems.append(f"{where}: not a block type slack-sdk knows")
                continue
            parsed.validate_json()
            round_trip = parsed.to_dict()
        except (SlackObjectFormationError, TypeError, ValueError, KeyError) as exc:
            problems.append(f"{where}: {type(exc).__name__}: {exc}")
            continue
        if round_trip != block:
            problems.append(f"{where}: slack-sdk reads it as {round_trip!r}, not as sent: {block!r}")
        # Slack's limit that slack-sdk's SectionBlock does not check
        long_fields = [n for n, f in enumerate(block.get("fields") or []) if len(f.get("text", "")) > MAX_FIELD_CHARS]
        problems += [f"{where}: field {n} is over {MAX_FIELD_CHARS} characters" for n in long_fields]
    return problems


def message_problems(payload: dict[str, Any]) -> list[str]:
    """Block Kit problems of a message payload: its blocks and its attachments' blocks."""
    problems = block_problems(payload.get("blocks") or [])
    attachments = payload.get("attachments") or []
    if isinstance(attachments, str):
        attachments = json.loads(attachments)
    for number, attachment in enumerate(attachments):
        problems += [f"attachment {number}: {p}" for p in block_problems(attachment.get("blocks") or [])]
    return problems


def test_every_snapshot_is_there_to_check() -> None:
    # Given the snapshot folder, Then it has one snapshot per failure category to validate below
    assert len(SNAPSHOT_FILES) >= 20, SNAPSHOTS


@pytest.mark.parametrize("snapshot", SNAPSHOT_FILES, ids=lambda path: path.stem)
def test_every_snapshot_message_is_valid_block_kit(snapshot: Path) -> None:
    # Given a snapshot's messages (the root message and the evidence reply of its thread)
    messages = {name: part for name, part in json.loads(snapshot.read_text("utf-8")).items() if name != "fixture"}
    assert set(messages) == {"root", "thread_reply"}
    # When slack-sdk parses and validates every block of each, Then none is rejected
    problems = [f"{name}: {p}" for name, message in messages.items() for p in message_problems(message)]
    assert problems == []
    assert all(message["blocks"] for message in messages.values())


def _incident_at_every_limit() -> Incident:
    """An incident whose every shown field is far past what Slack takes (names at their cut, long texts)."""
    long = "word " * 2_000
    return Incident(
        incident_id="j-3ANP7YJ2WQ0LC.s-3H8ZKQW0EXAMP",
        kind="step",
        state="FAILED",
        severity="high",
        region="us-east-1",
        account="123456789012",
        cluster_id="j-3ANP7YJ2WQ0LC",
        cluster_name="c" * 300,
        master_public_dns="ec2-1-2-3-4.compute-1.amazonaws.com",
        release_label="emr-7.5.0",
        tags={f"tag{n}": "v" * 200 for n in range(50)},
        step_id="s-3H8ZKQW0EXAMP",
        step_name="s" * 300,
        action_on_failure="TERMINATE_CLUSTER",
        step_command="spark-submit " + long,
        started_at=AT,
        ended_at=AT,
        failed_at=AT,
        emr_reason_code="STEP_FAILURE",
        emr_reason=long,
        emr_log_file="s3://acme-emr-logs/" + "k" * 1_000,
        log_location="s3://acme-emr-logs/elasticmapreduce/j-3ANP7YJ2WQ0LC/steps/s-3H8ZKQW0EXAMP/",
        lookup_errors=[f"DescribeStep failed: {long}"] * 5,
        diagnosis=Diagnosis(
            category="yarn_memory_kill",
            rule_id="yarn_memory_kill",
            title="t" * 500,
            severity="high",
            retryable=False,
            summary=long,
            explanation=long,
            remediation=long,
            headline=long,
            evidence=[long] * 30,
            source="s3://acme-emr-logs/elasticmapreduce/j-3ANP7YJ2WQ0LC/steps/s-3H8ZKQW0EXAMP/stderr.gz",
            line_no=57,
            location=long,
            fingerprint="21fbf49dfa868d8a",
            secondary=[
                SecondaryFinding(rule_id=f"r{n}", category="x", title=long, source="s", line_no=n, count=2)
                for n in range(30)
            ],
            partial=True,
            partial_notes=[long] * 10,
            from_logs=True,
            extract=[ExtractLine(source="s3://b/stderr.gz", line_no=n, text=long, repeat=3) for n in range(60)],
            exit_codes=[ExitCode(code=137, meaning=long, source="stderr.gz", line_no=n) for n in range(10)],
        ),
        exit_codes=[ExitCode(code=137, meaning=long, source="stderr.gz", line_no=n) for n in range(10)],
        children=[f"j-3ANP7YJ2WQ0LC.s-{n:013d} cancelled {long[:300]}" for n in range(50)],
        storm_children=[f"j-9.s-{n:013d} {long[:300]}" for n in range(50)],
        infrastructure=[f"spot interruption {long[:1_000]}" for _ in range(10)],
        resolved_by=long,
        logs_unavailable=True,
        opened_at=AT,
        updated_at=AT,
        expires_at=1_800_000_000,
    )


def test_messages_built_at_every_length_limit_are_valid_block_kit() -> None:
    # Given an incident whose every shown field is longer than Slack allows, with mentions and history
    incident = _incident_at_every_limit()
    context = AlertContext(
        recurrence=Recurrence(count_7d=3, count_30d=9, first_seen=AT, retention_days=90),
        job_known=True,
        last_success=AT,
        succeeded_after=AT,
    )
    mention = " ".join(f"<@U{n:08d}>" for n in range(40))
    # When every kind of message is built from it
    messages = {
        "root": build_incident_message(incident, mention, context),
        "single (webhook)": build_single_message(incident, mention, context),
        "thread reply": build_thread_reply(incident),
        "recovery reply": build_recovery_reply(incident),
    }
    # Then slack-sdk accepts every block of each
    problems = [f"{name}: {p}" for name, m in messages.items() for p in block_problems(m.blocks)]
    assert problems == []
    assert all(m.blocks for m in messages.values())


def test_the_check_rejects_what_slack_rejects() -> None:
    # Given blocks Slack refuses: a header over 150 characters, an unknown type, an attribute slack-sdk does not
    # know (it would be dropped silently), 51 blocks in one message and a section field over 2,000 characters
    header = {"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}
    unknown = {"type": "sectoin", "text": {"type": "mrkdwn", "text": "typo"}}
    extra = {"type": "divider", "colour": "red"}
    too_many = [{"type": "divider"}] * 51
    long_field = {"type": "section", "fields": [{"type": "mrkdwn", "text": "f" * 2001}]}
    # When they are checked, Then each is reported
    assert len(block_problems([header])) == 1
    assert block_problems([unknown]) == ["block 0 (sectoin): not a block type slack-sdk knows"]
    assert len(block_problems([extra])) == 1
    assert block_problems(too_many) == ["51 blocks, more than Slack's 50"]
    assert block_problems([long_field]) == ["block 0 (section): field 0 is over 2000 characters"]
    assert message_problems({"attachments": [{"blocks": [header]}]})[0].startswith("attachment 0: block 0 (header)")
    assert block_problems([{"type": "divider"}]) == []

"""The Slack message of an incident: safe with hostile text, within Slack's limits, and readable in a terminal."""

from __future__ import annotations

import json
import re
import unicodedata
from datetime import UTC, datetime
from typing import Any

import pytest

from emr_triage.alerts.message import (
    EVIDENCE_CHARS,
    FIELD_LIMIT,
    HEADER_LIMIT,
    MAX_BLOCKS,
    SECTION_LIMIT,
    SlackMessage,
    build_incident_message,
    build_single_message,
    build_thread_reply,
)
from emr_triage.alerts.metadata import metadata_incident
from emr_triage.alerts.mrkdwn import clip, code, code_block, escape
from emr_triage.alerts.render import render_terminal
from emr_triage.models.analysis import Diagnosis, SecondaryFinding
from emr_triage.models.incident import Incident

FAILED_AT = datetime(2026, 11, 20, 2, 13, 46, tzinfo=UTC)
STARTED_AT = datetime(2026, 11, 20, 2, 0, 5, tzinfo=UTC)
MENTIONS = "<!channel> <@U123ABC> <!subteam^S1|team> <!here>"
# Mentions, a code fence, bidi override, BEL, an ANSI colour sequence, and HTML-ish characters.
HOSTILE = f"{MENTIONS} ```\u202eevil\u202c \x07\x1b[31mred\x1b[0m & <b>"
HUGE_LINE = "A" * 100_000
HUGE_WORDS = "AAAA " * 20_000  # a name of many words, cut where the incident took it in


def _diagnosis(**overrides: Any) -> Diagnosis:
    fields: dict[str, Any] = {
        "category": "yarn_memory_kill",
        "rule_id": "yarn_memory_kill",
        "title": "YARN killed a container for exceeding its memory limit",
        "severity": "high",
        "retryable": False,
        "summary": "Container killed by YARN for exceeding physical memory limits. 5.5 GB of 5.5 GB used.",
        "explanation": "The container used more memory than YARN granted it.",
        "remediation": "Raise spark.executor.memoryOverhead.",
        "headline": "Container killed by YARN for exceeding physical memory limits.",
        "evidence": [
            "23/11/20 02:13:40 WARN YarnAllocator: Container killed by YARN for exceeding physical memory limits.",
            "\tat com.acme.sales.Agg.run(Agg.scala:42)",
        ],
        "source": "s3://acme-emr-logs/elasticmapreduce/j-3ANP7YJ2WQ0LC/steps/s-3H8ZKQW0EXAMP/stderr.gz",
        "line_no": 57,
        "location": "daily_sales_agg.py:88 in main",
        "fingerprint": "21fbf49dfa868d8a",
        "secondary": [
            SecondaryFinding(
                rule_id="executor_lost",
                category="executor_lost",
                title="Executors were lost while running tasks",
                source="s3://acme-emr-logs/x/stderr.gz",
                line_no=58,
                count=3,
            )
        ],
        "from_logs": True,
    }
    fields.update(overrides)
    return Diagnosis(**fields)


def _incident(**overrides: Any) -> Incident:
    fields: dict[str, Any] = {
        "incident_id": "j-3ANP7YJ2WQ0LC.s-3H8ZKQW0EXAMP",
        "kind": "step",
        "state": "FAILED",
        "severity": "high",
        "region": "us-east-1",
        "account": "123456789012",
        "cluster_id": "j-3ANP7YJ2WQ0LC",
        "cluster_name": "nightly-sales-etl",
        "release_label": "emr-7.5.0",
        "step_id": "s-3H8ZKQW0EXAMP",
        "step_name": "daily-sales-aggregation",
        "action_on_failure": "TERMINATE_CLUSTER",
        "started_at": STARTED_AT,
        "ended_at": FAILED_AT,
        "failed_at": FAILED_AT,
        "log_location": "s3://acme-emr-logs/elasticmapreduce/j-3ANP7YJ2WQ0LC/steps/s-3H8ZKQW0EXAMP/",
        "diagnosis": _diagnosis(),
        "opened_at": FAILED_AT,
        "updated_at": FAILED_AT,
        "expires_at": 1_800_000_000,
    }
    fields.update(overrides)
    return Incident(**fields)


def _hostile_incident() -> Incident:
    return _incident(
        cluster_name=f"etl {HOSTILE}",
        step_name=f"{HOSTILE} {HUGE_WORDS}",
        action_on_failure=HOSTILE,
        release_label=HOSTILE,
        emr_reason=f"STEP_FAILURE: {HOSTILE}",
        emr_log_file=f"s3://acme-emr-logs/{HOSTILE}",
        lookup_errors=[f"DescribeStep failed: {HOSTILE}"],
        children=[f"j-3ANP7YJ2WQ0LC.s-2PUBLISHDASH0 {HOSTILE}"],
        diagnosis=_diagnosis(
            title=f"Title {HOSTILE}",
            summary=f"Summary {HOSTILE} {HUGE_LINE}",
            remediation=f"Fix {HOSTILE} {HUGE_LINE}",
            location=f"job.py:1 in {HOSTILE}",
            evidence=[f"ERROR {HOSTILE}", "```", "``` <!channel> escaped the fence?", HUGE_LINE, "end ```"],
            secondary=[
                SecondaryFinding(
                    rule_id="executor_lost", category="x", title=f"Lost {HOSTILE}", source="s", line_no=1, count=2
                )
            ],
            partial=True,
            partial_notes=[f"s3://b/k: {HOSTILE}"],
        ),
    )


def _texts(message: SlackMessage) -> list[str]:
    """Every text Slack will render: the fallback and each block's text, fields and elements."""
    texts = [message.text]
    for block in message.blocks:
        if "text" in block:
            texts.append(block["text"]["text"])
        texts.extend(field["text"] for field in block.get("fields", []))
        texts.extend(element["text"] for element in block.get("elements", []))
    return texts


def _section_texts(message: SlackMessage) -> list[str]:
    return [b["text"]["text"] for b in message.blocks if b["type"] == "section" and "text" in b]


def _evidence(message: SlackMessage) -> str:
    return next(text for text in _section_texts(message) if text.startswith("*Evidence*"))


# ---------------------------------------------------------------------------------------------------
# Hostile text
# ---------------------------------------------------------------------------------------------------
def test_no_mention_survives_anywhere_in_the_payload() -> None:
    # Given an incident whose names, EMR reason and evidence try to ping everyone
    message = build_incident_message(_hostile_incident())
    payload = json.dumps({"text": message.text, "blocks": message.blocks}, ensure_ascii=False)
    # Then no special mention syntax survives in the JSON payload
    assert "<!" not in payload
    assert "<@" not in payload
    # And the only '<' left anywhere open our own console links
    for text in _texts(message):
        assert re.findall(r"<(?!https://)", text) == [], text[:200]
    # And the hostile text is still visible, escaped
    assert "&lt;!channel&gt;" in payload
    assert "&lt;@U123ABC&gt;" in payload


def test_code_fence_in_evidence_cannot_close_the_block() -> None:
    # Given evidence lines that contain ``` (one alone on a line)
    evidence = _evidence(build_incident_message(_hostile_incident()))
    # Then the section has exactly one opening and one closing fence, and the body has no ```
    assert evidence.count("```") == 2
    body = evidence.split("```\n", 1)[1].rsplit("\n```", 1)[0]
    assert "```" not in body
    assert "`" not in body
    assert "&lt;!channel&gt; escaped the fence?" in body
    assert evidence.endswith("\n```")


def test_slack_limits_hold_with_huge_and_hostile_text() -> None:
    # Given an incident with 100 KB lines in its name, summary, remediation and evidence
    message = build_incident_message(_hostile_incident())
    # Then every block is within Slack's limits
    assert len(message.blocks) <= MAX_BLOCKS
    header = message.blocks[0]
    assert header["type"] == "header"
    assert header["text"]["type"] == "plain_text"
    assert len(header["text"]["text"]) <= HEADER_LIMIT
    for block in message.blocks:
        if block["type"] == "section":
            if "text" in block:
                assert len(block["text"]["text"]) <= SECTION_LIMIT
            assert len(block.get("fields", [])) <= 10
            assert all(len(field["text"]) <= FIELD_LIMIT for field in block.get("fields", []))
        if block["type"] == "context":
            assert all(len(element["text"]) <= 2000 for element in block["elements"])
    assert len(message.text) <= SECTION_LIMIT
    # And the 100 KB evidence line is left out of the evidence block, which says there is more
    evidence = _evidence(message)
    assert len(evidence) <= EVIDENCE_CHARS + 100
    assert HUGE_LINE[:2000] not in evidence
    assert "… (more in the log)" in evidence


def test_clipping_is_visible() -> None:
    # Given an incident with an enormous step name and summary
    message = build_incident_message(_hostile_incident())
    header = message.blocks[0]["text"]["text"]
    step_field = next(f["text"] for f in message.blocks[1]["fields"] if f["text"].startswith("*Step*"))
    diagnosis = next(t for t in _section_texts(message) if t.startswith("*Diagnosis"))
    # Then each clipped text says it was truncated, and is exactly at its limit
    for text, limit in ((header, HEADER_LIMIT), (diagnosis, SECTION_LIMIT)):
        assert text.endswith("… (truncated)")
        assert len(text) == limit
    # And the step name was cut where the incident took it in (names: at most 256 characters), saying so
    assert "characters)" in step_field and len(step_field) < FIELD_LIMIT


def test_fallback_text_is_escaped() -> None:
    # Given a step whose name pings the channel
    message = build_incident_message(_incident(step_name=f"nightly {MENTIONS}"))
    # Then the notification text (shown in push notifications) escapes it too
    assert message.text == (
        "EMR step failed: nightly &lt;!channel&gt; &lt;@U123ABC&gt; &lt;!subteam^S1|team&gt; &lt;!here&gt;: "
        "YARN killed a container for exceeding its memory limit (cluster nightly-sales-etl j-3ANP7YJ2WQ0LC)"
    )


def test_header_is_plain_text_without_angle_brackets() -> None:
    # Given a step name with mention syntax
    message = build_incident_message(_incident(step_name=MENTIONS))
    header = message.blocks[0]["text"]["text"]
    # Then the plain-text header shows look-alike brackets, not mention syntax
    assert header == ":red_circle: EMR step failed: ‹!channel› ‹@U123ABC› ‹!subteam^S1|team› ‹!here›"


def test_control_characters_and_bidi_overrides_are_neutralised() -> None:
    # Given hostile text with a right-to-left override, BEL and an ANSI escape sequence
    message = build_incident_message(_hostile_incident())
    # Then none of them reaches Slack (newlines and tabs are layout, not attacks)
    for text in _texts(message):
        bad = {ch for ch in text if unicodedata.category(ch) in {"Cc", "Cf"} and ch not in "\n\t"}
        assert bad == set(), text[:120]


def test_evidence_of_a_long_line_of_angle_brackets_keeps_its_fence_closed() -> None:
    # Given a single short evidence line: the block is well-formed
    message = build_incident_message(_incident(diagnosis=_diagnosis(evidence=["<tag>&amp;</tag>"])))
    assert _evidence(message).endswith("```\n&lt;tag&gt;&amp;amp;&lt;/tag&gt;\n```")


def test_evidence_of_one_huge_line_full_of_markup_stays_within_its_budget() -> None:
    # Given a single 100 KB evidence line of XML (a serialized payload in an exception message)
    message = build_incident_message(_incident(diagnosis=_diagnosis(evidence=["<row a='1'>&amp;</row>" * 5000])))
    evidence = _evidence(message)
    # Then the block is clipped within its budget and the fence is closed
    assert len(evidence) <= EVIDENCE_CHARS + 100
    assert evidence.endswith("\n```")


# ---------------------------------------------------------------------------------------------------
# Variants
# ---------------------------------------------------------------------------------------------------
def test_step_incident_with_diagnosis_reads_well() -> None:
    # Given a failed step with a diagnosis from its logs
    message = build_incident_message(_incident())
    # Then the header names the step, the facts name cluster, step and timing, and the diagnosis follows
    assert message.blocks[0]["text"]["text"] == ":red_circle: EMR step failed: daily-sales-aggregation"
    facts = [f["text"] for f in message.blocks[1]["fields"]]
    assert facts == [
        "*Cluster*\n`nightly-sales-etl` `j-3ANP7YJ2WQ0LC`",
        "*Step*\n`daily-sales-aggregation` `s-3H8ZKQW0EXAMP`",
        "*State*\nFAILED at 2026-11-20 02:13 UTC (ran 13 min 41 s)",
        "*Action on failure*\nTERMINATE_CLUSTER",
        "*Release*\nemr-7.5.0",
    ]
    sections = _section_texts(message)
    assert sections[0] == (
        "*Diagnosis: YARN killed a container for exceeding its memory limit*\n"
        "high severity · needs a code, data or config fix · category `yarn_memory_kill`\n"
        ">Container killed by YARN for exceeding physical memory limits. 5.5 GB of 5.5 GB used.\n"
        "*Where in your code:* `daily_sales_agg.py:88 in main`"
    )
    assert sections[1].startswith("*Evidence* (`stderr.gz` line 57)\n```\n23/11/20 02:13:40 WARN")
    assert sections[2] == "*What to do:* Raise spark.executor.memoryOverhead."
    contexts = [b["elements"][0]["text"] for b in message.blocks if b["type"] == "context"]
    assert "*Also in the logs:* Executors were lost while running tasks ×3" in contexts
    console = "https://us-east-1.console.aws.amazon.com/emr/home?region=us-east-1"
    assert contexts[-1].startswith(f"<{console}#/clusterDetails/j-3ANP7YJ2WQ0LC|EMR cluster>")
    assert contexts[-1].endswith("incident `j-3ANP7YJ2WQ0LC.s-3H8ZKQW0EXAMP`")


def test_incident_without_diagnosis_says_logs_are_being_analysed() -> None:
    # Given a fresh incident whose logs have not arrived
    message = build_incident_message(_incident(diagnosis=None))
    # Then the message says it is analysing logs and will be updated
    sections = _section_texts(message)
    assert sections == [
        "*Diagnosis:* analysing logs… EMR copies them to S3 every 5 minutes; this message is updated when they arrive."
    ]
    assert message.text == "EMR step failed: daily-sales-aggregation (cluster nightly-sales-etl j-3ANP7YJ2WQ0LC)"


def test_no_failure_diagnosis_renders() -> None:
    # Given logs that were read and showed no known failure, and EMR's own reason
    diagnosis = Diagnosis(
        category="no_failure",
        title="No failure signature found in the logs",
        severity="low",
        summary="The logs read show no known failure.",
        from_logs=True,
    )
    message = build_incident_message(_incident(diagnosis=diagnosis, emr_reason="Unknown Error."))
    # Then it says so, points at EMR's reason, and the fallback does not claim a diagnosis
    assert _section_texts(message) == [
        "*Diagnosis:* no known failure signature in the logs read; EMR's own reason is below."
    ]
    contexts = [b["elements"][0]["text"] for b in message.blocks if b["type"] == "context"]
    assert contexts[0] == "*EMR says:* Unknown Error."
    assert "No failure signature" not in message.text


def _cluster_incident() -> Incident:
    return _incident(
        incident_id="j-3ANP7YJ2WQ0LC.cluster",
        kind="cluster",
        state="TERMINATED_WITH_ERRORS",
        severity="critical",
        step_id=None,
        step_name=None,
        action_on_failure=None,
        emr_reason_code="BOOTSTRAP_FAILURE",
        emr_reason="BOOTSTRAP_FAILURE: On the master instance (i-0123456789abcdef0), bootstrap action 1 returned "
        "a non-zero return code",
        log_location="s3://acme-emr-logs/elasticmapreduce/j-3ANP7YJ2WQ0LC/",
        diagnosis=Diagnosis(
            category="bootstrap_failure",
            title="A bootstrap action failed, so the cluster never started",
            severity="high",
            retryable=False,
            summary="On the master instance (i-0123456789abcdef0), bootstrap action 1 returned a non-zero return code",
            remediation="Read the failing bootstrap action's stderr under node/<instance-id>/bootstrap-actions/<n>/",
            from_logs=False,
        ),
    )


def test_cluster_incident_with_emr_reason_renders() -> None:
    # Given a cluster that terminated with errors, diagnosed from EMR's reason code (not from logs)
    message = build_incident_message(_cluster_incident())
    # Then the header names the cluster, the facts have no step, and EMR's reason is shown
    assert message.blocks[0]["text"]["text"] == ":red_circle: EMR cluster terminated with errors: nightly-sales-etl"
    facts = [f["text"] for f in message.blocks[1]["fields"]]
    assert facts[0] == "*Cluster*\n`nightly-sales-etl` `j-3ANP7YJ2WQ0LC`"
    assert not any(f.startswith("*Step*") for f in facts)
    contexts = [b["elements"][0]["text"] for b in message.blocks if b["type"] == "context"]
    assert contexts[0].startswith("*EMR says:* BOOTSTRAP_FAILURE: On the master instance")
    assert "prefix=elasticmapreduce%2Fj-3ANP7YJ2WQ0LC%2F|Logs in S3>" in contexts[-1]


def test_cluster_incident_shows_the_emr_reason_diagnosis_and_what_to_do() -> None:
    # Given a cluster incident diagnosed from EMR's BOOTSTRAP_FAILURE reason
    message = build_incident_message(_cluster_incident())
    text = "\n".join(_texts(message))
    # Then the message shows what it means and what to do, and does not promise a log analysis
    assert "A bootstrap action failed, so the cluster never started" in text
    assert "bootstrap-actions" in text
    assert "analysing logs" not in text


def test_serverless_job_run_incident_renders() -> None:
    # Given an EMR Serverless job run incident
    message = build_incident_message(
        _incident(
            incident_id="00fabc123.00fdef456",
            kind="job_run",
            cluster_id=None,
            cluster_name=None,
            step_id=None,
            step_name=None,
            action_on_failure=None,
            application_id="00fabc123",
            job_run_id="00fdef456",
            job_run_name="hourly-ingest",
        )
    )
    # Then it is named after the job run and links to the application
    assert message.blocks[0]["text"]["text"] == ":red_circle: EMR Serverless job run failed: hourly-ingest"
    facts = [f["text"] for f in message.blocks[1]["fields"]]
    assert facts[:2] == ["*Application*\n`00fabc123`", "*Job run*\n`hourly-ingest` `00fdef456`"]
    assert (
        "#/serverless/applications/00fabc123|EMR Serverless application>" in message.blocks[-1]["elements"][0]["text"]
    )


# ---------------------------------------------------------------------------------------------------
# Digest
# ---------------------------------------------------------------------------------------------------
def test_digest_is_stable_for_the_same_content() -> None:
    # Given the same incident built twice (and a copy with only non-rendered fields changed)
    first = build_incident_message(_incident())
    again = build_incident_message(_incident())
    other_version = build_incident_message(_incident(version=7, updated_at=datetime(2030, 1, 1, tzinfo=UTC)))
    # Then the digests are equal
    assert first.digest() == again.digest() == other_version.digest()
    assert re.fullmatch(r"[0-9a-f]{16}", first.digest())


@pytest.mark.parametrize(
    "change",
    [
        {"diagnosis": None},
        {"diagnosis": _diagnosis(title="A JVM ran out of heap memory (OutOfMemoryError)")},
        {"diagnosis": _diagnosis(evidence=["one more line"])},
        {"emr_reason": "Unknown Error."},
        {"children": ["j-3ANP7YJ2WQ0LC.s-2PUBLISHDASH0"]},
        {"state": "CANCELLED"},
    ],
    ids=["diagnosis-arrives", "verdict", "evidence", "emr-reason", "folded-child", "state"],
)
def test_digest_changes_when_the_content_changes(change: dict[str, Any]) -> None:
    # Given an incident and a copy that reads differently
    before = build_incident_message(_incident())
    after = build_incident_message(_incident(**change))
    # Then the digests differ (so chat.update is called)
    assert before.digest() != after.digest()


def test_root_messages_name_their_incident_in_metadata_outside_the_digest() -> None:
    # Given an incident's root message, and its single message (incoming-webhook mode)
    incident = _incident()
    root, single = build_incident_message(incident), build_single_message(incident)
    # Then both carry Slack message metadata naming the incident (how a lost post is found again)
    expected = {"event_type": "emr_triage_incident", "event_payload": {"incident_id": incident.incident_id}}
    assert root.metadata == single.metadata == expected
    assert metadata_incident(root.metadata) == incident.incident_id
    # And the metadata is not part of the digest (what the message says is)
    assert root.digest() == SlackMessage(text=root.text, blocks=root.blocks).digest()
    # And the thread replies carry none (only root messages are looked for)
    assert build_thread_reply(incident).metadata is None


@pytest.mark.parametrize(
    "metadata",
    [
        None,
        {},
        {"event_type": "other_app"},
        {"event_type": "emr_triage_incident"},
        {"event_type": "emr_triage_incident", "event_payload": {"incident_id": 7}},
    ],
)
def test_metadata_of_another_app_names_no_incident(metadata: Any) -> None:
    assert metadata_incident(metadata) is None


# ---------------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------------
def test_escape_code_and_clip_helpers() -> None:
    assert escape("a & <b> <!here>") == "a &amp; &lt;b&gt; &lt;!here&gt;"
    assert code("x`y <@U1>") == "`xˋy &lt;@U1&gt;`"
    assert code_block(["```", "a"]) == "```\nˋˋˋ\na\n```"
    assert clip("short", 10) == "short"
    assert clip("x" * 50, 20) == "x" * 7 + "… (truncated)"
    assert len(clip("x" * 50, 20)) == 20


# ---------------------------------------------------------------------------------------------------
# Terminal rendering
# ---------------------------------------------------------------------------------------------------
def test_render_terminal_shows_header_facts_and_literal_mentions() -> None:
    # Given a message whose step name contains <!channel>
    message = build_incident_message(_incident(step_name="nightly <!channel> & co"))
    # When it is rendered for a terminal
    rendered = render_terminal(message, "#data-platform-alerts", width=100)
    lines = rendered.splitlines()
    # Then it is boxed, with the channel, header, facts and diagnosis as plain text
    assert lines[0].startswith("┌─ Slack · #data-platform-alerts ")
    assert lines[-1].startswith("└")
    assert all(line.startswith("│ ") for line in lines[1:-1])
    assert "│ 🔴 EMR step failed: nightly ‹!channel› & co" in lines
    assert "│ Cluster: `nightly-sales-etl` `j-3ANP7YJ2WQ0LC`" in lines
    assert "│ Step: `nightly <!channel> & co` `s-3H8ZKQW0EXAMP`" in lines
    assert "│ State: FAILED at 2026-11-20 02:13 UTC (ran 13 min 41 s)" in lines
    assert "│ Diagnosis: YARN killed a container for exceeding its memory limit" in lines
    assert "│     \tat com.acme.sales.Agg.run(Agg.scala:42)" in lines
    link = lines.index("│   EMR cluster:")
    assert lines[link + 1] == (
        "│   https://us-east-1.console.aws.amazon.com/emr/home?region=us-east-1#/clusterDetails/j-3ANP7YJ2WQ0LC"
    )
    assert lines[-2] == "│   incident `j-3ANP7YJ2WQ0LC.s-3H8ZKQW0EXAMP`"
    # And Slack's escapes are undone for the terminal
    assert "&lt;" not in rendered
    assert "&amp;" not in rendered


def test_render_terminal_does_not_emit_terminal_escape_sequences() -> None:
    # Given a message built from hostile text containing ANSI escapes and BEL
    rendered = render_terminal(build_incident_message(_hostile_incident()), "#alerts")
    # Then no control character other than newline and tab reaches the terminal
    assert {ch for ch in rendered if unicodedata.category(ch) == "Cc" and ch not in "\n\t"} == set()


def test_render_terminal_of_a_hostile_message_stays_boxed() -> None:
    # Given the hostile incident
    rendered = render_terminal(build_incident_message(_hostile_incident()), "#alerts", width=80)
    lines = rendered.splitlines()
    # Then every body line is inside the box, and the mentions are shown as text
    assert all(line.startswith("│ ") for line in lines[1:-1])
    assert "<!channel>" in rendered
    assert "&lt;" not in rendered


def test_the_thread_reply_escapes_mentions_and_backticks_from_log_lines() -> None:
    # Given an incident whose evidence lines carry a channel mention, a user mention and a code fence
    from emr_triage.alerts.message import build_thread_reply
    from emr_triage.models.analysis import Diagnosis, ExtractLine

    incident = _incident(
        diagnosis=Diagnosis(
            category="oom_heap",
            title="A JVM ran out of heap memory",
            severity="high",
            summary="x",
            source="s3://logs/j-1/steps/s-1/stderr.gz",
            line_no=3,
            from_logs=True,
            fingerprint="f" * 16,
            extract=[
                ExtractLine(source="s3://logs/j-1/steps/s-1/stderr.gz", line_no=3, text="<!channel> wake up <@U123>"),
                ExtractLine(source="s3://logs/j-1/steps/s-1/stderr.gz", line_no=4, text="``` escaped? ```"),
            ],
        )
    )
    # When the thread reply is built
    reply = build_thread_reply(incident)
    text = json.dumps(reply.blocks)
    # Then no mention can ping anyone, and the code block cannot be broken out of
    assert "<!channel>" not in text and "<@U123>" not in text
    assert "&lt;!channel&gt;" in text
    body = next(b["text"]["text"] for b in reply.blocks if b["type"] == "section" and "```" in b["text"]["text"])
    assert body.count("```") == 2


def _mrkdwn_objects(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, dict):
        own = [value] if value.get("type") == "mrkdwn" else []
        return own + [m for v in value.values() for m in _mrkdwn_objects(v)]
    if isinstance(value, list):
        return [m for v in value for m in _mrkdwn_objects(v)]
    return []


def test_every_mrkdwn_object_of_every_message_is_verbatim_the_thread_reply_code_block_too() -> None:
    # Given an incident with a diagnosis and an extract
    from emr_triage.alerts.message import build_thread_reply
    from emr_triage.models.analysis import ExtractLine

    diagnosis = _diagnosis().model_copy(
        update={"extract": [ExtractLine(source="s3://logs/j-1/steps/s-1/stderr.gz", line_no=3, text="#general")]}
    )
    incident = _incident(diagnosis=diagnosis)
    # When its root message and its thread reply are built
    messages = [build_incident_message(incident), build_thread_reply(incident)]
    objects = _mrkdwn_objects([m.blocks for m in messages])
    # Then every mrkdwn object, the reply's code block among them, tells Slack not to parse links or names
    assert any("```" in o["text"] for o in objects)
    assert [o["text"][:40] for o in objects if o.get("verbatim") is not True] == []


def test_a_running_cluster_with_a_linked_application_gets_its_spark_ui_link() -> None:
    # Given a step incident on a cluster whose primary node is known, with its YARN application linked
    incident = _incident(
        master_public_dns="ec2-3-80-1-2.compute-1.amazonaws.com",
        application_ids=["application_1763604005123_0042"],
    )
    # When its message is built
    blocks = json.dumps(build_incident_message(incident).blocks)
    # Then it links the Spark History Server of that application, and the cluster page for the persistent UI
    assert "<http://ec2-3-80-1-2.compute-1.amazonaws.com:18080/history/application_1763604005123_0042/jobs/|" in blocks
    assert "persistent Spark UI under Applications" in blocks
    # And without a linked application there is no Spark UI link to build
    bare = json.dumps(
        build_incident_message(_incident(master_public_dns="ec2-3-80-1-2.compute-1.amazonaws.com")).blocks
    )
    assert ":18080/" not in bare and "persistent Spark UI" not in bare


def test_a_hostile_primary_node_name_cannot_break_out_of_the_link() -> None:
    # Given a DNS name carrying Slack link syntax (it comes from an API, but is still not trusted)
    incident = _incident(master_public_dns="evil|<!channel>", application_ids=["application_1_1"])
    # When the message is built
    blocks = json.dumps(build_incident_message(incident).blocks)
    # Then the name is percent-encoded inside the URL: no mention, no second link label
    assert "<!channel>" not in blocks and "evil%7C%3C%21channel%3E" in blocks

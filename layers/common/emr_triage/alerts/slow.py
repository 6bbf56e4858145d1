"""The message of a run that is still running long past its usual time, and its edit when it finishes
late. Pure: no I/O. Every piece of text from EMR or a log is escaped (:mod:`emr_triage.alerts.mrkdwn`)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from emr_triage.alerts.message import (
    CONTEXT_LIMIT,
    FIELD_LIMIT,
    HEADER_LIMIT,
    SECTION_LIMIT,
    SlackMessage,
    s3_console_url,
)
from emr_triage.alerts.mrkdwn import clip, code, escape, plain
from emr_triage.models.runs import MAX_RUNTIME_TAG

if TYPE_CHECKING:
    from emr_triage.models.runs import ActiveRun, Expectation, SlowAlert


def minutes_text(seconds: int) -> str:
    """``2 h 10 min``, ``41 min``, ``under a minute``."""
    hours, rest = divmod(max(0, seconds), 3600)
    minutes = rest // 60
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min" if minutes else "under a minute"


def usual_text(expected: Expectation) -> str:
    """What "usual" means for the run, as the alert says it."""
    if expected.source == "tag":
        usual = f"limit {minutes_text(expected.limit_seconds)} (tag {MAX_RUNTIME_TAG})"
        if expected.p50_seconds is not None and expected.runs:
            usual += f"; usually {minutes_text(expected.p50_seconds)}"
        return usual
    assert expected.p50_seconds is not None and expected.p95_seconds is not None
    return (
        f"usually {minutes_text(expected.p50_seconds)}, p95 {minutes_text(expected.p95_seconds)} "
        f"(last {expected.runs} successful runs)"
    )


def _what(run: ActiveRun) -> str:
    if run.kind == "step":
        return f"EMR step {run.step_name or run.step_id}"
    if run.kind == "eks_job_run":
        return f"EMR on EKS job run {run.job_run_name or run.job_run_id}"
    return f"EMR Serverless job run {run.job_run_name or run.job_run_id}"


def _facts(run: ActiveRun) -> list[str]:
    facts: list[str] = []
    if run.cluster_id:
        name = f"{code(run.cluster_name)} " if run.cluster_name else ""
        facts.append(f"*Cluster*\n{name}{code(run.cluster_id)}")
    if run.step_id:
        facts.append(f"*Step*\n{code(run.step_name or '?')} {code(run.step_id)}")
    if run.application_id:
        name = f"{code(run.application_name)} " if run.application_name else ""
        facts.append(f"*Application*\n{name}{code(run.application_id)}")
    if run.virtual_cluster_id:
        name = f"{code(run.virtual_cluster_name)} " if run.virtual_cluster_name else ""
        facts.append(f"*Virtual cluster*\n{name}{code(run.virtual_cluster_id)}")
    if run.job_run_id:
        facts.append(f"*Job run*\n{code(run.job_run_name or '?')} {code(run.job_run_id)}")
    return facts


def _usual(run: ActiveRun) -> str:
    return escape(_usual_plain(run))


def _link(run: ActiveRun) -> str:
    region = quote(run.region, safe="")
    base = f"https://{region}.console.aws.amazon.com/emr/home?region={region}"
    if run.cluster_id:
        return f"<{base}#/clusterDetails/{quote(run.cluster_id, safe='')}|EMR cluster (steps, Spark UI)>"
    if run.kind == "eks_job_run":  # its driver's log in S3 (no console page is documented to link to)
        console = s3_console_url(run.log_location or "", region)
        return f"<{console}|The driver's logs in S3>" if console else "EMR on EKS job run"
    return f"<{base}#/serverless/applications/{quote(run.application_id or '', safe='')}|EMR Serverless application>"


def _blocks(header: str, run: ActiveRun, lines: list[str], context: str) -> list[dict[str, Any]]:
    def mrkdwn(text: str, limit: int) -> dict[str, Any]:
        return {"type": "mrkdwn", "text": clip(text, limit), "verbatim": True}

    return [
        {"type": "header", "text": {"type": "plain_text", "text": clip(plain(header), HEADER_LIMIT), "emoji": True}},
        {"type": "section", "fields": [mrkdwn(f, FIELD_LIMIT) for f in _facts(run)]},
        *({"type": "section", "text": mrkdwn(line, SECTION_LIMIT)} for line in lines),
        {"type": "context", "elements": [mrkdwn(f"{context} · {_link(run)} · run {code(run.run_id)}", CONTEXT_LIMIT)]},
    ]


def build_slow_message(run: ActiveRun, running_seconds: int, logs_say: str | None, at: datetime) -> SlackMessage:
    """The alert of a run still RUNNING past its slow limit: how long against its usual time, and what
    its driver log in S3 says so far (a stuck signature or the last progress line, redacted)."""
    what = _what(run)
    since = run.started_at.strftime("%H:%M UTC")
    lines = [f"*Running {minutes_text(running_seconds)}* (since {since}); {_usual(run)}."]
    if logs_say:
        lines.append(f"*The logs so far:* {escape(logs_say)}")
    else:
        lines.append(
            "*The logs so far:* no driver log in S3 yet (EMR copies a running step's logs about every 5 minutes)."
        )
    context = (
        f"still RUNNING at {at.strftime('%H:%M UTC')} (checked with EMR); this message is edited when it ends: "
        "finished late, or its failure and diagnosis"
    )
    text = escape(f"Slow run: {what} has run {minutes_text(running_seconds)}; {_usual_plain(run)}")
    return SlackMessage(
        text=clip(text, SECTION_LIMIT), blocks=_blocks(f":hourglass_flowing_sand: Slow: {what}", run, lines, context)
    )


def build_finished_late_message(run: ActiveRun, took_seconds: int, alert: SlowAlert) -> SlackMessage:
    """The slow alert once the run succeeded: finished late, with the total."""
    what = _what(run)
    ended = run.ended_at.strftime("%H:%M UTC") if run.ended_at else "?"
    lines = [
        f"*Finished late:* succeeded at {ended} after *{minutes_text(took_seconds)}*; {_usual(run)}.",
        f"Alerted as slow at {alert.at.strftime('%H:%M UTC')}, after {minutes_text(alert.running_seconds)}."
        + (f" The logs then: {escape(alert.summary)}" if alert.summary else ""),
    ]
    text = escape(f"Finished late: {what} took {minutes_text(took_seconds)}; {_usual_plain(run)}")
    return SlackMessage(
        text=clip(text, SECTION_LIMIT),
        blocks=_blocks(
            f":white_check_mark: Finished late: {what}", run, lines, "no action needed unless it keeps happening"
        ),
    )


def _usual_plain(run: ActiveRun) -> str:
    return usual_text(run.expected) if run.expected is not None else "no baseline"

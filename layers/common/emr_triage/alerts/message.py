"""Build the Slack message of an incident (Block Kit plus a plain-text fallback). Pure: no I/O.

Safety: every piece of text from events or logs goes through :func:`escape` (``&``, ``<``, ``>``), so a
log line containing ``<!channel>`` or ``<@U123>`` renders literally and pings nobody; backticks in logs are
replaced so they cannot close a code block; every block is clipped to Slack's limits, visibly.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from emr_triage.alerts.actions import action_block, status_lines
from emr_triage.alerts.metadata import incident_metadata
from emr_triage.alerts.mrkdwn import clip, clip_code_block, code, escape, plain
from emr_triage.alerts.mrkdwn import neutralise as neutralise
from emr_triage.logs.locations import parse_s3_uri
from emr_triage.models.ids import account_of

if TYPE_CHECKING:  # the models are only named here: `analyze` need not import them
    from emr_triage.models.incident import AlertContext, Incident

HEADER_LIMIT = 150
SECTION_LIMIT = 3000
FIELD_LIMIT = 2000
CONTEXT_LIMIT = 2000
MAX_BLOCKS = 50
EVIDENCE_LINES = 12
EVIDENCE_CHARS = 1800

_SEVERITY_ICON = {
    "critical": ":red_circle:",
    "high": ":red_circle:",
    "medium": ":large_orange_circle:",
    "low": ":large_yellow_circle:",
}


@dataclass(frozen=True)
class SlackMessage:
    """A message ready for chat.postMessage/chat.update: ``text`` is the notification fallback."""

    text: str
    blocks: list[dict[str, Any]] = field(default_factory=list)
    # Slack message metadata naming the incident (root messages only); not part of the digest.
    metadata: dict[str, Any] | None = None

    def digest(self) -> str:
        """A hash of the content, to skip chat.update when nothing changed."""
        payload = json.dumps({"text": self.text, "blocks": self.blocks}, sort_keys=True)
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]


def _duration(start: datetime | None, end: datetime | None) -> str | None:
    if start is None or end is None:
        return None
    seconds = int((end - start).total_seconds())
    if seconds < 0:
        return None
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min {secs} s"
    return f"{secs} s"


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "?"


def console_links(incident: Incident) -> list[tuple[str, str]]:
    """(label, url) of the AWS console pages an engineer opens first."""
    region = quote(incident.region, safe="")
    links: list[tuple[str, str]] = []
    if incident.cluster_id:
        links.append(
            (
                "EMR cluster (persistent Spark UI under Applications)" if incident.application_ids else "EMR cluster",
                f"https://{region}.console.aws.amazon.com/emr/home?region={region}#/clusterDetails/"
                f"{quote(incident.cluster_id, safe='')}",
            )
        )
    if incident.master_public_dns and incident.application_ids:
        # The Spark History Server on the primary node: reachable through an SSH tunnel or the VPN while
        # the cluster runs; afterwards the cluster page offers the persistent application UI.
        links.append(
            (
                "Spark UI (on the cluster)",
                f"http://{quote(incident.master_public_dns, safe='.-')}:18080/history/"
                f"{quote(incident.application_ids[0], safe='_')}/jobs/",
            )
        )
    if incident.application_id:
        links.append(
            (
                "EMR Serverless application",
                f"https://{region}.console.aws.amazon.com/emr/home?region={region}"
                f"#/serverless/applications/{quote(incident.application_id, safe='')}",
            )
        )
    if incident.log_location and (console := s3_console_url(incident.log_location, region)):
        links.append(("Logs in S3", console))
    return links


def s3_console_url(location: str, region: str) -> str | None:
    """The S3 console's page of an ``s3://bucket/prefix`` (None when it is not an S3 URI)."""
    try:
        bucket, prefix = parse_s3_uri(location)
    except ValueError:
        return None
    if not bucket:
        return None
    return (
        f"https://s3.console.aws.amazon.com/s3/buckets/{quote(bucket)}?region={region}&prefix={quote(prefix, safe='')}"
    )


def _title(incident: Incident) -> str:
    state = incident.state.replace("_", " ").lower()
    if incident.kind == "step":
        return f"EMR step {state}: {incident.step_name or incident.step_id}"
    if incident.kind == "cluster":
        return f"EMR cluster {state}: {incident.cluster_name or incident.cluster_id}"
    if incident.kind == "application":
        return f"Spark application {state}: {incident.spark_app_name or incident.yarn_application_id}"
    if incident.kind == "eks_job_run":
        return f"EMR on EKS job run {state}: {incident.job_run_name or incident.job_run_id}"
    return f"EMR Serverless job run {state}: {incident.job_run_name or incident.job_run_id}"


def _facts(incident: Incident) -> list[str]:
    facts: list[str] = []
    if account := account_of(incident.incident_id):  # a member account's failure: which account to sign in to
        name = f"{code(incident.account_name)} " if incident.account_name else ""
        facts.append(f"*Account*\n{name}{code(account)} · {escape(incident.region or '')}")
    if incident.cluster_id:
        name = f"{code(incident.cluster_name)} " if incident.cluster_name else ""
        facts.append(f"*Cluster*\n{name}{code(incident.cluster_id)}")
    if incident.step_id:
        facts.append(f"*Step*\n{code(incident.step_name or '?')} {code(incident.step_id)}")
    if incident.yarn_application_id:
        name = f"{code(incident.spark_app_name)} " if incident.spark_app_name else ""
        facts.append(f"*YARN application (not an EMR step)*\n{name}{code(incident.yarn_application_id)}")
    if incident.application_id:
        name = f"{code(incident.application_name)} " if incident.application_name else ""
        facts.append(f"*Application*\n{name}{code(incident.application_id)}")
    if incident.virtual_cluster_id:
        name = f"{code(incident.virtual_cluster_name)} " if incident.virtual_cluster_name else ""
        on = f" on EKS {code(incident.eks_namespace)}" if incident.eks_namespace else ""
        facts.append(f"*Virtual cluster*\n{name}{code(incident.virtual_cluster_id)}{on}")
    if incident.job_run_id:
        name = f"{code(incident.job_run_name)} " if incident.job_run_name else ""
        facts.append(f"*Job run*\n{name}{code(incident.job_run_id)}")
    state = f"*State*\n{escape(incident.state)} at {_when(incident.ended_at or incident.failed_at)}"
    if ran := _duration(incident.started_at, incident.ended_at):
        state += f" (ran {ran})"
    facts.append(state)
    if incident.action_on_failure:
        facts.append(f"*Action on failure*\n{escape(incident.action_on_failure)}")
    if incident.release_label:
        facts.append(f"*Release*\n{escape(incident.release_label)}")
    return facts[:10]


def _diagnosis_blocks(incident: Incident) -> list[dict[str, Any]]:
    diagnosis = incident.diagnosis
    if incident.logs_unavailable and (diagnosis is None or diagnosis.category == "no_failure"):
        minutes = incident.logs_deadline_minutes or 15
        return [
            _section(
                f"*Diagnosis:* logs unavailable: no log could be read within {minutes} min of the failure "
                "(EMR copies logs to S3 every 5 minutes; the cluster may have ended before copying them, logging "
                "to S3 may be off, or emr-triage may not be allowed to read them). EMR's own reason is below."
            )
        ]
    if diagnosis is None:
        if incident.kind in ("job_run", "eks_job_run") and not incident.log_location:
            waiting = "*Diagnosis:* this job run does not send its logs to S3; EMR's reason is below."
        elif not incident.log_location:
            waiting = "*Diagnosis:* no logs to analyse (this cluster does not write logs to S3); EMR's reason is below."
        elif incident.kind == "eks_job_run":
            waiting = "*Diagnosis:* analysing logs… this message is updated when the job run's pod logs reach S3."
        else:
            waiting = (
                "*Diagnosis:* analysing logs… EMR copies them to S3 every 5 minutes; this message is updated "
                "when they arrive."
            )
        return [_section(waiting)]
    if diagnosis.category == "no_failure":
        text = "*Diagnosis:* no known failure signature in the logs read"
        if incident.emr_reason:
            text += "; EMR's own reason is below."
        return [_section(text)]
    verdict = "retry likely to help" if diagnosis.retryable else "needs a code, data or config fix"
    if diagnosis.retryable is None:
        verdict = "cause unclear"
    basis = "" if diagnosis.from_logs else " · from EMR's reason code"
    text = (
        f"*Diagnosis: {escape(diagnosis.title)}*\n"
        f"{escape(diagnosis.severity)} severity · {verdict} · category {code(diagnosis.category)}{basis}\n"
        f">{escape(diagnosis.summary)}"
    )
    if diagnosis.location:
        # Beside "Likely infrastructure, not your code", the frame is where the job stopped, not a culprit.
        infrastructure = bool(incident.infrastructure) and diagnosis.category in INFRASTRUCTURE_SYMPTOMS
        label = "Where it stopped" if infrastructure else "Where in your code"
        text += f"\n*{label}:* {code(diagnosis.location)}"
    blocks = [_section(text)]
    if diagnosis.evidence:
        source = diagnosis.source.rsplit("/", 1)[-1] if diagnosis.source else "log"
        heading = f"*Evidence* ({code(source)} line {diagnosis.line_no})\n"
        blocks.append(
            _section(
                heading
                + clip_code_block(
                    diagnosis.evidence[:EVIDENCE_LINES], min(EVIDENCE_CHARS, SECTION_LIMIT - len(heading))
                )
            )
        )
    if diagnosis.remediation:
        blocks.append(_section(f"*What to do:* {escape(diagnosis.remediation)}"))
    return blocks


def _mrkdwn(text: str, limit: int) -> dict[str, Any]:
    # verbatim: Slack must not auto-link URLs or #channel names, nor parse mentions, in our text; our own
    # links are explicit <url|label>.
    return {"type": "mrkdwn", "text": clip(text, limit), "verbatim": True}


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": _mrkdwn(text, SECTION_LIMIT)}


def _context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [_mrkdwn(text, CONTEXT_LIMIT)]}


def _ago(earlier: datetime, later: datetime) -> str:
    seconds = max(0, int((later - earlier).total_seconds()))
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 2 * 86400:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} days"


# Verdicts that capacity or instance trouble explains better than the code (or no verdict at all).
INFRASTRUCTURE_SYMPTOMS = frozenset(
    {
        "executor_lost",
        "node_lost_spot",
        "shuffle_fetch_failed",
        "capacity_unavailable",
        "app_killed_or_am_failed",
        "network_error",
        "other",
        "no_failure",
    }
)


def _infrastructure_text(incident: Incident) -> str:
    events = "\n".join(f"• {escape(line)}" for line in incident.infrastructure[-5:])
    diagnosis = incident.diagnosis
    if diagnosis is None or diagnosis.category in INFRASTRUCTURE_SYMPTOMS:
        lead = (
            ":construction: *Likely infrastructure, not your code* (retry likely to help once capacity is back): "
            "the cluster had these capacity or instance problems around the failure"
        )
    else:
        lead = ":construction: *Infrastructure around this failure* (the verdict above is from the logs)"
    return clip(f"{lead}\n{events}", SECTION_LIMIT)


def context_line(incident: Incident, context: AlertContext) -> str | None:
    """The history line: recurrence of the failure signature, and the job's last success."""
    parts: list[str] = []
    seen = context.recurrence
    if seen is not None:
        if seen.new:
            parts.append(f":new: *New failure signature*: not seen in the last {seen.retention_days} days")
        elif seen.count_30d <= 1:
            parts.append(
                f":repeat: *Seen before*: first on {seen.first_seen.strftime('%Y-%m-%d')}, not in the last 30 days"
            )
        else:
            parts.append(
                f":repeat: *Same failure {seen.count_7d} times in 7 days* ({seen.count_30d} in 30), "
                f"first on {seen.first_seen.strftime('%Y-%m-%d')}"
            )
    what = {"step": "step", "application": "application"}.get(incident.kind, "job")
    if context.last_success is not None:
        parts.append(
            f"last successful run of this {what}: {_when(context.last_success)} "
            f"({_ago(context.last_success, incident.failed_at)} before this failure)"
        )
    elif context.job_known and context.succeeded_after is None:
        parts.append(f"no successful run of this {what} on record")
    if context.succeeded_after is not None:
        parts.append(
            f":white_check_mark: it succeeded again at {_when(context.succeeded_after)} "
            f"({_ago(incident.failed_at, context.succeeded_after)} later)"
        )
    return " · ".join(parts) or None


def build_incident_message(
    incident: Incident,
    mention: str | None = None,
    context: AlertContext | None = None,
    *,
    buttons: bool = False,
    can_mute: bool = False,
    now: datetime | None = None,
) -> SlackMessage:
    """The root message of an incident, as it should read now.

    Parameters
    ----------
    incident:
        The stored incident (its text fields are already redacted).
    mention:
        Slack mention syntax of the owners (built by :mod:`emr_triage.alerts.routing` from validated
        ids), put first in the message; None for no mention.
    context:
        What the incident store knows around it (recurrence, last success); None: not shown.
    buttons, can_mute, now:
        Whether to show the buttons people act with (the interactive function is deployed), whether its
        failure can be muted (see :mod:`emr_triage.alerts.actions`), and the time mutes are compared with.

    Returns
    -------
    SlackMessage
        Block Kit blocks within Slack's limits, and a plain-text fallback.
    """
    icon = _SEVERITY_ICON.get(incident.severity, ":red_circle:")
    title = _title(incident)
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {
                "type": "plain_text",
                "text": clip(plain(f"{icon} {title}"), HEADER_LIMIT),
                "emoji": True,
            },
        },
        {
            "type": "section",
            "fields": [_mrkdwn(f, FIELD_LIMIT) for f in _facts(incident)],
        },
        *_diagnosis_blocks(incident),
    ]
    if mention and incident.status == "OPEN":
        blocks.insert(1, _section(f"{mention} this alert is yours ({escape(incident.severity)} severity)"))
    if incident.status == "RESOLVED" and not incident.resolved_by_user:
        blocks.insert(1, _section(f":white_check_mark: *Resolved:* {escape(incident.resolved_by or 'recovered')}"))
    now = now or incident.updated_at
    people = status_lines(incident, now)
    if people:
        blocks.insert(1, _context("\n".join(people)))
    if incident.infrastructure:
        blocks.append(_section(_infrastructure_text(incident)))
    if incident.slow_note:
        blocks.append(_context(f":hourglass_flowing_sand: This run was {escape(incident.slow_note)}."))
    history = context_line(incident, context) if context is not None else None
    if history:
        blocks.append(_context(history))
    if incident.kind == "eks_job_run" and incident.step_command:
        blocks.append(_context(f"*Submitted:* {code(clip(incident.step_command, 600))}"))
    if incident.emr_reason:
        emr = f"*EMR says:* {escape(incident.emr_reason)}"
        if incident.emr_log_file:
            emr += f" (see {code(incident.emr_log_file)})"
        blocks.append(_context(emr))
    diagnosis = incident.diagnosis
    if diagnosis and diagnosis.secondary:
        seen = ", ".join(f"{escape(s.title)}{f' ×{s.count}' if s.count > 1 else ''}" for s in diagnosis.secondary[:6])
        blocks.append(_context(f"*Also in the logs:* {seen}"))
    if diagnosis and diagnosis.partial:
        notes = "; ".join(escape(n) for n in diagnosis.partial_notes[:3])
        blocks.append(_context(f":warning: *Partial read:* {notes}"))
    if incident.children:
        blocks.append(_context("*Folded into this alert:* " + ", ".join(escape(c) for c in incident.children[:10])))
    if incident.storm_children:
        shown = incident.storm_children[-10:]
        more = len(incident.storm_children) - len(shown)
        blocks.append(
            _context(
                f":rotating_light: *Alert storm: {len(incident.storm_children)} more failures in this channel, folded "
                "here instead of queued* (each has its own incident): "
                + ", ".join(escape(c) for c in shown)
                + (f" and {more} earlier" if more else "")
            )
        )
    if incident.lookup_errors:
        blocks.append(_context(":warning: " + "; ".join(escape(e) for e in incident.lookup_errors[:3])))
    links = " · ".join(f"<{url}|{label}>" for label, url in console_links(incident))
    footer = f"incident {code(incident.incident_id)}"
    blocks = blocks[: MAX_BLOCKS - 2]
    if buttons:
        blocks.append(action_block(incident, now, can_mute))
    blocks.append(_context(f"{links} · {footer}" if links else footer))

    fallback = f"{title}"
    if diagnosis and diagnosis.from_logs and diagnosis.category != "no_failure":
        fallback += f": {diagnosis.title}"
    if incident.cluster_id:
        fallback += f" (cluster {incident.cluster_name or ''} {incident.cluster_id})".replace("  ", " ")
    text = clip(escape(fallback), SECTION_LIMIT)
    return SlackMessage(
        text=f"{mention} {text}" if mention else text,
        blocks=blocks[:MAX_BLOCKS],
        metadata=incident_metadata(incident.incident_id),
    )


def build_single_message(
    incident: Incident, mention: str | None = None, context: AlertContext | None = None
) -> SlackMessage:
    """The one message of incoming-webhook mode: the root message with the log extract inline (redacted
    and truncated), since a webhook can neither edit it later, nor reply in a thread, nor upload a file."""
    base = build_incident_message(incident, mention, context)
    blocks = list(base.blocks)
    diagnosis = incident.diagnosis
    if diagnosis is not None and diagnosis.from_logs and diagnosis.extract:
        lines = [
            f"{_short(e.source)}:{e.line_no}{f' (×{e.repeat})' if e.repeat > 1 else ''}  {e.text}"
            for e in diagnosis.extract[: EVIDENCE_LINES * 2]
        ]
        heading = "*Log extract* (redacted and truncated: incoming-webhook mode has no thread and no file)\n"
        blocks.insert(len(blocks) - 1, _section(heading + clip_code_block(lines, SECTION_LIMIT - len(heading))))
    return SlackMessage(text=base.text, blocks=blocks[:MAX_BLOCKS], metadata=incident_metadata(incident.incident_id))


def build_recovery_reply(incident: Incident) -> SlackMessage:
    """The reply under an alert when a later run of the same job succeeded."""
    text = f":white_check_mark: *Recovered:* {escape(incident.resolved_by or 'a later run succeeded')}"
    return SlackMessage(
        text=clip(escape(f"Recovered: {incident.resolved_by or ''}"), SECTION_LIMIT), blocks=[_section(text)]
    )


def build_thread_reply(incident: Incident) -> SlackMessage:
    """The reply under the root message once the logs are diagnosed: the evidence lines with their file
    and line numbers, exit codes in words, and where the full extract is (the file uploaded with it)."""
    diagnosis = incident.diagnosis
    blocks: list[dict[str, Any]] = []
    if diagnosis is None:
        return SlackMessage(text="No diagnosis yet.", blocks=[])
    lines = [
        f"{_short(e.source)}:{e.line_no}{f' (×{e.repeat})' if e.repeat > 1 else ''}  {e.text}"
        for e in diagnosis.extract[: EVIDENCE_LINES * 2]
    ] or [
        f"{_short(diagnosis.source or '')}:{(diagnosis.line_no or 0) + i}  {t}"
        for i, t in enumerate(diagnosis.evidence)
    ]
    where = f" in {code(_short(diagnosis.source))}" if diagnosis.source else ""
    blocks.append(_section(f"*Evidence*{where} ({escape(diagnosis.title)})"))
    if lines:
        code_text = {"type": "mrkdwn", "text": clip_code_block(lines, SECTION_LIMIT), "verbatim": True}
        blocks.append({"type": "section", "text": code_text})
    if diagnosis.exit_codes:
        codes = "; ".join(
            f"{code(str(e.code) if e.code is not None else 'SIG' + (e.signal or ''))} {escape(e.meaning)}"
            for e in diagnosis.exit_codes[:5]
        )
        blocks.append(_context(f"*Exit codes:* {codes}"))
    blocks.append(_context("The full redacted extract is attached to this thread."))
    text = clip(escape(f"Evidence for {diagnosis.title}"), SECTION_LIMIT)
    return SlackMessage(text=text, blocks=blocks[:MAX_BLOCKS])


def _short(source: str) -> str:
    """The file part of a log's S3 URI or path: its last folders, which name the step or container."""
    parts = source.rstrip("/").split("/")
    # EMR Serverless executors: SPARK_EXECUTOR/<n>/stderr.gz (the number alone names nothing).
    keep = 3 if len(parts) > 2 and parts[-2].isdigit() else 2
    return "/".join(parts[-keep:]) if len(parts) > 1 else source

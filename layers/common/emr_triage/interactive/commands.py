"""``/emr-triage``: what is open, one incident, the mutes, help. Answers are ephemeral mrkdwn text.

Each answer is one read (a Query of the open-incidents index, a GetItem, a Query of the mutes), well
within the 3 seconds Slack gives a slash command. What a person sees follows the buttons' rule: the
alerts of the channel they type in; every channel's (``open all``, ``show`` of another channel's alert)
only for ``SLACK_DECIDERS`` when it is set.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from emr_triage.alerts.actions import person, when
from emr_triage.alerts.mrkdwn import clip, code, escape
from emr_triage.models.incident import IncidentSummary
from emr_triage.ports import Dependencies

MAX_LISTED = 20
ANSWER_LIMIT = 3000
_INCIDENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,199}$")

HELP = (
    "*/emr-triage* answers only you:\n"
    "• `/emr-triage open`: open incidents alerted in this channel, newest first (`open all`: every channel)\n"
    "• `/emr-triage show <incident id>`: one incident (the id is in each alert's footer)\n"
    "• `/emr-triage mutes`: failures muted from an alert, and until when\n"
    "• `/emr-triage help`: this"
)


@dataclass(frozen=True)
class Asker:
    user: str
    channel: str


def _sees_everything(asker: Asker, deps: Dependencies, members: Callable[[str], frozenset[str]]) -> bool:
    deciders = deps.settings.deciders
    if not deciders or asker.user in deciders:
        return True
    return any(asker.user in members(group) for group in deciders if group.startswith("S"))


def _name(summary: IncidentSummary) -> str:
    what = summary.step_name or summary.job_run_name or summary.spark_app_name or summary.cluster_name
    where = summary.cluster_name or summary.cluster_id or summary.application_id or ""
    return escape(f"{what} on {where}" if what and where and what != where else what or where or summary.kind)


def _line(summary: IncidentSummary) -> str:
    parts = [f"{code(summary.incident_id)} {_name(summary)}"]
    if summary.verdict:
        parts.append(escape(summary.verdict))
    parts.append(f"failed {when(summary.failed_at)}")
    if summary.acknowledged_by:
        parts.append(f"acknowledged by {person(summary.acknowledged_by)}")
    if summary.mute is not None:
        parts.append(f"muted until {when(summary.mute.until)}")
    if summary.muted_under:
        parts.append(f"muted: in the thread of {code(summary.muted_under)}")
    return "• " + " · ".join(parts)


def _open(asker: Asker, everywhere: bool, deps: Dependencies, members: Callable[[str], frozenset[str]]) -> str:
    if everywhere and not _sees_everything(asker, deps, members):
        return "Only SLACK_DECIDERS may list every channel's incidents: `/emr-triage open` lists this channel's."
    summaries = deps.repository.open_summaries(limit=200)
    if not everywhere:
        here = {s.incident_id for s in summaries if s.slack is not None and s.slack.channel == asker.channel}
        summaries = [s for s in summaries if s.incident_id in here or s.muted_under in here]
    if not summaries:
        return "No open incident" + ("." if everywhere else " alerted in this channel.")
    lines = [_line(s) for s in summaries[:MAX_LISTED]]
    more = len(summaries) - len(lines)
    head = f"*{len(summaries)} open incident{'s' if len(summaries) != 1 else ''}*" + (
        "" if everywhere else " in this channel"
    )
    return clip("\n".join([head, *lines, *([f"… and {more} more"] if more > 0 else [])]), ANSWER_LIMIT)


def _show(asker: Asker, incident_id: str, deps: Dependencies, members: Callable[[str], frozenset[str]]) -> str:
    if not _INCIDENT_ID.match(incident_id):
        return "That is not an incident id: it is in the footer of each alert (`incident j-…`)."
    incident = deps.repository.get(incident_id)
    if incident is None:
        return f"No incident {code(incident_id)} on record."
    here = incident.slack is not None and incident.slack.channel == asker.channel
    if not here and not _sees_everything(asker, deps, members):
        return "That incident was alerted in another channel: ask there."
    diagnosis = incident.diagnosis
    lines = [f"*{code(incident.incident_id)}* · {escape(incident.status.lower())} · {escape(incident.state)}"]
    if diagnosis is not None:
        lines.append(f"*{escape(diagnosis.title)}*: {escape(diagnosis.summary)}")
    lines.append(f"Failed {when(incident.failed_at)}")
    if incident.acknowledged_by and incident.acknowledged_at:
        lines.append(f"Acknowledged by {person(incident.acknowledged_by)} at {when(incident.acknowledged_at)}")
    if incident.mute is not None:
        lines.append(f"Muted by {person(incident.mute.by)} until {when(incident.mute.until)}")
    if incident.status == "RESOLVED":
        by = person(incident.resolved_by_user) if incident.resolved_by_user else escape(incident.resolved_by or "")
        lines.append(f"Resolved: {by}")
    if incident.slack is not None and not incident.slack.via_webhook:
        link = f"https://slack.com/archives/{incident.slack.channel}/p{incident.slack.ts.replace('.', '')}"
        lines.append(f"<{link}|The alert>")
    return clip("\n".join(lines), ANSWER_LIMIT)


def _mutes(deps: Dependencies) -> str:
    if deps.mutes is None:
        return "Mutes are not available (the interactive function is not deployed)."
    now = deps.clock()
    live = sorted((m for m in deps.mutes.all() if m.until > now), key=lambda m: m.until)
    if not live:
        return "No failure is muted."
    lines = [
        f"• {escape(m.job_key)} · signature {code(m.fingerprint[:12])} · by {person(m.by)} until {when(m.until)} "
        f"(from {code(m.incident_id)})"
        for m in live[:MAX_LISTED]
    ]
    return clip("\n".join([f"*{len(live)} muted failure{'s' if len(live) != 1 else ''}*", *lines]), ANSWER_LIMIT)


def answer(text: str, asker: Asker, deps: Dependencies, members: Callable[[str], frozenset[str]]) -> str:
    """The answer to ``/emr-triage <text>``."""
    words = text.split()
    verb = words[0].lower() if words else "help"
    if verb == "open" and len(words) <= 2:
        everywhere = len(words) == 2 and words[1].lower() == "all"
        if len(words) == 2 and not everywhere:
            return "Did you mean `/emr-triage open` or `/emr-triage open all`?"
        return _open(asker, everywhere, deps, members)
    if verb == "show" and len(words) == 2:
        return _show(asker, words[1], deps, members)
    if verb == "mutes" and len(words) == 1:
        return _mutes(deps)
    if verb == "help" and len(words) == 1:
        return HELP
    return f"I do not know `{escape(clip(text, 80))}`.\n{HELP}"

"""What people did from the alert, and the buttons to do it, as Block Kit. Pure: no I/O.

The buttons carry the incident id in their block id (``emr-triage/<incident id>``) and their value; the
interactive function (:mod:`emr_triage.interactive`) reads them back. Names of people are Slack user ids,
validated where they are recorded (:data:`USER_ID`), shown as ``<@U…>`` (Slack renders the name; editing
a message never notifies anyone again).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import TYPE_CHECKING, Any

from emr_triage.alerts.mrkdwn import clip, escape

if TYPE_CHECKING:
    from emr_triage.models.incident import Incident, Mute, MuteRef

BLOCK_PREFIX = "emr-triage/"
USER_ID = re.compile(r"^[UW][A-Z0-9]{2,20}$")
# action_id -> (what it does, who may: "channel" anyone who sees the alert, "deciders" the configured people)
ACTIONS = {
    "acknowledge": "channel",
    "mute": "deciders",
    "unmute": "deciders",
    "resolve": "deciders",
    "reopen": "deciders",
}
MUTE_CHOICES = {"1h": ("1 hour", 3600), "24h": ("24 hours", 86400), "7d": ("7 days", 7 * 86400)}
SECTION_LIMIT = 3000


def person(user: str) -> str:
    """``<@U…>`` for a validated user id; the id escaped, literally, for anything else."""
    return f"<@{user}>" if USER_ID.match(user) else escape(user)


def when(at: datetime) -> str:
    """A time every reader sees in their own time zone (Slack's date formatting), UTC as the fallback."""
    fallback = at.strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(at.timestamp())}^{{date_short_pretty}} {{time}}|{fallback}>"


def minutes_between(earlier: datetime, later: datetime) -> str:
    minutes = max(0, int((later - earlier).total_seconds() // 60))
    if minutes < 60:
        return f"{minutes} min"
    hours, rest = divmod(minutes, 60)
    return f"{hours} h {rest} min" if hours < 48 else f"{hours // 24} days"


def status_lines(incident: Incident, now: datetime) -> list[str]:
    """What people did from the alert, one mrkdwn line each (acknowledged, muted, resolved by hand)."""
    lines = []
    if incident.acknowledged_by and incident.acknowledged_at:
        after = minutes_between(incident.opened_at, incident.acknowledged_at)
        lines.append(
            f":eyes: *Acknowledged* by {person(incident.acknowledged_by)} at {when(incident.acknowledged_at)} "
            f"({after} after the alert)"
        )
    mute = incident.mute
    if mute is not None:
        verb = "Muted" if mute.until > now else "Was muted"
        lines.append(
            f":zzz: *{verb}* by {person(mute.by)} until {when(mute.until)}: later failures of this job with the "
            "same signature go to this thread and mention no one"
        )
    if incident.status == "RESOLVED" and incident.resolved_by_user:
        at = f" at {when(incident.resolved_at)}" if incident.resolved_at else ""
        lines.append(f":white_check_mark: *Resolved* by {person(incident.resolved_by_user)}{at}")
    return lines


def _button(text: str, action_id: str, incident_id: str, style: str | None = None) -> dict[str, Any]:
    button: dict[str, Any] = {
        "type": "button",
        "action_id": action_id,
        "text": {"type": "plain_text", "text": text},
        "value": incident_id,
    }
    if style:
        button["style"] = style
    return button


def action_block(incident: Incident, now: datetime, can_mute: bool) -> dict[str, Any]:
    """The buttons of the root message, for what can be done now (``can_mute``: the failure has a
    signature and belongs to a known job, see :func:`emr_triage.incidents.muting.can_mute`)."""
    incident_id = incident.incident_id
    elements: list[dict[str, Any]] = []
    if incident.status == "OPEN" and not incident.acknowledged_by:
        elements.append(_button("Acknowledge", "acknowledge", incident_id, "primary"))
    if incident.mute is not None and incident.mute.until > now:
        elements.append(_button("Unmute", "unmute", incident_id))
    elif can_mute:
        elements.append(
            {
                "type": "static_select",
                "action_id": "mute",
                "placeholder": {"type": "plain_text", "text": "Mute this failure"},
                "options": [
                    {"text": {"type": "plain_text", "text": f"Mute for {label}"}, "value": choice}
                    for choice, (label, _) in MUTE_CHOICES.items()
                ],
            }
        )
    if incident.status == "OPEN":
        elements.append(_button("Resolve", "resolve", incident_id))
    else:
        elements.append(_button("Reopen", "reopen", incident_id))
    return {"type": "actions", "block_id": f"{BLOCK_PREFIX}{incident_id}"[:255], "elements": elements}


def muted_reply_text(incident: Incident, mute: Mute) -> str:
    """The reply a failure someone muted gets in the muting alert's thread, instead of a message."""
    diagnosis = incident.diagnosis
    what = escape(diagnosis.title) if diagnosis else "the same failure"
    summary = f": {escape(diagnosis.summary)}" if diagnosis and diagnosis.summary else ""
    ids = escape(incident.incident_id)
    text = (
        f":zzz: *Failed again* at {when(incident.failed_at)} ({ids}): {what}{summary}\n"
        f"Muted by {_name(mute)} until {when(mute.until)}; no one is paged."
    )
    return clip(text, SECTION_LIMIT)


def _name(mute: MuteRef) -> str:
    """Who muted, without notifying them: their Slack name, or their id as text."""
    return escape(mute.by_name or mute.by)

"""People acting on an incident from its alert: acknowledge, mute its failure, unmute, resolve, reopen.

Each press is one conditional change of the incident (a retried or concurrent press changes it once); the
interactive function then edits the alert (:func:`~emr_triage.incidents.delivery.deliver_alert`), whose
buttons and status lines say what was done. Who may do what: anyone who sees the alert's channel may
acknowledge; muting, unmuting, resolving and reopening are for ``SLACK_DECIDERS`` when it is set (user
ids, or user groups whose members are asked of Slack), else for anyone in the channel too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from emr_triage.alerts.actions import ACTIONS, MUTE_CHOICES, USER_ID, person, when
from emr_triage.incidents.claims import write
from emr_triage.incidents.history import incident_job_key
from emr_triage.incidents.muting import can_mute
from emr_triage.models.incident import Incident, Mute, MuteRef, TimelineEntry
from emr_triage.observability import MetricName, count, seconds
from emr_triage.ports import Dependencies


@dataclass(frozen=True)
class Press:
    """One button press (or menu choice) on an alert, as Slack signed it."""

    action: str  # a key of ACTIONS
    incident_id: str
    user: str
    channel: str | None = None  # where the alert was pressed
    choice: str | None = None  # the mute's duration (a key of MUTE_CHOICES)
    user_name: str | None = None  # their Slack name, as the payload gives it


@dataclass(frozen=True)
class Answer:
    """What came of a press: whether the incident changed, and a note for the presser alone (None: the
    edited alert says it all)."""

    changed: bool
    note: str | None = None


def refusal(
    press: Press, incident: Incident, deps: Dependencies, members: Callable[[str], frozenset[str]]
) -> str | None:
    """Why this person may not do this here (None: they may). ``members``: a user group's members."""
    if incident.slack is not None and press.channel and press.channel != incident.slack.channel:
        return "This alert belongs to another channel: act on it there."
    if ACTIONS[press.action] == "channel":
        return None
    deciders = deps.settings.deciders
    if not deciders or press.user in deciders:
        return None
    if any(press.user in members(group) for group in deciders if group.startswith("S")):
        return None
    who = ", ".join(person(d) if d.startswith(("U", "W")) else f"<!subteam^{d}>" for d in sorted(deciders))
    return f"You are not allowed to {press.action} this alert: only {who} may (SLACK_DECIDERS)."


def act(press: Press, deps: Dependencies, members: Callable[[str], frozenset[str]]) -> Answer:
    """Apply a press to its incident.

    Raises
    ------
    ValueError
        An action or a mute duration that the alert's buttons never send (the caller refuses the request).
    """
    if press.action not in ACTIONS or not USER_ID.match(press.user):
        raise ValueError(f"unknown action {press.action!r} or user {press.user!r}")
    if press.action == "mute" and press.choice not in MUTE_CHOICES:
        raise ValueError(f"unknown mute duration {press.choice!r}")
    incident = deps.repository.get(press.incident_id)
    if incident is None:
        return Answer(False, f"Incident {press.incident_id} is no longer on record (it expired).")
    refused = refusal(press, incident, deps, members)
    if refused:
        return Answer(False, refused)
    now = deps.clock()
    note: list[str] = []

    def change(inc: Incident) -> Incident | None:
        note.clear()
        did = _CHANGES[press.action](inc, press, now, note)
        if did is None:
            return None
        inc.timeline.append(TimelineEntry(at=now, what=f"{did} by {press.user} from Slack"))
        inc.updated_at = now
        return inc

    stored, changed = write(deps.repository, press.incident_id, change)
    if changed and stored is not None:
        _after(press, stored, deps)
        count(MetricName.INTERACTIONS_HANDLED)
    return Answer(changed, note[0] if note else None)


def _after(press: Press, incident: Incident, deps: Dependencies) -> None:
    """What a change implies beyond the incident: the mute's own item, the time-to-acknowledge metric."""
    if press.action == "acknowledge" and incident.acknowledged_at is not None:
        seconds(MetricName.TIME_TO_ACKNOWLEDGE, (incident.acknowledged_at - incident.opened_at).total_seconds())
    if deps.mutes is None:
        return
    if press.action == "mute" and incident.mute is not None:
        mute = incident.mute
        deps.mutes.put(Mute(**mute.model_dump(), incident_id=incident.incident_id, at=deps.clock()))
    if press.action == "unmute":
        key, diagnosis = incident_job_key(incident), incident.diagnosis
        if key and diagnosis and diagnosis.fingerprint:
            deps.mutes.delete(key, diagnosis.fingerprint)


def _acknowledge(inc: Incident, press: Press, now: datetime, note: list[str]) -> str | None:
    if inc.acknowledged_by is not None and inc.acknowledged_at is not None:
        note.append(f"Already acknowledged by {person(inc.acknowledged_by)} at {when(inc.acknowledged_at)}.")
        return None
    inc.acknowledged_by, inc.acknowledged_at = press.user, now
    return "acknowledged"


def _mute(inc: Incident, press: Press, now: datetime, note: list[str]) -> str | None:
    key, diagnosis = incident_job_key(inc), inc.diagnosis
    if not can_mute(inc) or key is None or diagnosis is None or diagnosis.fingerprint is None:
        note.append("This failure cannot be muted yet: its logs have not given it a signature.")
        return None
    label, length = MUTE_CHOICES[press.choice or ""]
    until = now + timedelta(seconds=length)
    name = (press.user_name or "")[:80] or None
    inc.mute = MuteRef(fingerprint=diagnosis.fingerprint, job_key=key, by=press.user, until=until, by_name=name)
    return f"muted for {label}"


def _unmute(inc: Incident, press: Press, now: datetime, note: list[str]) -> str | None:
    if inc.mute is None:
        note.append("This failure is not muted.")
        return None
    inc.mute = None
    return "unmuted"


def _resolve(inc: Incident, press: Press, now: datetime, note: list[str]) -> str | None:
    if inc.status == "RESOLVED":
        note.append("This incident is already resolved.")
        return None
    inc.status, inc.resolved_at, inc.resolved_by_user = "RESOLVED", now, press.user
    inc.resolved_by = "resolved from Slack"
    count(MetricName.INCIDENTS_RESOLVED)
    return "resolved"


def _reopen(inc: Incident, press: Press, now: datetime, note: list[str]) -> str | None:
    if inc.status == "OPEN":
        note.append("This incident is open.")
        return None
    inc.status, inc.resolved_at, inc.resolved_by, inc.resolved_by_user = "OPEN", None, None, None
    return "reopened"


_CHANGES: dict[str, Callable[[Incident, Press, datetime, list[str]], str | None]] = {
    "acknowledge": _acknowledge,
    "mute": _mute,
    "unmute": _unmute,
    "resolve": _resolve,
    "reopen": _reopen,
}

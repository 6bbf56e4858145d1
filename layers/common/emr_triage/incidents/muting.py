"""Mutes at delivery: a failure someone muted for its job posts no root message and mentions no one.

It is recorded as usual; its alert is one reply in the thread of the alert it was muted from, until the
mute ends. The signature is known once the logs are read: a new failure of a job that has a mute waits for
its diagnosis (or for the logs' deadline) before it is alerted, so a *different* failure of a muted job
still pages, just after its logs instead of before.
"""

from __future__ import annotations

from emr_triage.alerts.actions import muted_reply_text
from emr_triage.alerts.message import SlackMessage
from emr_triage.incidents.claims import once
from emr_triage.incidents.history import incident_job_key
from emr_triage.models.incident import Incident, Mute
from emr_triage.observability import MetricName, count
from emr_triage.ports import Dependencies


def can_mute(incident: Incident) -> bool:
    """Whether the incident's failure can be muted: it has a signature and belongs to a known job."""
    diagnosis = incident.diagnosis
    return bool(diagnosis and diagnosis.fingerprint and incident_job_key(incident))


def _final(incident: Incident, deps: Dependencies) -> bool:
    """No better diagnosis is coming: the logs were diagnosed, there are none to read, or their time is up."""
    diagnosis = incident.diagnosis
    if diagnosis is not None and diagnosis.from_logs:
        return True
    return (
        incident.kind == "cluster"
        or not incident.log_location
        or deps.follow_ups is None
        or (incident.logs_deadline_passed)
    )


def matching_mute(incident: Incident, deps: Dependencies) -> tuple[Mute | None, bool]:
    """The live mute this incident's failure falls under, and whether to wait before alerting it (its job
    has a mute but its signature is not known yet)."""
    key = incident_job_key(incident)
    if deps.mutes is None or not deps.settings.slack_interactive or key is None:
        return None, False
    now = deps.clock()
    live = [m for m in deps.mutes.for_job(key) if m.until > now and m.incident_id != incident.incident_id]
    if not live:
        return None, False
    if not _final(incident, deps):
        return None, True
    fingerprint = incident.diagnosis.fingerprint if incident.diagnosis else None
    return next((m for m in live if m.fingerprint == fingerprint), None), False


def reply_under_mute(incident: Incident, mute: Mute, deps: Dependencies) -> bool:
    """Post the muted failure's one reply in the muting alert's thread (once). False: that alert has no
    thread to reply in (deleted, or sent through a webhook): alert as usual."""
    parent = deps.repository.get(mute.incident_id)
    if parent is None or parent.slack is None or parent.slack.via_webhook:
        return False
    ref = parent.slack

    def claim(inc: Incident) -> bool:
        if inc.mute_reply_posted:
            return False
        inc.mute_reply_posted, inc.muted_under = True, mute.incident_id
        return True

    def release(inc: Incident) -> bool:
        if not inc.mute_reply_posted:
            return False
        inc.mute_reply_posted = False
        return True

    def post() -> None:
        text = muted_reply_text(incident, mute)
        block = {"type": "section", "text": {"type": "mrkdwn", "text": text}}
        deps.notifier.reply(ref, SlackMessage(text=text, blocks=[block]))
        count(MetricName.ALERTS_MUTED)

    once(incident.incident_id, claim, release, post, deps)
    return True

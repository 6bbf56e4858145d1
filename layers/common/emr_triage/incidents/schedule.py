"""Scheduling an incident's log checks and hold checks on the follow-up queue, once each."""

from __future__ import annotations

from emr_triage.incidents.claims import once
from emr_triage.models.events import FollowUp
from emr_triage.models.incident import Incident
from emr_triage.ports import Dependencies


def schedule_hold_check(incident_id: str, deps: Dependencies) -> None:
    """Schedule a held incident's check, once (claimed on the incident; handed back if SQS refuses)."""
    queue = deps.follow_ups
    assert queue is not None

    def claim(inc: Incident) -> bool:
        if inc.hold_check_scheduled or not inc.held_for_parent:
            return False
        inc.hold_check_scheduled = True
        return True

    def hand_back(inc: Incident) -> bool:
        inc.hold_check_scheduled = False
        return True

    check = FollowUp(incident_id=incident_id, check=1, checks=1, purpose="hold")
    once(incident_id, claim, hand_back, lambda: queue.schedule(check, _follow_up_delay(deps)), deps)


def follow_up_due(incident: Incident, deps: Dependencies) -> bool:
    """Whether the incident still needs its log checks scheduled (step and job-run incidents whose logs
    go to S3; cluster incidents are diagnosed from EMR's reason code)."""
    return (
        deps.follow_ups is not None
        and not incident.follow_up_scheduled
        and not incident.held_for_parent
        and incident.folded_into is None
        and incident.kind != "cluster"
        and incident.log_location is not None
    )


def schedule_follow_up(incident_id: str, check: int, deps: Dependencies) -> None:
    """Schedule log check number ``check``, once: the incident records the highest check scheduled (a
    versioned write), so a duplicated delivery of the previous check does not fork the chain. If SQS
    refuses, the record is handed back and the error raised (the caller's event is retried)."""
    queue = deps.follow_ups
    assert queue is not None

    def claim(inc: Incident) -> bool:
        if inc.follow_up_check >= check:
            return False
        inc.follow_up_check = check
        return True

    def hand_back(inc: Incident) -> bool:
        if inc.follow_up_check != check:
            return False
        inc.follow_up_check = check - 1
        return True

    message = FollowUp(incident_id=incident_id, check=check, checks=deps.settings.follow_up_checks)
    once(incident_id, claim, hand_back, lambda: queue.schedule(message, _follow_up_delay(deps)), deps)


def _follow_up_delay(deps: Dependencies) -> int:
    """Seconds until the next check: the interval (0 under the replay command: "after the deadline")."""
    return deps.settings.follow_up_interval_seconds

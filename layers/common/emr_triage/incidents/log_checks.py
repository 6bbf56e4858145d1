"""A scheduled check of an incident's logs: analyse what landed and was missed, release a held
incident, and at the last check mark the logs unavailable if none could be read.
"""

from __future__ import annotations

from emr_triage.incidents.building import MAX_TIMELINE
from emr_triage.incidents.delivery import deliver_alert
from emr_triage.incidents.folding import alert_released, release_held
from emr_triage.incidents.log_reads import apply_analysis, logs_were_read, recorded_results, sweep_logs
from emr_triage.incidents.schedule import schedule_follow_up
from emr_triage.incidents.slow_checks import handle_run_check
from emr_triage.models.events import FollowUp
from emr_triage.models.incident import Incident, Outcome, TimelineEntry
from emr_triage.observability import MetricName, count, logger
from emr_triage.ports import Dependencies, account_of


def handle_follow_up(follow_up: FollowUp, deps: Dependencies) -> Outcome:
    """A scheduled check of an incident's logs: analyse what landed and was missed, and at the last check
    (the deadline) mark the incident "logs unavailable" if no log could be read, keeping EMR's reason."""
    deps = deps.in_account(account_of(follow_up.incident_id))  # a member account's: its EMR and S3
    if follow_up.purpose == "run":
        return handle_run_check(follow_up, deps)
    incident = deps.repository.get(follow_up.incident_id)
    label = f"log check {follow_up.check}/{follow_up.checks}"
    if incident is None:
        return Outcome(action="no_incident", detail=f"{label}: incident {follow_up.incident_id} no longer exists")
    if incident.status != "OPEN":
        count(MetricName.IGNORED_EVENTS)
        return Outcome(action="ignored", incident_id=incident.incident_id, detail=f"{label}: incident resolved")
    if incident.held_for_parent:
        return release_held(incident, label, deps)
    if follow_up.purpose == "hold":
        # Delivered again after the incident was released or folded (its own log checks are separate):
        # a folded one is done; a released one finishes its alert if the first delivery failed midway.
        if incident.folded_into:
            return Outcome(
                action="duplicate",
                incident_id=incident.incident_id,
                detail=f"hold check: {incident.incident_id} was already folded into {incident.folded_into}",
            )
        return alert_released(incident, label, deps)
    results = sweep_logs(incident, deps)
    # The logs that landed adding nothing to the verdict (their symptom counts, exit codes) join it now.
    swept = {(read.source, read.etag) for _, read in results}
    recorded, newest = recorded_results(incident, deps)
    results += [r for r in recorded if (r[1].source, r[1].etag) not in swept]
    final = follow_up.check >= follow_up.checks
    minutes = deps.settings.logs_deadline_minutes

    def check(inc: Incident) -> Incident | None:
        changed = bool(results)
        if results:
            inc = apply_analysis(inc, results, deps)
        if newest is not None and (inc.recorded_merged_until is None or inc.recorded_merged_until < newest):
            inc.recorded_merged_until = newest
        if final and not inc.logs_deadline_passed:
            inc.logs_deadline_passed = True
            changed = True
            if not logs_were_read(inc):
                inc.logs_unavailable = True
                inc.logs_deadline_minutes = minutes
                inc.timeline = [
                    *inc.timeline,
                    TimelineEntry(at=deps.clock(), what=f"no logs could be read within {minutes} min of the failure"),
                ][-MAX_TIMELINE:]
        return inc if changed else None

    updated = deps.repository.update(incident.incident_id, check) or incident
    if final and updated.logs_unavailable and not incident.logs_unavailable:
        count(MetricName.LOGS_UNAVAILABLE)
        logger.warning("no logs by the deadline", incident_id=incident.incident_id, minutes=minutes)
    slack = deliver_alert(incident.incident_id, deps, updated)
    if not final:
        schedule_follow_up(incident.incident_id, follow_up.check + 1, deps)
    found = f"analysed {len(results)} log(s) not seen before" if results else "no new log"
    if final:
        found += "; deadline reached: " + ("no log could be read" if updated.logs_unavailable else "logs were read")
    verdict = updated.diagnosis.category if updated.diagnosis else "no diagnosis"
    return Outcome(
        action="incident_updated" if results or final else "duplicate",
        incident_id=incident.incident_id,
        detail=f"{label}: {found}; verdict {verdict}",
        slack=slack,
    )

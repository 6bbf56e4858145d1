"""The steps every failure event shares: open the incident or resume it, tell a duplicate, finish
(merge the logs read, remember the failure, alert, schedule the checks), and reject poison input.
"""

from __future__ import annotations

from emr_triage.analysis.findings import LineAnalysis
from emr_triage.analysis.redact import redact
from emr_triage.exceptions import InvalidEventError, TransientError
from emr_triage.incidents.delivery import deliver_alert, ready_for_single_message, thread_due
from emr_triage.incidents.infrastructure import correlate_infrastructure
from emr_triage.incidents.log_reads import apply_analysis
from emr_triage.incidents.recovery import remember_failure
from emr_triage.incidents.schedule import follow_up_due, schedule_follow_up
from emr_triage.models.analysis import LogRead
from emr_triage.models.incident import Incident, Outcome, SlackAction
from emr_triage.observability import MetricName, count, logger
from emr_triage.ports import Dependencies


def open_or_resume(incident: Incident, deps: Dependencies) -> tuple[Incident, bool]:
    """Create the incident, or return the stored one when an earlier event (or attempt) created it."""
    if deps.account_prefix:  # a member account's: named in its alert as the stack's parameters name it
        incident.account_name = deps.settings.member_account_names.get(incident.account or "")
    if deps.repository.create(incident):
        count(MetricName.INCIDENTS_OPENED)
        logger.info("incident opened", incident_id=incident.incident_id, state=incident.state)
        return incident, True
    count(MetricName.DUPLICATE_EVENTS)
    stored = deps.repository.get(incident.incident_id)
    if stored is None:  # deleted between the two calls (by hand, or TTL): let Lambda retry
        raise TransientError(f"incident {incident.incident_id} vanished while being processed; retrying")
    return stored, False


def known_duplicate(incident_id: str, deps: Dependencies) -> tuple[Incident | None, Outcome | None]:
    """The stored incident, and the duplicate's outcome when it is complete: a redelivered event costs no
    EMR call (DescribeCluster is throttled account-wide at a low rate), so this is told before EMR is asked."""
    stored = deps.repository.get(incident_id)
    if stored is None or stored.held_for_parent:
        return stored, None
    done = already_alerted(stored, False, deps)
    if done is not None:
        count(MetricName.DUPLICATE_EVENTS)
    return stored, done


def already_alerted(incident: Incident, created: bool, deps: Dependencies) -> Outcome | None:
    """A duplicate (or retried) event whose incident is complete: held for (or folded into) its failed
    step, or alerted, and diagnosed unless it is a cluster incident (no logs to read: a missing diagnosis
    there is final). Otherwise the caller resumes."""
    if created:
        return None
    if incident.held_for_parent or incident.folded_into:
        return Outcome(
            action="duplicate",
            incident_id=incident.incident_id,
            detail="already recorded (duplicate event); "
            + (f"folded into {incident.folded_into}" if incident.folded_into else "waiting for the failed step"),
        )
    if incident.diagnosis is None and incident.kind != "cluster":
        return None
    if incident.slack is None and (
        deps.notifier.threads or ready_for_single_message(incident, deps.follow_ups is not None)
    ):
        return None  # not alerted yet (Slack failed): the retry posts
    if thread_due(incident, deps.clock()) is not None:
        return None  # the evidence thread did not go out (a failed upload): the retry finishes it
    if follow_up_due(incident, deps):
        return None  # the log check was not scheduled (SQS failed): the retry schedules it
    return Outcome(
        action="duplicate",
        incident_id=incident.incident_id,
        detail="already recorded and alerted (duplicate event)",
        slack="unchanged",
    )


def finish(
    incident: Incident, created: bool, results: list[tuple[LineAnalysis, LogRead]], deps: Dependencies
) -> Outcome:
    updated = (
        deps.repository.update(incident.incident_id, lambda inc: apply_analysis(inc, results, deps))
        if results
        else incident
    )
    final = updated or incident
    remember_failure(final, deps)  # a conditional write: a retried event rewrites nothing
    if created:
        correlate_infrastructure(final, deps)
    slack = alert_then_schedule(final, deps)
    diagnosis = final.diagnosis
    verdict = f"diagnosis {diagnosis.category} ({diagnosis.title})" if diagnosis else "awaiting logs"
    if diagnosis is not None and (created or results):
        count(MetricName.FAILURES_CLASSIFIED, category=diagnosis.category)
    if created:
        return Outcome(action="incident_opened", incident_id=incident.incident_id, detail=verdict, slack=slack)
    return Outcome(
        action="duplicate",
        incident_id=incident.incident_id,
        detail=f"already recorded (duplicate or retried event); {verdict}",
        slack=slack,
    )


def alert_then_schedule(incident: Incident, deps: Dependencies) -> SlackAction:
    """Deliver the alert and schedule the incident's first log check if it is due. An SQS refusal does not
    hold back the alert: it is raised after it, so the event (or check) is retried and its retry schedules."""
    schedule_failure: TransientError | None = None
    if follow_up_due(incident, deps):
        try:
            schedule_follow_up(incident.incident_id, 1, deps)
        except TransientError as exc:
            schedule_failure = exc
    slack = deliver_alert(incident.incident_id, deps)
    if schedule_failure is not None:
        raise schedule_failure
    return slack


def reject_event(raw: object, error: InvalidEventError, deps: Dependencies | None, function: str) -> Outcome:
    """Poison input: log it, count it, dead-letter it with the reason; never retry it."""
    logger.error("event rejected", reason=redact(str(error)), function=function)
    count(MetricName.INVALID_EVENTS)
    detail = str(error)
    if deps is not None and deps.dead_letters is not None:
        message_id = deps.dead_letters.send(raw, str(error), function)
        count(MetricName.DEAD_LETTERED_EVENTS)
        detail += f" (sent to the dead-letter queue as message {message_id})"
    return Outcome(action="rejected", detail=detail)

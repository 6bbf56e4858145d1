"""Successful runs: remembered per job, and resolving the open incident of the job's last failure
("recovered after 3 h" in its thread).
"""

from __future__ import annotations

from datetime import datetime

from emr_triage.alerts.message import build_recovery_reply
from emr_triage.analysis.redact import redact
from emr_triage.exceptions import TransientError
from emr_triage.incidents.building import MAX_TIMELINE, expiry
from emr_triage.incidents.claims import once, write
from emr_triage.incidents.delivery import deliver_alert
from emr_triage.incidents.history import incident_job_key, job_key
from emr_triage.incidents.pacing import wait_for_slot
from emr_triage.incidents.runs import run_finished
from emr_triage.incidents.slow_checks import finished_late
from emr_triage.models.events import EmrServerlessJobRunStateChange, EmrStepStatusChange
from emr_triage.models.incident import Incident, JobRun, Outcome, SlackAction, TimelineEntry
from emr_triage.observability import MetricName, count
from emr_triage.ports import Dependencies


def _remember_run(run: JobRun, deps: Dependencies) -> bool:
    return deps.repository.record_run(run, expiry(deps.clock(), deps))


def remember_failure(incident: Incident, deps: Dependencies) -> None:
    """The job's latest failure (for "last run" and, when a later run succeeds, the recovery), and the
    run's end, failed, for the digest (cancelled and interrupted runs too: they did not succeed)."""
    key = incident_job_key(incident)
    if key is None:
        return
    if incident.kind in ("step", "job_run", "eks_job_run"):
        run_finished(incident.incident_id, key, "FAILED", incident.failed_at, deps, incident_id=incident.incident_id)
    if incident.state != "FAILED":
        return
    _remember_run(
        JobRun(
            job_key=key,
            outcome="FAILED",
            at=incident.failed_at,
            cluster_id=incident.cluster_id,
            step_id=incident.step_id,
            application_id=incident.application_id,
            job_run_id=incident.job_run_id,
            incident_id=incident.incident_id,
        ),
        deps,
    )


def success_outcome(run: JobRun | None, what: str, deps: Dependencies) -> Outcome:
    if run is None:
        count(MetricName.IGNORED_EVENTS)
        return Outcome(action="ignored", detail=f"{what} succeeded; its job cannot be identified (no name)")
    newest = _remember_run(run, deps)
    count(MetricName.SUCCESSFUL_RUNS)
    detail = (
        f"{what} succeeded: "
        + ("remembered as the last success of " if newest else "a later success is already remembered for ")
        + run.job_key
    )
    resolved = resolve_recovered(run, what, deps)
    if resolved is not None:
        incident_id, slack = resolved
        return Outcome(
            action="incident_resolved",
            incident_id=incident_id,
            detail=f"{detail}; incident {incident_id} of its last failure resolved (recovered)",
            slack=slack,
        )
    return Outcome(action="run_recorded", detail=detail)


def _recovery_text(failed_at: datetime, run: JobRun, what: str) -> str:
    hours, rest = divmod(max(0, int((run.at - failed_at).total_seconds())), 3600)
    took = f"{hours} h {rest // 60} min" if hours else f"{rest // 60} min"
    where = f" on cluster {run.cluster_id}" if run.cluster_id else ""
    return f"{what}{where} succeeded at {run.at.strftime('%Y-%m-%d %H:%M UTC')}: recovered {took} after this failure"


def resolve_recovered(run: JobRun, what: str, deps: Dependencies) -> tuple[str, SlackAction] | None:
    """Resolve the open incident of the job's last failure when a later run of the job succeeded, and say
    so in its thread ("recovered after 3 h") and in its root message. Idempotent: the transition is a
    versioned write, and the reply is recorded on the incident once posted."""
    failure = deps.repository.last_run(run.job_key, "FAILED")
    if failure is None or failure.incident_id is None or failure.at >= run.at:
        return None
    text = redact(_recovery_text(failure.at, run, what))

    def resolve(inc: Incident) -> Incident | None:
        if inc.status != "OPEN":
            return None
        inc.status = "RESOLVED"
        inc.resolved_at = run.at
        inc.resolved_by = text
        inc.timeline = [*inc.timeline, TimelineEntry(at=run.at, what=f"resolved: {text}")][-MAX_TIMELINE:]
        return inc

    incident, resolved_now = write(deps.repository, failure.incident_id, resolve)
    if incident is None or incident.status != "RESOLVED":
        return None
    if resolved_now:
        count(MetricName.INCIDENTS_RESOLVED)
    slack = deliver_alert(incident.incident_id, deps, incident)
    _post_recovery(incident.incident_id, deps)  # also finishes a reply a failed earlier attempt left out
    return (incident.incident_id, slack) if resolved_now else None


def _post_recovery(incident_id: str, deps: Dependencies) -> None:
    """The "recovered" reply in the alert's thread, once (bot mode only: a webhook cannot reply). The reply
    is claimed on the incident first (concurrent success events post it once); a failure hands it back."""
    incident = deps.repository.get(incident_id)
    if (
        incident is None
        or incident.recovery_posted
        or incident.slack is None
        or incident.resolved_by is None
        or not deps.notifier.threads
        or incident.slack.via_webhook
    ):
        return
    ref = incident.slack

    def claim(inc: Incident) -> bool:
        if inc.recovery_posted:
            return False
        inc.recovery_posted = True
        return True

    def hand_back(inc: Incident) -> bool:
        inc.recovery_posted = False
        return True

    def reply() -> object:
        if not wait_for_slot(ref.pace_key, deps):
            raise TransientError(f"Slack channel {ref.channel} is backed up; the recovery reply is retried")
        return deps.notifier.reply(ref, build_recovery_reply(incident))

    once(incident_id, claim, hand_back, reply, deps)


def run_succeeded(run_id: str, key: str | None, at: datetime, deps: Dependencies) -> None:
    """The run's end remembered (its duration, for the job's baseline), and a slow alert edited."""
    watched = run_finished(run_id, key, "SUCCEEDED", at, deps)
    if watched is not None and watched.slow_alert is not None:
        finished_late(watched, deps)


def handle_step_success(event: EmrStepStatusChange, deps: Dependencies) -> Outcome:
    """A completed step: remembered as its job's last success (one cached DescribeCluster, one write),
    and its run's end (duration; a slow alert edited to "finished late")."""
    detail = event.detail
    key = deps.scoped_key(job_key(cluster_name=deps.emr.cluster_name(detail.cluster_id), step_name=detail.name))
    run_succeeded(deps.scoped(f"{detail.cluster_id}.{detail.step_id}"), key, event.time, deps)
    run = None
    if key is not None:
        run = JobRun(
            job_key=key, outcome="SUCCEEDED", at=event.time, cluster_id=detail.cluster_id, step_id=detail.step_id
        )
    return success_outcome(run, f"step {detail.name or detail.step_id} ({detail.step_id})", deps)


def handle_job_run_success(event: EmrServerlessJobRunStateChange, deps: Dependencies) -> Outcome:
    detail = event.detail
    key = deps.scoped_key(job_key(application_id=detail.application_id, job_run_name=detail.job_run_name))
    run_succeeded(deps.scoped(f"{detail.application_id}.{detail.job_run_id}"), key, event.time, deps)
    run = None
    if key is not None:
        run = JobRun(
            job_key=key,
            outcome="SUCCEEDED",
            at=event.time,
            application_id=detail.application_id,
            job_run_id=detail.job_run_id,
        )
    return success_outcome(run, f"job run {detail.job_run_name or detail.job_run_id} ({detail.job_run_id})", deps)

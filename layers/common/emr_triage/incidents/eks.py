"""EMR on EKS job runs: a failed or cancelled run's incident, a new driver attempt, a run that completed,
and a run entering RUNNING (watched for slowness, incidents/runs.py).

Flow of a failed job run::

    EMR Job Run State Change (FAILED)            (either of EventBridge's two names for it)
      -> duplicate?                              (the stored incident is complete: done, no EMR call)
      -> DescribeJobRun + DescribeVirtualCluster (name, failureReason, stateDetails, logUri, tags, attempts)
      -> create incident <virtual cluster>.<job run>
      -> read the pods' logs already in S3       (driver first, then the job runner's and the executors')
      -> diagnose, alert; the log checks and S3 events bring the rest, as for the other kinds
"""

from __future__ import annotations

from emr_triage.analysis.record import bounded_words, redact_tags
from emr_triage.analysis.redact import redact
from emr_triage.incidents.building import MAX_TIMELINE, eks_incident_id, expiry
from emr_triage.incidents.claims import write
from emr_triage.incidents.history import eks_job_key
from emr_triage.incidents.lifecycle import already_alerted, finish, known_duplicate, open_or_resume
from emr_triage.incidents.log_reads import sweep_logs
from emr_triage.incidents.recovery import run_succeeded, success_outcome
from emr_triage.incidents.runs import handle_eks_job_run_started, take_over_slow_alert
from emr_triage.logs.locations import eks_job_run_prefix
from emr_triage.models.emr import EksJobRunInfo
from emr_triage.models.events import EksJobRunEvent
from emr_triage.models.incident import Incident, JobRun, Outcome, TimelineEntry
from emr_triage.observability import MetricName, count
from emr_triage.ports import Dependencies

FAILING_EKS_STATES = frozenset({"FAILED", "CANCELLED"})


def _reason(run: EksJobRunInfo, event: EksJobRunEvent) -> str | None:
    reason = run.failure_reason or event.detail.failure_reason
    details = run.state_details or event.detail.state_details
    text = " — ".join(p for p in (reason, details) if p)
    if run.attempts and run.attempts > 1:
        text += f" (after {run.attempts} driver attempts)"
    return redact(text) if text else None


def _submitted(run: EksJobRunInfo) -> str | None:
    """How the run was submitted, redacted whole then cut: its entry point, sparkSubmitParameters and the
    spark-defaults overrides of its configuration (what an engineer checks first after an OOM)."""
    words = [run.entry_point or "", *(run.submit_parameters or "").split()]
    words += [f"--conf {key}={value}" for key, value in sorted(run.spark_defaults.items())]
    text = bounded_words([w for w in words if w])
    return redact(text)[:1000] if text else None


def new_eks_incident(event: EksJobRunEvent, run: EksJobRunInfo, deps: Dependencies) -> Incident:
    """The incident of a failed or cancelled EMR on EKS job run, before any log is read."""
    detail = event.detail
    vc, job_run = event.ids
    now = deps.clock()
    state = detail.state or run.state or "FAILED"
    log_location = None
    if run.log_uri:
        bucket, prefix = eks_job_run_prefix(run.log_uri, vc, job_run)
        log_location = f"s3://{bucket}/{prefix}"
    lookup_errors = [run.lookup_error] if run.lookup_error else []
    if run.found and not run.log_uri:
        lookup_errors.append(
            f"job run {job_run} has no s3MonitoringConfiguration.logUri (its logs do not go to S3), so there are "
            "no logs to analyse"
        )
    return Incident(
        incident_id=deps.scoped(eks_incident_id(vc, job_run)),
        kind="eks_job_run",
        state=state,
        severity="high" if state == "FAILED" else "low",
        region=event.region,
        account=event.account,
        virtual_cluster_id=vc,
        virtual_cluster_name=run.virtual_cluster_name,
        eks_namespace=run.eks_namespace,
        tags=redact_tags(run.tags),
        job_run_id=job_run,
        job_run_name=run.name or detail.name,
        release_label=run.release_label or detail.release_label,
        step_command=_submitted(run),
        started_at=run.created_at,
        ended_at=run.finished_at,
        failed_at=event.time,
        emr_reason_code=run.failure_reason or detail.failure_reason,
        emr_reason=_reason(run, event),
        log_location=log_location,
        lookup_errors=lookup_errors,
        timeline=[TimelineEntry(at=event.time, what=f"EMR on EKS job run {state}", event_id=event.id)],
        opened_at=now,
        updated_at=now,
        expires_at=expiry(now, deps),
    )


def handle_eks_event(event: EksJobRunEvent, deps: Dependencies) -> Outcome:
    """An EMR on EKS job run event: failure, cancellation, completion, or a new driver attempt."""
    if event.is_driver_attempt:
        return _driver_attempt(event, deps)
    state = event.detail.state or ""
    if state == "COMPLETED":
        return _completed(event, deps)
    if state == "RUNNING":
        return handle_eks_job_run_started(event, deps)
    if state not in FAILING_EKS_STATES:
        count(MetricName.IGNORED_EVENTS)
        return Outcome(action="ignored", detail=f"EMR on EKS job run state {state} is not a failure")
    vc, job_run = event.ids
    if done := known_duplicate(deps.scoped(eks_incident_id(vc, job_run)), deps)[1]:
        return done
    run = deps.emr.describe_eks_job_run(vc, job_run)
    new = new_eks_incident(event, run, deps)
    take_over_slow_alert(new, deps)  # alerted as slow while it ran: that message becomes this alert
    incident, created = open_or_resume(new, deps)
    if done := already_alerted(incident, created, deps):
        return done
    # The pods' logs already in S3 (the rest are read as they land, and by the log checks).
    return finish(incident, created, sweep_logs(incident, deps), deps)


def _completed(event: EksJobRunEvent, deps: Dependencies) -> Outcome:
    """A completed job run: its job's last success, resolving the incident of the job's last failure. The
    event's name is used when it has one; otherwise one DescribeJobRun tells it."""
    vc, job_run = event.ids
    name = event.detail.name
    if not name:
        name = deps.emr.describe_eks_job_run(vc, job_run).name
    key = deps.scoped_key(eks_job_key(vc, name))
    run_succeeded(deps.scoped(eks_incident_id(vc, job_run)), key, event.time, deps)
    run = JobRun(job_key=key, outcome="SUCCEEDED", at=event.time, job_run_id=job_run) if key else None
    return success_outcome(run, f"EMR on EKS job run {name or job_run} ({job_run})", deps)


def _driver_attempt(event: EksJobRunEvent, deps: Dependencies) -> Outcome:
    """A new driver attempt (a retry policy restarted the driver): no alert of its own, as the retry may
    succeed. It joins the job run's incident's timeline when there is one; when the run fails in the end,
    its alert says after how many attempts (DescribeJobRun), and every attempt's driver log is read."""
    vc, job_run = event.ids
    detail = event.detail
    attempt = f"driver attempt {detail.current_attempt_count}" if detail.current_attempt_count else "a new driver"
    what = f"{attempt} started" + (f" ({detail.new_driver_pod_name})" if detail.new_driver_pod_name else "")
    if detail.previous_driver_failure_message:
        what += f"; the previous driver failed: {redact(detail.previous_driver_failure_message)[:300]}"

    def add(incident: Incident) -> Incident | None:
        if any(entry.event_id == event.id for entry in incident.timeline):
            return None
        incident.timeline = [*incident.timeline, TimelineEntry(at=event.time, what=what, event_id=event.id)]
        incident.timeline = sorted(incident.timeline, key=lambda e: e.at)[-MAX_TIMELINE:]
        return incident

    incident_id = deps.scoped(eks_incident_id(vc, job_run))
    stored, written = write(deps.repository, incident_id, add)
    if stored is None:
        count(MetricName.IGNORED_EVENTS)
        return Outcome(
            action="ignored",
            detail=f"EMR on EKS job run {job_run}: {what}. Not alerted: the run goes on (a retry may succeed); "
            "if it fails, its alert counts the attempts and reads every driver's log",
        )
    return Outcome(
        action="folded" if written else "duplicate",
        incident_id=incident_id,
        detail=f"{what}: added to the timeline of incident {incident_id}",
    )

"""Incidents built from events: natural-key ids, the incident of each failing thing, and labels.

Pure functions of an event and what EMR said about it (no store, no Slack): each incident id is a natural
key (``<cluster>.<step>``, ``<cluster>.cluster``, ``<application>.<job run>``, ``<cluster>.<YARN app>``,
``<virtual cluster>.<job run>``),
so every copy of an event names the same incident.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from emr_triage.analysis.record import bounded_words, redact_tags
from emr_triage.analysis.redact import redact
from emr_triage.logs.locations import LogObject, normalise_log_uri, parse_s3_uri, serverless_driver_log, step_log_prefix
from emr_triage.models.analysis import Diagnosis, Severity
from emr_triage.models.emr import ClusterInfo, JobRunInfo, StepInfo
from emr_triage.models.events import (
    EmrClusterStateChange,
    EmrServerlessJobRunStateChange,
    EmrStepStatusChange,
    S3ObjectCreated,
)
from emr_triage.models.incident import Incident, TimelineEntry
from emr_triage.ports import Dependencies

MAX_TIMELINE = 50


MAX_CHILDREN = 50


MAX_APPLICATION_IDS = 20


_STEP_SEVERITY: dict[str, Severity] = {"FAILED": "high", "INTERRUPTED": "medium", "CANCELLED": "low"}


def step_incident_id(cluster_id: str, step_id: str) -> str:
    return f"{cluster_id}.{step_id}"


def cluster_incident_id(cluster_id: str) -> str:
    return f"{cluster_id}.cluster"


def job_run_incident_id(application_id: str, job_run_id: str) -> str:
    return f"{application_id}.{job_run_id}"


def eks_incident_id(virtual_cluster_id: str, job_run_id: str) -> str:
    return f"{virtual_cluster_id}.{job_run_id}"


def application_incident_id(cluster_id: str, yarn_application_id: str) -> str:
    return f"{cluster_id}.{yarn_application_id}"


def expiry(now: datetime, deps: Dependencies) -> int:
    return int((now + timedelta(days=deps.settings.incident_ttl_days)).timestamp())


def _log_root(cluster: ClusterInfo, deps: Dependencies) -> str:
    """The cluster's LogUri (authoritative), else the configured log bucket and prefix."""
    if cluster.log_uri:
        return normalise_log_uri(cluster.log_uri)
    return normalise_log_uri(f"s3://{deps.settings.log_bucket}/{deps.settings.log_prefix}")


def _step_command(step: StepInfo) -> str | None:
    if not step.args and not step.jar:
        return None
    words = step.args if step.jar and step.jar.endswith("command-runner.jar") else [step.jar or "", *step.args]
    # Cut at an argument's end to a bound, redacted whole, then cut for display.
    return redact(bounded_words(words))[:1000]


def new_step_incident(event: EmrStepStatusChange, cluster: ClusterInfo, step: StepInfo, deps: Dependencies) -> Incident:
    """The incident of a failed, cancelled or interrupted step, before any log is read."""
    detail = event.detail
    now = deps.clock()
    details = step.failure_details
    reason = None
    if details and (details.reason or details.message):
        reason = redact(" — ".join(p for p in (details.reason, details.message) if p))
    lookup_errors = [e for e in (cluster.lookup_error, step.lookup_error) if e]
    log_location: str | None = None
    if cluster.found and not cluster.log_uri:
        lookup_errors.append(
            f"cluster {detail.cluster_id} has no LogUri (logging to S3 is off), so there are no logs to analyse"
        )
    else:
        # Unknown cluster (lookup failed): the configured log bucket and prefix are the best guess.
        bucket, prefix = step_log_prefix(_log_root(cluster, deps), detail.cluster_id, detail.step_id)
        log_location = f"s3://{bucket}/{prefix}"
    return Incident(
        incident_id=deps.scoped(step_incident_id(detail.cluster_id, detail.step_id)),
        kind="step",
        state=detail.state,
        severity=_STEP_SEVERITY.get(detail.state, "high"),
        region=event.region,
        account=event.account,
        cluster_id=detail.cluster_id,
        cluster_name=cluster.name or None,
        master_public_dns=cluster.master_public_dns,
        release_label=cluster.release_label,
        tags=redact_tags(cluster.tags),
        step_id=detail.step_id,
        step_name=step.name or detail.name or None,
        action_on_failure=step.action_on_failure or detail.action_on_failure,
        step_command=_step_command(step),
        started_at=step.started_at,
        ended_at=step.ended_at,
        failed_at=event.time,
        emr_reason=reason,
        emr_log_file=details.log_file if details else None,
        log_location=log_location,
        lookup_errors=lookup_errors,
        timeline=[TimelineEntry(at=event.time, what=f"step {detail.state}", event_id=event.id)],
        opened_at=now,
        updated_at=now,
        expires_at=expiry(now, deps),
    )


def _emr_reason_diagnosis(code: str, message: str | None, deps: Dependencies) -> Diagnosis | None:
    meaning = deps.catalogue.emr_reasons.get(code)
    if meaning is None:
        return None
    return Diagnosis(
        category=meaning.category,
        title=meaning.title,
        severity=meaning.severity,
        retryable=meaning.retryable,
        summary=message or code,
        remediation=meaning.remediation.strip(),
        from_logs=False,
        # The same reason code is the same failure signature (recurrence of bootstrap failures, ...).
        fingerprint=hashlib.sha256(f"emr-reason:{code}".encode()).hexdigest()[:16],
    )


def new_cluster_incident(event: EmrClusterStateChange, cluster: ClusterInfo, deps: Dependencies) -> Incident:
    detail = event.detail
    now = deps.clock()
    code = detail.state_change_reason.code or cluster.state_reason_code or ""
    message = redact(detail.state_change_reason.message or cluster.state_reason_message or "") or None
    return Incident(
        incident_id=deps.scoped(cluster_incident_id(detail.cluster_id)),
        kind="cluster",
        state=detail.state,
        severity="critical" if detail.state == "TERMINATED_WITH_ERRORS" else "high",
        region=event.region,
        account=event.account,
        cluster_id=detail.cluster_id,
        cluster_name=cluster.name or detail.name or None,
        release_label=cluster.release_label,
        tags=redact_tags(cluster.tags),
        failed_at=event.time,
        emr_reason_code=code or None,
        emr_reason=f"{code}: {message}" if code and message else (message or code or None),
        log_location=_log_root(cluster, deps) + f"{detail.cluster_id}/" if cluster.found else None,
        lookup_errors=[cluster.lookup_error] if cluster.lookup_error else [],
        diagnosis=_emr_reason_diagnosis(code, message, deps),
        timeline=[
            TimelineEntry(at=event.time, what=f"cluster {detail.state} ({code or 'no reason code'})", event_id=event.id)
        ],
        opened_at=now,
        updated_at=now,
        expires_at=expiry(now, deps),
    )


def new_job_run_incident(event: EmrServerlessJobRunStateChange, run: JobRunInfo, deps: Dependencies) -> Incident:
    detail = event.detail
    now = deps.clock()
    log_location = None
    if run.log_uri:
        bucket, key = serverless_driver_log(run.log_uri, detail.application_id, detail.job_run_id)
        log_location = f"s3://{bucket}/{key.rsplit('/', 2)[0]}/"
    return Incident(
        incident_id=deps.scoped(job_run_incident_id(detail.application_id, detail.job_run_id)),
        kind="job_run",
        state=detail.state,
        severity="high" if detail.state == "FAILED" else "low",
        region=event.region,
        account=event.account,
        application_id=detail.application_id,
        application_name=run.application_name,
        tags=redact_tags(run.tags),
        job_run_id=detail.job_run_id,
        job_run_name=run.name or detail.job_run_name,
        release_label=run.release_label or detail.release_label,
        started_at=run.started_at or run.created_at or detail.created_at,
        ended_at=run.ended_at or run.updated_at or detail.updated_at,
        failed_at=event.time,
        emr_reason=redact(run.state_details) if run.state_details else None,
        log_location=log_location,
        lookup_errors=[run.lookup_error] if run.lookup_error else [],
        timeline=[TimelineEntry(at=event.time, what=f"job run {detail.state}", event_id=event.id)],
        opened_at=now,
        updated_at=now,
        expires_at=expiry(now, deps),
    )


def new_application_incident(
    obj: LogObject, event: S3ObjectCreated, cluster: ClusterInfo, spark_app_name: str | None, deps: Dependencies
) -> Incident:
    """The incident of a YARN application submitted outside the Steps API (a notebook, an orchestrator's
    spark-submit, a long-running cluster's own jobs), whose driver's log shows it failed. ``at``: when
    that log landed in S3, the closest to its failure that is known without reading its timestamps."""
    at = event.time
    app = obj.application_id or "?"
    now = deps.clock()
    bucket, prefix = parse_s3_uri(_log_root(cluster, deps)) if cluster.log_uri else (obj.bucket, "")
    if not cluster.log_uri:
        prefix = obj.key.split(f"{obj.cluster_id}/containers/", 1)[0]
    lookup_errors = [cluster.lookup_error] if cluster.lookup_error else []
    return Incident(
        incident_id=deps.scoped(application_incident_id(obj.cluster_id, app)),
        kind="application",
        state="FAILED",
        severity="high",
        region=event.region,
        account=event.account,
        cluster_id=obj.cluster_id,
        cluster_name=cluster.name or None,
        master_public_dns=cluster.master_public_dns,
        release_label=cluster.release_label,
        tags=redact_tags(cluster.tags),
        yarn_application_id=app,
        spark_app_name=spark_app_name,
        application_ids=[app],
        failed_at=at,
        log_location=f"s3://{bucket}/{prefix}{obj.cluster_id}/containers/{app}/",
        lookup_errors=lookup_errors,
        timeline=[
            TimelineEntry(
                at=at,
                what=f"application {app} failed (no EMR step submitted it): its driver's log "
                f"{obj.key.rsplit('/', 2)[-2]}/{obj.file} says so",
            )
        ],
        opened_at=now,
        updated_at=now,
        expires_at=expiry(now, deps),
    )


def child_label(incident: Incident) -> str:
    if incident.kind == "cluster":
        return f"cluster {incident.cluster_name or incident.cluster_id} {incident.state} ({incident.emr_reason_code})"
    if incident.kind == "application":
        name = f"{incident.spark_app_name} " if incident.spark_app_name else ""
        return f"application {name}({incident.yarn_application_id}) {incident.state}"
    if incident.kind in ("job_run", "eks_job_run"):
        return f"job run {incident.job_run_name or incident.job_run_id} ({incident.job_run_id}) {incident.state}"
    return f"step {incident.step_name or incident.step_id} ({incident.step_id}) {incident.state}"

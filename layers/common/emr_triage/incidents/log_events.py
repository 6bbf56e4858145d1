"""Log objects landing in S3: analysed and merged into their incident once, or, for the driver log
of an application no incident claims, an incident of its own when it failed.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal
from urllib.parse import unquote_plus

from emr_triage.analysis.findings import LineAnalysis
from emr_triage.analysis.verdict import succeeded
from emr_triage.exceptions import LogReadError
from emr_triage.incidents.building import eks_incident_id, new_application_incident, step_incident_id
from emr_triage.incidents.claims import write
from emr_triage.incidents.delivery import deliver_alert
from emr_triage.incidents.folding import FOLD_WINDOW, hold
from emr_triage.incidents.history import job_key
from emr_triage.incidents.lifecycle import already_alerted, finish, open_or_resume
from emr_triage.incidents.log_reads import (
    adds_nothing,
    already_read,
    analyse_object,
    apply_analysis,
    record_for_check,
    step_stderr_read,
    sweep_logs,
    was_read,
)
from emr_triage.incidents.recovery import success_outcome
from emr_triage.logs.locations import DRIVER_SIDE, LogObject, identify_log_object, log_weight, parse_s3_uri
from emr_triage.models.analysis import LogRead
from emr_triage.models.emr import StepInfo
from emr_triage.models.events import S3ObjectCreated
from emr_triage.models.incident import Incident, JobRun, Outcome
from emr_triage.observability import MetricName, count, logger
from emr_triage.ports import Dependencies

UNLINKED_LOG_WINDOW = timedelta(hours=6)


def _incident_for_log(obj: LogObject, at: datetime, deps: Dependencies) -> Incident | None:
    """The incident a log object belongs to: its step's, the step incident linked to its YARN application
    (``Submitted application ...`` in the step's stderr), or its application's own incident (one submitted
    outside the Steps API). A container log of an application no incident knows joins the cluster's latest
    step failure only if that failed within UNLINKED_LOG_WINDOW and has no application linked yet because
    its stderr has not been read (it may not have landed)."""
    if obj.kind == "step" and obj.step_id:
        return deps.repository.get(deps.scoped(step_incident_id(obj.cluster_id, obj.step_id)))
    if obj.kind == "eks" and obj.job_run_id:
        return deps.repository.get(deps.scoped(eks_incident_id(obj.cluster_id, obj.job_run_id)))
    candidates = [
        i for i in deps.repository.open_incidents(cluster_id=obj.cluster_id) if i.kind in ("step", "application")
    ]
    linked = [i for i in candidates if obj.application_id in i.application_ids]
    if linked:
        return max(linked, key=lambda i: (i.kind == "step", i.failed_at))
    unlinked = [
        i
        for i in candidates
        if i.kind == "step"
        and not i.application_ids
        and not step_stderr_read(i)
        and not i.logs_deadline_passed
        and timedelta(0) <= at - i.failed_at <= UNLINKED_LOG_WINDOW
    ]
    return max(unlinked, key=lambda i: i.failed_at, default=None)


def _is_driver_log(obj: LogObject) -> bool:
    """The ApplicationMaster container's stderr: in cluster mode the driver's own log, where Spark writes
    the application's final status."""
    return obj.kind == "container" and obj.is_application_master and obj.file.startswith("stderr")


def final_status(analysis: LineAnalysis, deps: Dependencies) -> Literal["FAILED", "SUCCEEDED"] | None:
    """How a driver's log says its application ended: a final-status line (rules marked ``final_status``)
    of failure with no success after it, or of success after every failure. None: it does not say (still
    running, or a notebook session whose cell errors were caught: not an application failure)."""
    final = [f for f in analysis.findings if (rule := deps.catalogue.get(f.rule_id)) is not None and rule.final_status]
    if any(f.kind == "success" for f in final) and succeeded(analysis.findings):
        return "SUCCEEDED"
    if any(f.kind != "success" for f in final) and not succeeded(analysis.findings):
        return "FAILED"
    return None


def _resolved_owner(obj: LogObject, at: datetime, deps: Dependencies) -> Incident | None:
    """A step incident of the cluster, opened within UNLINKED_LOG_WINDOW before the log landed and
    resolved already, that submitted this application: linked from its stderr, or, when a quick rerun
    resolved it before its stderr was read, shown by its stderr now (read here, on this rare path only)."""
    if not obj.application_id:
        return None
    resolved = deps.repository.resolved_incidents(obj.cluster_id, opened_since=at - UNLINKED_LOG_WINDOW)
    steps = sorted((i for i in resolved if i.kind == "step"), key=lambda i: i.failed_at, reverse=True)
    linked = next((i for i in steps if obj.application_id in i.application_ids), None)
    if linked is not None:
        return linked
    for step in steps:
        if step.application_ids or step_stderr_read(step) or not step.log_location:
            continue
        if not timedelta(0) <= at - step.failed_at <= UNLINKED_LOG_WINDOW:
            continue
        try:
            bucket, prefix = parse_s3_uri(step.log_location)
        except ValueError:
            continue
        analysis, read = analyse_object(deps, bucket, f"{prefix.rstrip('/')}/stderr.gz", retry_transient=True)
        if was_read(read) and obj.application_id in analysis.application_ids:
            return step
    return None


def _step_may_own(obj: LogObject, at: datetime, deps: Dependencies) -> StepInfo | None:
    """A step of the cluster that failed shortly before this log landed and has no incident yet: its
    FAILED event is late, and this application may be the step's. None when EMR cannot tell."""
    for step in deps.emr.failed_steps(obj.cluster_id) or []:
        # A failed step has ended; without its end time it is given the benefit of the doubt.
        ended = step.ended_at or step.started_at
        if ended is not None and not timedelta(0) <= at - ended <= FOLD_WINDOW:
            continue
        if deps.repository.get(deps.scoped(step_incident_id(obj.cluster_id, step.step_id))) is None:
            return step
    return None


def handle_unclaimed_driver_log(obj: LogObject, event: S3ObjectCreated, deps: Dependencies) -> Outcome:
    """The driver log of a YARN application no incident claims: an application submitted outside the
    Steps API (or a step's whose FAILED event is late). Read it; if the application failed, open its own
    incident and alert; if it succeeded, remember the run (it resolves an earlier failure of the same
    application name on a cluster of the same name)."""
    app = obj.application_id or "?"
    etag = event.detail.object.etag or None
    result = analyse_object(deps, obj.bucket, obj.key, etag, retry_transient=True)
    analysis, read = result
    name = analysis.spark_app_name
    label = f"application {f'{name} ' if name else ''}({app})"
    if not was_read(read):
        count(MetricName.IGNORED_EVENTS)
        return Outcome(
            action="no_incident",
            detail=f"driver log of {label} could not be read, so whether it failed is unknown: "
            + "; ".join(read.notes),
        )
    status = final_status(analysis, deps)
    if status is None and read.partial:
        # The final status is at the end of the log, beyond what could be read.
        count(MetricName.PARTIAL_LOG_READS)
        logger.warning("driver log only partly read: final status unknown", source=obj.uri)
        return Outcome(
            action="no_incident",
            detail=f"driver log of {label} was only partly read ({'; '.join(read.notes)}): whether the "
            "application failed is unknown",
        )
    if status != "FAILED":
        if status == "SUCCEEDED":
            key = deps.scoped_key(job_key(cluster_name=deps.emr.cluster_name(obj.cluster_id), spark_app_name=name))
            run = (
                JobRun(job_key=key, outcome="SUCCEEDED", at=event.time, cluster_id=obj.cluster_id)
                if key is not None
                else None
            )
            if run is not None:
                return success_outcome(run, label, deps)
        count(MetricName.IGNORED_EVENTS)
        return Outcome(
            action="no_incident",
            detail=f"driver log of {label}: no step incident claims it and it does not show the application "
            "ending failed (no final status of failure: still running, or errors it caught and went on from)",
        )
    # A step incident may have claimed the application while its log was read (its stderr, just read).
    if (claimed := _incident_for_log(obj, event.time, deps)) is not None:
        return _merge_log(claimed, obj, result, deps)
    # Or claimed it, and was resolved by a quick rerun before this log landed: the failure it shows is
    # that incident's, and its rerun succeeded: no second alert.
    if (resolved := _resolved_owner(obj, event.time, deps)) is not None:
        count(MetricName.IGNORED_EVENTS)
        return Outcome(
            action="no_incident",
            incident_id=resolved.incident_id,
            detail=f"driver log of {label}: its failure is step incident {resolved.incident_id}'s, already "
            f"resolved ({resolved.resolved_by or 'recovered'}): not alerted again",
        )
    cluster = deps.emr.describe_cluster(obj.cluster_id)
    new = apply_analysis(new_application_incident(obj, event, cluster, name, deps), [result], deps)
    owner = _step_may_own(obj, event.time, deps) if deps.follow_ups is not None else None
    new.held_for_parent = owner is not None
    new.held_for_step = owner.step_id if owner is not None else None
    incident, created = open_or_resume(new, deps)
    if incident.held_for_parent:
        why = "a step of the cluster failed and its event has not arrived"
        if owner is not None:
            why = f"step {owner.name or owner.step_id} ({owner.step_id}) failed and its event has not arrived"
        return hold(incident, deps, created, why)
    if done := already_alerted(incident, created, deps):
        return done
    # Its executors' logs that landed with the driver's (their S3 events found no incident yet).
    return finish(incident, created, sweep_logs(incident, deps), deps)


def handle_log_event(event: S3ObjectCreated, deps: Dependencies) -> Outcome:
    """Analyse a newly written EMR log object and merge it into its incident."""
    deps = deps.in_account(event.account)  # a member account's log: read through its role, ids carry it
    bucket = event.detail.bucket.name
    key = _object_key(bucket, event.detail.object.key, deps)
    obj = identify_log_object(bucket, key, deps.settings.log_prefix)
    if obj is None:
        count(MetricName.IGNORED_EVENTS)
        return Outcome(
            action="ignored",
            detail=f"s3://{bucket}/{key[:300]} is not an EMR step, YARN container or EMR on EKS pod log under the "
            "configured prefix",
        )
    incident = _incident_for_log(obj, event.time, deps)
    if incident is None and _is_driver_log(obj) and deps.settings.detect_applications_outside_steps:
        return handle_unclaimed_driver_log(obj, event, deps)
    if incident is None and obj.kind == "eks":
        return Outcome(
            action="no_incident",
            detail=f"no incident for EMR on EKS job run {obj.job_run_id} of virtual cluster {obj.cluster_id}: it has "
            "not failed, or its failure event has not arrived (its handler reads the logs already in S3)",
        )
    if incident is None:
        return Outcome(
            action="no_incident",
            detail=f"no open incident for {obj.cluster_id}"
            + (f" step {obj.step_id}" if obj.step_id else "")
            + ": nothing failed yet, or the failure event has not arrived (its handler reads logs already in S3)",
        )
    etag = event.detail.object.etag or None
    if etag and already_read(incident, obj.uri, etag):
        count(MetricName.DUPLICATE_EVENTS)
        if resumed := _resume(incident, deps):
            return resumed
        return Outcome(
            action="duplicate",
            incident_id=incident.incident_id,
            detail=f"{obj.uri} (etag {etag}) was already analysed",
        )
    result = analyse_object(deps, bucket, key, etag, retry_transient=True)
    return _merge_log(incident, obj, result, deps)


def _object_key(bucket: str, key: str, deps: Dependencies) -> str:
    """The key of the object an S3 event names: as sent, or its URL-decoded form when only that exists.

    Classic S3 notifications URL-encode keys (a space becomes ``+``); whether EventBridge's do is not
    documented. EMR's own key segments need no encoding, so this matters only for a log prefix with
    spaces or non-ASCII characters, and only such keys cost a listing. An S3 throttle propagates (the
    event is retried); a listing that is denied leaves the key as sent.
    """
    decoded = unquote_plus(key)
    if decoded == key:
        return key
    for candidate in (key, decoded):
        try:
            listed = deps.logs.list_objects(bucket, candidate, limit=2)
        except LogReadError:
            return key
        if any(found.key == candidate for found in listed):
            return candidate
    return key


def _resume(incident: Incident, deps: Dependencies) -> Outcome | None:
    """A retried event whose log was merged but whose incident's next steps did not all happen (SQS or
    Slack failed after the write): schedule the hold check, or finish the alert. None: nothing left."""
    if incident.held_for_parent:
        if incident.hold_check_scheduled:
            return None
        return hold(incident, deps, False, "waiting for its failed step")
    if already_alerted(incident, False, deps) is not None:
        return None
    return finish(incident, False, [], deps)


def _recorded(
    incident: Incident, obj: LogObject, result: tuple[LineAnalysis, LogRead], unchanged: Outcome, deps: Dependencies
) -> Outcome:
    """A log that adds nothing to the verdict: kept for the next log check (its counts), not merged now."""
    if not record_for_check(incident, result, deps):
        count(MetricName.DUPLICATE_EVENTS)
        return Outcome(action="duplicate", incident_id=incident.incident_id, detail=f"{obj.uri} was already analysed")
    count(MetricName.LOGS_ADDING_NOTHING)
    return unchanged


def _merge_log(incident: Incident, obj: LogObject, result: tuple[LineAnalysis, LogRead], deps: Dependencies) -> Outcome:
    """Merge one analysed log object into its incident (once) and update the alert. An executor's log that
    changes nothing the incident shows is kept for the next log check instead (see :func:`adds_nothing`)."""
    unchanged = Outcome(
        action="unchanged",
        incident_id=incident.incident_id,
        detail=f"analysed {obj.file} of {obj.kind} {obj.step_id or obj.container_id or obj.pod}: "
        f"{len(result[0].findings)} finding(s), nothing the incident does not show already",
    )
    # An executor's log (the hundreds of a fan-in); the driver's and a step's own logs are merged at once.
    keepable = log_weight(obj.key) < DRIVER_SIDE
    if keepable and adds_nothing(incident, apply_analysis(incident.model_copy(deep=True), [result], deps)):
        return _recorded(incident, obj, result, unchanged, deps)

    def merge(inc: Incident) -> Incident | None:
        # A concurrent copy of this event may have merged this object since it was looked up.
        if already_read(inc, result[1].source, result[1].etag):
            return None
        merged = apply_analysis(inc.model_copy(deep=True), [result], deps)
        # (re-applied after a conflict: what a concurrent log wrote may already say all this one says)
        return None if keepable and adds_nothing(inc, merged) else merged

    updated, merged = write(deps.repository, incident.incident_id, merge)
    if not merged and updated is not None and not already_read(updated, result[1].source, result[1].etag):
        return _recorded(updated, obj, result, unchanged, deps)
    if not merged:
        count(MetricName.DUPLICATE_EVENTS)
        return Outcome(
            action="duplicate",
            incident_id=incident.incident_id,
            detail=f"{obj.uri} was analysed by a concurrent delivery of the same event",
        )
    count(MetricName.INCIDENTS_UPDATED)
    slack = deliver_alert(incident.incident_id, deps, updated)
    diagnosis = (updated or incident).diagnosis
    verdict = diagnosis.category if diagnosis else "no diagnosis"
    return Outcome(
        action="incident_updated",
        incident_id=incident.incident_id,
        detail=f"analysed {obj.file} of {obj.kind} {obj.step_id or obj.container_id or obj.pod}: "
        f"{len(result[0].findings)} finding(s); verdict {verdict}",
        slack=slack,
    )

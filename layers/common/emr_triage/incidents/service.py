"""What happens to each event: the incident lifecycle, from a failure event to a Slack alert.

One function per event family; each is idempotent by construction (natural-key incident ids, conditional
writes, a claim before posting to Slack), so EventBridge's at-least-once delivery and Lambda's retries
never produce a second incident or a second root message.

Flow of a failed step::

    EMR Step Status Change (FAILED)
      → DescribeCluster + DescribeStep          (names, tags, LogUri, FailureDetails, timeline)
      → create incident <cluster>.<step>         (conditional put: a duplicate event finds it)
      → read the step's logs already in S3       (stderr, controller, syslog; gzip, streamed)
      → diagnose, update the incident            (versioned write)
      → post or update the Slack root message    (claimed first, recorded after)

A log object arriving later (S3 Object Created) is analysed and merged into its incident, and the
Slack message is edited in place when the verdict or evidence changes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Literal, TypeVar
from urllib.parse import unquote_plus

from emr_triage.analysis.engine import analyse_stream
from emr_triage.analysis.findings import LineAnalysis
from emr_triage.analysis.record import bounded_words, redact_tags
from emr_triage.analysis.redact import redact
from emr_triage.analysis.verdict import attachment_text, diagnose, merge_exit_codes, merge_findings, succeeded
from emr_triage.exceptions import (
    InvalidEventError,
    LogReadError,
    SlackConfigurationError,
    SlackMessageGoneError,
    TransientError,
)
from emr_triage.incidents.history import RECURRENCE_DAYS, alert_context, incident_job_key, job_key
from emr_triage.logs.locations import (
    STEP_LOG_FILES,
    LogObject,
    identify_log_object,
    normalise_log_uri,
    parse_s3_uri,
    serverless_driver_log,
    step_log_prefix,
)
from emr_triage.models.analysis import Diagnosis, LogRead, Severity
from emr_triage.models.emr import ClusterInfo, JobRunInfo, StepInfo
from emr_triage.models.events import (
    EmrClusterStateChange,
    EmrEvent,
    EmrInfrastructureEvent,
    EmrServerlessJobRunStateChange,
    EmrStepStatusChange,
    FollowUp,
    S3ObjectCreated,
)
from emr_triage.models.incident import (
    AlertContext,
    Incident,
    InfraEvent,
    JobRun,
    Outcome,
    SlackAction,
    TimelineEntry,
)
from emr_triage.notify.message import (
    SlackMessage,
    build_incident_message,
    build_recovery_reply,
    build_single_message,
    build_thread_reply,
)
from emr_triage.notify.routing import Destination, RoutingError, cached_routes, destination
from emr_triage.observability import MetricName, count, logger
from emr_triage.ports import Dependencies, PostPacer

T = TypeVar("T")

FAILING_STEP_STATES = frozenset({"FAILED", "CANCELLED", "INTERRUPTED"})
FAILING_CLUSTER_STATES = frozenset({"TERMINATED_WITH_ERRORS"})
FAILING_JOB_RUN_STATES = frozenset({"FAILED", "CANCELLED"})
SLACK_CLAIM_SECONDS = 120
# How long to wait for another invocation that holds the claim to finish posting, before retrying.
SLACK_CLAIM_WAIT_SECONDS = 20
MAX_TIMELINE = 50
MAX_LOG_READS = 40
MAX_STEP_LOG_OBJECTS = 4
MAX_CHILDREN = 50
MAX_APPLICATION_IDS = 20
MAX_REDELIVERIES = 3
# Logs a sweep of an incident's S3 prefixes analyses at most (driver-side first; executors' logs arrive
# through their own S3 events).
MAX_SWEEP_OBJECTS = 6
MAX_SWEPT_APPLICATIONS = 3


# Verdicts an incoming webhook waits past (until the deadline) for a better one, as it cannot edit: no
# finding, or only symptoms (YARN's words that the application failed, an error no rule knows).
def _provisional(diagnosis: Diagnosis) -> bool:
    if diagnosis.root_kind is None:  # stored before root_kind was recorded
        return diagnosis.category in {"other", "no_failure"}
    return diagnosis.root_kind != "cause"


# A cancelled or interrupted step, or a cluster terminated by STEP_FAILURE, is folded into an open step
# incident only if that step failed this recently (ActionOnFailure acts within minutes); a container log
# with no known application link only joins an incident whose step failed this recently.
FOLD_WINDOW = timedelta(hours=2)
# A storm folds new incidents into the channel's latest alert if that was posted this recently.
STORM_WINDOW = timedelta(minutes=30)
UNLINKED_LOG_WINDOW = timedelta(hours=6)

_STEP_SEVERITY: dict[str, Severity] = {"FAILED": "high", "INTERRUPTED": "medium", "CANCELLED": "low"}


# ---------------------------------------------------------------------------------------------------
# Incident ids (natural keys) and construction
# ---------------------------------------------------------------------------------------------------
def step_incident_id(cluster_id: str, step_id: str) -> str:
    return f"{cluster_id}.{step_id}"


def cluster_incident_id(cluster_id: str) -> str:
    return f"{cluster_id}.cluster"


def job_run_incident_id(application_id: str, job_run_id: str) -> str:
    return f"{application_id}.{job_run_id}"


def application_incident_id(cluster_id: str, yarn_application_id: str) -> str:
    return f"{cluster_id}.{yarn_application_id}"


def _expires_at(now: datetime, deps: Dependencies) -> int:
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
        incident_id=step_incident_id(detail.cluster_id, detail.step_id),
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
        expires_at=_expires_at(now, deps),
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
        incident_id=cluster_incident_id(detail.cluster_id),
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
        expires_at=_expires_at(now, deps),
    )


def new_job_run_incident(event: EmrServerlessJobRunStateChange, run: JobRunInfo, deps: Dependencies) -> Incident:
    detail = event.detail
    now = deps.clock()
    log_location = None
    if run.log_uri:
        bucket, key = serverless_driver_log(run.log_uri, detail.application_id, detail.job_run_id)
        log_location = f"s3://{bucket}/{key.rsplit('/', 2)[0]}/"
    return Incident(
        incident_id=job_run_incident_id(detail.application_id, detail.job_run_id),
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
        expires_at=_expires_at(now, deps),
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
        incident_id=application_incident_id(obj.cluster_id, app),
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
        expires_at=_expires_at(now, deps),
    )


# ---------------------------------------------------------------------------------------------------
# Log analysis applied to incidents (pure) and reading (through the log store)
# ---------------------------------------------------------------------------------------------------
def apply_analysis(incident: Incident, results: list[tuple[LineAnalysis, LogRead]], deps: Dependencies) -> Incident:
    """Merge the findings and reads of some logs into an incident and re-diagnose it. A log object already
    merged (same source and etag, actually read) is skipped, so re-reading it (a resumed event, a sweep)
    neither doubles its counts nor re-diagnoses."""
    results = [(a, r) for a, r in results if not _already_read(incident, r.source, r.etag)]
    if not results:
        return incident
    for analysis, read in results:
        incident.findings = merge_findings(incident.findings, analysis.findings)
        incident.exit_codes = merge_exit_codes(incident.exit_codes, analysis.exit_codes)
        kept = [r for r in incident.logs_analysed if (r.source, r.etag) != (read.source, read.etag)]
        incident.logs_analysed = [*kept[-MAX_LOG_READS + 1 :], read]
        for app in analysis.application_ids:
            if app not in incident.application_ids and len(incident.application_ids) < MAX_APPLICATION_IDS:
                incident.application_ids.append(app)
    # Every incident is a run that did not succeed (EMR or YARN said so): lines healthy runs also print
    # (lost executors, fetch failures) then name the cause when nothing more specific is in the logs.
    diagnosis = diagnose(
        incident.findings, deps.catalogue, incident.logs_analysed, incident.exit_codes, outcome="failed"
    )
    if diagnosis.category == "no_failure" and incident.diagnosis and not incident.diagnosis.from_logs:
        # Logs that show nothing do not replace what EMR itself said (a cluster's reason code).
        diagnosis = incident.diagnosis.model_copy(
            update={"partial": diagnosis.partial, "partial_notes": diagnosis.partial_notes}
        )
    incident.diagnosis = diagnosis
    names = ", ".join(read.source.rsplit("/", 1)[-1] for _, read in results)
    incident.timeline = [
        *incident.timeline,
        TimelineEntry(at=deps.clock(), what=f"analysed {names}: {diagnosis.category}"),
    ][-MAX_TIMELINE:]
    return incident


def _unread(uri: str, etag: str | None, note: str) -> tuple[LineAnalysis, LogRead]:
    return LineAnalysis(), LogRead(source=uri, etag=etag, partial=True, notes=[redact(note)])


def _analyse_object(
    deps: Dependencies, bucket: str, key: str, weight: int, etag: str | None = None, *, retry_transient: bool = False
) -> tuple[LineAnalysis, LogRead]:
    """Analyse one log object. Failures become an unread record with the reason (the alert goes out with
    the other logs, and a later sweep tries again); with ``retry_transient`` an S3 throttle or 5xx is
    raised instead, so the event that announced this object is retried."""
    uri = f"s3://{bucket}/{key}"
    left = deps.seconds_left()
    if left is not None and left <= 0:
        return _unread(uri, etag, "not read: the function's time budget was used by the logs read before it")
    try:
        stream = deps.logs.open_object(bucket, key)
        analysis, read = analyse_stream(
            stream.chunks,
            catalogue=deps.catalogue,
            source=uri,
            source_weight=weight,
            etag=etag or stream.info.etag,
            max_bytes=deps.settings.log_read_max_bytes,
            max_line_bytes=deps.settings.log_max_line_bytes,
            deadline=deps.deadline,
        )
    except LogReadError as exc:
        logger.warning("log object unreadable", source=uri, reason=redact(str(exc)))
        return _unread(uri, etag, str(exc))
    except TransientError as exc:
        if retry_transient:
            raise
        logger.warning("log object not read (transient)", source=uri, reason=redact(str(exc)))
        return _unread(uri, etag, f"not read yet: {exc}")
    except Exception as exc:
        # A log must never stop the alert: record what happened, alert with what we have.
        logger.exception("log analysis failed", source=uri)
        return _unread(uri, etag, f"analysis failed ({type(exc).__name__}); the alert uses the other logs")
    count(MetricName.LOG_OBJECTS_ANALYSED)
    if read.partial:
        count(MetricName.PARTIAL_LOG_READS)
    return analysis, read


def read_step_logs(incident: Incident, deps: Dependencies) -> list[tuple[LineAnalysis, LogRead]]:
    """Analyse the step's logs already in S3 (stderr first). Missing logs are normal: EMR pushes them
    every 5 minutes, and the log-arrival function analyses them when they land."""
    if not incident.log_location:
        return []
    bucket, prefix = parse_s3_uri(incident.log_location)
    try:
        objects = deps.logs.list_objects(bucket, prefix, limit=50)
    except LogReadError as exc:
        return [(LineAnalysis(), LogRead(source=incident.log_location, partial=True, notes=[str(exc)]))]
    by_name = {obj.key.rsplit("/", 1)[-1]: obj for obj in objects}
    results = []
    for name in STEP_LOG_FILES[:MAX_STEP_LOG_OBJECTS]:
        obj = by_name.get(name)
        if obj is None:
            continue
        weight = 3 if name.startswith("stderr") else 2
        results.append(_analyse_object(deps, obj.bucket, obj.key, weight, obj.etag))
    return results


def _was_read(read: LogRead) -> bool:
    """Whether a log was actually read (not only noted as unreadable, denied or out of budget)."""
    return read.lines > 0 or read.bytes_read > 0


def _already_read(incident: Incident, uri: str, etag: str | None) -> bool:
    """Whether this object (this version of it) was read into the incident. An attempt that read nothing
    (S3 throttled it, the time budget ran out) does not count: the next sweep or event tries again."""
    return any(r.source == uri and (etag is None or r.etag == etag) and _was_read(r) for r in incident.logs_analysed)


def _container_candidates(
    incident: Incident, application_ids: list[str], deps: Dependencies
) -> list[tuple[str, str, int, str | None]]:
    """The ApplicationMaster (driver) container logs of the step's YARN applications already in S3."""
    if not incident.log_location or incident.kind != "step" or not incident.cluster_id:
        return []
    bucket, prefix = parse_s3_uri(incident.log_location)
    cluster_prefix = prefix.split(f"{incident.cluster_id}/", 1)[0] + f"{incident.cluster_id}/"
    found = []
    for app in application_ids[:MAX_SWEPT_APPLICATIONS]:
        for obj in deps.logs.list_objects(bucket, f"{cluster_prefix}containers/{app}/", limit=200):
            log = identify_log_object(obj.bucket, obj.key)
            if log is not None and log.is_application_master and log.file.startswith(("stderr", "stdout")):
                found.append((obj.bucket, obj.key, log.weight, obj.etag))
    return found


def _sweep_candidates(incident: Incident, deps: Dependencies) -> list[tuple[str, str, int, str | None]]:
    """Log objects of the incident already in S3 and not analysed yet, driver-side first."""
    if not incident.log_location:
        return []
    bucket, prefix = parse_s3_uri(incident.log_location)
    found: list[tuple[str, str, int, str | None]] = []
    if incident.kind == "step":
        for obj in deps.logs.list_objects(bucket, prefix, limit=50):
            name = obj.key.rsplit("/", 1)[-1]
            if name in STEP_LOG_FILES[:MAX_STEP_LOG_OBJECTS]:
                found.append((obj.bucket, obj.key, 3 if name.startswith("stderr") else 2, obj.etag))
        found += _container_candidates(incident, incident.application_ids, deps)
    elif incident.kind == "application":
        # The driver's logs, then its executors' stderr (they land with the driver's, in the same push).
        for obj in deps.logs.list_objects(bucket, prefix, limit=200):
            log = identify_log_object(obj.bucket, obj.key)
            wanted = ("stderr", "stdout") if log is not None and log.is_application_master else ("stderr",)
            if log is not None and log.kind == "container" and log.file.startswith(wanted):
                found.append((obj.bucket, obj.key, log.weight, obj.etag))
    elif incident.kind == "job_run":
        # SPARK_DRIVER/{stderr,stdout}.gz, then SPARK_EXECUTOR/<n>/stderr.gz (the driver's verdict wins ties).
        for obj in deps.logs.list_objects(bucket, prefix, limit=200):
            name = obj.key.rsplit("/", 1)[-1]
            if "/SPARK_DRIVER/" in obj.key and name.startswith(("stderr", "stdout")):
                found.append((obj.bucket, obj.key, 3 if name.startswith("stderr") else 2, obj.etag))
            elif "/SPARK_EXECUTOR/" in obj.key and name.startswith("stderr"):
                found.append((obj.bucket, obj.key, 1, obj.etag))
    fresh = [c for c in found if not _already_read(incident, f"s3://{c[0]}/{c[1]}", c[3])]
    return sorted(fresh, key=lambda c: -c[2])[:MAX_SWEEP_OBJECTS]


def sweep_logs(incident: Incident, deps: Dependencies) -> list[tuple[LineAnalysis, LogRead]]:
    """Analyse the incident's logs that are in S3 but were not analysed: logs that landed before the
    failure event (their S3 events found no incident), or whose S3 events never came (EventBridge
    notifications off on the bucket). A listing that fails (access denied) is noted, not raised."""
    try:
        candidates = _sweep_candidates(incident, deps)
    except LogReadError as exc:
        return [_unread(incident.log_location or "?", None, str(exc))]
    return [_analyse_object(deps, bucket, key, weight, etag) for bucket, key, weight, etag in candidates]


# ---------------------------------------------------------------------------------------------------
# Slack delivery: claim, post, record; or update in place
# ---------------------------------------------------------------------------------------------------
def deliver_alert(incident_id: str, deps: Dependencies, _depth: int = 0) -> SlackAction:
    """Make Slack say what the incident says now: the root message (posted once, then edited in place),
    and, once the logs are diagnosed, the evidence and the redacted extract file in its thread."""
    if not deps.notifier.threads:
        return _deliver_single(incident_id, deps)
    action = _deliver_root(incident_id, deps, _depth)
    if _depth == 0 and action != "none":
        _deliver_thread(incident_id, deps)
    return action


def ready_for_single_message(incident: Incident, follow_ups: bool) -> bool:
    """Whether an incident is final enough for the one message an incoming webhook allows: a cause found
    in the logs, or nothing more to wait for (no logs to read, no follow-up to wait for, the deadline)."""
    if incident.kind == "cluster" or not incident.log_location or not follow_ups or incident.logs_deadline_passed:
        return True
    diagnosis = incident.diagnosis
    return diagnosis is not None and diagnosis.from_logs and not _provisional(diagnosis)


def _deliver_single(incident_id: str, deps: Dependencies) -> SlackAction:
    """Incoming-webhook mode: one message per incident, posted once it is final enough (see
    :func:`ready_for_single_message`), with the diagnosis and a truncated extract inline."""
    incident = deps.repository.get(incident_id)
    if incident is None or incident.held_for_parent or incident.folded_into:
        return "none"
    if incident.slack is not None:
        return "unchanged"
    if not ready_for_single_message(incident, deps.follow_ups is not None):
        return "none"
    route = _destination(incident, deps)
    message = build_single_message(incident, route.mention, _alert_context(incident, deps))
    return _post_once(incident_id, route.channel, message, deps)


def _post_once(incident_id: str, channel: str, message: SlackMessage, deps: Dependencies) -> SlackAction:
    """Post the incident's root message if this invocation wins the claim, and record where it went.

    The post waits for the channel's next slot (one post per channel per interval). When a storm has
    backed the channel up beyond ``SLACK_STORM_AFTER_SECONDS``, the incident is folded into the channel's
    latest alert instead ("folded"). "unchanged": another invocation posted it. A failed post hands the
    claim back and raises (Lambda retries)."""
    if not _claim_post(incident_id, deps):
        return "unchanged"
    try:
        if not _pace(channel, deps, max_wait=deps.settings.slack_storm_after_seconds):
            if _fold_into_storm(incident_id, channel, deps):
                return "folded"
            if not _pace(channel, deps):
                raise TransientError(
                    f"incident {incident_id}: Slack channel {channel} is backed up beyond this invocation's time "
                    "and has no recent alert to fold it into; retrying the event"
                )
        ref = deps.notifier.post(channel, message)
    except Exception:
        count(MetricName.SLACK_DELIVERY_FAILURES)
        deps.repository.update(incident_id, _release_claim)
        raise
    deps.repository.update(incident_id, lambda inc: _record_slack(inc, ref.digest, ref.channel, ref.ts, channel))
    count(MetricName.SLACK_MESSAGES_POSTED)
    if deps.notifier.threads:
        _pacing_call(lambda pacer: pacer.record_root(channel, incident_id, deps.clock().timestamp()), None, deps)
    return "posted"


def _pacing_call(call: Callable[[PostPacer], T], unavailable: T, deps: Dependencies) -> T:
    """Call the pacer. A transient failure propagates (the event is retried); any other (a missing IAM
    grant) is logged and counted, and ``unavailable`` is returned, as when there is no pacer: Slack is then
    called unpaced rather than not at all."""
    if deps.pacer is None:
        return unavailable
    try:
        return call(deps.pacer)
    except TransientError:
        raise
    except Exception as exc:
        logger.error("Slack post pacing unavailable; posting unpaced", problem=redact(str(exc)))
        count(MetricName.SLACK_DELIVERY_FAILURES)
        return unavailable


def _pace(channel: str, deps: Dependencies, *, max_wait: float | None = None) -> bool:
    """Wait for the channel's next post slot (Slack allows about one post per second per channel).

    False (no slot taken): the slot is more than ``max_wait`` seconds away, or beyond this invocation's
    time. True: posting now keeps the pace (or there is no pacer, or it is unavailable)."""
    if deps.pacer is None:
        return True
    limits = [limit for limit in (max_wait, deps.seconds_left()) if limit is not None]
    limit = max(0.0, min(limits)) if limits else None
    now = deps.clock().timestamp()
    post_now: float | None = 0.0  # what pacing that is unavailable amounts to
    wait = _pacing_call(lambda pacer: pacer.reserve(channel, now, limit), post_now, deps)
    if wait is None:
        return False
    if wait > 0:
        count(MetricName.SLACK_POSTS_PACED)
        deps.sleep(wait)
    return True


def _fold_into_storm(incident_id: str, channel: str, deps: Dependencies) -> bool:
    """Fold an incident whose channel is backed up into the channel's latest alert (posted within
    STORM_WINDOW, with room for it): that alert lists it, edited in place, and it gets no message of its
    own. The alert is told first, so a retry after a failure in between cannot lose the incident. False:
    no such alert (the incident is then posted, queued behind the storm)."""
    last = _pacing_call(lambda pacer: pacer.last_root(channel), None, deps)
    now = deps.clock()
    if last is None or last.incident_id == incident_id or now.timestamp() - last.at > STORM_WINDOW.total_seconds():
        return False
    parent = deps.repository.get(last.incident_id)
    incident = deps.repository.get(incident_id)
    if parent is None or parent.slack is None or incident is None or not deps.notifier.threads:
        return False
    label = _child_label(incident)
    if incident.diagnosis is not None:
        label += f": {incident.diagnosis.title}"
    label += f" [{incident_id}]"
    marker = f"[{incident_id}]"

    def add(inc: Incident) -> Incident | None:
        if any(c.endswith(marker) for c in inc.storm_children):
            return None
        if len(inc.storm_children) >= MAX_CHILDREN:
            return None
        inc.storm_children = [*inc.storm_children, label]
        return inc

    updated = deps.repository.update(parent.incident_id, add)
    if updated is None or not any(c.endswith(marker) for c in updated.storm_children):
        return False  # the alert is full (or gone): post this one after all

    def fold(inc: Incident) -> Incident | None:
        if inc.slack is not None:
            return None
        inc.folded_into = parent.incident_id
        inc.slack_claim_until = None
        inc.timeline = [*inc.timeline, TimelineEntry(at=now, what=f"storm in {channel}: folded", event_id=None)][
            -MAX_TIMELINE:
        ]
        return inc

    deps.repository.update(incident_id, fold)
    count(MetricName.STORM_FOLDED_INCIDENTS)
    logger.warning(
        "Slack channel backed up: incident folded into its latest alert",
        incident_id=incident_id,
        into=parent.incident_id,
    )
    deliver_alert(parent.incident_id, deps)
    return True


def _destination(incident: Incident, deps: Dependencies) -> Destination:
    """Where the alert goes (tags, then routes, then the default channel). A bad routing file is logged
    and counted, and alerts go to the default channel rather than nowhere."""
    try:
        routes = cached_routes(deps.settings.routing_file)
    except RoutingError as exc:
        logger.error("routing file rejected; using the default channel", problem=str(exc))
        count(MetricName.SLACK_DELIVERY_FAILURES)
        routes = ()
    return destination(incident, deps.settings.slack_channel, routes)


def _thread_due(incident: Incident, now: datetime) -> str | None:
    """The fingerprint of the verdict whose evidence thread is still to be posted, if any (posted, or being
    posted under a live lease: none)."""
    diagnosis = incident.diagnosis
    if incident.slack is None or diagnosis is None or not diagnosis.from_logs or diagnosis.category == "no_failure":
        return None
    if not diagnosis.fingerprint or incident.slack.via_webhook:
        return None
    if incident.slack.thread_fingerprint == diagnosis.fingerprint:
        lease = incident.slack.thread_claim_until
        if lease is None or lease > now:
            return None
    if _provisional(diagnosis) and not incident.logs_deadline_passed:
        return None  # no cause identified yet: the evidence waits for a better log, or the deadline
    return diagnosis.fingerprint


def _alert_context(incident: Incident, deps: Dependencies) -> AlertContext | None:
    """Recurrence of the incident's signature and the job's last success, from the store. History is a
    nicety: if it cannot be read, the alert goes out without it."""
    diagnosis = incident.diagnosis
    key = incident_job_key(incident)
    try:
        seen = None
        if diagnosis is not None and diagnosis.fingerprint and diagnosis.category != "no_failure":
            fingerprint, at, own = diagnosis.fingerprint, incident.failed_at, incident.incident_id
            times = deps.repository.signature_times(
                fingerprint, since=at - timedelta(days=RECURRENCE_DAYS), until=at, exclude=own
            )
            seen = (times, deps.repository.signature_first_seen(fingerprint, until=at, exclude=own))
        success = deps.repository.last_run(key, "SUCCEEDED") if key else None
    except Exception as exc:
        logger.warning("incident history unavailable; alerting without it", problem=redact(str(exc)))
        return None
    return alert_context(incident, seen, success, deps.settings.incident_ttl_days)


def _root_message(incident: Incident, deps: Dependencies) -> tuple[Destination, SlackMessage]:
    route = _destination(incident, deps)
    return route, build_incident_message(incident, route.mention, _alert_context(incident, deps))


def _deliver_thread(incident_id: str, deps: Dependencies) -> bool:
    """Post the evidence as a reply in the root message's thread and upload the full redacted extract
    there, once per verdict (a better verdict from a later log posts its own). The verdict is claimed on
    the incident first (a conditional write), so concurrent invocations post it once; a failure hands the
    claim back for the retry."""
    incident = deps.repository.get(incident_id)
    now = deps.clock()
    fingerprint = _thread_due(incident, now) if incident is not None else None
    if incident is None or incident.slack is None or incident.diagnosis is None or fingerprint is None:
        return False
    diagnosis = incident.diagnosis
    root = incident.slack
    claimed = False
    reply_done = False

    def claim(inc: Incident) -> Incident | None:
        nonlocal claimed, reply_done
        claimed = False
        if inc.slack is None or inc.slack.ts != root.ts or _thread_due(inc, now) != fingerprint:
            return None
        inc.slack.thread_fingerprint = fingerprint
        inc.slack.thread_claim_until = now + timedelta(seconds=SLACK_CLAIM_SECONDS)
        claimed = True
        reply_done = inc.slack.reply_fingerprint == fingerprint
        return inc

    def release(inc: Incident) -> Incident | None:
        if inc.slack is None or inc.slack.thread_fingerprint != fingerprint:
            return None
        inc.slack.thread_fingerprint = None
        inc.slack.thread_claim_until = None
        return inc

    def done(inc: Incident) -> Incident | None:
        if inc.slack is None or inc.slack.thread_fingerprint != fingerprint:
            return None
        inc.slack.thread_claim_until = None
        return inc

    def replied(inc: Incident) -> Incident | None:
        if inc.slack is None or inc.slack.ts != root.ts:
            return None
        inc.slack.reply_fingerprint = fingerprint
        return inc

    deps.repository.update(incident_id, claim)
    if not claimed:
        return False

    def paced() -> bool:
        """The channel's next slot, or (backed up beyond this invocation) the claim handed back: the next
        delivery posts the thread."""
        if _pace(root.pace_key, deps):
            return True
        deps.repository.update(incident_id, release)
        return False

    try:
        if not reply_done:
            if not paced():
                return False
            deps.notifier.reply(root, build_thread_reply(incident))
            deps.repository.update(incident_id, replied)
        if not paced():
            return False
        deps.notifier.upload(
            root,
            filename=f"{incident.incident_id}-extract.txt",
            content=redact(attachment_text(diagnosis, incident.findings)),
            title=f"Redacted log extract: {diagnosis.title}",
        )
    except SlackMessageGoneError:
        deps.repository.update(incident_id, release)
        return False  # the root message is gone: the next delivery posts a new one, then its thread
    except SlackConfigurationError as exc:
        # The alert itself is out; a missing files:write scope must not make every event fail and be
        # retried. Say what to fix, count it, and try again with the next event.
        deps.repository.update(incident_id, release)
        logger.error("could not post the evidence thread", incident_id=incident_id, problem=str(exc))
        count(MetricName.SLACK_DELIVERY_FAILURES)
        return False
    except Exception:
        deps.repository.update(incident_id, release)
        count(MetricName.SLACK_DELIVERY_FAILURES)
        raise
    deps.repository.update(incident_id, done)
    count(MetricName.SLACK_THREAD_REPLIES)
    return True


def _deliver_root(incident_id: str, deps: Dependencies, _depth: int = 0) -> SlackAction:
    """Make the incident's Slack root message say what the incident says now.

    Posts it once: a time-limited claim on the incident stops concurrent invocations from both posting,
    and an invocation that finds the claim taken waits for the other to finish, then fails (so Lambda
    retries it) rather than succeed without an alert. Channel and ts are recorded after the post; later
    changes edit the message in place, and each post or edit re-checks that what Slack shows is the
    latest. The incident is stored before Slack is called, so a Slack outage loses nothing: the error
    propagates, Lambda retries the event, and the retry finds the incident and finishes the delivery.
    """
    incident = deps.repository.get(incident_id)
    if incident is None or (incident.held_for_parent and incident.slack is None) or incident.folded_into:
        return "none"
    if incident.slack is not None and incident.slack.via_webhook:
        return "unchanged"  # alerted through an incoming webhook (before a switch to a bot): nothing to edit
    route, message = _root_message(incident, deps)
    if incident.slack is not None:
        if incident.slack.digest == message.digest():
            return "unchanged"
        try:
            ref = deps.notifier.update(incident.slack, message)
        except SlackMessageGoneError:
            logger.warning("the alert's Slack message was deleted; posting a new one", incident_id=incident_id)
            deps.repository.update(incident_id, _forget_slack_message)
            return _deliver_root(incident_id, deps, _depth + 1)
        except Exception:
            count(MetricName.SLACK_DELIVERY_FAILURES)
            raise
        deps.repository.update(incident_id, lambda inc: _record_slack(inc, ref.digest, ref.channel, ref.ts))
        count(MetricName.SLACK_MESSAGES_UPDATED)
        _catch_up(incident_id, deps, _depth)
        return "updated"

    action = _post_once(incident_id, route.channel, message, deps)
    if action == "posted":
        _catch_up(incident_id, deps, _depth)
    return action


def _claim_post(incident_id: str, deps: Dependencies) -> bool:
    """Take the right to post the root message. False: another invocation posted it meanwhile.

    Raises
    ------
    TransientError
        Another invocation holds the claim and has not finished within the wait: retry the event later
        (by then it has posted, or its claim has expired because it died).
    """
    waited = 0.0
    while True:
        now = deps.clock()
        claimed = False

        def claim(inc: Incident, now: datetime = now) -> Incident | None:
            nonlocal claimed
            claimed = False
            if inc.slack is not None or (inc.slack_claim_until is not None and inc.slack_claim_until > now):
                return None
            inc.slack_claim_until = now + timedelta(seconds=SLACK_CLAIM_SECONDS)
            claimed = True
            return inc

        current = deps.repository.update(incident_id, claim)
        if claimed:
            return True
        if current is not None and current.slack is not None:
            return False
        left = deps.seconds_left()
        if waited >= SLACK_CLAIM_WAIT_SECONDS or (left is not None and left < 1):
            raise TransientError(
                f"incident {incident_id}: another invocation is posting its Slack message and did not finish "
                f"within {waited:.0f} s; retrying the event (it will have posted, or its claim will have expired)"
            )
        deps.sleep(1.0)
        waited += 1.0


def _catch_up(incident_id: str, deps: Dependencies, depth: int) -> None:
    """After a post or an edit, if the incident changed meanwhile (a log arrived, a concurrent edit won
    the race with older content), edit the message again so Slack shows the latest."""
    latest = deps.repository.get(incident_id)
    if latest is None or latest.slack is None or depth >= MAX_REDELIVERIES:
        return
    if _root_message(latest, deps)[1].digest() != latest.slack.digest:
        _deliver_root(incident_id, deps, depth + 1)


def _forget_slack_message(incident: Incident) -> Incident:
    incident.slack = None
    incident.slack_claim_until = None
    return incident


def _record_slack(incident: Incident, digest: str, channel: str, ts: str, routed_to: str | None = None) -> Incident:
    from emr_triage.models.incident import SlackRef

    same = incident.slack is not None and incident.slack.ts == ts
    previous = incident.slack if same else None
    incident.slack = SlackRef(
        channel=channel,
        ts=ts,
        digest=digest,
        routed_to=routed_to or (previous.routed_to if previous else None),
        thread_fingerprint=previous.thread_fingerprint if previous else None,
        reply_fingerprint=previous.reply_fingerprint if previous else None,
        thread_claim_until=previous.thread_claim_until if previous else None,
    )
    incident.slack_claim_until = None
    return incident


def _release_claim(incident: Incident) -> Incident | None:
    if incident.slack_claim_until is None:
        return None
    incident.slack_claim_until = None
    return incident


# ---------------------------------------------------------------------------------------------------
# Event handlers
# ---------------------------------------------------------------------------------------------------
def _fold_child(
    parent_id: str,
    child: str,
    event_id: str | None,
    at: datetime,
    deps: Dependencies,
    application_ids: list[str] | None = None,
) -> None:
    def add_child(inc: Incident) -> Incident | None:
        if child in inc.children or len(inc.children) >= MAX_CHILDREN:
            return None
        inc.children = [*inc.children, child]
        # A folded application's later logs (its executors') then find the parent.
        for app in application_ids or []:
            if app not in inc.application_ids and len(inc.application_ids) < MAX_APPLICATION_IDS:
                inc.application_ids.append(app)
        inc.timeline = [*inc.timeline, TimelineEntry(at=at, what=child, event_id=event_id)][-MAX_TIMELINE:]
        return inc

    deps.repository.update(parent_id, add_child)
    count(MetricName.FOLDED_EVENTS)


def _fold_into(parent: Incident, child: str, event_id: str, at: datetime, deps: Dependencies) -> Outcome:
    _fold_child(parent.incident_id, child, event_id, at, deps)
    slack = deliver_alert(parent.incident_id, deps)
    return Outcome(
        action="folded",
        incident_id=parent.incident_id,
        detail=f"{child}: folded into open incident {parent.incident_id}, no new alert",
        slack=slack,
    )


def _open_or_resume(incident: Incident, deps: Dependencies) -> tuple[Incident, bool]:
    """Create the incident, or return the stored one when an earlier event (or attempt) created it."""
    if deps.repository.create(incident):
        count(MetricName.INCIDENTS_OPENED)
        logger.info("incident opened", incident_id=incident.incident_id, state=incident.state)
        return incident, True
    count(MetricName.DUPLICATE_EVENTS)
    stored = deps.repository.get(incident.incident_id)
    if stored is None:  # deleted between the two calls (by hand, or TTL): let Lambda retry
        raise TransientError(f"incident {incident.incident_id} vanished while being processed; retrying")
    return stored, False


def _known_duplicate(incident_id: str, deps: Dependencies) -> tuple[Incident | None, Outcome | None]:
    """The stored incident, and the duplicate's outcome when it is complete: a redelivered event costs no
    EMR call (DescribeCluster is throttled account-wide at a low rate), so this is told before EMR is asked."""
    stored = deps.repository.get(incident_id)
    if stored is None or stored.held_for_parent:
        return stored, None
    done = _already_alerted(stored, False, deps)
    if done is not None:
        count(MetricName.DUPLICATE_EVENTS)
    return stored, done


def _already_alerted(incident: Incident, created: bool, deps: Dependencies) -> Outcome | None:
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
    if _thread_due(incident, deps.clock()) is not None:
        return None  # the evidence thread did not go out (a failed upload): the retry finishes it
    if _follow_up_due(incident, deps):
        return None  # the log check was not scheduled (SQS failed): the retry schedules it
    return Outcome(
        action="duplicate",
        incident_id=incident.incident_id,
        detail="already recorded and alerted (duplicate event)",
        slack="unchanged",
    )


def _finish(
    incident: Incident, created: bool, results: list[tuple[LineAnalysis, LogRead]], deps: Dependencies
) -> Outcome:
    updated = (
        deps.repository.update(incident.incident_id, lambda inc: apply_analysis(inc, results, deps))
        if results
        else incident
    )
    final = updated or incident
    _remember_failure(final, deps)  # a conditional write: a retried event rewrites nothing
    if created:
        correlate_infrastructure(final, deps)
    slack = _alert_then_schedule(final, deps)
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


def _alert_then_schedule(incident: Incident, deps: Dependencies) -> SlackAction:
    """Deliver the alert and schedule the incident's first log check if it is due. An SQS refusal does not
    hold back the alert: it is raised after it, so the event (or check) is retried and its retry schedules."""
    schedule_failure: TransientError | None = None
    if _follow_up_due(incident, deps):
        try:
            _schedule_follow_up(incident.incident_id, 1, deps)
        except TransientError as exc:
            schedule_failure = exc
    slack = deliver_alert(incident.incident_id, deps)
    if schedule_failure is not None:
        raise schedule_failure
    return slack


def _once(
    incident_id: str,
    claim: Callable[[Incident], bool],
    release: Callable[[Incident], bool],
    action: Callable[[], object],
    deps: Dependencies,
) -> None:
    """Do ``action`` once however many invocations try: ``claim`` marks it taken on the incident (a
    versioned write; False: already taken, nothing to do); if ``action`` fails, ``release`` hands the mark
    back (False: nothing to hand back) and the error propagates, so the retry takes it again."""
    claimed = False

    def take(inc: Incident) -> Incident | None:
        nonlocal claimed
        claimed = claim(inc)
        return inc if claimed else None

    deps.repository.update(incident_id, take)
    if not claimed:
        return
    try:
        action()
    except Exception:
        deps.repository.update(incident_id, lambda inc: inc if release(inc) else None)
        raise


def _recent_step_failure(cluster_id: str, at: datetime, deps: Dependencies) -> Incident | None:
    """The cluster's open FAILED-step incident that failed within FOLD_WINDOW before ``at`` (the latest)."""
    candidates = [
        i
        for i in deps.repository.open_incidents(cluster_id=cluster_id)
        if i.kind == "step" and i.state == "FAILED" and timedelta(0) <= at - i.failed_at <= FOLD_WINDOW
    ]
    return max(candidates, key=lambda i: i.failed_at, default=None)


def _remember_run(run: JobRun, deps: Dependencies) -> bool:
    return deps.repository.record_run(run, _expires_at(deps.clock(), deps))


def _remember_failure(incident: Incident, deps: Dependencies) -> None:
    """The job's latest failure (for "last run" and, when a later run succeeds, the recovery)."""
    key = incident_job_key(incident)
    if key is None or incident.state != "FAILED":
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


def _success_outcome(run: JobRun | None, what: str, deps: Dependencies) -> Outcome:
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

    resolved_now = False

    def resolve(inc: Incident) -> Incident | None:
        nonlocal resolved_now
        resolved_now = False
        if inc.status != "OPEN":
            return None
        resolved_now = True
        inc.status = "RESOLVED"
        inc.resolved_at = run.at
        inc.resolved_by = text
        inc.timeline = [*inc.timeline, TimelineEntry(at=run.at, what=f"resolved: {text}")][-MAX_TIMELINE:]
        return inc

    incident = deps.repository.update(failure.incident_id, resolve)
    if incident is None or incident.status != "RESOLVED":
        return None
    if resolved_now:
        count(MetricName.INCIDENTS_RESOLVED)
    slack = deliver_alert(incident.incident_id, deps)
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
        if not _pace(ref.pace_key, deps):
            raise TransientError(f"Slack channel {ref.channel} is backed up; the recovery reply is retried")
        return deps.notifier.reply(ref, build_recovery_reply(incident))

    _once(incident_id, claim, hand_back, reply, deps)


def handle_step_success(event: EmrStepStatusChange, deps: Dependencies) -> Outcome:
    """A completed step: remembered as its job's last success (one cached DescribeCluster, one write)."""
    detail = event.detail
    key = job_key(cluster_name=deps.emr.cluster_name(detail.cluster_id), step_name=detail.name)
    run = None
    if key is not None:
        run = JobRun(
            job_key=key, outcome="SUCCEEDED", at=event.time, cluster_id=detail.cluster_id, step_id=detail.step_id
        )
    return _success_outcome(run, f"step {detail.name or detail.step_id} ({detail.step_id})", deps)


def handle_job_run_success(event: EmrServerlessJobRunStateChange, deps: Dependencies) -> Outcome:
    detail = event.detail
    key = job_key(application_id=detail.application_id, job_run_name=detail.job_run_name)
    run = None
    if key is not None:
        run = JobRun(
            job_key=key,
            outcome="SUCCEEDED",
            at=event.time,
            application_id=detail.application_id,
            job_run_id=detail.job_run_id,
        )
    return _success_outcome(run, f"job run {detail.job_run_name or detail.job_run_id} ({detail.job_run_id})", deps)


def _hold(incident: Incident, deps: Dependencies, created: bool, why: str) -> Outcome:
    """A held incident (created held: a cancelled or interrupted step, a STEP_FAILURE cluster or an
    application whose failed step has not been reported; EventBridge does not order events): not alerted.
    Its check, one interval later, folds it into that step's alert if it came, else alerts it on its own.
    Holding is decided before the incident is created, so a concurrent copy of the event finds it held."""
    if not incident.hold_check_scheduled:
        _schedule_hold_check(incident.incident_id, deps)
    return Outcome(
        action="incident_opened" if created else "duplicate",
        incident_id=incident.incident_id,
        detail=f"held: {why}; folded into that step's alert when it is reported, else alerted at the next check",
        slack="none",
    )


def _schedule_hold_check(incident_id: str, deps: Dependencies) -> None:
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
    _once(incident_id, claim, hand_back, lambda: queue.schedule(check, _follow_up_delay(deps)), deps)


def _adopt_held(parent: Incident, deps: Dependencies) -> list[str]:
    """Fold into a step failure's incident the held incidents of its cluster that its failure explains
    (cancelled/interrupted steps and a STEP_FAILURE termination reported just after it)."""
    if parent.kind != "step" or parent.state != "FAILED" or parent.cluster_id is None:
        return []
    adopted = []
    for held in deps.repository.open_incidents(cluster_id=parent.cluster_id):
        if not held.held_for_parent or not timedelta(0) <= held.failed_at - parent.failed_at <= FOLD_WINDOW:
            continue
        if held.held_for_step is not None and held.held_for_step != parent.step_id:
            continue  # an application held for another step's late event

        def fold(inc: Incident, parent_id: str = parent.incident_id) -> Incident | None:
            if inc.folded_into or not inc.held_for_parent:
                return None
            inc.folded_into = parent_id
            inc.held_for_parent = False
            inc.status = "RESOLVED"
            inc.resolved_at = deps.clock()
            inc.resolved_by = f"folded into the alert of {parent_id}"
            return inc

        folded = deps.repository.update(held.incident_id, fold)
        if folded is not None and folded.folded_into == parent.incident_id:
            adopted.append(held)
    for held in adopted:
        _fold_child(
            parent.incident_id,
            _child_label(held),
            held.timeline[0].event_id if held.timeline else None,
            held.failed_at,
            deps,
            held.application_ids if held.kind == "application" else None,
        )
    return [h.incident_id for h in adopted]


def _child_label(incident: Incident) -> str:
    if incident.kind == "cluster":
        return f"cluster {incident.cluster_name or incident.cluster_id} {incident.state} ({incident.emr_reason_code})"
    if incident.kind == "application":
        name = f"{incident.spark_app_name} " if incident.spark_app_name else ""
        return f"application {name}({incident.yarn_application_id}) {incident.state}"
    return f"step {incident.step_name or incident.step_id} ({incident.step_id}) {incident.state}"


def handle_step_event(event: EmrStepStatusChange, deps: Dependencies) -> Outcome:
    detail = event.detail
    if detail.state == "COMPLETED":
        return handle_step_success(event, deps)
    if detail.state not in FAILING_STEP_STATES:
        count(MetricName.IGNORED_EVENTS)
        return Outcome(action="ignored", detail=f"step state {detail.state} is not a failure")
    incident_id = step_incident_id(detail.cluster_id, detail.step_id)
    stored, done = _known_duplicate(incident_id, deps)
    if done:
        return done
    if detail.state != "FAILED" and stored is None:
        # A step cancelled or interrupted because another step failed (ActionOnFailure) or the
        # cluster died is part of that story, not a new page.
        parent = _recent_step_failure(detail.cluster_id, event.time, deps)
        if parent is not None:
            child = f"step {detail.name or detail.step_id} ({detail.step_id}) {detail.state}"
            return _fold_into(parent, child, event.id, event.time, deps)
    cluster = deps.emr.describe_cluster(detail.cluster_id)
    # A cluster EMR cannot describe has no step to describe either: save the call.
    step = (
        deps.emr.describe_step(detail.cluster_id, detail.step_id) if cluster.found else StepInfo(step_id=detail.step_id)
    )
    new = new_step_incident(event, cluster, step, deps)
    # No failed step to fold into yet: it may still be reported (held), when there are checks to wait with.
    new.held_for_parent = detail.state != "FAILED" and deps.follow_ups is not None
    incident, created = _open_or_resume(new, deps)
    if incident.held_for_parent:
        return _hold(incident, deps, created, f"its failed step has not been reported on {detail.cluster_id}")
    if done := _already_alerted(incident, created, deps):
        return done
    if detail.state == "FAILED":
        _adopt_held(incident, deps)
    results = read_step_logs(incident, deps)
    # The driver's container log may have landed before this event (its S3 event found no incident).
    applications = [app for analysis, _ in results for app in analysis.application_ids]
    try:
        candidates = _container_candidates(incident, applications, deps)
    except LogReadError as exc:
        logger.warning("container logs could not be listed", reason=redact(str(exc)))
        candidates = []
    results += [_analyse_object(deps, bucket, key, weight, etag) for bucket, key, weight, etag in candidates]
    return _finish(incident, created, results, deps)


def handle_cluster_event(event: EmrClusterStateChange, deps: Dependencies) -> Outcome:
    detail = event.detail
    if detail.state not in FAILING_CLUSTER_STATES:
        count(MetricName.IGNORED_EVENTS)
        return Outcome(action="ignored", detail=f"cluster state {detail.state} is not a failure")
    code = detail.state_change_reason.code
    if code == "STEP_FAILURE":
        parent = _recent_step_failure(detail.cluster_id, event.time, deps)
        if parent is not None:
            child = f"cluster {detail.name or detail.cluster_id} {detail.state} ({code})"
            return _fold_into(parent, child, event.id, event.time, deps)
    if done := _known_duplicate(cluster_incident_id(detail.cluster_id), deps)[1]:
        return done
    cluster = deps.emr.describe_cluster(detail.cluster_id)
    new = new_cluster_incident(event, cluster, deps)
    new.held_for_parent = code == "STEP_FAILURE" and deps.follow_ups is not None
    incident, created = _open_or_resume(new, deps)
    if incident.held_for_parent:
        return _hold(incident, deps, created, "the step failure that terminated the cluster has not been reported")
    if done := _already_alerted(incident, created, deps):
        return done
    return _finish(incident, created, [], deps)


def handle_job_run_event(event: EmrServerlessJobRunStateChange, deps: Dependencies) -> Outcome:
    detail = event.detail
    if detail.state == "SUCCESS":
        return handle_job_run_success(event, deps)
    if detail.state not in FAILING_JOB_RUN_STATES:
        count(MetricName.IGNORED_EVENTS)
        return Outcome(action="ignored", detail=f"job run state {detail.state} is not a failure")
    if done := _known_duplicate(job_run_incident_id(detail.application_id, detail.job_run_id), deps)[1]:
        return done
    run = deps.emr.get_job_run(detail.application_id, detail.job_run_id)
    incident, created = _open_or_resume(new_job_run_incident(event, run, deps), deps)
    if done := _already_alerted(incident, created, deps):
        return done
    # The driver's and executors' logs already in S3 (the rest are looked for by the log checks).
    return _finish(incident, created, sweep_logs(incident, deps), deps)


def handle_emr_event(event: EmrEvent, deps: Dependencies) -> Outcome:
    """Dispatch an EMR or EMR Serverless state change to its handler."""
    if isinstance(event, EmrStepStatusChange):
        return handle_step_event(event, deps)
    if isinstance(event, EmrClusterStateChange):
        return handle_cluster_event(event, deps)
    if isinstance(event, EmrInfrastructureEvent):
        return handle_infrastructure_event(event, deps)
    return handle_job_run_event(event, deps)


# ---------------------------------------------------------------------------------------------------
# Infrastructure: capacity and instance events of a cluster, correlated with its failures
# ---------------------------------------------------------------------------------------------------
# An event this long before a failure (or before its step started) to this long after it explains it.
INFRA_BEFORE = timedelta(minutes=30)
INFRA_AFTER = timedelta(minutes=10)
MAX_INFRASTRUCTURE = 10
_PROBLEM_SEVERITIES = frozenset({"WARN", "WARNING", "ERROR", "CRITICAL"})
_PROBLEM_STATES = frozenset({"SUSPENDED", "ARRESTED"})


def describe_infrastructure(event: EmrInfrastructureEvent) -> str | None:
    """A capacity or instance event in words, or None when it is routine (a resize that completed)."""
    detail = event.detail
    kind = "instance fleet" if "Fleet" in event.detail_type else "instance group"
    unit = detail.instance_fleet_id or detail.instance_group_id or ""
    role = detail.instance_fleet_type or detail.instance_group_type or ""
    market = f", {detail.market.lower().replace('_', '-')}" if detail.market else ""
    name = f"{kind} {unit} ({role}{market})".replace(" ()", "").replace("(, ", "(")
    code = (detail.event_code or "").strip()
    if event.detail_type.endswith("Provisioning") or event.detail_type.endswith("Resize"):
        if not code:
            return None
        lowered = code.lower()
        if "capacity" in lowered:
            return f"no EC2 capacity for the {name}: {code}"
        if "spot" in lowered:
            return f"Spot capacity not obtained in time for the {name}: {code}"
        return f"{name}: {code}"
    severity = (detail.severity or "").upper()
    state = (detail.state or "").upper()
    if severity not in _PROBLEM_SEVERITIES and state not in _PROBLEM_STATES:
        return None
    message = (detail.message or "").strip()
    return f"{name} {state or 'changed'} ({severity or 'no severity'}){': ' + message if message else ''}"


def _infra_window(incident: Incident) -> tuple[datetime, datetime]:
    start = min(incident.started_at or incident.failed_at, incident.failed_at)
    return start - INFRA_BEFORE, incident.failed_at + INFRA_AFTER


def _attach_infrastructure(incident: Incident, found: list[InfraEvent], deps: Dependencies) -> bool:
    """Attach the events the incident does not have yet (a versioned write); whether any was new."""
    attached = False

    def attach(inc: Incident) -> Incident | None:
        nonlocal attached
        new = [e for e in found if _infra_line(e) not in inc.infrastructure]
        attached = bool(new)
        if not new:
            return None
        inc.infrastructure = [*inc.infrastructure, *(_infra_line(e) for e in new)][-MAX_INFRASTRUCTURE:]
        inc.timeline = [
            *inc.timeline,
            *(TimelineEntry(at=e.at, what=f"infrastructure: {e.what}"[:300], event_id=e.event_id) for e in new),
        ][-MAX_TIMELINE:]
        return inc

    deps.repository.update(incident.incident_id, attach)
    return attached


def _infra_line(event: InfraEvent) -> str:
    return f"{event.at.strftime('%H:%M UTC')} {event.what}"[:500]


def correlate_infrastructure(incident: Incident, deps: Dependencies) -> None:
    """Attach to a new incident the capacity and instance events its cluster had around the failure."""
    if incident.cluster_id is None:
        return
    since, until = _infra_window(incident)
    found = deps.repository.infra_events(incident.cluster_id, since=since, until=until)
    if found:
        _attach_infrastructure(incident, found, deps)


def handle_infrastructure_event(event: EmrInfrastructureEvent, deps: Dependencies) -> Outcome:
    """Keep a cluster's capacity or instance problem, and attach it to the open incidents it explains
    (their alerts then say "likely infrastructure" instead of blaming the code)."""
    what = describe_infrastructure(event)
    if what is None:
        count(MetricName.IGNORED_EVENTS)
        return Outcome(action="ignored", detail=f"{event.detail_type}: routine ({event.detail.state or 'no state'})")
    what = redact(what)
    infra = InfraEvent(cluster_id=event.detail.cluster_id, at=event.time, what=what, event_id=event.id)
    deps.repository.record_infra(infra, _expires_at(deps.clock(), deps))
    count(MetricName.INFRASTRUCTURE_EVENTS)
    touched, around = [], []
    for incident in deps.repository.open_incidents(cluster_id=infra.cluster_id):
        since, until = _infra_window(incident)
        if since <= infra.at <= until:
            around.append(incident.incident_id)
            if _attach_infrastructure(incident, [infra], deps):
                touched.append(incident.incident_id)
    slack: SlackAction = "none"
    # Every incident around it, attached now or by an earlier delivery whose Slack update failed (a
    # delivery only edits a message whose content changed).
    for incident_id in around:
        slack = deliver_alert(incident_id, deps)
    if not touched:
        # No open incident around it, or every one already has it (a duplicate event).
        return Outcome(action="run_recorded", detail=f"recorded for cluster {infra.cluster_id}: {what}")
    return Outcome(
        action="incident_updated",
        incident_id=touched[0],
        detail=f"infrastructure around {', '.join(touched)}: {what}",
        slack=slack,
    )


def _step_stderr_read(incident: Incident) -> bool:
    return any(
        "/steps/" in r.source and r.source.endswith("/stderr.gz") and _was_read(r) for r in incident.logs_analysed
    )


def _incident_for_log(obj: LogObject, at: datetime, deps: Dependencies) -> Incident | None:
    """The incident a log object belongs to: its step's, the step incident linked to its YARN application
    (``Submitted application ...`` in the step's stderr), or its application's own incident (one submitted
    outside the Steps API). A container log of an application no incident knows joins the cluster's latest
    step failure only if that failed within UNLINKED_LOG_WINDOW and has no application linked yet because
    its stderr has not been read (it may not have landed)."""
    if obj.kind == "step" and obj.step_id:
        return deps.repository.get(step_incident_id(obj.cluster_id, obj.step_id))
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
        and not _step_stderr_read(i)
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


def _step_may_own(obj: LogObject, at: datetime, deps: Dependencies) -> StepInfo | None:
    """A step of the cluster that failed shortly before this log landed and has no incident yet: its
    FAILED event is late, and this application may be the step's. None when EMR cannot tell."""
    for step in deps.emr.failed_steps(obj.cluster_id) or []:
        # A failed step has ended; without its end time it is given the benefit of the doubt.
        ended = step.ended_at or step.started_at
        if ended is not None and not timedelta(0) <= at - ended <= FOLD_WINDOW:
            continue
        if deps.repository.get(step_incident_id(obj.cluster_id, step.step_id)) is None:
            return step
    return None


def handle_unclaimed_driver_log(obj: LogObject, event: S3ObjectCreated, deps: Dependencies) -> Outcome:
    """The driver log of a YARN application no incident claims: an application submitted outside the
    Steps API (or a step's whose FAILED event is late). Read it; if the application failed, open its own
    incident and alert; if it succeeded, remember the run (it resolves an earlier failure of the same
    application name on a cluster of the same name)."""
    app = obj.application_id or "?"
    etag = event.detail.object.etag or None
    result = _analyse_object(deps, obj.bucket, obj.key, obj.weight, etag, retry_transient=True)
    analysis, read = result
    name = analysis.spark_app_name
    label = f"application {f'{name} ' if name else ''}({app})"
    if not _was_read(read):
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
            key = job_key(cluster_name=deps.emr.cluster_name(obj.cluster_id), spark_app_name=name)
            run = (
                JobRun(job_key=key, outcome="SUCCEEDED", at=event.time, cluster_id=obj.cluster_id)
                if key is not None
                else None
            )
            if run is not None:
                return _success_outcome(run, label, deps)
        count(MetricName.IGNORED_EVENTS)
        return Outcome(
            action="no_incident",
            detail=f"driver log of {label}: no step incident claims it and it does not show the application "
            "ending failed (no final status of failure: still running, or errors it caught and went on from)",
        )
    # A step incident may have claimed the application while its log was read (its stderr, just read).
    if (claimed := _incident_for_log(obj, event.time, deps)) is not None:
        return _merge_log(claimed, obj, result, deps)
    cluster = deps.emr.describe_cluster(obj.cluster_id)
    new = apply_analysis(new_application_incident(obj, event, cluster, name, deps), [result], deps)
    owner = _step_may_own(obj, event.time, deps) if deps.follow_ups is not None else None
    new.held_for_parent = owner is not None
    new.held_for_step = owner.step_id if owner is not None else None
    incident, created = _open_or_resume(new, deps)
    if incident.held_for_parent:
        why = "a step of the cluster failed and its event has not arrived"
        if owner is not None:
            why = f"step {owner.name or owner.step_id} ({owner.step_id}) failed and its event has not arrived"
        return _hold(incident, deps, created, why)
    if done := _already_alerted(incident, created, deps):
        return done
    # Its executors' logs that landed with the driver's (their S3 events found no incident yet).
    return _finish(incident, created, sweep_logs(incident, deps), deps)


def handle_log_event(event: S3ObjectCreated, deps: Dependencies) -> Outcome:
    """Analyse a newly written EMR log object and merge it into its incident."""
    bucket = event.detail.bucket.name
    key = _object_key(bucket, event.detail.object.key, deps)
    obj = identify_log_object(bucket, key, deps.settings.log_prefix)
    if obj is None:
        count(MetricName.IGNORED_EVENTS)
        return Outcome(
            action="ignored",
            detail=f"s3://{bucket}/{key[:300]} is not an EMR step or container log under the configured prefix",
        )
    incident = _incident_for_log(obj, event.time, deps)
    if incident is None and _is_driver_log(obj) and deps.settings.detect_applications_outside_steps:
        return handle_unclaimed_driver_log(obj, event, deps)
    if incident is None:
        return Outcome(
            action="no_incident",
            detail=f"no open incident for {obj.cluster_id}"
            + (f" step {obj.step_id}" if obj.step_id else "")
            + ": nothing failed yet, or the failure event has not arrived (its handler reads logs already in S3)",
        )
    etag = event.detail.object.etag or None
    if etag and _already_read(incident, obj.uri, etag):
        count(MetricName.DUPLICATE_EVENTS)
        if resumed := _resume(incident, deps):
            return resumed
        return Outcome(
            action="duplicate",
            incident_id=incident.incident_id,
            detail=f"{obj.uri} (etag {etag}) was already analysed",
        )
    result = _analyse_object(deps, bucket, key, obj.weight, etag, retry_transient=True)
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
        return _hold(incident, deps, False, "waiting for its failed step")
    if _already_alerted(incident, False, deps) is not None:
        return None
    return _finish(incident, False, [], deps)


def _merge_log(incident: Incident, obj: LogObject, result: tuple[LineAnalysis, LogRead], deps: Dependencies) -> Outcome:
    """Merge one analysed log object into its incident (once) and update the alert."""
    merged = False

    def merge(inc: Incident) -> Incident | None:
        # A concurrent copy of this event may have merged this object since it was looked up.
        nonlocal merged
        merged = not _already_read(inc, result[1].source, result[1].etag)
        return apply_analysis(inc, [result], deps) if merged else None

    updated = deps.repository.update(incident.incident_id, merge)
    if not merged:
        count(MetricName.DUPLICATE_EVENTS)
        return Outcome(
            action="duplicate",
            incident_id=incident.incident_id,
            detail=f"{obj.uri} was analysed by a concurrent delivery of the same event",
        )
    count(MetricName.INCIDENTS_UPDATED)
    slack = deliver_alert(incident.incident_id, deps)
    diagnosis = (updated or incident).diagnosis
    verdict = diagnosis.category if diagnosis else "no diagnosis"
    return Outcome(
        action="incident_updated",
        incident_id=incident.incident_id,
        detail=f"analysed {obj.file} of {obj.kind} {obj.step_id or obj.container_id}: "
        f"{len(result[0].findings)} finding(s); verdict {verdict}",
        slack=slack,
    )


def _follow_up_due(incident: Incident, deps: Dependencies) -> bool:
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


def _schedule_follow_up(incident_id: str, check: int, deps: Dependencies) -> None:
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
    _once(incident_id, claim, hand_back, lambda: queue.schedule(message, _follow_up_delay(deps)), deps)


def _follow_up_delay(deps: Dependencies) -> int:
    """Seconds until the next check: the interval (0 under the replay command: "after the deadline")."""
    return deps.settings.follow_up_interval_seconds


def _logs_were_read(incident: Incident) -> bool:
    return any(_was_read(r) for r in incident.logs_analysed)


def _release_held(incident: Incident, label: str, deps: Dependencies) -> Outcome:
    """A held incident's check: fold it into its step failure if that was reported meanwhile (before the
    held event's time: it arrived late), else alert it on its own and start its own log checks."""
    if incident.held_for_step is not None:
        parent = deps.repository.get(step_incident_id(incident.cluster_id or "", incident.held_for_step))
        if parent is not None and parent.status != "OPEN":
            parent = None
    else:
        parent = _recent_step_failure(incident.cluster_id or "", incident.failed_at, deps)
    if parent is not None:
        adopted = _adopt_held(parent, deps)
        if incident.incident_id in adopted:
            slack = deliver_alert(parent.incident_id, deps)
            return Outcome(
                action="folded",
                incident_id=parent.incident_id,
                detail=f"{label}: {incident.incident_id} folded into {parent.incident_id}, no new alert",
                slack=slack,
            )

    released_now = False

    def release(inc: Incident) -> Incident | None:
        nonlocal released_now
        released_now = False
        if not inc.held_for_parent:
            return None
        released_now = True
        inc.held_for_parent = False
        inc.timeline = [
            *inc.timeline,
            TimelineEntry(at=deps.clock(), what="no failed step reported on the cluster: alerted on its own"),
        ][-MAX_TIMELINE:]
        return inc

    released = deps.repository.update(incident.incident_id, release) or incident
    if not released_now and released.folded_into:
        return Outcome(
            action="duplicate",
            incident_id=released.incident_id,
            detail=f"{label}: {released.incident_id} was folded into {released.folded_into} meanwhile",
        )
    return _alert_released(released, label, deps)


def _alert_released(released: Incident, label: str, deps: Dependencies) -> Outcome:
    """Alert an incident released from its hold on its own: its history and the infrastructure around it,
    the alert, then its own log checks. Idempotent, so a redelivered hold check finishes what a failed
    one left (a Slack or SQS error after the release was written)."""
    _remember_failure(released, deps)
    correlate_infrastructure(released, deps)
    slack = _alert_then_schedule(released, deps)
    return Outcome(
        action="incident_updated",
        incident_id=released.incident_id,
        detail=f"{label}: no failed step reported on cluster {released.cluster_id}: alerted on its own",
        slack=slack,
    )


def handle_follow_up(follow_up: FollowUp, deps: Dependencies) -> Outcome:
    """A scheduled check of an incident's logs: analyse what landed and was missed, and at the last check
    (the deadline) mark the incident "logs unavailable" if no log could be read, keeping EMR's reason."""
    incident = deps.repository.get(follow_up.incident_id)
    label = f"log check {follow_up.check}/{follow_up.checks}"
    if incident is None:
        return Outcome(action="no_incident", detail=f"{label}: incident {follow_up.incident_id} no longer exists")
    if incident.status != "OPEN":
        count(MetricName.IGNORED_EVENTS)
        return Outcome(action="ignored", incident_id=incident.incident_id, detail=f"{label}: incident resolved")
    if incident.held_for_parent:
        return _release_held(incident, label, deps)
    if follow_up.purpose == "hold":
        # Delivered again after the incident was released or folded (its own log checks are separate):
        # a folded one is done; a released one finishes its alert if the first delivery failed midway.
        if incident.folded_into:
            return Outcome(
                action="duplicate",
                incident_id=incident.incident_id,
                detail=f"hold check: {incident.incident_id} was already folded into {incident.folded_into}",
            )
        return _alert_released(incident, label, deps)
    results = sweep_logs(incident, deps)
    final = follow_up.check >= follow_up.checks
    minutes = deps.settings.logs_deadline_minutes

    def check(inc: Incident) -> Incident | None:
        changed = bool(results)
        if results:
            inc = apply_analysis(inc, results, deps)
        if final and not inc.logs_deadline_passed:
            inc.logs_deadline_passed = True
            changed = True
            if not _logs_were_read(inc):
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
    slack = deliver_alert(incident.incident_id, deps)
    if not final:
        _schedule_follow_up(incident.incident_id, follow_up.check + 1, deps)
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

"""Logs read into incidents: one object analysed (never raising), a step's logs, and sweeps.

:func:`apply_analysis` merges findings into an incident and re-diagnoses it (pure); the readers go
through the log store, and a log that cannot be read becomes a note, never an error that stops the alert.
"""

from __future__ import annotations

from datetime import datetime

from emr_triage.analysis.engine import analyse_stream
from emr_triage.analysis.findings import LineAnalysis
from emr_triage.analysis.redact import redact
from emr_triage.analysis.verdict import diagnose, merge_exit_codes, merge_findings
from emr_triage.exceptions import LogReadError, TransientError
from emr_triage.incidents.building import MAX_APPLICATION_IDS, MAX_TIMELINE, expiry
from emr_triage.logs.locations import STEP_LOG_FILES, identify_log_object, log_weight, parse_s3_uri
from emr_triage.models.analysis import LogRead
from emr_triage.models.incident import Incident, RecordedLog, TimelineEntry
from emr_triage.observability import MetricName, count, logger
from emr_triage.ports import Dependencies

MAX_LOG_READS = 40


MAX_STEP_LOG_OBJECTS = 4


# Logs a sweep of an incident's S3 prefixes analyses at most (driver-side first; executors' logs arrive
# through their own S3 events).
MAX_SWEEP_OBJECTS = 6


MAX_SWEPT_APPLICATIONS = 3


def apply_analysis(incident: Incident, results: list[tuple[LineAnalysis, LogRead]], deps: Dependencies) -> Incident:
    """Merge the findings and reads of some logs into an incident and re-diagnose it. A log object already
    merged (same source and etag, actually read) is skipped, so re-reading it (a resumed event, a sweep)
    neither doubles its counts nor re-diagnoses."""
    results = [(a, r) for a, r in results if not already_read(incident, r.source, r.etag)]
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


def analyse_object(
    deps: Dependencies, bucket: str, key: str, etag: str | None = None, *, retry_transient: bool = False
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
            source_weight=log_weight(key),
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
        results.append(analyse_object(deps, obj.bucket, obj.key, obj.etag))
    return results


def adds_nothing(before: Incident, after: Incident) -> bool:
    """Whether merging a log changed nothing an alert, a later event or a check reads: logs were read
    before, and the verdict (its evidence, symptoms, counts, exit codes, partial notes: everything but the
    bytes scanned) and the incident's applications are the same. At fan-in (an application's hundreds of
    container logs landing within a minute) most executors' logs repeat what is known; writing each would
    make every one of those concurrent invocations conflict with the others on the incident item."""
    if not any(was_read(read) for read in before.logs_analysed) or before.diagnosis is None:
        return False
    if after.diagnosis is None or before.application_ids != after.application_ids:
        return False
    # Symptoms (their counts and extract lines) and exit codes are merged at the next log check, from the
    # logs recorded meanwhile; the root message shows the verdict, which has not changed.
    ignore = {"bytes_scanned", "secondary", "exit_codes", "extract"}
    return before.diagnosis.model_dump(exclude=ignore) == after.diagnosis.model_dump(exclude=ignore)


def record_for_check(incident: Incident, result: tuple[LineAnalysis, LogRead], deps: Dependencies) -> bool:
    """Keep a log that adds nothing to the verdict under its incident, for its next log check to merge
    (what it adds: symptom counts, exit codes). False: this log was kept already (a redelivered event)."""
    analysis, read = result
    if not analysis.findings and not analysis.exit_codes:
        return True  # nothing to merge later: a redelivery just analyses it again and finds the same
    log = RecordedLog(
        read=read,
        at=deps.clock(),
        findings=analysis.findings,
        exit_codes=analysis.exit_codes,
        application_ids=analysis.application_ids,
    )
    return deps.repository.record_log(incident.incident_id, log, expiry(deps.clock(), deps))


def recorded_results(
    incident: Incident, deps: Dependencies
) -> tuple[list[tuple[LineAnalysis, LogRead]], datetime | None]:
    """The logs kept under the incident since its last check merged some (and not read into it since),
    and when the newest of them was kept (for the incident to remember, so no check merges one twice)."""
    since = incident.recorded_merged_until
    logs = [
        log
        for log in deps.repository.recorded_logs(incident.incident_id)
        if (since is None or log.at > since) and not already_read(incident, log.read.source, log.read.etag)
    ]
    results = [
        (LineAnalysis(findings=log.findings, application_ids=log.application_ids, exit_codes=log.exit_codes), log.read)
        for log in logs
    ]
    return results, max((log.at for log in logs), default=None)


def was_read(read: LogRead) -> bool:
    """Whether a log was actually read (not only noted as unreadable, denied or out of budget)."""
    return read.lines > 0 or read.bytes_read > 0


def already_read(incident: Incident, uri: str, etag: str | None) -> bool:
    """Whether this object (this version of it) was read into the incident. An attempt that read nothing
    (S3 throttled it, the time budget ran out) does not count: the next sweep or event tries again."""
    return any(r.source == uri and (etag is None or r.etag == etag) and was_read(r) for r in incident.logs_analysed)


def container_candidates(
    incident: Incident, application_ids: list[str], deps: Dependencies
) -> list[tuple[str, str, str | None]]:
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
                found.append((obj.bucket, obj.key, obj.etag))
    return found


def _sweep_candidates(incident: Incident, deps: Dependencies) -> list[tuple[str, str, str | None]]:
    """Log objects of the incident already in S3 and not analysed yet, driver-side first."""
    if not incident.log_location:
        return []
    bucket, prefix = parse_s3_uri(incident.log_location)
    found: list[tuple[str, str, str | None]] = []
    if incident.kind == "step":
        for obj in deps.logs.list_objects(bucket, prefix, limit=50):
            name = obj.key.rsplit("/", 1)[-1]
            if name in STEP_LOG_FILES[:MAX_STEP_LOG_OBJECTS]:
                found.append((obj.bucket, obj.key, obj.etag))
        found += container_candidates(incident, incident.application_ids, deps)
    elif incident.kind in ("application", "eks_job_run"):
        # The driver's logs (YARN's AM container; EMR on EKS: every driver attempt's pod), then the other
        # containers' or pods' stderr (executors, EMR on EKS's job runner): they land with the driver's.
        kind = "container" if incident.kind == "application" else "eks"
        for obj in deps.logs.list_objects(bucket, prefix, limit=200):
            log = identify_log_object(obj.bucket, obj.key)
            driver = log is not None and (log.is_application_master or log.is_eks_driver)
            wanted = ("stderr", "stdout") if driver else ("stderr",)
            if log is not None and log.kind == kind and log.file.startswith(wanted):
                found.append((obj.bucket, obj.key, obj.etag))
    elif incident.kind == "job_run":
        # SPARK_DRIVER/{stderr,stdout}.gz, then SPARK_EXECUTOR/<n>/stderr.gz (the driver's verdict wins ties).
        for obj in deps.logs.list_objects(bucket, prefix, limit=200):
            name = obj.key.rsplit("/", 1)[-1]
            if ("/SPARK_DRIVER/" in obj.key and name.startswith(("stderr", "stdout"))) or (
                "/SPARK_EXECUTOR/" in obj.key and name.startswith("stderr")
            ):
                found.append((obj.bucket, obj.key, obj.etag))
    fresh = [c for c in found if not already_read(incident, f"s3://{c[0]}/{c[1]}", c[2])]
    return sorted(fresh, key=lambda c: -log_weight(c[1]))[:MAX_SWEEP_OBJECTS]


def sweep_logs(incident: Incident, deps: Dependencies) -> list[tuple[LineAnalysis, LogRead]]:
    """Analyse the incident's logs that are in S3 but were not analysed: logs that landed before the
    failure event (their S3 events found no incident), or whose S3 events never came (EventBridge
    notifications off on the bucket). A listing that fails (access denied) is noted, not raised."""
    try:
        candidates = _sweep_candidates(incident, deps)
    except LogReadError as exc:
        return [_unread(incident.log_location or "?", None, str(exc))]
    return [analyse_object(deps, bucket, key, etag) for bucket, key, etag in candidates]


def step_stderr_read(incident: Incident) -> bool:
    return any(
        "/steps/" in r.source and r.source.endswith("/stderr.gz") and was_read(r) for r in incident.logs_analysed
    )


def logs_were_read(incident: Incident) -> bool:
    return any(was_read(r) for r in incident.logs_analysed)

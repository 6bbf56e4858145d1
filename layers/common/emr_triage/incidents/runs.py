"""Runs over time: a step or job run seen starting is watched against its job's usual duration, and a
run that ends is remembered (its duration for the baseline of the next runs; each run for the digest).

Flow of a run::

    EMR Step Status Change (RUNNING) / Job Run State Change (RUNNING) (EMR Serverless, EMR on EKS)
      -> one small item RUN#<run id>                 (conditional put: a duplicate event finds it)
      -> expected duration: the job's tag, else its last 20 successful runs (at least 5)
      -> a check on the delay queue at the slow limit (chained: SQS delays stop at 15 minutes)
    ... the check (incidents/slow_checks.py): still RUNNING? -> the slow alert, with what the logs say
    COMPLETED / SUCCESS -> duration remembered; a slow alert is edited: "finished late"
    FAILED / CANCELLED  -> the failure's incident takes over the slow alert's message (edited in place)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime, timedelta
from statistics import median

from emr_triage.alerts.slow import minutes_text, usual_text
from emr_triage.incidents.building import eks_incident_id, expiry, job_run_incident_id, step_incident_id
from emr_triage.incidents.history import eks_job_key, job_key
from emr_triage.logs.locations import eks_job_run_prefix, normalise_log_uri, serverless_driver_log, step_log_prefix
from emr_triage.models.events import EksJobRunEvent, EmrServerlessJobRunStateChange, EmrStepStatusChange
from emr_triage.models.incident import Incident, Outcome, SlackRef
from emr_triage.models.runs import MAX_RUNTIME_TAG, ActiveRun, Expectation, FinishedOutcome, FinishedRun
from emr_triage.observability import MetricName, count
from emr_triage.ports import Dependencies

BASELINE_RUNS = 20  # successful runs the baseline is taken over (the newest)
MIN_BASELINE_RUNS = 5  # fewer: no baseline, nothing is alerted as slow
SLOW_P95_FACTOR = 1.5
SLOW_MARGIN_SECONDS = 15 * 60
MAX_TAG_MINUTES = 7 * 24 * 60


def tag_limit_minutes(tags: Mapping[str, str]) -> int | None:
    """The ``emr-triage:max-runtime-minutes`` tag as minutes (1 to a week), or None when absent or not a
    whole number of minutes (a bad tag is ignored rather than trusted)."""
    value = tags.get(MAX_RUNTIME_TAG, "").strip()
    if not value.isdigit() or len(value) > 6:
        return None
    minutes = int(value)
    return minutes if 1 <= minutes <= MAX_TAG_MINUTES else None


def percentile(values: list[int], fraction: float) -> int:
    """The nearest-rank percentile of ``values`` (not empty): the smallest value with at least
    ``fraction`` of the values at or below it."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def expectation(durations: list[int], tags: Mapping[str, str]) -> Expectation | None:
    """When a run is slow: past the tag's limit, which wins, else past max(1.5 x p95, p50 + 15 min) of
    the job's last successful runs; None (never alerted as slow) with fewer than 5 of them and no tag."""
    minutes = tag_limit_minutes(tags)
    recent = [d for d in durations[:BASELINE_RUNS] if d >= 0]
    p50 = int(median(recent)) if recent else None
    p95 = percentile(recent, 0.95) if recent else None
    if minutes is not None:
        return Expectation(limit_seconds=minutes * 60, source="tag", p50_seconds=p50, p95_seconds=p95, runs=len(recent))
    if len(recent) < MIN_BASELINE_RUNS or p50 is None or p95 is None:
        return None
    limit = max(int(SLOW_P95_FACTOR * p95), p50 + SLOW_MARGIN_SECONDS, 60)
    return Expectation(limit_seconds=limit, source="history", p50_seconds=p50, p95_seconds=p95, runs=len(recent))


def _watch(run: ActiveRun, deps: Dependencies) -> Outcome:
    """Store the run once and, when it has an expected duration, schedule its first check."""
    store = deps.runs
    assert store is not None
    durations = store.durations(run.job_key, BASELINE_RUNS) if run.job_key else []
    run.expected = expectation(durations, run.tags)
    if not store.start(run, expiry(deps.clock(), deps)):
        count(MetricName.DUPLICATE_EVENTS)
        return Outcome(action="duplicate", incident_id=run.run_id, detail=f"{run.label} is already watched")
    count(MetricName.RUNS_STARTED)
    if run.expected is None:
        have = len(durations)
        why = "its job cannot be identified (no name)" if run.job_key is None else f"{have} successful run(s) on record"
        return Outcome(
            action="run_started",
            incident_id=run.run_id,
            detail=f"{run.label} started; not watched for slowness: {why}, {MIN_BASELINE_RUNS} needed "
            f"(or a {MAX_RUNTIME_TAG} tag)",
        )
    from emr_triage.incidents.slow_checks import schedule_check

    schedule_check(run, deps)
    return Outcome(
        action="run_started",
        incident_id=run.run_id,
        detail=f"{run.label} started; alerted as slow if still running after "
        f"{minutes_text(run.expected.limit_seconds)} ({usual_text(run.expected)})",
    )


def handle_step_started(event: EmrStepStatusChange, deps: Dependencies) -> Outcome:
    """A step entering RUNNING: one cached DescribeCluster (name, tags, LogUri), one read of the job's
    baseline, one small write."""
    if deps.runs is None:
        count(MetricName.IGNORED_EVENTS)
        return Outcome(action="ignored", detail="runs are not watched by this deployment")
    detail = event.detail
    cluster = deps.emr.cluster(detail.cluster_id)
    log_location = None
    root = cluster.log_uri or f"s3://{deps.settings.log_bucket}/{deps.settings.log_prefix}"
    bucket, prefix = step_log_prefix(normalise_log_uri(root), detail.cluster_id, detail.step_id)
    if cluster.log_uri or not cluster.found:
        log_location = f"s3://{bucket}/{prefix}"
    run = ActiveRun(
        run_id=deps.scoped(step_incident_id(detail.cluster_id, detail.step_id)),
        kind="step",
        job_key=deps.scoped_key(job_key(cluster_name=cluster.name or None, step_name=detail.name or None)),
        region=event.region,
        account=event.account,
        started_at=event.time,
        cluster_id=detail.cluster_id,
        cluster_name=cluster.name or None,
        step_id=detail.step_id,
        step_name=detail.name or None,
        tags=dict(cluster.tags),
        log_location=log_location,
    )
    return _watch(run, deps)


def handle_job_run_started(event: EmrServerlessJobRunStateChange, deps: Dependencies) -> Outcome:
    """An EMR Serverless job run entering RUNNING: one GetJobRun (its tags and the application's, its
    log location), one read of the job's baseline, one small write."""
    if deps.runs is None:
        count(MetricName.IGNORED_EVENTS)
        return Outcome(action="ignored", detail="runs are not watched by this deployment")
    detail = event.detail
    info = deps.emr.get_job_run(detail.application_id, detail.job_run_id)
    name = info.name or detail.job_run_name
    log_location = None
    if info.log_uri:
        bucket, key = serverless_driver_log(normalise_log_uri(info.log_uri), detail.application_id, detail.job_run_id)
        log_location = f"s3://{bucket}/{key.rsplit('/', 1)[0]}/"
    run = ActiveRun(
        run_id=deps.scoped(job_run_incident_id(detail.application_id, detail.job_run_id)),
        kind="job_run",
        job_key=deps.scoped_key(job_key(application_id=detail.application_id, job_run_name=name)),
        region=event.region,
        account=event.account,
        started_at=event.time,
        application_id=detail.application_id,
        application_name=info.application_name,
        job_run_id=detail.job_run_id,
        job_run_name=name,
        tags=dict(info.tags),
        log_location=log_location,
    )
    return _watch(run, deps)


def run_finished(
    run_id: str,
    key: str | None,
    outcome: FinishedOutcome,
    ended_at: datetime,
    deps: Dependencies,
    incident_id: str | None = None,
) -> ActiveRun | None:
    """Remember a run that ended (per day for the digest; a success's duration for its job's baseline),
    mark its watch ended, and return the watched run (None when it was never seen starting)."""
    store = deps.runs
    if store is None:
        return None

    def ended(current: ActiveRun) -> ActiveRun | None:
        if current.ended_state is not None:
            return None  # already marked (a redelivered event): stored as it is
        current.ended_state, current.ended_at = outcome, ended_at
        return current

    run = store.update(run_id, ended)  # one read when nothing races it; None: never seen starting
    key = key or (run.job_key if run else None)
    if key is None:
        return run
    duration = int((ended_at - run.started_at).total_seconds()) if run is not None else None
    finished = FinishedRun(
        run_id=run_id,
        job_key=key,
        outcome=outcome,
        ended_at=ended_at,
        duration_seconds=duration if duration is not None and duration >= 0 else None,
        slow=run is not None and run.slow_alert is not None,
        incident_id=incident_id,
    )
    store.record_finished(finished, expiry(deps.clock(), deps))
    return run


def handle_eks_job_run_started(event: EksJobRunEvent, deps: Dependencies) -> Outcome:
    """An EMR on EKS job run entering RUNNING: one DescribeJobRun (its name, tags and its virtual
    cluster's, its log location), one read of the job's baseline, one small write."""
    if deps.runs is None:
        count(MetricName.IGNORED_EVENTS)
        return Outcome(action="ignored", detail="runs are not watched by this deployment")
    vc, job_run = event.ids
    info = deps.emr.describe_eks_job_run(vc, job_run)
    name = info.name or event.detail.name
    log_location = None
    if info.log_uri:  # the driver pod's folder (each attempt's, with a retry policy: -driver-<suffix>)
        bucket, prefix = eks_job_run_prefix(info.log_uri, vc, job_run)
        log_location = f"s3://{bucket}/{prefix}spark-{job_run}/spark-{job_run}-driver"
    run = ActiveRun(
        run_id=deps.scoped(eks_incident_id(vc, job_run)),
        kind="eks_job_run",
        job_key=deps.scoped_key(eks_job_key(vc, name)),
        region=event.region,
        account=event.account,
        started_at=event.time,
        virtual_cluster_id=vc,
        virtual_cluster_name=info.virtual_cluster_name,
        job_run_id=job_run,
        job_run_name=name,
        tags=dict(info.tags),
        log_location=log_location,
    )
    return _watch(run, deps)


def take_over_slow_alert(incident: Incident, deps: Dependencies) -> None:
    """A failing run that was alerted as slow: its failure's alert is that message, edited in place (so
    the channel keeps one message per run), and says it was slow first. Nothing for other incidents."""
    if deps.runs is None or incident.kind not in ("step", "job_run", "eks_job_run"):
        return
    run = deps.runs.get(incident.incident_id)
    if run is None or run.slow_alert is None or run.slow_alert.slack.via_webhook:
        return
    slow = run.slow_alert
    incident.slack = SlackRef(channel=slow.slack.channel, ts=slow.slack.ts, routed_to=slow.slack.routed_to)
    note = f"alerted as slow at {slow.at.strftime('%H:%M UTC')}, after running {minutes_text(slow.running_seconds)}"
    if run.expected is not None:
        note += f" ({usual_text(run.expected)})"
    incident.slow_note = note
    incident.held_for_parent = False  # the slow alert is its story: nothing to wait for


def running_for(run: ActiveRun, at: datetime) -> int:
    return max(0, int((at - run.started_at).total_seconds()))


def due_at(run: ActiveRun) -> datetime | None:
    if run.expected is None:
        return None
    return run.started_at + timedelta(seconds=run.expected.limit_seconds)

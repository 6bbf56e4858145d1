"""Memory across runs, as pure functions: which job an incident belongs to, and what its history says.

A *job* is what an on-call engineer calls "the nightly load": the same step name on clusters of the same
name (transient clusters get a new id every run, and their names often carry a date or a run number, so
digits are masked), or the same job run name in an EMR Serverless application (applications live across
runs). A *signature* is the diagnosis fingerprint (rule, masked headline, user-code location).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from emr_triage.models.ids import account_of
from emr_triage.models.incident import AlertContext, Incident, JobRun, Recurrence

# Run-like parts of names, masked so every run of a job has the same identity: dates and times (2026-11-20,
# 20261120, 2026_11_20T03:00), UUIDs and long hex ids, and numbers of 4+ digits (run ids, epochs). Short
# numbers stay: load_table_1 and load_table_2 are different jobs.
_RUN_PARTS = re.compile(
    r"\d{4}[-_/.]?\d{2}[-_/.]?\d{2}(?:[T _-]?\d{2}[:_-]?\d{2}(?:[:_-]?\d{2})?)?"
    r"|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
    r"|\b(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{12,}\b"
    r"|\d{4,}",
    re.IGNORECASE,
)
MAX_JOB_KEY = 400
# Recurrence is counted over this many days (and 7); "first seen" looks back over the whole retention.
RECURRENCE_DAYS = 30


def _mask(name: str) -> str:
    return _RUN_PARTS.sub("#", name.strip())[:180]


def job_key(
    *,
    cluster_name: str | None = None,
    step_name: str | None = None,
    application_id: str | None = None,
    job_run_name: str | None = None,
    spark_app_name: str | None = None,
) -> str | None:
    """The identity of a job across runs, or None when the names do not identify one.

    Examples
    --------
    >>> job_key(cluster_name="etl-nightly-2026-11-20", step_name="load orders")
    'step:etl-nightly-#/load orders'
    >>> job_key(application_id="00f1982r1uukb925", job_run_name="features-20261120")
    'serverless:00f1982r1uukb925/features-#'
    >>> job_key(cluster_name="analytics", spark_app_name="churn-model 2026-11-20")
    'app:analytics/churn-model #'
    >>> job_key(cluster_name="etl", step_name="load_table_2")
    'step:etl/load_table_2'
    """
    if step_name and cluster_name:
        return f"step:{_mask(cluster_name)}/{_mask(step_name)}"[:MAX_JOB_KEY]
    if application_id and job_run_name:
        return f"serverless:{application_id}/{_mask(job_run_name)}"[:MAX_JOB_KEY]
    if cluster_name and spark_app_name:
        # An application submitted outside the Steps API, known by its spark.app.name on clusters of a name.
        return f"app:{_mask(cluster_name)}/{_mask(spark_app_name)}"[:MAX_JOB_KEY]
    return None


def eks_job_key(virtual_cluster_id: str | None, name: str | None) -> str | None:
    """An EMR on EKS job: its job run name in its virtual cluster (dates and run numbers masked).

    >>> eks_job_key("949wt7zuphox1beiv0i30v65i", "orders-20261120")
    'eks:949wt7zuphox1beiv0i30v65i/orders-#'
    """
    if not virtual_cluster_id or not name:
        return None
    return f"eks:{virtual_cluster_id}/{_mask(name)}"[:MAX_JOB_KEY]


def incident_job_key(incident: Incident) -> str | None:
    """The job of a step, job-run or application incident (cluster incidents are not runs of a job); a
    member account's job carries its account, as its incident id does (the same names in two accounts are
    two jobs: a development run must not resolve a production failure)."""
    key = _unscoped_job_key(incident)
    account = account_of(incident.incident_id)
    return f"{account}:{key}" if key and account else key


def _unscoped_job_key(incident: Incident) -> str | None:
    if incident.kind == "step":
        return job_key(cluster_name=incident.cluster_name, step_name=incident.step_name)
    if incident.kind == "job_run":
        return job_key(application_id=incident.application_id, job_run_name=incident.job_run_name)
    if incident.kind == "application":
        return job_key(cluster_name=incident.cluster_name, spark_app_name=incident.spark_app_name)
    if incident.kind == "eks_job_run":
        return eks_job_key(incident.virtual_cluster_id, incident.job_run_name)
    return None


def recurrence(times: list[datetime], first_seen: datetime | None, at: datetime, retention_days: int) -> Recurrence:
    """Counts of a signature's incidents up to ``at`` from the failure times of the other incidents (those
    of the last RECURRENCE_DAYS at least), with the incident at ``at`` itself counted once; ``first_seen``:
    the earliest other incident within the retention (None: never seen before)."""
    earlier = [t for t in times if t <= at]
    first = min(first_seen, at) if first_seen is not None else at
    return Recurrence(
        count_7d=1 + sum(1 for t in earlier if at - t <= timedelta(days=7)),
        count_30d=1 + sum(1 for t in earlier if at - t <= timedelta(days=RECURRENCE_DAYS)),
        first_seen=first,
        new=first_seen is None,
        retention_days=retention_days,
    )


def alert_context(
    incident: Incident,
    signature: tuple[list[datetime], datetime | None] | None,
    last_success: JobRun | None,
    retention_days: int,
) -> AlertContext:
    """The context line's input, from what the store returned (None: not looked up or unavailable).

    Parameters
    ----------
    signature:
        The failure times of the other incidents with the same signature (recent ones), and the earliest.
    """
    context = AlertContext(job_known=incident_job_key(incident) is not None)
    if signature is not None:
        times, first_seen = signature
        context.recurrence = recurrence(times, first_seen, incident.failed_at, retention_days)
    if last_success is not None:
        if last_success.at <= incident.failed_at:
            context.last_success = last_success.at
        else:
            context.succeeded_after = last_success.at
    return context

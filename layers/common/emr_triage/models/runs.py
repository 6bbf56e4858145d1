"""Runs of jobs over time: a run being watched while it runs, and a finished run remembered for the
baselines (how long a job usually takes) and the weekly digest."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from emr_triage.models.incident import SlackRef

RunKind = Literal["step", "job_run", "eks_job_run"]
FinishedOutcome = Literal["SUCCEEDED", "FAILED"]
# A cluster, job run or application tag that sets a run's slow limit in minutes (it wins over history).
MAX_RUNTIME_TAG = "emr-triage:max-runtime-minutes"


class Expectation(BaseModel):
    """How long a run of its job may take before it is called slow, and where that comes from.

    ``history``: the median and 95th percentile of the job's last successful runs (``runs`` of them);
    ``tag``: the ``emr-triage:max-runtime-minutes`` tag of the cluster, job run or application."""

    limit_seconds: int = Field(ge=60)
    source: Literal["history", "tag"]
    p50_seconds: int | None = None
    p95_seconds: int | None = None
    runs: int = 0


class SlowAlert(BaseModel):
    """The Slack message that said a run is slow: where it is, and what it said."""

    slack: SlackRef
    at: datetime  # when it was posted
    running_seconds: int  # how long the run had been running then
    summary: str | None = None  # what the logs showed (redacted)


class ActiveRun(BaseModel):
    """A step, EMR Serverless job run or EMR on EKS job run seen entering RUNNING: one small item per run.

    Its id is the incident id its failure would have (``<cluster>.<step>``, ``<application>.<job run>``),
    so a failure finds the run's slow alert and edits it instead of posting a second message."""

    run_id: str
    kind: RunKind
    job_key: str | None = None
    region: str
    account: str
    started_at: datetime
    cluster_id: str | None = None
    cluster_name: str | None = None
    step_id: str | None = None
    step_name: str | None = None
    application_id: str | None = None
    application_name: str | None = None
    job_run_id: str | None = None
    job_run_name: str | None = None
    virtual_cluster_id: str | None = None  # EMR on EKS
    virtual_cluster_name: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    log_location: str | None = None  # s3:// prefix of the run's logs (the step's, or the driver's folder)
    expected: Expectation | None = None
    severity: str = "medium"  # routing mentions owners only for high and critical: a slow run does not
    slow_claim_until: datetime | None = None  # an invocation is posting the slow alert until then
    slow_alert: SlowAlert | None = None
    ended_state: str | None = None
    ended_at: datetime | None = None
    version: int = 0

    @property
    def label(self) -> str:
        """How an engineer names the run: "step load-orders (s-…)", "job run features (00f…)"."""
        if self.kind == "step":
            return f"step {self.step_name or self.step_id} ({self.step_id})"
        return f"job run {self.job_run_name or self.job_run_id} ({self.job_run_id})"


class FinishedRun(BaseModel):
    """A run that ended, kept per day (the digest reads a fortnight of days) and, for successes, per job
    (the baseline of its next runs)."""

    run_id: str
    job_key: str
    outcome: FinishedOutcome
    ended_at: datetime
    duration_seconds: int | None = None  # known when the run was seen starting
    slow: bool = False  # alerted as slow while it ran
    incident_id: str | None = None  # a failure's incident

"""An incident: one failure, however many events and log objects tell us about it."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from emr_triage.models.analysis import Diagnosis, ExitCode, Finding, LogRead, Severity
from emr_triage.models.validation import Message, Name

# step: an EMR step failed; cluster: a cluster died; job_run: an EMR Serverless job run failed;
# application: a YARN application submitted outside the Steps API failed (detected from its driver's log);
# eks_job_run: an EMR on EKS job run failed (its virtual cluster id and job run id).
IncidentKind = Literal["step", "cluster", "job_run", "application", "eks_job_run"]
IncidentStatus = Literal["OPEN", "RESOLVED"]


class TimelineEntry(BaseModel):
    at: datetime
    what: str
    event_id: str | None = None


# The channel recorded for a message sent through an incoming webhook (which says neither channel nor ts).
WEBHOOK_CHANNEL = "incoming-webhook"


class SlackRef(BaseModel):
    """Where the incident's root message lives, and a digest of what it last said."""

    channel: str
    ts: str
    digest: str = ""
    # The channel as routed (a name like #alerts, or an id), which keys its post pace; ``channel`` is the
    # id Slack answered with.
    routed_to: str | None = None
    # The verdict (fingerprint) whose evidence and extract were last posted in the thread (claimed before
    # posting), and the one whose evidence reply is out (so a retry after a failed upload does not reply twice).
    thread_fingerprint: str | None = None
    reply_fingerprint: str | None = None
    # Set while an invocation posts the thread (a lease: one that died is taken over once it expires).
    thread_claim_until: datetime | None = None

    @property
    def via_webhook(self) -> bool:
        """Sent through an incoming webhook: it cannot be edited or replied to."""
        return self.channel == WEBHOOK_CHANNEL

    @property
    def pace_key(self) -> str:
        """The channel whose post pace a reply in this thread keeps: as routed, else Slack's id."""
        return self.routed_to or self.channel


class MuteRef(BaseModel):
    """A person's mute of the incident's failure (its fingerprint, for its job), shown on its message."""

    fingerprint: str
    job_key: str
    by: str  # the Slack user id of who muted it
    until: datetime
    # Their Slack name, shown where their id would notify them (a new reply in a thread).
    by_name: str | None = Field(None, max_length=80)


class Mute(MuteRef):
    """A mute as stored on its own: later incidents of the same failure and job post no root message
    (they reply in the thread of ``incident_id``, the alert it was muted from) and mention no one."""

    incident_id: str
    at: datetime


class RecordedLog(BaseModel):
    """A log analysed whose findings did not change what its incident showed when it landed (at fan-in,
    most executors' logs): kept as its own item under the incident, written once, and merged into the
    incident at its next log check (symptom counts, exit codes), without every such log rewriting it."""

    read: LogRead
    at: datetime  # when it was kept: a check merges those kept after the last it merged
    findings: list[Finding] = Field(default_factory=list)
    exit_codes: list[ExitCode] = Field(default_factory=list)
    application_ids: list[str] = Field(default_factory=list)


class Incident(BaseModel):
    incident_id: str
    kind: IncidentKind
    status: IncidentStatus = "OPEN"
    state: str
    severity: Severity
    region: str
    account: str | None = None

    cluster_id: str | None = None
    cluster_name: Name | None = None
    # The primary node's DNS name while the cluster runs (its Spark and YARN UIs).
    master_public_dns: str | None = None
    release_label: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    step_id: str | None = None
    step_name: Name | None = None
    action_on_failure: str | None = None
    step_command: str | None = None
    application_id: str | None = None
    application_name: Name | None = None
    job_run_id: str | None = None
    job_run_name: Name | None = None
    # EMR on EKS: the virtual cluster and the EKS cluster and namespace behind it ("analytics/spark-jobs").
    virtual_cluster_id: str | None = None
    virtual_cluster_name: Name | None = None
    eks_namespace: str | None = None
    # A member account's failure (its id is ``account``): the account's name (MemberAccountNames).
    account_name: Name | None = None
    # An application submitted outside the Steps API: its YARN id and Spark name (spark.app.name).
    yarn_application_id: str | None = None
    spark_app_name: Name | None = None

    started_at: datetime | None = None
    ended_at: datetime | None = None
    failed_at: datetime

    emr_reason_code: str | None = None
    emr_reason: Message | None = None
    emr_log_file: str | None = None
    log_location: str | None = None
    lookup_errors: list[str] = Field(default_factory=list)

    diagnosis: Diagnosis | None = None
    findings: list[Finding] = Field(default_factory=list)
    logs_analysed: list[LogRead] = Field(default_factory=list)
    application_ids: list[str] = Field(default_factory=list)
    exit_codes: list[ExitCode] = Field(default_factory=list)
    children: list[str] = Field(default_factory=list)
    # Unrelated failures folded into this alert because a storm backed its channel up (see incidents/pacing.py).
    storm_children: list[str] = Field(default_factory=list)
    timeline: list[TimelineEntry] = Field(default_factory=list)

    slack: SlackRef | None = None
    slack_claim_until: datetime | None = None
    # A root post went out at this time and its outcome is unknown (Slack did not answer, or the invocation
    # holding the claim died): the next post looks for it in the channel's history first. Cleared once the
    # message is recorded.
    slack_post_unanswered_at: datetime | None = None

    # Log checks after the failure (the follow-up queue): scheduled once; the last one, at the deadline,
    # marks the incident "logs unavailable" if no log could be read by then.
    # The highest log check scheduled so far (0: none yet).
    follow_up_check: int = 0

    # The cluster's capacity and instance events around the failure (spot, capacity, arrested groups).
    infrastructure: list[str] = Field(default_factory=list)

    # A cancelled or interrupted step, or a cluster terminated by STEP_FAILURE, that arrived before the
    # failed step it is part of: not alerted until a log check shows no such step failure (then alerted),
    # or that step's failure arrives (then folded into its alert, and this incident closed).
    held_for_parent: bool = False
    # The check that releases or folds a held incident is in the queue (so a retried event does not
    # leave a held incident without one, nor schedule a second).
    hold_check_scheduled: bool = False
    # The failed step an application incident is held for (only that step's incident may fold it).
    held_for_step: str | None = None
    folded_into: str | None = None

    # Resolution: a later run of the same job succeeded (the incident is closed, and its thread says so).
    resolved_at: datetime | None = None
    resolved_by: str | None = None
    recovery_posted: bool = False
    # People acting from the alert (the interactive Slack function): who acknowledged it and when, the
    # mute set from it, and, for an incident of a muted failure, the alert whose thread it went to.
    acknowledged_by: str | None = None
    resolved_by_user: str | None = None
    acknowledged_at: datetime | None = None
    mute: MuteRef | None = None
    muted_under: str | None = None
    mute_reply_posted: bool = False
    # The run was alerted as slow before it failed: what that alert said (its message became this one's).
    slow_note: str | None = None
    logs_deadline_passed: bool = False
    logs_unavailable: bool = False
    logs_deadline_minutes: int | None = None
    # The newest log kept under the incident (RecordedLog) that a log check has merged into it.
    recorded_merged_until: datetime | None = None

    opened_at: datetime
    updated_at: datetime
    version: int = 0
    expires_at: int

    @property
    def follow_up_scheduled(self) -> bool:
        return self.follow_up_check > 0


class IncidentSummary(BaseModel):
    """An open incident as the open-incidents index (gsi3) projects it: enough for a one-line listing."""

    incident_id: str
    kind: IncidentKind
    status: IncidentStatus = "OPEN"
    severity: Severity
    cluster_id: str | None = None
    cluster_name: str | None = None
    step_name: str | None = None
    application_id: str | None = None
    job_run_name: str | None = None
    spark_app_name: str | None = None
    failed_at: datetime
    opened_at: datetime
    slack: SlackRef | None = None
    acknowledged_by: str | None = None
    mute: MuteRef | None = None
    muted_under: str | None = None
    verdict: str | None = None  # "<category>: <title>" of the diagnosis


RunOutcome = Literal["SUCCEEDED", "FAILED"]


class InfraEvent(BaseModel):
    """A capacity or instance event of a cluster, in words (kept to explain failures around it)."""

    cluster_id: str
    at: datetime
    what: str
    event_id: str | None = None


class JobRun(BaseModel):
    """The latest run of a job with a given outcome (the job: a step name on clusters of the same name, or
    a job run name in an EMR Serverless application; see :func:`emr_triage.incidents.history.job_key`)."""

    job_key: str
    outcome: RunOutcome
    at: datetime
    cluster_id: str | None = None
    step_id: str | None = None
    application_id: str | None = None
    job_run_id: str | None = None
    incident_id: str | None = None


class Recurrence(BaseModel):
    """How often the incident's failure signature was seen up to this incident (this one included)."""

    count_7d: int
    count_30d: int
    first_seen: datetime
    # Never seen before this incident (within the retention).
    new: bool = False
    retention_days: int


class AlertContext(BaseModel):
    """What the incident store knows around one incident, for the alert: recurrence of its signature and
    the last successful run of the same job. None fields: unknown (no signature yet, no job identity, or
    the store could not be read)."""

    recurrence: Recurrence | None = None
    job_known: bool = False
    last_success: datetime | None = None
    succeeded_after: datetime | None = None


OutcomeAction = Literal[
    "incident_opened",
    "incident_resolved",
    "incident_updated",
    # A log analysed whose findings change nothing the incident shows (not written).
    "unchanged",
    "duplicate",
    "folded",
    "ignored",
    "no_incident",
    "rejected",
    "run_recorded",
    # A run seen entering RUNNING (watched when its job has a baseline or a runtime tag), one of its
    # checks (alerted as slow, not yet due, or ended meanwhile), and the weekly digest.
    "run_started",
    "run_slow",
    "run_checked",
    "digest_posted",
]
# muted: a failure someone muted; its alert went into the muting alert's thread, not to a new message.
SlackAction = Literal["posted", "updated", "unchanged", "folded", "muted", "none"]


class Outcome(BaseModel):
    """What a handler did with one event: returned to Lambda and printed by the replay command."""

    action: OutcomeAction
    detail: str
    incident_id: str | None = None
    slack: SlackAction = "none"

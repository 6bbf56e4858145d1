"""The small interfaces the incident domain works through, and the :class:`Dependencies` they make up.

The domain (``incidents/``) imports this module, never an adapter: DynamoDB, EMR, S3, Slack and SQS sit
behind these Protocols (``aws/`` for DynamoDB, EMR, S3 and SQS; ``slack/`` for Slack), and only the wiring module
(``runtime.py``) builds them. Unit tests pass the in-memory fakes of ``tests/fakes/memory.py``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol

from emr_triage.models.ids import account_of as account_of

if TYPE_CHECKING:
    from emr_triage.alerts.message import SlackMessage
    from emr_triage.analysis.catalogue import Catalogue
    from emr_triage.models.emr import ClusterInfo, EksJobRunInfo, InstanceInfo, JobRunInfo, StepInfo
    from emr_triage.models.events import FollowUp
    from emr_triage.models.incident import (
        Incident,
        IncidentSummary,
        InfraEvent,
        JobRun,
        Mute,
        RecordedLog,
        RunOutcome,
        SlackRef,
    )
    from emr_triage.models.runs import ActiveRun, FinishedRun
    from emr_triage.settings import Settings

# A change to an incident: the changed incident, or None for "nothing to change" (no write).
Mutation = Callable[["Incident"], "Incident | None"]


class IncidentRepository(Protocol):
    """Incidents and their history. ``update`` applies ``mutate`` to the stored incident with a
    conditional write, re-reading and re-applying on conflict; it returns the incident as stored after
    the call (unchanged when ``mutate`` returned None), or None when there is no such incident."""

    def begin_invocation(self) -> None:
        """A new invocation starts: forget what the last one read or wrote (a store may keep it, as the
        base of the next conditional update, within one invocation)."""
        ...

    def create(self, incident: Incident) -> bool: ...

    def get(self, incident_id: str) -> Incident | None: ...

    def update(self, incident_id: str, mutate: Mutation) -> Incident | None: ...

    def open_incidents(self, *, cluster_id: str | None = None, application_id: str | None = None) -> list[Incident]: ...

    def resolved_incidents(self, cluster_id: str, *, opened_since: datetime) -> list[Incident]:
        """Resolved incidents of a cluster opened since a time (every page)."""
        ...

    def signature_times(
        self, fingerprint: str, *, since: datetime, until: datetime, exclude: str
    ) -> list[datetime]: ...

    def signature_first_seen(self, fingerprint: str, *, until: datetime, exclude: str) -> datetime | None: ...

    def record_run(self, run: JobRun, expires_at: int) -> bool: ...

    def record_infra(self, event: InfraEvent, expires_at: int) -> None: ...

    def infra_events(self, cluster_id: str, *, since: datetime, until: datetime) -> list[InfraEvent]: ...

    def last_run(self, job_key: str, outcome: RunOutcome) -> JobRun | None: ...

    def record_log(self, incident_id: str, log: RecordedLog, expires_at: int) -> bool:
        """Keep a log's findings under its incident, once: False when this log (source and etag) is
        already kept (a redelivered event)."""
        ...

    def recorded_logs(self, incident_id: str) -> list[RecordedLog]:
        """Every log kept under the incident, across pages."""
        ...

    def open_summaries(self, limit: int = 50) -> list[IncidentSummary]:
        """Open alerted incidents, newest first (a listing's fields only)."""
        ...


class EmrGateway(Protocol):
    """What the domain needs to know from EMR. Lookups never raise for a missing or forbidden
    resource (the incident must still open): they return ``found=False`` with ``lookup_error``."""

    def describe_cluster(self, cluster_id: str) -> ClusterInfo: ...

    def cluster(self, cluster_id: str) -> ClusterInfo:
        """DescribeCluster, remembered by this process for a few minutes (every step of a cluster asks)."""
        ...

    def describe_step(self, cluster_id: str, step_id: str) -> StepInfo: ...

    def get_job_run(self, application_id: str, job_run_id: str) -> JobRunInfo: ...

    def job_run_state(self, application_id: str, job_run_id: str) -> str | None:
        """Only the job run's state (None: EMR could not say)."""
        ...

    def describe_eks_job_run(self, virtual_cluster_id: str, job_run_id: str) -> EksJobRunInfo:
        """EMR on EKS: the job run (state, reason, log location) and its virtual cluster's name and tags."""
        ...

    def cluster_name(self, cluster_id: str) -> str | None: ...

    def failed_steps(self, cluster_id: str) -> list[StepInfo] | None: ...

    def instance_owner(self, instance_id: str) -> InstanceInfo | None:
        """The EMR cluster an EC2 instance belongs to (its EMR system tags), or None: not an EMR
        cluster's instance, gone, or not allowed to ask."""
        ...


@dataclass(frozen=True)
class ObjectInfo:
    bucket: str
    key: str
    size: int
    etag: str | None = None


@dataclass
class ObjectStream:
    info: ObjectInfo
    chunks: Iterator[bytes]


class LogStore(Protocol):
    """Log objects: listed under a prefix, streamed in chunks (never whole into memory)."""

    def list_objects(self, bucket: str, prefix: str, limit: int = 1000) -> list[ObjectInfo]: ...

    def open_object(self, bucket: str, key: str) -> ObjectStream: ...


class Notifier(Protocol):
    """Where alerts go. ``threads``: whether it can edit the root message and post under it (a bot
    token can; an incoming webhook posts one message per incident).

    ``post`` raises ``SlackPostUnansweredError`` when the post was sent but never answered (it may be in
    the channel); ``find_root`` then looks for the incident's root message among the channel's messages
    since ``since`` (by the message metadata naming the incident): its reference (digest empty: what it
    says is not known), or None (not there, or it cannot look: no history scope, an incoming webhook)."""

    threads: bool

    def post(self, channel: str, message: SlackMessage) -> SlackRef: ...

    def find_root(self, channel: str, incident_id: str, since: datetime) -> SlackRef | None: ...

    def update(self, ref: SlackRef, message: SlackMessage) -> SlackRef: ...

    def reply(self, ref: SlackRef, message: SlackMessage) -> str: ...

    def upload(self, ref: SlackRef, filename: str, content: str | bytes, title: str) -> str: ...

    def ephemeral(self, channel: str, user: str, text: str) -> None:
        """A message only ``user`` sees in ``channel`` (an answer to a button they pressed)."""
        ...


class MuteStore(Protocol):
    """People's mutes of a failure (fingerprint) for a job, each until a time."""

    def put(self, mute: Mute) -> None: ...

    def delete(self, job_key: str, fingerprint: str) -> bool:
        """Forget the mute; False when there was none."""
        ...

    def for_job(self, job_key: str) -> list[Mute]:
        """The job's mutes, expired ones included (the caller compares ``until`` with its clock)."""
        ...

    def all(self) -> list[Mute]: ...


class InteractionLedger(Protocol):
    """What the interactive function has already acted on (Slack's retries and replays act once)."""

    def first_time(self, key: str, expires_at: int) -> bool:
        """Record ``key``; False when it was recorded before."""
        ...


@dataclass(frozen=True)
class LastRoot:
    incident_id: str
    at: float


class PostPacer(Protocol):
    """Slots for posts in a channel. Times are epoch seconds."""

    def reserve(self, channel: str, now: float, max_wait: float | None = None) -> float | None:
        """Take the channel's next slot: the seconds to wait before posting. None (nothing taken): the
        next slot is more than ``max_wait`` seconds away."""
        ...

    def record_root(self, channel: str, incident_id: str, now: float, channel_id: str | None = None) -> None:
        """Remember the incident whose root message was just posted in the channel, and the id Slack
        answered with for it (a channel routed by name is then paced as its id: one pace per channel)."""
        ...

    def last_root(self, channel: str) -> LastRoot | None: ...

    def channel_id(self, channel: str) -> str | None:
        """The id Slack answered an earlier post to this channel (routed by name) with, from any
        invocation; None when no post has told it yet."""
        ...


class RunStore(Protocol):
    """Runs being watched (one small item each) and runs that ended (per day, and per job for the
    baseline). ``update`` is a conditional write, re-read and re-applied on conflict, like the
    repository's; it returns the run as stored after the call, or None when there is no such run."""

    def start(self, run: ActiveRun, expires_at: int) -> bool:
        """Store a run seen starting; False when it is already stored (a duplicate event)."""
        ...

    def get(self, run_id: str) -> ActiveRun | None: ...

    def update(self, run_id: str, mutate: Callable[[ActiveRun], ActiveRun | None]) -> ActiveRun | None: ...

    def record_finished(self, run: FinishedRun, expires_at: int) -> None:
        """Remember a run that ended (the same run again overwrites itself)."""
        ...

    def durations(self, job_key: str, limit: int) -> list[int]:
        """The durations (seconds) of the job's newest successful runs, newest first."""
        ...

    def finished_between(self, since: datetime, until: datetime) -> list[FinishedRun]:
        """Every run that ended in ``[since, until)``, oldest first."""
        ...

    def first_time(self, key: str, expires_at: int) -> bool:
        """Claim ``key`` (a digest of a channel and week); False when it was claimed before."""
        ...

    def forget(self, key: str) -> None:
        """Hand a claim back (what it claimed failed, and the retry must do it)."""
        ...


class FollowUpQueue(Protocol):
    def schedule(self, follow_up: FollowUp, delay_seconds: int) -> None: ...


class MemberAccounts(Protocol):
    """EMR and S3 in another account of the organisation, through the read-only role it gives this stack."""

    def emr(self, account: str) -> EmrGateway: ...

    def logs(self, account: str) -> LogStore: ...


class DeadLetterSink(Protocol):
    def send(self, raw_event: object, reason: str, function: str) -> str: ...


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Dependencies:
    """Everything the domain functions need, behind the interfaces above (fakes in unit tests)."""

    settings: Settings
    repository: IncidentRepository
    emr: EmrGateway
    logs: LogStore
    notifier: Notifier
    catalogue: Catalogue
    dead_letters: DeadLetterSink | None = None
    # Where log checks after a failure are scheduled (None: no follow-ups, e.g. in unit tests).
    follow_ups: FollowUpQueue | None = None
    # Slots for Slack posts, one per channel per interval across invocations (None: no pacing).
    pacer: PostPacer | None = None
    # Mutes set from Slack (None: no interactive function, nothing is ever muted).
    mutes: MuteStore | None = None
    # Runs watched for slowness and remembered for the digest (None: not watched, e.g. in most unit tests).
    runs: RunStore | None = None
    clock: Callable[[], datetime] = field(default=utc_now)
    sleep: Callable[[float], None] = field(default=time.sleep)
    # time.monotonic() by which log reading must stop, so the function still has time to store the
    # incident and post (set per invocation from the Lambda context; None: no limit).
    deadline: float | None = None
    # Member accounts' EMR and S3 (None: this account only), and, once bound to a member account by
    # in_account, the prefix its incident ids, run ids and job keys carry ("111122223333:").
    members: MemberAccounts | None = None
    account_prefix: str = ""

    def in_account(self, account: str | None) -> Dependencies:
        """These dependencies for a resource of ``account``: its EMR and S3 through its role, and its ids
        prefixed with it, when it is a member account; unchanged for this stack's own account."""
        if self.members is None or not account or account == self.settings.home_account or self.account_prefix:
            return self  # this account's, or bound already
        return replace(
            self, emr=self.members.emr(account), logs=self.members.logs(account), account_prefix=f"{account}:"
        )

    def scoped(self, natural_id: str) -> str:
        """An incident or run id (or a job key) as stored: a member account's carries its account."""
        return f"{self.account_prefix}{natural_id}"

    def scoped_key(self, key: str | None) -> str | None:
        return None if key is None else self.scoped(key)

    def seconds_left(self) -> float | None:
        return None if self.deadline is None else self.deadline - time.monotonic()

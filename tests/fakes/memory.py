"""In-memory fakes of the adapter interfaces (repository, EMR, log store, notifier) for unit tests."""

from __future__ import annotations

import gzip
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from emr_triage.alerts.message import SlackMessage
from emr_triage.alerts.metadata import metadata_incident
from emr_triage.analysis.catalogue import load_catalogue
from emr_triage.analysis.redact import redact_strings
from emr_triage.aws import incident_items as items
from emr_triage.aws import incident_store as table
from emr_triage.aws.incident_items import bounded_log, recorded_log_key, storable, to_item
from emr_triage.aws.pacing import next_slot
from emr_triage.exceptions import LogReadError, SlackPostUnansweredError, TransientError, too_large
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
from emr_triage.ports import Dependencies, LastRoot, Mutation, ObjectInfo, ObjectStream
from emr_triage.settings import load_settings

# DynamoDB's item limit (400 KB), which the real table enforces on every write.
MAX_ITEM_BYTES = 400 * 1024


def item_bytes(item: Mapping[str, Any]) -> int:
    """The size of an item (attribute-value format) by DynamoDB's rules: each attribute's name plus its
    value (strings and binaries by their UTF-8 bytes, numbers 1 byte per 2 significant digits + 1, lists and maps 3
    bytes plus 1 per element, booleans and nulls 1)."""
    return sum(len(name.encode()) + _value_bytes(value) for name, value in item.items())


def _value_bytes(value: Mapping[str, Any]) -> int:
    kind, inner = next(iter(value.items()))
    if kind == "S":
        return len(inner.encode())
    if kind == "N":
        digits = inner.lstrip("-").replace(".", "").strip("0") or "0"
        return (len(digits) + 1) // 2 + 1
    if kind == "B":
        return len(inner)
    if kind in ("SS", "NS", "BS"):
        return sum(_value_bytes({kind[0]: member}) for member in inner)
    if kind == "L":
        return 3 + sum(1 + _value_bytes(member) for member in inner)
    if kind == "M":
        return 3 + sum(1 + len(name.encode()) + _value_bytes(member) for name, member in inner.items())
    return 1  # BOOL, NULL


def _group(incident: Incident) -> str:
    return f"CLUSTER#{incident.cluster_id}" if incident.cluster_id else f"APP#{incident.application_id}"


class MemoryRepository:
    """The incident repository over dicts, keeping the DynamoDB repository's contract (the tests in
    tests/integration/test_store_contract.py run against both): what is stored is what the real one stores
    (redacted, trimmed to its item budget by the same ``storable``; a write over DynamoDB's 400 KB item limit
    is refused as DynamoDB refuses it), ``update`` is a versioned write retried on conflict, and records are
    keyed to the second as the table's sort keys are."""

    def __init__(self) -> None:
        self.items: dict[str, Incident] = {}
        self.runs: dict[tuple[str, str], JobRun] = {}
        self.infra: dict[tuple[str, str], InfraEvent] = {}
        self.logs: dict[tuple[str, str], RecordedLog] = {}
        self.writes = 0
        # Versioned writes refused because the incident changed after it was read (then retried).
        self.conflicts = 0

    @staticmethod
    def _stored(incident: Incident) -> Incident:
        """The incident as the table would hold it, or the table's error for an item over its limit."""
        body = storable(incident)
        if item_bytes(to_item(incident, body)) > MAX_ITEM_BYTES:
            raise too_large(incident.incident_id)  # as the real one translates DynamoDB's ValidationException
        return Incident.model_validate(body)

    def begin_invocation(self) -> None:
        return  # nothing kept between calls: every call reads the dicts

    def create(self, incident: Incident) -> bool:
        if incident.incident_id in self.items:
            return False
        self.items[incident.incident_id] = self._stored(incident)
        self.writes += 1
        return True

    def get(self, incident_id: str) -> Incident | None:
        item = self.items.get(incident_id)
        return item.model_copy(deep=True) if item else None

    def update(self, incident_id: str, mutate: Mutation) -> Incident | None:
        for _ in range(table._UPDATE_ATTEMPTS):
            current = self.get(incident_id)
            if current is None:
                return None
            changed = mutate(current.model_copy(deep=True))
            if changed is None:
                return current
            stored = self.items.get(incident_id)
            if stored is None or stored.version != current.version:
                self.conflicts += 1  # the conditional write on the version read is refused: read again
                continue
            changed = changed.model_copy(update={"version": current.version + 1, "updated_at": datetime.now(UTC)})
            self.items[incident_id] = self._stored(changed)
            self.writes += 1
            return self.get(incident_id)
        raise TransientError(
            f"incident {incident_id} kept changing under us ({table._UPDATE_ATTEMPTS} version conflicts); "
            "retrying the event"
        )

    def _signature_entries(self, fingerprint: str, low: str, high: str) -> list[tuple[str, str]]:
        """(failure second, incident id) of the incidents with this signature whose gsi2 sort key is between
        ``low`` and ``high``, in the index's order."""
        entries = [
            (items.utc_key(i.failed_at), i.incident_id)
            for i in self.items.values()
            if i.diagnosis and i.diagnosis.fingerprint == fingerprint
        ]
        return sorted(e for e in entries if low <= f"{e[0]}#{e[1]}" <= high)

    @staticmethod
    def _second(key: str) -> datetime:
        return datetime.strptime(key, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)

    def signature_times(self, fingerprint: str, *, since: datetime, until: datetime, exclude: str) -> list[datetime]:
        entries = self._signature_entries(fingerprint, items.utc_key(since), items.utc_key(until) + "#~")
        newest = list(reversed(entries))[: table.MAX_SIGNATURE_ITEMS + 1]
        return [self._second(at) for at, incident_id in newest if incident_id != exclude][: table.MAX_SIGNATURE_ITEMS]

    def signature_first_seen(self, fingerprint: str, *, until: datetime, exclude: str) -> datetime | None:
        entries = self._signature_entries(fingerprint, "0", items.utc_key(until) + "#~")
        return next((self._second(at) for at, incident_id in entries[:2] if incident_id != exclude), None)

    def record_run(self, run: JobRun, expires_at: int) -> bool:
        current = self.runs.get((run.job_key, run.outcome))
        if current is not None and items.utc_key(current.at) >= items.utc_key(run.at):
            return False
        self.runs[(run.job_key, run.outcome)] = JobRun.model_validate(redact_strings(run.model_dump(mode="json")))
        return True

    def record_infra(self, event: InfraEvent, expires_at: int) -> None:
        event = event.model_copy(update={"what": event.what[: table.MAX_INFRA_TEXT]})
        sort_key = f"INFRA#{items.utc_key(event.at)}#{event.event_id or ''}"
        self.infra[(event.cluster_id, sort_key)] = InfraEvent.model_validate(
            redact_strings(event.model_dump(mode="json"))
        )

    def infra_events(self, cluster_id: str, *, since: datetime, until: datetime) -> list[InfraEvent]:
        low, high = f"INFRA#{items.utc_key(since)}", f"INFRA#{items.utc_key(until)}#~"
        found = sorted(
            (sk, e) for (cluster, sk), e in self.infra.items() if cluster == cluster_id and low <= sk <= high
        )
        return [e for _, e in found[-table.MAX_INFRA_EVENTS :]]

    def last_run(self, job_key: str, outcome: RunOutcome) -> JobRun | None:
        return self.runs.get((job_key, outcome))

    def record_log(self, incident_id: str, log: RecordedLog, expires_at: int) -> bool:
        key = (incident_id, recorded_log_key(log.read.source, log.read.etag))
        if key in self.logs:
            return False
        self.logs[key] = RecordedLog.model_validate(redact_strings(bounded_log(log).model_dump(mode="json")))
        self.writes += 1
        return True

    def recorded_logs(self, incident_id: str) -> list[RecordedLog]:
        # The table's sort key order (LOG#<digest>), as a Query returns them.
        return [log.model_copy(deep=True) for (owner, _), log in sorted(self.logs.items()) if owner == incident_id]

    def open_incidents(self, *, cluster_id: str | None = None, application_id: str | None = None) -> list[Incident]:
        # The table's group key (gsi1pk): an incident with a cluster is found by its cluster only.
        group = f"CLUSTER#{cluster_id}" if cluster_id else f"APP#{application_id}"
        found = [i.model_copy(deep=True) for i in self.items.values() if i.status == "OPEN" and _group(i) == group]
        return sorted(found, key=lambda i: i.opened_at.isoformat())

    def resolved_incidents(self, cluster_id: str, *, opened_since: datetime) -> list[Incident]:
        found = [
            i.model_copy(deep=True)
            for i in self.items.values()
            if i.status == "RESOLVED"
            and i.cluster_id == cluster_id
            and i.opened_at.isoformat() >= opened_since.isoformat()
        ]
        return sorted(found, key=lambda i: i.opened_at.isoformat())

    def open_summaries(self, limit: int = 50) -> list[IncidentSummary]:
        # As the sparse index holds them: alerted, open, not folded; newest first; its projection only.
        listed = [items.to_item(i) for i in self.items.values()]
        indexed = sorted((i for i in listed if "gsi3pk" in i), key=lambda i: i["gsi3sk"]["S"], reverse=True)
        return [items.summary_from_item(i) for i in indexed[:limit]]


@dataclass
class FakeEmr:
    clusters: dict[str, ClusterInfo] = field(default_factory=dict)
    steps: dict[str, StepInfo] = field(default_factory=dict)
    job_runs: dict[str, JobRunInfo] = field(default_factory=dict)
    instances: dict[str, InstanceInfo] = field(default_factory=dict)
    eks_job_runs: dict[str, EksJobRunInfo] = field(default_factory=dict)
    error: Exception | None = None
    calls: list[str] = field(default_factory=list)  # the EMR API calls made, by name

    def describe_cluster(self, cluster_id: str) -> ClusterInfo:
        self.calls.append("DescribeCluster")
        if self.error:
            raise self.error
        return self.clusters.get(cluster_id) or ClusterInfo(cluster_id=cluster_id, found=False, lookup_error="gone")

    def describe_step(self, cluster_id: str, step_id: str) -> StepInfo:
        self.calls.append("DescribeStep")
        return self.steps.get(step_id) or StepInfo(step_id=step_id, found=False, lookup_error="gone")

    def get_job_run(self, application_id: str, job_run_id: str) -> JobRunInfo:
        return self.job_runs[job_run_id]

    def describe_eks_job_run(self, virtual_cluster_id: str, job_run_id: str) -> EksJobRunInfo:
        self.calls.append("DescribeJobRun")
        found = self.eks_job_runs.get(job_run_id)
        if found is None:
            return EksJobRunInfo(
                virtual_cluster_id=virtual_cluster_id, job_run_id=job_run_id, found=False, lookup_error="gone"
            )
        return found

    def job_run_state(self, application_id: str, job_run_id: str) -> str | None:
        run = self.job_runs.get(job_run_id)
        return run.state if run else None

    def cluster(self, cluster_id: str) -> ClusterInfo:
        return self.describe_cluster(cluster_id)

    def cluster_name(self, cluster_id: str) -> str | None:
        cluster = self.clusters.get(cluster_id)
        return cluster.name if cluster else None

    def instance_owner(self, instance_id: str) -> InstanceInfo | None:
        self.calls.append("DescribeInstances")
        return self.instances.get(instance_id)

    def failed_steps(self, cluster_id: str) -> list[StepInfo] | None:
        if cluster_id not in self.clusters:
            return None
        failed = [s for s in self.steps.values() if s.state == "FAILED"]
        oldest = datetime.min.replace(tzinfo=UTC)
        return sorted(failed, key=lambda s: s.ended_at or s.started_at or oldest, reverse=True)


@dataclass
class FakeLogs:
    objects: dict[tuple[str, str], bytes] = field(default_factory=dict)
    denied: set[str] = field(default_factory=set)

    def put(self, uri_key: str, text: str, bucket: str = "logs-bucket") -> None:
        self.objects[(bucket, uri_key)] = gzip.compress(text.encode())

    def list_objects(self, bucket: str, prefix: str, limit: int = 1000) -> list[ObjectInfo]:
        return [
            ObjectInfo(b, k, len(v), f"etag-{len(v)}")
            for (b, k), v in self.objects.items()
            if b == bucket and k.startswith(prefix)
        ][:limit]

    def open_object(self, bucket: str, key: str) -> ObjectStream:
        if key in self.denied:
            raise LogReadError(f"access denied reading s3://{bucket}/{key}")
        data = self.objects[(bucket, key)]
        return ObjectStream(ObjectInfo(bucket, key, len(data), f"etag-{len(data)}"), iter([data]))


@dataclass
class FakeNotifier:
    posts: list[tuple[str, SlackMessage]] = field(default_factory=list)
    updates: list[tuple[SlackRef, SlackMessage]] = field(default_factory=list)
    replies: list[tuple[SlackRef, SlackMessage]] = field(default_factory=list)
    uploads: list[tuple[SlackRef, str, str | bytes]] = field(default_factory=list)
    ephemerals: list[tuple[str, str, str]] = field(default_factory=list)
    fail_with: Exception | None = None
    threads: bool = True
    on_post: Callable[[], None] | None = None
    on_update: Callable[[], None] | None = None
    # The next posts Slack makes without answering (the answer lost), and those whose answer is lost before
    # Slack made them: both raise SlackPostUnansweredError. ``history``: whether find_root can look.
    unanswered_posts: int = 0
    lost_posts: int = 0
    history: bool = True
    lookups: list[tuple[str, str, datetime]] = field(default_factory=list)

    def post(self, channel: str, message: SlackMessage) -> SlackRef:
        if self.on_post:
            self.on_post()
        if self.fail_with:
            raise self.fail_with
        if self.lost_posts:
            self.lost_posts -= 1
            raise SlackPostUnansweredError(f"Slack did not answer the root post to {channel}")
        self.posts.append((channel, message))
        if self.unanswered_posts:
            self.unanswered_posts -= 1
            raise SlackPostUnansweredError(f"Slack did not answer the root post to {channel}")
        return SlackRef(channel="C0FAKE", ts=f"17000.{len(self.posts):04d}", digest=message.digest())

    def find_root(self, channel: str, incident_id: str, since: datetime) -> SlackRef | None:
        self.lookups.append((channel, incident_id, since))
        if not self.history:
            return None
        for number, (_, message) in enumerate(self.posts, start=1):
            if metadata_incident(message.metadata) == incident_id:
                return SlackRef(channel="C0FAKE", ts=f"17000.{number:04d}")
        return None

    def update(self, ref: SlackRef, message: SlackMessage) -> SlackRef:
        if self.on_update:
            self.on_update()
        if self.fail_with:
            raise self.fail_with
        self.updates.append((ref, message))
        return SlackRef(channel=ref.channel, ts=ref.ts, digest=message.digest())

    def reply(self, ref: SlackRef, message: SlackMessage) -> str:
        if self.fail_with:
            raise self.fail_with
        self.replies.append((ref, message))
        return f"17001.{len(self.replies):04d}"

    def upload(self, ref: SlackRef, filename: str, content: str | bytes, title: str) -> str:
        if self.fail_with:
            raise self.fail_with
        self.uploads.append((ref, filename, content))
        return f"F{len(self.uploads):08d}"

    def ephemeral(self, channel: str, user: str, text: str) -> None:
        if self.fail_with:
            raise self.fail_with
        self.ephemerals.append((channel, user, text))


@dataclass
class MemoryPacer:
    """The post pacer's rule (``next_slot``) over a dict, for unit tests. ``taken`` lists each slot."""

    interval: float = 1.0
    next_at: dict[str, float] = field(default_factory=dict)
    roots: dict[str, LastRoot] = field(default_factory=dict)
    taken: list[tuple[str, float]] = field(default_factory=list)
    ids: dict[str, str] = field(default_factory=dict)  # channel names resolved to ids by a post

    def reserve(self, channel: str, now: float, max_wait: float | None = None) -> float | None:
        channel = self.ids.get(channel, channel)
        slot, following = next_slot(now, self.next_at.get(channel), self.interval)
        if max_wait is not None and slot - now > max_wait:
            return None
        self.next_at[channel] = following
        self.taken.append((channel, slot))
        return slot - now

    def record_root(self, channel: str, incident_id: str, now: float, channel_id: str | None = None) -> None:
        if channel_id and channel_id != channel and channel not in self.ids:
            self.ids[channel] = channel_id
            if channel in self.next_at:  # the slots taken under the name carry over to the id
                self.next_at[channel_id] = max(self.next_at[channel], self.next_at.get(channel_id, 0.0))
        self.roots[channel_id or self.ids.get(channel, channel)] = LastRoot(incident_id, now)

    def last_root(self, channel: str) -> LastRoot | None:
        return self.roots.get(self.ids.get(channel, channel))

    def channel_id(self, channel: str) -> str | None:
        return self.ids.get(channel)


@dataclass
class MemorySlackState:
    """Mutes and the interaction ledger over dicts (the DynamoDB one: aws/slack_state.py)."""

    mutes: dict[tuple[str, str], Mute] = field(default_factory=dict)
    seen: dict[str, int] = field(default_factory=dict)

    def put(self, mute: Mute) -> None:
        self.mutes[(mute.job_key, mute.fingerprint)] = mute

    def delete(self, job_key: str, fingerprint: str) -> bool:
        return self.mutes.pop((job_key, fingerprint), None) is not None

    def for_job(self, job_key: str) -> list[Mute]:
        return [m for (key, _), m in self.mutes.items() if key == job_key]

    def all(self) -> list[Mute]:
        return list(self.mutes.values())

    def first_time(self, key: str, expires_at: int) -> bool:
        if key in self.seen:
            return False
        self.seen[key] = expires_at
        return True


@dataclass
class FakeClock:
    """Time that only moves when something sleeps."""

    now: datetime = field(default_factory=lambda: datetime(2026, 11, 20, 3, 0, tzinfo=UTC))

    def __call__(self) -> datetime:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class MemoryRunStore:
    """The run store in memory: runs by id (versioned like the table's), finished runs by key."""

    runs: dict[str, ActiveRun] = field(default_factory=dict)
    finished: dict[tuple[str, str], FinishedRun] = field(default_factory=dict)
    writes: int = 0

    def start(self, run: ActiveRun, expires_at: int) -> bool:
        if run.run_id in self.runs:
            return False
        self.writes += 1
        self.runs[run.run_id] = run.model_copy(deep=True, update={"version": 1})
        return True

    def get(self, run_id: str) -> ActiveRun | None:
        run = self.runs.get(run_id)
        return run.model_copy(deep=True) if run else None

    def update(self, run_id: str, mutate: Callable[[ActiveRun], ActiveRun | None]) -> ActiveRun | None:
        stored = self.runs.get(run_id)
        if stored is None:
            return None
        changed = mutate(stored.model_copy(deep=True))
        if changed is None:
            return stored.model_copy(deep=True)
        self.writes += 1
        changed.version = stored.version + 1
        self.runs[run_id] = changed.model_copy(deep=True)
        return changed

    def record_finished(self, run: FinishedRun, expires_at: int) -> None:
        self.writes += 1
        self.finished[(items.utc_key(run.ended_at), run.run_id)] = run.model_copy(deep=True)

    def durations(self, job_key: str, limit: int) -> list[int]:
        done = sorted(
            (key, run)
            for key, run in self.finished.items()
            if run.job_key == job_key and run.outcome == "SUCCEEDED" and run.duration_seconds is not None
        )
        return [run.duration_seconds for _, run in reversed(done) if run.duration_seconds is not None][:limit]

    def finished_between(self, since: datetime, until: datetime) -> list[FinishedRun]:
        return [run for _, run in sorted(self.finished.items()) if since <= run.ended_at < until]

    claims: set[str] = field(default_factory=set)

    def first_time(self, key: str, expires_at: int) -> bool:
        if key in self.claims:
            return False
        self.claims.add(key)
        return True

    def forget(self, key: str) -> None:
        self.claims.discard(key)


@dataclass
class FakeFollowUps:
    """Scheduled log checks, kept in order (``due()`` hands them out, as the queue would)."""

    scheduled: list[tuple[FollowUp, int]] = field(default_factory=list)
    fail_with: Exception | None = None

    def schedule(self, follow_up: FollowUp, delay_seconds: int) -> None:
        if self.fail_with:
            raise self.fail_with
        self.scheduled.append((follow_up, delay_seconds))

    def due(self) -> list[FollowUp]:
        due = [f for f, _ in self.scheduled]
        self.scheduled.clear()
        return due


def make_dependencies(
    now: datetime | None = None, environment: Mapping[str, str] | None = None
) -> tuple[Dependencies, MemoryRepository, FakeEmr, FakeLogs, FakeNotifier]:
    """In-memory adapters and settings (``environment`` adds to or overrides the base variables)."""
    repository, emr, logs, notifier = MemoryRepository(), FakeEmr(), FakeLogs(), FakeNotifier()
    clock = FakeClock(now) if now else FakeClock()
    settings = load_settings(
        {
            "INCIDENTS_TABLE": "incidents",
            "LOG_BUCKET": "logs-bucket",
            "LOG_PREFIX": "emr/",
            "SLACK_CHANNEL": "#alerts",
            "SLACK_DELIVERY": "console",
            **(environment or {}),
        }
    )
    deps = Dependencies(
        settings=settings,
        repository=repository,
        emr=emr,
        logs=logs,
        notifier=notifier,
        catalogue=load_catalogue(),
        clock=clock,
        sleep=clock.sleep,
    )
    return deps, repository, emr, logs, notifier

"""One contract, two stores: every test here runs against the in-memory fakes the unit tests use
(tests/fakes/memory.py) and against the DynamoDB adapters on moto (the table from template.yaml, Query pages
of two items so that paging happens). A behaviour the fake gets wrong would let a unit test pass over a bug
that only shows in Lambda; here it fails for one store and not the other.

What the incident store promises (``IncidentRepository``): what is created reads back as stored (every string
redacted, trimmed to the item budget, least useful parts first); ``create`` is refused for an existing id;
``update`` is a versioned write: one based on a stale read is refused and the mutation applied again to the
fresh incident, and an incident that keeps changing fails transiently; an item DynamoDB's 400 KB limit
refuses is refused by both; queries read every page; records are keyed to the second, as the table's sort
keys are. The post pacer (``PostPacer``) takes slots one interval apart per channel and remembers the
channel's last alert. (The paging and signature-history tests that were test_store_paging.py and
test_history_store.py, DynamoDB only, are here, run on both.)
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError
from tests.fakes.memory import MemoryPacer, MemoryRepository
from tests.integration.conftest import ROOT

from emr_triage.aws import incident_store as repository_module
from emr_triage.aws.incident_items import ITEM_BUDGET_BYTES, storable
from emr_triage.aws.incident_store import MAX_INFRA_EVENTS, MAX_INFRA_TEXT, DynamoIncidentRepository
from emr_triage.aws.pacing import DynamoPostPacer
from emr_triage.exceptions import IncidentTooLargeError, TransientError
from emr_triage.local.replay import LocalStack
from emr_triage.models.analysis import Diagnosis, ExitCode, Finding, LogRead
from emr_triage.models.incident import Incident, InfraEvent, JobRun, RecordedLog, SlackRef, TimelineEntry
from emr_triage.ports import IncidentRepository, PostPacer

T0 = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)
STORES = ["memory", "dynamodb"]


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest) -> Iterator[IncidentRepository]:
    if request.param == "memory":
        yield MemoryRepository()
        return
    with LocalStack(ROOT) as stack:
        yield DynamoIncidentRepository(stack.table_name, page_items=2)


@pytest.fixture(params=STORES)
def pacer(request: pytest.FixtureRequest) -> Iterator[PostPacer]:
    if request.param == "memory":
        yield MemoryPacer(interval=1.0)
        return
    with LocalStack(ROOT) as stack:
        yield DynamoPostPacer(stack.table_name, interval=1.0)


def _incident(number: int, cluster_id: str | None = "j-LONG", **fields: Any) -> Incident:
    at = T0 + timedelta(minutes=number)
    values: dict[str, Any] = {
        "incident_id": f"{cluster_id or 'app'}.s-{number:03d}",
        "kind": "step",
        "state": "FAILED",
        "severity": "high",
        "region": "us-east-1",
        "cluster_id": cluster_id,
        "failed_at": at,
        "opened_at": at,
        "updated_at": at,
        "expires_at": int((at + timedelta(days=90)).timestamp()),
    }
    return Incident(**{**values, **fields})


def _finding(number: int, *, evidence: int = 3, line_chars: int = 80, context: int = 0) -> Finding:
    return Finding(
        rule_id=f"rule-{number}",
        category="yarn_memory_kill",
        kind="cause",
        rank=10,
        severity="high",
        retryable=True,
        title="Container killed by YARN for exceeding memory limits",
        source="s3://acme-emr-logs/j-LONG/containers/application_1/container_01/stderr.gz",
        line_no=100 + number,
        headline=f"Container killed by YARN for exceeding physical memory limits ({number})",
        evidence=[f"{line:03d} " + "x" * line_chars for line in range(evidence)],
        context_before=[f"context {line} " + "c" * 400 for line in range(context)],
    )


def _diagnosed(incident_id: str, failed_at: datetime, fingerprint: str | None) -> Incident:
    diagnosis = None
    if fingerprint:
        diagnosis = Diagnosis(
            category="oom_heap", title="t", severity="high", summary="s", fingerprint=fingerprint, from_logs=True
        )
    return _incident(
        0,
        incident_id=incident_id,
        cluster_id="j-X",
        failed_at=failed_at,
        opened_at=failed_at,
        updated_at=failed_at,
        expires_at=int((failed_at + timedelta(days=90)).timestamp()),
        diagnosis=diagnosis,
    )


def _rich_incident() -> Incident:
    """An incident with every kind of field the alert path fills in."""
    return _incident(
        1,
        cluster_name="nightly-sales-etl",
        step_id="s-3H8ZKQW0EXAMP",
        step_name="daily-sales-aggregation",
        tags={"team": "data-platform"},
        emr_reason="Shut down as step failed",
        lookup_errors=["DescribeStep: throttled"],
        diagnosis=Diagnosis(
            category="yarn_memory_kill",
            rule_id="rule-1",
            title="Container killed by YARN",
            severity="high",
            retryable=True,
            summary="YARN killed executors for exceeding their memory limit",
            evidence=["Container killed by YARN for exceeding physical memory limits"],
            fingerprint="f00d",
            from_logs=True,
            confidence=0.75,
        ),
        findings=[_finding(1), _finding(2)],
        logs_analysed=[LogRead(source="s3://acme-emr-logs/j-LONG/steps/s-1/stderr.gz", bytes_read=1234, notes=["n"])],
        exit_codes=[ExitCode(code=137, signal="SIGKILL", meaning="killed", source="stderr.gz", line_no=7)],
        children=["step s-2 cancelled"],
        timeline=[TimelineEntry(at=T0, what="step failed", event_id="e-1")],
        slack=SlackRef(channel="C0DATAPLT", ts="1763600000.000100", routed_to="#alerts", thread_claim_until=T0),
        follow_up_check=2,
        infrastructure=["spot interruption of i-0abc"],
    )


# ---------------------------------------------------------------------------------------------------
# The incident store
# ---------------------------------------------------------------------------------------------------
def test_a_created_incident_reads_back_as_it_was_created(store: IncidentRepository) -> None:
    # Given an incident with diagnosis, findings, Slack reference, timeline and a float (confidence)
    incident = _rich_incident()
    # When it is created and read back
    created = store.create(incident)
    # Then the create succeeded and every field reads back equal; an unknown id reads as None
    assert created is True
    assert store.get(incident.incident_id) == incident
    assert store.get("j-LONG.s-none") is None


def test_creating_an_existing_incident_is_refused_and_keeps_the_first(store: IncidentRepository) -> None:
    # Given a stored incident
    first = _incident(1)
    assert store.create(first)
    # When the same id is created again (a redelivered event) with other contents
    again = store.create(first.model_copy(update={"state": "CANCELLED"}))
    # Then it is refused and the first one stays
    assert again is False
    assert store.get(first.incident_id) == first


def test_every_string_is_stored_redacted(store: IncidentRepository) -> None:
    # Given an incident whose reason and timeline carry secrets
    incident = _incident(
        1,
        emr_reason="jdbc:mysql://etl:s3cretpw@db.internal/sales failed",
        timeline=[TimelineEntry(at=T0, what="aws key AKIAIOSFODNN7EXAMPLE used")],
    )
    # When it is created and read back
    store.create(incident)
    stored = store.get(incident.incident_id)
    # Then the secrets are not in what is stored, the rest is
    assert stored is not None
    assert "s3cretpw" not in stored.model_dump_json() and "AKIAIOSFODNN7EXAMPLE" not in stored.model_dump_json()
    assert stored.emr_reason is not None and "db.internal/sales failed" in stored.emr_reason


def test_an_update_applies_the_mutation_once_and_bumps_the_version(store: IncidentRepository) -> None:
    # Given a stored incident
    incident = _incident(1)
    store.create(incident)
    seen: list[int] = []
    before = datetime.now(UTC)

    def add_child(current: Incident) -> Incident:
        seen.append(current.version)
        current.children = [*current.children, "step s-2 cancelled"]
        return current

    # When a mutation is applied
    updated = store.update(incident.incident_id, add_child)
    # Then it ran once on the stored version, and the store returns and keeps the next version, stamped now
    assert seen == [0]
    assert updated is not None and updated.children == ["step s-2 cancelled"] and updated.version == 1
    assert updated.updated_at >= before
    assert store.get(incident.incident_id) == updated


def test_an_update_that_changes_nothing_writes_nothing(store: IncidentRepository) -> None:
    # Given a stored incident
    incident = _incident(1)
    store.create(incident)
    # When a mutation says "no change", and another is applied to an incident that does not exist
    unchanged = store.update(incident.incident_id, lambda current: None)
    missing = store.update("j-LONG.s-none", lambda current: pytest.fail("mutation of a missing incident"))
    # Then the stored incident is returned as it was (same version), and the missing one is None
    assert unchanged == incident and unchanged.version == 0
    assert store.get(incident.incident_id) == incident
    assert missing is None


def test_a_write_based_on_a_stale_read_is_refused_and_the_mutation_applied_to_the_fresh_incident(
    store: IncidentRepository,
) -> None:
    # Given a stored incident, and another writer that changes it while our mutation runs (the first time)
    incident = _incident(1)
    store.create(incident)
    seen: list[int] = []

    def concurrent_writer(current: Incident) -> Incident:
        current.timeline = [*current.timeline, TimelineEntry(at=T0, what="a concurrent writer")]
        return current

    def add_child(current: Incident) -> Incident:
        seen.append(current.version)
        if len(seen) == 1:
            assert store.update(incident.incident_id, concurrent_writer) is not None
        current.children = [*current.children, "step s-2 cancelled"]
        return current

    # When our mutation is applied
    updated = store.update(incident.incident_id, add_child)
    # Then the write based on version 0 was refused, the mutation ran again on version 1, and both changes
    # are kept (nothing lost), at version 2
    assert seen == [0, 1]
    assert updated is not None and updated.version == 2
    assert updated.children == ["step s-2 cancelled"]
    assert [entry.what for entry in updated.timeline] == ["a concurrent writer"]
    assert store.get(incident.incident_id) == updated


def test_an_incident_that_keeps_changing_fails_transiently_and_loses_no_other_write(store: IncidentRepository) -> None:
    # Given a stored incident that another writer changes every time our mutation runs
    incident = _incident(1)
    store.create(incident)
    attempts: list[int] = []

    def concurrent_writer(current: Incident) -> Incident:
        current.timeline = [*current.timeline, TimelineEntry(at=T0, what=f"writer {len(attempts)}")]
        return current

    def contended(current: Incident) -> Incident:
        attempts.append(current.version)
        store.update(incident.incident_id, concurrent_writer)
        current.children = ["never stored"]
        return current

    # When our mutation is applied
    with pytest.raises(TransientError, match="version conflicts"):
        store.update(incident.incident_id, contended)
    # Then it was tried the repository's number of times, each on the newest version, and only the other
    # writer's changes are stored
    attempts_allowed = repository_module._UPDATE_ATTEMPTS
    assert attempts == list(range(attempts_allowed))
    stored = store.get(incident.incident_id)
    assert stored is not None and stored.version == attempts_allowed and stored.children == []
    assert len(stored.timeline) == attempts_allowed


def test_an_incident_over_the_item_budget_is_stored_trimmed_least_useful_parts_first(
    store: IncidentRepository,
) -> None:
    # Given an incident of ~800 KB (forty findings with fifty 400-character evidence lines each)
    incident = _incident(1, findings=[_finding(n, evidence=50, line_chars=400) for n in range(40)])
    assert len(incident.model_dump_json()) > 2 * ITEM_BUDGET_BYTES
    # When it is created and read back
    assert store.create(incident)
    stored = store.get(incident.incident_id)
    # Then it is the trimmed form (``storable``): within the budget, the first finding's evidence whole, the
    # others' cut to three lines
    assert stored is not None
    assert stored == Incident.model_validate(storable(incident))
    assert len(stored.model_dump_json().encode()) <= ITEM_BUDGET_BYTES
    assert [len(f.evidence) for f in stored.findings] == [50] + [3] * 39


def test_an_update_that_grows_an_incident_over_the_item_budget_stores_it_trimmed(store: IncidentRepository) -> None:
    # Given a small stored incident
    incident = _incident(1)
    store.create(incident)

    def add_findings(current: Incident) -> Incident:
        current.findings = [_finding(n, evidence=50, line_chars=400) for n in range(40)]
        return current

    # When an update makes it larger than the budget
    updated = store.update(incident.incident_id, add_findings)
    # Then the update is stored trimmed, and what it returns is what is stored
    assert updated is not None and updated.version == 1
    assert [len(f.evidence) for f in updated.findings] == [50] + [3] * 39
    assert store.get(incident.incident_id) == updated


def _untrimmable(number: int = 1) -> Incident:
    """~1.3 MB that no trim touches: the context lines before six hundred findings."""
    return _incident(number, findings=[_finding(n, evidence=1, context=5) for n in range(600)])


def test_an_incident_no_trim_brings_under_the_400_kb_item_limit_is_refused_and_not_stored(
    store: IncidentRepository,
) -> None:
    # Given an incident the trims cannot bring under DynamoDB's item limit, and a small stored one
    small = _incident(2)
    store.create(small)

    def grow(current: Incident) -> Incident:
        return _untrimmable(2).model_copy(update={"version": current.version})

    # When the large one is created, and the small one updated to the same size
    with pytest.raises(IncidentTooLargeError, match="400 KB item limit"):
        store.create(_untrimmable())
    with pytest.raises(IncidentTooLargeError, match=small.incident_id):
        store.update(small.incident_id, grow)
    # Then both writes are refused as DynamoDB refuses them: nothing is stored, the small one is unchanged
    assert store.get(_untrimmable().incident_id) is None
    assert store.get(small.incident_id) == small


def test_an_incident_over_the_item_limit_is_refused_with_our_own_error_naming_it(store: IncidentRepository) -> None:
    # Given an incident the trims cannot bring under DynamoDB's item limit
    incident = _untrimmable()
    # When it is created
    with pytest.raises(Exception) as refused:  # noqa: PT011 - the type is what is asserted below
        store.create(incident)
    # Then the error is ours (STYLE.md: adapters translate ClientError) and names the incident
    assert not isinstance(refused.value, ClientError)
    assert incident.incident_id in str(refused.value)


def test_open_incidents_of_a_long_lived_cluster_come_from_every_page_oldest_first(store: IncidentRepository) -> None:
    # Given a cluster with seven open incidents (four pages of two), one resolved, and another cluster's one
    for number in range(7):
        assert store.create(_incident(number))
    store.create(_incident(7, status="RESOLVED"))
    store.create(_incident(0, cluster_id="j-OTHER"))
    # When its open incidents are read
    found = store.open_incidents(cluster_id="j-LONG")
    # Then all seven open ones are there, oldest first, the newest included, and none of the other cluster's
    assert [i.incident_id for i in found] == [f"j-LONG.s-{n:03d}" for n in range(7)]


def test_open_incidents_of_a_serverless_application_are_found_by_the_application(store: IncidentRepository) -> None:
    # Given three open job-run incidents of an application (two pages), and a cluster incident naming the
    # same application id
    for number in range(3):
        store.create(_incident(number, cluster_id=None, kind="job_run", application_id="00f1982r1uukb925"))
    store.create(_incident(9, application_id="00f1982r1uukb925"))
    # When the application's open incidents are read
    found = store.open_incidents(application_id="00f1982r1uukb925")
    # Then they are the application's own, oldest first (a cluster's incident is found by its cluster only)
    assert [i.incident_id for i in found] == ["app.s-000", "app.s-001", "app.s-002"]


def test_infrastructure_events_keep_the_newest_in_the_window_across_pages(store: IncidentRepository) -> None:
    # Given more capacity events in the window than are read for one incident, and one after it
    extra = 5
    for minute in range(MAX_INFRA_EVENTS + extra):
        store.record_infra(
            InfraEvent(cluster_id="j-LONG", at=T0 + timedelta(minutes=minute), what=f"event {minute}"), 0
        )
    store.record_infra(InfraEvent(cluster_id="j-LONG", at=T0 + timedelta(days=1), what="later"), 0)
    # When the events of the window are read
    found = store.infra_events("j-LONG", since=T0, until=T0 + timedelta(hours=3))
    # Then the newest MAX_INFRA_EVENTS of the window are there, oldest first (the closest to the failure kept)
    assert [e.what for e in found] == [f"event {m}" for m in range(extra, MAX_INFRA_EVENTS + extra)]


def test_an_infrastructure_event_is_kept_once_cut_and_keyed_to_the_second(store: IncidentRepository) -> None:
    # Given an event delivered twice (the second time within the same second), one with a 10,000-character
    # text, and another cluster's event
    event = InfraEvent(cluster_id="j-LONG", at=T0, what="spot interruption", event_id="e-1")
    store.record_infra(event, 0)
    store.record_infra(event.model_copy(update={"at": T0 + timedelta(milliseconds=500)}), 0)
    store.record_infra(InfraEvent(cluster_id="j-LONG", at=T0 + timedelta(minutes=1), what="y" * 10_000), 0)
    store.record_infra(InfraEvent(cluster_id="j-OTHER", at=T0, what="not this cluster"), 0)
    # When the cluster's events are read
    found = store.infra_events("j-LONG", since=T0, until=T0 + timedelta(minutes=1))
    # Then the redelivery overwrote itself, the long text is cut to MAX_INFRA_TEXT, the other cluster's is not there
    assert [(e.what[:17], e.event_id) for e in found] == [("spot interruption", "e-1"), ("y" * 17, None)]
    assert len(found[1].what) == MAX_INFRA_TEXT


def test_signature_times_come_from_the_index_up_to_the_incident_excluding_itself(store: IncidentRepository) -> None:
    # Given incidents with signature A (3 days before, 1 day before, the incident itself, 1 day after),
    # one with signature B, and one not yet diagnosed (pages of two: the history spans several)
    for number, days in enumerate((-3, -1, 0, 1)):
        assert store.create(_diagnosed(f"j-X.s-A{number}", T0 + timedelta(days=days), "aaaa"))
    store.create(_diagnosed("j-X.s-B", T0 - timedelta(days=2), "bbbb"))
    store.create(_diagnosed("j-X.s-C", T0 - timedelta(days=2), None))
    # When the history of signature A up to the incident at T0 is read
    times = store.signature_times("aaaa", since=T0 - timedelta(days=30), until=T0, exclude="j-X.s-A2")
    first = store.signature_first_seen("aaaa", until=T0, exclude="j-X.s-A2")
    # Then it has the two earlier A incidents, newest first, and nothing else; the first is 3 days old
    assert times == [T0 - timedelta(days=1), T0 - timedelta(days=3)]
    assert first == T0 - timedelta(days=3)
    assert store.signature_first_seen("aaaa", until=T0 - timedelta(days=3), exclude="j-X.s-A0") is None


def test_signature_times_are_kept_to_the_second(store: IncidentRepository) -> None:
    # Given an incident of a signature that failed at a fraction of a second
    store.create(_diagnosed("j-X.s-F", T0 + timedelta(microseconds=750_000), "ffff"))
    # When the signature's history is read
    times = store.signature_times("ffff", since=T0 - timedelta(days=1), until=T0, exclude="other")
    first = store.signature_first_seen("ffff", until=T0, exclude="other")
    # Then its failure time is the index key's second, found by a window ending in that second
    assert times == [T0]
    assert first == T0


def test_a_busy_signature_keeps_its_newest_incidents_when_capped(
    store: IncidentRepository, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a signature with more incidents than the read cap (lowered to 3), the newest two this week
    monkeypatch.setattr(repository_module, "MAX_SIGNATURE_ITEMS", 3)
    for number, days in enumerate((-25, -20, -15, -2, -1)):
        store.create(_diagnosed(f"j-X.s-H{number}", T0 + timedelta(days=days), "hot"))
    # When its recent history is read
    times = store.signature_times("hot", since=T0 - timedelta(days=30), until=T0, exclude="j-X.s-self")
    # Then the cap drops the oldest, never this week's
    assert times == [T0 - timedelta(days=1), T0 - timedelta(days=2), T0 - timedelta(days=15)]


def test_a_signature_found_by_a_later_diagnosis_is_indexed_on_update(store: IncidentRepository) -> None:
    # Given an incident opened before its logs were read (no signature yet)
    store.create(_diagnosed("j-X.s-L", T0 - timedelta(days=1), None))
    # When its logs are diagnosed
    store.update(
        "j-X.s-L", lambda i: _diagnosed("j-X.s-L", i.failed_at, "cccc").model_copy(update={"version": i.version})
    )
    # Then it is found under its signature
    since = T0 - timedelta(days=30)
    assert store.signature_times("cccc", since=since, until=T0, exclude="other") == [T0 - timedelta(days=1)]


def test_the_latest_run_of_each_outcome_is_kept_whatever_the_delivery_order(store: IncidentRepository) -> None:
    # Given the job's success of night 19 stored
    night19 = JobRun(job_key="step:etl-#/load", outcome="SUCCEEDED", at=T0 - timedelta(days=1), cluster_id="j-19")
    assert store.record_run(night19, expires_at=2_000_000_000)
    # When night 18's success arrives late, and night 19's is delivered again
    night18 = night19.model_copy(update={"at": T0 - timedelta(days=2), "cluster_id": "j-18"})
    # Then neither replaces it (conditional writes), and a failure is kept apart
    assert not store.record_run(night18, expires_at=2_000_000_000)
    assert not store.record_run(night19, expires_at=2_000_000_000)
    failure = JobRun(job_key="step:etl-#/load", outcome="FAILED", at=T0, incident_id="j-20.s-1")
    assert store.record_run(failure, expires_at=2_000_000_000)
    assert store.last_run("step:etl-#/load", "SUCCEEDED") == night19
    assert store.last_run("step:etl-#/load", "FAILED") == failure
    assert store.last_run("step:other/load", "SUCCEEDED") is None


def test_a_run_later_within_the_same_second_does_not_replace_the_last_run(store: IncidentRepository) -> None:
    # Given a job's success at T0 stored
    run = JobRun(job_key="step:etl-#/load", outcome="SUCCEEDED", at=T0, cluster_id="j-19", step_id="s-1")
    assert store.record_run(run, expires_at=2_000_000_000)
    # When another success arrives half a second later, then one a second later
    same_second = store.record_run(
        run.model_copy(update={"at": T0 + timedelta(milliseconds=500), "step_id": "s-2"}), 2_000_000_000
    )
    next_second = store.record_run(
        run.model_copy(update={"at": T0 + timedelta(seconds=1), "step_id": "s-3"}), 2_000_000_000
    )
    # Then runs are ordered to the second (the stored key): only the one a second later replaces it
    assert (same_second, next_second) == (False, True)
    last = store.last_run("step:etl-#/load", "SUCCEEDED")
    assert last is not None and last.step_id == "s-3"


# ---------------------------------------------------------------------------------------------------
# The Slack post pacer (whole seconds: DynamoDB keeps slots to the millisecond, rounded up)
# ---------------------------------------------------------------------------------------------------
NOW = 1_763_600_000.0


def test_a_channel_posts_one_interval_apart_and_channels_are_paced_apart(pacer: PostPacer) -> None:
    # Given an idle channel, When posts are reserved in it and in another channel, and later on
    first, second, third = (pacer.reserve("#a", NOW) for _ in range(3))
    other = pacer.reserve("#b", NOW)
    later = pacer.reserve("#a", NOW + 10)
    # Then the first goes at once and the next wait one interval more each; the other channel and a post
    # after the backlog go at once
    assert (first, second, third) == (0.0, 1.0, 2.0)
    assert other == 0.0
    assert later == 0.0


def test_a_slot_beyond_the_longest_wait_is_not_taken(pacer: PostPacer) -> None:
    # Given a channel with five posts reserved
    for _ in range(5):
        pacer.reserve("#busy", NOW)
    # When a post may wait at most 3 s, then one may wait 5.1 s, and one in an idle channel none
    refused = pacer.reserve("#busy", NOW, max_wait=3.0)
    taken = pacer.reserve("#busy", NOW, max_wait=5.1)
    idle = pacer.reserve("#quiet", NOW, max_wait=0.0)
    # Then the first takes nothing (the next slot is still 5 s away), the second takes it, the idle goes at once
    assert refused is None
    assert taken == 5.0
    assert idle == 0.0


def test_the_last_alert_is_remembered_without_disturbing_the_pace(pacer: PostPacer) -> None:
    # Given a channel that has had no alert
    assert pacer.last_root("#roots") is None
    # When a post is reserved and its alert recorded, then the alert of a second incident
    pacer.reserve("#roots", NOW)
    pacer.record_root("#roots", "j-1.s-1", NOW)
    first = pacer.last_root("#roots")
    pacer.record_root("#roots", "j-1.s-2", NOW + 0.5)
    # Then the channel remembers the newest alert and when it was posted, and its pace is unchanged
    assert first is not None and (first.incident_id, first.at) == ("j-1.s-1", NOW)
    last = pacer.last_root("#roots")
    assert last is not None and (last.incident_id, last.at) == ("j-1.s-2", NOW + 0.5)
    assert pacer.last_root("#other") is None
    assert pacer.reserve("#roots", NOW) == 1.0


def test_a_channel_routed_by_name_is_paced_as_its_id_once_a_post_has_told_which_it_is(pacer: PostPacer) -> None:
    # Given a root message posted to #alerts, which Slack answered as channel C0ALERTS
    assert pacer.reserve("#alerts", NOW) == 0.0
    pacer.record_root("#alerts", "j-1.s-1", NOW, "C0ALERTS")
    # When its thread reply is paced by the id, and the next alert routed by the name
    reply = pacer.reserve("C0ALERTS", NOW)
    by_name = pacer.reserve("#alerts", NOW)
    # Then they share one pace (Slack's limit is per channel, whatever it is called), and the channel's
    # last alert is found by either
    assert (reply, by_name) == (1.0, 2.0)
    for name in ("#alerts", "C0ALERTS"):
        last = pacer.last_root(name)
        assert last is not None and last.incident_id == "j-1.s-1"
    # And another name is not taken for it
    assert pacer.reserve("#other", NOW) == 0.0


# -- logs kept under an incident (RecordedLog) --------------------------------------------------------


def _kept(number: int, *, evidence: int = 3, line_chars: int = 80) -> RecordedLog:
    source = f"s3://acme-emr-logs/j-LONG/containers/application_1/container_{number:06d}/stderr.gz"
    finding = _finding(number, evidence=evidence, line_chars=line_chars).model_copy(update={"source": source})
    return RecordedLog(
        read=LogRead(source=source, etag=f"etag-{number}", lines=40, bytes_read=4000),
        at=T0 + timedelta(seconds=number),
        findings=[finding],
        exit_codes=[ExitCode(code=137, meaning="SIGKILL", source=source, line_no=7)],
        application_ids=["application_1"],
    )


def test_a_log_is_kept_under_its_incident_once_and_every_kept_log_is_read_back(store: IncidentRepository) -> None:
    # Given an incident and five logs kept under it (three pages of two), one of them offered twice
    incident = _incident(1)
    store.create(incident)
    expires = incident.expires_at
    assert [store.record_log(incident.incident_id, _kept(n), expires) for n in range(5)] == [True] * 5
    # When the same log (source and etag) is offered again, and another incident keeps a log of its own
    again = store.record_log(incident.incident_id, _kept(3), expires)
    store.create(_incident(2))
    store.record_log(_incident(2).incident_id, _kept(9), expires)
    # Then the second offer is refused, and the incident reads back exactly its five, as they were kept
    assert again is False
    kept = store.recorded_logs(incident.incident_id)
    assert sorted(log.read.source for log in kept) == sorted(_kept(n).read.source for n in range(5))
    assert {log.read.source: log for log in kept}[_kept(2).read.source] == _kept(2)
    # And the incident itself is untouched (kept logs are items of their own: no version conflict with it)
    assert (
        store.get(incident.incident_id) == store.get(incident.incident_id)
        and store.get(incident.incident_id).version == incident.version
    )  # type: ignore[union-attr]


def test_a_kept_log_with_huge_evidence_is_cut_to_fit_not_refused(store: IncidentRepository) -> None:
    # Given a log whose finding carries 200 lines of 2,000 characters (400 KB: over DynamoDB's item limit)
    incident = _incident(1)
    store.create(incident)
    # When it is kept
    assert store.record_log(incident.incident_id, _kept(1, evidence=200, line_chars=2000), incident.expires_at)
    # Then it is stored with its evidence cut, its finding and read intact
    (kept,) = store.recorded_logs(incident.incident_id)
    assert kept.findings[0].rule_id == "rule-1" and len(kept.findings[0].evidence) < 200
    assert kept.read == _kept(1).read


def _another_invocation(store: IncidentRepository) -> IncidentRepository:
    """The same table seen from another Lambda invocation (its own adapter, with nothing kept)."""
    if isinstance(store, DynamoIncidentRepository):
        return DynamoIncidentRepository(store.table_name, page_items=store.page_items)
    return store  # (the in-memory store keeps nothing between calls)


def test_an_update_after_another_invocations_write_starts_again_from_the_table(store: IncidentRepository) -> None:
    # Given an incident this invocation read (and may keep as the base of its next update)
    incident = _incident(1)
    store.create(incident)
    assert store.get(incident.incident_id) is not None
    # When another invocation changes it, and then this one updates it
    other = _another_invocation(store)
    other.update(incident.incident_id, lambda inc: inc.model_copy(update={"children": ["from the other"]}))
    stored = store.update(incident.incident_id, lambda inc: inc.model_copy(update={"storm_children": ["mine"]}))
    # Then both changes are kept, at the next versions
    assert stored is not None and stored.children == ["from the other"] and stored.storm_children == ["mine"]
    assert stored.version == 2 and store.get(incident.incident_id) == stored


def test_a_decision_to_change_nothing_is_taken_on_what_the_table_says_now(store: IncidentRepository) -> None:
    # Given an incident this invocation wrote (with nothing folded into it yet)
    incident = _incident(1)
    store.create(incident)
    store.update(incident.incident_id, lambda inc: inc.model_copy(update={"timeline": []}))
    # And another invocation folds a child into it meanwhile
    _another_invocation(store).update(incident.incident_id, lambda inc: inc.model_copy(update={"children": ["x"]}))

    # When this invocation changes it only if something was folded into it
    def only_with_children(inc: Incident) -> Incident | None:
        return inc.model_copy(update={"severity": "critical"}) if inc.children else None

    stored = store.update(incident.incident_id, only_with_children)
    # Then it saw the fold (its kept copy said "nothing folded": that is not taken as the answer)
    assert stored is not None and stored.severity == "critical" and stored.children == ["x"]


def test_a_new_invocation_forgets_what_the_last_one_read(store: IncidentRepository) -> None:
    incident = _incident(1)
    store.create(incident)
    store.get(incident.incident_id)
    _another_invocation(store).update(incident.incident_id, lambda inc: inc.model_copy(update={"children": ["x"]}))
    store.begin_invocation()
    calls = _counting(store)
    stored = store.update(incident.incident_id, lambda inc: inc.model_copy(update={"storm_children": ["y"]}))
    assert stored is not None and stored.children == ["x"] and stored.storm_children == ["y"]
    # (read first, then one write that succeeds: no refused conditional write against a stale copy)
    assert calls in ([], ["GetItem", "UpdateItem"])


def _counting(store: IncidentRepository) -> list[str]:
    """The DynamoDB operations the store makes from now on (none recorded for the in-memory store)."""
    calls: list[str] = []
    if isinstance(store, DynamoIncidentRepository):
        client = store.client
        original = client._make_api_call  # type: ignore[attr-defined]

        def record(operation: str, params: dict[str, Any]) -> Any:
            calls.append(operation)
            return original(operation, params)

        client._make_api_call = record  # type: ignore[attr-defined]
    return calls


def test_resolved_incidents_of_a_cluster_are_those_resolved_and_opened_in_the_window(store: IncidentRepository) -> None:
    # Given a cluster's incidents: two resolved (one opened long ago), one open, and another cluster's
    opened = [T0 + timedelta(hours=h) for h in (0, 5, 6, 7)]
    store.create(_incident(1, status="RESOLVED", opened_at=opened[0]))
    store.create(_incident(2, status="RESOLVED", opened_at=opened[2]))
    store.create(_incident(3, opened_at=opened[3]))
    store.create(_incident(4, cluster_id="j-OTHER", status="RESOLVED", opened_at=opened[2]))
    # Then those opened since 5 h are the cluster's one resolved incident of the window
    found = store.resolved_incidents("j-LONG", opened_since=opened[1])
    assert [i.incident_id for i in found] == [_incident(2).incident_id]

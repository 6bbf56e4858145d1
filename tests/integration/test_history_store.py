"""Memory across runs in DynamoDB (moto, table from template.yaml): signature index and last runs."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from tests.integration.conftest import ROOT

from emr_triage.aws.incident_store import DynamoIncidentRepository
from emr_triage.local.replay import LocalStack
from emr_triage.models.analysis import Diagnosis
from emr_triage.models.incident import Incident, JobRun

T0 = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)


@pytest.fixture
def repo() -> Iterator[DynamoIncidentRepository]:
    with LocalStack(ROOT) as stack:
        yield DynamoIncidentRepository(stack.table_name)


def _incident(incident_id: str, failed_at: datetime, fingerprint: str | None) -> Incident:
    diagnosis = None
    if fingerprint:
        diagnosis = Diagnosis(
            category="oom_heap", title="t", severity="high", summary="s", fingerprint=fingerprint, from_logs=True
        )
    return Incident(
        incident_id=incident_id,
        kind="step",
        state="FAILED",
        severity="high",
        region="us-east-1",
        cluster_id="j-X",
        failed_at=failed_at,
        opened_at=failed_at,
        updated_at=failed_at,
        expires_at=int((failed_at + timedelta(days=90)).timestamp()),
        diagnosis=diagnosis,
    )


def test_signature_times_come_from_the_index_up_to_the_incident_excluding_itself(
    repo: DynamoIncidentRepository,
) -> None:
    # Given incidents with signature A (3 days before, 1 day before, the incident itself, 1 day after),
    # one with signature B, and one not yet diagnosed
    for number, days in enumerate((-3, -1, 0, 1)):
        assert repo.create(_incident(f"j-X.s-A{number}", T0 + timedelta(days=days), "aaaa"))
    repo.create(_incident("j-X.s-B", T0 - timedelta(days=2), "bbbb"))
    repo.create(_incident("j-X.s-C", T0 - timedelta(days=2), None))
    # When the history of signature A up to the incident at T0 is read
    times = repo.signature_times("aaaa", since=T0 - timedelta(days=30), until=T0, exclude="j-X.s-A2")
    first = repo.signature_first_seen("aaaa", until=T0, exclude="j-X.s-A2")
    # Then it has the two earlier A incidents, newest first, and nothing else; the first is 3 days old
    assert times == [T0 - timedelta(days=1), T0 - timedelta(days=3)]
    assert first == T0 - timedelta(days=3)
    assert repo.signature_first_seen("aaaa", until=T0 - timedelta(days=3), exclude="j-X.s-A0") is None


def test_a_busy_signature_keeps_its_newest_incidents_when_capped(
    repo: DynamoIncidentRepository, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a signature with more incidents than the read cap (lowered to 3), the newest two this week
    from emr_triage.incidents import repository as repository_module

    monkeypatch.setattr(repository_module, "MAX_SIGNATURE_ITEMS", 3)
    for number, days in enumerate((-25, -20, -15, -2, -1)):
        repo.create(_incident(f"j-X.s-H{number}", T0 + timedelta(days=days), "hot"))
    # When its recent history is read
    times = repo.signature_times("hot", since=T0 - timedelta(days=30), until=T0, exclude="j-X.s-self")
    # Then the cap drops the oldest, never this week's
    assert times == [T0 - timedelta(days=1), T0 - timedelta(days=2), T0 - timedelta(days=15)]


def test_a_signature_found_by_a_later_diagnosis_is_indexed_on_update(repo: DynamoIncidentRepository) -> None:
    # Given an incident opened before its logs were read (no signature yet)
    repo.create(_incident("j-X.s-L", T0 - timedelta(days=1), None))
    # When its logs are diagnosed
    repo.update(
        "j-X.s-L", lambda i: _incident("j-X.s-L", i.failed_at, "cccc").model_copy(update={"version": i.version})
    )
    # Then it is found under its signature
    since = T0 - timedelta(days=30)
    assert repo.signature_times("cccc", since=since, until=T0, exclude="other") == [T0 - timedelta(days=1)]


def test_the_latest_run_of_each_outcome_is_kept_whatever_the_delivery_order(repo: DynamoIncidentRepository) -> None:
    # Given the job's success of night 19 stored
    night19 = JobRun(job_key="step:etl-#/load", outcome="SUCCEEDED", at=T0 - timedelta(days=1), cluster_id="j-19")
    assert repo.record_run(night19, expires_at=2_000_000_000)
    # When night 18's success arrives late, and night 19's is delivered again
    night18 = night19.model_copy(update={"at": T0 - timedelta(days=2), "cluster_id": "j-18"})
    # Then neither replaces it (conditional writes), and a failure is kept apart
    assert not repo.record_run(night18, expires_at=2_000_000_000)
    assert not repo.record_run(night19, expires_at=2_000_000_000)
    failure = JobRun(job_key="step:etl-#/load", outcome="FAILED", at=T0, incident_id="j-20.s-1")
    assert repo.record_run(failure, expires_at=2_000_000_000)
    assert repo.last_run("step:etl-#/load", "SUCCEEDED") == night19
    assert repo.last_run("step:etl-#/load", "FAILED") == failure
    assert repo.last_run("step:other/load", "SUCCEEDED") is None

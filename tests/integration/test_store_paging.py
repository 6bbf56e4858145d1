"""Queries that can exceed one page read every page, in the in-memory store and in DynamoDB (moto, the table
from template.yaml, pages of two items so that paging happens): a long-lived cluster's newest open incidents,
the ones log arrivals and folding look for, are on the last page."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from tests.fakes.memory import MemoryRepository
from tests.integration.conftest import ROOT

from emr_triage.aws.incident_store import MAX_INFRA_EVENTS, DynamoIncidentRepository
from emr_triage.local.replay import LocalStack
from emr_triage.models.incident import Incident, InfraEvent

T0 = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)


@pytest.fixture(params=["memory", "dynamodb"])
def store(request: pytest.FixtureRequest) -> Iterator[Any]:
    if request.param == "memory":
        yield MemoryRepository()
        return
    with LocalStack(ROOT) as stack:
        yield DynamoIncidentRepository(stack.table_name, page_items=2)


def _incident(number: int, cluster_id: str = "j-LONG") -> Incident:
    at = T0 + timedelta(minutes=number)
    return Incident(
        incident_id=f"{cluster_id}.s-{number:03d}",
        kind="step",
        state="FAILED",
        severity="high",
        region="us-east-1",
        cluster_id=cluster_id,
        failed_at=at,
        opened_at=at,
        updated_at=at,
        expires_at=int((at + timedelta(days=90)).timestamp()),
    )


def test_open_incidents_of_a_long_lived_cluster_come_from_every_page_oldest_first(store: Any) -> None:
    # Given a cluster with seven open incidents (four pages of two) and another cluster's one
    for number in range(7):
        assert store.create(_incident(number))
    store.create(_incident(0, cluster_id="j-OTHER"))
    # When its open incidents are read
    found = store.open_incidents(cluster_id="j-LONG")
    # Then all seven are there, oldest first, the newest included, and none of the other cluster's
    assert [i.incident_id for i in found] == [f"j-LONG.s-{n:03d}" for n in range(7)]


def test_infrastructure_events_keep_the_newest_in_the_window_across_pages(store: Any) -> None:
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

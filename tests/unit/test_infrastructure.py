"""Capacity and instance events: described in words, kept per cluster, attached to the failures they explain."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from tests.fakes.memory import make_dependencies

from emr_triage.incidents.service import describe_infrastructure, handle_emr_event, step_incident_id
from emr_triage.models.emr import ClusterInfo, StepInfo
from emr_triage.models.events import EmrInfrastructureEvent, parse_event

EVENTS = Path(__file__).resolve().parents[2] / "events"
CLUSTER, STEP = "j-123456789ABCD", "s-ZYXWVUTSRQPON"
LOST = (
    "26/11/18 20:50:02 ERROR YarnScheduler: Lost executor 3 on ip-10-0-1-9.ec2.internal: Container marked as "
    "failed: container_1_0001_01_000004 on host: ip-10-0-1-9.ec2.internal. Exit status: -100. Diagnostics: "
    "Container released on a *lost* node.\n"
    "26/11/18 20:53:01 ERROR ApplicationMaster: User class threw exception: org.apache.spark.SparkException: "
    "Job aborted due to stage failure: Task 2 in stage 4.0 failed 4 times\n"
)


def _event(name: str, **detail: Any) -> Any:
    raw = json.loads((EVENTS / name).read_text())
    raw["detail"].update(detail)
    return parse_event(raw)


@pytest.mark.parametrize(
    ("name", "detail", "expected"),
    [
        ("instance-group-suspended.json", {}, "instance group ig-2SPOTTASK0001 (TASK, spot) SUSPENDED (ERROR)"),
        ("instance-fleet-insufficient-capacity.json", {}, "no EC2 capacity for the instance fleet if-1CORE0000001"),
        (
            "instance-fleet-insufficient-capacity.json",
            {"eventCode": "Spot Provisioning timeout"},
            "Spot capacity not obtained in time",
        ),
        ("instance-group-suspended.json", {"severity": "INFO", "state": "RUNNING"}, None),
    ],
)
def test_capacity_and_instance_events_are_put_in_words_and_routine_ones_ignored(
    name: str, detail: dict[str, Any], expected: str | None
) -> None:
    event = _event(name, **detail)
    assert isinstance(event, EmrInfrastructureEvent)
    described = describe_infrastructure(event)
    assert (described is None) if expected is None else (described is not None and expected in described)


def _deps():  # type: ignore[no-untyped-def]
    deps, repo, emr, logs, notifier = make_dependencies()
    emr.clusters[CLUSTER] = ClusterInfo(cluster_id=CLUSTER, name="dev", log_uri="s3://logs-bucket/emr/")
    emr.steps[STEP] = StepInfo(step_id=STEP, name="CustomJAR", state="FAILED")
    logs.put(f"emr/{CLUSTER}/steps/{STEP}/stderr.gz", LOST)
    return deps, repo, notifier


def _root(notifier) -> str:  # type: ignore[no-untyped-def]
    return json.dumps((notifier.updates[-1][1] if notifier.updates else notifier.posts[-1][1]).blocks)


@pytest.mark.parametrize("infrastructure_first", [True, False])
def test_a_spot_reclaim_around_a_lost_executor_failure_says_infrastructure_whatever_the_order(
    infrastructure_first: bool,
) -> None:
    # Given a step that failed after losing executors on a lost node, and the cluster's spot task group
    # arrested 5 minutes before (delivered before or after the step's failure)
    deps, repo, notifier = _deps()
    events = [_event("instance-group-suspended.json"), _event("step-failed.json")]
    # When both are handled
    for event in events if infrastructure_first else reversed(events):
        handle_emr_event(event, deps)
    # Then the alert says it is likely infrastructure, naming the spot reclaim, and is posted once
    incident = repo.get(step_incident_id(CLUSTER, STEP))
    assert incident is not None and len(incident.infrastructure) == 1
    assert len(notifier.posts) == 1
    text = _root(notifier)
    assert "Likely infrastructure, not your code" in text and "Spot instances were reclaimed" in text


def test_infrastructure_long_before_the_step_or_on_another_cluster_is_not_blamed() -> None:
    # Given the spot reclaim a day before the failure, and one on another cluster at the same time
    deps, repo, _ = _deps()
    handle_emr_event(_event("instance-group-suspended.json"), deps)
    early = json.loads((EVENTS / "instance-group-suspended.json").read_text())
    early["time"] = "2026-11-17T20:48:02Z"
    early["id"] = "another-id"
    handle_emr_event(parse_event(early), deps)
    other = json.loads((EVENTS / "instance-group-suspended.json").read_text())
    other["detail"]["clusterId"] = "j-OTHERCLUSTER1"
    handle_emr_event(parse_event(other), deps)
    # When the step fails
    handle_emr_event(_event("step-failed.json"), deps)
    # Then only the same cluster's event of that day is attached
    incident = repo.get(step_incident_id(CLUSTER, STEP))
    assert incident is not None and len(incident.infrastructure) == 1

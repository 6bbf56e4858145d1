"""Slack posts are paced per channel (one per interval), and a storm folds new alerts into the channel's
latest alert instead of queueing them (in-memory adapters; the DynamoDB pacer is tested against moto in
tests/integration/test_pacing_dynamodb.py)."""

from __future__ import annotations

import itertools
import json
from dataclasses import replace
from pathlib import Path

import pytest
from tests.fakes.memory import MemoryPacer, make_dependencies

from emr_triage.aws.pacing import next_slot
from emr_triage.exceptions import TransientError
from emr_triage.incidents.service import handle_emr_event, step_incident_id
from emr_triage.models.emr import ClusterInfo, FailureDetails, StepInfo
from emr_triage.models.events import parse_event

EVENTS = Path(__file__).resolve().parents[2] / "events"
OOM = (
    "26/11/20 02:10:01 ERROR Executor: Exception in task 3.0 in stage 2.0 (TID 41)\n"
    "java.lang.OutOfMemoryError: Java heap space\n"
)


def _failures(count: int, *, interval: float = 1.0, storm_after: float = 10.0):  # type: ignore[no-untyped-def]
    """``count`` failed steps on ``count`` clusters, all alerting in the default channel."""
    deps, repo, emr, logs, notifier = make_dependencies(
        environment={"SLACK_POST_INTERVAL_SECONDS": str(interval), "SLACK_STORM_AFTER_SECONDS": str(storm_after)}
    )
    pacer = MemoryPacer(interval=interval)
    deps = replace(deps, pacer=pacer)
    events = []
    for n in range(count):
        cluster, step = f"j-CLUSTER{n:05d}", f"s-STEP{n:08d}"
        emr.clusters[cluster] = ClusterInfo(cluster_id=cluster, name=f"etl-{n}", log_uri="s3://logs-bucket/emr/")
        emr.steps[step] = StepInfo(
            step_id=step, name=f"load-{n}", state="FAILED", failure_details=FailureDetails(reason="Unknown Error.")
        )
        logs.put(f"emr/{cluster}/steps/{step}/stderr.gz", OOM)
        raw = json.loads((EVENTS / "step-failed.json").read_text())
        raw["id"] = f"event-{n}"
        raw["detail"].update(clusterId=cluster, stepId=step, name=f"load-{n}")
        events.append((parse_event(raw), step_incident_id(cluster, step)))
    return deps, repo, notifier, pacer, events


def test_the_next_slot_is_now_or_the_channels_next_free_slot() -> None:
    assert next_slot(100.0, None, 1.0) == (100.0, 101.0)
    assert next_slot(100.0, 99.5, 1.0) == (100.0, 101.0)
    assert next_slot(100.0, 103.0, 1.0) == (103.0, 104.0)


def test_posts_to_one_channel_are_spaced_by_the_interval() -> None:
    deps, _, notifier, pacer, events = _failures(4)
    posted_at: list[float] = []
    notifier.on_post = lambda: posted_at.append(deps.clock().timestamp())

    for event, _ in events:
        handle_emr_event(event, deps)

    assert len(notifier.posts) == 4
    gaps = [later - earlier for earlier, later in itertools.pairwise(posted_at)]
    assert gaps and min(gaps) >= 1.0
    # Thread replies and extract uploads take slots too (Slack's limit counts every message in the channel).
    assert len(pacer.taken) == 4 * 3
    slots = [slot for _, slot in pacer.taken]
    assert all(b - a >= 1.0 for a, b in itertools.pairwise(slots))


def test_a_backed_up_channel_folds_new_incidents_into_its_latest_alert() -> None:
    """Given a channel whose next slot is a minute away (other invocations took them) and an alert in it
    When two more failures arrive
    Then neither waits: both are listed on the latest alert, which is edited, and neither posts."""
    deps, repo, notifier, pacer, events = _failures(3)
    first_event, first_id = events[0]
    handle_emr_event(first_event, deps)
    pacer.next_at[pacer.ids.get("#alerts", "#alerts")] = deps.clock().timestamp() + 60

    outcomes = [handle_emr_event(event, deps) for event, _ in events[1:]]

    assert [o.slack for o in outcomes] == ["folded", "folded"]
    assert len(notifier.posts) == 1
    parent = repo.get(first_id)
    assert parent is not None and len(parent.storm_children) == 2
    for _, incident_id in events[1:]:
        child = repo.get(incident_id)
        assert child is not None and child.folded_into == first_id and child.slack is None
        assert any(incident_id in label for label in parent.storm_children)
    shown = json.dumps(notifier.updates[-1][1].blocks)
    assert "Alert storm: 2 more failures" in shown and events[2][1] in shown


def test_a_folded_incident_delivered_again_is_not_listed_twice() -> None:
    deps, repo, notifier, pacer, events = _failures(2)
    handle_emr_event(events[0][0], deps)
    pacer.next_at[pacer.ids.get("#alerts", "#alerts")] = deps.clock().timestamp() + 60

    handle_emr_event(events[1][0], deps)
    again = handle_emr_event(events[1][0], deps)

    assert again.action == "duplicate"
    parent = repo.get(events[0][1])
    assert parent is not None and len(parent.storm_children) == 1
    assert len(notifier.posts) == 1


def test_without_a_recent_alert_to_fold_into_the_post_waits_for_its_slot() -> None:
    deps, _, notifier, pacer, events = _failures(1)
    start = deps.clock().timestamp()
    pacer.next_at[pacer.ids.get("#alerts", "#alerts")] = start + 60
    posted_at: list[float] = []
    notifier.on_post = lambda: posted_at.append(deps.clock().timestamp())

    outcome = handle_emr_event(events[0][0], deps)

    assert outcome.slack == "posted"
    assert posted_at == [start + 60]


def test_a_backlog_beyond_the_invocations_time_fails_the_event_for_a_retry_and_keeps_the_incident() -> None:
    deps, repo, notifier, pacer, events = _failures(1)
    pacer.next_at[pacer.ids.get("#alerts", "#alerts")] = deps.clock().timestamp() + 3600
    deps = replace(deps, deadline=0.0)  # no time left in this invocation

    with pytest.raises(TransientError, match="backed up"):
        handle_emr_event(events[0][0], deps)

    incident = repo.get(events[0][1])
    assert incident is not None and incident.slack is None and incident.slack_claim_until is None
    assert notifier.posts == []


def test_a_full_storm_alert_makes_the_next_incident_post_its_own() -> None:
    deps, repo, notifier, pacer, events = _failures(2)
    handle_emr_event(events[0][0], deps)
    parent = repo.get(events[0][1])
    assert parent is not None
    repo.update(
        parent.incident_id, lambda inc: inc.model_copy(update={"storm_children": [f"x [{i}]" for i in range(50)]})
    )
    pacer.next_at[pacer.ids.get("#alerts", "#alerts")] = deps.clock().timestamp() + 30

    outcome = handle_emr_event(events[1][0], deps)

    assert outcome.slack == "posted" and len(notifier.posts) == 2
    child = repo.get(events[1][1])
    assert child is not None and child.folded_into is None


def test_a_pacer_that_is_denied_logs_it_and_posts_unpaced() -> None:
    deps, _, notifier, pacer, events = _failures(1)

    def denied(*_args: object, **_kwargs: object) -> float:
        raise PermissionError("AccessDeniedException: dynamodb:UpdateItem")

    pacer.reserve = denied  # type: ignore[method-assign]
    outcome = handle_emr_event(events[0][0], deps)

    assert outcome.slack == "posted" and len(notifier.posts) == 1

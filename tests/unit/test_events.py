"""Every saved event parses into our models; malformed and unknown ones fail with a clear reason."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from emr_triage.exceptions import InvalidEventError, UnknownEventTypeError
from emr_triage.local.interactions import is_interaction
from emr_triage.models.events import (
    EKS_EVENT_TYPES,
    INFRASTRUCTURE_EVENT_TYPES,
    Ec2SpotEvent,
    EksJobRunEvent,
    EmrClusterStateChange,
    EmrInfrastructureEvent,
    EmrServerlessJobRunStateChange,
    EmrStepStatusChange,
    S3ObjectCreated,
    ScheduledEvent,
    parse_emr_event,
    parse_event,
    parse_log_event,
)

EVENTS = Path(__file__).resolve().parents[2] / "events"
# (saved Slack interactions, for SlackInteractionsFunction, are not EventBridge events: test_interactive.py)
SAVED = sorted(p for p in EVENTS.rglob("*.json") if not is_interaction(json.loads(p.read_text())))
BROKEN = {"malformed-step-event.json", "unknown-event-type.json"}


def _load(path: Path) -> dict:  # type: ignore[type-arg]
    return json.loads(path.read_text())


@pytest.mark.parametrize("path", [p for p in SAVED if p.name not in BROKEN], ids=lambda p: p.name)
def test_every_saved_event_parses_into_its_model(path: Path) -> None:
    event = parse_event(_load(path))
    expected = {
        "EMR Step Status Change": EmrStepStatusChange,
        "EMR Cluster State Change": EmrClusterStateChange,
        "EMR Serverless Job Run State Change": EmrServerlessJobRunStateChange,
        "Object Created": S3ObjectCreated,
        "Scheduled Event": ScheduledEvent,
        "EC2 Spot Instance Interruption Warning": Ec2SpotEvent,
        "EC2 Instance Rebalance Recommendation": Ec2SpotEvent,
        **dict.fromkeys(INFRASTRUCTURE_EVENT_TYPES, EmrInfrastructureEvent),
        **dict.fromkeys(EKS_EVENT_TYPES, EksJobRunEvent),
    }[event.detail_type]
    assert isinstance(event, expected)
    assert event.account in ("123456789012", "210987654321")  # the scenarios' account, and their member account


def test_saved_events_cover_every_type_the_template_subscribes_to() -> None:
    kinds = {
        (parse_event(_load(p)).detail_type, _load(p)["detail"].get("state")) for p in SAVED if p.name not in BROKEN
    }
    for state in ("FAILED", "CANCELLED", "INTERRUPTED", "COMPLETED"):
        assert ("EMR Step Status Change", state) in kinds
    assert ("EMR Cluster State Change", "TERMINATED_WITH_ERRORS") in kinds
    for state in ("FAILED", "CANCELLED", "SUCCESS"):
        assert ("EMR Serverless Job Run State Change", state) in kinds
    for state in ("FAILED", "COMPLETED"):
        assert ("EMR Job Run State Change", state) in kinds
    assert ("EmrContainers Job Run State Change", "FAILED") in kinds
    assert ("Object Created", None) in kinds


def test_state_change_reason_is_parsed_from_its_json_string() -> None:
    event = parse_event(_load(EVENTS / "cluster-terminated-with-errors.json"))
    assert isinstance(event, EmrClusterStateChange)
    assert event.detail.state_change_reason.code == "BOOTSTRAP_FAILURE"
    assert "bootstrap action 1" in (event.detail.state_change_reason.message or "")


def test_empty_reason_on_starting_clusters_is_accepted() -> None:
    raw = _load(EVENTS / "cluster-terminated-by-user.json")
    raw["detail"]["stateChangeReason"] = '{"code":""}'
    event = parse_event(raw)
    assert isinstance(event, EmrClusterStateChange)
    assert (event.detail.state_change_reason.code, event.detail.state_change_reason.message) == ("", None)


def test_unknown_extra_fields_are_tolerated() -> None:
    raw = _load(EVENTS / "step-failed.json")
    raw["detail"]["newFieldFromAws"] = {"anything": [1, 2]}
    raw["brand-new-envelope-field"] = True
    event = parse_emr_event(raw)
    assert isinstance(event, EmrStepStatusChange) and event.detail.step_id == "s-ZYXWVUTSRQPON"


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda e: e["detail"].pop("clusterId"), "detail.clusterId: Field required"),
        (lambda e: e["detail"].update(clusterId="cluster-1"), "detail.clusterId: String should match pattern"),
        (lambda e: e["detail"].update(state=None), "detail.state: Input should be a valid string"),
        (lambda e: e.update(time="yesterday"), "time: Input should be a valid datetime"),
        (lambda e: e["detail"].update(stateChangeReason="{not json"), None),
    ],
)
def test_malformed_events_name_the_field_and_the_problem(mutate, message) -> None:  # type: ignore[no-untyped-def]
    raw = _load(EVENTS / "step-failed.json")
    mutate(raw)
    if message is None:  # stateChangeReason is not a step field: tolerated as an extra
        assert parse_event(raw)
        return
    with pytest.raises(InvalidEventError) as caught:
        parse_event(raw)
    assert message in str(caught.value)
    assert str(caught.value).startswith("malformed 'EMR Step Status Change' event:")


def test_a_cluster_reason_that_is_not_json_is_rejected_clearly() -> None:
    raw = _load(EVENTS / "cluster-terminated-with-errors.json")
    raw["detail"]["stateChangeReason"] = "{not json"
    with pytest.raises(InvalidEventError, match=r"stateChangeReason.*not valid JSON"):
        parse_event(raw)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ([1, 2], "event is not a JSON object (got list)"),
        ("text", "event is not a JSON object (got str)"),
        ({"detail": {}}, "not an EventBridge event: missing 'version', 'id', 'source'"),
    ],
)
def test_things_that_are_not_events(raw: object, message: str) -> None:
    with pytest.raises(InvalidEventError) as caught:
        parse_event(raw)
    assert str(caught.value).startswith(message)


def test_unknown_event_type_names_what_is_handled() -> None:
    with pytest.raises(UnknownEventTypeError) as caught:
        parse_event(_load(EVENTS / "unknown-event-type.json"))
    assert "'EMR Auto Scaling Policy State Change'" in str(caught.value)
    assert "'EMR Step Status Change' (aws.emr)" in str(caught.value)


def test_each_function_accepts_only_its_own_events() -> None:
    with pytest.raises(UnknownEventTypeError, match="check the EventBridge rule"):
        parse_emr_event(_load(EVENTS / "s3-step-log-created.json"))
    with pytest.raises(UnknownEventTypeError, match="check the EventBridge rule"):
        parse_log_event(_load(EVENTS / "step-failed.json"))
    assert parse_log_event(_load(EVENTS / "s3-step-log-created.json")).detail.object.key.endswith("stderr.gz")

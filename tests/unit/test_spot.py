"""EC2's Spot warnings: mapped to their EMR cluster by the instance's tags, kept with its infrastructure
events, and attached to the failures around them; other instances' warnings are ignored."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from tests.fakes.memory import make_dependencies

from emr_triage.exceptions import InvalidEventError
from emr_triage.incidents.emr_events import handle_emr_event
from emr_triage.models.emr import ClusterInfo, InstanceInfo, StepInfo
from emr_triage.models.events import Ec2SpotEvent, parse_emr_event, parse_event

CLUSTER, STEP, INSTANCE = "j-2CLICKSESSN04", "s-2SESSIONIZE00", "i-0a7c3e91b25d48f06"
AT = datetime(2026, 11, 21, 1, 30, 56, tzinfo=UTC)


def _event(detail_type: str, instance: str = INSTANCE, at: datetime = AT, action: str | None = "terminate") -> dict:  # type: ignore[type-arg]
    detail = {"instance-id": instance, **({"instance-action": action} if action else {})}
    return {
        "version": "0",
        "id": f"e-{detail_type[:3]}-{instance}",
        "detail-type": detail_type,
        "source": "aws.ec2",
        "account": "123456789012",
        "time": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": "us-east-1",
        "resources": [f"arn:aws:ec2:us-east-1:123456789012:instance/{instance}"],
        "detail": detail,
    }


def _deps():  # type: ignore[no-untyped-def]
    deps, repo, emr, logs, notifier = make_dependencies(now=AT)
    emr.instances[INSTANCE] = InstanceInfo(
        instance_id=INSTANCE, cluster_id=CLUSTER, role="TASK", private_dns="ip-10-0-7-88.ec2.internal"
    )
    emr.clusters[CLUSTER] = ClusterInfo(
        cluster_id=CLUSTER, name="clickstream-sessions", log_uri="s3://logs-bucket/emr/"
    )
    return deps, repo, emr, logs, notifier


@pytest.mark.parametrize(
    "detail_type", ["EC2 Spot Instance Interruption Warning", "EC2 Instance Rebalance Recommendation"]
)
def test_both_spot_signals_parse_and_are_kept_with_the_instances_cluster(detail_type: str) -> None:
    deps, repo, emr, _, _ = _deps()
    event = parse_emr_event(_event(detail_type, action=None if "Rebalance" in detail_type else "terminate"))
    assert isinstance(event, Ec2SpotEvent)
    outcome = handle_emr_event(event, deps)
    assert outcome.action == "run_recorded" and emr.calls == ["DescribeInstances"]
    (kept,) = repo.infra_events(CLUSTER, since=AT - timedelta(hours=1), until=AT + timedelta(hours=1))
    assert "ip-10-0-7-88.ec2.internal" in kept.what and INSTANCE in kept.what
    if "Interruption" in detail_type:
        assert "reclaimed (terminate) at about 01:32 UTC" in kept.what
    else:
        assert "elevated risk" in kept.what


def test_a_warning_for_an_instance_of_no_emr_cluster_is_ignored() -> None:
    deps, repo, _, _, notifier = _deps()
    outcome = handle_emr_event(
        parse_emr_event(_event("EC2 Spot Instance Interruption Warning", "i-0123456789abcdef0")), deps
    )
    assert outcome.action == "ignored" and "not an EMR cluster's instance" in outcome.detail
    assert repo.infra_events(CLUSTER, since=AT - timedelta(days=1), until=AT + timedelta(days=1)) == []
    assert notifier.posts == []


def test_a_warning_after_the_failure_edits_the_alert_around_it() -> None:
    # Given a step that failed at 01:41, alerted
    deps, repo, emr, _, notifier = _deps()
    emr.steps[STEP] = StepInfo(
        step_id=STEP, name="sessionize-clicks", state="FAILED", started_at=AT - timedelta(minutes=20)
    )
    failed = {
        "version": "0", "id": "e-failed", "detail-type": "EMR Step Status Change", "source": "aws.emr",
        "account": "123456789012", "time": "2026-11-21T01:41:33Z", "region": "us-east-1", "resources": [],
        "detail": {"clusterId": CLUSTER, "stepId": STEP, "name": "sessionize-clicks", "state": "FAILED"},
    }  # fmt: skip
    assert handle_emr_event(parse_emr_event(failed), deps).action == "incident_opened"
    # When the warning is delivered late (EventBridge retried it)
    outcome = handle_emr_event(parse_emr_event(_event("EC2 Spot Instance Interruption Warning")), deps)
    # Then the open incident gets it, and its alert is edited to say so
    assert outcome.action == "incident_updated" and outcome.slack == "updated"
    assert "EC2 Spot interruption warning" in json.dumps(notifier.updates[-1][1].blocks)
    incident = repo.get(f"{CLUSTER}.{STEP}")
    assert incident is not None and any("ip-10-0-7-88" in line for line in incident.infrastructure)


@pytest.mark.parametrize("instance", ["i-XYZ", "", "i-" + "a" * 40])
def test_a_malformed_instance_id_is_rejected_naming_the_field(instance: str) -> None:
    with pytest.raises(InvalidEventError, match="instance-id"):
        parse_event(_event("EC2 Spot Instance Interruption Warning", instance))

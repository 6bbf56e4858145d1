"""EC2's own word that a Spot instance is going: the interruption warning (two minutes before EC2
reclaims it) and the rebalance recommendation (at elevated risk, sometimes earlier). An EMR cluster's
instance is mapped to its cluster by EMR's system tags, and the warning is kept with the cluster's
infrastructure events: a failure around it then says "likely infrastructure, not your code" and names
the node, minutes before the logs show its executors lost.
"""

from __future__ import annotations

from datetime import timedelta

from emr_triage.analysis.redact import redact
from emr_triage.incidents.infrastructure import keep_and_attach
from emr_triage.models.emr import InstanceInfo
from emr_triage.models.events import Ec2SpotEvent
from emr_triage.models.incident import InfraEvent, Outcome
from emr_triage.observability import MetricName, count
from emr_triage.ports import Dependencies

INTERRUPTION = "EC2 Spot Instance Interruption Warning"


def describe_spot_event(event: Ec2SpotEvent, instance: InstanceInfo) -> str:
    """The warning in words, naming the node as YARN and Spark logs name it (its private DNS name)."""
    role = f"{instance.role.lower()} node" if instance.role else "node"
    kind = f", {instance.instance_type}" if instance.instance_type else ""
    host = f" {instance.private_dns}" if instance.private_dns else ""
    node = f"Spot {role}{host} ({instance.instance_id}{kind})"
    if event.detail_type == INTERRUPTION:
        action = (event.detail.instance_action or "terminate").lower()
        at = event.time + timedelta(minutes=2)
        return f"EC2 Spot interruption warning: {node} is reclaimed ({action}) at about {at:%H:%M UTC}"
    return f"EC2 rebalance recommendation: {node} is at elevated risk of a Spot interruption"


def handle_spot_event(event: Ec2SpotEvent, deps: Dependencies) -> Outcome:
    """Keep a Spot warning for an EMR cluster's instance (one DescribeInstances); other instances'
    warnings are ignored (the rule sees every Spot instance of the account and region)."""
    instance = deps.emr.instance_owner(event.detail.instance_id)
    if instance is None:
        count(MetricName.IGNORED_EVENTS)
        return Outcome(
            action="ignored",
            detail=f"{event.detail_type}: {event.detail.instance_id} is not an EMR cluster's instance (no EMR tags)",
        )
    what = redact(describe_spot_event(event, instance))
    return keep_and_attach(
        InfraEvent(cluster_id=instance.cluster_id, at=event.time, what=what, event_id=event.id), deps
    )

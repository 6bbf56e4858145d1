"""Capacity and instance events of a cluster, kept and attached to the failures they explain."""

from __future__ import annotations

from datetime import datetime, timedelta

from emr_triage.analysis.redact import redact
from emr_triage.incidents.building import MAX_TIMELINE, expiry
from emr_triage.incidents.claims import write
from emr_triage.incidents.delivery import deliver_alert
from emr_triage.models.events import EmrInfrastructureEvent
from emr_triage.models.incident import Incident, InfraEvent, Outcome, SlackAction, TimelineEntry
from emr_triage.observability import MetricName, count
from emr_triage.ports import Dependencies

# An event this long before a failure (or before its step started) to this long after it explains it.
INFRA_BEFORE = timedelta(minutes=30)


INFRA_AFTER = timedelta(minutes=10)


MAX_INFRASTRUCTURE = 10


_PROBLEM_SEVERITIES = frozenset({"WARN", "WARNING", "ERROR", "CRITICAL"})


_PROBLEM_STATES = frozenset({"SUSPENDED", "ARRESTED"})


def describe_infrastructure(event: EmrInfrastructureEvent) -> str | None:
    """A capacity or instance event in words, or None when it is routine (a resize that completed)."""
    detail = event.detail
    kind = "instance fleet" if "Fleet" in event.detail_type else "instance group"
    unit = detail.instance_fleet_id or detail.instance_group_id or ""
    role = detail.instance_fleet_type or detail.instance_group_type or ""
    market = f", {detail.market.lower().replace('_', '-')}" if detail.market else ""
    name = f"{kind} {unit} ({role}{market})".replace(" ()", "").replace("(, ", "(")
    code = (detail.event_code or "").strip()
    if event.detail_type.endswith("Provisioning") or event.detail_type.endswith("Resize"):
        if not code:
            return None
        lowered = code.lower()
        if "capacity" in lowered:
            return f"no EC2 capacity for the {name}: {code}"
        if "spot" in lowered:
            return f"Spot capacity not obtained in time for the {name}: {code}"
        return f"{name}: {code}"
    severity = (detail.severity or "").upper()
    state = (detail.state or "").upper()
    if severity not in _PROBLEM_SEVERITIES and state not in _PROBLEM_STATES:
        return None
    message = (detail.message or "").strip()
    return f"{name} {state or 'changed'} ({severity or 'no severity'}){': ' + message if message else ''}"


def _infra_window(incident: Incident) -> tuple[datetime, datetime]:
    start = min(incident.started_at or incident.failed_at, incident.failed_at)
    return start - INFRA_BEFORE, incident.failed_at + INFRA_AFTER


def _attach_infrastructure(incident: Incident, found: list[InfraEvent], deps: Dependencies) -> bool:
    """Attach the events the incident does not have yet (a versioned write); whether any was new."""

    def attach(inc: Incident) -> Incident | None:
        new = [e for e in found if _infra_line(e) not in inc.infrastructure]
        if not new:
            return None
        inc.infrastructure = [*inc.infrastructure, *(_infra_line(e) for e in new)][-MAX_INFRASTRUCTURE:]
        inc.timeline = [
            *inc.timeline,
            *(TimelineEntry(at=e.at, what=f"infrastructure: {e.what}"[:300], event_id=e.event_id) for e in new),
        ][-MAX_TIMELINE:]
        return inc

    return write(deps.repository, incident.incident_id, attach)[1]


def _infra_line(event: InfraEvent) -> str:
    return f"{event.at.strftime('%H:%M UTC')} {event.what}"[:500]


def correlate_infrastructure(incident: Incident, deps: Dependencies) -> None:
    """Attach to a new incident the capacity and instance events its cluster had around the failure."""
    if incident.cluster_id is None:
        return
    since, until = _infra_window(incident)
    found = deps.repository.infra_events(incident.cluster_id, since=since, until=until)
    if found:
        _attach_infrastructure(incident, found, deps)


def handle_infrastructure_event(event: EmrInfrastructureEvent, deps: Dependencies) -> Outcome:
    """Keep a cluster's capacity or instance problem, and attach it to the open incidents it explains
    (their alerts then say "likely infrastructure" instead of blaming the code)."""
    what = describe_infrastructure(event)
    if what is None:
        count(MetricName.IGNORED_EVENTS)
        return Outcome(action="ignored", detail=f"{event.detail_type}: routine ({event.detail.state or 'no state'})")
    infra = InfraEvent(cluster_id=event.detail.cluster_id, at=event.time, what=redact(what), event_id=event.id)
    return keep_and_attach(infra, deps)


def keep_and_attach(infra: InfraEvent, deps: Dependencies) -> Outcome:
    """Keep a cluster's capacity or instance event, attach it to the open incidents around it, and edit
    their alerts."""
    what = infra.what
    deps.repository.record_infra(infra, expiry(deps.clock(), deps))
    count(MetricName.INFRASTRUCTURE_EVENTS)
    touched, around = [], []
    for incident in deps.repository.open_incidents(cluster_id=infra.cluster_id):
        since, until = _infra_window(incident)
        if since <= infra.at <= until:
            around.append(incident.incident_id)
            if _attach_infrastructure(incident, [infra], deps):
                touched.append(incident.incident_id)
    slack: SlackAction = "none"
    # Every incident around it, attached now or by an earlier delivery whose Slack update failed (a
    # delivery only edits a message whose content changed).
    for incident_id in around:
        slack = deliver_alert(incident_id, deps)
    if not touched:
        # No open incident around it, or every one already has it (a duplicate event).
        return Outcome(action="run_recorded", detail=f"recorded for cluster {infra.cluster_id}: {what}")
    return Outcome(
        action="incident_updated",
        incident_id=touched[0],
        detail=f"infrastructure around {', '.join(touched)}: {what}",
        slack=slack,
    )

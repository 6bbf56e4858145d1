"""Folding and holds: a cancelled step, a STEP_FAILURE cluster or an application that is part of a
step failure's story joins that step's alert instead of paging on its own.

EventBridge does not order events, so such an incident is created *held* when its failed step has not
been reported yet; its hold check folds it into that step's alert, or alerts it on its own.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from emr_triage.incidents.building import MAX_APPLICATION_IDS, MAX_CHILDREN, MAX_TIMELINE, child_label, step_incident_id
from emr_triage.incidents.claims import write
from emr_triage.incidents.delivery import deliver_alert
from emr_triage.incidents.infrastructure import correlate_infrastructure
from emr_triage.incidents.lifecycle import alert_then_schedule
from emr_triage.incidents.recovery import remember_failure
from emr_triage.incidents.schedule import schedule_hold_check
from emr_triage.models.incident import Incident, Outcome, TimelineEntry
from emr_triage.observability import MetricName, count
from emr_triage.ports import Dependencies

# A cancelled or interrupted step, or a cluster terminated by STEP_FAILURE, is folded into an open step
# incident only if that step failed this recently (ActionOnFailure acts within minutes); a container log
# with no known application link only joins an incident whose step failed this recently.
FOLD_WINDOW = timedelta(hours=2)


def _fold_child(
    parent_id: str,
    child: str,
    event_id: str | None,
    at: datetime,
    deps: Dependencies,
    application_ids: list[str] | None = None,
) -> Incident | None:
    """Fold ``child`` into the parent's alert; the parent as stored after it."""

    def add_child(inc: Incident) -> Incident | None:
        if child in inc.children or len(inc.children) >= MAX_CHILDREN:
            return None
        inc.children = [*inc.children, child]
        # A folded application's later logs (its executors') then find the parent.
        for app in application_ids or []:
            if app not in inc.application_ids and len(inc.application_ids) < MAX_APPLICATION_IDS:
                inc.application_ids.append(app)
        inc.timeline = [*inc.timeline, TimelineEntry(at=at, what=child, event_id=event_id)][-MAX_TIMELINE:]
        return inc

    stored = deps.repository.update(parent_id, add_child)
    count(MetricName.FOLDED_EVENTS)
    return stored


def fold_into(parent: Incident, child: str, event_id: str, at: datetime, deps: Dependencies) -> Outcome:
    stored = _fold_child(parent.incident_id, child, event_id, at, deps)
    slack = deliver_alert(parent.incident_id, deps, stored)
    return Outcome(
        action="folded",
        incident_id=parent.incident_id,
        detail=f"{child}: folded into open incident {parent.incident_id}, no new alert",
        slack=slack,
    )


def recent_step_failure(cluster_id: str, at: datetime, deps: Dependencies) -> Incident | None:
    """The cluster's open FAILED-step incident that failed within FOLD_WINDOW before ``at`` (the latest)."""
    candidates = [
        i
        for i in deps.repository.open_incidents(cluster_id=cluster_id)
        if i.kind == "step" and i.state == "FAILED" and timedelta(0) <= at - i.failed_at <= FOLD_WINDOW
    ]
    return max(candidates, key=lambda i: i.failed_at, default=None)


def hold(incident: Incident, deps: Dependencies, created: bool, why: str) -> Outcome:
    """A held incident (created held: a cancelled or interrupted step, a STEP_FAILURE cluster or an
    application whose failed step has not been reported; EventBridge does not order events): not alerted.
    Its check, one interval later, folds it into that step's alert if it came, else alerts it on its own.
    Holding is decided before the incident is created, so a concurrent copy of the event finds it held."""
    if not incident.hold_check_scheduled:
        schedule_hold_check(incident.incident_id, deps)
    return Outcome(
        action="incident_opened" if created else "duplicate",
        incident_id=incident.incident_id,
        detail=f"held: {why}; folded into that step's alert when it is reported, else alerted at the next check",
        slack="none",
    )


def adopt_held(parent: Incident, deps: Dependencies) -> list[str]:
    """Fold into a step failure's incident the held incidents of its cluster that its failure explains
    (cancelled/interrupted steps and a STEP_FAILURE termination reported just after it)."""
    if parent.kind != "step" or parent.state != "FAILED" or parent.cluster_id is None:
        return []
    adopted = []
    for held in deps.repository.open_incidents(cluster_id=parent.cluster_id):
        if not held.held_for_parent or not timedelta(0) <= held.failed_at - parent.failed_at <= FOLD_WINDOW:
            continue
        if held.held_for_step is not None and held.held_for_step != parent.step_id:
            continue  # an application held for another step's late event

        def fold(inc: Incident, parent_id: str = parent.incident_id) -> Incident | None:
            if inc.folded_into or not inc.held_for_parent:
                return None
            inc.folded_into = parent_id
            inc.held_for_parent = False
            inc.status = "RESOLVED"
            inc.resolved_at = deps.clock()
            inc.resolved_by = f"folded into the alert of {parent_id}"
            return inc

        folded = deps.repository.update(held.incident_id, fold)
        if folded is not None and folded.folded_into == parent.incident_id:
            adopted.append(held)
    for held in adopted:
        _fold_child(
            parent.incident_id,
            child_label(held),
            held.timeline[0].event_id if held.timeline else None,
            held.failed_at,
            deps,
            held.application_ids if held.kind == "application" else None,
        )
    return [h.incident_id for h in adopted]


def release_held(incident: Incident, label: str, deps: Dependencies) -> Outcome:
    """A held incident's check: fold it into its step failure if that was reported meanwhile (before the
    held event's time: it arrived late), else alert it on its own and start its own log checks."""
    if incident.held_for_step is not None:
        parent = deps.repository.get(deps.scoped(step_incident_id(incident.cluster_id or "", incident.held_for_step)))
        if parent is not None and parent.status != "OPEN":
            parent = None
    else:
        parent = recent_step_failure(incident.cluster_id or "", incident.failed_at, deps)
    if parent is not None:
        adopted = adopt_held(parent, deps)
        if incident.incident_id in adopted:
            slack = deliver_alert(parent.incident_id, deps)
            return Outcome(
                action="folded",
                incident_id=parent.incident_id,
                detail=f"{label}: {incident.incident_id} folded into {parent.incident_id}, no new alert",
                slack=slack,
            )

    def release(inc: Incident) -> Incident | None:
        if not inc.held_for_parent:
            return None
        inc.held_for_parent = False
        inc.timeline = [
            *inc.timeline,
            TimelineEntry(at=deps.clock(), what="no failed step reported on the cluster: alerted on its own"),
        ][-MAX_TIMELINE:]
        return inc

    stored, released_now = write(deps.repository, incident.incident_id, release)
    released = stored or incident
    if not released_now and released.folded_into:
        return Outcome(
            action="duplicate",
            incident_id=released.incident_id,
            detail=f"{label}: {released.incident_id} was folded into {released.folded_into} meanwhile",
        )
    return alert_released(released, label, deps)


def alert_released(released: Incident, label: str, deps: Dependencies) -> Outcome:
    """Alert an incident released from its hold on its own: its history and the infrastructure around it,
    the alert, then its own log checks. Idempotent, so a redelivered hold check finishes what a failed
    one left (a Slack or SQS error after the release was written)."""
    remember_failure(released, deps)
    correlate_infrastructure(released, deps)
    slack = alert_then_schedule(released, deps)
    return Outcome(
        action="incident_updated",
        incident_id=released.incident_id,
        detail=f"{label}: no failed step reported on cluster {released.cluster_id}: alerted on its own",
        slack=slack,
    )

"""Slack's pace per channel, and storms: when a channel is backed up, new incidents fold into its
latest alert instead of queueing behind it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import TypeVar

from emr_triage.analysis.redact import redact
from emr_triage.exceptions import TransientError
from emr_triage.incidents.building import MAX_CHILDREN, MAX_TIMELINE, child_label
from emr_triage.models.incident import Incident, TimelineEntry
from emr_triage.observability import MetricName, count, logger
from emr_triage.ports import Dependencies, PostPacer

T = TypeVar("T")


# A storm folds new incidents into the channel's latest alert if that was posted this recently.
STORM_WINDOW = timedelta(minutes=30)


def pacing_call(call: Callable[[PostPacer], T], unavailable: T, deps: Dependencies) -> T:
    """Call the pacer. A transient failure propagates (the event is retried); any other (a missing IAM
    grant) is logged and counted, and ``unavailable`` is returned, as when there is no pacer: Slack is then
    called unpaced rather than not at all."""
    if deps.pacer is None:
        return unavailable
    try:
        return call(deps.pacer)
    except TransientError:
        raise
    except Exception as exc:
        logger.error("Slack post pacing unavailable; posting unpaced", problem=redact(str(exc)))
        count(MetricName.SLACK_DELIVERY_FAILURES)
        return unavailable


def wait_for_slot(channel: str, deps: Dependencies, *, max_wait: float | None = None) -> bool:
    """Wait for the channel's next post slot (Slack allows about one post per second per channel).

    False (no slot taken): the slot is more than ``max_wait`` seconds away, or beyond this invocation's
    time. True: posting now keeps the pace (or there is no pacer, or it is unavailable)."""
    if deps.pacer is None:
        return True
    limits = [limit for limit in (max_wait, deps.seconds_left()) if limit is not None]
    limit = max(0.0, min(limits)) if limits else None
    now = deps.clock().timestamp()
    post_now: float | None = 0.0  # what pacing that is unavailable amounts to
    wait = pacing_call(lambda pacer: pacer.reserve(channel, now, limit), post_now, deps)
    if wait is None:
        return False
    if wait > 0:
        count(MetricName.SLACK_POSTS_PACED)
        deps.sleep(wait)
    return True


def fold_into_storm(incident_id: str, channel: str, deps: Dependencies) -> str | None:
    """Fold an incident whose channel is backed up into the channel's latest alert (posted within
    STORM_WINDOW, with room for it): that alert lists it, edited in place, and it gets no message of its
    own. The alert is told first, so a retry after a failure in between cannot lose the incident.

    Returns the alert's incident id (the caller edits its message), or None: no such alert (the incident
    is then posted, queued behind the storm)."""
    last = pacing_call(lambda pacer: pacer.last_root(channel), None, deps)
    now = deps.clock()
    if last is None or last.incident_id == incident_id or now.timestamp() - last.at > STORM_WINDOW.total_seconds():
        return None
    parent = deps.repository.get(last.incident_id)
    incident = deps.repository.get(incident_id)
    if parent is None or parent.slack is None or incident is None or not deps.notifier.threads:
        return None
    label = child_label(incident)
    if incident.diagnosis is not None:
        label += f": {incident.diagnosis.title}"
    label += f" [{incident_id}]"
    marker = f"[{incident_id}]"

    def add(inc: Incident) -> Incident | None:
        if any(c.endswith(marker) for c in inc.storm_children):
            return None
        if len(inc.storm_children) >= MAX_CHILDREN:
            return None
        inc.storm_children = [*inc.storm_children, label]
        return inc

    updated = deps.repository.update(parent.incident_id, add)
    if updated is None or not any(c.endswith(marker) for c in updated.storm_children):
        return None  # the alert is full (or gone): post this one after all

    def fold(inc: Incident) -> Incident | None:
        if inc.slack is not None:
            return None
        inc.folded_into = parent.incident_id
        inc.slack_claim_until = None
        inc.timeline = [*inc.timeline, TimelineEntry(at=now, what=f"storm in {channel}: folded", event_id=None)][
            -MAX_TIMELINE:
        ]
        return inc

    deps.repository.update(incident_id, fold)
    count(MetricName.STORM_FOLDED_INCIDENTS)
    logger.warning(
        "Slack channel backed up: incident folded into its latest alert",
        incident_id=incident_id,
        into=parent.incident_id,
    )
    return parent.incident_id

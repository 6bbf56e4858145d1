"""What every handler does with its event: validate it, reject poison, run one domain function."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any, TypeVar

from emr_triage.exceptions import InvalidEventError
from emr_triage.incidents.service import reject_event
from emr_triage.models.incident import Outcome
from emr_triage.observability import logger
from emr_triage.runtime import Dependencies, get_dependencies

EventT = TypeVar("EventT")


# Time kept back from the Lambda timeout for storing the incident and talking to Slack (with retries).
DELIVERY_RESERVE_SECONDS = 30.0


def process_event(
    event: object,
    *,
    function: str,
    parse: Callable[[object], EventT],
    handle: Callable[[EventT, Dependencies], Outcome],
    context: Any = None,
) -> dict[str, Any]:
    """Parse ``event`` with ``parse``; a malformed or misrouted event is dead-lettered with its reason
    (never retried); a valid one goes to ``handle``. Transient failures propagate so Lambda retries.

    Returns
    -------
    dict
        The :class:`Outcome`, as JSON (what the replay command prints; Lambda ignores it).
    """
    deps = get_dependencies()
    remaining_ms = getattr(context, "get_remaining_time_in_millis", None)
    if remaining_ms is not None:
        budget = max(5.0, remaining_ms() / 1000 - DELIVERY_RESERVE_SECONDS)
        deps = replace(deps, deadline=time.monotonic() + budget)
    try:
        parsed = parse(event)
    except InvalidEventError as exc:
        return reject_event(event, exc, deps, function).model_dump(mode="json")
    outcome = handle(parsed, deps)
    logger.info("event processed", action=outcome.action, incident_id=outcome.incident_id, slack=outcome.slack)
    return outcome.model_dump(mode="json")

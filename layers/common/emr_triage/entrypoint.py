"""What every handler does with its event: validate it, reject poison, run one domain function."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from emr_triage.exceptions import InvalidEventError
from emr_triage.incidents.service import reject_event
from emr_triage.models.incident import Outcome
from emr_triage.observability import logger
from emr_triage.runtime import Dependencies, get_dependencies

EventT = TypeVar("EventT")


def process_event(
    event: object,
    *,
    function: str,
    parse: Callable[[object], EventT],
    handle: Callable[[EventT, Dependencies], Outcome],
) -> dict[str, Any]:
    """Parse ``event`` with ``parse``; a malformed or misrouted event is dead-lettered with its reason
    (never retried); a valid one goes to ``handle``. Transient failures propagate so Lambda retries.

    Returns
    -------
    dict
        The :class:`Outcome`, as JSON (what the replay command prints; Lambda ignores it).
    """
    deps = get_dependencies()
    try:
        parsed = parse(event)
    except InvalidEventError as exc:
        return reject_event(event, exc, deps, function).model_dump(mode="json")
    outcome = handle(parsed, deps)
    logger.info("event processed", action=outcome.action, incident_id=outcome.incident_id, slack=outcome.slack)
    return outcome.model_dump(mode="json")

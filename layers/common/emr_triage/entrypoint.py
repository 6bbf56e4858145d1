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
from emr_triage.ports import Dependencies
from emr_triage.runtime import get_dependencies

EventT = TypeVar("EventT")


# The shortest time budget for reading logs, however little the Lambda has left.
MIN_READ_SECONDS = 5.0


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
    deps = _with_deadline(get_dependencies(), context)
    try:
        parsed = parse(event)
    except InvalidEventError as exc:
        return reject_event(event, exc, deps, function).model_dump(mode="json")
    outcome = handle(parsed, deps)
    logger.info("event processed", action=outcome.action, incident_id=outcome.incident_id, slack=outcome.slack)
    return outcome.model_dump(mode="json")


def process_queue_batch(
    event: object,
    *,
    function: str,
    parse: Callable[[object], EventT],
    handle: Callable[[EventT, Dependencies], Outcome],
    context: Any = None,
) -> dict[str, Any]:
    """Handle an SQS batch record by record (partial batch response): a record that fails transiently is
    reported in ``batchItemFailures`` so SQS redelivers only it (and, after the queue's maxReceiveCount,
    dead-letters it); a malformed one is dead-lettered with its reason and not retried.

    Returns
    -------
    dict
        ``{"batchItemFailures": [...]}`` for Lambda; under the replay command also ``outcomes``.
    """
    deps = _with_deadline(get_dependencies(), context)
    records = event.get("Records") if isinstance(event, dict) else None
    if not isinstance(records, list):
        outcome = reject_event(event, InvalidEventError("not an SQS batch: no 'Records' list"), deps, function)
        return _batch_response([], [outcome], deps)
    failures: list[dict[str, str]] = []
    outcomes: list[Outcome] = []
    for record in records:
        message_id = str(record.get("messageId", "")) if isinstance(record, dict) else ""
        try:
            parsed = parse(record.get("body") if isinstance(record, dict) else None)
        except InvalidEventError as exc:
            outcomes.append(reject_event(record, exc, deps, function))
            continue
        try:
            outcome = handle(parsed, deps)
        except Exception:
            logger.exception("queue message failed; SQS will deliver it again", message_id=message_id)
            if message_id:
                failures.append({"itemIdentifier": message_id})
            continue
        logger.info("message processed", action=outcome.action, incident_id=outcome.incident_id, slack=outcome.slack)
        outcomes.append(outcome)
    return _batch_response(failures, outcomes, deps)


def _batch_response(failures: list[dict[str, str]], outcomes: list[Outcome], deps: Dependencies) -> dict[str, Any]:
    response: dict[str, Any] = {"batchItemFailures": failures}
    if deps.settings.replay:
        response["outcomes"] = [o.model_dump(mode="json") for o in outcomes]
    return response


def _with_deadline(deps: Dependencies, context: Any) -> Dependencies:
    """Set this invocation's log-reading deadline: the Lambda's remaining time less the delivery reserve
    (``LOG_READ_RESERVE_SECONDS``), and at most ``LOG_READ_MAX_SECONDS``."""
    settings = deps.settings
    budgets = [settings.log_read_max_seconds] if settings.log_read_max_seconds is not None else []
    remaining_ms = getattr(context, "get_remaining_time_in_millis", None)
    if remaining_ms is not None:
        budgets.append(max(MIN_READ_SECONDS, remaining_ms() / 1000 - settings.log_read_reserve_seconds))
    if not budgets:
        return deps
    return replace(deps, deadline=time.monotonic() + min(budgets))

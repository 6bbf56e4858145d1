"""What every handler does with its event: validate it, reject poison, run one domain function."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any, TypeVar, cast

from emr_triage.exceptions import InvalidEventError
from emr_triage.incidents.service import reject_event
from emr_triage.models.incident import Outcome
from emr_triage.observability import logger, tracer
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
    annotate(outcome)
    return outcome.model_dump(mode="json")


def process_queue_batch(
    event: object,
    *,
    function: str,
    parse: Callable[[object], EventT],
    handle: Callable[[EventT, Dependencies], Outcome],
    context: Any = None,
) -> dict[str, Any]:
    """Handle an SQS batch record by record, through Powertools' ``BatchProcessor`` (partial batch
    response): a record that raises is reported in ``batchItemFailures`` so SQS redelivers only it (and,
    after the queue's maxReceiveCount, dead-letters it); a malformed one is dead-lettered with its reason
    by the record handler and not retried.

    Returns
    -------
    dict
        ``{"batchItemFailures": [...]}`` for Lambda; under the replay command also ``outcomes``.
    """
    from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

    deps = _with_deadline(get_dependencies(), context)
    records = event.get("Records") if isinstance(event, dict) else None
    if not isinstance(records, list):
        outcome = reject_event(event, InvalidEventError("not an SQS batch: no 'Records' list"), deps, function)
        return _batch_response({"batchItemFailures": []}, [outcome], deps)
    # A record that is not an object with a message id cannot be reported back to SQS: dead-lettered here.
    valid: list[dict[str, Any]] = []
    outcomes: list[Outcome] = []
    for record in records:
        if isinstance(record, dict) and isinstance(record.get("messageId"), str) and record["messageId"]:
            valid.append(record)
        else:
            outcomes.append(reject_event(record, InvalidEventError("not an SQS record: no messageId"), deps, function))
    if not valid:
        return _batch_response({"batchItemFailures": []}, outcomes, deps)

    def record_handler(record: SQSRecord) -> None:
        try:
            parsed = parse(record.raw_event.get("body"))
        except InvalidEventError as exc:
            outcomes.append(reject_event(record.raw_event, exc, deps, function))
            return
        try:
            outcome = handle(parsed, deps)
        except Exception:
            logger.exception("queue message failed; SQS will deliver it again", message_id=record.message_id)
            raise
        logger.info("message processed", action=outcome.action, incident_id=outcome.incident_id, slack=outcome.slack)
        annotate(outcome)
        outcomes.append(outcome)

    # Every record failing is reported as such (all redelivered), not raised: the same for SQS, and the
    # replay command reads the response.
    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    batch = {**cast("dict[str, Any]", event), "Records": valid}
    response = process_partial_response(
        event=batch, record_handler=record_handler, processor=processor, context=context
    )
    return _batch_response(dict(response), outcomes, deps)


def annotate(outcome: Outcome) -> None:
    """Make the invocation's X-Ray trace findable by what it did: its incident, its action, what Slack
    got (indexed annotations; the handlers capture no response, which can hold log-derived text)."""
    tracer.put_annotation(key="action", value=outcome.action)
    tracer.put_annotation(key="slack", value=outcome.slack)
    if outcome.incident_id:
        tracer.put_annotation(key="incident_id", value=outcome.incident_id)


def _batch_response(response: dict[str, Any], outcomes: list[Outcome], deps: Dependencies) -> dict[str, Any]:
    if deps.settings.replay:
        response["outcomes"] = [o.model_dump(mode="json") for o in outcomes]
    return response


def _with_deadline(deps: Dependencies, context: Any) -> Dependencies:
    """Start an invocation: the store forgets the last one's reads, and this one's log-reading deadline is
    the Lambda's remaining time less the delivery reserve (``LOG_READ_RESERVE_SECONDS``), and at most
    ``LOG_READ_MAX_SECONDS``."""
    deps.repository.begin_invocation()
    settings = deps.settings
    budgets = [settings.log_read_max_seconds] if settings.log_read_max_seconds is not None else []
    remaining_ms = getattr(context, "get_remaining_time_in_millis", None)
    if remaining_ms is not None:
        budgets.append(max(MIN_READ_SECONDS, remaining_ms() / 1000 - settings.log_read_reserve_seconds))
    if not budgets:
        return deps
    return replace(deps, deadline=time.monotonic() + min(budgets))

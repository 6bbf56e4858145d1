"""DigestFunction: the weekly digest of each channel (an EventBridge schedule; day and hour are template
parameters): failures against the week before, recurring signatures, flaky jobs, time to recover and to
acknowledge, slow runs, and a chart of failures per day by category in its thread.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from emr_triage.digest.service import handle_digest
from emr_triage.entrypoint import process_event
from emr_triage.models.events import ScheduledEvent, parse_scheduled_event
from emr_triage.models.incident import Outcome
from emr_triage.observability import logger, metrics, tracer
from emr_triage.ports import Dependencies


def _digest(event: ScheduledEvent, deps: Dependencies) -> Outcome:
    return handle_digest(event.time, deps)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return process_event(event, function="digest", parse=parse_scheduled_event, handle=_digest, context=context)

"""FollowUpFunction: scheduled checks of an incident's logs (SQS delay queue), minutes after its failure.

Analyses logs that landed without reaching their incident, and at the deadline marks an incident whose
logs never came "logs unavailable" (the Slack alert says so and keeps EMR's own reason).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from emr_triage.entrypoint import process_queue_batch
from emr_triage.incidents.service import handle_follow_up
from emr_triage.models.events import parse_follow_up
from emr_triage.observability import logger, metrics, tracer


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return process_queue_batch(
        event, function="follow-ups", parse=parse_follow_up, handle=handle_follow_up, context=context
    )

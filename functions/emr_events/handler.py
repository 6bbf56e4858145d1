"""EmrEventFunction: EMR step and cluster, and EMR Serverless job run, state changes.

A failure opens (or finds) its incident, reads the logs already in S3, and posts the Slack alert.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from emr_triage.entrypoint import process_event
from emr_triage.incidents.service import handle_emr_event
from emr_triage.models.events import parse_emr_event
from emr_triage.observability import logger, metrics, tracer


@logger.inject_lambda_context(correlation_id_path=correlation_paths.EVENT_BRIDGE, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return process_event(event, function="emr-events", parse=parse_emr_event, handle=handle_emr_event, context=context)

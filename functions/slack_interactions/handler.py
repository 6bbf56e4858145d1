"""SlackInteractionsFunction: the alert's buttons and /emr-triage, behind a Lambda function URL.

Slack signs every request; the function admits only signed, fresh requests of its own workspace and app,
acts once per interaction, and acknowledges within Slack's 3 seconds (emr_triage.interactive).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from emr_triage.interactive.entry import handle
from emr_triage.observability import logger, metrics, tracer


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return handle(event, context)

"""Follow-ups: a check of an incident's logs some minutes after its failure, through an SQS delay queue.

Why an SQS delay queue (and not EventBridge Scheduler or a Step Functions wait): a per-message delay of up
to 15 minutes covers EMR's 5-minute log push with room to spare; a check that needs more time re-sends
itself. There is nothing to clean up afterwards (a one-time schedule per incident would be), no extra
role to pass, a dead-letter queue and redrive come with it, it costs a few SQS requests per incident, and
it runs on the embedded AWS the same way.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from emr_triage.aws import clients
from emr_triage.exceptions import TransientError
from emr_triage.models.events import FollowUp

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

MAX_DELAY_SECONDS = 900  # SQS's limit for DelaySeconds


class SqsFollowUpQueue:
    """Follow-ups as messages of an SQS queue, each delayed by DelaySeconds."""

    def __init__(self, queue_url: str, client: SQSClient | None = None) -> None:
        self.queue_url = queue_url
        self._client = client

    def schedule(self, follow_up: FollowUp, delay_seconds: int) -> None:
        """Send the follow-up, visible after ``delay_seconds`` (capped at SQS's 900).

        Raises
        ------
        TransientError
            SQS did not take it: the event is retried (the incident records that no follow-up is out).
        """
        client = self._client or clients.sqs()
        try:
            client.send_message(
                QueueUrl=self.queue_url,
                MessageBody=json.dumps(follow_up.model_dump(mode="json")),
                DelaySeconds=max(0, min(MAX_DELAY_SECONDS, delay_seconds)),
            )
        except Exception as exc:
            raise TransientError(
                f"could not schedule the log check of incident {follow_up.incident_id} on {self.queue_url} "
                f"({type(exc).__name__}: {exc}); retrying the event"
            ) from exc

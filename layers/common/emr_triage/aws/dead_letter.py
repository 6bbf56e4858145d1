"""Poison events go to the dead-letter queue with the reason, instead of being retried forever."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Protocol

from emr_triage.aws import clients

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

# SQS accepts 256 KiB per message; keep room for the envelope.
_MAX_EVENT_CHARS = 200_000


class DeadLetterSink(Protocol):
    def send(self, raw_event: object, reason: str, function: str) -> str: ...


def dead_letter_body(raw_event: object, reason: str, function: str) -> str:
    """The message body: the reason, the function, and the event (truncated if huge, and said so)."""
    event_text = json.dumps(raw_event, default=repr)
    truncated = len(event_text) > _MAX_EVENT_CHARS
    body = {
        "reason": reason,
        "function": function,
        "truncated": truncated,
        "event": raw_event if not truncated else event_text[:_MAX_EVENT_CHARS],
    }
    return json.dumps(body, default=repr)


class SqsDeadLetterSink:
    def __init__(self, queue_url: str, client: SQSClient | None = None) -> None:
        self.queue_url = queue_url
        self._client = client

    def send(self, raw_event: object, reason: str, function: str) -> str:
        """Send the event and reason; returns the SQS message id. Errors propagate (Lambda then retries
        the event and its own on-failure destination catches it: still nothing lost)."""
        client = self._client or clients.sqs()
        response = client.send_message(
            QueueUrl=self.queue_url,
            MessageBody=dead_letter_body(raw_event, reason, function),
            MessageAttributes={
                "reason": {"DataType": "String", "StringValue": reason[:1000]},
                "function": {"DataType": "String", "StringValue": function},
            },
        )
        return response["MessageId"]

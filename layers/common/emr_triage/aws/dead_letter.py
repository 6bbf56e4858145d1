"""Poison events go to the dead-letter queue with the reason, instead of being retried forever."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from emr_triage.aws import clients

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

# SQS accepts 256 KiB per message (body and attributes); keep room for the attributes.
_MAX_BODY_BYTES = 200_000
_MAX_REASON_CHARS = 4_000


def dead_letter_body(raw_event: object, reason: str, function: str) -> str:
    """The message body: the reason, the function, and the event (cut if huge, and said so).

    The limit applies to the encoded body: a cut event is sent as a JSON string, whose quotes, backslashes
    and newlines encode again, so the cut is shortened until the whole body fits.
    """
    body = {"reason": reason[:_MAX_REASON_CHARS], "function": function, "truncated": False, "event": raw_event}
    encoded = json.dumps(body, default=repr)
    if len(encoded.encode("utf-8")) <= _MAX_BODY_BYTES:
        return encoded
    event_text = json.dumps(raw_event, default=repr)
    keep = _MAX_BODY_BYTES // 2
    while True:
        body.update(truncated=True, event=event_text[:keep])
        encoded = json.dumps(body, default=repr)
        if len(encoded.encode("utf-8")) <= _MAX_BODY_BYTES or keep == 0:
            return encoded
        keep //= 2


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

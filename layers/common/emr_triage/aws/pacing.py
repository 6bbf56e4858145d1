"""One Slack post per channel per interval, across every concurrent invocation.

Slack allows about one message per second per channel (``chat.postMessage``, thread replies included;
short bursts are tolerated, sustained ones get HTTP 429). Each function instance is its own process, so
the pace is kept in DynamoDB: one item per channel holds the time of its next free slot, and a post takes
the slot with a conditional write (two invocations cannot take the same slot).

The same item remembers the channel's last root message, so that when a storm backs the channel up, new
incidents can be folded into that alert instead of queueing behind it (see ``incidents.service``).

Item (README "Data model")::

    pk = CHANNEL#<channel>   sk = PACE   next_at, root_incident, root_at (epoch seconds), expires_at
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from emr_triage.aws import clients
from emr_triage.exceptions import TransientError
from emr_triage.ports import LastRoot

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

PACE_SK = "PACE"
# The item outlives any backlog; an idle channel's item expires.
_PACE_TTL_SECONDS = 86_400
_RESERVE_ATTEMPTS = 20


def next_slot(now: float, next_at: float | None, interval: float) -> tuple[float, float]:
    """The slot a post takes and the channel's next free slot after it: the pure rule of the pacer."""
    slot = max(now, next_at or 0.0)
    return slot, slot + interval


def channel_key(channel: str) -> dict[str, Any]:
    return {"pk": {"S": f"CHANNEL#{channel}"}, "sk": {"S": PACE_SK}}


class DynamoPostPacer:
    """The pacer over the incidents table (one small item per channel)."""

    def __init__(self, table_name: str, interval: float, client: DynamoDBClient | None = None) -> None:
        self.table_name = table_name
        self.interval = interval
        self._client = client

    @property
    def client(self) -> DynamoDBClient:
        return self._client or clients.dynamodb()

    def _item(self, channel: str) -> dict[str, Any]:
        try:
            response = self.client.get_item(TableName=self.table_name, Key=channel_key(channel), ConsistentRead=True)
        except Exception as exc:
            raise _translate(exc, "reading the channel's post pace") from exc
        return dict(response.get("Item") or {})

    def reserve(self, channel: str, now: float, max_wait: float | None = None) -> float | None:
        from botocore.exceptions import ClientError

        if self.interval <= 0:
            return 0.0
        for _ in range(_RESERVE_ATTEMPTS):
            item = self._item(channel)
            stored = item.get("next_at", {}).get("N")
            slot, following = next_slot(now, float(stored) if stored else None, self.interval)
            if max_wait is not None and slot - now > max_wait:
                return None
            condition = "attribute_not_exists(next_at)" if stored is None else "next_at = :old"
            values: dict[str, Any] = {
                ":next": {"N": _number(following)},
                ":exp": {"N": str(int(now) + _PACE_TTL_SECONDS)},
            }
            if stored is not None:
                values[":old"] = {"N": stored}
            try:
                self.client.update_item(
                    TableName=self.table_name,
                    Key=channel_key(channel),
                    UpdateExpression="SET next_at = :next, expires_at = :exp",
                    ConditionExpression=condition,
                    ExpressionAttributeValues=values,
                )
            except ClientError as exc:
                if clients.error_code(exc) == "ConditionalCheckFailedException":
                    continue  # another invocation took that slot: read the next one
                raise _translate(exc, "taking a post slot") from exc
            except Exception as exc:
                raise _translate(exc, "taking a post slot") from exc
            return slot - now
        raise TransientError(
            f"could not take a Slack post slot for {channel} after {_RESERVE_ATTEMPTS} attempts (heavy contention); "
            "the event will be retried"
        )

    def record_root(self, channel: str, incident_id: str, now: float) -> None:
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=channel_key(channel),
                UpdateExpression="SET root_incident = :id, root_at = :at, expires_at = :exp",
                ExpressionAttributeValues={
                    ":id": {"S": incident_id},
                    ":at": {"N": _number(now)},
                    ":exp": {"N": str(int(now) + _PACE_TTL_SECONDS)},
                },
            )
        except Exception as exc:
            raise _translate(exc, "recording the channel's last alert") from exc

    def last_root(self, channel: str) -> LastRoot | None:
        item = self._item(channel)
        if "root_incident" not in item:
            return None
        return LastRoot(item["root_incident"]["S"], float(item["root_at"]["N"]))


def _number(value: float) -> str:
    """Epoch seconds to the millisecond, rounded up (a slot never comes earlier than the interval)."""
    return str(Decimal(math.ceil(value * 1000)) / 1000)


def _translate(exc: Exception, action: str) -> Exception:
    if clients.is_transient(exc):
        return TransientError(f"{action} failed transiently ({exc}); the event will be retried")
    return exc

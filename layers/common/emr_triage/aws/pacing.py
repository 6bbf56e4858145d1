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
        # Channel names this process has seen resolved to their ids (they do not change).
        self._ids: dict[str, str] = {}

    @property
    def client(self) -> DynamoDBClient:
        return self._client or clients.dynamodb()

    def _pace_item(self, channel: str) -> tuple[str, dict[str, Any]]:
        """The channel whose item keeps this channel's pace, and that item: a channel routed by name is
        paced on its id's item once a post has told which id it is (``channel_id`` on the name's item)."""
        channel = self._ids.get(channel, channel)
        item = self._item(channel)
        alias = item.get("channel_id", {}).get("S")
        if alias and alias != channel:
            self._ids[channel] = alias
            return alias, self._item(alias)
        return channel, item

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
            channel, item = self._pace_item(channel)
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

    def record_root(self, channel: str, incident_id: str, now: float, channel_id: str | None = None) -> None:
        target = channel_id or self._ids.get(channel, channel)
        if channel_id and channel_id != channel and self._ids.get(channel) != channel_id:
            self._remember_id(channel, channel_id, now)
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=channel_key(target),
                UpdateExpression="SET root_incident = :id, root_at = :at, expires_at = :exp",
                ExpressionAttributeValues={
                    ":id": {"S": incident_id},
                    ":at": {"N": _number(now)},
                    ":exp": {"N": str(int(now) + _PACE_TTL_SECONDS)},
                },
            )
        except Exception as exc:
            raise _translate(exc, "recording the channel's last alert") from exc

    def _remember_id(self, channel: str, channel_id: str, now: float) -> None:
        """Keep on the name's item which id Slack answered with, so every invocation paces them as one; the
        slots taken under the name carry over to the id (its next free slot is the later of the two)."""
        from botocore.exceptions import ClientError

        expires = {"N": str(int(now) + _PACE_TTL_SECONDS)}
        try:
            response = self.client.update_item(
                TableName=self.table_name,
                Key=channel_key(channel),
                UpdateExpression="SET channel_id = :id, expires_at = :exp",
                ExpressionAttributeValues={":id": {"S": channel_id}, ":exp": expires},
                ReturnValues="ALL_OLD",
            )
            taken = response.get("Attributes", {}).get("next_at")
            if taken is not None:
                self.client.update_item(
                    TableName=self.table_name,
                    Key=channel_key(channel_id),
                    UpdateExpression="SET next_at = :next, expires_at = :exp",
                    ConditionExpression="attribute_not_exists(next_at) OR next_at < :next",
                    ExpressionAttributeValues={":next": taken, ":exp": expires},
                )
        except ClientError as exc:
            if clients.error_code(exc) != "ConditionalCheckFailedException":  # (the id's pace is later already)
                raise _translate(exc, "recording the channel's id") from exc
        except Exception as exc:
            raise _translate(exc, "recording the channel's id") from exc
        self._ids[channel] = channel_id

    def channel_id(self, channel: str) -> str | None:
        if channel not in self._ids:
            alias = self._item(channel).get("channel_id", {}).get("S")
            if not alias:
                return None
            self._ids[channel] = alias
        return self._ids[channel]

    def last_root(self, channel: str) -> LastRoot | None:
        _, item = self._pace_item(channel)
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

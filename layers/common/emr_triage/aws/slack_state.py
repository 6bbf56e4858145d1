"""What people do from Slack, in the incidents table: mutes of a failure, and the interactions acted on.

Items (README "Data model"):

- ``pk = MUTES``, ``sk = <job key>\\n<fingerprint>``: one mute, expiring (TTL) when it ends. One small
  partition: a team has a handful of mutes, and ``/emr-triage mutes`` lists them with one Query.
- ``pk = INTERACTION#<key>``, ``sk = SEEN``: an interaction acted on (a button press's ``action_ts``, a
  slash command's ``trigger_id``), written once with a condition, kept ten minutes (TTL): Slack's retry
  of the same interaction, or a replay of its request, finds it and changes nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from emr_triage.aws import clients
from emr_triage.aws.incident_items import record_from_item, record_item
from emr_triage.aws.query_pages import query_pages
from emr_triage.exceptions import AwsAccessError, TransientError
from emr_triage.models.incident import Mute

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

MUTES_PK = "MUTES"


def _code(exc: Exception) -> str:
    from botocore.exceptions import ClientError

    return clients.error_code(exc) if isinstance(exc, ClientError) else ""


def _mute_key(job_key: str, fingerprint: str) -> dict[str, Any]:
    return {"pk": {"S": MUTES_PK}, "sk": {"S": f"{job_key}\n{fingerprint}"}}


class DynamoSlackState:
    """Mutes (:class:`~emr_triage.ports.MuteStore`) and the interaction ledger
    (:class:`~emr_triage.ports.InteractionLedger`) over the incidents table."""

    def __init__(self, table_name: str, client: DynamoDBClient | None = None) -> None:
        self.table_name = table_name
        self._client = client

    @property
    def client(self) -> DynamoDBClient:
        return self._client or clients.dynamodb()

    def _fail(self, exc: Exception, action: str) -> Exception:
        if clients.is_transient(exc):
            return TransientError(f"DynamoDB {action} on {self.table_name} failed transiently ({exc}); try again")
        if _code(exc) == "AccessDeniedException":
            return AwsAccessError(f"not allowed to {action} on table {self.table_name}: check the function role")
        return exc

    # -- mutes --------------------------------------------------------------------------------------
    def put(self, mute: Mute) -> None:
        item = record_item(mute, _mute_key(mute.job_key, mute.fingerprint), int(mute.until.timestamp()))
        try:
            self.client.put_item(TableName=self.table_name, Item=item)
        except Exception as exc:
            raise self._fail(exc, "PutItem") from exc

    def delete(self, job_key: str, fingerprint: str) -> bool:
        try:
            response = self.client.delete_item(
                TableName=self.table_name, Key=_mute_key(job_key, fingerprint), ReturnValues="ALL_OLD"
            )
        except Exception as exc:
            raise self._fail(exc, "DeleteItem") from exc
        return bool(response.get("Attributes"))

    def _query(self, prefix: str) -> list[Mute]:
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "pk = :pk" + (" AND begins_with(sk, :prefix)" if prefix else ""),
            "ExpressionAttributeValues": {":pk": {"S": MUTES_PK}, **({":prefix": {"S": prefix}} if prefix else {})},
            "ConsistentRead": True,
        }
        return [record_from_item(item, Mute) for item in query_pages(self.client, request, self._fail)]

    def for_job(self, job_key: str) -> list[Mute]:
        return self._query(f"{job_key}\n")

    def all(self) -> list[Mute]:
        return self._query("")

    # -- the interaction ledger -----------------------------------------------------------------------
    def first_time(self, key: str, expires_at: int) -> bool:
        item = {"pk": {"S": f"INTERACTION#{key}"}, "sk": {"S": "SEEN"}, "expires_at": {"N": str(expires_at)}}
        try:
            self.client.put_item(TableName=self.table_name, Item=item, ConditionExpression="attribute_not_exists(pk)")
        except Exception as exc:
            if _code(exc) == "ConditionalCheckFailedException":
                return False
            raise self._fail(exc, "PutItem") from exc
        return True

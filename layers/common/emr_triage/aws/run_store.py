"""Runs in the incidents table: each run being watched, and the runs that ended.

Keys (README "Data model")::

    pk = RUN#<run id>              sk = RUN                          a run seen starting (small; versioned)
    pk = JOB#<job key>             sk = DONE#<ended at>#<run id>     a successful run's duration (baseline)
    pk = DAY#<yyyy-mm-dd>          sk = <ended at>#<run id>          every run that ended that day (digest)
    pk = CLAIM#DIGEST#<day>#<channel>  sk = CLAIM                    a digest posted (once per channel and week)

A day's partition takes one write per run that ends: far below a partition's 1,000 writes per second
even for thousands of runs a day. The digest reads a fortnight: 14 Queries.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from emr_triage.aws import clients
from emr_triage.aws.incident_items import record_from_item, record_item, utc_key
from emr_triage.aws.query_pages import query_pages
from emr_triage.exceptions import AwsAccessError, TransientError
from emr_triage.models.runs import ActiveRun, FinishedRun

if TYPE_CHECKING:
    from collections.abc import Callable

    from mypy_boto3_dynamodb import DynamoDBClient

_UPDATE_ATTEMPTS = 8


def run_key(run_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"RUN#{run_id}"}, "sk": {"S": "RUN"}}


class DynamoRunStore:
    """The run store over the incidents table (see the module docstring)."""

    def __init__(self, table_name: str, client: DynamoDBClient | None = None, *, page_items: int | None = None) -> None:
        self.table_name = table_name
        self._client = client
        self.page_items = page_items  # items per Query page (None: DynamoDB's 1 MB pages)

    @property
    def client(self) -> DynamoDBClient:
        return self._client or clients.dynamodb()

    def _fail(self, exc: Exception, action: str) -> Exception:
        from botocore.exceptions import ClientError

        if clients.is_transient(exc):
            return TransientError(f"DynamoDB {action} on {self.table_name} failed transiently ({exc}); retrying")
        if isinstance(exc, ClientError) and clients.error_code(exc) in (
            "AccessDeniedException",
            "ResourceNotFoundException",
        ):
            return AwsAccessError(f"DynamoDB {action} on table {self.table_name} refused: {exc}")
        return exc

    def _put(self, item: dict[str, Any], condition: dict[str, Any] | None = None) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.put_item(TableName=self.table_name, Item=item, **(condition or {}))
        except ClientError as exc:
            if clients.error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise self._fail(exc, "PutItem") from exc
        except Exception as exc:
            raise self._fail(exc, "PutItem") from exc
        return True

    def start(self, run: ActiveRun, expires_at: int) -> bool:
        item = record_item(run.model_copy(update={"version": 1}), run_key(run.run_id), expires_at)
        return self._put(item, {"ConditionExpression": "attribute_not_exists(pk)"})

    def _item(self, run_id: str) -> dict[str, Any] | None:
        try:
            response = self.client.get_item(TableName=self.table_name, Key=run_key(run_id), ConsistentRead=True)
        except Exception as exc:
            raise self._fail(exc, "GetItem") from exc
        return response.get("Item")

    def get(self, run_id: str) -> ActiveRun | None:
        item = self._item(run_id)
        return record_from_item(item, ActiveRun) if item else None

    def update(self, run_id: str, mutate: Callable[[ActiveRun], ActiveRun | None]) -> ActiveRun | None:
        """Apply ``mutate`` and write the run back if its version is still the one read (else re-read and
        re-apply); the run as stored after the call."""
        for _ in range(_UPDATE_ATTEMPTS):
            item = self._item(run_id)
            if item is None:
                return None
            stored = record_from_item(item, ActiveRun)
            changed = mutate(stored.model_copy(deep=True))
            if changed is None:
                return stored
            changed.version = stored.version + 1
            new = record_item(changed, run_key(run_id), int(item["expires_at"]["N"]))
            if self._put(
                new,
                {
                    "ConditionExpression": "#v = :v",
                    "ExpressionAttributeNames": {"#v": "version"},
                    "ExpressionAttributeValues": {":v": {"N": str(stored.version)}},
                },
            ):
                return changed
        raise TransientError(f"run {run_id}: {_UPDATE_ATTEMPTS} concurrent updates in a row; retrying the event")

    def record_finished(self, run: FinishedRun, expires_at: int) -> None:
        at = utc_key(run.ended_at)
        day = {"pk": {"S": f"DAY#{at[:10]}"}, "sk": {"S": f"{at}#{run.run_id}"}}
        self._put(record_item(run, day, expires_at))
        if run.outcome == "SUCCEEDED" and run.duration_seconds is not None:
            done = {"pk": {"S": f"JOB#{run.job_key}"}, "sk": {"S": f"DONE#{at}#{run.run_id}"}}
            self._put(record_item(run, done, expires_at))

    def _query(self, request: dict[str, Any], most: int | None = None) -> list[dict[str, Any]]:
        request = {"TableName": self.table_name, **request}
        return query_pages(self.client, request, self._fail, most=most, page_items=self.page_items)

    def durations(self, job_key: str, limit: int) -> list[int]:
        items = self._query(
            {
                "KeyConditionExpression": "pk = :job AND begins_with(sk, :done)",
                "ExpressionAttributeValues": {":job": {"S": f"JOB#{job_key}"}, ":done": {"S": "DONE#"}},
                "ScanIndexForward": False,
                "ProjectionExpression": "duration_seconds",
                **({} if self.page_items else {"Limit": limit}),
            },
            most=limit,
        )
        return [int(item["duration_seconds"]["N"]) for item in items if "duration_seconds" in item]

    def finished_between(self, since: datetime, until: datetime) -> list[FinishedRun]:
        runs: list[FinishedRun] = []
        day = since.astimezone(UTC).date()
        while day <= until.astimezone(UTC).date():
            items = self._query(
                {
                    "KeyConditionExpression": "pk = :day AND sk BETWEEN :low AND :high",
                    "ExpressionAttributeValues": {
                        ":day": {"S": f"DAY#{day.isoformat()}"},
                        ":low": {"S": utc_key(since)},
                        ":high": {"S": utc_key(until) + "#"},
                    },
                }
            )
            runs += [record_from_item(item, FinishedRun) for item in items]
            day += timedelta(days=1)
        return [run for run in runs if since <= run.ended_at < until]

    def first_time(self, key: str, expires_at: int) -> bool:
        item = {"pk": {"S": f"CLAIM#{key}"}, "sk": {"S": "CLAIM"}, "expires_at": {"N": str(expires_at)}}
        return self._put(item, {"ConditionExpression": "attribute_not_exists(pk)"})

    def forget(self, key: str) -> None:
        try:
            self.client.delete_item(TableName=self.table_name, Key={"pk": {"S": f"CLAIM#{key}"}, "sk": {"S": "CLAIM"}})
        except Exception as exc:
            raise self._fail(exc, "DeleteItem") from exc

"""Incidents in DynamoDB (single table).

Keys (documented in README "Data model")::

    pk = INCIDENT#<incident_id>   sk = INCIDENT
        gsi1pk = CLUSTER#<cluster_id> | APP#<application_id>   gsi1sk = <status>#<opened_at>
        gsi2pk = SIG#<fingerprint>   gsi2sk = <failed_at>#<incident_id>     (once diagnosed)
    pk = JOB#<job key>            sk = LAST#SUCCEEDED | LAST#FAILED          (the latest run of each outcome)
    pk = INCIDENT#<incident_id>   sk = LOG#<digest of source and etag>       (logs kept for the next check)
    pk = CLUSTER#<cluster_id>     sk = INFRA#<at>#<event id>                 (capacity and instance events)
    expires_at = epoch seconds (the table's TTL attribute)

Every write is conditional: ``create`` only if the incident does not exist (natural-key dedupe), and
``update`` (an UpdateItem of the changed attributes) only if the stored ``version`` is the one read
(optimistic concurrency, retried on conflict after a random back-off). The items' layout (what an
incident looks like stored, trimmed to fit) is in ``incident_items``.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from emr_triage.aws import clients
from emr_triage.aws.incident_items import (
    INCIDENT_SK,
    OPEN_PK,
    bounded_log,
    from_item,
    incident_key,
    job_run_key,
    record_from_item,
    record_item,
    recorded_log_key,
    storable,
    summary_from_item,
    to_item,
    utc_key,
)
from emr_triage.aws.query_pages import query_pages
from emr_triage.exceptions import AwsAccessError, TransientError, too_large
from emr_triage.models.incident import Incident, IncidentSummary, InfraEvent, JobRun, RecordedLog, RunOutcome
from emr_triage.ports import Mutation

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

GSI1 = "gsi1"
GSI2 = "gsi2"
GSI3 = "gsi3"
# A signature seen more often than this within the retention is counted as "at least" this.
MAX_SIGNATURE_ITEMS = 2000
_UPDATE_ATTEMPTS = 8
# After a version conflict, wait a random time up to this many seconds times 2**(attempt - 1) (full
# jitter, capped at 1 s): concurrent writers of one incident then spread out instead of colliding again.
_BACK_OFF_SECONDS = 0.02
MAX_INFRA_TEXT = 2_000
# The capacity and instance events one incident is checked against (the newest in its window).
MAX_INFRA_EVENTS = 100


def _back_off(attempt: int) -> None:
    time.sleep(random.uniform(0, min(1.0, _BACK_OFF_SECONDS * 2 ** (attempt - 1))))  # noqa: S311 - jitter, not a secret


class DynamoIncidentRepository:
    """The incident repository over one DynamoDB table."""

    def __init__(self, table_name: str, client: DynamoDBClient | None = None, *, page_items: int | None = None) -> None:
        self.table_name = table_name
        self._client = client
        # Items per Query page (None: DynamoDB's own 1 MB pages); small in tests, to see paging happen.
        self.page_items = page_items
        # The item of each incident as this invocation last read or wrote it: the base of its next update,
        # which then needs no GetItem first (the write is conditional on that item's version, so a change
        # made meanwhile by anyone else fails it, and the update reads and retries as before).
        self._bases: dict[str, dict[str, Any]] = {}

    @property
    def client(self) -> DynamoDBClient:
        return self._client or clients.dynamodb()

    def _fail(self, exc: Exception, action: str) -> Exception:
        from botocore.exceptions import ClientError

        if clients.is_transient(exc):
            return TransientError(
                f"DynamoDB {action} on {self.table_name} failed transiently ({exc}); retrying the event"
            )
        if isinstance(exc, ClientError):
            code = clients.error_code(exc)
            if code == "ResourceNotFoundException":
                return AwsAccessError(
                    f"DynamoDB table {self.table_name!r} does not exist: check INCIDENTS_TABLE (set by template.yaml)"
                )
            if code == "AccessDeniedException":
                return AwsAccessError(f"not allowed to {action} on table {self.table_name}: check the function role")
        return exc

    def _put(self, item: dict[str, Any], **condition: Any) -> bool:
        """Write an item, under a condition when given (``ConditionExpression`` and its values); False when
        the condition does not hold. Other failures are raised as our errors."""
        return self._conditional(
            "PutItem", item["pk"]["S"], lambda: self.client.put_item(TableName=self.table_name, Item=item, **condition)
        )

    def _conditional(self, action: str, pk: str, write: Callable[[], object]) -> bool:
        """Run a conditional write: False when its condition does not hold; DynamoDB's refusal of an item
        over its size limit raised as the error naming the incident; other failures as our errors."""
        from botocore.exceptions import ClientError

        try:
            write()
        except ClientError as exc:
            if clients.error_code(exc) == "ConditionalCheckFailedException":
                return False
            if clients.error_code(exc) == "ValidationException" and "size" in str(exc).lower():
                raise too_large(pk.removeprefix("INCIDENT#")) from exc
            raise self._fail(exc, action) from exc
        except Exception as exc:
            raise self._fail(exc, action) from exc
        return True

    def begin_invocation(self) -> None:
        """Forget the items kept as update bases: a new invocation starts from what the table says."""
        self._bases.clear()

    def create(self, incident: Incident) -> bool:
        """Store a new incident; ``False`` if one with the same id exists (a duplicate event)."""
        item = to_item(incident)
        created = self._put(item, ConditionExpression="attribute_not_exists(pk)")
        if created:
            self._bases[incident.incident_id] = item
        return created

    def _get_item(self, incident_id: str) -> dict[str, Any] | None:
        try:
            response = self.client.get_item(
                TableName=self.table_name, Key=incident_key(incident_id), ConsistentRead=True
            )
        except Exception as exc:
            raise self._fail(exc, "GetItem") from exc
        return response.get("Item")

    def get(self, incident_id: str) -> Incident | None:
        item = self._get_item(incident_id)
        if item is None:
            self._bases.pop(incident_id, None)
            return None
        self._bases[incident_id] = item
        return from_item(item)

    def _write_changes(self, old: dict[str, Any], new: dict[str, Any], version: int) -> bool:
        """Write what differs between two items of one incident (UpdateItem of the changed attributes,
        the others untouched), if its stored version is still ``version``; False when it is not. A claim
        or a recorded Slack ts then writes a few hundred bytes, not the whole 30 KB incident."""
        changed = {name: value for name, value in new.items() if name not in ("pk", "sk") and old.get(name) != value}
        gone = [name for name in old if name not in new]
        names = {f"#a{i}": name for i, name in enumerate([*changed, *gone])}
        by_name = {name: alias for alias, name in names.items()}
        expression = "SET " + ", ".join(f"{by_name[name]} = :v{i}" for i, name in enumerate(changed))
        if gone:
            expression += " REMOVE " + ", ".join(by_name[name] for name in gone)
        values = {f":v{i}": value for i, value in enumerate(changed.values())}
        values[":version"] = {"N": str(version)}
        return self._conditional(
            "UpdateItem",
            new["pk"]["S"],
            lambda: self.client.update_item(
                TableName=self.table_name,
                Key={"pk": new["pk"], "sk": new["sk"]},
                UpdateExpression=expression,
                ConditionExpression="#version = :version",
                ExpressionAttributeNames={**names, "#version": "version"},
                ExpressionAttributeValues=values,
            ),
        )

    def update(self, incident_id: str, mutate: Mutation) -> Incident | None:
        """Apply ``mutate`` to the stored incident and write it back if nobody changed it meanwhile.

        ``mutate`` receives a copy and returns the new incident, or ``None`` for "no change". On a
        version conflict the incident is re-read and ``mutate`` applied again, so it must be a pure
        function of the incident it is given.

        Returns
        -------
        Incident | None
            The stored incident after the update (unchanged if ``mutate`` returned None), or None if
            there is no such incident.
        """
        for attempt in range(_UPDATE_ATTEMPTS):
            if attempt:
                _back_off(attempt)
            # The first attempt starts from the item this invocation last read or wrote, if any; a
            # decision to change nothing is only taken on a fresh read (a kept item may be behind).
            kept = self._bases.pop(incident_id, None) if attempt == 0 else None
            stored = kept if kept is not None else self._get_item(incident_id)
            if stored is None:
                return None
            current = from_item(stored)
            changed = mutate(current.model_copy(deep=True))
            if changed is None and kept is not None:
                stored = self._get_item(incident_id)
                if stored is None:
                    return None
                current = from_item(stored)
                changed = mutate(current.model_copy(deep=True))
            if changed is None:
                self._bases[incident_id] = stored
                return current
            changed = changed.model_copy(update={"version": current.version + 1, "updated_at": datetime.now(UTC)})
            body = storable(changed)
            item = to_item(changed, body)
            if self._write_changes(stored, item, current.version):
                self._bases[incident_id] = item
                return Incident.model_validate(body)
        raise TransientError(
            f"incident {incident_id} kept changing under us ({_UPDATE_ATTEMPTS} version conflicts); retrying the event"
        )

    def list_incidents(
        self, *, cluster_id: str | None = None, open_only: bool = False, since: datetime | None = None, limit: int = 500
    ) -> list[Incident]:
        """Incidents for the ``incidents list`` command, newest failure first: a cluster's through the
        cluster index, else a scan of the incident items (a CLI read, not a hot path), at most ``limit``."""
        found: list[Incident] = []
        if cluster_id:
            request: dict[str, Any] = {
                "TableName": self.table_name,
                "IndexName": GSI1,
                "KeyConditionExpression": "gsi1pk = :group",
                "ExpressionAttributeValues": {":group": {"S": f"CLUSTER#{cluster_id}"}},
            }
            operation = self.client.query
        else:
            request = {
                "TableName": self.table_name,
                "FilterExpression": "sk = :incident",
                "ExpressionAttributeValues": {":incident": {"S": INCIDENT_SK}},
            }
            operation = self.client.scan  # type: ignore[assignment]
        while len(found) < limit:
            try:
                response = operation(**request)
            except Exception as exc:
                raise self._fail(exc, "Query" if cluster_id else "Scan") from exc
            for item in response.get("Items", []):
                incident = from_item(item)
                if (not open_only or incident.status == "OPEN") and (since is None or incident.failed_at >= since):
                    found.append(incident)
            if "LastEvaluatedKey" not in response:
                break
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        return sorted(found, key=lambda i: i.failed_at, reverse=True)[:limit]

    def all_items(self) -> list[dict[str, Any]]:
        """Every item of the table (attribute-value format): the replay command saves the embedded table."""
        items: list[dict[str, Any]] = []
        request: dict[str, Any] = {"TableName": self.table_name}
        while True:
            response = self.client.scan(**request)
            items += response.get("Items", [])
            if "LastEvaluatedKey" not in response:
                return items
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def _query_pages(self, request: dict[str, Any], most: int | None = None) -> list[dict[str, Any]]:
        """The items of a Query, page after page (each at most 1 MB), up to ``most`` of them."""
        return query_pages(self.client, request, self._fail, most=most, page_items=self.page_items)

    def open_incidents(self, *, cluster_id: str | None = None, application_id: str | None = None) -> list[Incident]:
        """Open incidents of a cluster (or EMR Serverless application), oldest first: every page of them
        (a long-lived cluster's open incidents can exceed one; the newest, which log arrivals and folding
        look for, are on the last)."""
        group = f"CLUSTER#{cluster_id}" if cluster_id else f"APP#{application_id}"
        items = self._query_pages(
            {
                "TableName": self.table_name,
                "IndexName": GSI1,
                "KeyConditionExpression": "gsi1pk = :group AND begins_with(gsi1sk, :open)",
                "ExpressionAttributeValues": {":group": {"S": group}, ":open": {"S": "OPEN#"}},
            }
        )
        return [from_item(item) for item in items]

    def resolved_incidents(self, cluster_id: str, *, opened_since: datetime) -> list[Incident]:
        """Resolved incidents of a cluster opened since ``opened_since``: one Query of the cluster index
        (``gsi1sk`` is ``<status>#<opened_at>``), every page."""
        items = self._query_pages(
            {
                "TableName": self.table_name,
                "IndexName": GSI1,
                "KeyConditionExpression": "gsi1pk = :group AND gsi1sk BETWEEN :low AND :high",
                "ExpressionAttributeValues": {
                    ":group": {"S": f"CLUSTER#{cluster_id}"},
                    ":low": {"S": f"RESOLVED#{opened_since.isoformat()}"},
                    ":high": {"S": "RESOLVED#~"},
                },
            }
        )
        return [from_item(item) for item in items]

    def open_summaries(self, limit: int = 50) -> list[IncidentSummary]:
        """Open alerted incidents, newest first, at most ``limit``: one Query of the sparse open-incidents
        index (gsi3), whose projection holds only a listing's fields."""
        items = self._query_pages(
            {
                "TableName": self.table_name,
                "IndexName": GSI3,
                "KeyConditionExpression": "gsi3pk = :open",
                "ExpressionAttributeValues": {":open": {"S": OPEN_PK}},
                "ScanIndexForward": False,
            },
            most=limit,
        )
        return [summary_from_item(item) for item in items]

    def _signature_query(self, fingerprint: str, low: str, high: str, **extra: Any) -> dict[str, Any]:
        return {
            "TableName": self.table_name,
            "IndexName": GSI2,
            "KeyConditionExpression": "gsi2pk = :sig AND gsi2sk BETWEEN :low AND :high",
            "ExpressionAttributeValues": {
                ":sig": {"S": f"SIG#{fingerprint}"},
                ":low": {"S": low},
                ":high": {"S": high},
            },
            **extra,
        }

    @staticmethod
    def _signature_entry(item: dict[str, Any]) -> tuple[datetime, str]:
        at, _, incident_id = item["gsi2sk"]["S"].partition("#")
        return datetime.strptime(at, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC), incident_id

    def signature_times(self, fingerprint: str, *, since: datetime, until: datetime, exclude: str) -> list[datetime]:
        """When the other incidents with this failure signature failed between ``since`` and ``until``,
        newest first (at most MAX_SIGNATURE_ITEMS: the newest are kept; the index holds keys only)."""
        query = self._signature_query(fingerprint, utc_key(since), utc_key(until) + "#~", ScanIndexForward=False)
        # One more than the cap: the excluded incident is at most one of them.
        entries = (self._signature_entry(item) for item in self._query_pages(query, most=MAX_SIGNATURE_ITEMS + 1))
        return [at for at, incident_id in entries if incident_id != exclude][:MAX_SIGNATURE_ITEMS]

    def signature_first_seen(self, fingerprint: str, *, until: datetime, exclude: str) -> datetime | None:
        """When the first other incident with this signature (still in the table) failed, if any."""
        query = self._signature_query(fingerprint, "0", utc_key(until) + "#~", ScanIndexForward=True, Limit=2)
        try:
            response = self.client.query(**query)
        except Exception as exc:
            raise self._fail(exc, "Query") from exc
        entries = [self._signature_entry(item) for item in response.get("Items", [])]
        return next((at for at, incident_id in entries if incident_id != exclude), None)

    def record_run(self, run: JobRun, expires_at: int) -> bool:
        """Remember the run if it is the job's latest with its outcome (a conditional write: an older event
        delivered late never overwrites a newer run). False: a newer (or the same) run is stored."""
        item = record_item(run, job_run_key(run.job_key, run.outcome), expires_at)
        item["at_key"] = {"S": utc_key(run.at)}
        return self._put(
            item,
            ConditionExpression="attribute_not_exists(pk) OR at_key < :at",
            ExpressionAttributeValues={":at": {"S": utc_key(run.at)}},
        )

    def record_infra(self, event: InfraEvent, expires_at: int) -> None:
        """Keep a cluster's capacity or instance event (the same event again overwrites itself). Its text
        is cut to ``MAX_INFRA_TEXT`` characters: it is one line of an alert, and an event sent directly
        (not through EventBridge's 256 KB limit) must not exceed an item's 400 KB."""
        event = event.model_copy(update={"what": event.what[:MAX_INFRA_TEXT]})
        key = {
            "pk": {"S": f"CLUSTER#{event.cluster_id}"},
            "sk": {"S": f"INFRA#{utc_key(event.at)}#{event.event_id or ''}"},
        }
        self._put(record_item(event, key, expires_at))

    def infra_events(self, cluster_id: str, *, since: datetime, until: datetime) -> list[InfraEvent]:
        """A cluster's capacity and instance events between ``since`` and ``until``, oldest first: the
        newest :data:`MAX_INFRA_EVENTS` of them (those closest to the failure), across pages."""
        items = self._query_pages(
            {
                "TableName": self.table_name,
                "KeyConditionExpression": "pk = :cluster AND sk BETWEEN :low AND :high",
                "ExpressionAttributeValues": {
                    ":cluster": {"S": f"CLUSTER#{cluster_id}"},
                    ":low": {"S": f"INFRA#{utc_key(since)}"},
                    ":high": {"S": f"INFRA#{utc_key(until)}#~"},
                },
                "ScanIndexForward": False,
            },
            most=MAX_INFRA_EVENTS,
        )
        return [record_from_item(item, InfraEvent) for item in reversed(items)]

    def record_log(self, incident_id: str, log: RecordedLog, expires_at: int) -> bool:
        """Keep a log's findings as its own item under the incident (``sk = LOG#<digest of source and
        etag>``), written once: concurrent logs write different items, and a redelivered one is refused."""
        key = incident_key(incident_id)
        key["sk"] = {"S": recorded_log_key(log.read.source, log.read.etag)}
        return self._put(record_item(bounded_log(log), key, expires_at), ConditionExpression="attribute_not_exists(sk)")

    def recorded_logs(self, incident_id: str) -> list[RecordedLog]:
        items = self._query_pages(
            {
                "TableName": self.table_name,
                "KeyConditionExpression": "pk = :pk AND begins_with(sk, :log)",
                "ExpressionAttributeValues": {":pk": incident_key(incident_id)["pk"], ":log": {"S": "LOG#"}},
                "ConsistentRead": True,
            }
        )
        return [record_from_item(item, RecordedLog) for item in items]

    def last_run(self, job_key: str, outcome: RunOutcome) -> JobRun | None:
        """The job's latest run with this outcome, if one is remembered."""
        try:
            response = self.client.get_item(TableName=self.table_name, Key=job_run_key(job_key, outcome))
        except Exception as exc:
            raise self._fail(exc, "GetItem") from exc
        item = response.get("Item")
        return record_from_item(item, JobRun) if item else None

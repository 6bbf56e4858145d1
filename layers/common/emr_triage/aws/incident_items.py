"""The incident table's items: keys, an incident as stored (redacted, trimmed to fit), small records."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel

from emr_triage.analysis.redact import redact_strings
from emr_triage.models.incident import Incident, IncidentSummary, RecordedLog, RunOutcome

if TYPE_CHECKING:
    pass


INCIDENT_SK = "INCIDENT"


def utc_key(at: datetime) -> str:
    """A datetime as a sortable key (UTC, seconds)."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def job_run_key(job_key: str, outcome: RunOutcome) -> dict[str, Any]:
    return {"pk": {"S": f"JOB#{job_key}"}, "sk": {"S": f"LAST#{outcome}"}}


def incident_key(incident_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"INCIDENT#{incident_id}"}, "sk": {"S": INCIDENT_SK}}


def _group_key(incident: Incident) -> str:
    if incident.cluster_id:
        return f"CLUSTER#{incident.cluster_id}"
    return f"APP#{incident.application_id}"


# DynamoDB items are limited to 400 KB; the JSON size (UTF-8) overestimates the item size.
ITEM_BUDGET_BYTES = 300_000


def json_bytes(body: Any) -> int:
    return len(json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))


def _trim_secondary_evidence(body: dict[str, Any]) -> None:
    for finding in body["findings"][1:]:
        finding["evidence"] = finding["evidence"][:3]


def _trim_history(body: dict[str, Any]) -> None:
    body["timeline"] = body["timeline"][-20:]
    body["logs_analysed"] = body["logs_analysed"][-10:]


def _trim_evidence_lines(body: dict[str, Any]) -> None:
    for finding in body["findings"]:
        finding["evidence"] = [line[:200] for line in finding["evidence"][:10]]
    if body.get("diagnosis"):
        body["diagnosis"]["evidence"] = [line[:200] for line in body["diagnosis"]["evidence"][:10]]


def _trim_read_notes(body: dict[str, Any]) -> None:
    for read in body["logs_analysed"]:
        read["notes"] = [note[:200] for note in read["notes"][:3]]


def _drop_finding_evidence(body: dict[str, Any]) -> None:
    for finding in body["findings"]:
        finding["evidence"] = []


_TRIMS = (_trim_secondary_evidence, _trim_history, _trim_evidence_lines, _trim_read_notes, _drop_finding_evidence)


def storable(incident: Incident) -> dict[str, Any]:
    """The incident as stored: every string redacted (defence in depth: names, reasons and notes too, not
    only log lines), and trimmed to ITEM_BUDGET_BYTES, least useful parts first."""
    body: dict[str, Any] = redact_strings(incident.model_dump(mode="json"))
    for trim in _TRIMS:
        if json_bytes(body) <= ITEM_BUDGET_BYTES:
            break
        trim(body)
    return body


def to_item(incident: Incident, body: dict[str, Any] | None = None) -> dict[str, Any]:
    """The DynamoDB item (attribute-value format) of an incident (``body``: its :func:`storable` form,
    when the caller already has it)."""
    from boto3.dynamodb.types import TypeSerializer

    serializer = TypeSerializer()
    body = storable(incident) if body is None else body
    item = {key: serializer.serialize(_decimals(value)) for key, value in body.items()}
    item.update(incident_key(incident.incident_id))
    item["gsi1pk"] = {"S": _group_key(incident)}
    item["gsi1sk"] = {"S": f"{incident.status}#{incident.opened_at.isoformat()}"}
    if incident.diagnosis is not None and incident.diagnosis.fingerprint:
        item["gsi2pk"] = {"S": f"SIG#{incident.diagnosis.fingerprint}"}
        item["gsi2sk"] = {"S": f"{utc_key(incident.failed_at)}#{incident.incident_id}"}
    if incident.status == "OPEN" and (incident.slack or incident.muted_under) and not incident.folded_into:
        # The open-incidents index (gsi3, sparse): only alerted incidents still open are in it (alerted in
        # a muted failure's thread included).
        item["gsi3pk"] = {"S": OPEN_PK}
        item["gsi3sk"] = {"S": f"{utc_key(incident.opened_at)}#{incident.incident_id}"}
    if incident.diagnosis is not None:
        item["verdict"] = {"S": f"{incident.diagnosis.category}: {incident.diagnosis.title}"[:300]}
    item["expires_at"] = {"N": str(incident.expires_at)}
    return item


OPEN_PK = "OPEN"
# What the open-incidents index projects (template.yaml's gsi3 NonKeyAttributes): a listing's fields.
SUMMARY_ATTRIBUTES = (
    "incident_id", "kind", "status", "severity", "cluster_id", "cluster_name", "step_name", "application_id",
    "job_run_name", "spark_app_name", "failed_at", "opened_at", "slack", "acknowledged_by", "mute", "muted_under",
    "verdict",
)  # fmt: skip


def summary_from_item(item: dict[str, Any]) -> IncidentSummary:
    """An open incident's summary, read from its gsi3 projection."""
    from boto3.dynamodb.types import TypeDeserializer

    deserializer = TypeDeserializer()
    data = {key: _plain(deserializer.deserialize(item[key])) for key in SUMMARY_ATTRIBUTES if key in item}
    return IncidentSummary.model_validate(data)


def _decimals(value: Any) -> Any:
    """Floats as Decimal: DynamoDB has no float type."""
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, dict):
        return {k: _decimals(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decimals(v) for v in value]
    return value


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


RecordT = TypeVar("RecordT", bound=BaseModel)


# A recorded log's item is kept well under DynamoDB's 400 KB: its evidence is cut first.
RECORDED_LOG_BUDGET_BYTES = 100_000


def recorded_log_key(source: str, etag: str | None) -> str:
    digest = hashlib.sha256(f"{source}\n{etag or ''}".encode()).hexdigest()[:24]
    return f"LOG#{digest}"


def bounded_log(log: RecordedLog) -> RecordedLog:
    """The log with its findings' evidence cut until its item fits RECORDED_LOG_BUDGET_BYTES."""
    for lines in (None, 10, 3, 0):
        if lines is not None:
            log = log.model_copy(
                update={"findings": [f.model_copy(update={"evidence": f.evidence[:lines]}) for f in log.findings]}
            )
        if json_bytes(log.model_dump(mode="json")) <= RECORDED_LOG_BUDGET_BYTES:
            return log
    return log.model_copy(update={"findings": log.findings[:20]})


def record_item(record: BaseModel, key: dict[str, Any], expires_at: int) -> dict[str, Any]:
    """The item of a small record (a job's last run, a cluster's infrastructure event): its fields,
    redacted, under ``key``, expiring at ``expires_at``."""
    from boto3.dynamodb.types import TypeSerializer

    serializer = TypeSerializer()
    body = redact_strings(record.model_dump(mode="json"))
    item = {name: serializer.serialize(value) for name, value in body.items() if value is not None}
    item.update(key)
    item["expires_at"] = {"N": str(expires_at)}
    return item


def record_from_item(item: dict[str, Any], model: type[RecordT]) -> RecordT:
    """A small record read back from its item (keys and bookkeeping attributes left out)."""
    from boto3.dynamodb.types import TypeDeserializer

    deserializer = TypeDeserializer()
    data = {name: _plain(deserializer.deserialize(value)) for name, value in item.items()}
    return model.model_validate({name: value for name, value in data.items() if name in model.model_fields})


def from_item(item: dict[str, Any]) -> Incident:
    """The incident stored in a DynamoDB item."""
    from boto3.dynamodb.types import TypeDeserializer

    deserializer = TypeDeserializer()
    data = {key: _plain(deserializer.deserialize(value)) for key, value in item.items()}
    for key in ("pk", "sk", "gsi1pk", "gsi1sk", "gsi2pk", "gsi2sk", "gsi3pk", "gsi3sk", "verdict"):
        data.pop(key, None)
    return Incident.model_validate(data)

"""What one incident costs in DynamoDB: the demo scenario replayed on the embedded stack (as ``make demo``
does: moto, Slack to the console, log checks due at once), every DynamoDB call counted at botocore.

Counted by wrapping ``botocore.client.BaseClient._make_api_call``, so every client is seen whenever it was
made (the package's cached clients, the replay's own), and calls that fail (a refused conditional write
still costs a write) are counted too:

- writes: PutItem, UpdateItem and DeleteItem calls, and each request of a BatchWriteItem or
  TransactWriteItems (each is a write of one item);
- KB written: the size of what the writes send, serialized as botocore serializes the request body (JSON
  of the attribute-value items): a put's whole item, an update's key and values, a delete's key. DynamoDB bills an
  update by the whole item's size after it and writes a projected index again; neither is in this figure;
- KB read: the items GetItem, BatchGetItem, TransactGetItems, Query and Scan return, serialized the same way;
- KB = 1,024 bytes.

``python tests/bench/dynamodb_cost.py [scenario folder]`` prints the figures alone.
"""

from __future__ import annotations

import json
import sys
import threading
import warnings
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stdout
from dataclasses import dataclass, field
from io import StringIO
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "events" / "scenarios" / "spark-step-memory-kill"
KB = 1024
WRITES = frozenset({"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"})
READS = frozenset({"GetItem", "BatchGetItem", "TransactGetItems", "Query", "Scan"})
# Printed per incident even when not called, so that a line going to 0 shows.
SHOWN = ("PutItem", "UpdateItem", "DeleteItem", "GetItem", "Query")


def _bytes(value: Any) -> int:
    """The size of an attribute-value document serialized as botocore serializes a DynamoDB request body
    (``json.dumps`` with its defaults)."""
    return len(json.dumps(value, default=str).encode("utf-8"))


def _written(operation: str, params: dict[str, Any]) -> tuple[int, int]:
    """(item writes, bytes sent) of a write request."""
    if operation == "PutItem":
        return 1, _bytes(params.get("Item", {}))
    if operation == "UpdateItem":
        return 1, _bytes(params.get("Key", {})) + _bytes(params.get("ExpressionAttributeValues", {}))
    if operation == "DeleteItem":
        return 1, _bytes(params.get("Key", {}))
    if operation == "BatchWriteItem":
        requests = [r for table in params.get("RequestItems", {}).values() for r in table]
        sizes = [
            _bytes(r.get("PutRequest", {}).get("Item") or r.get("DeleteRequest", {}).get("Key", {})) for r in requests
        ]
        return len(requests), sum(sizes)
    if operation == "TransactWriteItems":
        count = size = 0
        for entry in params.get("TransactItems", []):
            if "Put" in entry:
                count, size = count + 1, size + _bytes(entry["Put"].get("Item", {}))
            elif "Update" in entry:
                update = entry["Update"]
                count += 1
                size += _bytes(update.get("Key", {})) + _bytes(update.get("ExpressionAttributeValues", {}))
            elif "Delete" in entry:
                count, size = count + 1, size + _bytes(entry["Delete"].get("Key", {}))
        return count, size
    return 0, 0


def _read(operation: str, response: dict[str, Any]) -> int:
    """Bytes of the items a read returned."""
    if operation == "GetItem":
        return _bytes(response["Item"]) if "Item" in response else 0
    if operation in ("Query", "Scan"):
        return sum(_bytes(item) for item in response.get("Items", []))
    if operation == "BatchGetItem":
        return sum(_bytes(item) for items in response.get("Responses", {}).values() for item in items)
    if operation == "TransactGetItems":
        return sum(_bytes(r["Item"]) for r in response.get("Responses", []) if "Item" in r)
    return 0


@dataclass
class DynamoDBUse:
    """The DynamoDB calls made while counting: by operation, item writes, bytes written and read, and the
    writes DynamoDB refused on their condition."""

    calls: Counter[str] = field(default_factory=Counter)
    writes: int = 0
    bytes_written: int = 0
    bytes_read: int = 0
    refused_writes: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, operation: str, params: dict[str, Any], response: dict[str, Any] | None, code: str) -> None:
        writes, written = _written(operation, params) if operation in WRITES else (0, 0)
        read = _read(operation, response) if response is not None and operation in READS else 0
        with self._lock:
            self.calls[operation] += 1
            self.writes += writes
            self.bytes_written += written
            self.bytes_read += read
            self.refused_writes += code in ("ConditionalCheckFailedException", "TransactionCanceledException")


@contextmanager
def counting_dynamodb(only: Any = None) -> Iterator[DynamoDBUse]:
    """Count every DynamoDB call any botocore client makes in the block (in any thread); with ``only`` (a
    callable), only the calls made while it answers True."""
    from botocore.client import BaseClient
    from botocore.exceptions import ClientError

    use = DynamoDBUse()
    original = BaseClient._make_api_call

    def counted(client: Any, operation: str, params: dict[str, Any]) -> Any:
        if client.meta.service_model.service_name != "dynamodb" or (only is not None and not only()):
            return original(client, operation, params)
        try:
            response = original(client, operation, params)
        except ClientError as exc:
            use.record(operation, params, None, str(exc.response.get("Error", {}).get("Code", "")))
            raise
        use.record(operation, params, response, "")
        return response

    BaseClient._make_api_call = counted  # type: ignore[method-assign]
    try:
        yield use
    finally:
        BaseClient._make_api_call = original  # type: ignore[method-assign]


@dataclass
class ScenarioCost:
    use: DynamoDBUse
    incidents: int
    events: int
    checks: int
    failures: list[str]


def replay_counted(folder: Path = DEMO) -> ScenarioCost:
    """Replay a scenario on the embedded stack as ``emr-triage replay`` does (its events, then the log
    checks they scheduled), counting the DynamoDB calls of the functions only (not the stack's set-up,
    nor the replay's own reads of an incident to check its expectations, nor the reading after)."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from emr_triage.aws.incident_items import INCIDENT_SK
    from emr_triage.local.items import collect_items
    from emr_triage.local.replay import LocalStack

    items = collect_items([folder])
    scenario = items[0].scenario
    with (
        warnings.catch_warnings(),
        redirect_stdout(StringIO()),
        LocalStack(
            ROOT, scenario=scenario, folder=folder, extra_environment={"POWERTOOLS_LOG_LEVEL": "ERROR"}
        ) as stack,
    ):
        warnings.filterwarnings("ignore", message="No application metrics to publish")
        # Only the functions' own calls: not the replay's reading of an incident to check an expectation.
        inside = threading.local()
        invoke = stack.invoke

        def invoke_counted(spec: Any, event: Any) -> dict[str, Any]:
            inside.on = True
            try:
                return invoke(spec, event)
            finally:
                inside.on = False

        stack.invoke = invoke_counted  # type: ignore[method-assign]
        with counting_dynamodb(only=lambda: getattr(inside, "on", False)) as use:
            reports = [stack.replay(item) for item in items]
            checks = stack.run_follow_ups()
        incidents = sum(1 for row in stack.table_items() if row["sk"]["S"] == INCIDENT_SK)
    failures = [
        f"{report.label}: {report.expectation_failure or 'failed'}" for report in [*reports, *checks] if report.failed
    ]
    return ScenarioCost(use=use, incidents=incidents, events=len(items), checks=len(checks), failures=failures)


def dynamodb_cost(folder: Path = DEMO) -> dict[str, str]:
    """The ``name: value`` figures of one scenario's DynamoDB cost, per incident it leaves."""
    cost = replay_counted(folder)
    if cost.failures:
        raise RuntimeError(f"the replay of {folder.name} did not go as its scenario expects: {cost.failures}")
    use, per = cost.use, max(cost.incidents, 1)
    story = f"{folder.name}: {cost.incidents} incident(s), {cost.events} events, {cost.checks} log check(s)"
    figures = {
        "dynamodb_writes_per_incident": f"{use.writes / per:g} ({story}; issue 15's target <= 12)",
        "dynamodb_kb_written_per_incident": f"{use.bytes_written / KB / per:.1f} (target <= 40)",
        "dynamodb_kb_read_per_incident": f"{use.bytes_read / KB / per:.1f} (target <= 150)",
        "dynamodb_queries_per_incident": f"{use.calls['Query'] / per:g}",
        "dynamodb_refused_conditional_writes_per_incident": f"{use.refused_writes / per:g}",
    }
    for operation in sorted(set(SHOWN) | set(use.calls)):
        if operation != "Query":
            figures[f"dynamodb_{operation.lower()}_per_incident"] = f"{use.calls[operation] / per:g}"
    return figures


def bench_dynamodb_cost(folder: Path = DEMO) -> None:
    for name, value in dynamodb_cost(folder).items():
        print(f"{name}: {value}", flush=True)


if __name__ == "__main__":
    bench_dynamodb_cost(Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else DEMO)

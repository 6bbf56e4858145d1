"""moto's DynamoDB made atomic per request, as DynamoDB is (the embedded stack, local mode only)."""

from __future__ import annotations

import threading
from typing import Any

_DYNAMODB_LOCK = threading.RLock()


def atomic_dynamodb() -> None:
    """Make moto's DynamoDB apply each request atomically, as DynamoDB does.

    moto checks a put's ConditionExpression and then writes, without a lock, so two threads with the
    same expected version can both "win"; and its UpdateItem handler copies the stored item outside the
    backend, while another thread's update may be changing it. Invocations replayed concurrently (the
    at-least-once tests) rely on conditional writes, so each backend operation, and the handler's
    UpdateItem as a whole, is serialised here (the lock is re-entrant). Local mode only.
    """
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.responses import DynamoHandler

    targets = [(DynamoHandler, "update_item")] + [
        (DynamoDBBackend, name)
        for name in ("put_item", "update_item", "delete_item", "get_item", "query", "scan", "transact_write_items")
    ]
    for owner, name in targets:
        original = getattr(owner, name)
        if getattr(original, "_emr_triage_atomic", False):
            continue

        def atomic(self: Any, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
            with _DYNAMODB_LOCK:
                return _original(self, *args, **kwargs)

        atomic._emr_triage_atomic = True  # type: ignore[attr-defined]
        setattr(owner, name, atomic)

"""A DynamoDB Query read page after page: the one loop the table's stores share."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def query_pages(
    client: Any,
    request: dict[str, Any],
    fail: Callable[[Exception, str], Exception],
    *,
    most: int | None = None,
    page_items: int | None = None,
) -> list[dict[str, Any]]:
    """The items of a Query, page after page (each at most 1 MB, or ``page_items`` items), up to ``most``
    of them; a failed call raised as ``fail(exc, "Query")`` says (the store's own error)."""
    request = {**request, **({"Limit": page_items} if page_items else {})}
    items: list[dict[str, Any]] = []
    while most is None or len(items) < most:
        try:
            response = client.query(**request)
        except Exception as exc:
            raise fail(exc, "Query") from exc
        items += response.get("Items", [])
        if "LastEvaluatedKey" not in response:
            break
        request["ExclusiveStartKey"] = response["LastEvaluatedKey"]
    return items[:most]

"""What a warm function remembers of an AWS lookup for a few minutes: a bounded map whose entries expire."""

from __future__ import annotations

import threading
import time
from typing import Generic, TypeVar

Value = TypeVar("Value")


class TtlCache(Generic[Value]):
    """At most ``size`` values, each for ``seconds`` after it was put (when full, the first key put goes).
    Only successful lookups are put: a failed one is asked again next time."""

    def __init__(self, seconds: float, size: int) -> None:
        self._seconds = seconds
        self._size = size
        self._values: dict[str, tuple[float, Value]] = {}
        # Lambda runs one invocation per process, but the replay command and the load bench run handlers
        # in threads: an eviction racing a put raised "dictionary changed size during iteration".
        self._lock = threading.Lock()

    def get(self, key: str) -> Value | None:
        kept = self._values.get(key)
        if kept is None or time.monotonic() - kept[0] >= self._seconds:
            return None
        return kept[1]

    def put(self, key: str, value: Value) -> None:
        with self._lock:
            if key not in self._values and len(self._values) >= self._size:
                self._values.pop(next(iter(self._values)))
            self._values[key] = (time.monotonic(), value)

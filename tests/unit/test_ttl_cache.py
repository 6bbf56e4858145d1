"""The warm function's memory of AWS lookups (DescribeCluster, DescribeVirtualCluster): entries expire,
and the map stays bounded, the first key put leaving first."""

from __future__ import annotations

import sys
import threading

import pytest

from emr_triage.aws import ttl_cache
from emr_triage.aws.ttl_cache import TtlCache


def test_a_value_is_kept_for_its_seconds_then_asked_again(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr(ttl_cache.time, "monotonic", lambda: now[0])
    cache: TtlCache[str] = TtlCache(300, 10)
    cache.put("j-1", "orders-etl")
    now[0] += 299
    assert cache.get("j-1") == "orders-etl"
    now[0] += 1
    assert cache.get("j-1") is None
    assert cache.get("j-2") is None


def test_the_map_is_bounded_and_the_first_key_put_leaves_first() -> None:
    cache: TtlCache[int] = TtlCache(300, 2)
    cache.put("a", 1)
    cache.put("b", 2)
    cache.put("a", 3)  # put again: a new value, no eviction, and still the first key
    assert (cache.get("a"), cache.get("b")) == (3, 2)
    cache.put("c", 4)
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (None, 2, 4)


def test_threads_putting_at_once_never_break_the_eviction() -> None:
    # Given a tiny cache and eight threads putting new keys, switching as often as the interpreter allows
    # (the replay command and the load bench run handlers in threads)
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    cache: TtlCache[int] = TtlCache(300, 4)
    errors: list[str] = []

    def put_many(thread: int) -> None:
        try:
            for i in range(5000):
                cache.put(f"{thread}-{i}", i)
        except Exception as exc:  # the test reports whatever a put raised
            errors.append(repr(exc))

    threads = [threading.Thread(target=put_many, args=(n,)) for n in range(8)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(interval)
    # Then no put raised (unlocked: KeyError or "dictionary changed size during iteration") and it stays bounded
    assert errors == []
    assert sum(cache.get(f"{n}-4999") is not None for n in range(8)) <= 4

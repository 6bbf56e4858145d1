"""The Slack post pacer over DynamoDB (moto), with real threads: concurrent invocations never take the
same slot, a slot too far away is not taken, and the channel's last alert is remembered."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from tests.integration.conftest import DEMO, ROOT

from emr_triage.aws.pacing import DynamoPostPacer
from emr_triage.local.replay import LocalStack
from emr_triage.local.scenario import load_scenario


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack(ROOT, scenario=load_scenario(DEMO), folder=DEMO) as local:
        yield local


def test_concurrent_reservations_take_distinct_slots_one_interval_apart(stack: LocalStack) -> None:
    pacer = DynamoPostPacer(stack.table_name, interval=1.0)
    now = time.time()
    slots: list[float] = []
    barrier = threading.Barrier(8)
    lock = threading.Lock()

    def take() -> None:
        barrier.wait()
        wait = pacer.reserve("#storm", now)
        assert wait is not None
        with lock:
            slots.append(now + wait)

    threads = [threading.Thread(target=take) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(slots) == pytest.approx([now + n for n in range(8)], abs=0.01)


def test_a_slot_beyond_the_longest_wait_is_not_taken(stack: LocalStack) -> None:
    pacer = DynamoPostPacer(stack.table_name, interval=1.0)
    now = time.time()
    for _ in range(5):
        pacer.reserve("#busy", now)

    assert pacer.reserve("#busy", now, max_wait=3.0) is None
    assert pacer.reserve("#busy", now, max_wait=5.1) == pytest.approx(5.0, abs=0.01)
    assert pacer.reserve("#quiet", now, max_wait=0.0) == 0.0


def test_channels_are_paced_apart_and_an_idle_channel_posts_at_once(stack: LocalStack) -> None:
    pacer = DynamoPostPacer(stack.table_name, interval=1.0)
    now = time.time()
    assert pacer.reserve("#a", now) == 0.0
    assert pacer.reserve("#b", now) == 0.0
    assert pacer.reserve("#a", now) == pytest.approx(1.0, abs=0.01)
    assert pacer.reserve("#a", now + 10) == 0.0


def test_the_last_alert_is_remembered_without_disturbing_the_pace(stack: LocalStack) -> None:
    pacer = DynamoPostPacer(stack.table_name, interval=1.0)
    now = time.time()
    assert pacer.last_root("#roots") is None
    pacer.reserve("#roots", now)
    pacer.record_root("#roots", "j-1.s-1", now)

    last = pacer.last_root("#roots")
    assert last is not None and last.incident_id == "j-1.s-1" and last.at == pytest.approx(now, abs=0.01)
    assert pacer.reserve("#roots", now) == pytest.approx(1.0, abs=0.01)

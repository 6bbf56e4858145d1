"""The Slack post pacer over DynamoDB (moto), with real threads: concurrent invocations never take the
same slot. (What it shares with the in-memory pacer, a slot too far away not taken, channels paced apart and
the channel's last alert remembered, is in test_store_contract.py, run on both.)"""

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


def test_the_id_a_name_was_answered_with_is_known_to_every_invocation(stack: LocalStack) -> None:
    # Given a post to #ml-alerts answered with the channel's id, by one invocation
    DynamoPostPacer(stack.table_name, interval=1.0).record_root("#ml-alerts", "j-1.s-1", 1_000.0, "C0MLALERT")
    # Then another invocation (a fresh pacer: another container) knows the id, and no other name's
    other = DynamoPostPacer(stack.table_name, interval=1.0)
    assert other.channel_id("#ml-alerts") == "C0MLALERT"
    assert other.channel_id("#never-posted") is None

"""The time budget of log reading in one invocation (``entrypoint._with_deadline``)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from tests.fakes.memory import make_dependencies

from emr_triage.entrypoint import MIN_READ_SECONDS, _with_deadline


@dataclass
class Context:
    remaining_ms: int

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def _budget(environment: dict[str, str], context: object) -> float | None:
    deps, *_ = make_dependencies(environment=environment)
    left = _with_deadline(deps, context).seconds_left()
    return None if left is None else round(left)


@pytest.mark.parametrize(
    ("environment", "context", "expected"),
    [
        pytest.param({}, None, None, id="no-context-no-limit"),
        pytest.param({}, Context(120_000), 90, id="timeout-less-the-default-30s-reserve"),
        pytest.param({"LOG_READ_RESERVE_SECONDS": "60"}, Context(120_000), 60, id="reserve-configured"),
        pytest.param({"LOG_READ_MAX_SECONDS": "20"}, Context(120_000), 20, id="max-seconds-below-the-timeout"),
        pytest.param({"LOG_READ_MAX_SECONDS": "20"}, None, 20, id="max-seconds-without-context"),
        pytest.param({}, Context(10_000), MIN_READ_SECONDS, id="at-least-the-minimum"),
    ],
)
def test_reading_stops_before_the_timeout_by_the_reserve_and_at_most_after_the_max(
    environment: dict[str, str], context: object, expected: float | None
) -> None:
    assert _budget(environment, context) == expected

"""Hostile events at the parsing level: every saved event, mutated by hypothesis (fields dropped, added,
given the wrong type or a huge value, an unknown event type), and follow-up message bodies of any shape,
either parse or are rejected with an ``InvalidEventError`` that names the field and stays small.

The same strategies drive the end-to-end suite (tests/integration/test_hostile_input.py), which delivers
such events through the handlers; here they run fast and many times.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emr_triage.exceptions import InvalidEventError
from emr_triage.models.events import FollowUp, parse_event, parse_follow_up

EVENTS = Path(__file__).resolve().parents[2] / "events"
BROKEN = {"malformed-step-event.json", "unknown-event-type.json"}
# The saved events of every type template.yaml subscribes to (events/scenario.yaml seeds their AWS state).
SAVED: dict[str, dict[str, Any]] = {
    path.name: json.loads(path.read_text()) for path in sorted(EVENTS.glob("*.json")) if path.name not in BROKEN
}
MIB = 1 << 20
# The most a rejection reason may take: it goes into a log line, the outcome and a dead-letter message.
MAX_REASON_CHARS = 4096
HOSTILE = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

Path_ = tuple[str | int, ...]


# ---------------------------------------------------------------------------------------------------
# Strategies (also used by the integration suite)
# ---------------------------------------------------------------------------------------------------
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
)
# Any JSON value, as Lambda would decode it (nested lists and objects, a few levels deep).
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
    max_leaves=12,
)


def huge_text(units: list[str]) -> st.SearchStrategy[str]:
    """1 MiB (UTF-8) of one of ``units`` repeated."""
    return st.sampled_from(units).map(lambda unit: unit * (MIB // len(unit.encode())))


# Multi-byte characters, a line separator, NULs, newlines, quotes and backslashes.
HUGE_TEXT = huge_text(["x", "é", "東京", "🙂", "\u2028", "\x00", "a b\n", '"', "\\"])
# Ids and names just over their limits (a cluster id is j- and at most 64 characters, an event id 128).
OVERSIZED_TEXT = st.builds(
    lambda prefix, n: prefix + "A" * n, st.sampled_from(["j-", "s-", "", "00f"]), st.integers(60, 5000)
)


def wrong_values(huge: st.SearchStrategy[str]) -> st.SearchStrategy[Any]:
    """A value of any JSON type, a huge string or one just too long: wrong for most fields."""
    return JSON_VALUES | huge | OVERSIZED_TEXT


def dotted(path: Path_) -> str:
    return ".".join(str(part) for part in path)


def all_paths(value: object, prefix: Path_ = ()) -> list[Path_]:
    """Every key and list index below ``value``, depth first."""
    if isinstance(value, dict):
        items: list[tuple[str | int, Any]] = list(value.items())
    elif isinstance(value, list):
        items = list(enumerate(value))
    else:
        return []
    found: list[Path_] = []
    for key, child in items:
        found += [(*prefix, key), *all_paths(child, (*prefix, key))]
    return found


def object_paths(value: object) -> list[Path_]:
    """The paths of the JSON objects in ``value`` (itself included): where an extra field can go."""
    return [path for path in [(), *all_paths(value)] if isinstance(at(value, path), dict)]


def at(value: Any, path: Path_) -> Any:
    for part in path:
        value = value[part]
    return value


@dataclass(frozen=True)
class Mutation:
    """A saved event with one hostile change. Printed short: hypothesis shows it when a test fails."""

    base: str
    change: str  # drop | extra | retype | unknown-type
    path: Path_
    event: Any

    def __repr__(self) -> str:
        value = at(self.event, self.path) if self.change != "drop" else None
        shown = repr(value) if len(repr(value)) < 80 else f"{type(value).__name__} of {len(repr(value)):,} chars"
        return f"Mutation({self.base}: {self.change} {dotted(self.path)!r} = {shown})"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # how hypothesis prints a failing example
        printer.text(repr(self))


@st.composite
def mutated_events(draw: st.DrawFn, huge: st.SearchStrategy[str] = HUGE_TEXT) -> Mutation:
    """A saved event with one field dropped, added, given a wrong type or a ``huge`` value, or its
    source/detail-type replaced."""
    base = draw(st.sampled_from(sorted(SAVED)))
    event = copy.deepcopy(SAVED[base])
    change = draw(st.sampled_from(["drop", "extra", "retype", "unknown-type"]))
    if change == "extra":
        path: Path_ = (*draw(st.sampled_from(object_paths(event))), draw(st.text(max_size=20) | huge))
    elif change == "unknown-type":
        path = (draw(st.sampled_from(["source", "detail-type"])),)
    else:
        path = draw(st.sampled_from(all_paths(event)))
    parent = at(event, path[:-1])
    if change == "drop":
        del parent[path[-1]]
    elif change == "unknown-type":
        parent[path[-1]] = draw(st.text(max_size=40) | huge | JSON_VALUES)
    else:
        parent[path[-1]] = draw(wrong_values(huge))
    return Mutation(base, change, path, event)


def not_objects(huge: st.SearchStrategy[str] = HUGE_TEXT) -> st.SearchStrategy[Any]:
    """JSON values that are not objects."""
    return (
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats(allow_nan=False)
        | st.text()
        | huge
        | st.lists(JSON_VALUES)
    )


@st.composite
def follow_up_bodies(
    draw: st.DrawFn, huge: st.SearchStrategy[str] = HUGE_TEXT, nesting: tuple[str, ...] = ("[", '{"a":')
) -> str:
    """A follow-up queue message body: a valid check with one hostile change, any JSON, not JSON, JSON
    nested deeper than Python decodes (one of ``nesting`` repeated), or with a number it will not convert."""
    valid = {"incident_id": "j-123456789ABCD.s-ZYXWVUTSRQPON", "check": 1, "checks": 3, "purpose": "logs"}
    kind = draw(st.sampled_from(["drop", "extra", "retype", "json", "text", "deep", "long-number"]))
    if kind == "drop":
        del valid[draw(st.sampled_from(sorted(valid)))]
    elif kind == "extra":
        valid[draw(st.text(max_size=20) | huge)] = draw(JSON_VALUES)
    elif kind == "retype":
        valid[draw(st.sampled_from(sorted(valid)))] = draw(wrong_values(huge))
    elif kind == "json":
        return json.dumps(draw(JSON_VALUES | not_objects(huge)))
    elif kind == "text":
        return draw(st.text() | huge)
    elif kind == "deep":
        depth = draw(st.integers(900, 200_000))
        return draw(st.sampled_from(nesting)) * depth
    else:
        return f'{{"incident_id": "abc", "check": {"9" * draw(st.integers(4301, 20_000))}, "checks": 1}}'
    return json.dumps(valid)


def names_the_field(reason: str, mutation: Mutation) -> bool:
    """Whether a rejection reason points at the field the mutation changed."""
    if mutation.path[0] in ("source", "detail-type") and len(mutation.path) == 1:
        return "event type" in reason or "this function handles" in reason or mutation.path[0] in reason
    return dotted(mutation.path)[:100] in reason


def outcome_of(parse: Callable[[Any], object], raw: Any) -> str | None:
    """None when ``raw`` parses; the reason when it is rejected. Any other exception fails the test."""
    try:
        parse(raw)
    except InvalidEventError as exc:
        return str(exc)
    return None


# ---------------------------------------------------------------------------------------------------
# Generated events
# ---------------------------------------------------------------------------------------------------
@HOSTILE
@given(mutation=mutated_events())
def test_a_mutated_saved_event_parses_or_is_rejected_naming_the_field(mutation: Mutation) -> None:
    """Given a saved event with one hostile change,
    When it is parsed,
    Then it is valid (an extra field, a value that still fits) or rejected with an InvalidEventError, never
    anything else; the reason names the changed field and stays small, whatever the size of the value."""
    reason = outcome_of(parse_event, mutation.event)
    if reason is not None:
        assert len(reason) <= MAX_REASON_CHARS, f"{len(reason):,} characters"
        assert names_the_field(reason, mutation), reason


@HOSTILE
@given(raw=not_objects())
def test_anything_that_is_not_a_json_object_is_rejected(raw: object) -> None:
    """Given a JSON value that is not an object, When it is parsed as an event, Then it is rejected as such."""
    reason = outcome_of(parse_event, raw)
    assert reason is not None and reason.startswith("event is not a JSON object")


@HOSTILE
@given(body=follow_up_bodies())
def test_a_follow_up_body_of_any_shape_parses_or_is_rejected_with_a_short_reason(body: str) -> None:
    """Given a follow-up message body that is a valid check with one hostile change, any JSON or not JSON,
    When it is parsed, Then it is a check or rejected with an InvalidEventError and a short reason."""
    reason = outcome_of(parse_follow_up, body)
    if reason is None:
        FollowUp.model_validate_json(body)  # it parsed: it really is a check
    else:
        assert len(reason) <= MAX_REASON_CHARS, f"{len(reason):,} characters"


# ---------------------------------------------------------------------------------------------------
# Hand-written: input that once crashed a parser or made a reason as large as the input
# ---------------------------------------------------------------------------------------------------
def _event(name: str, change: Callable[[dict[str, Any]], object]) -> dict[str, Any]:
    event = copy.deepcopy(SAVED[name])
    change(event)
    return event


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param(
            _event("step-failed.json", lambda e: e.update({"detail-type": "x" * MIB})),
            "unknown event type 'xxxx",
            id="1 MiB detail-type",
        ),
        pytest.param(
            _event("step-failed.json", lambda e: e.update(source="s" * MIB)),
            "from 'ssss",
            id="1 MiB source",
        ),
        pytest.param(
            _event("step-failed.json", lambda e: e.update(resources=[1] * 50_000)),
            "and 49,980 more problems",
            id="50,000 wrong resources",
        ),
        pytest.param(
            _event(
                "cluster-terminated-with-errors.json", lambda e: e["detail"].update(stateChangeReason="[" * 100_000)
            ),
            "detail.stateChangeReason: Value error, stateChangeReason is not JSON we can read (nested too deeply)",
            id="stateChangeReason nested 100,000 deep",
        ),
        pytest.param(
            _event("cluster-terminated-with-errors.json", lambda e: e["detail"].update(stateChangeReason="9" * 5000)),
            "stateChangeReason is not JSON we can read (Exceeds the limit (4300 digits)",
            id="stateChangeReason a 5,000-digit number",
        ),
    ],
)
def test_hostile_events_are_rejected_with_a_short_reason(raw: dict[str, Any], expected: str) -> None:
    # Given an event with a huge, numerous or deeply nested value
    # When it is parsed
    reason = outcome_of(parse_event, raw)
    # Then it is rejected (no RecursionError, no ValueError) with a reason that says why and stays small
    assert reason is not None and expected in reason
    assert len(reason) <= MAX_REASON_CHARS


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param("[" * 100_000, "not JSON we can read (nested too deeply)", id="nested 100,000 deep"),
        pytest.param('{"check": ' + "9" * 5000 + "}", "(Exceeds the limit (4300 digits)", id="5,000-digit number"),
        pytest.param(
            json.dumps({"incident_id": "abc", "check": 1, "checks": 1, "k" * 100_000: 1}),
            "Extra inputs are not permitted",
            id="100,000-character key",
        ),
        pytest.param(json.dumps(["x"] * 50_000), "body: Input should be a valid dictionary", id="a list"),
    ],
)
def test_hostile_follow_up_bodies_are_rejected_with_a_short_reason(body: str, expected: str) -> None:
    # Given a follow-up body that is deeply nested, holds a number Python will not convert, or a huge key
    # When it is parsed
    reason = outcome_of(parse_follow_up, body)
    # Then it is rejected with a short reason (before, the first two raised and failed the whole batch)
    assert reason is not None and expected in reason
    assert len(reason) <= MAX_REASON_CHARS

"""What the functions tell CloudWatch and X-Ray besides their logs: a per-category metric carries the
service dimension every other metric gets, and each invocation's trace is annotated with what it did."""

from __future__ import annotations

import json
from typing import Any

import pytest
from tests.fakes.memory import make_dependencies

from emr_triage import entrypoint, observability
from emr_triage.models.incident import Outcome


def test_a_metric_with_its_own_dimension_also_carries_the_service(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    # When a failure is counted by category (emitted at once, as its own EMF record)
    observability.count(observability.MetricName.FAILURES_CLASSIFIED, category="oom_heap")
    # Then the record's dimension set holds the category and the service, as the flushed metrics do
    (record,) = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    (dimensions,) = record["_aws"]["CloudWatchMetrics"][0]["Dimensions"]
    assert set(dimensions) == {"category", "service"}
    assert record["service"] == observability.SERVICE and record["category"] == "oom_heap"


def test_each_invocation_annotates_its_trace_with_its_incident_action_and_slack(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    annotations: list[tuple[str, Any]] = []
    monkeypatch.setattr(observability.tracer, "put_annotation", lambda key, value: annotations.append((key, value)))
    deps, *_ = make_dependencies()
    monkeypatch.setattr(entrypoint, "get_dependencies", lambda: deps)
    outcome = Outcome(action="incident_opened", incident_id="j-1.s-1", detail="d", slack="posted")
    # When an event is processed
    entrypoint.process_event({}, function="emr-events", parse=lambda raw: raw, handle=lambda event, d: outcome)
    # Then its trace says what it did, to be found by incident
    assert sorted(annotations) == [("action", "incident_opened"), ("incident_id", "j-1.s-1"), ("slack", "posted")]

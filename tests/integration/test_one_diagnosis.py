"""One diagnosis for the command line and the functions: the same logs and the same known outcome give
the same verdict in `emr-triage analyze` and in the incident the Lambda functions record."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from tests.fakes.slack_api import FakeSlack
from tests.integration.conftest import EVENTS, ROOT, slack_env

from emr_triage.aws.incident_store import DynamoIncidentRepository
from emr_triage.cli import main
from emr_triage.local.items import collect_items
from emr_triage.local.replay import LocalStack

SCENARIOS = EVENTS / "scenarios"


@pytest.mark.parametrize(
    "name",
    ["spark-step-memory-kill", "step-failed-with-only-lost-executors", "step-failed-with-only-yarn-words"],
)
def test_analyze_with_the_outcome_failed_gives_the_incidents_verdict(name: str, slack: FakeSlack) -> None:
    # Given a bundled scenario of a failed step, replayed through the functions on the embedded AWS
    folder = SCENARIOS / name
    items = collect_items([folder])
    scenario = items[0].scenario
    assert scenario is not None
    with LocalStack(ROOT, scenario=scenario, folder=folder, extra_environment=slack_env(slack)) as stack:
        for item in items:
            stack.replay(item)
        stack.run_follow_ups()
        incidents = DynamoIncidentRepository(stack.table_name).list_incidents()
    incident = next(i for i in incidents if i.diagnosis is not None and i.folded_into is None)
    assert incident.diagnosis is not None
    # When `analyze` reads the same logs (the scenario's S3 objects, as files) knowing the step failed
    out = io.StringIO()
    logs = sorted(str(p) for p in Path(folder, "logs").rglob("*.gz"))
    assert main(["analyze", "--json", "--outcome", "failed", *logs], out=out) == 0
    document = json.loads(out.getvalue())
    # Then the verdict, what it rests on and how sure it is are the same
    diagnosis = incident.diagnosis
    assert (document["category"], document["rule_id"], document["title"]) == (
        diagnosis.category,
        diagnosis.rule_id,
        diagnosis.title,
    )
    assert (document["summary"], document["confidence"], document["basis"]) == (
        diagnosis.summary,
        diagnosis.confidence,
        diagnosis.root_kind,
    )
    assert [e["text"] for e in document["evidence"]] == diagnosis.evidence
    assert document["fingerprint"] == diagnosis.fingerprint

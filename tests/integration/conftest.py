"""Fixtures: the stack of template.yaml on embedded AWS (moto), and a fake Slack Web API."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.fakes.slack_api import FakeSlack, FakeSlackServer

from emr_triage import runtime
from emr_triage.local.items import ReplayItem
from emr_triage.local.replay import LocalStack
from emr_triage.local.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"
DEMO = EVENTS / "scenarios" / "spark-step-memory-kill"
TOKEN = "xoxb-test-token"


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    # Nothing from the developer's shell (a real Slack token, an AWS profile) reaches a test.
    for name in ("SLACK_BOT_TOKEN", "SLACK_API_URL", "SLACK_CHANNEL", "AWS_PROFILE", "EMR_TRIAGE_RULES_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    # The command line's cache (checked catalogue, compiled scanner) stays out of the developer's home.
    monkeypatch.setenv("EMR_TRIAGE_CACHE_DIR", str(tmp_path_factory.mktemp("emr-triage-cache")))
    runtime.reset()
    yield
    runtime.reset()


@pytest.fixture(autouse=True)
def _embedded_state_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The replay command keeps the embedded incidents for `incidents`; tests keep them out of the checkout.
    from emr_triage.local import embedded_state

    monkeypatch.setattr(embedded_state, "EMBEDDED_STATE", tmp_path / "embedded-incidents.json")


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlackServer(TOKEN) as fake:
        yield fake


def slack_env(slack: FakeSlack) -> dict[str, str]:
    return {"SLACK_DELIVERY": "env", "SLACK_BOT_TOKEN": TOKEN, "SLACK_API_URL": slack.url}


def load_event(folder: Path, name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((folder / name).read_text())
    return event


def replay(stack: LocalStack, folder: Path, name: str) -> dict[str, Any]:
    """Deliver one saved event through the template's rules; return the (single) handler outcome."""
    report = stack.replay(ReplayItem(path=folder / name, event=load_event(folder, name)))
    assert len(report.invocations) == 1, report
    invocation = report.invocations[0]
    if invocation.error:
        raise AssertionError(invocation.error)
    assert invocation.outcome is not None
    return invocation.outcome


@pytest.fixture
def demo_stack(slack: FakeSlack) -> Iterator[LocalStack]:
    """The demo scenario's AWS state, with Slack going to the fake server through slack-sdk."""
    with LocalStack(ROOT, scenario=load_scenario(DEMO), folder=DEMO, extra_environment=slack_env(slack)) as stack:
        yield stack


def write_scenario(folder: Path, scenario: dict[str, Any], logs: dict[str, str], events: dict[str, Any]) -> Path:
    """Create a scenario folder: scenario.yaml, gzip logs below logs/, event files."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "scenario.yaml").write_text(yaml.safe_dump({**scenario, "events": list(events)}))
    for relative, text in logs.items():
        path = folder / "logs" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(gzip.compress(text.encode()))
    for name, event in events.items():
        (folder / name).write_text(json.dumps(event))
    return folder


def step_event(cluster_id: str, step_id: str, state: str = "FAILED", event_id: str = "e-1") -> dict[str, Any]:
    return {
        "version": "0",
        "id": event_id,
        "detail-type": "EMR Step Status Change",
        "source": "aws.emr",
        "account": "123456789012",
        "time": "2026-11-20T02:13:47Z",
        "region": "us-east-1",
        "resources": [],
        "detail": {
            "severity": "ERROR",
            "actionOnFailure": "CONTINUE",
            "stepId": step_id,
            "name": "job",
            "clusterId": cluster_id,
            "state": state,
            "message": "Step failed.",
        },
    }

"""Jobs over time end to end: the bundled scenarios through template.yaml's rules, moto, and slack-sdk's
WebClient to the fake Slack (slow runs alerted and edited; the weekly digest with its chart)."""

from __future__ import annotations

import io
import json

from tests.fakes.slack_api import FakeSlack
from tests.integration.conftest import EVENTS, ROOT, slack_env

from emr_triage.local.items import collect_items
from emr_triage.local.replay import LocalStack
from emr_triage.local.scenario import load_scenario

SCENARIOS = EVENTS / "scenarios"


def _replay(name: str, slack: FakeSlack) -> list[dict[str, object]]:
    """Replay a bundled scenario as `emr-triage replay` does; every expectation it states must hold."""
    folder = SCENARIOS / name
    outcomes = []
    with LocalStack(ROOT, scenario=load_scenario(folder), folder=folder, extra_environment=slack_env(slack)) as stack:
        for item in collect_items([folder]):
            for report in stack.replay_then_checks(item):
                assert not report.failed, (report.label, report.expectation_failure, report.invocations)
                outcomes += [i.outcome for i in report.invocations if i.outcome]
    return outcomes


def test_a_hung_step_is_alerted_as_slow_then_its_failure_edits_that_message(slack: FakeSlack) -> None:
    outcomes = _replay("slow-step-no-executors-then-killed", slack)
    assert [o["action"] for o in outcomes].count("run_slow") == 1
    posts = slack.calls_to("chat.postMessage")
    roots = [p for p in posts if "thread_ts" not in p.payload]
    assert len(roots) == 1  # one message for the run: the slow alert, then the failure in it
    slow = json.dumps(roots[0].payload)
    assert "Slow: EMR step sessionize-clicks" in slow and "no executors accepted for 36 min" in slow
    edits = [json.dumps(c.payload) for c in slack.calls_to("chat.update")]
    assert any("EMR step failed: sessionize-clicks" in e and "alerted as slow at 02:37 UTC" in e for e in edits)


def test_a_late_run_is_alerted_then_edited_to_finished_late(slack: FakeSlack) -> None:
    outcomes = _replay("slow-run-finishes-late", slack)
    assert [o["action"] for o in outcomes][-2:] == ["run_slow", "run_recorded"]
    (root,) = [p for p in slack.calls_to("chat.postMessage") if "thread_ts" not in p.payload]
    assert "Running 1 h 6 min" in json.dumps(root.payload) and "last progress" in json.dumps(root.payload)
    (edit,) = slack.calls_to("chat.update")
    text = json.dumps(edit.payload)
    assert "Finished late" in text and "after *1 h 24 min*" in text


def test_the_weekly_digest_goes_to_each_channel_with_its_chart(slack: FakeSlack) -> None:
    from PIL import Image

    slack.channels.setdefault("#orders-alerts", "C0ORDERS001")  # (the workspace has the generated teams' channels)
    outcomes = _replay("weekly-digest-over-a-month", slack)
    assert [o["action"] for o in outcomes] == ["digest_posted"]
    roots = [p for p in slack.calls_to("chat.postMessage") if "thread_ts" not in p.payload]
    assert sorted(str(p.payload["channel"]) for p in roots) == ["#data-platform-alerts", "#orders-alerts"]
    assert all("Weekly EMR digest: Mon 30 Nov" in json.dumps(p.payload) for p in roots)
    # the charts went up through files_upload_v2 (the three-step upload), as PNG bytes, in the threads
    completed = slack.calls_to("files.completeUploadExternal")
    assert len(completed) == 2 and all(c.payload.get("thread_ts") for c in completed)
    images = [u["bytes"] for u in slack.uploads.values() if u.get("bytes")]
    assert len(images) == 2
    for data in images:
        image = Image.open(io.BytesIO(data))
        assert image.format == "PNG" and image.size == (1000, 500)

"""Log checks through the follow-up queue, and incoming-webhook mode, end to end: handlers on moto, Slack
served over HTTP on 127.0.0.1 (the real slack-sdk clients)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.fakes.slack_api import FakeSlack, Fault
from tests.integration.conftest import DEMO, ROOT, replay, slack_env, step_event, write_scenario

from emr_triage.local.replay import LocalStack
from emr_triage.local.scenario import load_scenario

INCIDENT = "j-3ANP7YJ2WQ0LC.s-3H8ZKQW0EXAMP"


def _webhook_env(slack: FakeSlack) -> dict[str, str]:
    return {"SLACK_DELIVERY": "webhook", "SLACK_WEBHOOK_URL": slack.webhook_url}


def test_webhook_mode_replays_the_demo_twice_into_exactly_one_message(slack: FakeSlack) -> None:
    # Given the demo scenario with Slack reached through an incoming webhook (no bot token)
    names = sorted(p.name for p in DEMO.glob("0*.json"))
    with LocalStack(ROOT, scenario=load_scenario(DEMO), folder=DEMO, extra_environment=_webhook_env(slack)) as stack:
        # When every event is delivered twice, and the log checks run
        for name in [*names, *names]:
            replay(stack, DEMO, name)
        checks = stack.run_follow_ups()
        incident = stack.incident(INCIDENT)
    # Then one message went out, with the verdict and the extract inline, and no Web API call was made
    assert not any(i.error for r in checks for i in r.invocations)
    (post,) = slack.webhook_posts
    text = json.dumps(post)
    assert "YARN killed a container" in text and "Log extract" in text
    assert not [c for c in slack.calls if c.method != "webhook"]
    assert incident is not None and incident.slack is not None and incident.slack.channel == "incoming-webhook"


def test_webhook_outage_is_retried_by_the_next_delivery_and_posts_once(slack: FakeSlack) -> None:
    # Given a webhook failing with 500s beyond slack-sdk's retries
    slack.fail_next("webhook", *[Fault(status=500)] * 3)
    with LocalStack(ROOT, scenario=load_scenario(DEMO), folder=DEMO, extra_environment=_webhook_env(slack)) as stack:
        # When the failed step is delivered, the post fails and so does the event (Lambda retries it)
        report = stack.replay(stack_item(DEMO, "01-step-failed.json"))
        assert report.invocations[0].error and "DeliveryError" in report.invocations[0].error
        assert "hooks" not in report.invocations[0].error and "/services/" not in report.invocations[0].error
        # And the retry, with Slack back
        outcome = replay(stack, DEMO, "01-step-failed.json")
    # Then exactly one message is out
    assert outcome["slack"] == "posted" and len(slack.webhook_posts) == 1


def stack_item(folder: Path, name: str):  # type: ignore[no-untyped-def]
    from emr_triage.local.items import ReplayItem

    return ReplayItem(path=folder / name, event=json.loads((folder / name).read_text()))


def test_a_step_whose_logs_never_land_is_marked_unavailable_in_slack(tmp_path: Path, slack: FakeSlack) -> None:
    # Given a failed step on a cluster that died before EMR copied any log
    folder = write_scenario(
        tmp_path / "nologs",
        {
            "description": "no logs",
            "log_uri": "s3://no-logs-bucket/emr/",
            "slack_channel": "#emr-alerts",
            "clusters": [{"id": "j-NOLOGS000001", "name": "c", "steps": [{"id": "s-NOLOGS000001", "name": "job"}]}],
        },
        {},
        {"failed.json": step_event("j-NOLOGS000001", "s-NOLOGS000001")},
    )
    with LocalStack(ROOT, scenario=load_scenario(folder), folder=folder, extra_environment=slack_env(slack)) as stack:
        replay(stack, folder, "failed.json")
        # When the deadline's log check runs
        (check,) = stack.run_follow_ups()
        incident = stack.incident("j-NOLOGS000001.s-NOLOGS000001")
    # Then the root message is edited to say the logs are unavailable, and nothing else is posted
    assert check.invocations[0].outcome is not None and "no log could be read" in check.invocations[0].outcome["detail"]
    assert incident is not None and incident.logs_unavailable
    (root,) = slack.root_messages()
    assert "logs unavailable" in json.dumps(root.blocks) and root.edits == 1
    assert not slack.thread_replies()


def test_a_malformed_check_is_dead_lettered_and_a_failing_one_is_reported_for_redelivery(
    demo_stack: LocalStack, slack: FakeSlack
) -> None:
    # Given a malformed message and a check whose Slack delivery fails, in the follow-up queue
    replay(demo_stack, DEMO, "01-step-failed.json")
    spec = next(s for s in demo_stack.specs if s.logical_id == "FollowUpFunction")
    records = [
        {"messageId": "m-bad", "body": '{"incident_id": 7}'},
        {"messageId": "m-good", "body": json.dumps({"incident_id": INCIDENT, "check": 1, "checks": 1})},
        {"messageId": "m-gone", "body": json.dumps({"incident_id": "j-X.s-Y", "check": 1, "checks": 1})},
    ]
    # When the function gets them as one batch
    result = demo_stack.invoke(spec, {"Records": records})
    # Then the malformed one is dead-lettered with its reason (not retried), the others are handled
    assert result["batchItemFailures"] == []
    actions = [o["action"] for o in result["outcomes"]]
    assert actions == ["rejected", "incident_updated", "no_incident"]
    (dead,) = demo_stack.dead_letters()
    assert "incident_id" in dead["reason"]
    # And when DynamoDB fails under a check, only that message is reported back to SQS
    from emr_triage.aws import incident_store as repository

    original = repository.DynamoIncidentRepository.get

    def broken(self: object, incident_id: str) -> object:
        raise repository.TransientError("DynamoDB unavailable")

    repository.DynamoIncidentRepository.get = broken  # type: ignore[method-assign,assignment]
    try:
        result = demo_stack.invoke(spec, {"Records": records[1:2]})
    finally:
        repository.DynamoIncidentRepository.get = original  # type: ignore[method-assign]
    assert result["batchItemFailures"] == [{"itemIdentifier": "m-good"}]


TWO_PHASE = DEMO.parent / "step-logs-land-after-the-alert"


def test_the_two_phase_scenario_alerts_once_then_diagnoses_in_place_and_in_its_thread(slack: FakeSlack) -> None:
    # Given the bundled scenario whose step log lands minutes after the failure, with Slack served by the
    # fake Web API through the real WebClient
    names = sorted(p.name for p in TWO_PHASE.glob("0*.json"))
    scenario = load_scenario(TWO_PHASE)
    with LocalStack(ROOT, scenario=scenario, folder=TWO_PHASE, extra_environment=slack_env(slack)) as stack:
        # When the failure is delivered, before any log is in S3
        first = replay(stack, TWO_PHASE, names[0])
        # Then the alert is out at once, saying the logs are being analysed
        assert first["action"] == "incident_opened" and first["slack"] == "posted"
        (root,) = slack.root_messages()
        assert "analysing logs" in json.dumps(slack.calls_to("chat.postMessage")[0].payload)
        # When every event is replayed (twice: at-least-once delivery) and the log checks run
        for name in [*names[1:], *names]:
            replay(stack, TWO_PHASE, name)
        stack.run_follow_ups()
    # Then Slack got exactly one root message, one edit carrying the verdict, one reply and one file
    assert len(slack.root_messages()) == 1
    (update,) = slack.calls_to("chat.update")
    assert update.payload["ts"] == root.ts and "sql_analysis_error" in json.dumps(update.payload["blocks"])
    (reply,) = slack.thread_replies()
    assert reply.payload["thread_ts"] == root.ts
    (upload,) = slack.uploads.values()
    assert upload["thread_ts"] == root.ts
    # And the log's "<!channel>", "<@U...>" and ``` arrived escaped, and the job's AWS keys did not arrive
    for call in (update, reply):
        text = json.dumps(call.payload)
        assert "<!channel>" not in text and "<@U024BE7LH>" not in text and "```fixed" not in text
        assert "&lt;!channel&gt;" in text and "&lt;@U024BE7LH&gt;" in text
    content = upload["content"] if isinstance(upload["content"], str) else upload["content"].decode("utf-8")
    everything = json.dumps([c.payload for c in slack.calls]) + content
    assert "AKIAIOSFODNN7EXAMPLE" not in everything and "wJalrXUtnFEMI" not in everything


REORDERED = DEMO.parent / "reordered-duplicated-storm"


def test_a_reordered_and_duplicated_storm_gives_one_alert_with_everything_folded_in(slack: FakeSlack) -> None:
    # Given the memory-kill failure's events delivered out of order and twice (the scenario's order)
    names = sorted(p.name for p in REORDERED.glob("0*.json"))
    scenario = load_scenario(REORDERED)
    with LocalStack(ROOT, scenario=scenario, folder=REORDERED, extra_environment=slack_env(slack)) as stack:
        # When they are replayed, and the log checks run
        outcomes = [replay(stack, REORDERED, name) for name in names]
        checks = stack.run_follow_ups()
        step = stack.incident(INCIDENT)
        cluster = stack.incident("j-3ANP7YJ2WQ0LC.cluster")
    # Then there is one root message, the step's, with the cluster's death and the cancelled step in it
    assert [o["action"] for o in outcomes][:3] == ["incident_opened"] * 3
    assert not any(i.error for r in checks for i in r.invocations)
    (root,) = slack.root_messages()
    text = json.dumps(root.blocks)
    assert "daily-sales-aggregation" in text and "STEP_FAILURE" in text and "publish-sales-dashboard" in text
    assert step is not None and len(step.children) == 2
    assert cluster is not None and cluster.folded_into == INCIDENT and cluster.slack is None


RERUN = DEMO.parent / "failure-then-successful-rerun"


def test_a_successful_rerun_resolves_the_incident_in_slack(slack: FakeSlack) -> None:
    # Given the bundled failure and its successful rerun on a new cluster of the same name
    names = sorted(p.name for p in RERUN.glob("0*.json"))
    scenario = load_scenario(RERUN)
    with LocalStack(ROOT, scenario=scenario, folder=RERUN, extra_environment=slack_env(slack)) as stack:
        # When its events are replayed (the rerun's completion twice)
        outcomes = [replay(stack, RERUN, name) for name in [*names, names[-1]]]
        incident = stack.incident("j-1ORDERSETL020.s-2LOADORDERS00")
    # Then the incident is resolved once, the root message says so, and one "Recovered" reply is in its thread
    assert [o["action"] for o in outcomes][-2:] == ["incident_resolved", "run_recorded"]
    assert incident is not None and incident.status == "RESOLVED"
    (root,) = slack.root_messages()
    assert "Resolved" in json.dumps(root.blocks)
    recovered = [r for r in slack.thread_replies() if "Recovered" in json.dumps(r.payload)]
    assert len(recovered) == 1 and "recovered 3 h 14 min after this failure" in json.dumps(recovered[0].payload)

"""The two handlers end to end: template.yaml's rules and environment, moto, slack-sdk to a fake Slack."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import boto3
import pytest
from tests.fakes.slack_api import FakeSlack, Fault
from tests.integration.conftest import (
    DEMO,
    EVENTS,
    ROOT,
    TOKEN,
    load_event,
    replay,
    slack_env,
    step_event,
    write_scenario,
)

from emr_triage import runtime
from emr_triage.aws.incident_items import incident_key
from emr_triage.local.items import ReplayItem
from emr_triage.local.replay import LocalContext, LocalStack, environment
from emr_triage.local.scenario import load_scenario

INCIDENT = "j-3ANP7YJ2WQ0LC.s-3H8ZKQW0EXAMP"


def _all_text(slack: FakeSlack) -> str:
    return json.dumps([c.payload for c in slack.calls])


def test_step_failure_opens_one_incident_and_posts_the_diagnosis(demo_stack: LocalStack, slack: FakeSlack) -> None:
    # Given the demo's failed step, with its logs already in S3
    # When EventBridge delivers the FAILED event
    outcome = replay(demo_stack, DEMO, "01-step-failed.json")

    # Then one incident is stored with the root cause found in the logs
    assert outcome["action"] == "incident_opened"
    incident = demo_stack.incident(INCIDENT)
    assert incident is not None and incident.diagnosis is not None
    assert incident.diagnosis.category == "yarn_memory_kill"
    assert incident.diagnosis.location == "daily_sales_agg.py:64 in main"
    assert incident.application_ids == ["application_1763604005123_0042"]
    assert incident.cluster_name == "nightly-sales-etl" and incident.step_name == "daily-sales-aggregation"
    # And one Slack message was posted through the Web API, naming cluster, step, state and diagnosis
    posts = slack.root_posts()
    assert len(posts) == 1
    assert posts[0].token == TOKEN
    text = json.dumps(posts[0].payload["blocks"])
    for expected in (
        "nightly-sales-etl",
        "j-3ANP7YJ2WQ0LC",
        "daily-sales-aggregation",
        "FAILED",
        "YARN killed a container",
    ):
        assert expected in text
    # And the incident remembers where the message is (channel ID from Slack's answer, not the name)
    assert incident.slack is not None
    assert (incident.slack.channel, incident.slack.ts) in slack.messages
    assert incident.slack.channel == "C0DATAPLT"


def test_duplicate_and_reordered_events_do_not_post_twice(demo_stack: LocalStack, slack: FakeSlack) -> None:
    # Given an incident already alerted
    replay(demo_stack, DEMO, "01-step-failed.json")
    # When the same failure is delivered again (another EventBridge id), and the cluster and the
    # cancelled step report in
    again = replay(demo_stack, DEMO, "05-step-failed-delivered-again.json")
    cancelled = replay(demo_stack, DEMO, "02-next-step-cancelled.json")
    cluster = replay(demo_stack, DEMO, "03-cluster-terminated-with-errors.json")

    # Then there is still one root message, edited in place to mention what was folded in
    assert again["action"] == "duplicate"
    assert cancelled["action"] == "folded" and cluster["action"] == "folded"
    assert len(slack.root_posts()) == 1
    (message,) = slack.root_messages()
    assert message.edits == 2
    assert "publish-sales-dashboard" in json.dumps(message.blocks)
    incident = demo_stack.incident(INCIDENT)
    assert incident is not None and len(incident.children) == 2


def test_concurrent_copies_of_an_event_post_one_message(demo_stack: LocalStack, slack: FakeSlack) -> None:
    # Given four copies of the FAILED event processed at once by four concurrent invocations
    # (EventBridge delivers at least once), and a Slack slow enough for them to overlap
    event = load_event(DEMO, "01-step-failed.json")
    spec = next(s for s in demo_stack.specs if s.logical_id == "EmrEventFunction")
    slack.fail_next("chat.postMessage", Fault(delay=0.5, passthrough=True))
    results: list[str] = []
    errors: list[BaseException] = []
    with environment({**spec.environment, **demo_stack.extra_environment}):
        runtime.reset_settings()
        handler = demo_stack.handler(spec)

        def deliver() -> None:
            context = LocalContext("fn", 1024, 120, "us-east-1", "123456789012")
            try:
                results.append(handler(event, context)["action"])
            except BaseException as exc:
                errors.append(exc)

        # When they run concurrently
        threads = [threading.Thread(target=deliver) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    # Then exactly one incident was opened and exactly one root message posted
    assert not errors, errors
    assert sorted(results) == ["duplicate", "duplicate", "duplicate", "incident_opened"]
    assert len(slack.root_posts()) == 1
    assert len(slack.root_messages()) == 1
    # And exactly one evidence reply and one extract file in its thread
    assert len(slack.thread_replies()) == 1
    assert len(slack.calls_to("files.completeUploadExternal")) == 1


def test_a_log_arriving_later_refines_the_verdict_and_edits_the_message(tmp_path: Path, slack: FakeSlack) -> None:
    # Given a cluster-mode PySpark failure whose step stderr only says "finished with failed status"
    with LocalStack(ROOT, scenario=load_scenario(EVENTS), folder=EVENTS, extra_environment=slack_env(slack)) as stack:
        first = replay(stack, EVENTS, "step-failed.json")
        incident = stack.incident(first["incident_id"])
        assert incident is not None and incident.diagnosis is not None
        assert incident.diagnosis.category == "other"
        # When the driver container's log lands in S3
        outcome = replay(stack, EVENTS, "s3-container-log-created.json")
        # Then the incident's verdict becomes the root cause found there, and the message is edited
        assert outcome["action"] == "incident_updated"
        incident = stack.incident(first["incident_id"])
        assert incident is not None and incident.diagnosis is not None
        assert incident.diagnosis.category == "input_not_found"
        assert "orders_by_region.py:22" in (incident.diagnosis.location or "")
    updates = slack.calls_to("chat.update")
    assert len(updates) == 1
    assert "The job's input does not exist" in json.dumps(updates[0].payload)
    assert len(slack.root_posts()) == 1


def test_the_same_log_object_delivered_twice_is_analysed_once(tmp_path: Path, slack: FakeSlack) -> None:
    with LocalStack(ROOT, scenario=load_scenario(EVENTS), folder=EVENTS, extra_environment=slack_env(slack)) as stack:
        replay(stack, EVENTS, "step-failed.json")
        first = replay(stack, EVENTS, "s3-container-log-created.json")
        second = replay(stack, EVENTS, "s3-container-log-created.json")
    assert first["action"] == "incident_updated"
    assert second["action"] == "duplicate"
    assert len(slack.calls_to("chat.update")) == 1


# Slack outages, rate limits, timeouts and a rejected token, each through a retry to one root message, are in
# the fault matrix (test_faults.py); here, what each configuration error tells the operator.
@pytest.mark.parametrize(
    ("error", "fix"),
    [
        ("channel_not_found", "invite the bot"),
        ("not_in_channel", "/invite"),
        ("invalid_auth", "Bot User OAuth Token"),
        ("missing_scope", "chat:write"),
    ],
)
def test_slack_configuration_errors_name_the_fix_and_never_the_token(
    demo_stack: LocalStack, slack: FakeSlack, error: str, fix: str
) -> None:
    slack.fail_next("chat.postMessage", Fault(body={"ok": False, "error": error, "needed": "chat:write"}))
    report = demo_stack.replay(
        ReplayItem(path=DEMO / "01-step-failed.json", event=load_event(DEMO, "01-step-failed.json"))
    )
    problem = report.invocations[0].error or ""
    assert problem.startswith("SlackConfigurationError")
    assert error in problem and fix in problem
    assert TOKEN not in problem and TOKEN not in report.invocations[0].output


def test_token_comes_from_secrets_manager_in_lambda_mode(slack: FakeSlack) -> None:
    # Given the Lambda configuration: SLACK_DELIVERY=secret and a secret holding JSON with the token
    with LocalStack(ROOT, scenario=load_scenario(DEMO), folder=DEMO) as stack:
        secret = boto3.client("secretsmanager", region_name="us-east-1").create_secret(
            Name="emr-triage/slack", SecretString=json.dumps({"bot_token": TOKEN})
        )
        stack.extra_environment.update(
            {"SLACK_DELIVERY": "secret", "SLACK_TOKEN_SECRET_ID": secret["ARN"], "SLACK_API_URL": slack.url}
        )
        # When the failure is processed
        outcome = replay(stack, DEMO, "01-step-failed.json")
    # Then the message was posted with the token read from Secrets Manager
    assert outcome["slack"] == "posted"
    assert slack.calls_to("chat.postMessage")[0].token == TOKEN


def test_a_missing_secret_is_a_configuration_error_naming_the_secret(slack: FakeSlack) -> None:
    with LocalStack(ROOT, scenario=load_scenario(DEMO), folder=DEMO) as stack:
        stack.extra_environment.update(
            {
                "SLACK_DELIVERY": "secret",
                "SLACK_TOKEN_SECRET_ID": "arn:aws:secretsmanager:us-east-1:123456789012:secret:nope-AbCdEf",
                "SLACK_API_URL": slack.url,
            }
        )
        report = stack.replay(
            ReplayItem(path=DEMO / "01-step-failed.json", event=load_event(DEMO, "01-step-failed.json"))
        )
        incident = stack.incident(INCIDENT)
    assert "SlackConfigurationError" in (report.invocations[0].error or "")
    assert "nope-AbCdEf" in (report.invocations[0].error or "")
    assert incident is not None, "the incident must be recorded before Slack is tried"


def test_malformed_event_is_dead_lettered_with_its_reason_and_counted(tmp_path: Path) -> None:
    # Given a FAILED step event without its clusterId
    event = load_event(EVENTS, "malformed-step-event.json")
    with LocalStack(ROOT, extra_environment={"POWERTOOLS_METRICS_DISABLED": "false"}) as stack:
        # When it is delivered
        report = stack.replay(ReplayItem(path=EVENTS / "malformed-step-event.json", event=event))
        dead = stack.dead_letters()
    # Then it is rejected (not raised, so Lambda does not retry it), naming the field
    outcome = report.invocations[0].outcome
    assert outcome is not None and outcome["action"] == "rejected"
    assert "detail.clusterId: Field required" in outcome["detail"]
    # And the dead-letter queue holds the event and the reason
    assert len(dead) == 1
    assert dead[0]["event"] == event and "clusterId" in dead[0]["reason"]
    # And the InvalidEvents metric was emitted
    metrics = [json.loads(line) for line in report.invocations[0].output.splitlines() if line.startswith("{")]
    assert any(m.get("InvalidEvents") == [1.0] for m in metrics)


def test_an_event_sent_to_the_wrong_function_is_rejected() -> None:
    with LocalStack(ROOT) as stack:
        spec = next(s for s in stack.specs if s.logical_id == "EmrEventFunction")
        outcome = stack.invoke(spec, load_event(EVENTS, "s3-step-log-created.json"))
    assert outcome["action"] == "rejected"
    assert "check the EventBridge rule" in outcome["detail"]


def test_unknown_cluster_still_opens_an_incident_saying_why_it_is_thin() -> None:
    # Given no cluster j-NOSUCHCLUSTER in the account (deleted long ago, or DescribeCluster denied)
    with LocalStack(ROOT) as stack:
        spec = next(s for s in stack.specs if s.logical_id == "EmrEventFunction")
        outcome = stack.invoke(spec, step_event("j-NOSUCHCLUSTER", "s-NOSUCHSTEP"))
        incident = stack.incident("j-NOSUCHCLUSTER.s-NOSUCHSTEP")
    assert outcome["action"] == "incident_opened"
    assert incident is not None
    assert any("DescribeCluster" in e and "not found" in e for e in incident.lookup_errors)


def test_secrets_in_logs_reach_neither_slack_nor_dynamodb(tmp_path: Path, slack: FakeSlack) -> None:
    # Given a failed step whose error lines carry credentials
    secrets = ["AKIAIOSFODNN7EXAMPLE", "hunter2-Pa55", "xoxb-9999999999-leakedtoken", "wJalrXUtnFEMI/K7MDENG"]
    stderr = "\n".join(
        [
            "26/11/20 02:00:00 INFO SparkContext: Running Spark version 3.5.2-amzn-1",
            'Exception in thread "main" java.sql.SQLException: Access denied for jdbc:mysql://etl:hunter2-Pa55@db:3306/x',
            "Caused by: com.amazonaws.services.s3.model.AmazonS3Exception: Access Denied (Service: Amazon S3; "
            "Status Code: 403; Error Code: AccessDenied) key AKIAIOSFODNN7EXAMPLE secret_key=wJalrXUtnFEMI/K7MDENG",
            "\tat com.acme.Export.run(Export.scala:12) token=xoxb-9999999999-leakedtoken",
        ]
    )
    folder = write_scenario(
        tmp_path / "secrets",
        {
            "description": "secrets in logs",
            "log_uri": "s3://secret-test-logs/emr/",
            "slack_channel": "#emr-alerts",
            "clusters": [{"id": "j-SECRETS0001", "name": "c", "steps": [{"id": "s-SECRETS0001", "name": "export"}]}],
        },
        {"j-SECRETS0001/steps/s-SECRETS0001/stderr.gz": stderr},
        {"failed.json": step_event("j-SECRETS0001", "s-SECRETS0001")},
    )
    with LocalStack(ROOT, scenario=load_scenario(folder), folder=folder, extra_environment=slack_env(slack)) as stack:
        outcome = replay(stack, folder, "failed.json")
        item = boto3.client("dynamodb", region_name="us-east-1").get_item(
            TableName=stack.table_name, Key=incident_key(outcome["incident_id"])
        )["Item"]
    # Then the diagnosis is there, but no secret is in any Slack call or in the stored item
    assert outcome["action"] == "incident_opened"
    stored, sent = json.dumps(item), _all_text(slack)
    assert "s3_access_denied" in stored
    for secret in secrets:
        assert secret not in stored, f"{secret} stored in DynamoDB"
        assert secret not in sent, f"{secret} sent to Slack"


def test_a_log_full_of_multibyte_evidence_still_stores_and_alerts(tmp_path: Path, slack: FakeSlack) -> None:
    # Given a failed step whose log hits every rule, each followed by 25 long stack lines in CJK text
    # (3 bytes a character: without a byte budget the incident would exceed DynamoDB's 400 KB item limit)
    from tests.unit.test_catalogue import EXAMPLES

    frames = ["\tat 東京.処理.実行(" + "東" * 480 + ")"] * 25
    text = "\n".join(line for lines in EXAMPLES.values() for line in [lines[0], *frames])
    folder = write_scenario(
        tmp_path / "big",
        {
            "description": "multibyte evidence",
            "log_uri": "s3://big-item-logs/emr/",
            "slack_channel": "#emr-alerts",
            "clusters": [{"id": "j-BIGITEM00001", "name": "c", "steps": [{"id": "s-BIGITEM00001", "name": "job"}]}],
        },
        {"j-BIGITEM00001/steps/s-BIGITEM00001/stderr.gz": text},
        {"failed.json": step_event("j-BIGITEM00001", "s-BIGITEM00001")},
    )
    with LocalStack(ROOT, scenario=load_scenario(folder), folder=folder, extra_environment=slack_env(slack)) as stack:
        # When the failure is processed (moto enforces the item size limit, as DynamoDB does)
        outcome = replay(stack, folder, "failed.json")
        incident = stack.incident(outcome["incident_id"])
    # Then the incident is stored, with its findings, and the alert went out
    assert outcome["action"] == "incident_opened" and outcome["slack"] == "posted"
    assert incident is not None and incident.diagnosis is not None and len(incident.findings) == 12


def test_the_whole_demo_gives_one_root_message_one_thread_reply_and_one_extract_file(
    demo_stack: LocalStack, slack: FakeSlack
) -> None:
    # Given the demo scenario's five events (failed step, cancelled step, cluster death, driver log, dup)
    names = sorted(p.name for p in DEMO.glob("0*.json"))
    # When they are all replayed, twice (EventBridge delivers at least once)
    for name in [*names, *names]:
        replay(demo_stack, DEMO, name)
    # Then Slack has exactly one root message, edited in place, and one reply in its thread
    (root,) = slack.root_messages()
    replies = slack.thread_replies()
    assert len(replies) == 1
    assert replies[0].payload["thread_ts"] == root.ts
    assert "Evidence" in json.dumps(replies[0].payload["blocks"])
    # And one file, the redacted extract, uploaded into that thread through the three-step upload
    (upload,) = slack.uploads.values()
    assert upload["thread_ts"] == root.ts and upload["channel"] == root.channel
    content = upload["content"] if isinstance(upload["content"], str) else upload["content"].decode("utf-8")
    assert content.startswith("emr-triage diagnosis: yarn_memory_kill:")
    assert "Container killed by YARN" in content
    incident = demo_stack.incident(INCIDENT)
    assert incident is not None and incident.slack is not None
    assert incident.slack.thread_fingerprint == incident.diagnosis.fingerprint  # type: ignore[union-attr]


def test_a_missing_files_write_scope_names_the_fix_and_does_not_fail_the_alert(
    demo_stack: LocalStack, slack: FakeSlack
) -> None:
    # Given a Slack app without the files:write scope
    slack.fail_next(
        "files.getUploadURLExternal",
        Fault(status=200, body={"ok": False, "error": "missing_scope", "needed": "files:write"}),
    )
    # When the failed step is delivered
    outcome = replay(demo_stack, DEMO, "01-step-failed.json")
    # Then the alert is posted and the event does not fail (it would be retried and dead-lettered)
    assert outcome["action"] == "incident_opened" and outcome["slack"] == "posted"
    assert len(slack.root_messages()) == 1
    # And the evidence thread waits for the next delivery, once the scope is added
    incident = demo_stack.incident(INCIDENT)
    assert incident is not None and incident.slack is not None and incident.slack.thread_fingerprint is None
    assert slack.calls_to("files.getUploadURLExternal") and not slack.calls_to("files.completeUploadExternal")


def test_an_upload_that_fails_is_retried_without_a_second_evidence_reply(
    demo_stack: LocalStack, slack: FakeSlack
) -> None:
    # Given Slack's upload endpoint failing with 500s beyond the client's retries
    slack.fail_next("files.getUploadURLExternal", *[Fault(status=500, body={"ok": False, "error": "fatal"})] * 3)
    # When the failed step is delivered, the evidence reply goes out but the upload fails: the event fails
    with pytest.raises(AssertionError, match="DeliveryError"):
        replay(demo_stack, DEMO, "01-step-failed.json")
    assert len(slack.thread_replies()) == 1 and not slack.uploads
    # And when Lambda retries the event with Slack healthy again
    outcome = replay(demo_stack, DEMO, "01-step-failed.json")
    # Then the file is uploaded into the thread, and the evidence reply is not posted a second time
    assert outcome["slack"] == "unchanged"
    assert len(slack.root_messages()) == 1 and len(slack.thread_replies()) == 1
    (upload,) = slack.uploads.values()
    assert upload["thread_ts"] == slack.root_messages()[0].ts

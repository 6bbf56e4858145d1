"""Least privilege, checked: every AWS call a handler makes is allowed by its policy in template.yaml,
and every action a policy grants is used (or its comment says why it is there)."""

from __future__ import annotations

import gzip
import json
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.client import BaseClient
from tests.fakes.slack_api import FakeSlack
from tests.integration.conftest import DEMO, EVENTS, ROOT, TOKEN

from emr_triage.local.items import ReplayItem
from emr_triage.local.replay import LocalStack
from emr_triage.local.scenario import EventEntry, load_scenario
from emr_triage.local.template import load_template, render

# boto3 service name -> IAM service prefix; operations whose IAM action has another name.
IAM_PREFIX = {
    "emr": "elasticmapreduce",
    "emr-serverless": "emr-serverless",
    "emr-containers": "emr-containers",
    "ec2": "ec2",
}
IAM_ACTION = {("s3", "ListObjectsV2"): "s3:ListBucket"}
# Granted on purpose without a direct call (see the comment in template.yaml).
GRANTED_WITHOUT_CALL = {
    ("LogArrivalFunction", "s3:ListBucket"),
    # A check writes a whole item only when it alerts a held FAILED incident on its own (the job's last
    # failure, JOB#...): none of these folders has one.
    ("FollowUpFunction", "dynamodb:PutItem"),
    # bolt's lazy listener invokes the function itself in Lambda; the replay runs that work in-process.
    ("SlackInteractionsFunction", "lambda:InvokeFunction"),
    # A press whose work fails after its acknowledgement is dead-lettered: none fails here.
    ("SlackInteractionsFunction", "sqs:SendMessage"),
    # A digest invocation that fails after its retries goes to the dead-letter queue (EventInvokeConfig's
    # destination, sent with the function's role): none fails here.
    ("DigestFunction", "sqs:SendMessage"),
}
SIGNING_SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:emr-triage-signing-secret-AbCdEf"


def _policy_actions(function: str) -> set[str]:
    # As deployed with the default parameters (no customer key: the embedded AWS has no KMS to call)
    # (with a signing secret, so that the interactive function is deployed too)
    template = render(load_template(ROOT / "template.yaml"), {"SlackSigningSecretArn": SIGNING_SECRET})
    actions: set[str] = set()
    for policy in template["Resources"][function]["Properties"]["Policies"]:
        for statement in policy["Statement"]:
            assert statement["Effect"] == "Allow"
            assert "*" not in "".join(statement["Action"]), f"{function}: wildcard action {statement['Action']}"
            actions.update(statement["Action"])
    return actions


def record_calls(monkeypatch: pytest.MonkeyPatch, key: Callable[[str, BaseClient], Any]) -> dict[Any, set[str]]:
    """The IAM action of every AWS call the replayed functions make, by ``key(function, client)`` (the
    function is "?" for the replay's own calls)."""
    calls: dict[Any, set[str]] = defaultdict(set)
    current = {"function": "?"}
    original = BaseClient._make_api_call

    def record(self: BaseClient, operation: str, params: dict[str, Any]) -> Any:
        service = self.meta.service_model.service_name
        action = IAM_ACTION.get((service, operation), f"{IAM_PREFIX.get(service, service)}:{operation}")
        calls[key(current["function"], self)].add(action)
        return original(self, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", record)
    original_invoke = LocalStack.invoke

    def invoke(self: LocalStack, spec: Any, event: Any) -> dict[str, Any]:
        from aws_lambda_powertools.utilities import parameters

        # Each function is its own process in Lambda, with its own secret cache.
        parameters.clear_caches()  # type: ignore[no-untyped-call]
        current["function"] = spec.logical_id
        try:
            return original_invoke(self, spec, event)
        finally:
            current["function"] = "?"

    monkeypatch.setattr(LocalStack, "invoke", invoke)
    return calls


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> dict[str, set[str]]:
    return record_calls(monkeypatch, lambda function, _client: function)


OUTSIDE_STEPS = DEMO.parent / "application-outside-the-steps-api"
INTERACTIVE = DEMO.parent / "acknowledge-mute-then-unmute"
SLOW = DEMO.parent / "slow-step-no-executors-then-killed"
DIGEST = DEMO.parent / "weekly-digest-over-a-month"
SPOT = DEMO.parent / "spot-warning-before-lost-executors"
EKS = DEMO.parent / "eks-job-run-logs-land-later"


def _replay_all(stack: LocalStack, folder: Path, entries: list[EventEntry]) -> None:
    for entry in entries:
        item = ReplayItem(path=folder / entry.file, event=json.loads((folder / entry.file).read_text()))
        item.then_checks = entry.checks
        for report in stack.replay_then_checks(item):
            assert not any(i.error for i in report.invocations), report


def test_handlers_call_only_what_their_policies_allow_and_use_what_they_are_granted(
    recorded: dict[str, set[str]], slack: FakeSlack
) -> None:
    # Given the Lambda configuration (bot token from Secrets Manager), the saved events and the demo
    for folder in (EVENTS, DEMO, OUTSIDE_STEPS, INTERACTIVE, SLOW, DIGEST, SPOT, EKS):
        scenario = load_scenario(folder)
        with LocalStack(ROOT, scenario=scenario, folder=folder) as stack:
            secret = boto3.client("secretsmanager", region_name="us-east-1").create_secret(
                Name="slack", SecretString=TOKEN
            )
            stack.extra_environment.update(
                {"SLACK_DELIVERY": "secret", "SLACK_TOKEN_SECRET_ID": secret["ARN"], "SLACK_API_URL": slack.url}
            )
            # Slack's pace kept as deployed (the embedded stack turns it off): its DynamoDB calls count too
            stack.extra_environment["SLACK_POST_INTERVAL_SECONDS"] = "0.01"
            # When every event is replayed, plus a malformed one for each function (dead-lettered via SQS)
            _replay_all(stack, folder, scenario.events)
            step = json.loads((EVENTS / "malformed-step-event.json").read_text())
            log = json.loads((EVENTS / "s3-step-log-created.json").read_text())
            del log["detail"]["request-id"]
            for event in (step, log) if folder == EVENTS else ():  # the log rule watches events/' bucket
                report = stack.replay(ReplayItem(path=EVENTS / "malformed.json", event=event))
                assert [i.outcome["action"] for i in report.invocations if i.outcome] == ["rejected"]
            # And the log checks the functions scheduled run: one finds a log whose S3 event never came,
            # and a malformed one is dead-lettered
            if folder == EVENTS:
                boto3.client("s3", region_name="us-east-1").put_object(
                    Bucket=scenario.log_bucket,
                    Key=f"{scenario.log_prefix}applications/00f1982r1uukb925/jobs/00f1cbn5g4bb0c02/SPARK_DRIVER/stderr.gz",
                    Body=gzip.compress(b"26/11/18 21:03:09 ERROR SparkContext: Error initializing SparkContext.\n"),
                )
            sqs = boto3.client("sqs", region_name="us-east-1")
            sqs.send_message(QueueUrl=sqs.get_queue_url(QueueName="emr-triage-follow-ups")["QueueUrl"], MessageBody="{")
            checks = stack.run_follow_ups()
            assert checks and not any(i.error for r in checks for i in r.invocations)
    # Then, per function, the calls made are within the policy, and the policy holds nothing unused
    functions = (
        "EmrEventFunction",
        "LogArrivalFunction",
        "FollowUpFunction",
        "SlackInteractionsFunction",
        "DigestFunction",
    )
    for function in functions:
        granted = _policy_actions(function)
        made = recorded[function]
        assert made <= granted, f"{function} calls {sorted(made - granted)} without permission"
        unused = {a for a in granted - made if (function, a) not in GRANTED_WITHOUT_CALL}
        assert not unused, f"{function} is granted {sorted(unused)} but never calls it"

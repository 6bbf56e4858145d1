"""Secrets planted in logs, step arguments and events reach no Slack payload, no DynamoDB item and no line
of the functions' own log output (CloudWatch), on every path a failure takes."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from tests.fakes.slack_api import FakeSlack
from tests.integration.conftest import ROOT, load_event, slack_env, step_event, write_scenario

from emr_triage.local.replay import LocalStack, ReplayItem
from emr_triage.local.scenario import load_scenario

AWS_KEY, AWS_SECRET = "AKIAQ7PLANTED4EXAMPL", "pLaNtEdSeCrEt/K7MDENG/bPxRfiCYPLANTEDKEY"
JDBC_PASSWORD = "Tr0ub4dor-planted"
SLACK_TOKEN = "xoxb-1111111111-2222222222-plantedtokenvalue"
GITHUB_TOKEN = "ghp_PlantedGitHubToken0123456789abcdefABCD"
PRIVATE_KEY_BODY = "MIIEpAIBAAKCAQEAplantedprivatekeymaterial0123456789"
EVENT_FILES = ("01-failed.json", "02-driver.json")
SECRETS = [AWS_KEY, AWS_SECRET, JDBC_PASSWORD, SLACK_TOKEN, GITHUB_TOKEN, PRIVATE_KEY_BODY]

CLUSTER, STEP, APP = "j-PLANTED00001", "s-PLANTED00001", "application_1795000000000_0001"
STDERR = f"""\
26/11/20 02:00:00 INFO SparkContext: Running Spark version 3.5.2-amzn-1
26/11/20 02:00:01 INFO Client: Submitted application {APP}
26/11/20 02:00:02 INFO Export: using fs.s3a.access.key={AWS_KEY} fs.s3a.secret.key={AWS_SECRET}
Exception in thread "main" java.sql.SQLException: Access denied for jdbc:postgresql://etl:{JDBC_PASSWORD}@db:5432/x
Caused by: com.amazonaws.services.s3.model.AmazonS3Exception: Access Denied (Service: Amazon S3; Status Code: 403; \
Error Code: AccessDenied) with aws_secret_access_key = {AWS_SECRET}
\tat com.acme.Export.run(Export.scala:12) token={SLACK_TOKEN} GITHUB_TOKEN={GITHUB_TOKEN}
-----BEGIN RSA PRIVATE KEY-----
{PRIVATE_KEY_BODY}
-----END RSA PRIVATE KEY-----
"""
DRIVER = f"""\
26/11/20 02:00:05 INFO SparkContext: Submitted application: export password={JDBC_PASSWORD}
26/11/20 02:01:00 ERROR ApplicationMaster: User class threw exception: java.lang.IllegalStateException: \
cannot connect with --password {JDBC_PASSWORD} and key {AWS_KEY}
26/11/20 02:01:00 INFO ApplicationMaster: Final app status: FAILED, exitCode: 15
26/11/20 02:01:00 INFO ApplicationMaster: Unregistering ApplicationMaster with FAILED
"""


def _s3_event(key: str) -> dict[str, Any]:
    return {
        "version": "0",
        "id": "planted-s3",
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": "123456789012",
        "time": "2026-11-20T02:06:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": {
            "version": "0",
            "bucket": {"name": "planted-logs"},
            "object": {"key": key, "size": 100, "etag": "planted-etag"},
            "request-id": "R1",
            "requester": "123456789012",
            "reason": "PutObject",
        },
    }


@pytest.fixture
def function_log() -> Iterator[io.StringIO]:
    """Every line the functions log (what CloudWatch would get), at DEBUG, formatted as in Lambda."""
    from emr_triage.observability import logger

    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(logger.registered_formatter)
    standard = logging.getLogger(logger.name)
    level = standard.level
    standard.addHandler(handler)
    standard.setLevel(logging.DEBUG)
    try:
        yield buffer
    finally:
        standard.removeHandler(handler)
        standard.setLevel(level)


@pytest.mark.parametrize("delivery", ["bot", "webhook"])
def test_planted_secrets_reach_no_slack_payload_no_stored_item_and_no_function_log(
    tmp_path: Path,
    slack: FakeSlack,
    capfd: pytest.CaptureFixture[str],
    function_log: io.StringIO,
    delivery: str,
) -> None:
    # Given a failed step whose logs, arguments and event carry credentials of every kind, the functions
    # logging at DEBUG, and Slack through the real WebClient (bot) or WebhookClient (incoming webhook)
    driver_key = f"emr/{CLUSTER}/containers/{APP}/container_1795000000000_0001_01_000001/stderr.gz"
    failed = step_event(CLUSTER, STEP)
    failed["detail"]["message"] = f"Step {STEP} failed (password={JDBC_PASSWORD})"
    folder = write_scenario(
        tmp_path / "planted",
        {
            "description": "planted secrets",
            "log_uri": "s3://planted-logs/emr/",
            "slack_channel": "#emr-alerts",
            "clusters": [
                {
                    "id": CLUSTER,
                    "name": "exports",
                    "steps": [
                        {
                            "id": STEP,
                            "name": "export",
                            "args": [
                                "spark-submit",
                                "--conf",
                                f"spark.hadoop.fs.s3a.secret.key={AWS_SECRET}",
                                "s3://jobs/export.py",
                                "--password",
                                JDBC_PASSWORD,
                            ],
                            "failure_details": {"reason": "Unknown Error.", "message": f"token={SLACK_TOKEN}"},
                        }
                    ],
                }
            ],
        },
        {f"{CLUSTER}/steps/{STEP}/stderr.gz": STDERR, driver_key.removeprefix("emr/"): DRIVER},
        {"01-failed.json": failed, "02-driver.json": _s3_event(driver_key)},
    )
    environment = {**slack_env(slack), "POWERTOOLS_LOG_LEVEL": "DEBUG"}
    if delivery == "webhook":
        environment = {
            "SLACK_DELIVERY": "webhook",
            "SLACK_WEBHOOK_URL": slack.webhook_url,
            "POWERTOOLS_LOG_LEVEL": "DEBUG",
        }
    with LocalStack(ROOT, scenario=load_scenario(folder), folder=folder, extra_environment=environment) as stack:
        # When the failure, its driver log and the log checks are processed
        reports = [stack.replay(ReplayItem(path=folder / n, event=load_event(folder, n))) for n in EVENT_FILES]
        reports += stack.run_follow_ups()
        items = boto3.client("dynamodb", region_name="us-east-1").scan(TableName=stack.table_name)["Items"]
    printed = capfd.readouterr()
    invocations = [i for report in reports for i in report.invocations]
    function_output = function_log.getvalue() + printed.out + printed.err + "".join(i.output for i in invocations)
    # Then the failure was diagnosed and alerted, the driver log merged, nothing failed
    assert [i.outcome["action"] for i in invocations if i.outcome][:2] == ["incident_opened", "incident_updated"]
    assert not [i.error for i in invocations if i.error]
    sent = (
        json.dumps([c.payload for c in slack.calls])
        + json.dumps(slack.webhook_posts)
        + json.dumps(
            [u.get("content", "") if isinstance(u.get("content"), str) else "" for u in slack.uploads.values()]
        )
    )
    assert "export" in sent and items
    assert '"message":"incident opened"' in function_output  # (the functions' log lines were captured)
    # And no secret is in any Slack payload or file, any stored item, or any line the functions logged
    stored = json.dumps(items)
    for secret in SECRETS:
        assert secret not in sent, f"{secret} sent to Slack"
        assert secret not in stored, f"{secret} stored in DynamoDB"
        assert secret not in function_output, f"{secret} in the functions' log output"

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

from emr_triage.local.items import ReplayItem
from emr_triage.local.replay import LocalStack
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


# ── secrets cut by a length limit, spanning lines, or named only by their key ─────────────────────────

CUT_KEY_ID = "AKIAQ7CUTSTRADDLE500"
CUT_URL_SECRET = "UrlS3cretStraddles500cut"
PEM_BODY = [f"MIIEplantedpemline{i:02d}abcdefghijklmnopqrstuvwxyzABCDEFGHIJ" for i in range(5)]
TAG_SECRET = "Zq8pLmN2vX4tR7wKtagvalue"
ARG_SECRET = "ArgS3cretAcross1000cut"
CUT_CLUSTER, CUT_STEP = "j-PLANTEDCUT01", "s-PLANTEDCUT01"
# What must not appear: the whole secret and its first ten characters (what a cut at 500 used to keep).
CUT_SECRETS = [CUT_KEY_ID, CUT_URL_SECRET, *PEM_BODY, TAG_SECRET, ARG_SECRET]
CUT_FRAGMENTS = [*CUT_SECRETS, CUT_KEY_ID[:10], CUT_URL_SECRET[:10], "plantedpemline"]


def _at_490(head: str, secret_start: str) -> str:
    """``head``, padded so that what follows (``secret_start``...) begins at character 490."""
    return f"{head} {'x' * (490 - len(head) - 2 - len(secret_start))} {secret_start}"


def _cut_scenario(folder: Path) -> Path:
    stderr = "\n".join(
        [
            "26/11/20 02:00:00 INFO SparkContext: Running Spark version 3.5.2-amzn-1",
            "26/11/20 02:00:01 INFO Export: client key follows",
            "-----BEGIN RSA PRIVATE KEY-----",
            *PEM_BODY,
            _at_490('Exception in thread "main" java.lang.OutOfMemoryError: Java heap space', "") + CUT_KEY_ID,
            _at_490("Caused by: java.io.IOException: cannot write", "s3a://AKIAQ7OTHERKEYID00:")
            + f"{CUT_URL_SECRET}@bucket/out",
            "\tat com.acme.Export.run(Export.scala:12)",
            "",
        ]
    )
    failed = step_event(CUT_CLUSTER, CUT_STEP)
    return write_scenario(
        folder,
        {
            "description": "secrets across cuts",
            "log_uri": "s3://planted-logs/emr/",
            "slack_channel": "#emr-alerts",
            "clusters": [
                {
                    "id": CUT_CLUSTER,
                    "name": "exports",
                    "tags": {"jdbc-password": TAG_SECRET, "team": "data"},
                    "steps": [
                        {
                            "id": CUT_STEP,
                            "name": "export",
                            "args": [
                                "spark-submit",
                                "--conf",
                                "spark.acme.padding=" + "p" * 960,
                                f"--conf=spark.hadoop.fs.s3a.secret.key={ARG_SECRET}",
                                "s3://jobs/export.py",
                            ],
                        }
                    ],
                }
            ],
        },
        {f"{CUT_CLUSTER}/steps/{CUT_STEP}/stderr.gz": stderr},
        {"01-failed.json": failed},
    )


def _assert_none_in(where: str, text: str) -> None:
    for fragment in CUT_FRAGMENTS:
        assert fragment not in text, f"{fragment} in {where}"


def test_secrets_across_a_cut_in_a_key_block_or_in_a_tag_reach_no_output_path(
    tmp_path: Path, slack: FakeSlack, capfd: pytest.CaptureFixture[str], function_log: io.StringIO
) -> None:
    # Given a failed step whose error lines carry a key id and a URL password across the 500-character
    # cut, a private key that began above the two lines of context kept, a tag named like a password,
    # and step arguments with a secret across the 1,000-character cut of the stored command
    folder = _cut_scenario(tmp_path / "cut")
    environment = {**slack_env(slack), "POWERTOOLS_LOG_LEVEL": "DEBUG"}
    # When the failure is processed by the functions (Slack over HTTP, DynamoDB in moto)
    with LocalStack(ROOT, scenario=load_scenario(folder), folder=folder, extra_environment=environment) as stack:
        reports = [stack.replay(ReplayItem(path=folder / "01-failed.json", event=load_event(folder, "01-failed.json")))]
        reports += stack.run_follow_ups()
        items = boto3.client("dynamodb", region_name="us-east-1").scan(TableName=stack.table_name)["Items"]
    printed = capfd.readouterr()
    invocations = [i for report in reports for i in report.invocations]
    assert [i.outcome["action"] for i in invocations if i.outcome][:1] == ["incident_opened"]
    uploads = [u.get("content", "") for u in slack.uploads.values() if isinstance(u.get("content"), str)]
    # Then the alert was diagnosed from the log, with the error lines in its thread and file
    assert "OutOfMemoryError" in json.dumps([c.payload for c in slack.calls]) and uploads
    assert "Caused by: java.io.IOException" in uploads[0]
    # And no secret, nor its first part, is in any Slack request, uploaded file, stored item or log line
    _assert_none_in("Slack requests", json.dumps([c.payload for c in slack.calls]))
    _assert_none_in("the uploaded extract", "\n".join(uploads))
    _assert_none_in("DynamoDB", json.dumps(items))
    _assert_none_in("the functions' logs", function_log.getvalue() + printed.out + printed.err)
    _assert_none_in("invocation output", "".join(i.output for i in invocations))
    # And the tag that is not a secret is kept as it was
    assert '"team"' in json.dumps(items) and '"data"' in json.dumps(items)


def test_secrets_across_a_cut_reach_no_command_line_output_or_saved_file(tmp_path: Path) -> None:
    # Given the same scenario, and its step log as a local file
    from emr_triage.cli import main

    folder = _cut_scenario(tmp_path / "cut")
    log = tmp_path / "stderr.gz"
    log.write_bytes((folder / "logs" / CUT_CLUSTER / "steps" / CUT_STEP / "stderr.gz").read_bytes())
    saved = tmp_path / "extract.txt"
    outputs: dict[str, str] = {}
    # When every command that prints it runs: replay (verbose, with JSON), incidents show and list
    # (text and JSON), analyze (text and JSON) with --save-extract
    commands = {
        "replay": ["replay", "-v", "--json", str(folder)],
        "incidents show": ["incidents", "show", f"{CUT_CLUSTER}.{CUT_STEP}"],
        "incidents show --json": ["incidents", "show", "--json", f"{CUT_CLUSTER}.{CUT_STEP}"],
        "incidents list --json": ["incidents", "list", "--json"],
        "analyze": ["analyze", "--color", "always", "--save-extract", str(saved), str(log)],
        "analyze --json": ["analyze", "--json", str(log)],
    }
    for name, argv in commands.items():
        out = io.StringIO()
        assert main(argv, out=out) == 0, name
        outputs[name] = out.getvalue()
    # Then each printed the failure, and none printed a secret or its first part, nor saved one
    assert "OutOfMemoryError" in outputs["replay"] and "OutOfMemoryError" in outputs["analyze --json"]
    assert CUT_STEP in outputs["incidents show"]
    for name, output in outputs.items():
        _assert_none_in(name, output)
    assert "OutOfMemoryError" in saved.read_text("utf-8")
    _assert_none_in("the saved extract", saved.read_text("utf-8"))

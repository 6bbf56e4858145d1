"""The emr-triage command: replay (embedded and --aws) and its bad-input errors (analyze: test_cli_analyze.py)."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import boto3
import pytest
from moto import mock_aws
from tests.fakes.slack_api import FakeSlack
from tests.integration.conftest import DEMO, EVENTS, ROOT, TOKEN, step_event

from emr_triage.cli import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, main


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(list(argv), out=out)
    return code, out.getvalue()


def test_demo_replay_prints_the_alert_and_the_incident() -> None:
    # When the demo scenario is replayed on the embedded AWS
    code, output = run("replay", str(DEMO))
    # Then it succeeds, and the Slack message names cluster, step, state and the diagnosis from the logs
    assert code == EXIT_OK, output
    alert = output[output.index("The Slack message emr-triage posts") :]
    for expected in (
        "EMR step failed: daily-sales-aggregation",
        "nightly-sales-etl",
        "j-3ANP7YJ2WQ0LC",
        "s-3H8ZKQW0EXAMP",
        "FAILED",
        "Diagnosis: YARN killed a container for exceeding its memory limit",
        "daily_sales_agg.py:64 in main",
    ):
        assert expected in alert
    # And it prints the stored incident
    assert "Incidents recorded (1)" in output
    assert re.search(r"verdict\s+yarn_memory_kill", output)
    # And every scenario expectation held
    assert "expectation not met" not in output


def test_demo_json_flag_prints_block_kit_and_the_stored_item() -> None:
    code, output = run("replay", "--json", str(DEMO / "01-step-failed.json"))
    assert code == EXIT_OK
    start = output.index("Block Kit JSON:") + len("Block Kit JSON:")
    end = output.index("\n\n", start)
    payload = json.loads(output[start:end])
    assert payload["channel"] == "#data-platform-alerts"
    assert payload["blocks"][0]["type"] == "header"
    assert "Stored item (JSON):" in output


def test_the_installed_command_runs_the_demo() -> None:
    # The console script pip installs (what `make demo` calls)
    command = shutil.which("emr-triage", path=str(Path(sys.executable).parent))
    assert command, "emr-triage is not on the virtualenv's PATH"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "AWS_"))}
    result = subprocess.run(
        [command, "replay", str(DEMO)], capture_output=True, text=True, cwd=ROOT, env=env, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "YARN killed a container" in result.stdout


def _readme_outcomes() -> dict[str, str]:
    """The README's table of saved events: file -> the outcome it documents when replayed alone."""
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("<!-- events-table -->") : readme.index("<!-- /events-table -->")]
    outcomes = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 3 and cells[0].startswith("`") and cells[0].endswith(".json`"):
            outcomes[cells[0].strip("`")] = cells[2]
    return outcomes


def test_readme_documents_every_saved_event() -> None:
    documented = set(_readme_outcomes())
    on_disk = {p.name for p in EVENTS.glob("*.json")}
    assert documented == on_disk


@pytest.mark.parametrize("name", sorted(p.name for p in EVENTS.glob("*.json")))
def test_each_saved_event_replays_to_the_outcome_the_readme_states(name: str) -> None:
    # Given what the README says replaying this file alone does
    documented = _readme_outcomes()[name]
    expected = re.match(r"`([a-z_]+)`", documented)
    assert expected, f"README outcome for {name} must start with a `code` outcome"
    action = expected[1]
    # When it is replayed alone
    code, output = run("replay", str(EVENTS / name))
    # Then the outcome and exit status match
    if action == "unknown_event_type":
        assert code == EXIT_BAD_INPUT
        return
    if action == "not_delivered":
        assert code == EXIT_OK and "not delivered" in output
        return
    assert re.search(rf"[✓✗] {action}\b", output), output
    assert code == (EXIT_FAILED if action == "rejected" else EXIT_OK)
    category = re.search(r"diagnosis `([a-z_]+)`", documented)
    if category:
        assert re.search(rf"verdict\s+{category[1]}\b", output), output


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("this is not json", "not JSON"),
        ('{"hello": "world"}', "not an EventBridge event"),
        ("\x00\x01\x02binary", "not JSON"),
        ('{"detail": ' + "[" * 200_000 + "]" * 200_000 + "}", "nested too deeply"),
        ('{"detail": {"n": ' + "9" * 5_001 + "}}", "4,300 digits"),
    ],
    ids=["text", "not-eventbridge", "binary", "nested-200000-deep", "5001-digit-number"],
)
def test_bad_event_files_exit_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, message: str
) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    code, _ = run("replay", str(path))
    err = capsys.readouterr().err
    assert code == EXIT_BAD_INPUT
    assert err.count("\n") == 1 and err.startswith("emr-triage: error:") and message in err


def test_unknown_event_type_exits_2_naming_the_type(capsys: pytest.CaptureFixture[str]) -> None:
    code, _ = run("replay", str(EVENTS / "unknown-event-type.json"))
    err = capsys.readouterr().err
    assert code == EXIT_BAD_INPUT and "EMR Auto Scaling Policy State Change" in err


def test_scenario_missing_its_cluster_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "incomplete"
    folder.mkdir()
    (folder / "scenario.yaml").write_text("description: x\nlog_uri: s3://b-logs/p/\nevents: [failed.json]\n")
    (folder / "failed.json").write_text(json.dumps(step_event("j-MISSING00001", "s-MISSING00001")))
    code, _ = run("replay", str(folder))
    err = capsys.readouterr().err
    assert code == EXIT_BAD_INPUT
    assert "j-MISSING00001" in err and "does not define" in err


def test_missing_path_and_folder_without_scenario_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("replay", str(tmp_path / "nope.json"))[0] == EXIT_BAD_INPUT
    assert run("replay", str(tmp_path))[0] == EXIT_BAD_INPUT
    assert "no scenario.yaml" in capsys.readouterr().err


def test_malformed_event_exits_1_and_shows_it_was_dead_lettered() -> None:
    code, output = run("replay", str(EVENTS / "malformed-step-event.json"))
    assert code == EXIT_FAILED
    assert "detail.clusterId: Field required" in output
    assert "Dead-lettered" in output


def test_with_slack_token_the_replay_posts_through_slack_sdk(monkeypatch: pytest.MonkeyPatch, slack: FakeSlack) -> None:
    # Given SLACK_BOT_TOKEN, SLACK_API_URL and SLACK_CHANNEL in the environment
    monkeypatch.setenv("SLACK_BOT_TOKEN", TOKEN)
    monkeypatch.setenv("SLACK_API_URL", slack.url)
    monkeypatch.setenv("SLACK_CHANNEL", "#emr-alerts")
    # When the demo is replayed
    code, output = run("replay", str(DEMO))
    # Then the message went to that API and channel, once, and was edited for the two folded events and
    # for the driver's log (it adds a lost executor to "Also in the logs")
    assert code == EXIT_OK, output
    posts = slack.root_posts()
    assert len(posts) == 1 and posts[0].payload["channel"] == "#emr-alerts"
    assert len(slack.calls_to("chat.update")) == 3
    assert "The Slack message emr-triage posts" not in output  # not rendered: it was sent


def test_replay_against_a_deployed_stack_uses_its_resources(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a deployed stack (in moto's CloudFormation) with the incidents table and dead-letter queue
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    template = {
        "Parameters": {
            "LogBucketName": {"Type": "String"},
            "LogKeyPrefix": {"Type": "String"},
            "SlackChannel": {"Type": "String"},
            "SlackTokenSecretArn": {"Type": "String"},
        },
        "Resources": {
            "IncidentsTable": {
                "Type": "AWS::DynamoDB::Table",
                "Properties": {
                    "TableName": "deployed-incidents",
                    "BillingMode": "PAY_PER_REQUEST",
                    "AttributeDefinitions": [
                        {"AttributeName": n, "AttributeType": "S"}
                        for n in ("pk", "sk", "gsi1pk", "gsi1sk", "gsi2pk", "gsi2sk")
                    ],
                    "KeySchema": [
                        {"AttributeName": "pk", "KeyType": "HASH"},
                        {"AttributeName": "sk", "KeyType": "RANGE"},
                    ],
                    "GlobalSecondaryIndexes": [
                        {
                            "IndexName": "gsi1",
                            "KeySchema": [
                                {"AttributeName": "gsi1pk", "KeyType": "HASH"},
                                {"AttributeName": "gsi1sk", "KeyType": "RANGE"},
                            ],
                            "Projection": {"ProjectionType": "ALL"},
                        },
                        {
                            "IndexName": "gsi2",
                            "KeySchema": [
                                {"AttributeName": "gsi2pk", "KeyType": "HASH"},
                                {"AttributeName": "gsi2sk", "KeyType": "RANGE"},
                            ],
                            "Projection": {"ProjectionType": "KEYS_ONLY"},
                        },
                    ],
                },
            },
            "DeadLetterQueue": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "deployed-dlq"}},
            "FollowUpQueue": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "deployed-follow-ups"}},
        },
    }
    with mock_aws():
        boto3.client("s3").create_bucket(Bucket="deployed-emr-logs")
        boto3.client("cloudformation").create_stack(
            StackName="emr-triage-test",
            TemplateBody=json.dumps(template),
            Parameters=[
                {"ParameterKey": "LogBucketName", "ParameterValue": "deployed-emr-logs"},
                {"ParameterKey": "LogKeyPrefix", "ParameterValue": "logs/"},
                {"ParameterKey": "SlackChannel", "ParameterValue": "#prod-alerts"},
                {
                    "ParameterKey": "SlackTokenSecretArn",
                    "ParameterValue": "arn:aws:secretsmanager:us-east-1:123456789012:secret:s-AbCdEf",
                },
            ],
        )
        # When a saved event is replayed with --aws against that stack
        code, output = run(
            "replay",
            "--aws",
            "--stack-name",
            "emr-triage-test",
            "--region",
            "us-east-1",
            str(EVENTS / "step-failed.json"),
        )
        # Then the handler ran with the stack's resources: the incident is in the stack's table, and its
        # log check waits in the stack's queue, delayed 5 minutes, for the deployed FollowUpFunction
        items = boto3.client("dynamodb").scan(TableName="deployed-incidents")["Items"]
        sqs = boto3.client("sqs")
        attributes = sqs.get_queue_attributes(
            QueueUrl=sqs.get_queue_url(QueueName="deployed-follow-ups")["QueueUrl"], AttributeNames=["All"]
        )["Attributes"]
    assert code == EXIT_OK, output
    assert "stack emr-triage-test" in output
    assert [i["incident_id"]["S"] for i in items] == ["j-123456789ABCD.s-ZYXWVUTSRQPON"]
    assert attributes["ApproximateNumberOfMessagesDelayed"] == "1", attributes
    assert "#prod-alerts" in output


def test_incidents_list_and_show_read_what_the_last_replay_recorded() -> None:
    # Given a replay of the reordered storm and of the two-phase scenario on the embedded AWS
    reordered, two_phase = DEMO.parent / "reordered-duplicated-storm", DEMO.parent / "step-logs-land-after-the-alert"
    code, output = run("replay", str(reordered), str(two_phase))
    assert code == EXIT_OK, output
    # When the incidents are listed
    code, listing = run("incidents", "list")
    # Then every incident is there, newest failure first, the folded ones marked as such
    assert code == EXIT_OK and listing.startswith("4 incident(s)")
    lines = listing.splitlines()[1:]
    assert "j-1ORDERSETL020.s-2LOADORDERS00" in lines[0] and "sql_analysis_error" in lines[0]
    assert sum("FOLDED" in line for line in lines) == 2
    # And filters narrow it: open ones of one cluster, within a time window
    code, narrowed = run("incidents", "list", "--open", "--cluster", "j-3ANP7YJ2WQ0LC", "--since", "3650d")
    assert code == EXIT_OK and narrowed.startswith("1 incident(s)") and "yarn_memory_kill" in narrowed
    code, none = run("incidents", "list", "--since", "1m")
    assert code == EXIT_OK and none.startswith("0 incident(s)")
    # And one incident shows its verdict, evidence, timeline and where its Slack message is
    code, shown = run("incidents", "show", "j-3ANP7YJ2WQ0LC.s-3H8ZKQW0EXAMP")
    assert code == EXIT_OK
    for expected in ("yarn_memory_kill", "timeline", "Folded" if "Folded" in shown else "cluster", "slack link"):
        assert expected in shown, shown
    code, as_json = run("incidents", "list", "--json")
    assert code == EXIT_OK and {i["incident_id"] for i in json.loads(as_json)} >= {"j-3ANP7YJ2WQ0LC.cluster"}


def test_incidents_say_what_to_do_when_there_is_nothing_to_read_or_the_input_is_wrong() -> None:
    # Given no replay yet: a clear error naming the fix
    code, _ = run("incidents", "list")
    assert code == 2
    # Given a replay: an unknown id is not found (exit 1), a bad --since is bad usage (exit 2)
    run("replay", str(DEMO))
    assert run("incidents", "show", "j-NOPE.s-NOPE")[0] == 1
    assert run("incidents", "list", "--since", "seven days")[0] == 2


def test_incidents_stats_prints_the_digests_figures_over_the_recorded_history() -> None:
    from emr_triage.local.history import generate

    # Given the digest scenario's generated month, replayed on the embedded AWS
    code, output = run("replay", str(DEMO.parent / "weekly-digest-over-a-month"))
    assert code == EXIT_OK, output
    history = generate(until=datetime(2026, 12, 7, 8, tzinfo=UTC), days=30, seed=8)
    # When its figures are asked for, over everything recorded
    code, stats = run("incidents", "stats", "--since", "3650d")
    # Then they are the history's: every failure and run, by category, the flaky jobs, recovery
    assert code == EXIT_OK, stats
    failures = len(history.incidents)
    assert f"{failures} failure(s) in {len(history.runs)} run(s) that ended" in stats, stats
    for category, count in Counter(i.diagnosis.category for i in history.incidents if i.diagnosis).items():
        assert f"• {category}: {count} (before: 0)" in stats
    assert "Flakiest jobs" in stats and "Time to recover" in stats and "Time to acknowledge" in stats

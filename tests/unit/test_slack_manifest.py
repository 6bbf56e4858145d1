"""The Slack app manifest (`emr-triage slack-manifest`): one paste creates the app the functions need."""

from __future__ import annotations

import io
import json

import boto3
import pytest
import yaml
from moto import mock_aws

from emr_triage.cli import main
from emr_triage.exceptions import EmrTriageError
from emr_triage.interactive.gate import COMMAND
from emr_triage.local.manifest import filled, stack_url

URL = "https://abcdefgh1234.lambda-url.us-east-1.on.aws/"


def test_the_manifest_asks_for_what_the_functions_call_and_points_slack_at_the_function_url() -> None:
    manifest = yaml.safe_load(filled(URL))
    # Then the scopes are those of the calls the functions make, and no more
    assert set(manifest["oauth_config"]["scopes"]["bot"]) == {
        "chat:write",  # chat.postMessage, chat.update, chat.postEphemeral
        "files:write",  # files_upload_v2
        "commands",  # /emr-triage
        "channels:history",  # conversations.history (an unanswered root post), public channels
        "groups:history",  # ... private channels
        "usergroups:read",  # usergroups.users.list (SLACK_DECIDERS naming a group)
    }
    # And the slash command and the buttons both reach the interactive function
    (command,) = manifest["features"]["slash_commands"]
    assert command["command"] == COMMAND and command["url"] == URL
    assert manifest["settings"]["interactivity"] == {"is_enabled": True, "request_url": URL}
    assert "INTERACTIONS_URL" not in json.dumps(manifest)


@pytest.mark.parametrize(
    "bad", ["http://abc.lambda-url.us-east-1.on.aws/", "https://x/<script>", "javascript:alert(1)"]
)
def test_only_an_https_url_is_filled_in(bad: str) -> None:
    with pytest.raises(EmrTriageError, match="not an https URL"):
        filled(bad)


def test_the_url_comes_from_the_deployed_stacks_output() -> None:
    template = {
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {"SlackInteractionsUrl": {"Value": URL}},
    }
    with mock_aws():
        cloudformation = boto3.client("cloudformation", region_name="us-east-1")
        cloudformation.create_stack(StackName="emr-triage", TemplateBody=json.dumps(template))
        cloudformation.create_stack(
            StackName="read-only", TemplateBody=json.dumps({"Resources": template["Resources"]})
        )
        assert stack_url("emr-triage", "us-east-1") == URL
        with pytest.raises(EmrTriageError, match="deploy it with SlackSigningSecretArn"):
            stack_url("read-only", "us-east-1")
        out = io.StringIO()
        assert main(["slack-manifest", "--stack-name", "emr-triage", "--region", "us-east-1"], out=out) == 0
    assert f"request_url: {URL}" in out.getvalue()

"""`emr-triage slack-manifest`: the Slack app manifest, filled with the deployed stack's interactions URL."""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

from emr_triage.exceptions import EmrTriageError

MANIFEST = Path(__file__).with_name("slack-app-manifest.yaml")
PLACEHOLDER = "INTERACTIONS_URL"
OUTPUT = "SlackInteractionsUrl"
# A Lambda function URL (https://<url-id>.lambda-url.<region>.on.aws/), or any https URL in front of it.
_URL = re.compile(r"^https://[A-Za-z0-9.-]+(?::\d+)?(?:/[A-Za-z0-9._~/-]*)?$")


def filled(url: str) -> str:
    """The manifest with the interactions URL in place (the slash command's and interactivity's)."""
    if not _URL.match(url):
        raise EmrTriageError(f"not an https URL for Slack to call: {url!r} (the stack's {OUTPUT} output)")
    return re.sub(rf"^(\s*(?:request_)?url: ){PLACEHOLDER}$", rf"\g<1>{url}", MANIFEST.read_text("utf-8"), flags=re.M)


def stack_url(stack_name: str, region: str | None) -> str:
    """The deployed stack's SlackInteractionsUrl output."""
    from botocore.exceptions import BotoCoreError, ClientError

    from emr_triage.aws import clients

    try:
        stack = clients.cloudformation(region).describe_stacks(StackName=stack_name)["Stacks"][0]
    except (ClientError, BotoCoreError) as exc:
        raise EmrTriageError(f"cannot read stack {stack_name}: {exc}") from exc
    outputs = {o["OutputKey"]: o.get("OutputValue", "") for o in stack.get("Outputs", [])}
    if OUTPUT not in outputs:
        raise EmrTriageError(
            f"stack {stack_name} has no {OUTPUT} output: deploy it with SlackSigningSecretArn (the Slack app's "
            "signing secret in Secrets Manager) and SlackDelivery=secret, which add SlackInteractionsFunction"
        )
    return outputs[OUTPUT]


def manifest_for(url: str | None, stack_name: str | None, region: str | None) -> str:
    """The filled manifest: with ``url``, else the stack's output."""
    if not url and not stack_name:
        raise EmrTriageError("give --url, or --stack-name (or stack_name in samconfig.toml)")
    return filled(url or stack_url(str(stack_name), region))


def add_manifest_command(commands: Any) -> argparse.ArgumentParser:
    """Register ``slack-manifest`` on the CLI's subcommands."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "slack-manifest",
        help="print the Slack app manifest, filled with the stack's interactions URL",
        description="The Slack app manifest (scopes, bot user, /emr-triage, interactivity) with the URL of "
        "SlackInteractionsFunction: paste it at api.slack.com/apps -> Create New App -> From a manifest.",
    )
    parser.add_argument("--url", help="the interactions URL (default: the stack's SlackInteractionsUrl output)")
    parser.add_argument("--stack-name", help="the deployed stack (default: stack_name in samconfig.toml)")
    parser.add_argument("--config-env", default="default", help="samconfig.toml environment")
    parser.add_argument("--region", help="AWS region of the stack")
    parser.add_argument("--project", help="the project folder with samconfig.toml (default: found from here)")
    return parser

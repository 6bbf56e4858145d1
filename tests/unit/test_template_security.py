"""Static security checks of template.yaml: least privilege, encryption at rest, the Slack token only in
Secrets Manager. (cfn-lint and `sam validate --lint` run in `make validate`; these are the rules they do not
have.)"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from emr_triage.local.template import load_template

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = ROOT / "template.yaml"
TEMPLATE = load_template(TEMPLATE_PATH)
TEXT = TEMPLATE_PATH.read_text("utf-8").splitlines()

# Allow statements whose resource needs a wildcard because AWS offers no narrower scope: the cluster or
# EMR Serverless application is only known from the event, and EMR's logs are every key under the prefix.
# Each must carry a comment in the template saying why (checked below).
WILDCARD_RESOURCE_EXCEPTIONS = frozenset(
    {"EmrReads", "EmrServerlessReads", "EmrServerlessApplicationReads", "ReadEmrLogs"}
)


def _statements() -> Iterator[tuple[str, dict[str, Any]]]:
    """(owner, statement) of every IAM statement: functions' inline policies and resource policies."""
    for name, resource in TEMPLATE["Resources"].items():
        properties = resource.get("Properties", {})
        for policy in properties.get("Policies", []) or []:
            if isinstance(policy, dict):
                for statement in policy.get("Statement", []):
                    yield name, statement
        for statement in (properties.get("PolicyDocument") or {}).get("Statement", []):
            yield name, statement


def _strings(value: Any) -> Iterator[str]:
    """Every literal string in a value, through intrinsic functions (!Sub "...", !GetAtt, lists)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    else:
        tag_value = getattr(value, "value", None)
        if tag_value is not None:
            yield from _strings(tag_value)


def _has_comment_above(sid: str, owner: str) -> bool:
    """Whether the `- Sid: <sid>` line of this owner's policy has a comment just above it."""
    start = next(i for i, line in enumerate(TEXT) if line.strip() == f"{owner}:")
    for i in range(start, len(TEXT)):
        if TEXT[i].strip() == f"- Sid: {sid}":
            return TEXT[i - 1].strip().startswith("#")
    raise AssertionError(f"{owner}: no Sid {sid} in the template text")


ALLOWS = [(owner, s) for owner, s in _statements() if s.get("Effect") == "Allow"]


def test_there_are_statements_to_check() -> None:
    # (the walk must find the functions' policies and the queue policy, or the checks below prove nothing)
    owners = {owner for owner, _ in ALLOWS}
    assert {"EmrEventFunction", "LogArrivalFunction", "FollowUpFunction", "DeadLetterQueuePolicy"} <= owners
    assert len(ALLOWS) >= 20


@pytest.mark.parametrize(("owner", "statement"), ALLOWS, ids=[f"{o}.{s.get('Sid')}" for o, s in ALLOWS])
def test_allow_statements_name_their_actions_and_scope_their_resources(owner: str, statement: dict[str, Any]) -> None:
    sid = statement.get("Sid")
    assert sid, f"{owner}: every statement has a Sid (for review and for this check)"
    actions = list(_strings(statement.get("Action")))
    assert actions and not any("*" in action for action in actions), f"{owner}.{sid}: wildcard action {actions}"
    resources = list(_strings(statement.get("Resource")))
    assert resources, f"{owner}.{sid}: no Resource"
    assert "*" not in resources, f"{owner}.{sid}: Resource '*'"
    if any("*" in resource for resource in resources):
        assert sid in WILDCARD_RESOURCE_EXCEPTIONS, f"{owner}.{sid}: wildcard resource {resources}"
        assert _has_comment_above(sid, owner), f"{owner}.{sid}: say in a comment why the wildcard is needed"


def test_a_wildcard_is_only_in_deny_statements_of_resource_policies() -> None:
    denies = [(owner, s) for owner, s in _statements() if s.get("Effect") == "Deny"]
    assert [s["Sid"] for _, s in denies] == ["DenyInsecureTransport"]


def test_the_table_and_every_queue_are_encrypted_at_rest() -> None:
    resources = TEMPLATE["Resources"]
    table = resources["IncidentsTable"]["Properties"]
    assert table["SSESpecification"]["SSEEnabled"] is True
    queues = {name: r["Properties"] for name, r in resources.items() if r["Type"] == "AWS::SQS::Queue"}
    assert set(queues) == {"DeadLetterQueue", "FollowUpQueue"}
    for name, properties in queues.items():
        assert properties.get("SqsManagedSseEnabled") is True or properties.get("KmsMasterKeyId"), name


def test_the_slack_token_is_only_read_from_secrets_manager() -> None:
    # No function gets a token or a webhook URL in its environment: only the secret's ARN
    variables = TEMPLATE["Globals"]["Function"]["Environment"]["Variables"]
    for resource in TEMPLATE["Resources"].values():
        variables = {**variables, **resource.get("Properties", {}).get("Environment", {}).get("Variables", {})}
    secretish = [name for name in variables if re.search(r"TOKEN|WEBHOOK|SECRET|PASSWORD", name)]
    assert secretish == ["SLACK_TOKEN_SECRET_ID"]
    parameter = TEMPLATE["Parameters"]["SlackTokenSecretArn"]
    assert parameter["AllowedPattern"].startswith("^arn:"), "the parameter takes a secret's ARN, not a token"
    # And the only grant on it is reading that one secret
    reads = [s for _, s in ALLOWS if "secretsmanager:GetSecretValue" in _strings(s.get("Action"))]
    assert reads and all(list(_strings(s["Resource"])) == ["SlackTokenSecretArn"] for s in reads)


def test_every_function_log_group_has_a_retention() -> None:
    groups = {n: r for n, r in TEMPLATE["Resources"].items() if r["Type"] == "AWS::Logs::LogGroup"}
    assert len(groups) == 3
    assert all("RetentionInDays" in g["Properties"] for g in groups.values())


def test_every_alarm_notifies_the_topic_and_the_dashboard_shows_metrics_the_functions_emit() -> None:
    from emr_triage.observability import MetricName

    resources = TEMPLATE["Resources"]
    alarms = {n: r["Properties"] for n, r in resources.items() if r["Type"] == "AWS::CloudWatch::Alarm"}
    assert {"DeadLetterQueueDepthAlarm", "FunctionThrottlesAlarm", "UnanalysedIncidentAgeAlarm"} <= set(alarms)
    assert all("AlarmActions" in a and a.get("AlarmDescription") for a in alarms.values())
    body = resources["OperationsDashboard"]["Properties"]["DashboardBody"]
    text = re.sub(r"\$\{[^}]+\}", "x", body if isinstance(body, str) else body["Fn::Sub"])
    widgets = json.loads(text)["widgets"]
    ours = {m[1] for w in widgets for m in w["properties"]["metrics"] if m[0] == "EmrTriage"}
    emitted = {value for name, value in vars(MetricName).items() if name.isupper() and isinstance(value, str)}
    assert ours and ours <= emitted, ours - emitted

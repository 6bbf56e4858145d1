"""Many accounts, one deployment, on moto's two accounts: a member account's failure is read through the
role the member template creates (each call made with its credentials, and allowed by its policy), the
central functions only assume it (allowed by their policies with member accounts), and nothing of the
member's is read with the central account's own credentials."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.client import BaseClient
from tests.fakes.slack_api import FakeSlack
from tests.integration.conftest import EVENTS, ROOT, TOKEN
from tests.integration.test_iam import record_calls

from emr_triage.local.items import ReplayItem
from emr_triage.local.members import member_parameters
from emr_triage.local.replay import LocalStack
from emr_triage.local.scenario import load_scenario
from emr_triage.local.template import load_template, render

FOLDER = EVENTS / "scenarios" / "member-account-step-failed"
MEMBER = "210987654321"
MEMBER_TEMPLATE = ROOT / "layers/common/emr_triage/deploy/member-template.yaml"


def _actions(statements: list[dict[str, Any]]) -> set[str]:
    return {a for s in statements if s["Effect"] == "Allow" for a in s["Action"]}


def _member_role_actions() -> set[str]:
    role = render(load_template(MEMBER_TEMPLATE), {"CentralAccountId": "123456789012", "ExternalId": "x"})
    (policy,) = role["Resources"]["ReadRole"]["Properties"]["Policies"]
    return _actions(policy["PolicyDocument"]["Statement"])


def _function_actions(function: str) -> set[str]:
    scenario = load_scenario(FOLDER)
    template = render(load_template(ROOT / "template.yaml"), member_parameters(scenario.member_accounts))
    actions: set[str] = set()
    for policy in template["Resources"][function]["Properties"]["Policies"]:
        actions |= _actions(policy["Statement"])
    return actions


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> dict[tuple[str, str], set[str]]:
    """(function, account whose credentials signed it) → IAM actions called."""
    from moto.iam.models import get_account_id_from

    def by_account(function: str, client: BaseClient) -> tuple[str, str]:
        credentials = client._request_signer._credentials  # type: ignore[attr-defined]
        return function, get_account_id_from(credentials.access_key)

    return record_calls(monkeypatch, by_account)


def test_a_member_accounts_failure_is_read_through_its_role_and_only_through_it(
    calls: dict[tuple[str, str], set[str]], slack: FakeSlack
) -> None:
    # Given the central stack with one member account, whose cluster and logs exist only in that account
    scenario = load_scenario(FOLDER)
    with LocalStack(ROOT, scenario=scenario, folder=FOLDER) as stack:
        secret = boto3.client("secretsmanager", region_name="us-east-1").create_secret(Name="slack", SecretString=TOKEN)
        stack.extra_environment.update(
            {"SLACK_DELIVERY": "secret", "SLACK_TOKEN_SECRET_ID": secret["ARN"], "SLACK_API_URL": slack.url}
        )
        calls.clear()  # what seeding the scenario called is not the functions'
        # When the member's failure and its log's S3 event are replayed, and the log checks run
        for entry in scenario.events:
            path = FOLDER / entry.file
            report = stack.replay(ReplayItem(path=path, event=json.loads(path.read_text())))
            assert not any(i.error for i in report.invocations), report
        assert not any(i.error for r in stack.run_follow_ups() for i in r.invocations)
    member_role = _member_role_actions()
    # Then what the functions read in the member account was signed with its role's credentials, and its
    # role allows every such call
    for (function, account), actions in calls.items():
        if account == MEMBER:
            assert actions <= member_role, f"{function}: {sorted(actions - member_role)} not in the member role"
    member_calls = set().union(*(a for (_, account), a in calls.items() if account == MEMBER))
    assert {"elasticmapreduce:DescribeCluster", "elasticmapreduce:DescribeStep", "s3:GetObject"} <= member_calls
    # And with the central account's credentials, the functions only assumed the role and used their own
    # table, queues and secret, each allowed by their policy as deployed with member accounts
    for (function, account), actions in calls.items():
        if account != MEMBER and function != "?":  # ("?": the replay's own calls, landing a log object)
            assert not {a for a in actions if a.startswith("elasticmapreduce:")}, function
            granted = _function_actions(function)
            assert actions <= granted, f"{function}: {sorted(actions - granted)} not granted"
    assert "sts:AssumeRole" in calls[("EmrEventFunction", "123456789012")]
    assert "sts:AssumeRole" in calls[("LogArrivalFunction", "123456789012")]
    # And the alert names the account
    (root,) = slack.root_messages()
    assert "`prod-data` `210987654321`" in json.dumps(root.blocks)

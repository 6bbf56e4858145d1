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

from emr_triage.local.template import load_template, render

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = ROOT / "template.yaml"
KEY = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
LOG_BUCKET_KEY = "arn:aws:kms:us-east-1:123456789012:key/0000aaaa-12ab-34cd-56ef-1234567890ab"
SECRET_KEY = "arn:aws:kms:us-east-1:123456789012:key/1111bbbb-12ab-34cd-56ef-1234567890ab"
SIGNING_SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:emr-triage-signing-AbCdEf"
# Deployed with every optional part on (customer managed keys, an alarm topic): every statement and
# setting the stack can have; DEFAULT is the stack deployed with the parameters' defaults.
TEMPLATE = render(
    load_template(TEMPLATE_PATH),
    {
        "KmsKeyArn": KEY,
        "LogBucketKmsKeyArn": LOG_BUCKET_KEY,
        "SlackSecretKmsKeyArn": SECRET_KEY,
        "AlarmTopicArn": "arn:aws:sns:us-east-1:123456789012:ops",
        "SlackSigningSecretArn": SIGNING_SECRET,
        "MemberAccounts": "111122223333,444455556666",
        "MemberExternalId": "emr-triage-3f9c2a",
        "MemberLogBuckets": "prod-emr-logs,ml-emr-logs",
    },
)
DEFAULT = render(load_template(TEMPLATE_PATH))
FUNCTIONS = (
    "EmrEventFunction",
    "LogArrivalFunction",
    "FollowUpFunction",
    "SlackInteractionsFunction",
    "DigestFunction",
)
TEXT = TEMPLATE_PATH.read_text("utf-8").splitlines()

# Allow statements whose resource needs a wildcard because AWS offers no narrower scope: the cluster or
# EMR Serverless application is only known from the event, and EMR's logs are every key under the prefix.
# Each must carry a comment in the template saying why (checked below).
WILDCARD_RESOURCE_EXCEPTIONS = frozenset(
    {
        "EmrReads",
        "EmrServerlessReads",
        "EmrServerlessApplicationReads",
        "EmrOnEksReads",
        "EmrOnEksVirtualClusterReads",
        "AssumeMemberRoles",
        "ReadEmrLogs",
    }
)
# Actions IAM only evaluates against Resource "*" (no resource-level permissions, Service Authorization
# Reference): allowed that way alone, only with a condition narrowing them, and with a comment saying why.
STAR_ONLY_ACTIONS = frozenset({"ec2:DescribeInstances"})


def _statements(template: dict[str, Any] = TEMPLATE) -> Iterator[tuple[str, dict[str, Any]]]:
    """(owner, statement) of every IAM statement: functions' inline policies and resource policies."""
    for name, resource in template["Resources"].items():
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
    if resources == ["*"] and set(actions) <= STAR_ONLY_ACTIONS:
        assert statement.get("Condition"), f"{owner}.{sid}: Resource '*' needs a condition narrowing it"
        assert _has_comment_above(sid, owner), f"{owner}.{sid}: say in a comment why Resource '*' is needed"
        return
    assert "*" not in resources, f"{owner}.{sid}: Resource '*'"
    if any("*" in resource for resource in resources):
        assert sid in WILDCARD_RESOURCE_EXCEPTIONS, f"{owner}.{sid}: wildcard resource {resources}"
        assert _has_comment_above(sid, owner), f"{owner}.{sid}: say in a comment why the wildcard is needed"


def test_a_wildcard_is_only_in_deny_statements_of_resource_policies() -> None:
    denies = [(owner, s) for owner, s in _statements() if s.get("Effect") == "Deny"]
    assert [s["Sid"] for _, s in denies] == ["DenyInsecureTransport"]


def test_the_table_and_every_queue_are_encrypted_at_rest() -> None:
    # Given the template deployed with its defaults (no customer key)
    resources = DEFAULT["Resources"]
    # Then the table and both queues are still encrypted, with AWS-owned keys
    assert resources["IncidentsTable"]["Properties"]["SSESpecification"] == {"SSEEnabled": True}
    queues = {name: r["Properties"] for name, r in resources.items() if r["Type"] == "AWS::SQS::Queue"}
    assert set(queues) == {"DeadLetterQueue", "FollowUpQueue"}
    assert all(properties["SqsManagedSseEnabled"] is True for properties in queues.values())


def _kms_mentions(node: Any, path: str = "") -> Iterator[str]:
    """The paths of every key or string value that names KMS."""
    if isinstance(node, dict):
        for key, value in node.items():
            if "kms" in key.lower() or key == "SSEType":
                yield f"{path}/{key}"
            yield from _kms_mentions(value, f"{path}/{key}")
    elif isinstance(node, list):
        for i, item in enumerate(node):
            yield from _kms_mentions(item, f"{path}/{i}")
    elif isinstance(node, str) and "kms" in node.lower():
        yield f"{path}={node}"


def test_without_a_customer_key_nothing_kms_specific_is_deployed() -> None:
    # Given the default KmsKeyArn (empty), when the template is rendered as CloudFormation would deploy it
    deployed = {"Globals": DEFAULT["Globals"], "Resources": DEFAULT["Resources"]}
    # Then no resource names a key, and no role is granted any KMS action
    assert list(_kms_mentions(deployed)) == []


def test_with_a_customer_key_every_store_is_encrypted_with_it() -> None:
    # Given KmsKeyArn set
    resources = TEMPLATE["Resources"]
    key = {"Ref": "KmsKeyArn"}
    # Then the table, both queues, every function's log group and the functions' environment use that key
    assert resources["IncidentsTable"]["Properties"]["SSESpecification"] == {
        "SSEEnabled": True,
        "SSEType": "KMS",
        "KMSMasterKeyId": key,
    }
    queues = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::SQS::Queue"]
    assert len(queues) == 2
    for queue in queues:
        # (SQS-managed SSE and a KMS key are exclusive: CloudFormation rejects both)
        assert queue["KmsMasterKeyId"] == key and "SqsManagedSseEnabled" not in queue
    groups = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::Logs::LogGroup"]
    assert len(groups) == len(FUNCTIONS) and all(g["KmsKeyId"] == key for g in groups)
    assert TEMPLATE["Globals"]["Function"]["KmsKeyArn"] == key
    # And nothing else of the stack stores data: no bucket, secret, topic or stream of its own
    stores = {"AWS::S3::Bucket", "AWS::SecretsManager::Secret", "AWS::SNS::Topic", "AWS::Kinesis::Stream"}
    assert not {r["Type"] for r in resources.values()} & stores


def test_with_customer_keys_each_role_may_only_use_each_key_for_what_it_protects() -> None:
    # Given all three keys set, then each function gets one statement per key, naming that key only:
    # the stack's key with exactly what DynamoDB and SQS need from their callers (writers GenerateDataKey,
    # readers Decrypt); the log bucket's and the secret's keys Decrypt only, and only through S3 or
    # Secrets Manager
    def via(service: str) -> dict[str, Any]:
        return {"StringEquals": {"kms:ViaService": {"Fn::Sub": f"{service}.${{AWS::Region}}.amazonaws.com"}}}

    expected = [
        {
            "Sid": "CustomerKey",
            "Effect": "Allow",
            "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
            "Resource": {"Ref": "KmsKeyArn"},
        },
        {
            "Sid": "LogBucketKey",
            "Effect": "Allow",
            "Action": ["kms:Decrypt"],
            "Resource": {"Ref": "LogBucketKmsKeyArn"},
            "Condition": via("s3"),
        },
        {
            "Sid": "SlackSecretKey",
            "Effect": "Allow",
            "Action": ["kms:Decrypt"],
            "Resource": {"Ref": "SlackSecretKmsKeyArn"},
            "Condition": via("secretsmanager"),
        },
    ]
    for function in FUNCTIONS:
        kms = [s for owner, s in _statements() if owner == function and any("kms:" in a for a in _strings(s["Action"]))]
        # (the interactive and digest functions read no log: no log bucket key)
        readers = function not in ("SlackInteractionsFunction", "DigestFunction")
        wanted = expected if readers else [s for s in expected if s["Sid"] != "LogBucketKey"]
        assert kms == wanted, function
    # And no resource policy of the stack mentions KMS (the key's own policy is the operator's: README)
    assert not [s for owner, s in _statements() if owner not in FUNCTIONS and list(_kms_mentions(s))]


def test_each_key_parameter_turns_on_only_its_own_statement() -> None:
    # Given only the log bucket's key, then only the S3 decrypt statement appears, and nothing is encrypted
    # with it
    template = load_template(TEMPLATE_PATH)
    rendered = render(template, {"LogBucketKmsKeyArn": LOG_BUCKET_KEY})
    sids = {s["Sid"] for _, s in _statements(rendered) if any("kms:" in a for a in _strings(s["Action"]))}
    assert sids == {"LogBucketKey"}
    resources = {n: r for n, r in rendered["Resources"].items() if r["Type"] != "AWS::Serverless::Function"}
    assert list(_kms_mentions(resources)) == []


@pytest.mark.parametrize(
    ("value", "accepted"),
    [
        ("", True),
        ("arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab", True),
        ("arn:aws:kms:eu-west-1:123456789012:key/mrk-1234abcd12ab34cd56ef1234567890ab", True),
        ("arn:aws-us-gov:kms:us-gov-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab", True),
        ("arn:aws:kms:us-east-1:123456789012:alias/emr-triage", False),
        ("alias/emr-triage", False),
        ("1234abcd-12ab-34cd-56ef-1234567890ab", False),
    ],
)
@pytest.mark.parametrize("parameter", ["KmsKeyArn", "LogBucketKmsKeyArn", "SlackSecretKmsKeyArn"])
def test_the_key_parameters_take_a_key_arn_or_nothing(parameter: str, value: str, accepted: bool) -> None:
    # (an alias would pass DynamoDB and SQS but not the log groups, and an IAM policy cannot name one)
    pattern = load_template(TEMPLATE_PATH)["Parameters"][parameter]["AllowedPattern"]
    assert bool(re.fullmatch(pattern, value)) is accepted


def test_every_function_has_its_reserved_concurrency_and_the_queue_poller_never_exceeds_it() -> None:
    template = load_template(TEMPLATE_PATH)
    parameters = template["Parameters"]
    expected = {
        "EmrEventFunction": "EmrEventConcurrency",
        "LogArrivalFunction": "LogArrivalConcurrency",
        "FollowUpFunction": "FollowUpConcurrency",
        "SlackInteractionsFunction": "SlackInteractionsConcurrency",
    }
    for function, parameter in expected.items():
        properties = template["Resources"][function]["Properties"]
        assert properties["ReservedConcurrentExecutions"] == {"Ref": parameter}
        assert parameters[parameter]["Type"] == "Number" and parameters[parameter]["MinValue"] >= 1
    # The SQS poller scales to its own maximum concurrency: it must not take more messages than the function
    # may run, or the throttled ones count as receives towards the dead-letter queue
    event = template["Resources"]["FollowUpFunction"]["Properties"]["Events"]["LogCheckDue"]["Properties"]
    assert event["ScalingConfig"]["MaximumConcurrency"] == {"Ref": "FollowUpConcurrency"}
    assert parameters["FollowUpConcurrency"]["MinValue"] >= 2  # Lambda's minimum for MaximumConcurrency
    # And the defaults leave an account at the default 1,000 far more than Lambda's 100 unreserved minimum
    assert sum(parameters[p]["Default"] for p in expected.values()) <= 100


def test_every_scanner_suppression_says_why() -> None:
    # Every checkov skip in the template carries its reason, and only the two accepted checks are skipped
    skips = [
        (name, skip)
        for name, resource in load_template(TEMPLATE_PATH)["Resources"].items()
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", [])
    ]
    assert skips
    for name, skip in skips:
        assert len(str(skip.get("comment", "")).split()) >= 10, f"{name}: {skip.get('id')} needs its reason"
    assert {skip["id"] for _, skip in skips} == {"CKV_AWS_116", "CKV_AWS_117"}


def test_the_slack_token_is_only_read_from_secrets_manager() -> None:
    # No function gets a token or a webhook URL in its environment: only the secret's ARN
    variables = TEMPLATE["Globals"]["Function"]["Environment"]["Variables"]
    for resource in TEMPLATE["Resources"].values():
        variables = {**variables, **resource.get("Properties", {}).get("Environment", {}).get("Variables", {})}
    secretish = [name for name in variables if re.search(r"TOKEN|WEBHOOK|SECRET|PASSWORD", name)]
    assert secretish == ["SLACK_TOKEN_SECRET_ID", "SLACK_SIGNING_SECRET_ID"]
    for name in ("SlackTokenSecretArn", "SlackSigningSecretArn"):
        pattern = TEMPLATE["Parameters"][name]["AllowedPattern"]
        assert pattern.removeprefix("^$|").startswith("^arn:"), f"{name} takes a secret's ARN, not a secret"
    # And the only grants on them are reading those secrets: the signing secret, only by the function
    # that verifies requests with it
    reads = {
        o: list(_strings(s["Resource"])) for o, s in ALLOWS if "secretsmanager:GetSecretValue" in _strings(s["Action"])
    }
    assert reads.pop("SlackInteractionsFunction") == ["SlackTokenSecretArn", "SlackSigningSecretArn"]
    assert reads and all(resource == ["SlackTokenSecretArn"] for resource in reads.values())


def test_the_interactive_function_exists_only_with_its_signing_secret_and_a_bot_token() -> None:
    assert "SlackInteractionsFunction" not in DEFAULT["Resources"]
    assert DEFAULT["Globals"]["Function"]["Environment"]["Variables"]["SLACK_INTERACTIVE"] == "false"
    webhook = render(
        load_template(TEMPLATE_PATH), {"SlackSigningSecretArn": SIGNING_SECRET, "SlackDelivery": "webhook"}
    )
    assert "SlackInteractionsFunction" not in webhook["Resources"]
    assert TEMPLATE["Globals"]["Function"]["Environment"]["Variables"]["SLACK_INTERACTIVE"] == "true"
    function = TEMPLATE["Resources"]["SlackInteractionsFunction"]["Properties"]
    assert function["FunctionUrlConfig"] == {"AuthType": "NONE"}  # Slack cannot sign with SigV4: verified in code


def test_the_interactive_function_reads_and_updates_incidents_reads_its_secrets_and_nothing_else() -> None:
    granted = {
        (s["Sid"], action)
        for owner, s in ALLOWS
        if owner == "SlackInteractionsFunction"
        for action in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    }
    assert granted == {
        *(
            ("IncidentsReadUpdate", f"dynamodb:{a}")
            for a in ("GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query")
        ),
        ("SlackSecrets", "secretsmanager:GetSecretValue"),
        # bolt's lazy listener: the function invokes itself, asynchronously, for a press's work after its ack
        ("LazyListenerInvokesItself", "lambda:InvokeFunction"),
        # a press whose work failed after its acknowledgement is kept, with its reason
        ("DeadLetterFailedPresses", "sqs:SendMessage"),
        ("CustomerKey", "kms:Decrypt"),
        ("CustomerKey", "kms:GenerateDataKey"),
        ("SlackSecretKey", "kms:Decrypt"),
    }
    statements = {s["Sid"]: s for owner, s in ALLOWS if owner == "SlackInteractionsFunction"}
    invoke = "".join(_strings(statements["LazyListenerInvokesItself"]["Resource"]))
    assert invoke.endswith(":function:${AWS::StackName}-slack-interactions")  # itself, by the name it is given
    name = TEMPLATE["Resources"]["SlackInteractionsFunction"]["Properties"]["FunctionName"]
    assert "".join(_strings(name)) == "${AWS::StackName}-slack-interactions"
    assert set(_strings(statements["IncidentsReadUpdate"]["Resource"])) >= {
        "IncidentsTable",
        "${IncidentsTable.Arn}/index/gsi3",
    }


def test_every_function_log_group_has_a_retention() -> None:
    groups = {n: r for n, r in TEMPLATE["Resources"].items() if r["Type"] == "AWS::Logs::LogGroup"}
    assert len(groups) == len(FUNCTIONS)
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


def test_every_rule_that_dead_letters_may_send_to_the_dead_letter_queue() -> None:
    # A rule whose target dead-letters to the queue needs the queue policy to name it (aws:SourceArn):
    # otherwise the event EventBridge gives up on is dropped, silently.
    resources = TEMPLATE["Resources"]
    (statement,) = [
        s
        for s in resources["DeadLetterQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"]
        if s["Sid"] == "EventBridgeRulesDeadLetter"
    ]
    allowed = {arn["Fn::GetAtt"][0] for arn in statement["Condition"]["ArnEquals"]["aws:SourceArn"]}
    dead_lettering = set()
    for name, resource in resources.items():
        properties = resource.get("Properties", {})
        for event_name, event in (properties.get("Events") or {}).items():
            if event.get("Type") == "EventBridgeRule" and "DeadLetterConfig" in event.get("Properties", {}):
                dead_lettering.add(f"{name}{event_name}")  # SAM names the rule <function><event>
        if resource["Type"] == "AWS::Events::Rule" and any("DeadLetterConfig" in t for t in properties["Targets"]):
            dead_lettering.add(name)
    assert dead_lettering and dead_lettering <= allowed, sorted(dead_lettering - allowed)

"""template.yaml as the local runner reads it: routing by rule patterns, environment, parameters."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from emr_triage.exceptions import TemplateError
from emr_triage.local.template import (
    Resolver,
    function_specs,
    load_template,
    matching_rules,
    parameter_defaults,
    render,
)

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"


@pytest.fixture(scope="module")
def specs():  # type: ignore[no-untyped-def]
    template = load_template(ROOT / "template.yaml")
    resolver = Resolver(
        parameters={
            **parameter_defaults(template),
            "LogBucketName": "emr-triage-example-logs",
            "SlackChannel": "#emr-alerts",
            "SlackTokenSecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:s-AbCdEf",
        },
        refs={"IncidentsTable": "incidents", "DeadLetterQueue": "https://sqs/dlq", "FollowUpQueue": "https://sqs/f"},
        pseudo={"AWS::Region": "us-east-1", "AWS::AccountId": "123456789012", "AWS::StackName": "t"},
    )
    return function_specs(template, ROOT, resolver)


def _routes(specs, name: str) -> list[str]:  # type: ignore[no-untyped-def]
    event = json.loads((EVENTS / name).read_text())
    return [spec.logical_id for spec, _ in matching_rules(specs, event)]


@pytest.mark.parametrize(
    ("name", "function"),
    [
        ("step-failed.json", "EmrEventFunction"),
        ("step-cancelled.json", "EmrEventFunction"),
        ("step-interrupted.json", "EmrEventFunction"),
        ("cluster-terminated-with-errors.json", "EmrEventFunction"),
        ("serverless-job-run-failed.json", "EmrEventFunction"),
        ("serverless-job-run-cancelled.json", "EmrEventFunction"),
        ("s3-step-log-created.json", "LogArrivalFunction"),
        ("s3-container-log-created.json", "LogArrivalFunction"),
        ("step-completed.json", "EmrEventFunction"),
        ("cluster-terminated-by-user.json", None),
        ("serverless-job-run-succeeded.json", "EmrEventFunction"),
        ("s3-other-object-created.json", None),
        ("instance-group-suspended.json", "EmrEventFunction"),
        ("instance-fleet-insufficient-capacity.json", "EmrEventFunction"),
    ],
)
def test_rules_deliver_failures_successes_and_log_objects_and_nothing_else(
    specs, name: str, function: str | None
) -> None:  # type: ignore[no-untyped-def]
    assert _routes(specs, name) == ([function] if function else [])


def test_log_rule_only_matches_the_configured_bucket_and_prefix(specs) -> None:  # type: ignore[no-untyped-def]
    event = json.loads((EVENTS / "s3-step-log-created.json").read_text())
    event["detail"]["bucket"]["name"] = "someone-elses-bucket"
    assert matching_rules(specs, event) == []
    event = json.loads((EVENTS / "s3-step-log-created.json").read_text())
    event["detail"]["object"]["key"] = "other-prefix/j-123456789ABCD/steps/s-ZYXWVUTSRQPON/stderr.gz"
    assert matching_rules(specs, event) == []


def test_functions_get_the_globals_and_their_handler_files(specs) -> None:  # type: ignore[no-untyped-def]
    by_id = {s.logical_id: s for s in specs}
    assert set(by_id) == {"EmrEventFunction", "LogArrivalFunction", "FollowUpFunction", "DigestFunction"}
    assert by_id["FollowUpFunction"].queues == ("FollowUpQueue",)
    for spec in specs:
        assert spec.handler_file.is_file() and spec.handler_name == "lambda_handler"
        assert spec.environment["INCIDENTS_TABLE"] == "incidents"
        assert spec.environment["SLACK_DELIVERY"] == "secret"
        assert spec.environment["LOG_PREFIX"] == "elasticmapreduce/"
        assert spec.environment["DEAD_LETTER_QUEUE_URL"] == "https://sqs/dlq"
    assert by_id["LogArrivalFunction"].timeout_seconds == 300


def test_resolver_handles_sub_with_variables_and_refuses_what_it_cannot_resolve() -> None:
    resolver = Resolver(parameters={"P": "x"}, attributes={"Q.Arn": "arn:q"}, pseudo={"AWS::Region": "r"})
    assert resolver.resolve({"Fn::Sub": "${P}-${AWS::Region}-${Q.Arn}"}) == "x-r-arn:q"
    assert resolver.resolve({"Fn::Sub": ["${A}/${P}", {"A": {"Ref": "P"}}]}) == "x/x"
    assert resolver.resolve({"Fn::Join": ["-", ["a", {"Ref": "P"}]]}) == "a-x"
    with pytest.raises(TemplateError, match="Fn::If"):
        resolver.resolve({"Fn::If": ["C", 1, 2]})
    with pytest.raises(TemplateError, match="Ref Missing"):
        resolver.resolve({"Ref": "Missing"})


_CONDITIONAL = {
    "Parameters": {"Key": {"Type": "String", "Default": ""}, "Env": {"Type": "String", "Default": "dev"}},
    "Conditions": {
        "HasKey": {"Fn::Not": [{"Fn::Equals": [{"Ref": "Key"}, ""]}]},
        "ProdWithKey": {"Fn::And": [{"Condition": "HasKey"}, {"Fn::Equals": [{"Ref": "Env"}, "prod"]}]},
    },
    "Resources": {
        "Queue": {
            "Type": "AWS::SQS::Queue",
            "Properties": {
                "SqsManagedSseEnabled": {"Fn::If": ["HasKey", {"Ref": "AWS::NoValue"}, True]},
                "KmsMasterKeyId": {"Fn::If": ["HasKey", {"Ref": "Key"}, {"Ref": "AWS::NoValue"}]},
                "Tags": [{"Fn::If": ["ProdWithKey", {"Key": "k", "Value": "v"}, {"Ref": "AWS::NoValue"}]}],
            },
        },
        "OnlyWithKey": {"Type": "AWS::SNS::Topic", "Condition": "HasKey"},
    },
}


def test_render_deploys_the_branch_each_condition_takes_and_leaves_out_no_value() -> None:
    # Given a template with conditional properties, list items and a conditional resource
    # When it is rendered with the defaults, then only the false branches are there
    default = render(_CONDITIONAL)["Resources"]
    assert default == {"Queue": {"Type": "AWS::SQS::Queue", "Properties": {"SqsManagedSseEnabled": True, "Tags": []}}}
    # And with the parameters set, the true branches (through a condition that names another)
    keyed = render(_CONDITIONAL, {"Key": "arn:k", "Env": "prod"})["Resources"]
    assert keyed["Queue"]["Properties"] == {"KmsMasterKeyId": {"Ref": "Key"}, "Tags": [{"Key": "k", "Value": "v"}]}
    assert "OnlyWithKey" in keyed
    # And the template itself is left as it was
    assert "Fn::If" in _CONDITIONAL["Resources"]["Queue"]["Properties"]["SqsManagedSseEnabled"]


def test_render_refuses_a_condition_it_cannot_evaluate() -> None:
    unknown = {**_CONDITIONAL, "Resources": {"R": {"Type": "T", "Properties": {"P": {"Fn::If": ["Nope", 1, 2]}}}}}
    with pytest.raises(TemplateError, match="condition Nope is not defined"):
        render(unknown)
    region = {**_CONDITIONAL, "Conditions": {"HasKey": {"Fn::Equals": [{"Ref": "AWS::Region"}, "us-east-1"]}}}
    with pytest.raises(TemplateError, match="AWS::Region"):
        render(region)


def test_samconfig_has_default_and_prod_with_placeholders_the_template_rejects() -> None:
    config = tomllib.loads((ROOT / "samconfig.toml").read_text())
    assert config["version"] == 0.1
    template = load_template(ROOT / "template.yaml")
    bucket_pattern = template["Parameters"]["LogBucketName"]["AllowedPattern"]
    import re

    for env in ("default", "prod"):
        assert config[env]["build"]["parameters"] == {"cached": True, "parallel": True}
        overrides = config[env]["deploy"]["parameters"]["parameter_overrides"]
        bucket = re.search(r'LogBucketName="([^"]*)"', overrides)
        assert bucket and not re.match(bucket_pattern, bucket[1]), "placeholder must fail the deploy until edited"


def test_samconfig_overrides_only_parameters_the_template_has_with_values_it_accepts() -> None:
    # (a misspelt or removed parameter fails the deploy; sam deploy does not check it before)
    import re

    config = tomllib.loads((ROOT / "samconfig.toml").read_text())
    parameters = load_template(ROOT / "template.yaml")["Parameters"]
    for env in ("default", "prod"):
        overrides = dict(re.findall(r'(\w+)="([^"]*)"', config[env]["deploy"]["parameters"]["parameter_overrides"]))
        assert set(overrides) <= set(parameters), set(overrides) - set(parameters)
        for name, value in overrides.items():
            spec = parameters[name]
            if spec["Type"] == "Number" and "MinValue" in spec:
                assert spec["MinValue"] <= int(value) <= spec["MaxValue"], (env, name, value)
            if "AllowedPattern" in spec and not value.startswith("REPLACE_"):
                assert re.fullmatch(spec["AllowedPattern"], value), (env, name, value)

"""Run saved events through the same handler code Lambda runs, in one process.

The stack comes from template.yaml: each event goes to the functions whose EventBridge rule patterns
match it (as EventBridge would decide), and each function runs with the environment the template gives
it. AWS is either embedded (moto, in-process, seeded from a scenario folder) or the real account of a
deployed stack (``--aws``: its parameters and physical resources are read from CloudFormation).
"""

from __future__ import annotations

import importlib.util
import io
import os
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

from emr_triage.exceptions import ScenarioError, TemplateError
from emr_triage.local.items import EventReport, Invocation, ReplayItem
from emr_triage.local.members import member_parameters
from emr_triage.local.moto_atomic import atomic_dynamodb
from emr_triage.local.scenario import (
    Scenario,
    seed,
)
from emr_triage.local.template import (
    FunctionSpec,
    Resolver,
    function_specs,
    load_template,
    matching_rules,
    parameter_defaults,
)
from emr_triage.models.events import describe_event
from emr_triage.models.incident import Incident

Mode = Literal["embedded", "aws"]
EMBEDDED_TABLE = "emr-triage-incidents"
EMBEDDED_QUEUE = "emr-triage-dead-letters"
EMBEDDED_FOLLOW_UP_QUEUE = "emr-triage-follow-ups"
# Follow-ups (log checks) a replay runs at most, so a bug that keeps rescheduling cannot loop forever.
MAX_FOLLOW_UP_ROUNDS = 20
EMBEDDED_STACK = "emr-triage-local"
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_SECURITY_TOKEN": "testing",
}


@dataclass
class LocalContext:
    """The parts of Lambda's context object that Powertools and our handlers use."""

    function_name: str
    memory_limit_in_mb: int
    timeout_seconds: int
    region: str
    account: str
    function_version: str = "$LATEST"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    started: float = field(default_factory=time.monotonic)

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:{self.account}:function:{self.function_name}"

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    @property
    def log_stream_name(self) -> str:
        return "local"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.timeout_seconds - (time.monotonic() - self.started)) * 1000))


@contextmanager
def environment(values: Mapping[str, str]) -> Iterator[None]:
    """Set environment variables for a block, restoring the previous values after (not thread-safe)."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def slack_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """How replayed functions reach Slack: through slack-sdk's WebClient when SLACK_BOT_TOKEN is set, its
    WebhookClient when SLACK_WEBHOOK_URL is (incoming-webhook mode), else the console."""
    token = environ.get("SLACK_BOT_TOKEN")
    webhook = environ.get("SLACK_WEBHOOK_URL")
    if not token and webhook:
        return {"SLACK_DELIVERY": "webhook", "SLACK_WEBHOOK_URL": webhook}
    if not token:
        return {"SLACK_DELIVERY": "console"}
    env = {"SLACK_DELIVERY": "env", "SLACK_BOT_TOKEN": token}
    if environ.get("SLACK_API_URL"):
        env["SLACK_API_URL"] = environ["SLACK_API_URL"]
    if environ.get("SLACK_CHANNEL"):
        env["SLACK_CHANNEL"] = environ["SLACK_CHANNEL"]
    return env


class LocalStack:
    """The stack of template.yaml, on embedded AWS (moto) or a deployed stack's real resources."""

    def __init__(
        self,
        root: Path,
        *,
        mode: Mode = "embedded",
        scenario: Scenario | None = None,
        folder: Path | None = None,
        stack_name: str | None = None,
        region: str | None = None,
        extra_environment: Mapping[str, str] | None = None,
    ) -> None:
        self.root = root
        self.mode = mode
        self.scenario = scenario
        self.folder = folder
        self.stack_name = stack_name
        self.region = region or (scenario.region if scenario else None) or os.environ.get("AWS_REGION") or "us-east-1"
        self.account = scenario.account if scenario else "123456789012"
        # Slack goes to the console unless the caller says otherwise (the CLI passes slack_environment()).
        # Embedded, time is compressed: a log check is due at once, and the first one is the deadline's.
        # Nor are Slack posts paced (tests and the load benchmark that measure pacing set it).
        local = {"FOLLOW_UP_INTERVAL_SECONDS": "0", "SLACK_POST_INTERVAL_SECONDS": "0"} if mode == "embedded" else {}
        self.extra_environment = {
            "SLACK_DELIVERY": "console",
            "EMR_TRIAGE_REPLAY": "1",
            # A button's work after its acknowledgement runs in this process, not as an invocation.
            "SLACK_LAZY": "inline",
            **local,
            **(extra_environment or {}),
        }
        self.template = load_template(root / "template.yaml")
        self.specs: list[FunctionSpec] = []
        self.table_name = ""
        self._mock: Any = None
        self._env: Any = None
        self._modules: dict[str, ModuleType] = {}
        # Log objects that land in S3 with their S3 event (scenario ``lands: true``).
        self.held_back: dict[tuple[str, str], Path] = {}

    # -- set-up -------------------------------------------------------------------------------------
    def __enter__(self) -> LocalStack:
        from emr_triage import runtime

        base = {"AWS_REGION": self.region, "AWS_DEFAULT_REGION": self.region}
        if self.mode == "embedded":
            base.update(FAKE_CREDENTIALS)
            if not (self.scenario and self.scenario.member_accounts):
                # (with member accounts, moto tells accounts apart by their credentials: see local/members.py)
                base["MOTO_ACCOUNT_ID"] = self.account
        self._env = environment(base)
        self._env.__enter__()
        runtime.reset()
        try:
            resolver = self._start_embedded() if self.mode == "embedded" else self._attach_to_stack()
            self.specs = function_specs(self.template, self.root, resolver)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        from emr_triage import runtime

        runtime.reset()
        if self._mock is not None:
            self._mock.stop()
            self._mock = None
        if self._env is not None:
            self._env.__exit__(None, None, None)
            self._env = None

    def _start_embedded(self) -> Resolver:
        import boto3

        try:
            from moto import mock_aws
        except ImportError as exc:  # pragma: no cover - depends on the installation
            raise ScenarioError(
                "the embedded AWS needs moto: pip install 'emr-triage[local]' (make demo does), or use --aws"
            ) from exc
        atomic_dynamodb()
        self._mock = mock_aws()
        self._mock.start()
        scenario = self.scenario or Scenario(
            description="events without a scenario", log_uri="s3://emr-triage-local-logs/elasticmapreduce/"
        )
        if self.scenario is not None and self.folder is not None:
            self.held_back = seed(self.scenario, self.folder)
        else:
            boto3.client("s3", region_name=self.region).create_bucket(Bucket=scenario.log_bucket)
        table = self.template["Resources"]["IncidentsTable"]["Properties"]
        dynamodb = boto3.client("dynamodb", region_name=self.region)
        dynamodb.create_table(
            TableName=EMBEDDED_TABLE,
            AttributeDefinitions=table["AttributeDefinitions"],
            KeySchema=table["KeySchema"],
            GlobalSecondaryIndexes=table.get("GlobalSecondaryIndexes", []),
            BillingMode=table.get("BillingMode", "PAY_PER_REQUEST"),
        )
        ttl = table.get("TimeToLiveSpecification")
        if ttl:
            dynamodb.update_time_to_live(TableName=EMBEDDED_TABLE, TimeToLiveSpecification=ttl)
        if scenario.history is not None:
            from emr_triage.local.history import seed_history

            seed_history(dynamodb, EMBEDDED_TABLE, scenario.history.until, scenario.history.days, scenario.history.seed)
        self.table_name = EMBEDDED_TABLE
        sqs = boto3.client("sqs", region_name=self.region)
        queue_url = sqs.create_queue(QueueName=EMBEDDED_QUEUE)["QueueUrl"]
        queue_arn = f"arn:aws:sqs:{self.region}:{self.account}:{EMBEDDED_QUEUE}"
        follow_up_url = sqs.create_queue(QueueName=EMBEDDED_FOLLOW_UP_QUEUE)["QueueUrl"]
        parameters = {
            **parameter_defaults(self.template),
            "LogBucketName": scenario.log_bucket,
            "LogKeyPrefix": scenario.log_prefix,
            "SlackChannel": scenario.slack_channel,
            "SlackTokenSecretArn": f"arn:aws:secretsmanager:{self.region}:{self.account}:secret:emr-triage-AbCdEf",
            **member_parameters(scenario.member_accounts),
        }
        if scenario.interactive:  # the buttons' function, with its signing secret in Secrets Manager
            from emr_triage.local.interactions import LOCAL_SIGNING_SECRET, SIGNING_SECRET_NAME

            secrets = boto3.client("secretsmanager", region_name=self.region)
            created = secrets.create_secret(Name=SIGNING_SECRET_NAME, SecretString=LOCAL_SIGNING_SECRET)
            parameters["SlackSigningSecretArn"] = created["ARN"]
        return Resolver(
            parameters=parameters,
            refs={
                **{logical_id: f"{EMBEDDED_STACK}-{logical_id}" for logical_id in self.template["Resources"]},
                "IncidentsTable": EMBEDDED_TABLE,
                "DeadLetterQueue": queue_url,
                "FollowUpQueue": follow_up_url,
            },
            attributes={
                "DeadLetterQueue.Arn": queue_arn,
                "FollowUpQueue.Arn": f"arn:aws:sqs:{self.region}:{self.account}:{EMBEDDED_FOLLOW_UP_QUEUE}",
                "IncidentsTable.Arn": f"arn:aws:dynamodb:{self.region}:{self.account}:table/{EMBEDDED_TABLE}",
            },
            pseudo=self._pseudo(EMBEDDED_STACK),
        )

    def _attach_to_stack(self) -> Resolver:
        from botocore.exceptions import BotoCoreError, ClientError

        from emr_triage.aws import clients

        if not self.stack_name:
            raise TemplateError("--aws needs the deployed stack's name (--stack-name, or stack_name in samconfig.toml)")
        cloudformation = clients.cloudformation(self.region)
        try:
            stack = cloudformation.describe_stacks(StackName=self.stack_name)["Stacks"][0]
            resources = cloudformation.describe_stack_resources(StackName=self.stack_name)["StackResources"]
        except (ClientError, BotoCoreError) as exc:
            raise TemplateError(f"cannot read stack {self.stack_name} in {self.region}: {exc}") from exc
        parameters = {p["ParameterKey"]: p.get("ParameterValue", "") for p in stack.get("Parameters", [])}
        refs = {r["LogicalResourceId"]: r.get("PhysicalResourceId", "") for r in resources}
        self.account = stack["StackId"].split(":")[4]
        self.table_name = refs.get("IncidentsTable", "")
        return Resolver(
            parameters={**parameter_defaults(self.template), **parameters},
            refs=refs,
            pseudo=self._pseudo(self.stack_name),
        )

    def _pseudo(self, stack_name: str) -> dict[str, str]:
        return {
            "AWS::Region": self.region,
            "AWS::AccountId": self.account,
            "AWS::StackName": stack_name,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
        }

    # -- running ------------------------------------------------------------------------------------
    def handler(self, spec: FunctionSpec) -> Any:
        """The function's ``lambda_handler``, imported from the file template.yaml names (once)."""
        module = self._modules.get(spec.logical_id)
        if module is None:
            if not spec.handler_file.is_file():
                raise TemplateError(f"{spec.logical_id}: handler file {spec.handler_file} does not exist")
            module_spec = importlib.util.spec_from_file_location(f"_emr_triage_fn_{spec.logical_id}", spec.handler_file)
            assert module_spec is not None and module_spec.loader is not None
            module = importlib.util.module_from_spec(module_spec)
            module_spec.loader.exec_module(module)
            self._modules[spec.logical_id] = module
        return getattr(module, spec.handler_name)

    def invoke(self, spec: FunctionSpec, event: Any) -> dict[str, Any]:
        """Run one function's handler on an event, with that function's environment."""
        from emr_triage import runtime

        with environment({**spec.environment, **self.extra_environment}):
            runtime.reset_settings()
            context = LocalContext(
                function_name=f"{self.stack_name or EMBEDDED_STACK}-{spec.logical_id}",
                memory_limit_in_mb=spec.memory_mb,
                timeout_seconds=spec.timeout_seconds,
                region=self.region,
                account=self.account,
            )
            result: dict[str, Any] = self.handler(spec)(event, context)
            return result

    def invoke_captured(self, spec: FunctionSpec, event: Any, invocation: Invocation) -> None:
        """Invoke, keeping what the function printed (EMF metrics) apart from the replay's output."""
        buffer = io.StringIO()
        try:
            with redirect_stdout(buffer):
                invocation.outcome = self.invoke(spec, event)
        except Exception as exc:
            invocation.error = f"{type(exc).__name__}: {exc}"
        invocation.output = buffer.getvalue()
        from emr_triage.observability import metrics

        metrics.clear_metrics()  # each Lambda invocation flushes its own metrics

    def replay(self, item: ReplayItem) -> EventReport:
        """Deliver one saved event to the functions whose rules match it, as EventBridge would."""
        from emr_triage.local.interactions import is_interaction, replay_interaction
        from emr_triage.runtime import console_notifier

        if is_interaction(item.event):
            return replay_interaction(self, item)
        report = EventReport(item=item, label=describe_event(item.event) if isinstance(item.event, dict) else "?")
        self._land(item.event)
        before = len(console_notifier().sent)
        matches = matching_rules(self.specs, item.event)
        if not matches:
            report.not_delivered = "no rule in template.yaml matches this event, so no function would run"
        for spec, rule in matches:
            invocation = Invocation(function=spec.logical_id, rule=rule.name)
            self.invoke_captured(spec, item.event, invocation)
            report.invocations.append(invocation)
        report.slack = console_notifier().sent[before:]
        self.check_expectation(report)
        return report

    def replay_then_checks(self, item: ReplayItem) -> list[EventReport]:
        """:meth:`replay`, then, when the scenario says so, the checks now due on the delay queue."""
        report = self.replay(item)
        return [report, *(self.run_follow_ups() if item.then_checks else [])]

    def check_expectation(self, report: EventReport) -> None:
        item = report.item
        if item.expect_action is None:
            return
        actual = "not_delivered" if report.not_delivered else "error"
        outcome = next((i.outcome for i in report.invocations if i.outcome), None)
        if outcome:
            actual = str(outcome.get("action"))
        if actual != item.expect_action:
            report.expectation_failure = f"expected {item.expect_action}, got {actual}"
            return
        if item.expect_category and outcome and outcome.get("incident_id"):
            incident = self.incident(str(outcome["incident_id"]))
            category = incident.diagnosis.category if incident and incident.diagnosis else None
            if category != item.expect_category:
                report.expectation_failure = f"expected diagnosis {item.expect_category}, got {category}"

    def _land(self, event: Any) -> None:
        """Put a held-back log object in S3 just before its Object Created event is delivered."""
        detail = event.get("detail") if isinstance(event, dict) else None
        try:
            where = (str(detail["bucket"]["name"]), str(detail["object"]["key"]))  # type: ignore[index]
        except (KeyError, TypeError):
            return
        path = self.held_back.pop(where, None)
        if path is not None:
            from emr_triage.aws import clients

            clients.s3(self.region).put_object(Bucket=where[0], Key=where[1], Body=path.read_bytes())

    def run_follow_ups(self) -> list[EventReport]:
        """Deliver the log checks the functions scheduled, as Lambda's SQS event source would, until none
        is left (embedded AWS only: time is compressed, so each is due at once). A check that fails stays
        in the queue, as SQS would keep it, and is reported."""

        from emr_triage.aws import clients

        if self.mode != "embedded":
            return []
        consumers = [spec for spec in self.specs if "FollowUpQueue" in spec.queues]
        if not consumers:
            return []
        sqs = clients.sqs(self.region)
        url = sqs.get_queue_url(QueueName=EMBEDDED_FOLLOW_UP_QUEUE)["QueueUrl"]
        reports: list[EventReport] = []
        for _ in range(MAX_FOLLOW_UP_ROUNDS):
            messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=30).get(
                "Messages", []
            )
            if not messages:
                break
            for message in messages:
                event = {
                    "Records": [
                        {
                            "messageId": message["MessageId"],
                            "receiptHandle": message["ReceiptHandle"],
                            "body": message["Body"],
                            "eventSource": "aws:sqs",
                            "eventSourceARN": f"arn:aws:sqs:{self.region}:{self.account}:{EMBEDDED_FOLLOW_UP_QUEUE}",
                            "awsRegion": self.region,
                        }
                    ]
                }
                reports.append(self._deliver_follow_up(consumers[0], event, message, url))
        return reports

    def _deliver_follow_up(self, spec: FunctionSpec, event: dict[str, Any], message: Any, url: str) -> EventReport:
        import json

        from emr_triage.aws import clients
        from emr_triage.runtime import console_notifier

        try:
            body = json.loads(message["Body"])
            label = f"log check {body.get('check')}/{body.get('checks')} of incident {body.get('incident_id')}"
            if body.get("purpose") == "run":
                label = f"slow-run check of {body.get('incident_id')} (due at its limit)"
        except (ValueError, AttributeError):
            label = "log check (unreadable message)"
        report = EventReport(item=ReplayItem(path=Path("follow-up"), event=event), label=label)
        before = len(console_notifier().sent)
        invocation = Invocation(function=spec.logical_id, rule="FollowUpQueue")
        self.invoke_captured(spec, event, invocation)
        result = invocation.outcome or {}
        outcomes = result.get("outcomes") or []
        if result.get("batchItemFailures") and not invocation.error:
            invocation.error = "the log check failed; SQS would deliver it again (see -v for the function's log)"
        invocation.outcome = outcomes[0] if outcomes else None
        report.invocations.append(invocation)
        report.slack = console_notifier().sent[before:]
        if invocation.error is None:
            clients.sqs(self.region).delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        return report

    def table_items(self) -> list[dict[str, Any]]:
        """Every item of the embedded incidents table (saved by the replay command for ``incidents``)."""
        from emr_triage.aws.incident_store import DynamoIncidentRepository

        return DynamoIncidentRepository(self.table_name).all_items() if self.mode == "embedded" else []

    def latest_alerted(self) -> Incident | None:
        """The newest incident with a Slack message (what a saved slash command is aimed at)."""
        from emr_triage.aws.incident_store import DynamoIncidentRepository

        alerted = [i for i in DynamoIncidentRepository(self.table_name).list_incidents() if i.slack is not None]
        return max(alerted, key=lambda i: i.opened_at, default=None)

    def incident(self, incident_id: str) -> Incident | None:
        from emr_triage.aws.incident_store import DynamoIncidentRepository

        return DynamoIncidentRepository(self.table_name).get(incident_id)

    def dead_letters(self) -> list[dict[str, Any]]:
        """Messages in the embedded dead-letter queue (poison events the functions rejected)."""
        import json

        from emr_triage.aws import clients

        if self.mode != "embedded":
            return []
        sqs = clients.sqs(self.region)
        url = sqs.get_queue_url(QueueName=EMBEDDED_QUEUE)["QueueUrl"]
        response = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0)
        return [json.loads(m["Body"]) for m in response.get("Messages", [])]

"""Replay scenarios: a folder with the AWS state some saved events refer to, and the events.

Layout (documented in README "Scenarios")::

    my-incident/
      scenario.yaml        clusters, steps, EMR Serverless job runs, log URI, events in order
      01-step-failed.json  saved EventBridge events (as AWS sends them)
      logs/                log files exactly as EMR writes them below the log URI:
        j-XXXX/steps/s-XXXX/stderr.gz
        j-XXXX/containers/application_.../container_.../stderr.gz
        applications/<app-id>/jobs/<job-run-id>/SPARK_DRIVER/stderr.gz
"""

from __future__ import annotations

import json
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from emr_triage.exceptions import ScenarioError
from emr_triage.local.eks_seed import VirtualClusterSpec, seed_virtual_clusters
from emr_triage.local.members import MemberSpec, create_bucket, member_session, seed_member_logs
from emr_triage.logs.locations import normalise_log_uri, parse_s3_uri
from emr_triage.models.validation import describe_validation_error

SCENARIO_FILE = "scenario.yaml"
MOTO_DEFAULT_ACCOUNT = "123456789012"
_NOW = datetime(2026, 1, 1, tzinfo=UTC)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FailureDetailsSpec(_Model):
    reason: str | None = None
    message: str | None = None
    log_file: str | None = None


class StepSpec(_Model):
    id: Annotated[str, Field(pattern=r"^s-[A-Z0-9]+$")]
    name: str
    state: str = "FAILED"
    action_on_failure: str = "CONTINUE"
    jar: str = "command-runner.jar"
    args: list[str] = Field(default_factory=list)
    started: datetime | None = None
    ended: datetime | None = None
    failure_details: FailureDetailsSpec | None = None


class StateChangeReasonSpec(_Model):
    code: str | None = None
    message: str | None = None


class InstanceSpec(_Model):
    """An EC2 instance of the cluster (for EC2's Spot events): EMR's system tags name its cluster and role."""

    id: Annotated[str, Field(pattern=r"^i-[0-9a-f]{8,17}$")]
    role: str = "TASK"
    instance_type: str = "r5.2xlarge"
    private_ip: str | None = None  # gives its private DNS name (ip-10-0-7-88.ec2.internal), as logs name it


class ClusterSpec(_Model):
    id: Annotated[str, Field(pattern=r"^j-[A-Z0-9]+$")]
    name: str
    # A member account's cluster (one of member_accounts; default: the scenario's own account).
    account: Annotated[str, Field(pattern=r"^\d{12}$")] | None = None
    state: str = "WAITING"
    state_change_reason: StateChangeReasonSpec | None = None
    release_label: str = "emr-7.5.0"
    log_uri: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    steps: list[StepSpec] = Field(default_factory=list)
    instances: list[InstanceSpec] = Field(default_factory=list)


class JobRunSpec(_Model):
    id: Annotated[str, Field(pattern=r"^[0-9a-z]{8,64}$")]
    name: str | None = None
    state: str = "FAILED"
    state_details: str | None = None
    log_uri: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    created: datetime | None = None
    updated: datetime | None = None


class ApplicationSpec(_Model):
    id: Annotated[str, Field(pattern=r"^[0-9a-z]{8,64}$")]
    name: str
    release_label: str = "emr-7.5.0"
    tags: dict[str, str] = Field(default_factory=dict)
    job_runs: list[JobRunSpec] = Field(default_factory=list)


class Expectation(_Model):
    action: str
    category: str | None = None


class EventEntry(_Model):
    file: str
    expect: Expectation | None = None
    # For an S3 Object Created event: its object is not in S3 before this event, it lands with it (as a
    # log EMR copies minutes after the failure). Otherwise every file under logs/ is there from the start.
    lands: bool = False
    # After this event, deliver the checks waiting on the delay queue (time compressed: each is due), as
    # the minutes between two events would: a running step's slow check, before the step ends.
    checks: bool = False


class HistorySpec(_Model):
    """A generated history of job runs and failures (:mod:`emr_triage.local.history`) in the table before
    the first event: the digest scenario's month."""

    until: datetime
    days: int = Field(30, ge=1, le=120)
    seed: int = 8


class Scenario(_Model):
    description: str
    region: str = "us-east-1"
    account: str = "123456789012"
    log_uri: str
    slack_channel: str = "#emr-alerts"
    # Deploy SlackInteractionsFunction (buttons, /emr-triage): its signing secret is created and named.
    interactive: bool = False
    clusters: list[ClusterSpec] = Field(default_factory=list)
    serverless_applications: list[ApplicationSpec] = Field(default_factory=list)
    eks_virtual_clusters: list[VirtualClusterSpec] = Field(default_factory=list)
    # Other accounts whose failures the stack alerts on (many accounts, one deployment).
    member_accounts: list[MemberSpec] = Field(default_factory=list)
    events: list[EventEntry] = Field(default_factory=list)
    history: HistorySpec | None = None

    @field_validator("log_uri")
    @classmethod
    def _s3_uri(cls, value: str) -> str:
        return normalise_log_uri(value)

    @model_validator(mode="after")
    def _members_beside_moto_default(self) -> Scenario:
        # moto acts in an account by the credentials' (a role assumed in it), else in its default account,
        # which the central stack must then be.
        if self.member_accounts and self.account != MOTO_DEFAULT_ACCOUNT:
            raise ValueError(f"account: with member_accounts, the central account must be {MOTO_DEFAULT_ACCOUNT}")
        known = {m.id for m in self.member_accounts}
        for cluster in self.clusters:
            if cluster.account is not None and cluster.account not in known:
                raise ValueError(f"clusters: {cluster.id}'s account {cluster.account} is not one of member_accounts")
        return self

    @field_validator("events", mode="before")
    @classmethod
    def _plain_names(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [{"file": item} if isinstance(item, str) else item for item in value]
        return value

    @property
    def log_bucket(self) -> str:
        return parse_s3_uri(self.log_uri)[0]

    @property
    def log_prefix(self) -> str:
        return parse_s3_uri(self.log_uri)[1]

    def member_log_uri(self, account: str | None) -> str | None:
        return next((m.log_uri for m in self.member_accounts if m.id == account), None)

    def cluster(self, cluster_id: str) -> ClusterSpec | None:
        return next((c for c in self.clusters if c.id == cluster_id), None)

    def application(self, application_id: str) -> ApplicationSpec | None:
        return next((a for a in self.serverless_applications if a.id == application_id), None)


def load_scenario(folder: Path) -> Scenario:
    """Load and validate ``scenario.yaml`` of a folder.

    Raises
    ------
    ScenarioError
        The file is missing, not YAML, or a field is wrong (named, with the problem).
    """
    path = folder / SCENARIO_FILE
    try:
        data = yaml.safe_load(path.read_text("utf-8"))
    except FileNotFoundError as exc:
        raise ScenarioError(f"{folder}: not a scenario folder (no {SCENARIO_FILE})") from exc
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{path}: not valid YAML: {exc}") from exc
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(f"{path}: {describe_validation_error(exc, root='file')}") from exc
    for entry in scenario.events:
        if not (folder / entry.file).is_file():
            raise ScenarioError(f"{path}: event file {entry.file} does not exist")
    return scenario


def check_event_refers_to_scenario(event: dict[str, Any], scenario: Scenario, origin: str) -> None:
    """Raise if an EMR event names a cluster or application the scenario does not define."""
    detail = event.get("detail") if isinstance(event.get("detail"), dict) else {}
    assert isinstance(detail, dict)
    cluster_id = detail.get("clusterId")
    if isinstance(cluster_id, str) and scenario.cluster(cluster_id) is None:
        raise ScenarioError(f"{origin}: refers to cluster {cluster_id}, which the scenario does not define")
    step_id = detail.get("stepId")
    cluster = scenario.cluster(cluster_id) if isinstance(cluster_id, str) else None
    if isinstance(step_id, str) and cluster is not None and not any(s.id == step_id for s in cluster.steps):
        raise ScenarioError(f"{origin}: refers to step {step_id}, which cluster {cluster_id} does not have")
    application_id = detail.get("applicationId")
    if isinstance(application_id, str) and scenario.application(application_id) is None:
        raise ScenarioError(
            f"{origin}: refers to EMR Serverless application {application_id}, which the scenario does not define"
        )
    virtual_cluster = detail.get("virtualClusterId")
    if isinstance(virtual_cluster, str) and not any(v.id == virtual_cluster for v in scenario.eks_virtual_clusters):
        raise ScenarioError(
            f"{origin}: refers to EMR on EKS virtual cluster {virtual_cluster}, which the scenario does not define"
        )


# ---------------------------------------------------------------------------------------------------
# Seeding moto's backends (moto has no FailureDetails and picks random ids: we set both)
# ---------------------------------------------------------------------------------------------------
class _ScenarioStep:
    """A step as moto's serializer reads it, with the fields moto's own Step lacks."""

    def __init__(self, spec: StepSpec) -> None:
        self.id = spec.id
        self.name = spec.name
        self.state = spec.state
        self.action_on_failure = spec.action_on_failure
        self.config = {"Jar": spec.jar, "Args": list(spec.args), "Properties": {}}
        self.start_date_time = spec.started
        self.end_date_time = spec.ended
        # moto's ListSteps sorts on it (newest first); a step that never started sorts as the oldest.
        self.creation_date_time = spec.started or spec.ended or _NOW
        self.failure_details = (
            {
                "Reason": spec.failure_details.reason,
                "Message": spec.failure_details.message,
                "LogFile": spec.failure_details.log_file,
            }
            if spec.failure_details
            else None
        )

    @property
    def status(self) -> dict[str, Any]:
        status: dict[str, Any] = {
            "State": self.state,
            "StateChangeReason": {},
            "Timeline": {
                "CreationDateTime": self.start_date_time,
                "StartDateTime": self.start_date_time,
                "EndDateTime": self.end_date_time,
            },
        }
        if self.failure_details:
            status["FailureDetails"] = {k: v for k, v in self.failure_details.items() if v is not None}
        return status


class _ClusterView:
    """Delegates to moto's cluster but reports a StateChangeReason *code* as DescribeCluster does."""

    def __init__(self, cluster: Any, reason: StateChangeReasonSpec | None) -> None:
        self._cluster = cluster
        self._reason = reason

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cluster, name)

    @property
    def status(self) -> dict[str, Any]:
        status: dict[str, Any] = dict(self._cluster.status)
        if self._reason is not None:
            status["StateChangeReason"] = {
                k: v for k, v in {"Code": self._reason.code, "Message": self._reason.message}.items() if v
            }
        return status


def landing_keys(scenario: Scenario, folder: Path) -> set[tuple[str, str]]:
    """(bucket, key) of the log objects that land with their S3 event (``lands: true``), not before."""
    keys = set()
    for entry in scenario.events:
        if not entry.lands:
            continue
        event = read_event_file(folder / entry.file)
        detail = event.get("detail", {}) if isinstance(event, dict) else {}
        try:
            keys.add((str(detail["bucket"]["name"]), str(detail["object"]["key"])))
        except (KeyError, TypeError) as exc:
            raise ScenarioError(f"{folder / entry.file}: 'lands' is for S3 Object Created events") from exc
    return keys


def seed(scenario: Scenario, folder: Path) -> dict[tuple[str, str], Path]:
    """Create the scenario's buckets, log objects, clusters, steps and job runs in moto.

    Must run inside ``moto.mock_aws()``.

    Returns
    -------
    dict
        The log objects held back until their S3 event is replayed: (bucket, key) → file.
    """
    import boto3
    from moto.emr.models import emr_backends
    from moto.emrserverless.models import emrserverless_backends

    region, account = scenario.region, scenario.account
    s3 = boto3.client("s3", region_name=region)
    buckets = {scenario.log_bucket}
    buckets.update(parse_s3_uri(c.log_uri)[0] for c in scenario.clusters if c.log_uri)
    for bucket in sorted(buckets):
        create_bucket(s3, bucket, region)
    held_back: dict[tuple[str, str], Path] = {}
    landing = landing_keys(scenario, folder)
    logs = folder / "logs"
    if logs.is_dir():
        for path in sorted(p for p in logs.rglob("*") if p.is_file()):
            key = scenario.log_prefix + path.relative_to(logs).as_posix()
            if (scenario.log_bucket, key) in landing:
                held_back[(scenario.log_bucket, key)] = path
                continue
            s3.put_object(Bucket=scenario.log_bucket, Key=key, Body=path.read_bytes())
    held_back.update(seed_member_logs(scenario.member_accounts, folder, region, landing))

    for spec in scenario.clusters:
        owner = spec.account or account
        emr = member_session(owner, region).client("emr") if spec.account else boto3.client("emr", region_name=region)
        backend: Any = emr_backends[owner][region]  # moto internals: we replace its objects
        created = emr.run_job_flow(
            Name=spec.name,
            ReleaseLabel=spec.release_label,
            LogUri=spec.log_uri or scenario.member_log_uri(spec.account) or scenario.log_uri,
            Instances={
                "MasterInstanceType": "m5.xlarge",
                "SlaveInstanceType": "m5.xlarge",
                "InstanceCount": 3,
            },
            Tags=[{"Key": k, "Value": v} for k, v in spec.tags.items()],
            JobFlowRole="EMR_EC2_DefaultRole",
            ServiceRole="EMR_DefaultRole",
        )
        cluster = backend.clusters.pop(created["JobFlowId"])
        cluster.id = spec.id
        cluster.state = spec.state
        cluster.steps = [_ScenarioStep(step) for step in spec.steps]
        backend.clusters[spec.id] = _ClusterView(cluster, spec.state_change_reason)
        _seed_instances(spec, region, owner)

    serverless = boto3.client("emr-serverless", region_name=region)
    serverless_backend: Any = emrserverless_backends[account][region]
    for app_spec in scenario.serverless_applications:
        app_id = serverless.create_application(
            name=app_spec.name,
            releaseLabel=app_spec.release_label,
            type="SPARK",
            clientToken=str(uuid.uuid4()),
            tags=app_spec.tags,
        )["applicationId"]
        application = serverless_backend.applications.pop(app_id)
        application.id = app_spec.id
        serverless_backend.applications[app_spec.id] = application
        for run_spec in app_spec.job_runs:
            log_uri = run_spec.log_uri or scenario.log_uri
            started = serverless.start_job_run(
                applicationId=app_spec.id,
                executionRoleArn=f"arn:aws:iam::{account}:role/EMRServerlessJobRole",
                jobDriver={"sparkSubmit": {"entryPoint": "s3://example/job.py"}},
                configurationOverrides={"monitoringConfiguration": {"s3MonitoringConfiguration": {"logUri": log_uri}}},
                name=run_spec.name or run_spec.id,
                clientToken=str(uuid.uuid4()),
                tags=run_spec.tags,
            )
            run = next(r for r in serverless_backend.job_runs[app_spec.id] if r.id == started["jobRunId"])
            run.id = run_spec.id
            run.arn = run.arn.rsplit("/", 1)[0] + "/" + run_spec.id
            run.state = run_spec.state
            run.state_details = run_spec.state_details
            run.created_at = run_spec.created or _NOW
            run.updated_at = run_spec.updated or run.created_at
            run.total_execution_duration_seconds = int((run.updated_at - run.created_at).total_seconds())
    seed_virtual_clusters(scenario.eks_virtual_clusters, scenario.log_uri, region, account)
    return held_back


def read_event_file(path: Path) -> Any:
    """Load a saved event; ScenarioError if it is not JSON."""
    try:
        return json.loads(path.read_text("utf-8"))
    except FileNotFoundError as exc:
        raise ScenarioError(f"{path}: no such file") from exc
    except UnicodeDecodeError as exc:
        raise ScenarioError(f"{path}: not a text file (not an event)") from exc
    except json.JSONDecodeError as exc:
        raise ScenarioError(f"{path}: not JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from exc
    except RecursionError as exc:
        raise ScenarioError(f"{path}: not an event: its JSON is nested too deeply for Python to decode") from exc
    except ValueError as exc:  # an integer of more than sys.get_int_max_str_digits() digits
        raise ScenarioError(
            f"{path}: not an event: it has a number of more than {sys.get_int_max_str_digits():,} digits"
        ) from exc


def _seed_instances(spec: ClusterSpec, region: str, account: str) -> None:
    """The cluster's EC2 instances, with the ids the saved events name and EMR's system tags (moto picks
    its own ids: the instance is renamed before it is tagged, as tags are kept by id)."""
    import ipaddress

    import boto3
    from moto.ec2.models import ec2_backends

    if not spec.instances:
        return
    ec2 = boto3.client("ec2", region_name=region)
    subnets = ec2.describe_subnets()["Subnets"]
    backend: Any = ec2_backends[account][region]
    for instance in spec.instances:
        placement: dict[str, Any] = {}
        if instance.private_ip:
            address = ipaddress.ip_address(instance.private_ip)
            subnet = next((n for n in subnets if address in ipaddress.ip_network(n["CidrBlock"])), None)
            if subnet is None:  # the cluster's own VPC (a /16) and subnet (a /20) around the address
                vpc = ec2.create_vpc(CidrBlock=str(ipaddress.ip_network(f"{address}/16", strict=False)))["Vpc"]
                cidr = str(ipaddress.ip_network(f"{address}/20", strict=False))
                subnet = ec2.create_subnet(VpcId=vpc["VpcId"], CidrBlock=cidr)["Subnet"]
                subnets.append(subnet)
            placement = {"SubnetId": subnet["SubnetId"], "PrivateIpAddress": instance.private_ip}
        created = ec2.run_instances(
            ImageId="ami-12c6146b", MinCount=1, MaxCount=1, InstanceType=instance.instance_type, **placement
        )["Instances"][0]["InstanceId"]
        next(i for i in backend.all_instances() if i.id == created).id = instance.id
        tags = {"aws:elasticmapreduce:job-flow-id": spec.id, "aws:elasticmapreduce:instance-group-role": instance.role}
        ec2.create_tags(Resources=[instance.id], Tags=[{"Key": k, "Value": v} for k, v in tags.items()])

"""The EMR gateway over boto3 (moto): what EMR and EMR Serverless tell the alert."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from emr_triage.aws.emr import BotoEmrGateway

REGION = "us-east-1"
APP_ARN = "arn:aws:emr-serverless:us-east-1:123456789012:/applications/00f1982r1uukb925"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(key, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        yield


def _gateway() -> BotoEmrGateway:
    return BotoEmrGateway(
        emr=boto3.client("emr", region_name=REGION),
        emr_serverless=boto3.client("emr-serverless", region_name=REGION),
    )


def _application(tags: dict[str, str], log_uri: str | None = None) -> str:
    serverless = boto3.client("emr-serverless", region_name=REGION)
    extra = {}
    if log_uri:
        extra["monitoringConfiguration"] = {"s3MonitoringConfiguration": {"logUri": log_uri}}
    return str(
        serverless.create_application(
            name="nightly-features",
            releaseLabel="emr-7.5.0",
            type="SPARK",
            clientToken=str(uuid.uuid4()),
            tags=tags,
            **extra,  # type: ignore[arg-type]
        )["applicationId"]
    )


def _job_run(application_id: str, tags: dict[str, str], log_uri: str | None) -> str:
    overrides = {"monitoringConfiguration": {"s3MonitoringConfiguration": {"logUri": log_uri}}} if log_uri else {}
    return str(
        boto3.client("emr-serverless", region_name=REGION).start_job_run(
            applicationId=application_id,
            executionRoleArn="arn:aws:iam::123456789012:role/EMRServerlessJobRole",
            jobDriver={"sparkSubmit": {"entryPoint": "s3://example/job.py"}},
            configurationOverrides=overrides,  # type: ignore[arg-type]
            name="build-customer-features",
            clientToken=str(uuid.uuid4()),
            tags=tags,
        )["jobRunId"]
    )


def test_a_job_run_carries_its_application_name_and_tags_with_its_own_tags_winning(aws: None) -> None:
    # Given an application tagged for one team, and a job run of it tagged for another channel
    app = _application({"emr-triage:slack-channel": "#features", "emr-triage:slack-mention": "S0FEATURES1"})
    run = _job_run(app, {"emr-triage:slack-channel": "#features-oncall"}, "s3://emr-logs-bucket/serverless/")
    # When the gateway looks the job run up
    info = _gateway().get_job_run(app, run)
    # Then the alert knows the application's name, and routes by both tag sets, the job run's first
    assert info.found and info.lookup_error is None
    assert info.application_name == "nightly-features"
    assert info.tags == {"emr-triage:slack-channel": "#features-oncall", "emr-triage:slack-mention": "S0FEATURES1"}
    assert info.log_uri == "s3://emr-logs-bucket/serverless/"


def test_a_job_run_without_its_own_log_location_uses_the_applications_default() -> None:
    # Given an application whose default monitoring configuration writes logs to S3, and a job run
    # submitted without an override (moto does not keep an application's monitoringConfiguration, so the
    # API's responses are stubbed with botocore's Stubber, which checks them against the service model)
    from botocore.stub import Stubber

    client = boto3.client("emr-serverless", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
    stub = Stubber(client)
    stub.add_response(
        "get_job_run",
        {
            "jobRun": {
                "applicationId": "00f1982r1uukb925",
                "jobRunId": "00f1cbn5g4bb0c01",
                "arn": f"{APP_ARN}/jobruns/00f1cbn5g4bb0c01",
                "createdBy": "arn:aws:iam::123456789012:role/Airflow",
                "createdAt": "2026-11-18T21:00:04Z",
                "updatedAt": "2026-11-18T21:07:42Z",
                "executionRole": "arn:aws:iam::123456789012:role/EMRServerlessJobRole",
                "state": "FAILED",
                "stateDetails": "Job failed",
                "releaseLabel": "emr-7.5.0",
                "jobDriver": {"sparkSubmit": {"entryPoint": "s3://example/job.py"}},
            }
        },
        {"applicationId": "00f1982r1uukb925", "jobRunId": "00f1cbn5g4bb0c01"},
    )
    stub.add_response(
        "get_application",
        {
            "application": {
                "applicationId": "00f1982r1uukb925",
                "name": "nightly-features",
                "arn": APP_ARN,
                "releaseLabel": "emr-7.5.0",
                "type": "SPARK",
                "state": "STARTED",
                "createdAt": "2026-11-01T00:00:00Z",
                "updatedAt": "2026-11-01T00:00:00Z",
                "tags": {"team": "features"},
                "monitoringConfiguration": {
                    "s3MonitoringConfiguration": {"logUri": "s3://emr-logs-bucket/app-default/"}
                },
            }
        },
        {"applicationId": "00f1982r1uukb925"},
    )
    # When the gateway looks the job run up
    with stub:
        info = BotoEmrGateway(emr_serverless=client).get_job_run("00f1982r1uukb925", "00f1cbn5g4bb0c01")
    # Then the logs are looked for where the application sends them
    assert info.log_uri == "s3://emr-logs-bucket/app-default/"
    assert info.application_name == "nightly-features" and info.tags == {"team": "features"}


def test_a_forbidden_application_lookup_thins_the_alert_but_keeps_the_job_run(aws: None) -> None:
    # Given a job run whose application cannot be read (the role lacks emr-serverless:GetApplication)
    from botocore.exceptions import ClientError

    app = _application({})
    run = _job_run(app, {"team": "x"}, "s3://emr-logs-bucket/serverless/")
    gateway = _gateway()
    real = gateway.emr_serverless

    class Denied:
        def get_job_run(self, **kwargs: str) -> object:
            return real.get_job_run(**kwargs)

        def get_application(self, **kwargs: str) -> object:
            raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "GetApplication")

    gateway._emr_serverless = Denied()  # type: ignore[assignment]
    # When the gateway looks the job run up
    info = gateway.get_job_run(app, run)
    # Then the job run is still found, and the alert says which permission is missing
    assert info.found and info.tags == {"team": "x"}
    assert info.lookup_error and "emr-serverless:GetApplication" in info.lookup_error


def test_a_cluster_lookup_gives_the_primary_nodes_dns_name(aws: None) -> None:
    # Given a running cluster
    emr = boto3.client("emr", region_name=REGION)
    cluster_id = emr.run_job_flow(
        Name="nightly",
        ReleaseLabel="emr-7.5.0",
        Instances={"MasterInstanceType": "m5.xlarge", "SlaveInstanceType": "m5.xlarge", "InstanceCount": 2},
        JobFlowRole="EMR_EC2_DefaultRole",
        ServiceRole="EMR_DefaultRole",
    )["JobFlowId"]
    # When the gateway describes it
    info = _gateway().describe_cluster(cluster_id)
    # Then the alert can link the Spark UI on its primary node
    assert info.found and info.master_public_dns


def _virtual_cluster(tags: dict[str, str]) -> str:
    return str(
        boto3.client("emr-containers", region_name=REGION).create_virtual_cluster(
            name="ml-features",
            containerProvider={"type": "EKS", "id": "analytics-prod", "info": {"eksInfo": {"namespace": "spark-ml"}}},
            clientToken=str(uuid.uuid4()),
            tags=tags,
        )["id"]
    )


def test_an_eks_job_run_carries_its_virtual_cluster_name_namespace_and_tags_with_its_own_winning(aws: None) -> None:
    # Given a virtual cluster and a job run with its own tags and an S3 log location (real boto3 on moto)
    virtual_cluster = _virtual_cluster({"team": "ml-platform", "owner": "platform"})
    run = boto3.client("emr-containers", region_name=REGION).start_job_run(
        virtualClusterId=virtual_cluster,
        name="feature-build-2026-11-20",
        clientToken=str(uuid.uuid4()),
        executionRoleArn="arn:aws:iam::123456789012:role/EMRContainersJobRole",
        releaseLabel="emr-7.5.0-latest",
        jobDriver={
            "sparkSubmitJobDriver": {
                "entryPoint": "s3://acme-ml-jobs/features/feature_build.py",
                "sparkSubmitParameters": "--conf spark.executor.memory=2g",
            }
        },
        configurationOverrides={
            "monitoringConfiguration": {"s3MonitoringConfiguration": {"logUri": "s3://acme-emr-logs/emr-on-eks/"}},
            "applicationConfiguration": [
                {"classification": "spark-defaults", "properties": {"spark.executor.pyspark.memory": "400m"}}
            ],
        },
        tags={"owner": "features"},
    )["id"]
    # When the gateway describes it
    info = BotoEmrGateway().describe_eks_job_run(virtual_cluster, run)
    # Then the alert has all it needs
    assert info.found and info.lookup_error is None
    assert (info.name, info.virtual_cluster_name, info.eks_namespace) == (
        "feature-build-2026-11-20",
        "ml-features",
        "analytics-prod/spark-ml",
    )
    assert info.log_uri == "s3://acme-emr-logs/emr-on-eks/" and info.release_label == "emr-7.5.0-latest"
    assert info.entry_point == "s3://acme-ml-jobs/features/feature_build.py"
    assert info.tags == {"team": "ml-platform", "owner": "features"}
    assert info.submit_parameters == "--conf spark.executor.memory=2g"
    assert info.spark_defaults == {"spark.executor.pyspark.memory": "400m"}


def test_an_unknown_eks_job_run_is_a_lookup_error_naming_the_call(aws: None) -> None:
    virtual_cluster = _virtual_cluster({})
    info = BotoEmrGateway().describe_eks_job_run(virtual_cluster, "0000000000000000000")
    assert not info.found and info.lookup_error is not None
    assert info.lookup_error.startswith("emr-containers:DescribeJobRun: job run 0000000000000000000")

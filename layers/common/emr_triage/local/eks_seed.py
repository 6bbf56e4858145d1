"""EMR on EKS in a scenario: its virtual clusters and job runs, created in moto's emr-containers with the
ids the saved events name (moto picks its own ids and starts every job run RUNNING: both are replaced).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

_NOW = datetime(2026, 1, 1, tzinfo=UTC)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EksJobRunSpec(_Model):
    # DescribeJobRun takes 19-character ids (moto checks it; real ones are that long too).
    id: Annotated[str, Field(pattern=r"^[0-9a-z]{19}$")]
    name: str
    state: str = "FAILED"
    failure_reason: str | None = None  # INTERNAL_ERROR, USER_ERROR, VALIDATION_ERROR, CLUSTER_UNAVAILABLE
    state_details: str | None = None
    release_label: str = "emr-7.5.0-latest"  # moto accepts emr-X.Y.0-latest or emr-X.Y.0-YYYYMMDD
    entry_point: str = "s3://example/jobs/job.py"
    submit_parameters: str | None = None  # sparkSubmitParameters
    spark_defaults: dict[str, str] = Field(default_factory=dict)  # the spark-defaults classification
    log_uri: str | None = None  # default: the scenario's log_uri
    tags: dict[str, str] = Field(default_factory=dict)
    created: datetime | None = None
    finished: datetime | None = None
    attempts: int | None = None
    max_attempts: int | None = None


class VirtualClusterSpec(_Model):
    id: Annotated[str, Field(pattern=r"^[0-9a-z]{8,64}$")]
    name: str
    eks_cluster: str = "analytics"
    namespace: str = "spark-jobs"
    tags: dict[str, str] = Field(default_factory=dict)
    job_runs: list[EksJobRunSpec] = Field(default_factory=list)


def _driver(spec: EksJobRunSpec) -> dict[str, Any]:
    driver: dict[str, Any] = {"entryPoint": spec.entry_point}
    if spec.submit_parameters:
        driver["sparkSubmitParameters"] = spec.submit_parameters
    return driver


def _application_configuration(spec: EksJobRunSpec) -> dict[str, Any]:
    if not spec.spark_defaults:
        return {}
    return {"applicationConfiguration": [{"classification": "spark-defaults", "properties": spec.spark_defaults}]}


def seed_virtual_clusters(specs: list[VirtualClusterSpec], log_uri: str, region: str, account: str) -> None:
    """Create each virtual cluster and its job runs in moto, renamed to the spec's ids, in the spec's state."""
    import boto3
    from moto.emrcontainers.models import emrcontainers_backends

    client = boto3.client("emr-containers", region_name=region)
    backend: Any = emrcontainers_backends[account][region]  # moto internals: we rename its objects
    for spec in specs:
        created = client.create_virtual_cluster(
            name=spec.name,
            containerProvider={
                "type": "EKS",
                "id": spec.eks_cluster,
                "info": {"eksInfo": {"namespace": spec.namespace}},
            },
            clientToken=str(uuid.uuid4()),
            tags=spec.tags,
        )["id"]
        cluster = backend.virtual_clusters.pop(created)
        cluster.id = spec.id
        cluster.arn = cluster.arn.rsplit("/", 1)[0] + "/" + spec.id
        backend.virtual_clusters[spec.id] = cluster
        for run_spec in spec.job_runs:
            started = client.start_job_run(
                virtualClusterId=spec.id,
                name=run_spec.name,
                clientToken=str(uuid.uuid4()),
                executionRoleArn=f"arn:aws:iam::{account}:role/EMRContainersJobRole",
                releaseLabel=run_spec.release_label,
                jobDriver={"sparkSubmitJobDriver": _driver(run_spec)},
                configurationOverrides={
                    "monitoringConfiguration": {"s3MonitoringConfiguration": {"logUri": run_spec.log_uri or log_uri}},
                    **_application_configuration(run_spec),
                },
                tags=run_spec.tags,
            )
            run = backend.job_runs.pop(started["id"])
            run.id = run_spec.id
            run.arn = f"{cluster.arn}/jobruns/{run_spec.id}"
            run.state = run_spec.state
            run.failure_reason = run_spec.failure_reason
            run.state_details = run_spec.state_details
            run.created_at = run_spec.created or _NOW
            run.finished_at = run_spec.finished
            if run_spec.attempts is not None:
                run.retry_policy_execution = {"currentAttemptCount": run_spec.attempts}
            if run_spec.max_attempts is not None:
                run.retry_policy_configuration = {"maxAttempts": run_spec.max_attempts}
            backend.job_runs[run_spec.id] = run

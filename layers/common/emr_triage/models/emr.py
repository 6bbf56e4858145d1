"""What the EMR and EMR Serverless APIs tell us about a cluster, a step or a job run."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from emr_triage.models.validation import Message, Name


class FailureDetails(BaseModel):
    """DescribeStep's ``Status.FailureDetails`` (Step API steps on EMR 5.x+; often 'Unknown Error')."""

    reason: Message | None = None
    message: Message | None = None
    log_file: Message | None = None


class ClusterInfo(BaseModel):
    cluster_id: str
    name: Name = ""
    state: str | None = None
    state_reason_code: str | None = None
    state_reason_message: Message | None = None
    log_uri: str | None = None
    release_label: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    arn: str | None = None
    master_public_dns: str | None = None
    found: bool = True
    lookup_error: str | None = None


class StepInfo(BaseModel):
    step_id: str
    name: Name = ""
    state: str | None = None
    action_on_failure: str | None = None
    jar: str | None = None
    args: list[str] = Field(default_factory=list)
    failure_details: FailureDetails | None = None
    created_at: datetime | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    found: bool = True
    lookup_error: str | None = None


class JobRunInfo(BaseModel):
    application_id: str
    job_run_id: str
    name: Name | None = None
    application_name: Name | None = None
    state: str | None = None
    state_details: Message | None = None
    release_label: str | None = None
    log_uri: str | None = None
    # The application's tags, overridden by the job run's own (routing reads both).
    tags: dict[str, str] = Field(default_factory=dict)
    created_at: datetime | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    updated_at: datetime | None = None
    total_execution_seconds: int | None = None
    found: bool = True
    lookup_error: str | None = None


class InstanceInfo(BaseModel):
    """An EC2 instance of an EMR cluster, from its EMR system tags (DescribeInstances)."""

    instance_id: str
    cluster_id: str
    role: str | None = None  # aws:elasticmapreduce:instance-group-role: MASTER, CORE or TASK
    private_dns: str | None = None  # the host name YARN and Spark logs name the node by
    instance_type: str | None = None


class EksJobRunInfo(BaseModel):
    """An EMR on EKS job run, from DescribeJobRun and its virtual cluster's DescribeVirtualCluster."""

    virtual_cluster_id: str
    job_run_id: str
    name: Name | None = None
    virtual_cluster_name: Name | None = None
    eks_namespace: str | None = None  # "<EKS cluster>/<namespace>" from the virtual cluster's container provider
    state: str | None = None
    failure_reason: str | None = None  # INTERNAL_ERROR, USER_ERROR, VALIDATION_ERROR or CLUSTER_UNAVAILABLE
    state_details: Message | None = None
    release_label: str | None = None
    log_uri: str | None = None
    entry_point: str | None = None
    # How it was submitted: sparkSubmitParameters, and the spark-defaults overrides of its configuration.
    submit_parameters: str | None = None
    spark_defaults: dict[str, str] = Field(default_factory=dict)
    # The virtual cluster's tags, overridden by the job run's own (routing reads both).
    tags: dict[str, str] = Field(default_factory=dict)
    created_at: datetime | None = None
    finished_at: datetime | None = None
    attempts: int | None = None  # retryPolicyExecution.currentAttemptCount (driver attempts, retry policy on)
    max_attempts: int | None = None
    found: bool = True
    lookup_error: str | None = None

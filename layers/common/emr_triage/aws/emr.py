"""EMR, EMR Serverless and EMR on EKS reads: DescribeCluster, DescribeStep, ListSteps, GetJobRun,
GetApplication, DescribeJobRun (aws/emr_eks.py), DescribeInstances."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from emr_triage.aws import clients
from emr_triage.aws.clients import lookup_problem
from emr_triage.aws.emr_eks import EksReads
from emr_triage.aws.ttl_cache import TtlCache
from emr_triage.models.emr import ClusterInfo, EksJobRunInfo, FailureDetails, InstanceInfo, JobRunInfo, StepInfo
from emr_triage.observability import logger

_NAME_CACHE_SIZE = 512
_CLUSTER_TTL_SECONDS = 300.0
# The system tags EMR puts on every EC2 instance of a cluster.
EMR_CLUSTER_TAG = "aws:elasticmapreduce:job-flow-id"
EMR_ROLE_TAG = "aws:elasticmapreduce:instance-group-role"

if TYPE_CHECKING:
    from mypy_boto3_emr import EMRClient
    from mypy_boto3_emr_serverless import EMRServerlessClient


class BotoEmrGateway:
    """The EMR gateway over boto3."""

    def __init__(
        self,
        emr: EMRClient | None = None,
        emr_serverless: EMRServerlessClient | None = None,
        emr_containers: Any = None,
        ec2: Any = None,
    ) -> None:
        self._emr = emr
        self._emr_serverless = emr_serverless
        self._ec2 = ec2
        self._clusters: TtlCache[ClusterInfo] = TtlCache(_CLUSTER_TTL_SECONDS, _NAME_CACHE_SIZE)
        self._eks = EksReads(emr_containers)

    @property
    def emr(self) -> EMRClient:
        return self._emr or clients.emr()

    @property
    def emr_serverless(self) -> EMRServerlessClient:
        return self._emr_serverless or clients.emr_serverless()

    def describe_cluster(self, cluster_id: str) -> ClusterInfo:
        try:
            cluster: Any = self.emr.describe_cluster(ClusterId=cluster_id)["Cluster"]
        except Exception as exc:
            return ClusterInfo(
                cluster_id=cluster_id,
                found=False,
                lookup_error=lookup_problem(exc, "elasticmapreduce:DescribeCluster", f"cluster {cluster_id}"),
            )
        status = cluster.get("Status", {})
        reason = status.get("StateChangeReason", {})
        return ClusterInfo(
            cluster_id=cluster_id,
            name=cluster.get("Name", ""),
            state=status.get("State"),
            state_reason_code=reason.get("Code"),
            state_reason_message=reason.get("Message"),
            log_uri=cluster.get("LogUri"),
            release_label=cluster.get("ReleaseLabel"),
            tags={t["Key"]: t.get("Value", "") for t in cluster.get("Tags", [])},
            arn=cluster.get("ClusterArn"),
            master_public_dns=cluster.get("MasterPublicDnsName") or None,
        )

    def cluster(self, cluster_id: str) -> ClusterInfo:
        """DescribeCluster, remembered by this process for ``_CLUSTER_TTL_SECONDS`` (DescribeCluster is
        throttled account-wide, and every step of a cluster asks for the same name, tags and LogUri). A
        lookup that failed is not remembered."""
        kept = self._clusters.get(cluster_id)
        if kept is not None:
            return kept
        info = self.describe_cluster(cluster_id)
        if info.found:
            self._clusters.put(cluster_id, info)
        return info

    def cluster_name(self, cluster_id: str) -> str | None:
        """The cluster's name (a name never changes): one DescribeCluster per cluster per warm Lambda
        every few minutes, not one per step."""
        info = self.cluster(cluster_id)
        return (info.name or None) if info.found else None

    def describe_step(self, cluster_id: str, step_id: str) -> StepInfo:
        try:
            step: Any = self.emr.describe_step(ClusterId=cluster_id, StepId=step_id)["Step"]
        except Exception as exc:
            return StepInfo(
                step_id=step_id,
                found=False,
                lookup_error=lookup_problem(exc, "elasticmapreduce:DescribeStep", f"step {step_id} of {cluster_id}"),
            )
        status = step.get("Status", {})
        timeline = status.get("Timeline", {})
        details = status.get("FailureDetails")
        config = step.get("Config", {})
        return StepInfo(
            step_id=step_id,
            name=step.get("Name", ""),
            state=status.get("State"),
            action_on_failure=step.get("ActionOnFailure"),
            jar=config.get("Jar"),
            args=list(config.get("Args", [])),
            failure_details=FailureDetails(
                reason=details.get("Reason"), message=details.get("Message"), log_file=details.get("LogFile")
            )
            if details
            else None,
            created_at=timeline.get("CreationDateTime"),
            started_at=timeline.get("StartDateTime"),
            ended_at=timeline.get("EndDateTime"),
        )

    def failed_steps(self, cluster_id: str) -> list[StepInfo] | None:
        """The cluster's failed steps, newest first (ListSteps' first page: the 50 most recent), or None
        when EMR cannot tell (not allowed, cluster gone): the caller then decides without them."""
        try:
            steps: Any = self.emr.list_steps(ClusterId=cluster_id, StepStates=["FAILED"])["Steps"]
        except Exception as exc:
            problem = lookup_problem(exc, "elasticmapreduce:ListSteps", f"cluster {cluster_id}")
            logger.warning("failed steps unknown", cluster_id=cluster_id, reason=problem)
            return None
        found = []
        for step in steps:
            timeline = step.get("Status", {}).get("Timeline", {})
            found.append(
                StepInfo(
                    step_id=step["Id"],
                    name=step.get("Name", ""),
                    state=step.get("Status", {}).get("State"),
                    action_on_failure=step.get("ActionOnFailure"),
                    created_at=timeline.get("CreationDateTime"),
                    started_at=timeline.get("StartDateTime"),
                    ended_at=timeline.get("EndDateTime"),
                )
            )
        return found

    def get_job_run(self, application_id: str, job_run_id: str) -> JobRunInfo:
        try:
            run: Any = self.emr_serverless.get_job_run(applicationId=application_id, jobRunId=job_run_id)["jobRun"]
        except Exception as exc:
            return JobRunInfo(
                application_id=application_id,
                job_run_id=job_run_id,
                found=False,
                lookup_error=lookup_problem(
                    exc, "emr-serverless:GetJobRun", f"job run {job_run_id} of application {application_id}"
                ),
            )
        monitoring = run.get("configurationOverrides", {}).get("monitoringConfiguration", {})
        log_uri = monitoring.get("s3MonitoringConfiguration", {}).get("logUri")
        application, problem = self._application(application_id)
        if not log_uri:
            # No per-run override: the application's default monitoring configuration applies.
            app_monitoring = application.get("monitoringConfiguration", {})
            log_uri = app_monitoring.get("s3MonitoringConfiguration", {}).get("logUri")
        return JobRunInfo(
            application_id=application_id,
            job_run_id=job_run_id,
            name=run.get("name"),
            application_name=application.get("name"),
            state=run.get("state"),
            state_details=run.get("stateDetails"),
            release_label=run.get("releaseLabel"),
            log_uri=log_uri,
            tags={**application.get("tags", {}), **run.get("tags", {})},
            created_at=run.get("createdAt"),
            started_at=run.get("startedAt"),
            ended_at=run.get("endedAt"),
            updated_at=run.get("updatedAt"),
            total_execution_seconds=run.get("totalExecutionDurationSeconds"),
            lookup_error=problem,
        )

    def describe_eks_job_run(self, virtual_cluster_id: str, job_run_id: str) -> EksJobRunInfo:
        """EMR on EKS: DescribeJobRun, with its virtual cluster's name, tags and EKS namespace."""
        return self._eks.describe_job_run(virtual_cluster_id, job_run_id)

    def instance_owner(self, instance_id: str) -> InstanceInfo | None:
        """DescribeInstances of one instance: its cluster from EMR's system tag
        ``aws:elasticmapreduce:job-flow-id`` and its role from ``aws:elasticmapreduce:instance-group-role``
        (EMR tags every instance it launches with both). None when it has no such tag or is unknown."""
        try:
            response: Any = (self._ec2 or clients.ec2()).describe_instances(InstanceIds=[instance_id])
        except Exception as exc:
            logger.warning("instance owner unknown", problem=lookup_problem(exc, "ec2:DescribeInstances", instance_id))
            return None
        for reservation in response.get("Reservations", []):
            for instance in reservation.get("Instances", []):
                tags = {t.get("Key"): t.get("Value") for t in instance.get("Tags", [])}
                cluster = tags.get(EMR_CLUSTER_TAG)
                if instance.get("InstanceId") == instance_id and cluster:
                    return InstanceInfo(
                        instance_id=instance_id,
                        cluster_id=cluster,
                        role=tags.get(EMR_ROLE_TAG),
                        private_dns=instance.get("PrivateDnsName") or None,
                        instance_type=instance.get("InstanceType"),
                    )
        return None

    def job_run_state(self, application_id: str, job_run_id: str) -> str | None:
        """The job run's state alone (one GetJobRun, no GetApplication); None when EMR cannot say."""
        try:
            run: Any = self.emr_serverless.get_job_run(applicationId=application_id, jobRunId=job_run_id)["jobRun"]
        except Exception as exc:
            what = f"job run {job_run_id} of application {application_id}"
            logger.warning("job run state unknown", problem=lookup_problem(exc, "emr-serverless:GetJobRun", what))
            return None
        state = run.get("state")
        return str(state) if state else None

    def _application(self, application_id: str) -> tuple[Any, str | None]:
        """The application (name, tags, default log location); a failed lookup only thins the alert."""
        try:
            return self.emr_serverless.get_application(applicationId=application_id)["application"], None
        except Exception as exc:
            return {}, lookup_problem(exc, "emr-serverless:GetApplication", f"application {application_id}")

"""EMR on EKS reads: DescribeJobRun and DescribeVirtualCluster (the API's shapes: README facts)."""

from __future__ import annotations

from typing import Any

from emr_triage.aws import clients
from emr_triage.aws.clients import lookup_problem
from emr_triage.aws.ttl_cache import TtlCache
from emr_triage.models.emr import EksJobRunInfo
from emr_triage.observability import logger

_VIRTUAL_CLUSTER_TTL_SECONDS = 300.0
_CACHE_SIZE = 256


def _spark_defaults(configurations: list[Any]) -> dict[str, str]:
    """The ``spark-defaults`` classification's properties of a job run's configuration overrides."""
    found: dict[str, str] = {}
    for configuration in configurations:
        if isinstance(configuration, dict) and configuration.get("classification") == "spark-defaults":
            found.update({str(k): str(v) for k, v in (configuration.get("properties") or {}).items()})
    return found


class EksReads:
    """DescribeJobRun per failure; DescribeVirtualCluster (name, tags, EKS namespace) remembered a few
    minutes per process, as every job run of a virtual cluster asks for the same."""

    def __init__(self, client: Any = None) -> None:
        self._client = client
        self._virtual_clusters: TtlCache[dict[str, Any]] = TtlCache(_VIRTUAL_CLUSTER_TTL_SECONDS, _CACHE_SIZE)

    @property
    def client(self) -> Any:
        return self._client or clients.emr_containers()

    def describe_job_run(self, virtual_cluster_id: str, job_run_id: str) -> EksJobRunInfo:
        try:
            run: Any = self.client.describe_job_run(id=job_run_id, virtualClusterId=virtual_cluster_id)["jobRun"]
        except Exception as exc:
            what = f"job run {job_run_id} of virtual cluster {virtual_cluster_id}"
            return EksJobRunInfo(
                virtual_cluster_id=virtual_cluster_id,
                job_run_id=job_run_id,
                found=False,
                lookup_error=lookup_problem(exc, "emr-containers:DescribeJobRun", what),
            )
        overrides = run.get("configurationOverrides") or {}
        monitoring = overrides.get("monitoringConfiguration") or {}
        driver = (run.get("jobDriver") or {}).get("sparkSubmitJobDriver") or {}
        cluster, problem = self._virtual_cluster(virtual_cluster_id)
        provider = cluster.get("containerProvider") or {}
        namespace = ((provider.get("info") or {}).get("eksInfo") or {}).get("namespace")
        eks = "/".join(p for p in (provider.get("id"), namespace) if p) or None
        return EksJobRunInfo(
            virtual_cluster_id=virtual_cluster_id,
            job_run_id=job_run_id,
            name=run.get("name"),
            virtual_cluster_name=cluster.get("name"),
            eks_namespace=eks,
            state=run.get("state"),
            failure_reason=run.get("failureReason"),
            state_details=run.get("stateDetails"),
            release_label=run.get("releaseLabel"),
            log_uri=(monitoring.get("s3MonitoringConfiguration") or {}).get("logUri"),
            entry_point=driver.get("entryPoint"),
            submit_parameters=driver.get("sparkSubmitParameters"),
            spark_defaults=_spark_defaults(overrides.get("applicationConfiguration") or []),
            tags={**(cluster.get("tags") or {}), **(run.get("tags") or {})},
            created_at=run.get("createdAt"),
            finished_at=run.get("finishedAt"),
            attempts=(run.get("retryPolicyExecution") or {}).get("currentAttemptCount"),
            max_attempts=(run.get("retryPolicyConfiguration") or {}).get("maxAttempts"),
            lookup_error=problem,
        )

    def _virtual_cluster(self, virtual_cluster_id: str) -> tuple[dict[str, Any], str | None]:
        """The virtual cluster (name, tags, container provider); a failed lookup only thins the alert."""
        kept = self._virtual_clusters.get(virtual_cluster_id)
        if kept is not None:
            return kept, None
        try:
            cluster: Any = self.client.describe_virtual_cluster(id=virtual_cluster_id)["virtualCluster"]
        except Exception as exc:
            problem = lookup_problem(
                exc, "emr-containers:DescribeVirtualCluster", f"virtual cluster {virtual_cluster_id}"
            )
            logger.warning("virtual cluster unknown", virtual_cluster_id=virtual_cluster_id, reason=problem)
            return {}, problem
        self._virtual_clusters.put(virtual_cluster_id, cluster)
        return cluster, None

"""Where EMR writes logs in S3, and what an object key tells us about the log inside it.

Layout below a cluster's LogUri (reference §3.2)::

    <prefix>/j-XXXX/steps/s-XXXX/{controller,stderr,stdout,syslog}.gz
    <prefix>/j-XXXX/containers/application_<ts>_<seq>/container_[e<epoch>_]<ts>_<seq>_<attempt>_<n>/{stderr,stdout,syslog}.gz

EMR Serverless (reference §3.3, unverified layout, tolerated if absent)::

    <logUri>/applications/<appId>/jobs/<jobRunId>/SPARK_DRIVER/{stderr,stdout}.gz

EMR on EKS (its guide, "Configure a job run to use Amazon S3 logs"; README facts)::

    <logUri>/<virtualClusterId>/jobs/<jobRunId>/containers/<job-runner pod>/{stderr,stdout}.gz
    <logUri>/<virtualClusterId>/jobs/<jobRunId>/containers/spark-<jobRunId>/spark-<jobRunId>-driver[-<suffix>]/...
    <logUri>/<virtualClusterId>/jobs/<jobRunId>/containers/spark-<jobRunId>/<executor pod>/{stderr,stdout}.gz
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

_STEP_KEY = re.compile(r"(?:^|/)(?P<cluster>j-[A-Z0-9]+)/steps/(?P<step>s-[A-Z0-9]+)/(?P<file>[^/]+)$")
_CONTAINER_KEY = re.compile(
    r"(?:^|/)(?P<cluster>j-[A-Z0-9]+)/containers/(?P<app>application_\d+_\d+)/"
    r"(?P<container>container_(?:e\d+_)?\d+_\d+_(?P<attempt>\d+)_(?P<number>\d+))/(?P<file>[^/]+)$"
)
_EKS_KEY = re.compile(
    r"(?:^|/)(?P<cluster>[0-9a-z]{8,64})/jobs/(?P<run>[0-9a-z]{8,64})/containers/"
    r"(?:(?P<app>spark-[0-9a-z]+)/)?(?P<pod>[a-z0-9][a-z0-9.-]{0,252})/(?P<file>[^/]+)$"
)
_S3_URI = re.compile(r"^s3[an]?://(?P<bucket>[^/]+)/?(?P<key>.*)$")

# Which step files we read, most telling first (stderr holds spark-submit's and, in client mode,
# the driver's output; controller holds EMR's view of the step).
STEP_LOG_FILES = ("stderr.gz", "controller.gz", "syslog.gz", "stdout.gz")

LogKind = Literal["step", "container", "eks"]


@dataclass(frozen=True)
class LogObject:
    """An EMR log object identified from its S3 key."""

    bucket: str
    key: str
    kind: LogKind
    cluster_id: str
    file: str
    step_id: str | None = None
    application_id: str | None = None
    container_id: str | None = None
    container_number: int | None = None
    # EMR on EKS (``cluster_id`` is then the virtual cluster's id): the job run and the pod that wrote it.
    job_run_id: str | None = None
    pod: str | None = None

    @property
    def is_eks_driver(self) -> bool:
        """The Spark driver's pod (``spark-<job run>-driver``, ``-driver-<suffix>`` with a retry policy)."""
        return self.kind == "eks" and self.application_id is not None and "-driver" in (self.pod or "")

    @property
    def is_application_master(self) -> bool:
        """Container ``..._000001`` runs the YARN ApplicationMaster (the driver in cluster mode)."""
        return self.container_number == 1

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    @property
    def weight(self) -> int:
        """How much a finding in this log counts when findings tie: driver-side logs beat executors."""
        if self.kind == "step":
            return 3 if self.file.startswith("stderr") else 2
        if self.kind == "eks":
            # The driver's stderr; the driver's stdout and the job runner's (spark-submit's) logs; executors.
            if self.is_eks_driver:
                return 3 if self.file.startswith("stderr") else 2
            return 2 if self.application_id is None else 1
        return 3 if self.is_application_master else 1


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """Split ``s3://``, ``s3n://`` or ``s3a://`` URIs into (bucket, key-or-prefix).

    Raises
    ------
    ValueError
        When the URI is not an S3 URI.
    """
    match = _S3_URI.match(uri.strip())
    if not match:
        raise ValueError(f"not an S3 URI: {uri!r} (expected s3://bucket/prefix/)")
    return match["bucket"], match["key"]


def normalise_log_uri(uri: str) -> str:
    """``s3n://b/p`` → ``s3://b/p/``: the form we store and show."""
    bucket, prefix = parse_s3_uri(uri)
    prefix = prefix.strip("/")
    return f"s3://{bucket}/{prefix}/" if prefix else f"s3://{bucket}/"


def step_log_prefix(log_uri: str, cluster_id: str, step_id: str) -> tuple[str, str]:
    """The (bucket, prefix) under which EMR writes a step's logs."""
    bucket, prefix = parse_s3_uri(normalise_log_uri(log_uri))
    return bucket, f"{prefix}{cluster_id}/steps/{step_id}/"


def serverless_driver_log(log_uri: str, application_id: str, job_run_id: str) -> tuple[str, str]:
    """The (bucket, key) of an EMR Serverless job run's driver stderr."""
    bucket, prefix = parse_s3_uri(normalise_log_uri(log_uri))
    return bucket, f"{prefix}applications/{application_id}/jobs/{job_run_id}/SPARK_DRIVER/stderr.gz"


def eks_job_run_prefix(log_uri: str, virtual_cluster_id: str, job_run_id: str) -> tuple[str, str]:
    """The (bucket, prefix) under which EMR on EKS writes a job run's pods' logs."""
    bucket, prefix = parse_s3_uri(normalise_log_uri(log_uri))
    return bucket, f"{prefix}{virtual_cluster_id}/jobs/{job_run_id}/containers/"


def identify_log_object(bucket: str, key: str, prefix: str = "") -> LogObject | None:
    """Identify an EMR step, YARN container or EMR on EKS pod log from its key, or ``None``.

    Parameters
    ----------
    bucket, key:
        Where the object is.
    prefix:
        The configured log prefix; keys outside it are not ours (``None``).
    """
    if prefix and not key.startswith(prefix):
        return None
    relative = key[len(prefix) :]
    if match := _STEP_KEY.search(relative):
        return LogObject(
            bucket=bucket,
            key=key,
            kind="step",
            cluster_id=match["cluster"],
            step_id=match["step"],
            file=match["file"],
        )
    if match := _CONTAINER_KEY.search(relative):
        return LogObject(
            bucket=bucket,
            key=key,
            kind="container",
            cluster_id=match["cluster"],
            application_id=match["app"],
            container_id=match["container"],
            container_number=int(match["number"]),
            file=match["file"],
        )
    if match := _EKS_KEY.search(relative):
        if match["app"] is not None and match["app"] != f"spark-{match['run']}":
            return None  # EMR on EKS names the Spark application after its job run
        return LogObject(
            bucket=bucket,
            key=key,
            kind="eks",
            cluster_id=match["cluster"],
            job_run_id=match["run"],
            application_id=match["app"],
            pod=match["pod"],
            file=match["file"],
        )
    return None


# Driver-side logs weigh more when findings tie (see LogObject.weight). EMR's S3 layout is recognised by
# identify_log_object; these cover trees without the cluster folder (a downloaded steps/ or containers/
# folder), EMR Serverless, and an EMR on EKS driver pod's folder.
_DRIVER_PATHS = re.compile(
    r"(?:^|/)steps/s-[A-Z0-9]+/stderr|(?:^|/)container_(?:e\d+_)?\d+_\d+_\d+_0*1/|/SPARK_DRIVER/stderr"
    r"|(?:^|/)spark-[0-9a-z]+-driver(?:-[0-9a-z]+)?/stderr"
)
_STEP_PATHS = re.compile(r"(?:^|/)steps/s-[A-Z0-9]+/|/SPARK_DRIVER/")


# The weight of a driver-side log (a step's own, the driver's): at least this.
DRIVER_SIDE = 2


def log_weight(location: str) -> int:
    """How much a log counts when findings tie, from its S3 key or local path: 3 for the driver's logs
    (a step's stderr, the ApplicationMaster container ``..._000001``, EMR Serverless SPARK_DRIVER's
    stderr), 2 for a step's or a Serverless driver's other logs, 1 for the rest (executors, unrecognised
    files). The one rule: the functions' log reads and sweeps and the command line all weigh logs by it."""
    found = identify_log_object("", location)
    if found is not None:
        return found.weight
    if _DRIVER_PATHS.search(location):
        return 3
    return 2 if _STEP_PATHS.search(location) else 1

"""`make bench` load run (``--only load``): an event storm through the Lambda handlers on the embedded stack.

A night of 40 EMR clusters is generated from a seed (nothing big is kept in git): each cluster runs its
Spark steps one after the other; most succeed, about 10% fail, each failure with the lines of a real log
of the failure catalogue's fixtures (``tests/fixtures/logs/<category>/``); some failures get a successful
rerun; one cluster dies with its step (``TERMINATE_CLUSTER``), its pending steps cancelled. Every step
that ran leaves its step logs and its YARN containers' logs (ApplicationMaster ``_000001`` and executors)
in S3, gzip, as EMR writes them. That makes 1,000 EMR events and 20,000 S3 Object Created events; about
10% of them are delivered twice (half at the same time, half later), and each is delivered up to 5 minutes
late, in random order within that sliding window, so logs often come before their step's event and a
cancelled step before the failure that cancelled it.

Deliveries run through each function's handler module (as ``emr-triage replay`` does: the template's
rules choose the function, its environment is the template's) in worker threads against moto, with
Slack served by the fake Slack Web API; a log object lands in S3 when its event is first delivered. An
invocation that raises is retried after the others, twice, as Lambda does, then counted dead-lettered.
Then the follow-up queue is drained through FollowUpFunction until empty (embedded: checks are due at
once), as the replay command does.

The ground truth is built while generating: every failed step must have its incident and one Slack root
message, in the channel its cluster's tags route it to; the cancelled steps and the dead cluster must be
folded into their step's alert (no message of their own). Figures are printed as ``name: value`` lines;
the run fails (non-zero exit, a ``FAIL`` line) on a duplicate root message, a second alert for a failure
already alerted (another incident's), or a lost incident.

Run alone: ``python tests/bench/load.py [--scale 0.1] [--workers 8] [--profile FILE] [--plain-moto]``
(``--profile`` delivers from one thread: cProfile follows one).
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import gzip
import hashlib
import itertools
import json
import os
import pstats
import queue
import random
import re
import statistics
import sys
import tempfile
import threading
import time
import uuid
import warnings
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # tests.fakes, when run as a script

FIXTURES = ROOT / "tests" / "fixtures" / "logs"

SEED = 20261120
WORKERS = 8
CLUSTERS = 40
EMR_EVENTS = 1_000
LOG_EVENTS = 20_000
FAILURE_SHARE = 0.10
RERUN_SHARE = 0.35  # of the failures: a later step of the same name on the same cluster succeeds
DUPLICATE_SHARE = 0.10
# Each delivery is late by a random 0 to SHUFFLE_SECONDS after its event's time, and the deliveries go out
# in that order: a sliding window of 5 minutes (EMR's log push interval) within which order is lost.
SHUFFLE_SECONDS = 300.0
# Half of the duplicates come within this many seconds of the first copy (two workers process them at the
# same time); the others up to 10 minutes later (a redelivery).
CONCURRENT_DUPLICATE_SECONDS = 2.0
LATE_DUPLICATE_SECONDS = 600.0
DEAD_CLUSTER_CANCELLED = 3
LAMBDA_RETRIES = 2  # EventBridge-invoked (asynchronous) Lambda: 2 retries, then the failure destination
FOLLOW_UP_MAX_RECEIVES = 5  # the follow-up queue's maxReceiveCount before its dead-letter queue
FOLLOW_UP_MAX_BATCHES = 500  # a check that keeps rescheduling itself must not loop forever
REGION = "us-east-1"
ACCOUNT = "123456789012"
LOG_URI = "s3://acme-emr-logs/elasticmapreduce/"
LOG_BUCKET = "acme-emr-logs"
LOG_PREFIX = "elasticmapreduce/"
DEFAULT_CHANNEL = "#emr-alerts"
TOKEN = "xoxb-test-token"
START = datetime(2026, 11, 20, 0, 0, tzinfo=UTC)

CHANNEL_TAG = "emr-triage:slack-channel"
MENTION_TAG = "emr-triage:slack-mention"

# Failure categories whose fixture logs read as a Spark driver's failure (the ApplicationMaster's stderr in
# cluster mode). Infrastructure-only and EMR Serverless wordings are left out.
FAILURE_CATEGORIES = (
    "broadcast_timeout",
    "data_corruption",
    "dependency_conflict",
    "disk_full",
    "driver_result_size",
    "input_not_found",
    "kerberos_auth",
    "kryo_buffer",
    "metastore_unavailable",
    "network_error",
    "oom_heap",
    "output_already_exists",
    "permission_denied",
    "python_error",
    "s3_access_denied",
    "s3_throttling",
    "shuffle_fetch_failed",
    "sql_analysis_error",
    "task_not_serializable",
    "too_many_open_files",
    "yarn_memory_kill",
)
_NOT_DRIVER_LOGS = re.compile(r"serverless|nodemanager|resourcemanager|controller")

_DOMAINS = (
    "orders",
    "billing",
    "clickstream",
    "marketing",
    "crm",
    "inventory",
    "payments",
    "search",
    "recsys",
    "fraud",
    "ledger",
    "pricing",
    "shipping",
    "returns",
    "catalog",
    "reviews",
    "ads",
    "loyalty",
    "support",
    "identity",
)
_KINDS = ("etl", "analytics")
_VERBS = ("load", "aggregate", "dedupe", "enrich", "export", "compact", "validate", "score", "join", "publish")
_NOUNS = (
    "orders",
    "sessions",
    "events",
    "customers",
    "invoices",
    "features",
    "metrics",
    "snapshots",
    "partitions",
    "reports",
)


# ---------------------------------------------------------------------------------------------------
# The night, generated
# ---------------------------------------------------------------------------------------------------
@dataclass
class StepPlan:
    cluster: ClusterPlan
    step_id: str
    name: str
    state: str  # COMPLETED | FAILED | CANCELLED
    action_on_failure: str = "CONTINUE"
    started: datetime | None = None
    ended: datetime = START
    application_id: str | None = None
    fixture: Path | None = None  # a failed step: the real failure log its driver's log carries
    rerun_of: StepPlan | None = None
    rerun: StepPlan | None = None
    executor_files: int = 0

    @property
    def category(self) -> str | None:
        return self.fixture.parent.name if self.fixture else None


@dataclass
class ClusterPlan:
    index: int
    cluster_id: str
    name: str
    channel: str
    tags: dict[str, str]
    epoch_ms: int
    container_epoch: int | None
    clock: datetime
    steps: list[StepPlan] = field(default_factory=list)
    dies: bool = False
    dead: bool = False
    terminated_at: datetime | None = None


@dataclass(frozen=True)
class LogObject:
    key: str
    body: bytes
    at: datetime
    step: StepPlan


@dataclass
class Truth:
    """What must hold after the storm, by incident id (``step_incident_id``, ``cluster_incident_id``)."""

    alerts: dict[str, str] = field(default_factory=dict)  # incident id -> channel its root message goes to
    folded: dict[str, tuple[str, str]] = field(default_factory=dict)  # child id -> (parent id, child label)
    reruns: dict[str, StepPlan] = field(default_factory=dict)  # incident id -> its successful rerun
    categories: dict[str, str] = field(default_factory=dict)  # incident id -> the fixture's category


@dataclass
class Delivery:
    """One delivery of an event to the function its rule routes it to (one Lambda invocation)."""

    index: int
    event: dict[str, Any]
    kind: str  # "emr" | "log"
    key: str | None = None  # the log object it announces
    copy: int = 0  # 0: first delivery; 1: the duplicate
    function: str = ""


@dataclass
class World:
    clusters: list[ClusterPlan]
    objects: dict[str, LogObject]
    deliveries: list[Delivery]
    truth: Truth
    emr_events: int
    log_events: int
    duplicates: int
    logs_before_step_event: int


def _ident(rng: random.Random, prefix: str, taken: set[str]) -> str:
    while True:
        value = prefix + "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") for _ in range(13))
        if value not in taken:
            taken.add(value)
            return value


def _event_id(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _spark_time(at: datetime) -> str:
    return at.strftime("%y/%m/%d %H:%M:%S")


def _fixtures() -> list[Path]:
    found = [
        path
        for category in FAILURE_CATEGORIES
        for path in sorted((FIXTURES / category).glob("*.log"))
        if not _NOT_DRIVER_LOGS.search(path.name)
    ]
    if not found:
        raise SystemExit(f"no failure fixtures found under {FIXTURES}")
    return found


def _plan_clusters(rng: random.Random, scale: float) -> tuple[list[ClusterPlan], int]:
    """The clusters and their steps, in time order per cluster, with exactly ``EMR_EVENTS * scale`` EMR
    events (step state changes, plus the dead cluster's termination)."""
    ids: set[str] = set()
    names = [f"{domain}-{kind}" for kind in _KINDS for domain in _DOMAINS]
    clusters = []
    count = max(5, min(CLUSTERS, round(CLUSTERS * scale)))
    for index in range(count):
        tags = {"team": names[index].split("-")[0]}
        channel = DEFAULT_CHANNEL
        # One cluster in five routes its alerts to the data platform's channel, one in five to ML's.
        if index % 5 == 1:
            channel = "#data-platform-alerts"
            tags[CHANNEL_TAG] = channel
        elif index % 5 == 2:
            channel = "#ml-platform-alerts"
            tags[CHANNEL_TAG] = channel
            tags[MENTION_TAG] = "S0MLONCALL"
        clusters.append(
            ClusterPlan(
                index=index,
                cluster_id=_ident(rng, "j-", ids),
                name=names[index],
                channel=channel,
                tags=tags,
                epoch_ms=1_763_596_800_000 + index * 7_919_123,
                container_epoch=rng.choice((None, 1, 2)),
                clock=START + timedelta(seconds=rng.randrange(0, 1800)),
            )
        )
    fixtures = _fixtures()
    budget = max(10, round(EMR_EVENTS * scale)) - 1  # one event is the dead cluster's termination
    dying = clusters[rng.randrange(len(clusters))]
    dying.dies = True
    death_at_step = 6
    step_names = {c.cluster_id: rng.sample([f"{v}-{n}" for v in _VERBS for n in _NOUNS], 60) for c in clusters}
    pending_reruns: dict[str, StepPlan] = {}
    events = 0
    while events < budget:
        progressed = False
        for cluster in clusters:
            if events >= budget or cluster.dead:
                continue
            rerun_of = pending_reruns.pop(cluster.cluster_id, None)
            if rerun_of is None and not step_names[cluster.cluster_id]:
                continue
            progressed = True
            name = rerun_of.name if rerun_of else step_names[cluster.cluster_id].pop()
            step = StepPlan(cluster=cluster, step_id=_ident(rng, "s-", ids), name=name, state="COMPLETED")
            step.started = cluster.clock + timedelta(seconds=rng.randrange(5, 90))
            duration = timedelta(seconds=rng.randrange(120, 1500))
            fails = rerun_of is None and rng.random() < FAILURE_SHARE
            if cluster.dies and len(cluster.steps) == death_at_step:
                fails = True
            if fails:
                step.state = "FAILED"
                step.fixture = rng.choice(fixtures)
                duration = timedelta(seconds=rng.randrange(30, 900))
            if rerun_of is not None:
                step.rerun_of = rerun_of
                rerun_of.rerun = step
            step.ended = step.started + duration
            cluster.clock = step.ended
            cluster.steps.append(step)
            events += 1
            if fails and cluster.dies:
                # ActionOnFailure TERMINATE_CLUSTER: EMR cancels the pending steps and shuts the cluster down.
                step.action_on_failure = "TERMINATE_CLUSTER"
                for _ in range(min(DEAD_CLUSTER_CANCELLED, budget - events)):
                    cancelled = StepPlan(
                        cluster=cluster,
                        step_id=_ident(rng, "s-", ids),
                        name=step_names[cluster.cluster_id].pop(),
                        state="CANCELLED",
                        ended=step.ended + timedelta(seconds=rng.randrange(1, 4)),
                    )
                    cluster.steps.append(cancelled)
                    events += 1
                cluster.dead = True
                cluster.terminated_at = step.ended + timedelta(seconds=rng.randrange(60, 150))
            elif fails and not cluster.dies and rng.random() < RERUN_SHARE:
                pending_reruns[cluster.cluster_id] = step
        if not progressed:
            break
    if not dying.dead:
        raise SystemExit("the generated night is too short for its cluster to die: raise the scale")
    return clusters, events + 1


# Log lines: INFO noise of healthy Spark applications (templates filled from the seeded generator).
_EXECUTOR_NOISE = (
    "{t} INFO Executor: Running task {a}.0 in stage {b}.0 (TID {c})",
    "{t} INFO Executor: Finished task {a}.0 in stage {b}.0 (TID {c}). 2211 bytes result sent to driver",
    "{t} INFO ShuffleBlockFetcherIterator: Getting {a} (12.3 MiB) non-empty blocks including 4 (1.1 MiB) local and 0 (0.0 B) host-local and {b} (11.2 MiB) remote blocks",
    "{t} INFO TransportClientFactory: Successfully created connection to ip-10-0-1-{a}.ec2.internal/10.0.1.{a}:7337 after 1 ms (0 ms spent in bootstraps)",
    "{t} INFO CodeGenerator: Code generated in {a}.{b} ms",
    "{t} INFO MemoryStore: Block broadcast_{b} stored as values in memory (estimated size {a}.1 KiB, free 2.1 GiB)",
    "{t} INFO S3NativeFileSystem: Opening 's3://acme-raw/events/part-{c}.parquet' for reading",
    "{t} INFO FileOutputCommitter: Saved output of task 'attempt_{c}' to s3://acme-curated/_temporary/0/task_{c}",
)
_DRIVER_NOISE = (
    "{t} INFO DAGScheduler: Submitting {a} missing tasks from ResultStage {b} (MapPartitionsRDD[{c}] at save at NativeMethodAccessorImpl.java:0)",
    "{t} INFO TaskSetManager: Finished task {a}.0 in stage {b}.0 (TID {c}) in 1873 ms on ip-10-0-2-{a}.ec2.internal (executor 3) ({a}/200)",
    "{t} INFO TaskSetManager: Starting task {a}.0 in stage {b}.0 (TID {c}) (ip-10-0-2-{a}.ec2.internal, executor 2, partition {a}, PROCESS_LOCAL, 8011 bytes)",
    "{t} INFO DAGScheduler: Job {b} finished: save at NativeMethodAccessorImpl.java:0, took {a}.204 s",
    "{t} INFO BlockManagerInfo: Added broadcast_{b}_piece0 in memory on ip-10-0-2-{a}.ec2.internal:40317 (size: 38.1 KiB, free: 5.8 GiB)",
    "{t} INFO FileFormatWriter: Write Job {c} committed. Elapsed time: {a} ms.",
)


def _noise(rng: random.Random, templates: tuple[str, ...], lines: int, at: datetime) -> list[str]:
    out = []
    for n in range(lines):
        moment = _spark_time(at + timedelta(seconds=n))
        template = templates[rng.randrange(len(templates))]
        out.append(
            template.format(t=moment, a=rng.randrange(1, 250), b=rng.randrange(1, 40), c=rng.randrange(1, 99_999))
        )
    return out


def _gz(lines: list[str]) -> bytes:
    return gzip.compress(("\n".join(lines) + "\n").encode(), compresslevel=6, mtime=0)


def _step_logs(rng: random.Random, step: StepPlan) -> dict[str, list[str]]:
    """controller, stderr (spark-submit in cluster mode), stdout and syslog of a step that ran."""
    cluster, app = step.cluster, step.application_id
    assert step.started is not None and app is not None
    took = int((step.ended - step.started).total_seconds())
    failed = step.state == "FAILED"
    iso = step.started.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    end_iso = step.ended.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    jar = f"s3://acme-data-jobs/jars/{cluster.name}-assembly.jar"
    controller = [
        f"{iso} INFO Ensure step {len(cluster.steps)} jar file command-runner.jar",
        f"{iso} INFO StepRunner: Created Runner for step {len(cluster.steps)}",
        f"INFO startExec 'hadoop jar /var/lib/aws/emr/step-runner/hadoop-jars/command-runner.jar spark-submit --deploy-mode cluster --class com.acme.Jobs {jar} --job {step.name}'",
        "INFO Environment:",
        "  PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        f"  HADOOP_LOG_DIR=/mnt/var/log/hadoop/steps/{step.step_id}",
        f"INFO redirectOutput to /mnt/var/log/hadoop/steps/{step.step_id}/stdout",
        f"INFO redirectError to /mnt/var/log/hadoop/steps/{step.step_id}/stderr",
        f"INFO ProcessRunner started child process {rng.randrange(2000, 60000)}",
        f"INFO waitProcessCompletion ended with exit code {1 if failed else 0} : hadoop jar /var/lib/aws/emr/step-runner/hadoop-...",
        f"INFO total process run time: {took} seconds",
        f"{end_iso} INFO Step created jobs: ",
        f"{end_iso} WARN Step failed with exitCode 1 and took {took} seconds"
        if failed
        else f"{end_iso} INFO Step succeeded with exitCode 0 and took {took} seconds",
    ]
    t0, t1 = _spark_time(step.started), _spark_time(step.ended)
    host = f"ip-10-0-{cluster.index % 4}-21.ec2.internal"
    stderr = [
        f"{t0} INFO DefaultNoHARMFailoverProxyProvider: Connecting to ResourceManager at {host}/10.0.{cluster.index % 4}.21:8032",
        f"{t0} INFO Client: Requesting a new application from cluster with 4 NodeManagers",
        f"{t0} INFO Client: Verifying our application has not requested more than the maximum memory capability of the cluster (57344 MB per container)",
        f"{t0} INFO Client: Will allocate AM container, with 4505 MB memory including 409 MB overhead",
        f"{t0} INFO Client: Uploading resource {jar} -> hdfs://{host}:8020/user/hadoop/.sparkStaging/{app}/{cluster.name}-assembly.jar",
        f"{t0} INFO Client: Submitting application {app} to ResourceManager",
        f"{t0} INFO YarnClientImpl: Submitted application {app}",
        f"{t0} INFO Client: Application report for {app} (state: ACCEPTED)",
    ]
    for n in range(min(60, max(3, took // 30))):
        moment = _spark_time(step.started + timedelta(seconds=30 * (n + 1)))
        stderr.append(f"{moment} INFO Client: Application report for {app} (state: RUNNING)")
    stderr += [
        f"{t1} INFO Client: Application report for {app} (state: FINISHED)",
        f"{t1} INFO Client: ",
        "\t client token: N/A",
        "\t diagnostics: " + ("User application exited with status 15" if failed else "N/A"),
        f"\t ApplicationMaster host: ip-10-0-{cluster.index % 4}-37.ec2.internal",
        f"\t final status: {'FAILED' if failed else 'SUCCEEDED'}",
        f"\t tracking URL: http://{host}:20888/proxy/{app}/",
        "\t user: hadoop",
    ]
    if failed:
        stderr += [
            f'Exception in thread "main" org.apache.spark.SparkException: Application {app} finished with failed status',
            "\tat org.apache.spark.deploy.yarn.Client.run(Client.scala:1342)",
            "\tat org.apache.spark.deploy.yarn.YarnClusterApplication.start(Client.scala:1766)",
            "\tat org.apache.spark.deploy.SparkSubmit.org$apache$spark$deploy$SparkSubmit$$runMain(SparkSubmit.scala:1032)",
            "\tat org.apache.spark.deploy.SparkSubmit$.main(SparkSubmit.scala:1120)",
            "\tat org.apache.spark.deploy.SparkSubmit.main(SparkSubmit.scala)",
        ]
    stderr.append(f"{t1} INFO ShutdownHookManager: Shutdown hook called")
    syslog = [
        f"{iso} INFO org.apache.hadoop.yarn.client.DefaultNoHARMFailoverProxyProvider (main): Connecting to ResourceManager at {host}/10.0.{cluster.index % 4}.21:8032",
        f"{end_iso} INFO org.apache.hadoop.util.ShutdownHookManager (main): Shutdown hook called",
    ]
    stdout = [f"{t0} INFO Using Spark's default log4j profile: org/apache/spark/log4j2-defaults.properties"]
    return {"controller.gz": controller, "stderr.gz": stderr, "stdout.gz": stdout, "syslog.gz": syslog}


def _driver_log(rng: random.Random, step: StepPlan, executors: int) -> list[str]:
    """The ApplicationMaster's stderr: the driver in cluster mode (final status, and a failure's lines)."""
    cluster, app = step.cluster, step.application_id
    assert step.started is not None and app is not None
    seq = app.rsplit("_", 1)[1]
    t0, t1 = _spark_time(step.started), _spark_time(step.ended)
    lines = [
        f"{t0} INFO SignalUtils: Registering signal handler for TERM",
        f"{t0} INFO ApplicationMaster: ApplicationAttemptId: appattempt_{cluster.epoch_ms}_{seq}_000001",
        f"{t0} INFO ApplicationMaster: Starting the user application in a separate Thread",
        f"{t0} INFO SparkContext: Running Spark version 3.5.2-amzn-1",
        f"{t0} INFO SparkContext: Submitted application: {cluster.name}.{step.name}",
        f"{t0} INFO YarnRMClient: Registering the ApplicationMaster",
    ]
    for n in range(executors):
        lines.append(
            f"{t0} INFO YarnAllocator: Launching container {_container(step, n + 2)} on host ip-10-0-2-{n + 40}.ec2.internal for executor with ID {n + 1} for ResourceProfile Id 0"
        )
    lines += _noise(rng, _DRIVER_NOISE, rng.randrange(40, 160), step.started)
    if step.state == "FAILED":
        assert step.fixture is not None
        lines += step.fixture.read_text("utf-8", "replace").splitlines()
        lines += [
            f"{t1} INFO ApplicationMaster: Final app status: FAILED, exitCode: 15",
            f"{t1} INFO ApplicationMaster: Unregistering ApplicationMaster with FAILED",
        ]
    else:
        lines += [
            f"{t1} INFO ApplicationMaster: Final app status: SUCCEEDED, exitCode: 0",
            f"{t1} INFO ApplicationMaster: Unregistering ApplicationMaster with SUCCEEDED",
        ]
    lines.append(f"{t1} INFO ShutdownHookManager: Shutdown hook called")
    return lines


def _container(step: StepPlan, number: int) -> str:
    cluster, app = step.cluster, step.application_id
    assert app is not None
    epoch = f"e{cluster.container_epoch:02d}_" if cluster.container_epoch else ""
    return f"container_{epoch}{cluster.epoch_ms}_{app.rsplit('_', 1)[1]}_01_{number:06d}"


def _plan_logs(rng: random.Random, clusters: list[ClusterPlan], scale: float) -> dict[str, LogObject]:
    """Every log object of the steps that ran, exactly ``LOG_EVENTS * scale`` of them: 4 step logs, the
    ApplicationMaster's stderr and stdout, and the executors' (stderr and stdout each)."""
    ran = [s for c in clusters for s in c.steps if s.state != "CANCELLED"]
    target = max(len(ran) * 8, round(LOG_EVENTS * scale))
    spare = target - 8 * len(ran)  # every step has at least one executor (2 files) besides its 6 others
    weights = [rng.randrange(1, 12) for _ in ran]
    total = sum(weights)
    for step, weight in zip(ran, weights, strict=True):
        step.executor_files = 2 + spare * weight // total
    for step in rng.sample(ran, target - sum(6 + s.executor_files for s in ran)):
        step.executor_files += 1
    objects: dict[str, LogObject] = {}
    for cluster in clusters:
        for seq, step in enumerate((s for s in cluster.steps if s.state != "CANCELLED"), start=1):
            step.application_id = f"application_{cluster.epoch_ms}_{seq:04d}"
    for step in ran:
        cluster = step.cluster
        step_prefix = f"{LOG_PREFIX}{cluster.cluster_id}/steps/{step.step_id}/"
        # EMR's log pusher copies logs every 5 minutes: each object lands up to ~6 min after the step ended.
        for name, lines in _step_logs(rng, step).items():
            at = step.ended + timedelta(seconds=rng.randrange(20, 330))
            objects[step_prefix + name] = LogObject(step_prefix + name, _gz(lines), at, step)
        executors = (step.executor_files + 1) // 2
        app_prefix = f"{LOG_PREFIX}{cluster.cluster_id}/containers/{step.application_id}/"
        am = app_prefix + f"{_container(step, 1)}/"
        at = step.ended + timedelta(seconds=rng.randrange(30, 360))
        objects[am + "stderr.gz"] = LogObject(am + "stderr.gz", _gz(_driver_log(rng, step, executors)), at, step)
        banner = [f"{_spark_time(step.started or step.ended)} INFO Using Spark's default log4j profile"]
        objects[am + "stdout.gz"] = LogObject(am + "stdout.gz", _gz(banner), at + timedelta(seconds=1), step)
        for n in range(step.executor_files):
            container = app_prefix + f"{_container(step, 2 + n // 2)}/"
            name = "stderr.gz" if n % 2 == 0 else "stdout.gz"
            lines = (
                _noise(rng, _EXECUTOR_NOISE, rng.randrange(20, 140), step.started or step.ended)
                if name == "stderr.gz"
                else banner
            )
            at = step.ended + timedelta(seconds=rng.randrange(30, 360))
            objects[container + name] = LogObject(container + name, _gz(lines), at, step)
    assert len(objects) == target, (len(objects), target)
    return objects


def _step_event(rng: random.Random, step: StepPlan) -> dict[str, Any]:
    cluster = step.cluster
    verb = {"COMPLETED": "completed execution", "FAILED": "failed", "CANCELLED": "was cancelled"}[step.state]
    return {
        "version": "0",
        "id": _event_id(rng),
        "detail-type": "EMR Step Status Change",
        "source": "aws.emr",
        "account": ACCOUNT,
        "time": step.ended.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": REGION,
        "resources": [],
        "detail": {
            "severity": {"COMPLETED": "INFO", "FAILED": "ERROR", "CANCELLED": "WARN"}[step.state],
            "actionOnFailure": step.action_on_failure,
            "stepId": step.step_id,
            "name": step.name,
            "clusterId": cluster.cluster_id,
            "state": step.state,
            "message": f"Step {step.step_id} ({step.name}) in Amazon EMR cluster {cluster.cluster_id} ({cluster.name}) "
            f"{verb} at {step.ended.strftime('%Y-%m-%d %H:%M')} UTC.",
        },
    }


def _cluster_event(rng: random.Random, cluster: ClusterPlan) -> dict[str, Any]:
    assert cluster.terminated_at is not None
    return {
        "version": "0",
        "id": _event_id(rng),
        "detail-type": "EMR Cluster State Change",
        "source": "aws.emr",
        "account": ACCOUNT,
        "time": cluster.terminated_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": REGION,
        "resources": [],
        "detail": {
            "severity": "CRITICAL",
            "stateChangeReason": '{"code":"STEP_FAILURE","message":"Shut down as step failed"}',
            "name": cluster.name,
            "clusterId": cluster.cluster_id,
            "state": "TERMINATED_WITH_ERRORS",
            "message": f"Amazon EMR Cluster {cluster.cluster_id} ({cluster.name}) has terminated with errors at "
            f"{cluster.terminated_at.strftime('%Y-%m-%d %H:%M')} UTC with a reason of STEP_FAILURE.",
        },
    }


def _object_event(rng: random.Random, obj: LogObject) -> dict[str, Any]:
    return {
        "version": "0",
        "id": _event_id(rng),
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": ACCOUNT,
        "time": obj.at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": REGION,
        "resources": [f"arn:aws:s3:::{LOG_BUCKET}"],
        "detail": {
            "version": "0",
            "bucket": {"name": LOG_BUCKET},
            "object": {
                "key": obj.key,
                "size": len(obj.body),
                "etag": hashlib.md5(obj.body, usedforsecurity=False).hexdigest(),  # S3's single-part etag
                "sequencer": f"{rng.getrandbits(64):016X}",
            },
            "request-id": f"{rng.getrandbits(64):016X}",
            "requester": ACCOUNT,
            "source-ip-address": "10.0.0.12",
            "reason": "PutObject",
        },
    }


def _truth(clusters: list[ClusterPlan]) -> Truth:
    from emr_triage.incidents.service import cluster_incident_id, step_incident_id

    truth = Truth()
    for cluster in clusters:
        failed = None
        for step in cluster.steps:
            incident_id = step_incident_id(cluster.cluster_id, step.step_id)
            if step.state == "FAILED":
                failed = incident_id
                truth.alerts[incident_id] = cluster.channel
                truth.categories[incident_id] = step.category or "?"
                if step.rerun is not None:
                    truth.reruns[incident_id] = step.rerun
            elif step.state == "CANCELLED":
                assert failed is not None
                truth.folded[incident_id] = (failed, f"step {step.name} ({step.step_id}) CANCELLED")
        if cluster.dead:
            assert failed is not None
            label = f"cluster {cluster.name} TERMINATED_WITH_ERRORS (STEP_FAILURE)"
            truth.folded[cluster_incident_id(cluster.cluster_id)] = (failed, label)
    return truth


def generate(seed: int = SEED, scale: float = 1.0) -> World:
    """The night's clusters, log objects, deliveries (shuffled, some twice) and ground truth, from ``seed``."""
    rng = random.Random(seed)
    clusters, emr_events = _plan_clusters(rng, scale)
    objects = _plan_logs(rng, clusters, scale)
    # Every event at its time: step state changes when the step ended, log objects when they landed.
    timed: list[tuple[datetime, int, Delivery]] = []
    order = itertools.count()
    first_step_events: dict[str, Delivery] = {}
    for cluster in clusters:
        for step in cluster.steps:
            delivery = Delivery(0, _step_event(rng, step), "emr")
            first_step_events[step.step_id] = delivery
            timed.append((step.ended, next(order), delivery))
        if cluster.dead:
            assert cluster.terminated_at is not None
            timed.append((cluster.terminated_at, next(order), Delivery(0, _cluster_event(rng, cluster), "emr")))
    for obj in objects.values():
        timed.append((obj.at, next(order), Delivery(0, _object_event(rng, obj), "log", key=obj.key)))
    timed.sort(key=lambda t: (t[0], t[1]))
    # Shuffled within a sliding window; about 10% delivered twice, half of them at once.
    keyed: list[tuple[float, int, Delivery]] = []
    duplicates = 0
    for at, _, delivery in timed:
        place = (at - START).total_seconds() + rng.uniform(0, SHUFFLE_SECONDS)
        keyed.append((place, next(order), delivery))
        if rng.random() < DUPLICATE_SHARE:
            duplicates += 1
            later = (
                rng.uniform(0, CONCURRENT_DUPLICATE_SECONDS)
                if rng.random() < 0.5
                else rng.uniform(CONCURRENT_DUPLICATE_SECONDS, LATE_DUPLICATE_SECONDS)
            )
            again = Delivery(0, delivery.event, delivery.kind, key=delivery.key, copy=1)
            keyed.append((place + later, next(order), again))
    # The dead cluster's story out of order: one cancelled step is delivered before the failure behind it.
    places = {id(d): p for p, _, d in keyed}
    dead = next(c for c in clusters if c.dead)
    failed = next(s for s in dead.steps if s.state == "FAILED")
    cancelled = next(s for s in dead.steps if s.state == "CANCELLED")
    moved = first_step_events[cancelled.step_id]
    keyed = [(places[id(first_step_events[failed.step_id])] - 1.0 if d is moved else p, n, d) for p, n, d in keyed]
    keyed.sort(key=lambda k: (k[0], k[1]))
    deliveries = []
    for index, (_, _, delivery) in enumerate(keyed):
        delivery.index = index
        deliveries.append(delivery)
    # How often a log object comes before its step's state change (its handler then finds no incident).
    step_position = {}
    for delivery in deliveries:
        if delivery.kind == "emr" and "stepId" in delivery.event["detail"]:
            step_position.setdefault(delivery.event["detail"]["stepId"], delivery.index)
    early = sum(
        1
        for d in deliveries
        if d.kind == "log" and d.copy == 0 and d.index < step_position[objects[str(d.key)].step.step_id]
    )
    return World(
        clusters=clusters,
        objects=objects,
        deliveries=deliveries,
        truth=_truth(clusters),
        emr_events=emr_events,
        log_events=len(objects),
        duplicates=duplicates,
        logs_before_step_event=early,
    )


def scenario_for(world: World) -> dict[str, Any]:
    """The embedded stack's AWS state (``scenario.yaml``'s model): every cluster and its steps."""
    clusters = []
    for cluster in world.clusters:
        steps = []
        for step in cluster.steps:
            spec: dict[str, Any] = {
                "id": step.step_id,
                "name": step.name,
                "state": step.state,
                "action_on_failure": step.action_on_failure,
                "args": [
                    "spark-submit",
                    "--deploy-mode",
                    "cluster",
                    f"s3://acme-data-jobs/jars/{cluster.name}-assembly.jar",
                ],
                "started": step.started,
                "ended": step.ended,
            }
            if step.state == "FAILED":
                stderr = f"{LOG_URI}{cluster.cluster_id}/steps/{step.step_id}/stderr.gz"
                spec["failure_details"] = {"reason": "Unknown Error.", "log_file": stderr}
            steps.append(spec)
        clusters.append(
            {
                "id": cluster.cluster_id,
                "name": cluster.name,
                "state": "TERMINATED_WITH_ERRORS" if cluster.dead else "WAITING",
                "state_change_reason": {"code": "STEP_FAILURE", "message": "Shut down as step failed"}
                if cluster.dead
                else None,
                "release_label": "emr-7.5.0",
                "tags": cluster.tags,
                "steps": steps,
            }
        )
    return {
        "description": f"load run: {len(world.clusters)} clusters, seed {SEED}",
        "region": REGION,
        "account": ACCOUNT,
        "log_uri": LOG_URI,
        "slack_channel": DEFAULT_CHANNEL,
        "clusters": clusters,
    }


# ---------------------------------------------------------------------------------------------------
# Delivering: worker threads, Lambda's retries, the follow-up queue
# ---------------------------------------------------------------------------------------------------
class Meter:
    """The AWS calls an invocation makes (service:operation) and the DynamoDB response bytes it reads, by
    kind of delivery and outcome (``log:no_incident``, ``emr:incident_opened``...): what each costs,
    whatever the machine's speed. Calls outside an invocation (this harness's) are not counted."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.calls: dict[str, Counter[str]] = defaultdict(Counter)
        self.read_bytes: Counter[str] = Counter()
        self.invocations: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._local = threading.local()

    def start(self) -> None:
        """An invocation starts in this thread."""
        self._local.calls = Counter()
        self._local.read_bytes = 0

    def finish(self, kind: str, action: str | None, error: str | None) -> None:
        """It ended with ``action`` (or ``error``): add what it used to that outcome's totals."""
        outcome = f"{kind}:{action if error is None else 'failed'}"
        calls, read = getattr(self._local, "calls", None), getattr(self._local, "read_bytes", 0)
        self._local.calls = None
        with self._lock:
            self.invocations[outcome] += 1
            self.calls[outcome].update(calls or {})
            self.read_bytes[outcome] += read

    def response(self, nbytes: int) -> None:
        if getattr(self._local, "calls", None) is not None:
            self._local.read_bytes += nbytes

    @contextlib.contextmanager
    def counting(self) -> Iterator[None]:
        """Count the boto3 calls made during invocations."""
        from botocore.client import BaseClient

        original = BaseClient._make_api_call
        local = self._local

        def counted(client: Any, operation: str, params: Any) -> Any:
            calls = getattr(local, "calls", None)
            if calls is not None:
                calls[f"{client.meta.service_model.service_name}:{operation}"] += 1
            return original(client, operation, params)

        BaseClient._make_api_call = counted  # type: ignore[method-assign]
        try:
            yield
        finally:
            BaseClient._make_api_call = original  # type: ignore[method-assign]

    def figures(self, min_share: float = 0.005) -> dict[str, str]:
        """One line per outcome of at least ``min_share`` of the invocations (or any that made more than 10
        calls each): invocations, AWS calls each (the most frequent operations), DynamoDB KiB read each."""
        total = sum(self.invocations.values()) or 1
        lines = {}
        for outcome, runs in sorted(self.invocations.items(), key=lambda kv: -kv[1]):
            calls = self.calls[outcome]
            each = sum(calls.values()) / runs
            if runs / total < min_share and each <= 10:
                continue
            top = ", ".join(f"{op} {n / runs:.1f}" for op, n in calls.most_common(5))
            name = "load_cost_" + outcome.replace(":", "_")
            lines[name] = (
                f"{runs} invocations, {each:.1f} AWS calls each ({top}), "
                f"{self.read_bytes[outcome] / runs / 1024:.1f} KiB read from DynamoDB each"
            )
        return lines


METER = Meter()


@dataclass
class Attempt:
    delivery: Delivery
    action: str | None = None
    error: str | None = None
    seconds: float = 0.0


class Harness:
    """Runs deliveries through the handlers the template routes them to, several at a time."""

    def __init__(self, stack: Any, world: World, workers: int) -> None:
        from emr_triage.local.template import matching_rules

        self.stack = stack
        self.world = world
        self.workers = workers
        self.specs = {spec.logical_id: spec for spec in stack.specs}
        self.handlers: dict[str, Callable[..., dict[str, Any]]] = {}
        self._landed: dict[str, threading.Event] = {}
        self._land_lock = threading.Lock()
        # EventBridge's routing, decided by the template's rule patterns once per kind of event (the
        # pattern match is moto's and slow; every event of a kind routes alike).
        routes: dict[tuple[str, str, str], str] = {}
        for delivery in world.deliveries:
            detail = delivery.event["detail"]
            kind = (
                delivery.event["detail-type"],
                str(detail.get("state", "")),
                str(detail.get("object", {}).get("key", "")).rsplit("/", 1)[-1],
            )
            if kind not in routes:
                matches = matching_rules(stack.specs, delivery.event)
                if len(matches) != 1:
                    raise SystemExit(f"{kind}: the template routes it to {len(matches)} functions, expected 1")
                routes[kind] = matches[0][0].logical_id
            delivery.function = routes[kind]
        for logical_id in {d.function for d in world.deliveries} | {self.follow_up_spec.logical_id}:
            self.handlers[logical_id] = stack.handler(self.specs[logical_id])

    @property
    def follow_up_spec(self) -> Any:
        (spec,) = [spec for spec in self.stack.specs if "FollowUpQueue" in spec.queues]
        return spec

    def _land(self, key: str) -> None:
        """Put the log object in S3 before its first delivery (a duplicate waits for it to be there).

        EMR writes it, not a function: it goes straight into moto's S3 backend (through boto3 it would cost
        ~2 ms of this process's one core per object, 40 s for the night's 20,000)."""
        from moto.s3.models import s3_backends

        with self._land_lock:
            done = self._landed.get(key)
            first = done is None
            if first:
                done = self._landed[key] = threading.Event()
        assert done is not None
        if first:
            s3_backends[ACCOUNT]["aws"].put_object(LOG_BUCKET, key, self.world.objects[key].body)
            done.set()
        else:
            done.wait()

    def invoke(self, function: str, event: dict[str, Any]) -> dict[str, Any]:
        from emr_triage.local.replay import LocalContext

        spec = self.specs[function]
        context = LocalContext(
            f"emr-triage-local-{spec.logical_id}", spec.memory_mb, spec.timeout_seconds, REGION, ACCOUNT
        )
        return self.handlers[function](event, context)

    def attempt(self, delivery: Delivery) -> Attempt:
        result = Attempt(delivery)
        start = time.perf_counter()
        try:
            if delivery.key is not None:
                self._land(delivery.key)
            METER.start()
            outcome = self.invoke(delivery.function, delivery.event)
            result.action = str(outcome.get("action"))
        except Exception as exc:
            result.error = f"{type(exc).__name__}: {exc}"
        finally:
            METER.finish(delivery.kind, result.action, result.error)
        result.seconds = time.perf_counter() - start
        return result

    def run_all(self, work: list[Any], run: Callable[[Any], Attempt]) -> list[Attempt]:
        """Run ``work`` in order on the worker threads (each takes the next item when it is free)."""
        if self.workers == 1:
            return [run(item) for item in work]  # in this thread (where a profiler can see it)
        results: list[Attempt | None] = [None] * len(work)
        items = queue.SimpleQueue[int]()
        for index in range(len(work)):
            items.put(index)

        def worker() -> None:
            while True:
                try:
                    index = items.get_nowait()
                except queue.Empty:
                    return
                results[index] = run(work[index])

        threads = [threading.Thread(target=worker, name=f"load-{n}") for n in range(self.workers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        done = [r for r in results if r is not None]
        assert len(done) == len(work)
        return done

    # -- the follow-up queue ------------------------------------------------------------------------
    def drain_follow_ups(self) -> tuple[int, int, int, Counter[str]]:
        """Deliver the follow-up queue's messages to FollowUpFunction (one record per invocation, as
        ``run_follow_ups``; several at once) until it is empty. A failed record is received again at once
        (its visibility reset: on AWS after the 6-minute timeout), and after FOLLOW_UP_MAX_RECEIVES
        receives counted dead-lettered. Returns (invocations, failed invocations, dead-lettered, actions)."""
        from emr_triage.aws import clients
        from emr_triage.local.replay import EMBEDDED_FOLLOW_UP_QUEUE

        sqs = clients.sqs(REGION)
        url = sqs.get_queue_url(QueueName=EMBEDDED_FOLLOW_UP_QUEUE)["QueueUrl"]
        spec = self.follow_up_spec
        arn = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{EMBEDDED_FOLLOW_UP_QUEUE}"
        invocations = failed = dead = 0
        actions: Counter[str] = Counter()
        for _ in range(FOLLOW_UP_MAX_BATCHES):
            batch: list[dict[str, Any]] = []
            while len(batch) < 50:
                got = sqs.receive_message(
                    QueueUrl=url,
                    MaxNumberOfMessages=10,
                    VisibilityTimeout=300,
                    AttributeNames=["ApproximateReceiveCount"],
                ).get("Messages", [])
                if not got:
                    break
                batch += [dict(m) for m in got]
            if not batch:
                attributes = sqs.get_queue_attributes(
                    QueueUrl=url,
                    AttributeNames=[
                        "ApproximateNumberOfMessages",
                        "ApproximateNumberOfMessagesNotVisible",
                        "ApproximateNumberOfMessagesDelayed",
                    ],
                )["Attributes"]
                if all(value == "0" for value in attributes.values()):
                    return invocations, failed, dead, actions
                time.sleep(0.2)
                continue

            def deliver(message: dict[str, Any]) -> Attempt:
                record = {
                    "messageId": message["MessageId"],
                    "receiptHandle": message["ReceiptHandle"],
                    "body": message["Body"],
                    "attributes": message.get("Attributes", {}),
                    "eventSource": "aws:sqs",
                    "eventSourceARN": arn,
                    "awsRegion": REGION,
                }
                result = Attempt(Delivery(-1, {"Records": [record]}, "follow_up", function=spec.logical_id))
                METER.start()
                try:
                    raw = self.invoke(spec.logical_id, {"Records": [record]})
                    if raw.get("batchItemFailures"):
                        result.error = f"record failed: {raw['batchItemFailures']}"
                    outcomes = raw.get("outcomes") or [{}]
                    result.action = str(outcomes[0].get("action"))
                except Exception as exc:
                    result.error = f"{type(exc).__name__}: {exc}"
                finally:
                    METER.finish("follow_up", result.action, result.error)
                return result

            for message, result in zip(batch, self.run_all(batch, deliver), strict=True):
                invocations += 1
                actions[str(result.action)] += 1
                receipts = int(message.get("Attributes", {}).get("ApproximateReceiveCount", "1"))
                if result.error is None:
                    sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
                    continue
                failed += 1
                if receipts >= FOLLOW_UP_MAX_RECEIVES:
                    dead += 1
                    print(f"load: follow-up dead-lettered: {message['Body']}: {result.error}", file=sys.stderr)
                    sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
                else:
                    sqs.change_message_visibility(
                        QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
                    )
        raise SystemExit(f"the follow-up queue did not drain after {FOLLOW_UP_MAX_BATCHES} batches")


# Two of moto's costs DynamoDB does not have, taken out (each checked against moto's own result on the
# first calls, the run stops if they ever differ):
# - moto 5.2 serializes every DynamoDB response through its generic, shape-driven serializer: ~50 ms per
#   call for incident items (nested maps and lists), two thirds of a profiled run. The results of these
#   operations are already in DynamoDB's wire format: plain JSON gives the same body.
# - every Query sorts the whole table (Python-level comparisons of DynamoType keys) before filtering it,
#   so each call costs O(table log table): the night's ~1,100 items made it the top cost of a full run,
#   growing with the square of the run's size. A GSI query sorts what it found by the index's keys
#   again, so its scan order does not matter: it gets the items unsorted.
_FAST_JSON_OPERATIONS = frozenset({"GetItem", "PutItem", "Query", "Scan", "UpdateItem", "DeleteItem"})
_CHECKED_CALLS = 25


@contextlib.contextmanager
def moto_fast_paths() -> Iterator[Counter[str]]:
    """Plain-JSON DynamoDB responses and unsorted scans for GSI queries in moto (see above). Yields the
    number of calls compared with moto's own path, by operation."""
    from moto.core.responses import ActionResult
    from moto.dynamodb.models.table import Table
    from moto.dynamodb.responses import DynamoResult

    generic = ActionResult.execute_result
    own = DynamoResult.__dict__.get("execute_result")
    sorted_items, query = Table.all_items, Table.query
    checked: Counter[str] = Counter()
    lock = threading.Lock()
    unsorted = threading.local()

    def compare(name: str) -> bool:
        with lock:
            first = checked[name] < _CHECKED_CALLS
            checked[name] += first
        return first

    def execute_result(self: Any, context: Any) -> Any:
        name = str(context.operation_model.name)
        if name not in _FAST_JSON_OPERATIONS or isinstance(self.result, Exception):
            return generic(self, context)
        try:
            body = json.dumps(self.result)
        except (TypeError, ValueError):
            return generic(self, context)
        if name in ("GetItem", "Query", "Scan"):
            METER.response(len(body))
        if compare(name):
            status, headers, expected = generic(self, context)
            if status != 200 or json.loads(expected) != json.loads(body):
                raise SystemExit(f"moto's {name} response differs from its plain JSON: {expected[:200]} / {body[:200]}")
            return status, headers, expected
        return 200, {"Content-Type": "application/x-amz-json-1.0"}, body

    def all_items(self: Any) -> list[Any]:
        if getattr(unsorted, "on", False):
            return [
                item for group in self.items.values() for item in (group.values() if self.range_key_attr else [group])
            ]
        return sorted_items(self)

    def gsi_query(self: Any, *args: Any, **kwargs: Any) -> Any:
        # (moto's backend passes the index name as the 8th positional argument)
        if not kwargs.get("index_name", args[7] if len(args) > 7 else None):
            return query(self, *args, **kwargs)
        unsorted.on = True
        try:
            found = query(self, *args, **kwargs)
        finally:
            unsorted.on = False
        if compare("GSI query scan order"):
            expected = query(self, *args, **kwargs)
            keys = [[(i.hash_key, i.range_key) for i in result[0]] for result in (found, expected)]
            if keys[0] != keys[1] or found[1:] != expected[1:]:
                raise SystemExit("moto's GSI query gives another result when the table is not sorted first")
        return found

    DynamoResult.execute_result = execute_result  # type: ignore[method-assign]
    Table.all_items, Table.query = all_items, gsi_query  # type: ignore[method-assign]
    try:
        yield checked
    finally:
        Table.all_items, Table.query = sorted_items, query  # type: ignore[method-assign]
        if own is None:
            del DynamoResult.execute_result
        else:
            DynamoResult.execute_result = own  # type: ignore[method-assign]


@contextlib.contextmanager
def _quiet_stdout() -> Iterator[None]:
    """Send what the functions print (Powertools' JSON logs, EMF metrics) to /dev/null, as Lambda would
    send it to CloudWatch: the formatting cost stays, the bench output stays readable."""
    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)


# ---------------------------------------------------------------------------------------------------
# Checking the outcome against the ground truth
# ---------------------------------------------------------------------------------------------------
def peak_posts(times: list[float], window: float = 1.0) -> int:
    """The largest number of arrivals within any ``window`` seconds (closed at the start, open at the end)."""
    times = sorted(times)
    best = start = 0
    for end, at in enumerate(times):
        while at - times[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


@dataclass
class Check:
    figures: dict[str, Any]
    problems: list[str]
    failed: bool


def check(world: World, stack: Any, slack: Any) -> Check:
    from emr_triage.aws.incident_store import DynamoIncidentRepository

    truth = world.truth
    incidents = {i.incident_id: i for i in DynamoIncidentRepository(stack.table_name).list_incidents(limit=1_000_000)}
    roots = {(m.channel, m.ts): m for m in slack.root_messages()}
    referenced = {(i.slack.channel, i.slack.ts): i.incident_id for i in incidents.values() if i.slack is not None}
    names = dict(slack.channels)
    ids_to_names = {v: k for k, v in names.items()}

    def alerted(incident_id: str, depth: int = 0) -> bool:
        """Has its own root message, or was folded into an incident that has (a storm fold, a chain)."""
        incident = incidents.get(incident_id)
        if incident is None or depth > 5:
            return False
        if incident.slack is not None and (incident.slack.channel, incident.slack.ts) in roots:
            return True
        return incident.folded_into is not None and alerted(incident.folded_into, depth + 1)

    problems: list[str] = []
    lost = []
    for incident_id in truth.alerts:
        if incident_id not in incidents:
            lost.append(incident_id)
            problems.append(f"lost: {incident_id} has no incident record")
        elif not alerted(incident_id):
            lost.append(incident_id)
            problems.append(f"lost: {incident_id} has no Slack root message ({incidents[incident_id].status})")
    children_missing = []
    for child_id, (parent_id, label) in truth.folded.items():
        parent = incidents.get(parent_id)
        child = incidents.get(child_id)
        in_parent = parent is not None and label in parent.children
        if not in_parent and (child is None or child.folded_into != parent_id):
            children_missing.append(child_id)
            problems.append(f"lost: {child_id} is neither folded into {parent_id} nor recorded")
    orphans = [m for key, m in roots.items() if key not in referenced]
    for message in orphans[:10]:
        ids = sorted(set(re.findall(r"\b[js]-[A-Z0-9]{13}\b", message.text + str(message.blocks))))
        problems.append(f"duplicate root message {message.ts} in {message.channel}: {message.text[:80]!r} {ids}")
    unexpected = [incident_id for incident_id in referenced.values() if incident_id not in truth.alerts]
    second_alerts: Counter[str] = Counter()
    for incident_id in unexpected:
        why = _second_alert(world, incidents[incident_id])
        second_alerts[why.split(":", 1)[0]] += 1
        if len(problems) < 40:
            problems.append(f"extra alert: {incident_id} has a root message of its own: {why}")
    misrouted = []
    for incident_id, channel in truth.alerts.items():
        incident = incidents.get(incident_id)
        if (
            incident is not None
            and incident.slack is not None
            and incident.slack.channel != names.get(channel, channel)
        ):
            misrouted.append(incident_id)
            problems.append(f"misrouted: {incident_id} posted to {incident.slack.channel}, expected {channel}")
    storm_folded = [
        i for i in truth.alerts if (inc := incidents.get(i)) is not None and inc.slack is None and inc.folded_into
    ]
    resolved = [i for i in truth.reruns if (inc := incidents.get(i)) is not None and inc.status == "RESOLVED"]
    first = {}
    for delivery in world.deliveries:
        if delivery.kind == "emr" and "stepId" in delivery.event["detail"]:
            first.setdefault(delivery.event["detail"]["stepId"], delivery.index)
    rerun_first = sum(1 for i, rerun in truth.reruns.items() if first[rerun.step_id] < first[i.split(".", 1)[1]])
    verdicts = Counter()
    for incident_id, category in truth.categories.items():
        incident = incidents.get(incident_id)
        got = incident.diagnosis.category if incident is not None and incident.diagnosis else "none"
        verdicts["match" if got == category else "mismatch"] += 1
        if got != category and verdicts["mismatch"] <= 5:
            problems.append(f"verdict (informational): {incident_id} is {got}, its fixture is {category}")
    posts = slack.calls_to("chat.postMessage")
    by_channel: dict[str, list[float]] = defaultdict(list)
    calls_by_channel: dict[str, list[Any]] = defaultdict(list)
    for call in posts:
        channel = str(call.payload.get("channel", ""))
        name = ids_to_names.get(names.get(channel, channel), channel)
        by_channel[name].append(call.at)
        calls_by_channel[name].append(call)
    close = 0
    for name, calls in calls_by_channel.items():
        ordered = sorted(calls, key=lambda c: c.at)
        for before, after in itertools.pairwise(ordered):
            if after.at - before.at < 1.0 and close < 5:
                close += 1
                problems.append(
                    f"posts {1000 * (after.at - before.at):.0f} ms apart in {name}: "
                    + " then ".join(
                        f"{'reply' if c.payload.get('thread_ts') else 'root'} (channel sent as "
                        f"{c.payload.get('channel')!r}: {str(c.payload.get('text', ''))[:50]!r})"
                        for c in (before, after)
                    )
                )
    peaks = {channel: peak_posts(times) for channel, times in by_channel.items()}
    peak_channel = max(peaks, key=lambda c: peaks[c], default="-")
    gaps = [b - a for times in by_channel.values() for a, b in itertools.pairwise(sorted(times))]
    root_counts = Counter(m.channel for m in roots.values())
    standalone = [i for i in incidents.values() if i.folded_into is None]
    figures = {
        "incidents_expected": len(truth.alerts),
        "incidents_recorded": len(standalone),
        "incidents_folded_records": len(incidents) - len(standalone),
        "folded_children_expected": len(truth.folded),
        "slack_root_messages": len(roots),
        "slack_root_messages_expected": len(truth.alerts),
        "slack_storm_folded_incidents": len(storm_folded),
        "slack_thread_replies": len(slack.thread_replies()),
        "slack_updates": len(slack.calls_to("chat.update")),
        "duplicate_root_messages": len(orphans),
        "extra_alerts_for_one_failure": f"{len(unexpected)}"
        + (" (" + ", ".join(f"{why} {n}" for why, n in second_alerts.most_common()) + ")" if unexpected else ""),
        "lost_incidents": len(lost) + len(children_missing),
        "misrouted_alerts": len(misrouted),
        "incidents_resolved_by_rerun": f"{len(resolved)} of {len(truth.reruns)} "
        f"({rerun_first} reruns delivered before their failure's event)",
        "verdicts_matching_fixture": f"{verdicts['match']} of {len(truth.categories)} (informational)",
        "slack_peak_posts_per_second_per_channel": f"{peaks.get(peak_channel, 0)} ({peak_channel}; "
        f"chat.postMessage roots and replies by arrival at the fake Slack, any 1-s window)",
        "slack_peak_posts_per_10_seconds_per_channel": max(
            (peak_posts(times, 10.0) for times in by_channel.values()), default=0
        ),
        "slack_posts_less_than_1s_after_the_previous_in_channel": f"{sum(g < 1.0 for g in gaps)} of {len(gaps)}"
        + (f" (shortest {min(gaps) * 1000:.0f} ms)" if gaps else ""),
        "slack_channels": f"{len(by_channel)} ("
        + ", ".join(
            f"{c}: {root_counts.get(names.get(c, c), 0)} roots, {len(t)} posts" for c, t in sorted(by_channel.items())
        )
        + ")",
    }
    # The bar: no duplicate root message, no lost incident. A second incident's alert for a failure
    # that already has one (README "Known limits": a quick rerun, a driver log racing its step's event) is
    # printed as its own figure.
    return Check(figures, problems, failed=bool(orphans or lost or children_missing))


def _second_alert(world: World, incident: Any) -> str:
    """Why an incident the ground truth does not expect was alerted, told from the deliveries' order (the
    part before ``:`` is its kind, counted in the figures)."""
    step = next(
        (
            s
            for c in world.clusters
            for s in c.steps
            if s.application_id and s.application_id == incident.yarn_application_id
        ),
        None,
    )
    if incident.kind != "application" or step is None:
        return f"other: {incident.kind} incident, state {incident.state}, folded_into={incident.folded_into}"
    first: dict[str, int] = {}
    for delivery in world.deliveries:
        detail = delivery.event["detail"]
        name = detail.get("stepId") or str(delivery.key)
        first.setdefault(name, delivery.index)
    step_at = first[step.step_id]
    driver = next(k for k in first if step.application_id in k and "_000001/stderr" in k)
    driver_at = first[driver]
    story = f"the driver log of step {step.step_id} ({step.state}; delivery #{driver_at}, its FAILED event #{step_at}"
    if step.rerun is not None and first[step.rerun.step_id] < driver_at:
        return (
            f"rerun resolved the step first: {story}, its successful rerun #{first[step.rerun.step_id]}): the step's "
            "incident was resolved before the driver log came, so no open incident claimed it"
        )
    if abs(driver_at - step_at) <= 4 * WORKERS:
        return (
            f"driver log raced the step event: {story}): the driver log was handled while the step's FAILED "
            "event created its incident, so it found neither an incident claiming it nor a failed step without one"
        )
    return f"other: {story}): neither claimed by the step's incident nor held for it"


# ---------------------------------------------------------------------------------------------------
# Baseline and the run
# ---------------------------------------------------------------------------------------------------
def moto_put_items_per_second(count: int = 2_000) -> float:
    """A bare boto3 PutItem loop (one thread) against the same embedded DynamoDB: what a round trip to
    moto costs on this machine, the unit the load's per-delivery cost is expressed in."""
    import boto3

    client = boto3.client("dynamodb", region_name=REGION)
    client.create_table(
        TableName="load-baseline",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    start = time.perf_counter()
    for n in range(count):
        client.put_item(TableName="load-baseline", Item={"pk": {"S": f"item-{n}"}, "body": {"S": "x" * 200}})
    return count / (time.perf_counter() - start)


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]


def _print_profile(profiler: cProfile.Profile, path: Path) -> None:
    stats = pstats.Stats(profiler, stream=sys.stderr)
    stats.dump_stats(str(path))
    print(f"load_profile: {path} (one worker thread); top cumulative costs:", file=sys.stderr)
    stats.sort_stats("cumulative").print_stats(r"emr_triage|handler|moto|slack_sdk|botocore|pydantic", 50)
    stats.sort_stats("tottime").print_stats(30)


def run_load(
    *,
    seed: int = SEED,
    scale: float = 1.0,
    workers: int = WORKERS,
    profile: Path | None = None,
    plain_moto: bool = False,
) -> int:
    """Generate, replay, check; print the figures. Returns the exit status (1 on a duplicate or a loss)."""
    import yaml
    from tests.fakes.slack_api import FakeSlackServer

    from emr_triage import runtime
    from emr_triage.local.replay import LocalStack, environment
    from emr_triage.local.scenario import load_scenario

    METER.reset()
    begin = time.perf_counter()
    world = generate(seed, scale)
    generated = time.perf_counter() - begin
    figures: dict[str, Any] = {
        "load_emr_events": world.emr_events,
        "load_log_events": world.log_events,
        "load_duplicate_deliveries": world.duplicates,
        "load_deliveries": len(world.deliveries),
        "load_logs_delivered_before_their_step_event": world.logs_before_step_event,
        "load_workers": workers,
        "load_generate_seconds": f"{generated:.1f}",
    }
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    shortcuts = contextlib.nullcontext(Counter[str]()) if plain_moto else moto_fast_paths()
    with (
        tempfile.TemporaryDirectory(prefix="emr-triage-load-") as tmp,
        FakeSlackServer(TOKEN) as slack,
        shortcuts as checked,
        METER.counting(),
    ):
        folder = Path(tmp)
        (folder / "scenario.yaml").write_text(yaml.safe_dump(scenario_for(world), sort_keys=False))
        slack_env = {"SLACK_DELIVERY": "env", "SLACK_BOT_TOKEN": TOKEN, "SLACK_API_URL": slack.url}
        extra = {**slack_env, "POWERTOOLS_TRACE_DISABLED": "true"}
        setup = time.perf_counter()
        with LocalStack(ROOT, scenario=load_scenario(folder), folder=folder, extra_environment=extra) as stack:
            variables: dict[str, str] = {}
            for spec in stack.specs:
                clash = {k for k, v in spec.environment.items() if variables.get(k, v) != v}
                if clash:
                    raise SystemExit(f"{spec.logical_id} differs from the other functions in {clash}")
                variables.update(spec.environment)
            # The embedded stack turns Slack pacing off (a replay compresses time); the load run keeps the
            # template's pace: whether a storm keeps to it is one of the things measured here.
            pace = variables.get("SLACK_POST_INTERVAL_SECONDS", "1")
            figures["load_slack_post_interval_seconds"] = f"{pace} (template.yaml)"
            with environment({**variables, **stack.extra_environment, "SLACK_POST_INTERVAL_SECONDS": pace}):
                runtime.reset_settings()
                harness = Harness(stack, world, workers)
                runtime.get_dependencies()  # built once, as a warm Lambda has it
                figures["load_setup_seconds"] = f"{time.perf_counter() - setup:.1f}"
                # cProfile follows one thread only (Python 3.12+ allows one profiler per process): a
                # profiled run delivers from this thread.
                profiler = cProfile.Profile() if profile is not None else None
                with _quiet_stdout():
                    if profiler is not None:
                        profiler.enable()
                    start = time.perf_counter()
                    attempts = harness.run_all(world.deliveries, harness.attempt)
                    storm = time.perf_counter() - start
                    failed = [a for a in attempts if a.error]
                    invocations_failed = len(failed)
                    retry_start = time.perf_counter()
                    for _ in range(LAMBDA_RETRIES):
                        if not failed:
                            break
                        again = harness.run_all([a.delivery for a in failed], harness.attempt)
                        invocations_failed += sum(1 for a in again if a.error)
                        failed = [a for a in again if a.error]
                    retries = time.perf_counter() - retry_start
                    follow_start = time.perf_counter()
                    follow_ups, follow_failed, follow_dead, follow_actions = harness.drain_follow_ups()
                    follow = time.perf_counter() - follow_start
                    if profiler is not None:
                        profiler.disable()
                    baseline = moto_put_items_per_second()
                result = check(world, stack, slack)
    first_errors = Counter(str(a.error).split(":", 1)[0] for a in attempts if a.error)
    actions = Counter(f"{a.delivery.kind}:{a.action}" for a in attempts if a.action)
    rate = len(world.deliveries) / storm
    figures.update(
        {
            "load_storm_seconds": f"{storm:.1f}",
            "load_retry_seconds": f"{retries:.1f}",
            "load_follow_ups": follow_ups,
            "load_follow_up_seconds": f"{follow:.1f}",
            "load_follow_up_failures": follow_failed,
            "load_follow_up_dead_lettered": follow_dead,
            "load_moto": "as shipped"
            if plain_moto
            else "DynamoDB responses as plain JSON, GSI queries without sorting the table first (same results "
            f"as moto's own path on the {sum(checked.values())} calls compared)",
            "load_failed_invocations": invocations_failed,
            "load_dead_lettered": len(failed),
            "load_events_per_second": f"{rate:.1f} (deliveries during the storm / its wall time, {workers} threads)",
            "load_invocation_ms": "; ".join(
                f"{kind} p50 {statistics.median(times) * 1000:.0f} p95 {_p95(times) * 1000:.0f}"
                for kind in ("emr", "log")
                if (times := [a.seconds for a in attempts if a.delivery.kind == kind])
            )
            + " (wall time in a worker, waits for the GIL and Slack's pace included)",
            "baseline_moto_put_item_per_second": f"{baseline:.0f} (bare boto3 PutItem loop, one thread)",
            "load_vs_moto_put_item_ratio": f"{rate / baseline:.3f} (each delivery costs as much as "
            f"{baseline / rate:.0f} bare PutItem round trips)",
            **result.figures,
            "load_total_seconds": f"{time.perf_counter() - begin:.1f}",
        }
    )
    figures.update(METER.figures())
    for name, value in figures.items():
        print(f"{name}: {value}", flush=True)
    print("load_outcomes: " + ", ".join(f"{k} {v}" for k, v in sorted(actions.items())), file=sys.stderr)
    print(
        "load_follow_up_outcomes: " + ", ".join(f"{k} {v}" for k, v in sorted(follow_actions.items())), file=sys.stderr
    )
    if first_errors:
        print("load_first_attempt_errors: " + ", ".join(f"{k} {v}" for k, v in first_errors.items()), file=sys.stderr)
        for attempt in [a for a in attempts if a.error][:5]:
            print(f"  {attempt.delivery.kind} #{attempt.delivery.index}: {attempt.error[:300]}", file=sys.stderr)
    for problem in result.problems[:30]:
        print(f"load: {problem}", file=sys.stderr)
    if profiler is not None and profile is not None:
        _print_profile(profiler, profile)
    if result.failed:
        print(
            f"FAIL: load run: {result.figures['duplicate_root_messages']} duplicate root message(s), "
            f"{result.figures['lost_incidents']} lost incident(s)",
            flush=True,
        )
        return 1
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the 1,000 + 20,000 events")
    parser.add_argument("--workers", type=int, default=WORKERS)
    parser.add_argument("--profile", type=Path, help="cProfile the run (one worker thread); write the stats here")
    parser.add_argument(
        "--plain-moto", action="store_true", help="moto as shipped (its slow DynamoDB serializer and query sort)"
    )
    args = parser.parse_args()
    workers = 1 if args.profile else args.workers
    raise SystemExit(
        run_load(
            seed=args.seed,
            scale=args.scale,
            workers=workers,
            profile=args.profile,
            plain_moto=args.plain_moto,
        )
    )


if __name__ == "__main__":
    main()

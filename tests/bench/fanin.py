"""`make bench` fan-in run (``--only fanin``): one failed application's container logs landing together.

When a YARN application ends, EMR's log pusher uploads all of its containers' logs within a minute or so:
hundreds of S3 Object Created events for one incident. Here one failed step (its logs, its driver's log
and ``LOGS`` executor logs of the load run's generator, gzip, as EMR writes them) is replayed on the
embedded stack: its FAILED event first, then every container log's event at once from ``WORKERS``
threads through LogArrivalFunction's handler (as Lambda would run that many concurrent invocations). An
invocation that raises is retried after the others, twice, as Lambda does for asynchronous invocations.

Figures (``name: value``):

- ``fanin_logs_analysed_once``: logs whose object was analysed exactly once (of ``fanin_logs``);
- ``fanin_failed_invocations``: invocations that raised (each is a retry, and after two a lost log);
- ``fanin_conditional_retries_per_log``: DynamoDB conditional writes refused (a concurrent writer won:
  the incident is read again and the write retried) per log event;
- ``fanin_seconds``: wall time of the storm (threads share one interpreter: a speed of this machine,
  compared only with ``fanin_baseline_analyse_seconds``, the same logs analysed in one thread, no AWS).

Run alone: ``python tests/bench/fanin.py [--logs 1000] [--workers 100]``.
"""

from __future__ import annotations

import argparse
import contextlib
import random
import sys
import tempfile
import threading
import time
import warnings
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

if str(Path(__file__).parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).parent))  # imported as tests.bench.fanin by the tests
import load
from load import ACCOUNT, LAMBDA_RETRIES, ROOT, TOKEN, Delivery, Harness, LogObject, Truth, World

LOGS = 1000
WORKERS = 100
SEED = 20261207
# A share of the executors' logs carry a failure's symptoms of their own (as when an application fails
# under memory pressure: tasks lost, shuffle fetches failing, executors told to shut down).
SYMPTOM_SHARE = 0.3
_SYMPTOMS = (
    (
        "{t} ERROR Executor: Exception in task {a}.0 in stage 3.0 (TID {b})",
        "java.lang.OutOfMemoryError: Java heap space",
        "\tat java.util.Arrays.copyOf(Arrays.java:3236)",
    ),
    (
        "{t} WARN TaskSetManager: Lost task {a}.0 in stage 4.0 (TID {b}) (ip-10-0-1-9.ec2.internal executor 7): "
        "FetchFailed(BlockManagerId(7, ip-10-0-1-9.ec2.internal, 7337, None), shuffleId=1, mapIndex={a}, "
        "mapId={b}, reduceId=3, message=",
        "org.apache.spark.shuffle.FetchFailedException: Failed to connect to ip-10-0-1-9.ec2.internal/10.0.1.9:7337",
    ),
    ("{t} ERROR CoarseGrainedExecutorBackend: RECEIVED SIGNAL TERM",),
)


def fanin_world(logs: int = LOGS, seed: int = SEED) -> World:
    """One cluster, one failed step (a real failure log in its driver's log), and ``logs`` container logs
    of its application: the driver's stderr and executors' stderr (the rest)."""
    rng = random.Random(seed)
    clusters, _ = load._plan_clusters(rng, 0.05)
    step = next(s for c in clusters for s in c.steps if s.state == "FAILED")
    cluster = step.cluster
    cluster.steps, cluster.dies, cluster.dead = [step], False, False
    step.application_id = f"application_{cluster.epoch_ms}_0001"
    objects: dict[str, LogObject] = {}
    step_prefix = f"{load.LOG_PREFIX}{cluster.cluster_id}/steps/{step.step_id}/"
    for name, lines in load._step_logs(rng, step).items():
        objects[step_prefix + name] = LogObject(step_prefix + name, load._gz(lines), step.ended, step)
    app_prefix = f"{load.LOG_PREFIX}{cluster.cluster_id}/containers/{step.application_id}/"
    driver = app_prefix + f"{load._container(step, 1)}/stderr.gz"
    containers = {driver: load._gz(load._driver_log(rng, step, logs - 1))}
    for number in range(2, logs + 1):
        lines = load._noise(rng, load._EXECUTOR_NOISE, rng.randrange(20, 140), step.started or step.ended)
        if rng.random() < SYMPTOM_SHARE:
            at = load._spark_time(step.ended)
            symptom = rng.choice(_SYMPTOMS)
            lines += [line.format(t=at, a=rng.randrange(200), b=rng.randrange(9000)) for line in symptom]
        containers[app_prefix + f"{load._container(step, number)}/stderr.gz"] = load._gz(lines)
    deliveries = [Delivery(0, load._step_event(rng, step), "emr")]
    for key, body in containers.items():
        obj = LogObject(key, body, step.ended + timedelta(seconds=rng.randrange(1, 60)), step)
        objects[key] = obj
        deliveries.append(Delivery(len(deliveries), load._object_event(rng, obj), "log", key=key))
    # The step's own logs are in S3 when its event comes (its handler reads them); the containers' land
    # when their events are delivered.
    return World([cluster], objects, deliveries, Truth(), 1, len(containers), 0, 0)


@contextlib.contextmanager
def counting_refusals() -> Iterator[Counter[str]]:
    """DynamoDB conditional writes refused (ConditionalCheckFailedException), by operation."""
    from botocore.client import BaseClient
    from botocore.exceptions import ClientError

    refused: Counter[str] = Counter()
    lock = threading.Lock()
    original = BaseClient._make_api_call

    def counted(client: Any, operation: str, params: Any) -> Any:
        try:
            return original(client, operation, params)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                with lock:
                    refused[operation] += 1
            raise

    BaseClient._make_api_call = counted  # type: ignore[method-assign]
    try:
        yield refused
    finally:
        BaseClient._make_api_call = original  # type: ignore[method-assign]


@contextlib.contextmanager
def counting_analyses() -> Iterator[Counter[str]]:
    """How many times each log object was analysed by the functions (``log_reads.analyse_stream``)."""
    from emr_triage.incidents import log_reads

    analysed: Counter[str] = Counter()
    lock = threading.Lock()
    original = log_reads.analyse_stream

    def counted(*args: Any, **kwargs: Any) -> Any:
        with lock:
            analysed[str(kwargs.get("source"))] += 1
        return original(*args, **kwargs)

    log_reads.analyse_stream = counted  # type: ignore[assignment]
    try:
        yield analysed
    finally:
        log_reads.analyse_stream = original  # type: ignore[assignment]


def _baseline_seconds(world: World) -> float:
    """The container logs analysed one after the other in this thread, without AWS: the floor."""
    from emr_triage.analysis.catalogue import load_catalogue
    from emr_triage.analysis.engine import analyse_stream

    catalogue = load_catalogue()
    start = time.perf_counter()
    for delivery in world.deliveries[1:]:
        body = world.objects[str(delivery.key)].body
        analyse_stream(iter([body]), catalogue=catalogue, source=str(delivery.key))
    return time.perf_counter() - start


def run_fanin(logs: int = LOGS, workers: int = WORKERS) -> dict[str, str]:
    import yaml
    from tests.fakes.slack_api import FakeSlackServer

    from emr_triage import runtime
    from emr_triage.incidents import log_reads
    from emr_triage.incidents.service import step_incident_id
    from emr_triage.local.replay import LocalStack, environment
    from emr_triage.local.scenario import load_scenario

    world = fanin_world(logs)
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    with (
        tempfile.TemporaryDirectory(prefix="emr-triage-fanin-") as tmp,
        FakeSlackServer(TOKEN) as slack,
        load.moto_fast_paths(),
    ):
        folder = Path(tmp)
        (folder / "scenario.yaml").write_text(yaml.safe_dump(load.scenario_for(world), sort_keys=False))
        extra = {"SLACK_DELIVERY": "env", "SLACK_BOT_TOKEN": TOKEN, "SLACK_API_URL": slack.url}
        extra["POWERTOOLS_TRACE_DISABLED"] = "true"
        with LocalStack(ROOT, scenario=load_scenario(folder), folder=folder, extra_environment=extra) as stack:
            variables: dict[str, str] = {}
            for spec in stack.specs:
                variables.update(spec.environment)
            with environment({**variables, **stack.extra_environment}):
                runtime.reset_settings()
                harness = Harness(stack, world, workers)
                runtime.get_dependencies()
                from moto.s3.models import s3_backends

                for obj in world.objects.values():
                    if "/steps/" in obj.key:
                        s3_backends[ACCOUNT]["aws"].put_object(load.LOG_BUCKET, obj.key, obj.body)
                with load._quiet_stdout(), counting_refusals() as refused, counting_analyses() as analysed:
                    opened = harness.attempt(world.deliveries[0])
                    if opened.error or opened.action != "incident_opened":
                        raise SystemExit(f"fan-in: the step's FAILED event did not open its incident: {opened}")
                    refused.clear()
                    start = time.perf_counter()
                    attempts = harness.run_all(world.deliveries[1:], harness.attempt)
                    failed_invocations = sum(1 for a in attempts if a.error)
                    pending = [a.delivery for a in attempts if a.error]
                    for _ in range(LAMBDA_RETRIES):
                        if not pending:
                            break
                        again = harness.run_all(pending, harness.attempt)
                        failed_invocations += sum(1 for a in again if a.error)
                        pending = [a.delivery for a in again if a.error]
                    storm = time.perf_counter() - start
                    during_storm = Counter(analysed)
                    checks, checks_failed, _, _ = harness.drain_follow_ups()
                incident_id = step_incident_id(world.clusters[0].cluster_id, world.clusters[0].steps[0].step_id)
                deps = runtime.get_dependencies()
                incident = deps.repository.get(incident_id)
                assert incident is not None and incident.diagnosis is not None
                recorded = deps.repository.recorded_logs(incident_id)
                unmerged = len(log_reads.recorded_results(incident, deps)[0])
    keys = [str(d.key) for d in world.deliveries[1:]]
    once = sum(1 for key in keys if during_storm[f"s3://{load.LOG_BUCKET}/{key}"] == 1)
    again = sum(
        analysed[f"s3://{load.LOG_BUCKET}/{key}"] - during_storm[f"s3://{load.LOG_BUCKET}/{key}"] for key in keys
    )
    actions = Counter(str(a.action) for a in attempts)
    errors = Counter(str(a.error).split(":", 1)[0] for a in attempts if a.error)
    baseline = _baseline_seconds(world)
    figures = {
        "fanin_logs": f"{len(keys)} (one failed application's container logs, {workers} concurrent invocations)",
        "fanin_logs_analysed_once": f"{once} of {len(keys)}",
        "fanin_failed_invocations": str(failed_invocations),
        "fanin_lost_logs": f"{len(pending)} (failed on every attempt: dead-lettered)",
        "fanin_conditional_retries_per_log": f"{sum(refused.values()) / len(keys):.2f} ({dict(refused)})",
        "fanin_seconds": f"{storm:.1f}",
        "fanin_verdict": f"{incident.diagnosis.category} ({incident.diagnosis.title})",
        "fanin_logs_kept_for_the_check": f"{len(recorded)} (logs with findings that did not change the verdict)",
        "fanin_logs_read_again_by_the_checks": f"{again} (a check sweeps the driver's logs it has not merged)",
        "fanin_kept_logs_not_merged_after_the_checks": f"{unmerged} ({checks} log checks, {checks_failed} failed)",
        "fanin_baseline_analyse_seconds": f"{baseline:.1f} (the same logs analysed in one thread, no AWS)",
        "fanin_vs_baseline_ratio": f"{storm / baseline:.1f}",
    }
    print("fanin_outcomes: " + ", ".join(f"{k} {v}" for k, v in sorted(actions.items())), file=sys.stderr)
    if errors:
        print("fanin_first_attempt_errors: " + ", ".join(f"{k} {v}" for k, v in errors.items()), file=sys.stderr)
    return figures


def bench_fanin() -> None:
    for name, value in run_fanin().items():
        print(f"{name}: {value}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--logs", type=int, default=LOGS)
    parser.add_argument("--workers", type=int, default=WORKERS)
    args = parser.parse_args()
    for name, value in run_fanin(args.logs, args.workers).items():
        print(f"{name}: {value}", flush=True)


if __name__ == "__main__":
    main()

"""EMR on EKS job runs: their events parse from either state-change name (ids from the detail, the ARN or
the envelope's resources), a failure opens its incident from DescribeJobRun, the pods' logs are found in
EMR on EKS's layout, a new driver attempt joins the run's timeline, and a completed run resolves it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from tests.fakes.memory import make_dependencies

from emr_triage.alerts.routing import Route, destination
from emr_triage.exceptions import InvalidEventError
from emr_triage.incidents.emr_events import handle_emr_event
from emr_triage.incidents.log_reads import sweep_logs
from emr_triage.logs.locations import identify_log_object, log_weight
from emr_triage.models.emr import EksJobRunInfo
from emr_triage.models.events import EksJobRunEvent, parse_emr_event

VC, RUN = "8r1dk2mvz3c0kq5xw7hn4tpl6", "0000000364ptbk3lsa1"
ARN = f"arn:aws:emr-containers:us-east-1:123456789012:/virtualclusters/{VC}/jobruns/{RUN}"
AT = datetime(2026, 11, 20, 4, 31, 7, tzinfo=UTC)
PODS = f"emr/{VC}/jobs/{RUN}/containers/"
DRIVER = f"{PODS}spark-{RUN}/spark-{RUN}-driver/stderr.gz"
SECRET = "wJalrXUtnFEMIK7MDENGbPxRfiCY"  # planted in the submit parameters


def _event(detail: dict[str, Any], detail_type: str = "EMR Job Run State Change", **envelope: Any) -> dict[str, Any]:
    return {
        "version": "0",
        "id": envelope.get("id", f"e-{detail_type[:8]}-{detail.get('state', 'attempt')}"),
        "detail-type": detail_type,
        "source": "aws.emr-containers",
        "account": "123456789012",
        "time": envelope.get("time", AT.strftime("%Y-%m-%dT%H:%M:%SZ")),
        "region": "us-east-1",
        "resources": envelope.get("resources", []),
        "detail": detail,
    }


def _failed(state: str = "FAILED", detail_type: str = "EMR Job Run State Change", **extra: Any) -> dict[str, Any]:
    return _event(
        {"id": RUN, "virtualClusterId": VC, "state": state, "name": "feature-build-2026-11-20", **extra}, detail_type
    )


def _deps(run: EksJobRunInfo | None = None):  # type: ignore[no-untyped-def]
    deps, repo, emr, logs, notifier = make_dependencies(now=AT + timedelta(seconds=5))
    emr.eks_job_runs[RUN] = run or EksJobRunInfo(
        virtual_cluster_id=VC,
        job_run_id=RUN,
        name="feature-build-2026-11-20",
        virtual_cluster_name="ml-features",
        eks_namespace="analytics-prod/spark-ml",
        state="FAILED",
        failure_reason="USER_ERROR",
        state_details="JobRun failed. Main Spark container terminated with errors.",
        release_label="emr-7.5.0-latest",
        log_uri="s3://logs-bucket/emr/",
        entry_point="s3://acme-ml-jobs/features/feature_build.py",
        submit_parameters=f"--conf spark.executor.memory=2g --conf spark.hadoop.fs.s3a.secret.key={SECRET}",
        spark_defaults={"spark.executor.pyspark.memory": "400m"},
        tags={"team": "ml-platform"},
        attempts=3,
        max_attempts=3,
    )
    return deps, repo, emr, logs, notifier


@pytest.mark.parametrize("detail_type", ["EMR Job Run State Change", "EmrContainers Job Run State Change"])
def test_both_state_change_names_parse_into_the_job_run_event(detail_type: str) -> None:
    event = parse_emr_event(_failed(detail_type=detail_type))
    assert isinstance(event, EksJobRunEvent)
    assert event.ids == (VC, RUN) and event.detail.state == "FAILED" and not event.is_driver_attempt


@pytest.mark.parametrize(
    ("detail", "resources"),
    [({"arn": ARN, "state": "FAILED"}, []), ({"state": "FAILED"}, [ARN])],
    ids=["from-the-detail-arn", "from-the-envelope-resources"],
)
def test_the_job_run_is_named_by_its_arn_when_the_ids_are_absent(detail: dict[str, Any], resources: list[str]) -> None:
    event = parse_emr_event(_event(detail, resources=resources))
    assert isinstance(event, EksJobRunEvent) and event.ids == (VC, RUN)


def test_an_event_that_names_no_job_run_or_no_state_is_rejected_saying_what_is_missing() -> None:
    with pytest.raises(InvalidEventError, match=r"the job run is not named.*virtualClusterId"):
        parse_emr_event(_event({"state": "FAILED", "id": RUN}))
    with pytest.raises(InvalidEventError, match=r"detail\.state: missing"):
        parse_emr_event(_event({"id": RUN, "virtualClusterId": VC}))
    with pytest.raises(InvalidEventError, match="virtualClusterId"):
        parse_emr_event(_event({"id": RUN, "virtualClusterId": "Not An Id!", "state": "FAILED"}))


def test_a_failed_job_run_opens_its_incident_from_describe_job_run_and_reads_its_pods_logs() -> None:
    # Given a failed job run whose driver, job runner and executor pods' logs are in S3
    deps, repo, emr, logs, notifier = _deps()
    logs.put(
        DRIVER, "26/11/20 04:30:59 ERROR Executor: Exception in task 0.0\njava.lang.OutOfMemoryError: Java heap space\n"
    )
    logs.put(f"{PODS}spark-{RUN}/spark-{RUN}-driver/stdout.gz", "scoring 10 partitions\n")
    logs.put(f"{PODS}{RUN}-p52fj/stderr.gz", 'Exception in thread "main" org.apache.spark.SparkException: exit 1\n')
    logs.put(f"{PODS}spark-{RUN}/featurebuild-5f3c9a1e2b7d4c60-exec-1/stderr.gz", "INFO Executor: started\n")
    logs.put(f"{PODS}spark-{RUN}/featurebuild-5f3c9a1e2b7d4c60-exec-1/stdout.gz", "noise\n")
    # When its FAILED event arrives
    outcome = handle_emr_event(parse_emr_event(_failed()), deps)
    # Then one incident, named by the virtual cluster and job run, says what EMR on EKS said, and is diagnosed
    assert outcome.action == "incident_opened" and outcome.incident_id == f"{VC}.{RUN}"
    incident = repo.get(f"{VC}.{RUN}")
    assert incident is not None and incident.kind == "eks_job_run"
    assert (incident.virtual_cluster_name, incident.eks_namespace) == ("ml-features", "analytics-prod/spark-ml")
    assert incident.emr_reason == (
        "USER_ERROR — JobRun failed. Main Spark container terminated with errors. (after 3 driver attempts)"
    )
    assert incident.log_location == f"s3://logs-bucket/{PODS}"
    assert incident.diagnosis is not None and incident.diagnosis.category == "oom_heap"
    read = sorted(r.source.rsplit("/", 2)[-2] + "/" + r.source.rsplit("/", 1)[-1] for r in incident.logs_analysed)
    assert read == [
        f"{RUN}-p52fj/stderr.gz",
        "featurebuild-5f3c9a1e2b7d4c60-exec-1/stderr.gz",
        f"spark-{RUN}-driver/stderr.gz",
        f"spark-{RUN}-driver/stdout.gz",
    ]
    assert "EMR on EKS job run failed: feature-build-2026-11-20" in str(notifier.posts[0])
    # How it was submitted is shown, redacted: its settings are what an OOM is fixed with
    submitted = str(notifier.posts[0])
    assert "--conf spark.executor.memory=2g" in submitted and "--conf spark.executor.pyspark.memory=400m" in submitted
    assert SECRET not in submitted and "feature_build.py" in submitted
    # And the same failure under the other name costs no EMR call and posts nothing new
    emr.calls.clear()
    again = handle_emr_event(parse_emr_event(_failed(detail_type="EmrContainers Job Run State Change")), deps)
    assert again.action == "duplicate" and emr.calls == [] and len(notifier.posts) == 1


def test_a_cancelled_run_is_low_severity_and_a_running_one_is_ignored() -> None:
    deps, repo, _, _, _ = _deps()
    assert handle_emr_event(parse_emr_event(_failed("RUNNING")), deps).action == "ignored"
    handle_emr_event(parse_emr_event(_failed("CANCELLED")), deps)
    incident = repo.get(f"{VC}.{RUN}")
    assert incident is not None and (incident.state, incident.severity) == ("CANCELLED", "low")


def test_a_run_without_s3_logging_says_there_are_no_logs() -> None:
    deps, repo, _, _, _ = _deps(EksJobRunInfo(virtual_cluster_id=VC, job_run_id=RUN, name="adhoc", state="FAILED"))
    handle_emr_event(parse_emr_event(_failed()), deps)
    incident = repo.get(f"{VC}.{RUN}")
    assert incident is not None and incident.log_location is None
    assert any("s3MonitoringConfiguration.logUri" in e for e in incident.lookup_errors)


def _attempt(count: int, event_id: str) -> dict[str, Any]:
    detail = {
        "id": RUN,
        "virtualClusterId": VC,
        "newDriverPodName": f"spark-{RUN}-driver-x7k2q",
        "newDriverCreatedAt": "2026-11-20T04:20:00Z",
        "previousDriverFailureMessage": "OOMKilled password=hunter2hunter2",
        "currentAttemptCount": count,
    }
    return _event(detail, "EMR Job Run New Driver Attempt", id=event_id)


def test_a_new_driver_attempt_alerts_nothing_and_joins_the_runs_incident_once() -> None:
    deps, repo, _, _, notifier = _deps()
    # Before the run failed: no incident, no alert
    first = handle_emr_event(parse_emr_event(_attempt(2, "attempt-2")), deps)
    assert first.action == "ignored" and "a retry may succeed" in first.detail and notifier.posts == []
    # After it failed: on its timeline, redacted, once however often it is delivered
    handle_emr_event(parse_emr_event(_failed()), deps)
    folded = handle_emr_event(parse_emr_event(_attempt(3, "attempt-3")), deps)
    again = handle_emr_event(parse_emr_event(_attempt(3, "attempt-3")), deps)
    assert (folded.action, again.action) == ("folded", "duplicate")
    incident = repo.get(f"{VC}.{RUN}")
    assert incident is not None
    entries = [e.what for e in incident.timeline if "driver attempt" in e.what]
    assert len(entries) == 1 and "driver attempt 3 started" in entries[0] and "hunter2" not in entries[0]
    assert len(notifier.posts) == 1


def test_a_completed_rerun_resolves_the_failure_and_a_nameless_event_asks_emr_for_the_name() -> None:
    deps, repo, emr, _, _ = _deps()
    handle_emr_event(parse_emr_event(_failed()), deps)
    rerun = "0000000365ab2ccvf9o"
    emr.eks_job_runs[rerun] = EksJobRunInfo(virtual_cluster_id=VC, job_run_id=rerun, name="feature-build-2026-11-21")
    emr.calls.clear()
    later = (AT + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    outcome = handle_emr_event(
        parse_emr_event(_event({"id": rerun, "virtualClusterId": VC, "state": "COMPLETED"}, time=later)), deps
    )
    assert outcome.action == "incident_resolved" and emr.calls == ["DescribeJobRun"]
    incident = repo.get(f"{VC}.{RUN}")
    assert incident is not None and incident.status == "RESOLVED"


@pytest.mark.parametrize(
    ("key", "pod", "weight"),
    [
        (DRIVER, f"spark-{RUN}-driver", 3),
        (f"{PODS}spark-{RUN}/spark-{RUN}-driver-x7k2q/stderr.gz", f"spark-{RUN}-driver-x7k2q", 3),
        (f"{PODS}spark-{RUN}/spark-{RUN}-driver/stdout.gz", f"spark-{RUN}-driver", 2),
        (f"{PODS}{RUN}-p52fj/stderr.gz", f"{RUN}-p52fj", 2),
        (
            f"{PODS}spark-{RUN}/featurebuild-5f3c9a1e2b7d4c60-exec-1/stderr.gz",
            "featurebuild-5f3c9a1e2b7d4c60-exec-1",
            1,
        ),
    ],
)
def test_pod_logs_are_told_apart_by_their_key_and_the_driver_weighs_most(key: str, pod: str, weight: int) -> None:
    found = identify_log_object("logs-bucket", key, "emr/")
    assert found is not None and found.kind == "eks"
    assert (found.cluster_id, found.job_run_id, found.pod) == (VC, RUN, pod)
    assert found.weight == weight == log_weight(key)


def test_keys_outside_the_layout_are_not_eks_logs() -> None:
    # A Spark application folder not named after the job run, and EMR Serverless's layout.
    assert identify_log_object("b", f"{PODS}spark-0000000000000000000/spark-x-driver/stderr.gz") is None
    assert (
        identify_log_object("b", "s/applications/00f2a7bq4c8kd001/jobs/00f2a7bq5h1se001/SPARK_DRIVER/stderr.gz") is None
    )
    # A downloaded driver pod folder still weighs as the driver's.
    assert log_weight(f"/tmp/download/spark-{RUN}-driver/stderr.gz") == 3


def test_the_sweep_reads_the_driver_first() -> None:
    deps, repo, _, logs, _ = _deps()
    logs.put(f"{PODS}spark-{RUN}/featurebuild-5f3c9a1e2b7d4c60-exec-1/stderr.gz", "INFO Executor: started\n")
    logs.put(DRIVER, "INFO SparkContext: Running Spark version 3.5.2\n")
    handle_emr_event(parse_emr_event(_failed()), deps)
    incident = repo.get(f"{VC}.{RUN}")
    assert incident is not None
    assert incident.logs_analysed[0].source.endswith(f"spark-{RUN}-driver/stderr.gz")
    assert sweep_logs(incident, deps) == []  # both read: nothing left to sweep


def test_routes_match_the_virtual_clusters_name() -> None:
    deps, repo, _, _, _ = _deps()
    handle_emr_event(parse_emr_event(_failed()), deps)
    incident = repo.get(f"{VC}.{RUN}")
    assert incident is not None
    routes = (Route(match={"virtual_cluster_name": "^ml-"}, channel="#ml-alerts"),)
    assert destination(incident, "#alerts", routes).channel == "#ml-alerts"


def test_a_slow_eks_run_is_alerted_once_and_its_failure_edits_that_alert() -> None:
    # Given five earlier runs of the job, 30 minutes each (seen starting and completing)
    from tests.fakes.memory import FakeFollowUps, MemoryRunStore

    from emr_triage.incidents.log_checks import handle_follow_up

    deps, _, emr, logs, notifier = _deps()
    deps.runs, deps.follow_ups = MemoryRunStore(), FakeFollowUps()
    start = AT - timedelta(days=6)
    for day in range(5):
        earlier = f"00000003{day:02d}earlierrun"[:19]
        emr.eks_job_runs[earlier] = EksJobRunInfo(
            virtual_cluster_id=VC, job_run_id=earlier, name=f"feature-build-{day}"
        )
        began = start + timedelta(days=day)
        running = _event({"id": earlier, "virtualClusterId": VC, "state": "RUNNING", "name": "feature-build"})
        running["time"] = began.strftime("%Y-%m-%dT%H:%M:%SZ")
        running["id"] = f"run-{day}"
        assert handle_emr_event(parse_emr_event(running), deps).action == "run_started"
        done = dict(running, id=f"done-{day}", time=(began + timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%SZ"))
        done["detail"] = {**running["detail"], "state": "COMPLETED"}
        handle_emr_event(parse_emr_event(done), deps)
    deps.follow_ups.scheduled.clear()
    # When today's run starts, is still RUNNING at its slow limit (45 min), then fails
    emr.eks_job_runs[RUN] = EksJobRunInfo(
        virtual_cluster_id=VC, job_run_id=RUN, name="feature-build", state="RUNNING", log_uri="s3://logs-bucket/emr/"
    )
    logs.put(DRIVER, "26/11/20 03:10:00 INFO DAGScheduler: Submitting 200 missing tasks from ResultStage 3\n")
    began = AT - timedelta(hours=1)
    running = _event({"id": RUN, "virtualClusterId": VC, "state": "RUNNING", "name": "feature-build"})
    running["time"] = began.strftime("%Y-%m-%dT%H:%M:%SZ")
    started = handle_emr_event(parse_emr_event(running), deps)
    assert started.action == "run_started" and "after 45 min" in started.detail
    ((check, _),) = deps.follow_ups.scheduled
    deps.clock.now = began + timedelta(minutes=46)
    assert handle_follow_up(check, deps).action == "run_slow"
    slow = json.dumps(notifier.posts[0][1].blocks)
    assert "Slow: EMR on EKS job run feature-build" in slow and "The driver's logs in S3" in slow
    emr.eks_job_runs[RUN] = emr.eks_job_runs[RUN].model_copy(update={"state": "FAILED"})
    failed = handle_emr_event(parse_emr_event(_failed(name="feature-build")), deps)
    # Then one message: the slow alert, edited into the failure's
    assert failed.action == "incident_opened" and len(notifier.posts) == 1
    assert "EMR on EKS job run failed" in json.dumps(notifier.updates[-1][1].blocks)
    assert "alerted as slow at" in json.dumps(notifier.updates[-1][1].blocks)

"""Applications outside the Steps API: a failed YARN application is detected from its driver's log alone."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from tests.fakes.memory import FakeFollowUps, make_dependencies

from emr_triage.analysis.catalogue import load_catalogue
from emr_triage.analysis.findings import analyse_lines
from emr_triage.exceptions import TransientError
from emr_triage.incidents.history import job_key
from emr_triage.incidents.service import (
    application_incident_id,
    handle_emr_event,
    handle_follow_up,
    handle_log_event,
    step_incident_id,
)
from emr_triage.models.emr import ClusterInfo, FailureDetails, StepInfo
from emr_triage.models.events import parse_event

EVENTS = Path(__file__).resolve().parents[2] / "events"
CLUSTER, STEP = "j-123456789ABCD", "s-ZYXWVUTSRQPON"
APP = "application_1763480000001_0012"
INCIDENT = application_incident_id(CLUSTER, APP)
DRIVER_KEY = f"emr/{CLUSTER}/containers/{APP}/container_e02_1763480000001_0012_01_000001/stderr.gz"
EXECUTOR_KEY = f"emr/{CLUSTER}/containers/{APP}/container_e02_1763480000001_0012_01_000003/stderr.gz"
FAILED_DRIVER = f"""\
26/11/20 03:00:01 INFO SparkContext: Running Spark version 3.5.2-amzn-1
26/11/20 03:00:01 INFO SparkContext: Submitted application: churn-model-2026-11-20
26/11/20 03:00:02 INFO ApplicationMaster: Registered with ResourceManager as {APP}
26/11/20 03:04:11 ERROR ApplicationMaster: User class threw exception: org.apache.spark.sql.AnalysisException: \
[PATH_NOT_FOUND] Path does not exist: s3://acme-features/churn/2026-11-19.
org.apache.spark.sql.AnalysisException: [PATH_NOT_FOUND] Path does not exist: s3://acme-features/churn/2026-11-19.
\tat org.apache.spark.sql.errors.QueryCompilationErrors$.dataPathNotExistError(QueryCompilationErrors.scala:1419)
26/11/20 03:04:11 INFO ApplicationMaster: Final app status: FAILED, exitCode: 15, (reason: User class threw \
exception: org.apache.spark.sql.AnalysisException: [PATH_NOT_FOUND] Path does not exist: s3://acme-features/churn/2026-11-19.)
26/11/20 03:04:12 INFO ApplicationMaster: Unregistering ApplicationMaster with FAILED (diag message: User class threw \
exception: org.apache.spark.sql.AnalysisException)
26/11/20 03:04:12 INFO ShutdownHookManager: Shutdown hook called
"""
# The same failure on a first attempt of two (spark.yarn.maxAppAttempts): no unregistering, YARN retries.
FIRST_ATTEMPT = FAILED_DRIVER.replace(
    FAILED_DRIVER[FAILED_DRIVER.index("26/11/20 03:04:12 INFO ApplicationMaster") :], ""
)
SUCCEEDED_DRIVER = f"""\
26/11/21 03:00:01 INFO SparkContext: Submitted application: churn-model-2026-11-21
26/11/21 03:00:02 INFO ApplicationMaster: Registered with ResourceManager as {APP.replace("0012", "0013")}
26/11/21 03:09:40 INFO ApplicationMaster: Final app status: SUCCEEDED, exitCode: 0
"""
# A notebook session: a cell failed (the error is caught and shown in the notebook), the session goes on.
NOTEBOOK_DRIVER = f"""\
26/11/20 03:00:01 INFO SparkContext: Submitted application: livy-session-7
26/11/20 03:00:02 INFO ApplicationMaster: Registered with ResourceManager as {APP}
26/11/20 03:12:40 ERROR Executor: Exception in task 0.0 in stage 3.0 (TID 12)
py4j.protocol.Py4JJavaError: An error occurred while calling o93.count.
: org.apache.spark.SparkException: Job aborted due to stage failure: Task 0 in stage 3.0 failed 4 times
"""


def _deps(follow_ups: bool = True):  # type: ignore[no-untyped-def]
    deps, repo, emr, logs, notifier = make_dependencies(now=datetime(2026, 11, 20, 3, 10, tzinfo=UTC))
    queue = FakeFollowUps()
    if follow_ups:
        deps = replace(deps, follow_ups=queue)
    emr.clusters[CLUSTER] = ClusterInfo(
        cluster_id=CLUSTER, name="analytics-shared", log_uri="s3://logs-bucket/emr/", tags={"team": "ml"}
    )
    return deps, repo, emr, logs, notifier, queue


def _log_event(key: str, at: str = "2026-11-20T03:09:00Z", etag: str | None = None) -> object:
    raw = json.loads((EVENTS / "s3-container-log-created.json").read_text())
    raw["detail"]["object"]["key"] = key
    raw["detail"]["bucket"]["name"] = "logs-bucket"
    raw["detail"]["object"]["etag"] = etag or "e-" + key[-30:]
    raw["time"] = at
    return parse_event(raw)


def _root(notifier) -> str:  # type: ignore[no-untyped-def]
    message = notifier.updates[-1][1] if notifier.updates else notifier.posts[-1][1]
    return json.dumps(message.blocks)


def test_a_failed_application_with_no_step_gets_its_own_incident_from_its_driver_log() -> None:
    # Given a spark-submit run by an orchestrator on a long-running cluster (no EMR step), whose driver
    # log lands in S3 saying the application failed
    deps, repo, _, logs, notifier, _ = _deps()
    logs.put(DRIVER_KEY, FAILED_DRIVER)
    # When its S3 event arrives
    outcome = handle_log_event(_log_event(DRIVER_KEY), deps)  # type: ignore[arg-type]
    # Then an application incident is opened, diagnosed from that log and alerted at once
    assert outcome.action == "incident_opened" and outcome.incident_id == INCIDENT, outcome
    incident = repo.get(INCIDENT)
    assert incident is not None and incident.kind == "application" and incident.step_id is None
    assert incident.spark_app_name == "churn-model-2026-11-20" and incident.yarn_application_id == APP
    assert incident.diagnosis is not None and incident.diagnosis.category != "other"
    assert incident.tags == {"team": "ml"} and incident.cluster_name == "analytics-shared"
    root = _root(notifier)
    assert "Spark application failed: churn-model-2026-11-20" in root and "not an EMR step" in root
    # And a duplicate of the event, and an executor's log of the same application, add to it, not a new one
    assert handle_log_event(_log_event(DRIVER_KEY), deps).action == "duplicate"  # type: ignore[arg-type]
    logs.put(EXECUTOR_KEY, "26/11/20 03:04:10 ERROR Executor: Exception in task 1.0 in stage 2.0\n")
    again = handle_log_event(_log_event(EXECUTOR_KEY), deps)  # type: ignore[arg-type]
    # (its line changes nothing the incident shows, so the incident is not rewritten)
    assert again.action == "unchanged" and again.incident_id == INCIDENT, again
    assert len(notifier.posts) == 1


def test_a_successful_application_or_a_notebook_with_a_failed_cell_opens_nothing() -> None:
    deps, repo, _, logs, notifier, _ = _deps()
    # Given the driver log of an application that succeeded, and a notebook session's with a caught error
    logs.put(DRIVER_KEY, SUCCEEDED_DRIVER)
    other = DRIVER_KEY.replace("0012", "0014")
    logs.put(other, NOTEBOOK_DRIVER)
    # When their S3 events arrive
    ok = handle_log_event(_log_event(DRIVER_KEY), deps)  # type: ignore[arg-type]
    notebook = handle_log_event(_log_event(other), deps)  # type: ignore[arg-type]
    # Then no incident and no alert: the success is remembered as the application's last run
    assert ok.action == "run_recorded", ok
    assert notebook.action == "no_incident" and "does not show the application ending failed" in notebook.detail
    assert repo.open_incidents(cluster_id=CLUSTER) == [] and notifier.posts == []
    key = job_key(cluster_name="analytics-shared", spark_app_name="churn-model-2026-11-21")
    assert key is not None and repo.last_run(key, "SUCCEEDED") is not None


def test_the_next_successful_run_of_the_application_resolves_its_incident() -> None:
    deps, repo, _, logs, _notifier, _ = _deps()
    logs.put(DRIVER_KEY, FAILED_DRIVER)
    handle_log_event(_log_event(DRIVER_KEY), deps)  # type: ignore[arg-type]
    # When the next day's run of the same application (same name but the date) succeeds
    next_key = DRIVER_KEY.replace("0012", "0013")
    logs.put(next_key, SUCCEEDED_DRIVER)
    outcome = handle_log_event(_log_event(next_key, at="2026-11-21T03:10:00Z"), deps)  # type: ignore[arg-type]
    # Then the failure's incident is resolved
    assert outcome.action == "incident_resolved" and outcome.incident_id == INCIDENT
    incident = repo.get(INCIDENT)
    assert incident is not None and incident.status == "RESOLVED"


def test_an_application_whose_failed_step_event_is_late_is_held_then_folded_into_the_step() -> None:
    # Given a step that failed (EMR lists it) whose FAILED event has not arrived, and its driver log landing
    deps, repo, emr, logs, notifier, queue = _deps()
    emr.steps[STEP] = StepInfo(
        step_id=STEP,
        name="churn",
        state="FAILED",
        started_at=datetime(2026, 11, 20, 3, 0, tzinfo=UTC),
        ended_at=datetime(2026, 11, 20, 3, 4, 30, tzinfo=UTC),
        failure_details=FailureDetails(reason="Unknown Error."),
    )
    logs.put(DRIVER_KEY, FAILED_DRIVER)
    held = handle_log_event(_log_event(DRIVER_KEY), deps)  # type: ignore[arg-type]
    # Then the application's incident is held, not alerted
    assert held.action == "incident_opened" and "held" in held.detail and STEP in held.detail
    assert notifier.posts == []
    # When the step's FAILED event arrives (its stderr names the application)
    logs.put(f"emr/{CLUSTER}/steps/{STEP}/stderr.gz", f"26/11/20 03:00:00 INFO Client: Submitted application {APP}\n")
    raw = json.loads((EVENTS / "step-failed.json").read_text())
    raw["time"] = "2026-11-20T03:04:31Z"
    step = handle_emr_event(parse_event(raw), deps)  # type: ignore[arg-type]
    # Then one alert, the step's, with the application folded into it
    assert step.action == "incident_opened"
    assert len(notifier.posts) == 1
    folded = repo.get(INCIDENT)
    assert folded is not None and folded.folded_into == step_incident_id(CLUSTER, STEP)
    # And the held incident's check finds it folded: still one alert
    for follow_up in queue.due():
        handle_follow_up(follow_up, deps)
    assert len(notifier.posts) == 1


def test_a_held_application_whose_step_never_reports_is_alerted_at_its_check() -> None:
    deps, _repo, emr, logs, notifier, queue = _deps()
    emr.steps[STEP] = StepInfo(
        step_id=STEP, name="other", state="FAILED", ended_at=datetime(2026, 11, 20, 3, 1, tzinfo=UTC)
    )
    logs.put(DRIVER_KEY, FAILED_DRIVER)
    handle_log_event(_log_event(DRIVER_KEY), deps)  # type: ignore[arg-type]
    assert notifier.posts == []
    # When its check runs and no step failure was reported meanwhile
    outcomes = [handle_follow_up(f, deps) for f in queue.due()]
    # Then it is alerted on its own
    assert [o.action for o in outcomes] == ["incident_updated"]
    assert len(notifier.posts) == 1 and "Spark application failed" in _root(notifier)


def test_detection_can_be_switched_off_and_old_step_failures_do_not_hold() -> None:
    deps, _repo, emr, logs, notifier, _ = _deps()
    logs.put(DRIVER_KEY, FAILED_DRIVER)
    off = replace(deps, settings=deps.settings.model_copy(update={"detect_applications_outside_steps": False}))
    assert handle_log_event(_log_event(DRIVER_KEY), off).action == "no_incident"  # type: ignore[arg-type]
    # A step that failed a day earlier cannot own this application: it alerts at once
    emr.steps[STEP] = StepInfo(step_id=STEP, state="FAILED", ended_at=datetime(2026, 11, 19, 3, 0, tzinfo=UTC))
    assert handle_log_event(_log_event(DRIVER_KEY), deps).action == "incident_opened"  # type: ignore[arg-type]
    assert len(notifier.posts) == 1


def test_a_step_incident_whose_stderr_was_read_without_an_application_does_not_take_other_apps_logs() -> None:
    # Given a shell step that failed (its stderr read: no YARN application in it)
    deps, repo, emr, logs, _notifier, _ = _deps()
    emr.steps[STEP] = StepInfo(step_id=STEP, name="copy", state="FAILED")
    logs.put(f"emr/{CLUSTER}/steps/{STEP}/stderr.gz", "cp: cannot stat '/mnt/in': No such file or directory\n")
    raw = json.loads((EVENTS / "step-failed.json").read_text())
    raw["time"] = "2026-11-20T02:59:00Z"
    handle_emr_event(parse_event(raw), deps)  # type: ignore[arg-type]
    # When a notebook application's failed driver log lands ten minutes later
    logs.put(DRIVER_KEY, FAILED_DRIVER)
    outcome = handle_log_event(_log_event(DRIVER_KEY), deps)  # type: ignore[arg-type]
    # Then it is its own incident, not evidence in the shell step's
    assert outcome.incident_id == INCIDENT
    step = repo.get(step_incident_id(CLUSTER, STEP))
    assert step is not None and not any(APP in r.source for r in step.logs_analysed)


def test_the_final_status_rules_tell_a_failed_application_from_a_caught_error() -> None:
    catalogue = load_catalogue()
    final = {r.id for r in catalogue.rules if r.final_status}
    assert final == {"application_gave_up", "application_succeeded"}
    failed = analyse_lines(FAILED_DRIVER.splitlines(), catalogue=catalogue, source="driver")
    notebook = analyse_lines(NOTEBOOK_DRIVER.splitlines(), catalogue=catalogue, source="nb")
    assert failed.spark_app_name == "churn-model-2026-11-20" and notebook.spark_app_name == "livy-session-7"
    assert "application_gave_up" in {f.rule_id for f in failed.findings}
    assert "application_gave_up" not in {f.rule_id for f in notebook.findings}


def _event(name: str, **detail: str) -> object:
    raw = json.loads((EVENTS / name).read_text())
    raw["detail"].update(detail)
    return parse_event(raw)


def test_a_redelivered_hold_check_finishes_an_alert_a_slack_failure_left_unposted() -> None:
    # Given a cluster terminated by STEP_FAILURE before any step failure was reported: held, one check
    deps, _, _emr, _, notifier, queue = _deps()
    reason = json.dumps({"code": "STEP_FAILURE", "message": "Shut down as step failed"})
    event = _event("cluster-terminated-with-errors.json", clusterId=CLUSTER, stateChangeReason=reason)
    held = handle_emr_event(event, deps)  # type: ignore[arg-type]
    (check,) = queue.due()
    assert "held" in held.detail and check.purpose == "hold"
    # When the check releases it but Slack fails, and SQS delivers the check again
    notifier.fail_with = TransientError("slack 503")
    with pytest.raises(TransientError):
        handle_follow_up(check, deps)
    notifier.fail_with = None
    again = handle_follow_up(check, deps)
    # Then the second delivery posts the alert
    assert again.slack == "posted" and len(notifier.posts) == 1


def test_a_held_application_folds_only_into_the_step_it_is_held_for() -> None:
    # Given step A's failure alerted at 02:00, and step B failed at 03:08 with its event late
    deps, repo, emr, logs, notifier, queue = _deps()
    step_a = "s-AAAAAAAAAAAAA"
    emr.steps[step_a] = StepInfo(
        step_id=step_a, name="a", state="FAILED", ended_at=datetime(2026, 11, 20, 2, 0, tzinfo=UTC)
    )
    logs.put(f"emr/{CLUSTER}/steps/{step_a}/stderr.gz", "INFO Client: Submitted application application_1_0001\n")
    raw = json.loads((EVENTS / "step-failed.json").read_text())
    raw["detail"].update(clusterId=CLUSTER, stepId=step_a)
    raw["time"] = "2026-11-20T02:00:05Z"
    handle_emr_event(parse_event(raw), deps)  # type: ignore[arg-type]
    queue.due()
    emr.steps[STEP] = StepInfo(
        step_id=STEP, name="b", state="FAILED", ended_at=datetime(2026, 11, 20, 3, 8, tzinfo=UTC)
    )
    # When an unrelated application's failed driver log lands (held for B), and B never reports
    logs.put(DRIVER_KEY, FAILED_DRIVER)
    held = handle_log_event(_log_event(DRIVER_KEY), deps)  # type: ignore[arg-type]
    assert "held" in held.detail and STEP in held.detail
    for follow_up in queue.due():
        handle_follow_up(follow_up, deps)
    # Then it is alerted on its own, not folded into A's two-hour-old incident
    app = repo.get(INCIDENT)
    assert app is not None and app.folded_into is None and app.slack is not None
    assert len(notifier.posts) == 2


def test_a_retried_log_event_schedules_the_hold_check_the_first_attempt_could_not() -> None:
    deps, _repo, emr, logs, _notifier, queue = _deps()
    emr.steps[STEP] = StepInfo(step_id=STEP, state="FAILED", ended_at=datetime(2026, 11, 20, 3, 5, tzinfo=UTC))
    logs.put(DRIVER_KEY, FAILED_DRIVER)
    # Given the hold check refused by SQS on the first delivery of the driver log's event
    queue.fail_with = TransientError("SQS throttled")
    with pytest.raises(TransientError):
        handle_log_event(_log_event(DRIVER_KEY), deps)  # type: ignore[arg-type]
    queue.fail_with = None
    # When Lambda retries the event
    retried = handle_log_event(_log_event(DRIVER_KEY), deps)  # type: ignore[arg-type]
    # Then the hold check is scheduled now
    assert "held" in retried.detail and [f.purpose for f in queue.due()] == ["hold"]


def test_a_failed_applications_executor_logs_already_in_s3_are_read_with_its_driver_log() -> None:
    # Given an executor's log that landed with the driver's (its S3 event found no incident)
    deps, repo, _, logs, _, _ = _deps()
    logs.put(EXECUTOR_KEY, "26/11/20 03:04:10 ERROR Executor: java.lang.OutOfMemoryError: Java heap space\n")
    logs.put(DRIVER_KEY, FAILED_DRIVER)
    assert handle_log_event(_log_event(EXECUTOR_KEY), deps).action == "no_incident"  # type: ignore[arg-type]
    # When the driver's event opens the application's incident
    handle_log_event(_log_event(DRIVER_KEY), deps)  # type: ignore[arg-type]
    # Then the executor's log is read into it
    incident = repo.get(INCIDENT)
    assert incident is not None and any(r.source.endswith(EXECUTOR_KEY) for r in incident.logs_analysed)


def test_a_driver_log_read_only_in_part_says_the_final_status_is_unknown() -> None:
    deps, _, _, logs, notifier, _ = _deps()
    small = replace(deps, settings=deps.settings.model_copy(update={"log_read_max_bytes": 1024}))
    logs.put(DRIVER_KEY, FAILED_DRIVER.replace("INFO SparkContext: Running", "INFO " + "x" * 2000 + " Running"))
    outcome = handle_log_event(_log_event(DRIVER_KEY), small)  # type: ignore[arg-type]
    assert outcome.action == "no_incident" and "only partly read" in outcome.detail and notifier.posts == []


def test_a_first_attempt_that_failed_is_not_the_end_of_the_application() -> None:
    # Given attempt 1 of 2 failing while its step still runs (YARN starts attempt 2)
    deps, _repo, _, logs, notifier, _ = _deps()
    logs.put(DRIVER_KEY, FIRST_ATTEMPT)
    # When its driver log lands
    outcome = handle_log_event(_log_event(DRIVER_KEY), deps)  # type: ignore[arg-type]
    # Then no incident: only the last attempt's unregistering with FAILED ends the application
    assert outcome.action == "no_incident" and notifier.posts == []
    assert "Final app status: FAILED" in FIRST_ATTEMPT


def test_the_driver_log_of_a_step_a_quick_rerun_already_resolved_raises_no_second_alert() -> None:
    # Given a failed step that submitted the application (linked from its stderr), resolved by a rerun
    # before the application's driver log landed (EMR pushes container logs every 5 minutes)
    from tests.unit.test_message import _incident

    deps, repo, _, logs, notifier, _ = _deps()
    step = _incident(
        incident_id=step_incident_id(CLUSTER, STEP),
        cluster_id=CLUSTER,
        step_id=STEP,
        application_ids=[APP],
        status="RESOLVED",
        resolved_by="load-orders succeeded at 03:08 on the rerun",
        opened_at=datetime(2026, 11, 20, 3, 0, 20, tzinfo=UTC),
        failed_at=datetime(2026, 11, 20, 3, 0, 20, tzinfo=UTC),
    )
    repo.create(step)
    logs.put(DRIVER_KEY, FAILED_DRIVER)
    # When the driver log, which shows the application failing, lands
    outcome = handle_log_event(_log_event(DRIVER_KEY), deps)  # type: ignore[arg-type]
    # Then it is the resolved step's failure: no application incident, no alert
    assert outcome.action == "no_incident" and outcome.incident_id == step.incident_id, outcome
    assert "already resolved" in outcome.detail
    assert repo.get(INCIDENT) is None and notifier.posts == []
    # And an application no resolved step linked still opens its own
    other = DRIVER_KEY.replace("0012", "0099")
    logs.put(other, FAILED_DRIVER.replace("0012", "0099"))
    assert handle_log_event(_log_event(other), deps).action == "incident_opened"  # type: ignore[arg-type]


def test_a_resolved_step_whose_stderr_was_never_read_is_recognised_by_its_stderr_now() -> None:
    # Given a failed step resolved by its rerun before its stderr was read (no application linked)
    from tests.unit.test_message import _incident

    deps, repo, _, logs, notifier, _ = _deps()
    location = f"s3://logs-bucket/emr/{CLUSTER}/steps/{STEP}/"
    step = _incident(
        incident_id=step_incident_id(CLUSTER, STEP),
        cluster_id=CLUSTER,
        step_id=STEP,
        log_location=location,
        status="RESOLVED",
        opened_at=datetime(2026, 11, 20, 3, 0, 20, tzinfo=UTC),
        failed_at=datetime(2026, 11, 20, 3, 0, 20, tzinfo=UTC),
    )
    repo.create(step)
    logs.put(
        f"emr/{CLUSTER}/steps/{STEP}/stderr.gz", f"26/11/20 03:00:09 INFO YarnClientImpl: Submitted application {APP}\n"
    )
    logs.put(DRIVER_KEY, FAILED_DRIVER)
    # When the application's driver log lands, showing it failed
    outcome = handle_log_event(_log_event(DRIVER_KEY), deps)  # type: ignore[arg-type]
    # Then the step's stderr, read now, says the step submitted it: no second alert
    assert outcome.action == "no_incident" and outcome.incident_id == step.incident_id, outcome
    assert repo.get(INCIDENT) is None and notifier.posts == []

"""Log checks after a failure (the follow-up queue), and incoming-webhook mode's one message per incident."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from tests.fakes.memory import FakeFollowUps, make_dependencies

from emr_triage.exceptions import TransientError
from emr_triage.incidents.service import handle_emr_event, handle_follow_up, handle_log_event, step_incident_id
from emr_triage.models.emr import ClusterInfo, FailureDetails, StepInfo
from emr_triage.models.events import FollowUp, parse_event

EVENTS = Path(__file__).resolve().parents[2] / "events"
CLUSTER, STEP = "j-123456789ABCD", "s-ZYXWVUTSRQPON"
INCIDENT = step_incident_id(CLUSTER, STEP)
APP = "application_1763480000001_0007"
STEP_STDERR = (
    f"26/11/20 02:10:01 INFO Client: Submitted application {APP}\n"
    f'Exception in thread "main" org.apache.spark.SparkException: Application {APP} finished with failed status\n'
)
DRIVER_LOG = (
    "26/11/20 02:09:58 ERROR ApplicationMaster: User class threw exception: "
    "org.apache.spark.sql.AnalysisException: Path does not exist: s3://acme-data/raw/orders/2026-11-19\n"
)
DRIVER_KEY = f"emr/{CLUSTER}/containers/{APP}/container_1763480000001_0007_01_000001/stderr.gz"


def _deps(*, threads: bool = True, interval: int = 300, deadline: int = 15):  # type: ignore[no-untyped-def]
    deps, repo, emr, logs, notifier = make_dependencies(
        environment={"FOLLOW_UP_INTERVAL_SECONDS": str(interval), "LOGS_DEADLINE_MINUTES": str(deadline)}
    )
    follow_ups = FakeFollowUps()
    notifier.threads = threads
    deps = replace(deps, follow_ups=follow_ups)
    emr.clusters[CLUSTER] = ClusterInfo(cluster_id=CLUSTER, name="nightly", log_uri="s3://logs-bucket/emr/")
    emr.steps[STEP] = StepInfo(
        step_id=STEP,
        name="load",
        state="FAILED",
        failure_details=FailureDetails(reason="Unknown Error.", message="Step failed with exitCode 1"),
    )
    return deps, repo, logs, notifier, follow_ups


def _failed() -> object:
    return parse_event(json.loads((EVENTS / "step-failed.json").read_text()))


def _log_event(key: str) -> object:
    raw = json.loads((EVENTS / "s3-step-log-created.json").read_text())
    raw["detail"]["object"]["key"] = key
    raw["detail"]["bucket"]["name"] = "logs-bucket"
    raw["detail"]["object"]["etag"] = "e-" + key[-20:]
    return parse_event(raw)


def _root(notifier) -> str:  # type: ignore[no-untyped-def]
    message = notifier.updates[-1][1] if notifier.updates else notifier.posts[-1][1]
    return json.dumps(message.blocks)


def test_a_failure_without_logs_is_checked_until_the_deadline_then_says_logs_unavailable() -> None:
    # Given a failed step whose logs never reach S3 (checks every 5 minutes, deadline 15 minutes)
    deps, repo, _, notifier, follow_ups = _deps()
    handle_emr_event(_failed(), deps)  # type: ignore[arg-type]
    # Then one check is scheduled, 5 minutes out, and the alert says the logs are being analysed
    assert [(f.check, f.checks, d) for f, d in follow_ups.scheduled] == [(1, 3, 300)]
    assert "analysing logs" in _root(notifier)
    # When the same event is delivered again, no second check is scheduled
    handle_emr_event(_failed(), deps)  # type: ignore[arg-type]
    assert len(follow_ups.scheduled) == 1
    # When the checks run, each schedules the next until the last, at the deadline
    outcomes = []
    while due := follow_ups.due():
        outcomes += [handle_follow_up(f, deps) for f in due]
    assert [o.detail.split(":")[0] for o in outcomes] == ["log check 1/3", "log check 2/3", "log check 3/3"]
    # Then the incident is marked, and the root message says so and keeps EMR's own reason
    incident = repo.get(INCIDENT)
    assert incident is not None and incident.logs_unavailable and incident.logs_deadline_minutes == 15
    text = _root(notifier)
    assert "logs unavailable: no log could be read within 15 min" in text and "Step failed with exitCode 1" in text
    assert "analysing logs" not in text
    # And a late duplicate check changes nothing more
    assert handle_follow_up(FollowUp(incident_id=INCIDENT, check=3, checks=3), deps).slack == "unchanged"


def test_a_driver_log_that_landed_before_the_failure_event_is_found_at_once() -> None:
    # Given the driver's container log already in S3 (its S3 event came before the incident existed)
    deps, repo, logs, notifier, _ = _deps()
    logs.put(f"emr/{CLUSTER}/steps/{STEP}/stderr.gz", STEP_STDERR)
    logs.put(DRIVER_KEY, DRIVER_LOG)
    early = handle_log_event(_log_event(DRIVER_KEY), deps)  # type: ignore[arg-type]
    # (an attempt's "Final app status: FAILED" without the last attempt's unregistering: not an end)
    assert early.action == "no_incident" and notifier.posts == []
    # When the step's FAILED event arrives
    handle_emr_event(_failed(), deps)  # type: ignore[arg-type]
    # Then the step's stderr links the application, and its driver log gives the verdict in the first alert
    incident = repo.get(INCIDENT)
    assert incident is not None and incident.diagnosis is not None
    assert incident.diagnosis.category == "input_not_found"
    assert any(r.source.endswith(DRIVER_KEY) for r in incident.logs_analysed)
    assert len(notifier.posts) == 1 and "Path does not exist" in json.dumps(notifier.posts[0][1].blocks)


def test_a_check_analyses_logs_whose_s3_events_never_came() -> None:
    # Given a failed step alerted before its logs landed, and a bucket that sends no S3 events
    deps, repo, logs, notifier, follow_ups = _deps()
    handle_emr_event(_failed(), deps)  # type: ignore[arg-type]
    logs.put(f"emr/{CLUSTER}/steps/{STEP}/stderr.gz", STEP_STDERR)
    logs.put(DRIVER_KEY, DRIVER_LOG)
    # When the first check runs (the step log links the app; the second check sweeps its driver log)
    first = handle_follow_up(follow_ups.due()[0], deps)
    second = handle_follow_up(follow_ups.due()[0], deps)
    # Then both logs are analysed and the alert carries the driver's verdict
    assert "analysed 1 log(s)" in first.detail and "analysed 1 log(s)" in second.detail
    incident = repo.get(INCIDENT)
    assert incident is not None and incident.diagnosis is not None
    assert incident.diagnosis.category == "input_not_found" and not incident.logs_unavailable
    assert "Path does not exist" in _root(notifier)


def test_a_failed_schedule_fails_the_event_and_its_retry_schedules_once() -> None:
    # Given SQS refusing the follow-up
    deps, repo, _, notifier, follow_ups = _deps()
    follow_ups.fail_with = TransientError("SQS throttled")
    # When the failure event is handled, it fails (Lambda retries it) after the incident is stored
    with pytest.raises(TransientError):
        handle_emr_event(_failed(), deps)  # type: ignore[arg-type]
    assert repo.get(INCIDENT) is not None
    # When the retry comes with SQS healthy
    follow_ups.fail_with = None
    handle_emr_event(_failed(), deps)  # type: ignore[arg-type]
    # Then the check is scheduled once, and one alert is out
    assert len(follow_ups.scheduled) == 1 and len(notifier.posts) == 1


def test_a_check_of_a_vanished_incident_is_a_no_op() -> None:
    deps, _, _, notifier, _ = _deps()
    outcome = handle_follow_up(FollowUp(incident_id="j-GONE.s-GONE", check=1, checks=3), deps)
    assert outcome.action == "no_incident" and notifier.posts == []


# -- incoming-webhook mode: one message per incident ------------------------------------------------
def test_webhook_mode_waits_for_the_driver_verdict_and_posts_once_with_the_extract() -> None:
    # Given webhook mode, and a step whose stderr only says the application failed
    deps, repo, logs, notifier, follow_ups = _deps(threads=False)
    logs.put(f"emr/{CLUSTER}/steps/{STEP}/stderr.gz", STEP_STDERR)
    # When the failure is handled: the verdict is provisional, so nothing is posted yet
    first = handle_emr_event(_failed(), deps)  # type: ignore[arg-type]
    assert first.slack == "none" and notifier.posts == []
    # When the driver's log lands with the cause
    logs.put(DRIVER_KEY, DRIVER_LOG)
    handle_log_event(_log_event(DRIVER_KEY), deps)  # type: ignore[arg-type]
    # Then exactly one message goes out, with the verdict and the extract inline
    assert len(notifier.posts) == 1
    text = json.dumps(notifier.posts[0][1].blocks)
    assert "Path does not exist" in text and "Log extract" in text
    # And later events and checks neither edit nor post again
    handle_emr_event(_failed(), deps)  # type: ignore[arg-type]
    while due := follow_ups.due():
        for f in due:
            handle_follow_up(f, deps)
    assert len(notifier.posts) == 1 and notifier.updates == [] and notifier.replies == []
    incident = repo.get(INCIDENT)
    assert incident is not None and incident.slack is not None and incident.slack.channel == "C0FAKE"


def test_webhook_mode_posts_at_the_deadline_when_no_cause_was_found() -> None:
    # Given webhook mode and a failed step whose logs never come
    deps, _, _, notifier, follow_ups = _deps(threads=False, interval=0)
    handle_emr_event(_failed(), deps)  # type: ignore[arg-type]
    assert notifier.posts == []
    # When the deadline's check runs
    for f in follow_ups.due():
        handle_follow_up(f, deps)
    # Then the one message says the logs are unavailable, with EMR's reason
    (post,) = notifier.posts
    text = json.dumps(post[1].blocks)
    assert "logs unavailable" in text and "Step failed with exitCode 1" in text


def test_webhook_mode_posts_a_cluster_failure_at_once() -> None:
    # Given webhook mode and a cluster that failed to bootstrap (nothing to wait for)
    deps, _, _, notifier, _ = _deps(threads=False)
    event = parse_event(json.loads((EVENTS / "cluster-terminated-with-errors.json").read_text()))
    # When it is handled
    outcome = handle_emr_event(event, deps)  # type: ignore[arg-type]
    # Then it is posted immediately
    assert outcome.slack == "posted" and len(notifier.posts) == 1


def test_an_evidence_thread_whose_poster_died_is_taken_over_when_its_lease_expires() -> None:
    # Given a diagnosed, alerted incident whose thread was claimed by an invocation that then died

    from emr_triage.incidents.claims import SLACK_CLAIM_SECONDS
    from emr_triage.incidents.service import deliver_alert

    deps, repo, logs, notifier, _ = _deps()
    logs.put(f"emr/{CLUSTER}/steps/{STEP}/stderr.gz", DRIVER_LOG)
    notifier_upload = notifier.upload

    def die(*args: object, **kwargs: object) -> str:
        raise KeyboardInterrupt  # not an Exception: nothing hands the claim back, as when Lambda times out

    notifier.upload = die  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt):
        handle_emr_event(_failed(), deps)  # type: ignore[arg-type]
    notifier.upload = notifier_upload  # type: ignore[method-assign]
    assert len(notifier.replies) == 1 and notifier.uploads == []
    # When another delivery comes while the lease is live, it leaves the thread alone
    deliver_alert(INCIDENT, deps)
    assert notifier.uploads == []
    # When one comes after the lease expired
    deps.sleep(SLACK_CLAIM_SECONDS + 1)
    deliver_alert(INCIDENT, deps)
    # Then it uploads the extract, without a second evidence reply, and the thread is done
    assert len(notifier.uploads) == 1 and len(notifier.replies) == 1
    incident = repo.get(INCIDENT)
    assert incident is not None and incident.slack is not None and incident.slack.thread_claim_until is None


# -- review findings: reads that did not happen, SQS trouble, duplicates ------------------------------
class _ThrottledOnce:
    """S3 that throttles the first read (SlowDown), then serves the object."""

    def __init__(self, logs) -> None:  # type: ignore[no-untyped-def]
        self._logs, self.failures_left = logs, 1

    def list_objects(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        return self._logs.list_objects(*args, **kwargs)

    def open_object(self, bucket: str, key: str):  # type: ignore[no-untyped-def]
        if self.failures_left:
            self.failures_left -= 1
            raise TransientError(f"reading s3://{bucket}/{key} failed transiently (SlowDown)")
        return self._logs.open_object(bucket, key)


def _run_checks(deps, follow_ups) -> None:  # type: ignore[no-untyped-def]
    while due := follow_ups.due():
        for f in due:
            handle_follow_up(f, deps)


def test_a_log_s3_throttled_at_failure_time_is_read_by_a_later_check() -> None:
    # Given a step log in S3 whose first read is throttled
    deps, repo, logs, notifier, follow_ups = _deps()
    logs.put(f"emr/{CLUSTER}/steps/{STEP}/stderr.gz", DRIVER_LOG)
    deps = replace(deps, logs=_ThrottledOnce(logs))
    # When the failure is handled (the alert goes out without it) and the checks run
    handle_emr_event(_failed(), deps)  # type: ignore[arg-type]
    assert "analysing logs" in _root(notifier) or "not read yet" in json.dumps(notifier.posts[0][1].blocks)
    _run_checks(deps, follow_ups)
    # Then a check reads it: the verdict is the log's, and the logs are not called unavailable
    incident = repo.get(INCIDENT)
    assert incident is not None and incident.diagnosis is not None
    assert incident.diagnosis.category == "input_not_found" and not incident.logs_unavailable


def test_a_log_skipped_for_lack_of_time_is_read_by_a_later_check() -> None:
    # Given an invocation whose time budget is spent before it reads the step log
    import time

    deps, repo, logs, _, follow_ups = _deps()
    logs.put(f"emr/{CLUSTER}/steps/{STEP}/stderr.gz", DRIVER_LOG)
    handle_emr_event(_failed(), replace(deps, deadline=time.monotonic() - 1))  # type: ignore[arg-type]
    # When the checks run with time to spare
    _run_checks(deps, follow_ups)
    # Then the log is analysed after all
    incident = repo.get(INCIDENT)
    assert incident is not None and incident.diagnosis is not None
    assert incident.diagnosis.category == "input_not_found"


def test_an_s3_throttle_on_a_log_event_fails_the_event_for_a_retry() -> None:
    # Given an alerted failure, and a log event whose object S3 throttles
    deps, _, logs, _, _ = _deps()
    handle_emr_event(_failed(), deps)  # type: ignore[arg-type]
    logs.put(DRIVER_KEY, DRIVER_LOG)
    logs.put(f"emr/{CLUSTER}/steps/{STEP}/stderr.gz", STEP_STDERR)
    throttled = replace(deps, logs=_ThrottledOnce(logs))
    # When the log event is handled, it fails (Lambda retries it); the retry reads the log
    step_key = f"emr/{CLUSTER}/steps/{STEP}/stderr.gz"
    with pytest.raises(TransientError):
        handle_log_event(_log_event(step_key), throttled)  # type: ignore[arg-type]
    outcome = handle_log_event(_log_event(step_key), throttled)  # type: ignore[arg-type]
    assert outcome.action == "incident_updated"


def test_an_sqs_outage_does_not_hold_back_the_alert() -> None:
    # Given SQS refusing the log check
    deps, _, _, notifier, follow_ups = _deps()
    follow_ups.fail_with = TransientError("sqs:SendMessage throttled")
    # When a failure is handled, the alert goes out first, then the event fails for its retry
    with pytest.raises(TransientError):
        handle_emr_event(_failed(), deps)  # type: ignore[arg-type]
    assert len(notifier.posts) == 1


def test_a_duplicated_check_does_not_fork_the_chain() -> None:
    # Given a scheduled first check, delivered twice (SQS delivers at least once)
    deps, _, _, _, follow_ups = _deps()
    handle_emr_event(_failed(), deps)  # type: ignore[arg-type]
    (first,) = follow_ups.due()
    handle_follow_up(first, deps)
    handle_follow_up(first, deps)
    # Then the second check is scheduled once
    assert [f.check for f, _ in follow_ups.scheduled] == [2]


def test_a_resumed_event_does_not_count_a_log_twice() -> None:
    # Given a failure whose first attempt read the logs and then failed (SQS refused the check)
    deps, repo, logs, _, follow_ups = _deps()
    logs.put(f"emr/{CLUSTER}/steps/{STEP}/stderr.gz", STEP_STDERR)
    logs.put(
        DRIVER_KEY,
        DRIVER_LOG + "26/11/20 02:09:59 WARN YarnAllocator: Container from a bad node: container_1 on host: "
        "ip-10-0-0-1. Exit status: 137. Diagnostics: Container killed on request. Exit code is 137\n",
    )
    follow_ups.fail_with = TransientError("SQS throttled")
    with pytest.raises(TransientError):
        handle_emr_event(_failed(), deps)  # type: ignore[arg-type]
    before = repo.get(INCIDENT)
    # When Lambda retries it (it resumes, and reads the logs again)
    follow_ups.fail_with = None
    handle_emr_event(_failed(), deps)  # type: ignore[arg-type]
    # Then the exit codes and reads are counted once
    after = repo.get(INCIDENT)
    assert before is not None and after is not None and before.exit_codes
    assert [(e.code, e.count) for e in after.exit_codes] == [(e.code, e.count) for e in before.exit_codes]
    assert len(after.logs_analysed) == len(before.logs_analysed)


# -- events out of order: the cluster's death and the cancelled steps before the failed step ---------
def _cluster_step_failure(at: str) -> object:
    raw = json.loads((EVENTS / "cluster-terminated-with-errors.json").read_text())
    raw["time"] = at
    raw["detail"]["clusterId"] = CLUSTER
    raw["detail"]["stateChangeReason"] = json.dumps({"code": "STEP_FAILURE", "message": "Shut down as step failed"})
    return parse_event(raw)


def _cancelled(step_id: str, at: str) -> object:
    raw = json.loads((EVENTS / "step-failed.json").read_text())
    raw["time"] = at
    raw["detail"].update(stepId=step_id, state="CANCELLED", name=f"next {step_id}")
    return parse_event(raw)


def test_a_reordered_storm_folds_into_the_failed_steps_single_alert() -> None:
    # Given the cluster's death and three cancelled steps delivered before the step failure they follow
    deps, repo, logs, notifier, follow_ups = _deps()
    logs.put(f"emr/{CLUSTER}/steps/{STEP}/stderr.gz", DRIVER_LOG)
    failed = _failed()
    at = failed.time  # type: ignore[attr-defined]
    later = (at + timedelta(minutes=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    early = [_cluster_step_failure(later)] + [_cancelled(f"s-CANCELLED{n:04d}", later) for n in range(3)]
    outcomes = [handle_emr_event(e, deps) for e in early]  # type: ignore[arg-type]
    # Then nothing is posted yet: each waits for the failed step
    assert all(o.slack == "none" for o in outcomes) and notifier.posts == []
    # When the step failure arrives, and the checks run
    handle_emr_event(failed, deps)  # type: ignore[arg-type]
    _run_checks(deps, follow_ups)
    # Then there is one alert, the step's, with the cluster's death and the three steps folded into it
    assert len(notifier.posts) == 1
    incident = repo.get(INCIDENT)
    assert incident is not None and len(incident.children) == 4
    assert "Folded into this alert" in _root(notifier) and "STEP_FAILURE" in _root(notifier)
    others = [i for i in repo.items.values() if i.incident_id != INCIDENT]
    assert len(others) == 4 and all(i.folded_into == INCIDENT and i.status == "RESOLVED" for i in others)


def test_a_held_cluster_death_without_a_step_failure_is_alerted_at_the_next_check() -> None:
    # Given a cluster terminated by STEP_FAILURE whose failed step's event never comes (best effort)
    deps, repo, _, notifier, follow_ups = _deps()
    first = handle_emr_event(_cluster_step_failure("2026-11-20T02:20:00Z"), deps)  # type: ignore[arg-type]
    again = handle_emr_event(_cluster_step_failure("2026-11-20T02:20:00Z"), deps)  # type: ignore[arg-type]
    assert first.slack == "none" and again.action == "duplicate" and notifier.posts == []
    # When its check runs
    _run_checks(deps, follow_ups)
    # Then it is alerted on its own, once
    assert len(notifier.posts) == 1 and "STEP_FAILURE" in json.dumps(notifier.posts[0][1].blocks)
    (incident,) = repo.items.values()
    assert not incident.held_for_parent and incident.status == "OPEN"

"""The incident lifecycle with in-memory fakes: what each event does, and what it must never do."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from tests.fakes.memory import make_dependencies

from emr_triage.exceptions import DeliveryError, TransientError
from emr_triage.incidents.emr_events import handle_cluster_event, handle_step_event
from emr_triage.incidents.service import deliver_alert, handle_log_event, step_incident_id
from emr_triage.models.emr import ClusterInfo, FailureDetails, StepInfo
from emr_triage.models.events import EmrClusterStateChange, EmrStepStatusChange, parse_event

EVENTS = Path(__file__).resolve().parents[2] / "events"
CLUSTER, STEP = "j-123456789ABCD", "s-ZYXWVUTSRQPON"
OOM = "26/11/20 02:13:01 ERROR Executor: Exception in task 3.0\njava.lang.OutOfMemoryError: Java heap space\n"


def _event(name: str, **detail: object) -> object:
    raw = json.loads((EVENTS / name).read_text())
    raw["detail"].update(detail)
    return parse_event(raw)


def _deps_with_cluster(log_text: str | None = OOM):  # type: ignore[no-untyped-def]
    deps, repo, emr, logs, notifier = make_dependencies()
    emr.clusters[CLUSTER] = ClusterInfo(
        cluster_id=CLUSTER, name="dev", log_uri="s3n://logs-bucket/emr/", release_label="emr-7.5.0"
    )
    emr.steps[STEP] = StepInfo(
        step_id=STEP,
        name="CustomJAR",
        state="FAILED",
        action_on_failure="CONTINUE",
        failure_details=FailureDetails(reason="Unknown Error.", message="password=hunter2 in conf"),
    )
    if log_text is not None:
        logs.put(f"emr/{CLUSTER}/steps/{STEP}/stderr.gz", log_text)
    return deps, repo, emr, logs, notifier


def test_failed_step_opens_an_incident_with_the_log_diagnosis_and_posts_it() -> None:
    deps, repo, _, _, notifier = _deps_with_cluster()
    event = _event("step-failed.json")
    assert isinstance(event, EmrStepStatusChange)
    outcome = handle_step_event(event, deps)
    incident = repo.get(step_incident_id(CLUSTER, STEP))
    assert outcome.action == "incident_opened" and outcome.slack == "posted"
    assert incident is not None and incident.diagnosis is not None
    assert incident.diagnosis.category == "oom_heap"
    assert incident.log_location == f"s3://logs-bucket/emr/{CLUSTER}/steps/{STEP}/"  # s3n:// normalised
    assert incident.emr_reason == "Unknown Error. — password=[REDACTED] in conf"
    assert incident.slack is not None and incident.slack.channel == "C0FAKE"
    assert len(notifier.posts) == 1 and notifier.posts[0][0] == "#alerts"


def test_a_step_without_logs_yet_says_logs_are_awaited() -> None:
    deps, _, _, _, notifier = _deps_with_cluster(log_text=None)
    event = _event("step-failed.json")
    assert isinstance(event, EmrStepStatusChange)
    outcome = handle_step_event(event, deps)
    assert outcome.detail == "awaiting logs"
    assert "analysing logs" in json.dumps(notifier.posts[0][1].blocks)


@pytest.mark.parametrize("state", ["RUNNING", "PENDING", "CANCEL_PENDING"])
def test_non_failure_states_are_ignored(state: str) -> None:
    deps, repo, _, _, notifier = _deps_with_cluster()
    event = _event("step-failed.json", state=state)
    assert isinstance(event, EmrStepStatusChange)
    assert handle_step_event(event, deps).action == "ignored"
    assert repo.items == {} and notifier.posts == []


def test_a_transient_emr_error_propagates_before_anything_is_written() -> None:
    deps, repo, emr, _, notifier = _deps_with_cluster()
    emr.error = TransientError("ThrottlingException")
    event = _event("step-failed.json")
    assert isinstance(event, EmrStepStatusChange)
    with pytest.raises(TransientError):
        handle_step_event(event, deps)
    assert repo.items == {} and notifier.posts == []


def test_a_failed_post_releases_its_claim_so_the_retry_can_post() -> None:
    deps, repo, _, _, notifier = _deps_with_cluster()
    notifier.fail_with = DeliveryError("Slack 503")
    event = _event("step-failed.json")
    assert isinstance(event, EmrStepStatusChange)
    with pytest.raises(DeliveryError):
        handle_step_event(event, deps)
    incident = repo.get(step_incident_id(CLUSTER, STEP))
    assert incident is not None and incident.slack is None and incident.slack_claim_until is None
    notifier.fail_with = None
    assert handle_step_event(event, deps).slack == "posted"
    assert len(notifier.posts) == 1


def _incident_with_foreign_claim(claim_seconds: int):  # type: ignore[no-untyped-def]
    """An incident whose post is claimed by another invocation (which may have died)."""
    deps, repo, _, _, notifier = _deps_with_cluster()
    notifier.fail_with = DeliveryError("down")
    event = _event("step-failed.json")
    assert isinstance(event, EmrStepStatusChange)
    with pytest.raises(DeliveryError):
        handle_step_event(event, deps)
    notifier.fail_with = None
    incident_id = step_incident_id(CLUSTER, STEP)
    until = deps.clock() + timedelta(seconds=claim_seconds)
    repo.update(incident_id, lambda i: i.model_copy(update={"slack_claim_until": until}))
    return deps, notifier, incident_id


def test_a_claim_held_too_long_fails_the_invocation_so_lambda_retries_it() -> None:
    # Given another invocation claimed the post and holds it longer than this one waits
    deps, notifier, incident_id = _incident_with_foreign_claim(claim_seconds=115)
    # When this one tries to deliver
    # Then it waits, then fails (Lambda retries the event) instead of succeeding without an alert
    with pytest.raises(TransientError, match="another invocation is posting"):
        deliver_alert(incident_id, deps)
    assert notifier.posts == []
    # And the retry, after the claim of the invocation that died has expired, posts
    deps.sleep(120)
    assert deliver_alert(incident_id, deps) == "posted"
    assert len(notifier.posts) == 1


def test_a_claim_that_expires_while_waiting_is_taken_over() -> None:
    deps, notifier, incident_id = _incident_with_foreign_claim(claim_seconds=5)
    assert deliver_alert(incident_id, deps) == "posted"
    assert len(notifier.posts) == 1


def test_a_deleted_slack_message_is_posted_again() -> None:
    from emr_triage.exceptions import SlackMessageGoneError

    deps, repo, _, _, notifier = _deps_with_cluster()
    event = _event("step-failed.json")
    assert isinstance(event, EmrStepStatusChange)
    handle_step_event(event, deps)
    incident_id = step_incident_id(CLUSTER, STEP)
    # Given the alert was deleted in Slack, and the incident changed since
    repo.update(incident_id, lambda i: i.model_copy(update={"children": ["step x CANCELLED"]}))

    def gone(ref, message):  # type: ignore[no-untyped-def]
        raise SlackMessageGoneError("message_not_found")

    notifier.update = gone  # type: ignore[method-assign]
    # When the message is brought up to date
    assert deliver_alert(incident_id, deps) == "posted"
    # Then a new root message was posted and recorded
    assert len(notifier.posts) == 2
    incident = repo.get(incident_id)
    assert incident is not None and incident.slack is not None and incident.slack.ts == "17000.0002"


def test_an_unchanged_message_is_not_updated() -> None:
    deps, _, _, _, notifier = _deps_with_cluster()
    event = _event("step-failed.json")
    assert isinstance(event, EmrStepStatusChange)
    handle_step_event(event, deps)
    assert deliver_alert(step_incident_id(CLUSTER, STEP), deps) == "unchanged"
    assert notifier.updates == []


def test_cluster_death_caused_by_a_step_folds_into_the_step_incident() -> None:
    deps, repo, _, _, notifier = _deps_with_cluster()
    step = _event("step-failed.json")
    assert isinstance(step, EmrStepStatusChange)
    handle_step_event(step, deps)
    cluster = _event(
        "cluster-terminated-with-errors.json",
        clusterId=CLUSTER,
        stateChangeReason='{"code":"STEP_FAILURE","message":"Shut down as step failed"}',
    )
    assert isinstance(cluster, EmrClusterStateChange)
    outcome = handle_cluster_event(cluster, deps)
    assert outcome.action == "folded" and outcome.incident_id == step_incident_id(CLUSTER, STEP)
    assert len(repo.items) == 1 and len(notifier.posts) == 1 and len(notifier.updates) == 1


def test_a_cluster_that_dies_on_its_own_is_its_own_incident() -> None:
    deps, repo, emr, _, notifier = make_dependencies()
    emr.clusters["j-2BOOTSTRAPFAIL"] = ClusterInfo(
        cluster_id="j-2BOOTSTRAPFAIL", name="fs", log_uri="s3://logs-bucket/emr/"
    )
    cluster = _event("cluster-terminated-with-errors.json")
    assert isinstance(cluster, EmrClusterStateChange)
    outcome = handle_cluster_event(cluster, deps)
    incident = repo.get("j-2BOOTSTRAPFAIL.cluster")
    assert outcome.action == "incident_opened"
    assert incident is not None and incident.diagnosis is not None
    assert (incident.diagnosis.category, incident.diagnosis.from_logs) == ("bootstrap_failure", False)
    assert incident.severity == "critical"
    assert "bootstrap-actions" in json.dumps(notifier.posts[0][1].blocks)


def test_container_log_attaches_to_the_incident_of_its_application() -> None:
    # Given two open step incidents on one cluster, the older one linked to application _0007
    deps, repo, emr, logs, _ = _deps_with_cluster(
        log_text="26/11/20 01:00:00 INFO YarnClientImpl: Submitted application application_1763480000001_0007\n" + OOM
    )
    emr.steps["s-OTHERSTEP0001"] = StepInfo(step_id="s-OTHERSTEP0001", name="later", state="FAILED")
    first = _event("step-failed.json")
    second = _event("step-failed.json", stepId="s-OTHERSTEP0001")
    assert isinstance(first, EmrStepStatusChange) and isinstance(second, EmrStepStatusChange)
    handle_step_event(first, deps)
    deps.clock = lambda: datetime(2026, 11, 20, 4, 0, tzinfo=UTC)
    handle_step_event(second, deps)
    key = (
        "emr/j-123456789ABCD/containers/application_1763480000001_0007/"
        "container_e02_1763480000001_0007_01_000001/stderr.gz"
    )
    logs.put(key, "Caused by: java.io.IOException: No space left on device\n")
    raw = (EVENTS / "s3-container-log-created.json").read_text()
    event = parse_event(
        json.loads(raw.replace("elasticmapreduce/", "emr/").replace("emr-triage-example-logs", "logs-bucket"))
    )
    # When the container log of application _0007 lands
    outcome = handle_log_event(event, deps)  # type: ignore[arg-type]
    # Then it goes to the linked incident, not to the most recent one
    assert outcome.incident_id == step_incident_id(CLUSTER, STEP)
    incident = repo.get(step_incident_id(CLUSTER, STEP))
    assert incident is not None and incident.diagnosis is not None
    # And among equally ranked causes the earlier log's stays the verdict; the new one is recorded
    assert incident.diagnosis.category == "oom_heap"
    assert any(f.rule_id == "disk_full" for f in incident.findings)
    other = repo.get("j-123456789ABCD.s-OTHERSTEP0001")
    assert other is not None and other.logs_analysed == []  # the more recent incident did not get it


def test_a_log_outside_the_prefix_or_not_an_emr_log_is_ignored() -> None:
    deps, *_ = make_dependencies()
    event = parse_event(json.loads((EVENTS / "s3-step-log-created.json").read_text()))  # prefix elasticmapreduce/
    assert handle_log_event(event, deps).action == "ignored"  # type: ignore[arg-type]


def test_an_ignored_key_of_a_megabyte_is_not_echoed_whole() -> None:
    deps, *_ = make_dependencies()
    raw = json.loads((EVENTS / "s3-step-log-created.json").read_text())
    raw["detail"]["object"]["key"] = "k" * (1 << 20)
    outcome = handle_log_event(parse_event(raw), deps)  # type: ignore[arg-type]
    assert outcome.action == "ignored" and len(outcome.detail or "") < 1000


def test_an_unreadable_log_is_recorded_as_a_partial_read() -> None:
    deps, repo, _, logs, _ = _deps_with_cluster()
    logs.denied.add(f"emr/{CLUSTER}/steps/{STEP}/stderr.gz")
    event = _event("step-failed.json")
    assert isinstance(event, EmrStepStatusChange)
    handle_step_event(event, deps)
    incident = repo.get(step_incident_id(CLUSTER, STEP))
    assert incident is not None
    (read,) = incident.logs_analysed
    assert read.partial and "access denied" in read.notes[0]


def test_a_redelivered_step_event_is_told_a_duplicate_before_any_emr_call() -> None:
    # Given a failed step that was alerted and diagnosed
    deps, _, emr, _, notifier = _deps_with_cluster()
    event = _event("step-failed.json")
    assert isinstance(event, EmrStepStatusChange)
    assert handle_step_event(event, deps).action == "incident_opened"
    assert emr.calls == ["DescribeCluster", "DescribeStep"]
    # When EventBridge delivers the same event again
    outcome = handle_step_event(event, deps)
    # Then it is a duplicate, nothing is posted, and EMR is not asked again
    assert outcome.action == "duplicate" and len(notifier.posts) == 1
    assert emr.calls == ["DescribeCluster", "DescribeStep"]

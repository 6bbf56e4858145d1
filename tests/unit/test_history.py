"""Memory across runs: recurrence of a failure signature and the job's last success, in the alert."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from tests.fakes.memory import make_dependencies

from emr_triage.alerts.message import context_line
from emr_triage.exceptions import TransientError
from emr_triage.incidents.history import alert_context, job_key, recurrence
from emr_triage.incidents.service import handle_emr_event, step_incident_id
from emr_triage.models.emr import ClusterInfo, StepInfo
from emr_triage.models.events import parse_event
from emr_triage.models.incident import Incident, JobRun

EVENTS = Path(__file__).resolve().parents[2] / "events"
OOM = "26/11/20 02:13:01 ERROR Executor: Exception in task 3.0\njava.lang.OutOfMemoryError: Java heap space\n"
T0 = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)


def _step_event(cluster: str, step: str, state: str, at: datetime, name: str = "load orders") -> object:
    raw = json.loads((EVENTS / "step-failed.json").read_text())
    raw["time"] = at.strftime("%Y-%m-%dT%H:%M:%SZ")
    raw["detail"].update(clusterId=cluster, stepId=step, state=state, name=name)
    return parse_event(raw)


def _night(deps_tuple, night: int, cluster_name: str = "etl-nightly-2026-11-{:02d}"):  # type: ignore[no-untyped-def]
    """A transient cluster of the nightly job: a new cluster id and a dated name each night."""
    _, _, emr, logs, _ = deps_tuple
    cluster, step = f"j-NIGHT{night:08d}", f"s-STEP{night:09d}"
    emr.clusters[cluster] = ClusterInfo(
        cluster_id=cluster, name=cluster_name.format(night), log_uri="s3://logs-bucket/emr/"
    )
    emr.steps[step] = StepInfo(step_id=step, name="load orders", state="FAILED")
    logs.put(f"emr/{cluster}/steps/{step}/stderr.gz", OOM)
    return cluster, step


def _failed_step_incident(**fields: object) -> Incident:
    base = {
        "incident_id": "j-A.s-B",
        "kind": "step",
        "state": "FAILED",
        "severity": "high",
        "region": "us-east-1",
        "failed_at": T0,
        "opened_at": T0,
        "updated_at": T0,
        "expires_at": 0,
    }
    return Incident.model_validate({**base, **fields})


def _root_text(notifier, index: int = -1) -> str:  # type: ignore[no-untyped-def]
    return json.dumps(notifier.posts[index][1].blocks)


def test_job_identity_masks_dates_and_run_numbers() -> None:
    # Given names of the same nightly job on two nights, and a serverless job run
    # Then they are one job; a step without a cluster name is no job at all
    assert job_key(cluster_name="etl-nightly-2026-11-20", step_name="load orders 20261120") == job_key(
        cluster_name="etl-nightly-2026-11-21", step_name="load orders 20261121"
    )
    assert job_key(cluster_name="etl-1763604005", step_name="load 3f2b9c1d-6a4e-4c1b-9d2f-0a1b2c3d4e5f") == job_key(
        cluster_name="etl-1763690405", step_name="load 9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
    )
    # But sibling steps that differ by a short number are different jobs
    assert job_key(cluster_name="etl", step_name="load_table_1") != job_key(
        cluster_name="etl", step_name="load_table_2"
    )
    assert job_key(application_id="00f1982r1uukb925", job_run_name="features-20261120") == (
        "serverless:00f1982r1uukb925/features-#"
    )
    assert job_key(step_name="load orders") is None


def test_recurrence_counts_this_incident_once_and_only_earlier_ones() -> None:
    # Given other incidents 1, 3 and 20 days before, and one after (it must not count), first 60 days ago
    times = [T0 + timedelta(days=1)] + [T0 - timedelta(days=d) for d in (1, 3, 20)]
    # When the recurrence at T0 is computed
    seen = recurrence(times, T0 - timedelta(days=60), T0, 90)
    # Then this one and the two within 7 days count for 7 days, all earlier for 30, first seen 60 days ago
    assert (seen.count_7d, seen.count_30d, seen.first_seen, seen.new) == (3, 4, T0 - timedelta(days=60), False)
    # And with no earlier incident at all it is new
    assert recurrence([], None, T0, 90).new


def test_a_signature_seen_only_beyond_30_days_is_not_called_new() -> None:
    # Given an incident whose signature was last (and first) seen 45 days ago, retention 90 days
    incident = _failed_step_incident()
    # When its context line is built
    line = context_line(incident, alert_context(incident, ([], T0 - timedelta(days=45)), None, 90)) or ""
    # Then it says when it was first seen, not that it is new
    assert "New failure signature" not in line and "Seen before*: first on 2026-10-06" in line


def test_a_first_failure_says_new_signature_and_no_success_on_record() -> None:
    # Given a job that never ran before
    deps_tuple = make_dependencies()
    deps, _, _, _, notifier = deps_tuple
    cluster, step = _night(deps_tuple, 20)
    # When its step fails
    handle_emr_event(_step_event(cluster, step, "FAILED", T0), deps)  # type: ignore[arg-type]
    # Then the alert says the signature is new and no successful run is known
    text = _root_text(notifier)
    assert "New failure signature" in text and "no successful run of this step on record" in text


def test_a_repeated_failure_counts_its_recurrence_and_shows_the_last_success() -> None:
    # Given the nightly job succeeded on night 17, then failed with the same error on nights 18 and 19
    deps_tuple = make_dependencies()
    deps, repo, _, _, notifier = deps_tuple
    cluster, step = _night(deps_tuple, 17)
    ok = handle_emr_event(_step_event(cluster, step, "COMPLETED", T0 - timedelta(days=3)), deps)  # type: ignore[arg-type]
    assert ok.action == "run_recorded"
    for night, days_ago in ((18, 2), (19, 1)):
        cluster, step = _night(deps_tuple, night)
        handle_emr_event(_step_event(cluster, step, "FAILED", T0 - timedelta(days=days_ago)), deps)  # type: ignore[arg-type]
    # When it fails the same way on night 20, on a new cluster with a new id and name
    cluster, step = _night(deps_tuple, 20)
    handle_emr_event(_step_event(cluster, step, "FAILED", T0), deps)  # type: ignore[arg-type]
    # Then the alert says it is the third time in 7 days, since night 18, and when the job last succeeded
    text = _root_text(notifier)
    assert "Same failure 3 times in 7 days* (3 in 30), first on 2026-11-18" in text
    assert "last successful run of this step: 2026-11-17 02:00 UTC (3 days before this failure)" in text
    # And the store remembers the job's latest failure
    latest = repo.last_run(job_key(cluster_name="etl-nightly-2026-11-20", step_name="load orders") or "", "FAILED")
    assert latest is not None and latest.incident_id == step_incident_id(cluster, step)


def test_a_late_delivered_older_success_does_not_replace_a_newer_one() -> None:
    # Given the job's success on night 19 is remembered
    deps_tuple = make_dependencies()
    deps, repo, _, _, _ = deps_tuple
    cluster19, step19 = _night(deps_tuple, 19)
    cluster18, step18 = _night(deps_tuple, 18)
    handle_emr_event(_step_event(cluster19, step19, "COMPLETED", T0 - timedelta(days=1)), deps)  # type: ignore[arg-type]
    # When night 18's success event arrives late
    outcome = handle_emr_event(_step_event(cluster18, step18, "COMPLETED", T0 - timedelta(days=2)), deps)  # type: ignore[arg-type]
    # Then night 19 stays the last success
    assert "a later success is already remembered" in outcome.detail
    key = job_key(cluster_name="etl-nightly-2026-11-19", step_name="load orders") or ""
    last = repo.last_run(key, "SUCCEEDED")
    assert last is not None and last.cluster_id == cluster19


def test_an_unavailable_history_never_blocks_the_alert() -> None:
    # Given an incident store whose history reads fail
    deps_tuple = make_dependencies()
    deps, repo, _, _, notifier = deps_tuple
    cluster, step = _night(deps_tuple, 20)

    def broken(*args: object, **kwargs: object) -> list[datetime]:
        raise TransientError("DynamoDB Query throttled")

    repo.signature_times = broken  # type: ignore[method-assign]
    # When a step fails
    outcome = handle_emr_event(_step_event(cluster, step, "FAILED", T0), deps)  # type: ignore[arg-type]
    # Then the alert is posted, without the history line
    assert outcome.slack == "posted"
    assert "failure signature" not in _root_text(notifier) and "Same failure" not in _root_text(notifier)


def test_a_success_after_the_failure_is_said_as_such() -> None:
    # Given a failed step incident, and a success of its job remembered after it
    incident = _failed_step_incident(cluster_name="etl", step_name="load")
    later = JobRun(job_key="step:etl/load", outcome="SUCCEEDED", at=T0 + timedelta(hours=3))
    # When the context is built
    context = alert_context(incident, None, later, 90)
    # Then the success is not called "the last success before", but a recovery after
    assert context.last_success is None and context.succeeded_after == later.at


@pytest.mark.parametrize("name", [None, ""])
def test_a_serverless_success_without_a_name_is_ignored_not_guessed(name: str | None) -> None:
    # Given a job run SUCCESS event without a job run name
    deps, repo, _, _, _ = make_dependencies()
    raw = json.loads((EVENTS / "serverless-job-run-succeeded.json").read_text())
    raw["detail"]["jobRunName"] = name
    # When it is handled
    outcome = handle_emr_event(parse_event(raw), deps)  # type: ignore[arg-type]
    # Then nothing is remembered, and the outcome says why
    assert outcome.action == "ignored" and "cannot be identified" in outcome.detail and repo.runs == {}


def test_a_later_success_of_the_job_resolves_its_incident_and_says_so_in_the_thread() -> None:
    # Given the nightly job failed on night 19
    deps_tuple = make_dependencies()
    deps, repo, _, _, notifier = deps_tuple
    cluster19, step19 = _night(deps_tuple, 19)
    handle_emr_event(_step_event(cluster19, step19, "FAILED", T0 - timedelta(hours=3)), deps)  # type: ignore[arg-type]
    incident_id = step_incident_id(cluster19, step19)
    # When the rerun on a new cluster completes 3 hours later (and the event is delivered twice)
    cluster20, step20 = _night(deps_tuple, 20)
    outcome = handle_emr_event(_step_event(cluster20, step20, "COMPLETED", T0), deps)  # type: ignore[arg-type]
    again = handle_emr_event(_step_event(cluster20, step20, "COMPLETED", T0), deps)  # type: ignore[arg-type]
    # Then the incident is resolved, once, with a "recovered after 3 h" reply in its thread
    assert outcome.action == "incident_resolved" and outcome.incident_id == incident_id
    assert again.action == "run_recorded"
    incident = repo.get(incident_id)
    assert incident is not None and incident.status == "RESOLVED" and incident.recovery_posted
    recoveries = [json.dumps(m.blocks) for _, m in notifier.replies if "Recovered" in json.dumps(m.blocks)]
    assert len(recoveries) == 1 and "recovered 3 h 0 min after this failure" in recoveries[0]
    # And the root message is edited to say it is resolved
    assert "Resolved" in json.dumps(notifier.updates[-1][1].blocks)
    # And it no longer takes in the cluster's new events (it is not open)
    assert repo.open_incidents(cluster_id=cluster19) == []


def test_an_older_success_delivered_late_does_not_resolve_a_newer_failure() -> None:
    # Given the job failed on night 20
    deps_tuple = make_dependencies()
    deps, repo, _, _, _ = deps_tuple
    cluster20, step20 = _night(deps_tuple, 20)
    handle_emr_event(_step_event(cluster20, step20, "FAILED", T0), deps)  # type: ignore[arg-type]
    # When night 19's success event arrives late
    cluster19, step19 = _night(deps_tuple, 19)
    outcome = handle_emr_event(_step_event(cluster19, step19, "COMPLETED", T0 - timedelta(days=1)), deps)  # type: ignore[arg-type]
    # Then the failure stays open
    assert outcome.action == "run_recorded"
    incident = repo.get(step_incident_id(cluster20, step20))
    assert incident is not None and incident.status == "OPEN"


def test_concurrent_successes_post_one_recovery_reply() -> None:
    # Given a failed job, and a second delivery of its rerun's success that runs while the first is
    # posting the recovery reply (as two Lambdas would)
    deps_tuple = make_dependencies()
    deps, _, _, _, notifier = deps_tuple
    cluster19, step19 = _night(deps_tuple, 19)
    handle_emr_event(_step_event(cluster19, step19, "FAILED", T0 - timedelta(hours=3)), deps)  # type: ignore[arg-type]
    cluster20, step20 = _night(deps_tuple, 20)
    success = _step_event(cluster20, step20, "COMPLETED", T0)
    original_reply = notifier.reply
    nested = {"done": False}

    def reply_while_another_runs(ref, message):  # type: ignore[no-untyped-def]
        if "Recovered" in json.dumps(message.blocks) and not nested["done"]:
            nested["done"] = True
            handle_emr_event(success, deps)  # type: ignore[arg-type]
        return original_reply(ref, message)

    notifier.reply = reply_while_another_runs  # type: ignore[method-assign]
    # When the first delivery is handled
    handle_emr_event(success, deps)  # type: ignore[arg-type]
    # Then exactly one recovery reply went out
    assert nested["done"]
    assert sum("Recovered" in json.dumps(m.blocks) for _, m in notifier.replies) == 1

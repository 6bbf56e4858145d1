"""Runs over time with in-memory fakes: baselines, the slow-run check, its alert, and how it ends."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from tests.fakes.memory import FakeFollowUps, MemoryRunStore, make_dependencies

from emr_triage.incidents.emr_events import handle_job_run_event, handle_step_event
from emr_triage.incidents.log_checks import handle_follow_up
from emr_triage.incidents.runs import expectation, percentile
from emr_triage.models.emr import ClusterInfo, JobRunInfo, StepInfo
from emr_triage.models.events import EmrServerlessJobRunStateChange, EmrStepStatusChange, parse_event
from emr_triage.models.runs import ActiveRun

EVENTS = Path(__file__).resolve().parents[2] / "events"
CLUSTER = "j-123456789ABCD"
START = datetime(2026, 11, 1, 2, 0, tzinfo=UTC)
MIN = 60


def _step_event(step: str, state: str, at: datetime, name: str = "load-orders") -> EmrStepStatusChange:
    raw = json.loads((EVENTS / "step-failed.json").read_text())
    raw["detail"].update(stepId=step, state=state, name=name)
    raw["time"] = at.strftime("%Y-%m-%dT%H:%M:%SZ")
    event = parse_event(raw)
    assert isinstance(event, EmrStepStatusChange)
    return event


def _deps():  # type: ignore[no-untyped-def]
    deps, repo, emr, logs, notifier = make_dependencies(now=START)
    deps.runs = MemoryRunStore()
    deps.follow_ups = FakeFollowUps()
    emr.clusters[CLUSTER] = ClusterInfo(cluster_id=CLUSTER, name="orders-etl", log_uri="s3://logs-bucket/emr/")
    return deps, repo, emr, logs, notifier


def _history(deps, emr, runs: int, minutes: list[int] | None = None) -> datetime:  # type: ignore[no-untyped-def]
    """``runs`` earlier runs of the job, each seen starting and completing (one a day)."""
    for number in range(runs):
        step = f"s-HIST{number:04d}"
        emr.steps[step] = StepInfo(step_id=step, name="load-orders", state="COMPLETED")
        began = START + timedelta(days=number)
        took = (minutes[number] if minutes else 40) * MIN
        assert handle_step_event(_step_event(step, "RUNNING", began), deps).action == "run_started"
        assert handle_step_event(_step_event(step, "COMPLETED", began + timedelta(seconds=took)), deps).action in (
            "run_recorded",
            "incident_resolved",
        )
    deps.follow_ups.scheduled.clear()  # (the checks of the runs that had a baseline: they ended in time)
    return START + timedelta(days=runs)


@pytest.mark.parametrize(
    ("durations", "tags", "limit"),
    [
        ([40 * MIN] * 4, {}, None),  # 4 successful runs: no baseline
        ([40 * MIN] * 5, {}, 60 * MIN),  # 1.5 x p95 (60 min) beats p50 + 15 min (55 min)
        ([10 * MIN] * 5, {}, 25 * MIN),  # short job: p50 + 15 min (1.5 x 10 = 15)
        ([40 * MIN] * 3, {"emr-triage:max-runtime-minutes": "90"}, 90 * MIN),  # the tag wins, even without history
        ([40 * MIN] * 5, {"emr-triage:max-runtime-minutes": "ninety"}, 60 * MIN),  # a bad tag is ignored
        ([40 * MIN] * 5, {"emr-triage:max-runtime-minutes": "0"}, 60 * MIN),
    ],
)
def test_the_slow_limit_is_the_tag_else_the_jobs_history(durations, tags, limit) -> None:  # type: ignore[no-untyped-def]
    expected = expectation(durations, tags)
    if limit is None:
        assert expected is None
        return
    assert expected is not None and expected.limit_seconds == limit


def test_percentiles_are_nearest_rank_over_the_last_20() -> None:
    values = list(range(1, 101))
    assert percentile(values, 0.95) == 95 and percentile(values, 0.5) == 50
    expected = expectation([*([100] * 18), 10_000, 10_000, *([99_999] * 10)], {})
    assert expected is not None and expected.runs == 20 and expected.p95_seconds == 10_000  # only the newest 20


def test_a_run_with_fewer_than_five_successes_and_no_tag_never_alerts_as_slow() -> None:
    deps, _, emr, _, notifier = _deps()
    began = _history(deps, emr, 4)
    emr.steps["s-SLOWRUN00001"] = StepInfo(step_id="s-SLOWRUN00001", name="load-orders", state="RUNNING")
    outcome = handle_step_event(_step_event("s-SLOWRUN00001", "RUNNING", began), deps)
    assert outcome.action == "run_started" and "4 successful run(s) on record, 5 needed" in outcome.detail
    assert deps.follow_ups.scheduled == []
    # Even days later, nothing is alerted: no check was ever scheduled, and a stray one does nothing
    deps.clock.now = began + timedelta(days=2)
    from emr_triage.models.events import FollowUp

    stray = handle_follow_up(FollowUp(incident_id=f"{CLUSTER}.s-SLOWRUN00001", check=1, checks=1, purpose="run"), deps)
    assert stray.action == "duplicate" and notifier.posts == []


def test_a_slow_step_is_alerted_once_when_still_running_then_edited_when_it_finishes_late() -> None:
    deps, _, emr, logs, notifier = _deps()
    began = _history(deps, emr, 6, [38, 40, 41, 42, 44, 50])
    step = "s-SLOWRUN00001"
    emr.steps[step] = StepInfo(step_id=step, name="load-orders", state="RUNNING")
    deps.clock.now = began
    outcome = handle_step_event(_step_event(step, "RUNNING", began), deps)
    # p50 41 min (median of 6: 41.5 -> 41), p95 50 min: slow past max(75, 56) = 75 min
    assert "after 1 h 15 min" in outcome.detail and "usually 41 min, p95 50 min" in outcome.detail
    ((check, delay),) = deps.follow_ups.scheduled
    assert check.purpose == "run" and delay == 900  # SQS's most: chained
    deps.follow_ups.scheduled.clear()
    # Delivered 15 min in: not due, sent again with the time left
    deps.clock.now = began + timedelta(minutes=15)
    assert handle_follow_up(check, deps).action == "run_checked"
    assert deps.follow_ups.scheduled[-1][1] == 900
    deps.follow_ups.scheduled.clear()
    # Due, still RUNNING: alerted, with what the driver log says so far
    logs.put(
        f"emr/{CLUSTER}/steps/{step}/stderr.gz",
        "".join(
            f"26/11/07 {2 + m // 60:02d}:{m % 60:02d}:00 WARN TaskSchedulerImpl: Initial job has not accepted any "
            "resources; check your cluster UI to ensure that workers are registered and have sufficient resources\n"
            for m in range(0, 76, 1)
        ),
    )
    deps.clock.now = began + timedelta(minutes=76)
    alerted = handle_follow_up(check, deps)
    assert alerted.action == "run_slow" and alerted.slack == "posted"
    ((channel, message),) = notifier.posts
    text = json.dumps(message.blocks)
    assert channel == "#alerts" and "Running 1 h 16 min" in text and "usually 41 min, p95 50 min" in text
    assert "no executors accepted" in text
    # Delivered again: nothing more
    assert handle_follow_up(check, deps).action == "duplicate" and len(notifier.posts) == 1
    # It finishes at 1 h 42 min: the alert is edited, and the duration joins the baseline
    done = handle_step_event(_step_event(step, "COMPLETED", began + timedelta(minutes=102)), deps)
    assert done.action in ("run_recorded", "incident_resolved")
    ((ref, edit),) = notifier.updates
    assert ref.ts == "17000.0001" and "Finished late" in edit.text and "1 h 42 min" in json.dumps(edit.blocks)
    assert deps.runs.durations("step:orders-etl/load-orders", 20)[0] == 102 * MIN


def test_a_run_that_ended_before_its_check_is_not_alerted() -> None:
    deps, _, emr, _, notifier = _deps()
    began = _history(deps, emr, 5)
    emr.steps["s-ENDEDRUN0001"] = StepInfo(step_id="s-ENDEDRUN0001", name="load-orders", state="FAILED")
    handle_step_event(_step_event("s-ENDEDRUN0001", "RUNNING", began), deps)
    ((check, _),) = deps.follow_ups.scheduled
    deps.clock.now = began + timedelta(hours=3)
    outcome = handle_follow_up(check, deps)
    assert outcome.action == "run_checked" and "FAILED now, not running" in outcome.detail
    assert notifier.posts == []


def test_a_slow_run_that_fails_turns_its_slow_alert_into_the_failure_alert() -> None:
    deps, repo, emr, _, notifier = _deps()
    began = _history(deps, emr, 5)
    step = "s-HANGING00001"
    emr.steps[step] = StepInfo(step_id=step, name="load-orders", state="RUNNING")
    handle_step_event(_step_event(step, "RUNNING", began), deps)
    ((check, _),) = deps.follow_ups.scheduled
    deps.follow_ups.scheduled.clear()
    deps.clock.now = began + timedelta(hours=1)
    assert handle_follow_up(check, deps).action == "run_slow"
    slow_ts = "17000.0001"
    # Killed: the step fails; its failure is the slow alert's message, edited, not a second one
    emr.steps[step] = StepInfo(step_id=step, name="load-orders", state="FAILED")
    failed = handle_step_event(_step_event(step, "FAILED", began + timedelta(hours=1, minutes=5)), deps)
    assert failed.action == "incident_opened"
    assert len(notifier.posts) == 1 and notifier.updates and notifier.updates[-1][0].ts == slow_ts
    text = json.dumps(notifier.updates[-1][1].blocks)
    assert "EMR step failed" in text and "alerted as slow at" in text
    incident = repo.get(f"{CLUSTER}.{step}")
    assert incident is not None and incident.slack is not None and incident.slack.ts == slow_ts
    # and the run's end is remembered, failed
    ended = deps.runs.finished_between(began, began + timedelta(days=1))
    assert [(r.run_id, r.outcome, r.slow) for r in ended] == [(f"{CLUSTER}.{step}", "FAILED", True)]


def test_a_job_runs_tag_sets_its_limit_without_history() -> None:
    deps, _, emr, _, notifier = _deps()
    raw = json.loads((EVENTS / "serverless-job-run-failed.json").read_text())
    raw["detail"]["state"] = "RUNNING"
    event = parse_event(raw)
    assert isinstance(event, EmrServerlessJobRunStateChange)
    detail = event.detail
    emr.job_runs[detail.job_run_id] = JobRunInfo(
        application_id=detail.application_id,
        job_run_id=detail.job_run_id,
        name="features",
        state="RUNNING",
        tags={"emr-triage:max-runtime-minutes": "30"},
    )
    outcome = handle_job_run_event(event, deps)
    assert outcome.action == "run_started" and "after 30 min (limit 30 min (tag" in outcome.detail
    ((check, _),) = deps.follow_ups.scheduled
    deps.clock.now = event.time + timedelta(minutes=31)
    assert handle_follow_up(check, deps).action == "run_slow"
    assert "Slow: EMR Serverless job run features" in json.dumps(notifier.posts[0][1].blocks)


def test_a_duplicate_running_event_is_watched_once() -> None:
    deps, _, emr, _, _ = _deps()
    began = _history(deps, emr, 5)
    emr.steps["s-DUPLICATE0001"] = StepInfo(step_id="s-DUPLICATE0001", name="load-orders", state="RUNNING")
    first = handle_step_event(_step_event("s-DUPLICATE0001", "RUNNING", began), deps)
    again = handle_step_event(_step_event("s-DUPLICATE0001", "RUNNING", began), deps)
    assert first.action == "run_started" and again.action == "duplicate"
    assert len(deps.follow_ups.scheduled) == 1


class _CountingRunStore(MemoryRunStore):
    """Counts the reads of a run's item: ``get`` reads it once, ``update`` once per attempt."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    def get(self, run_id: str) -> ActiveRun | None:
        self.reads += 1
        return super().get(run_id)

    def update(self, run_id: str, mutate: Callable[[ActiveRun], ActiveRun | None]) -> ActiveRun | None:
        self.reads += 1
        return super().update(run_id, mutate)


def test_a_watched_step_that_fails_reads_its_run_twice_not_three_times() -> None:
    # Given a step seen starting (its run's item is there)
    deps, _, emr, _, _ = _deps()
    deps.runs = store = _CountingRunStore()
    step = "s-FAILS0000001"
    emr.steps[step] = StepInfo(step_id=step, name="load-orders", state="RUNNING")
    handle_step_event(_step_event(step, "RUNNING", START), deps)
    store.reads = 0
    # When it fails
    emr.steps[step] = StepInfo(step_id=step, name="load-orders", state="FAILED")
    assert (
        handle_step_event(_step_event(step, "FAILED", START + timedelta(minutes=9)), deps).action == "incident_opened"
    )
    # Then its run is read once to see whether it was alerted as slow, once to mark it ended (which used to
    # read it first, then again inside the conditional update), and it is marked ended
    assert store.reads == 2
    run = store.get(f"{CLUSTER}.{step}")
    assert run is not None and run.ended_state == "FAILED"

"""The weekly digest over a generated month of history: its figures, counted here again from the history
itself, its messages per channel, the chart in the thread, and one digest per channel and week."""

from __future__ import annotations

import io
import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from statistics import median

import pytest
from tests.fakes.memory import MemoryRunStore, make_dependencies

from emr_triage.digest.figures import compute
from emr_triage.digest.service import figures_by_channel, handle_digest
from emr_triage.local.history import generate

UNTIL = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)  # a Monday, 08:00 UTC: the schedule's default
WEEK = timedelta(days=7)


@pytest.fixture
def month():  # type: ignore[no-untyped-def]
    history = generate(until=UNTIL, days=30, seed=8)
    deps, repo, _, _, notifier = make_dependencies(now=UNTIL)
    deps.runs = MemoryRunStore()
    for incident in history.incidents:
        assert repo.create(incident)
    for run in history.runs:
        deps.runs.record_finished(run, 0)
    return history, deps, notifier


def _channel(history, run) -> str:  # type: ignore[no-untyped-def]
    """The channel of a run's job as the history generated it (its failures' tag), else the default."""
    tags = {i.incident_id: i.tags["emr-triage:slack-channel"] for i in history.incidents}
    by_job = {r.job_key: tags[r.incident_id] for r in history.runs if r.incident_id}
    return by_job.get(run.job_key, "#alerts")


def test_the_figures_are_what_the_history_says(month) -> None:  # type: ignore[no-untyped-def]
    history, deps, _ = month
    incidents = {i.incident_id: i for i in history.incidents}
    figures = figures_by_channel(deps, UNTIL)
    assert set(figures) == {"#orders-alerts", "#data-platform-alerts", "#alerts"}
    for channel, got in figures.items():
        mine = [r for r in history.runs if _channel(history, r) == channel]
        week = [r for r in mine if UNTIL - WEEK <= r.ended_at < UNTIL]
        before = [r for r in mine if UNTIL - 2 * WEEK <= r.ended_at < UNTIL - WEEK]
        failed = [r for r in week if r.outcome == "FAILED"]
        assert got.runs == len(week), channel
        assert got.failures == Counter(incidents[r.incident_id].diagnosis.category for r in failed), channel
        assert got.previous_failures == Counter(
            incidents[r.incident_id].diagnosis.category for r in before if r.outcome == "FAILED"
        ), channel
        assert got.slow_runs == Counter(r.job_key for r in week if r.slow), channel
        # per day: 7 days, Monday to Sunday, adding up to the week's failures
        assert len(got.per_day) == 7 and sum(sum(c.values()) for c in got.per_day.values()) == len(failed)
        # flaky: jobs that both failed and succeeded this week, by failure rate
        flaky = []
        for job in {r.job_key for r in week}:
            runs = [r for r in week if r.job_key == job]
            failures = sum(r.outcome == "FAILED" for r in runs)
            if 0 < failures < len(runs):
                flaky.append((-failures / len(runs), -failures, job))
        assert [j.job_key for j in got.flaky] == [job for *_, job in sorted(flaky)][:5], channel
        acknowledged = [
            (incidents[r.incident_id].acknowledged_at - incidents[r.incident_id].opened_at).total_seconds()
            for r in failed
            if incidents[r.incident_id].acknowledged_at
        ]
        assert sorted(got.acknowledge_seconds) == sorted(int(s) for s in acknowledged)
        if acknowledged:
            assert abs(median(got.acknowledge_seconds) - median(acknowledged)) < 1
    # (the history is not trivial: failures, flaky jobs and slow runs in the week)
    assert sum(f.total for f in figures.values()) >= 4 and any(f.flaky for f in figures.values())
    assert any(f.slow_runs for f in figures.values()) and any(f.acknowledge_seconds for f in figures.values())
    assert figures["#alerts"].total == 0 and figures["#alerts"].runs == 7  # refresh-dashboards, daily


def test_time_to_recover_is_failure_to_the_jobs_next_success() -> None:
    from emr_triage.models.runs import FinishedRun

    at = UNTIL - timedelta(days=3)

    def run(hours: float, outcome: str, job: str = "step:a/b") -> FinishedRun:
        return FinishedRun(run_id=f"r{hours}{job}", job_key=job, outcome=outcome, ended_at=at + timedelta(hours=hours))  # type: ignore[arg-type]

    runs = [run(0, "FAILED"), run(2, "FAILED"), run(5, "SUCCEEDED"), run(6, "FAILED", "step:c/d")]
    figures = compute(runs, {}, since=UNTIL - WEEK, until=UNTIL)
    # one streak of two failures recovered 5 h after its first; the other job has not recovered
    assert figures.recover_seconds == [5 * 3600] and figures.unrecovered == 1
    assert [(j.job_key, j.failures, j.runs) for j in figures.flaky] == [("step:a/b", 2, 3)]
    assert figures.failures == Counter({"undiagnosed": 3})


def test_each_channel_gets_its_digest_once_with_the_chart_in_its_thread(month) -> None:  # type: ignore[no-untyped-def]
    from PIL import Image

    _, deps, notifier = month
    outcome = handle_digest(UNTIL + timedelta(minutes=3), deps)  # the schedule fires a little late
    assert outcome.action == "digest_posted"
    channels = [channel for channel, _ in notifier.posts]
    assert sorted(channels) == ["#alerts", "#data-platform-alerts", "#orders-alerts"]
    orders = next(m for c, m in notifier.posts if c == "#orders-alerts")
    text = json.dumps(orders.blocks)
    assert "Weekly EMR digest: Mon 30 Nov" in text and "Sun 06 Dec 2026" in text
    assert "Failures by category" in text and "Flakiest jobs" in text and "Time to acknowledge" in text
    # the charts: one per channel with failures, PNGs of the size drawn, not blank
    assert len(notifier.uploads) == 2
    for _, filename, content in notifier.uploads:
        assert filename.endswith(".png") and isinstance(content, bytes) and content.startswith(b"\x89PNG")
        image = Image.open(io.BytesIO(content)).convert("RGB")
        assert image.size == (1000, 500) and len(set(image.get_flattened_data())) > 20
    # the default channel had no failure: its digest says so, without a chart
    quiet = next(m for c, m in notifier.posts if c == "#alerts")
    assert "0* failure(s)" in json.dumps(quiet.blocks)
    # Delivered again (a retried schedule): nothing more
    again = handle_digest(UNTIL + timedelta(minutes=4), deps)
    assert again.action == "duplicate" and len(notifier.posts) == 3


def test_a_digest_that_slack_refuses_is_posted_by_the_retry(month) -> None:  # type: ignore[no-untyped-def]
    from emr_triage.exceptions import DeliveryError

    _, deps, notifier = month
    notifier.fail_with = DeliveryError("Slack is down")
    with pytest.raises(DeliveryError):
        handle_digest(UNTIL, deps)
    notifier.fail_with = None
    assert handle_digest(UNTIL, deps).action == "digest_posted"
    assert len(notifier.posts) == 3


def test_a_channel_slack_refuses_for_good_does_not_stop_the_others(month) -> None:  # type: ignore[no-untyped-def]
    from emr_triage.exceptions import SlackConfigurationError

    _, deps, notifier = month
    original = notifier.post

    def post(channel, message):  # type: ignore[no-untyped-def]
        if channel == "#orders-alerts":
            raise SlackConfigurationError("channel_not_found: invite the bot")
        return original(channel, message)

    notifier.post = post  # type: ignore[method-assign]
    outcome = handle_digest(UNTIL, deps)
    assert outcome.action == "digest_posted" and "#orders-alerts" not in outcome.detail
    assert sorted(c for c, _ in notifier.posts) == ["#alerts", "#data-platform-alerts"]

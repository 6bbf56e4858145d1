"""A running application's progress and stuck signatures, read from its driver log.

The real logs of ``tests/fixtures/progress`` (made by ``tests/corpus/spark_progress_runs.py``, labelled in
its README before the tracker read them) give each signature as Spark 3.5 writes it; the synthetic cases
pin the thresholds, the time formats and the hostile inputs.
"""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from emr_triage.analysis.progress import (
    MAX_LINE_CHARS,
    MAX_PROGRESS_CHARS,
    MAX_STAGES,
    NO_EXECUTORS,
    NO_TASK_FINISHED,
    STAGE_RETRIED,
    STRAGGLER,
    Progress,
    ProgressTracker,
    read_progress,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "progress"
CAPTURES = json.loads((FIXTURES / "captures.json").read_text(encoding="utf-8"))
T0 = datetime(2024, 6, 1, 10, 0, 0, tzinfo=UTC)
WARNING = (
    "WARN TaskSchedulerImpl: Initial job has not accepted any resources; check your cluster UI to ensure "
    "that workers are registered and have sufficient resources"
)


def _fixture(name: str) -> list[str]:
    with gzip.open(FIXTURES / f"{name}.log.gz", "rt", encoding="utf-8", errors="replace") as f:
        return f.readlines()


def _captured(name: str) -> datetime:
    return datetime.fromisoformat(CAPTURES[name]["captured_at"])


def _stamp(line: str) -> datetime:
    return datetime.strptime(line[:17], "%y/%m/%d %H:%M:%S").replace(tzinfo=UTC)


def _at(seconds: float, message: str) -> str:
    """A log4j line of Spark's default pattern, ``seconds`` after T0."""
    return f"{T0 + timedelta(seconds=seconds):%y/%m/%d %H:%M:%S} {message}\n"


def _started(seconds: float, task: int, stage: str, tid: int) -> str:
    return _at(
        seconds,
        f"INFO TaskSetManager: Starting task {task}.0 in stage {stage} (TID {tid}) "
        f"(ip-10-0-0-1.ec2.internal, executor 1, partition {task}, PROCESS_LOCAL, 8972 bytes)",
    )


def _finished(seconds: float, task: int, stage: str, tid: int, done: int, total: int) -> str:
    return _at(
        seconds,
        f"INFO TaskSetManager: Finished task {task}.0 in stage {stage} (TID {tid}) in 812 ms on "
        f"ip-10-0-0-1.ec2.internal (executor 1) ({done}/{total})",
    )


def _stage_of(n: int, stage: str = "2.0", finished: int | None = None, start: float = 0.0) -> list[str]:
    """A stage of n tasks, all started at ``start``, the first ``finished`` of them done a second apart."""
    lines = [_at(start, f"INFO TaskSchedulerImpl: Adding task set {stage} with {n} tasks resource profile 0")]
    lines += [_started(start, i, stage, 100 + i) for i in range(n)]
    lines += [_finished(start + 1 + i, i, stage, 100 + i, i + 1, n) for i in range(n if finished is None else finished)]
    return lines


# ---------------------------------------------------------------------------------------------------------
# Real logs
# ---------------------------------------------------------------------------------------------------------


def test_every_fixture_is_small_and_has_its_capture_time() -> None:
    names = sorted(p.name.removesuffix(".log.gz") for p in FIXTURES.glob("*.log.gz"))
    assert names == sorted(CAPTURES)
    assert len(names) == 5
    for name in names:
        assert (FIXTURES / f"{name}.log.gz").stat().st_size < 200_000, name
        assert CAPTURES[name]["spark_version"].startswith("3.5.")


def test_a_standalone_app_whose_executors_fit_no_worker_shows_no_executors() -> None:
    # Given: spark.executor.memory=4g on a cluster whose only worker has 1 GB, copied 6.5 min in
    lines = _fixture("standalone-no-executors")

    # When
    progress = read_progress(lines, now=_captured("standalone-no-executors"))

    # Then: Spark's own warning, from its first to its last, and about six and a half minutes of it
    assert progress.signature == NO_EXECUTORS
    assert progress.minutes is not None and 6.0 <= progress.minutes < 7.5
    assert progress.since is not None and progress.last_seen is not None
    assert timedelta(minutes=6) <= progress.last_seen - progress.since < timedelta(minutes=7)
    assert progress.last_time is not None and progress.last_time - progress.last_seen < timedelta(seconds=16)
    assert progress.summary == 'no executors accepted for 6 min (Spark: "Initial job has not accepted any resources")'
    # The warnings go on every 15 s, so the log's own end tells it as well
    assert read_progress(lines).signature == NO_EXECUTORS


def test_the_first_minutes_of_warnings_are_not_yet_a_signature() -> None:
    # Given: the same log cut 3 minutes after its first warning
    lines = _fixture("standalone-no-executors")
    first = _stamp(next(line for line in lines if "Initial job has not accepted" in line))
    cut = [line for line in lines if _stamp(line) < first + timedelta(minutes=3)]

    # When
    progress = read_progress(cut)

    # Then
    assert progress.signature is None
    assert progress.minutes is None


def test_a_stage_waiting_on_its_last_task_shows_a_straggler() -> None:
    # Given: 19 of 20 tasks done in a second, the 20th asleep; copied 11 minutes later
    lines = _fixture("local-straggler")

    # When
    progress = read_progress(lines, now=_captured("local-straggler"))

    # Then
    assert progress.signature == STRAGGLER
    assert (progress.stage, progress.tasks, progress.retries) == (1, (19, 20), 0)
    assert progress.minutes is not None and 10.0 <= progress.minutes < 12.0
    assert progress.summary.startswith("stage 1 straggling: 19/20 tasks finished, none for 1")
    # The driver writes nothing while it waits: without the time the log was read, nothing shows yet
    assert read_progress(lines).signature is None


def test_a_stage_whose_every_task_hangs_shows_no_task_finished() -> None:
    # Given: after a warm-up job, 8 tasks that all sleep half an hour; copied 16.7 min after they started
    lines = _fixture("local-no-task-finished")

    # When
    progress = read_progress(lines, now=_captured("local-no-task-finished"))

    # Then: measured from the warm-up's last task, the newest one that finished
    assert progress.signature == NO_TASK_FINISHED
    assert (progress.stage, progress.tasks) == (0, (4, 4))
    assert progress.minutes is not None and 15.0 <= progress.minutes < 18.0
    assert progress.summary.startswith("no task finished for 1")
    assert progress.summary.endswith(" min (the last: stage 0.0, 4/4 tasks)")
    assert progress.last_progress is not None and "Starting task 1.0 in stage 1.0" in progress.last_progress


def test_an_executor_killed_mid_shuffle_shows_the_stage_retried() -> None:
    # Given: an executor JVM SIGKILLed while the reduce stage ran: fetch failures, stages 1 and 2 resubmitted
    lines = _fixture("standalone-stage-retried")

    # When
    progress = read_progress(lines, now=_captured("standalone-stage-retried"))

    # Then: both reached attempt 1; the newest retried one is named
    assert progress.signature == STAGE_RETRIED
    assert (progress.stage, progress.retries) == (2, 1)
    assert progress.summary == "stage 2 retried 1 time"
    assert progress.last_progress is not None and "in stage 8.0" in progress.last_progress


def test_a_healthy_run_shows_its_last_progress_line() -> None:
    # Given: a standalone run making steady progress, ISO 8601 timestamps
    lines = _fixture("standalone-healthy")

    # When
    progress = read_progress(lines, now=_captured("standalone-healthy"))

    # Then
    assert progress.signature is None
    assert progress.last_progress == (
        "INFO TaskSetManager: Finished task 4.0 in stage 63.0 (TID 380) in 185 ms on 127.0.0.1 (executor 0) (5/6)"
    )
    assert progress.last_progress_time == datetime(2026, 12, 7, 18, 21, 11, 462000, tzinfo=UTC)
    assert progress.summary == f"last progress at 2026-12-07 18:21:11 UTC: {progress.last_progress}"


# ---------------------------------------------------------------------------------------------------------
# Each signature, its threshold, and what it is not
# ---------------------------------------------------------------------------------------------------------


def test_no_executors_after_five_minutes_of_warnings() -> None:
    lines = [_at(15 * i, WARNING) for i in range(1, 25)]  # 15 s .. 6 min

    progress = read_progress(lines)

    assert progress.signature == NO_EXECUTORS
    assert progress.minutes == pytest.approx(5.75)
    assert progress.since == T0 + timedelta(seconds=15)
    assert progress.last_seen == T0 + timedelta(minutes=6)
    assert progress.summary.startswith("no executors accepted for 5 min (Spark: ")
    assert read_progress(lines[:16]).signature is None  # 15 s .. 4 min: 3.75 min of warnings


def test_no_executors_measured_up_to_now_when_the_log_stopped() -> None:
    lines = [_at(15, WARNING), _at(30, WARNING)]

    progress = read_progress(lines, now=T0 + timedelta(minutes=47, seconds=15))

    assert progress.signature == NO_EXECUTORS
    assert progress.minutes == pytest.approx(47.0)
    assert progress.summary.startswith("no executors accepted for 47 min")


def test_executors_accepted_after_the_warnings_are_not_stuck() -> None:
    lines = [_at(15 * i, WARNING) for i in range(1, 25)] + _stage_of(4, "0.0", start=370)

    progress = read_progress(lines)

    assert progress.signature is None
    assert progress.last_progress is not None and "(4/4)" in progress.last_progress


def test_a_second_context_that_gets_no_executors_is_stuck_again() -> None:
    # Given: a first session waited for executors, then ran; a second one, built later, gets none
    lines = [_at(15, WARNING), _at(30, WARNING), *_stage_of(2, "0.0", start=40)]
    lines += [_at(600 + 15 * i, WARNING) for i in range(1, 25)]

    # When
    progress = read_progress(lines)

    # Then: measured from the second streak's first warning
    assert progress.signature == NO_EXECUTORS
    assert progress.since == T0 + timedelta(seconds=615)
    assert progress.minutes == pytest.approx(5.75)


def test_no_task_finished_for_twenty_minutes() -> None:
    lines = [*_stage_of(4, "0.0"), *_stage_of(8, "1.0", finished=0, start=60)]
    lines.append(_at(20 * 60 + 4, "INFO BlockManagerInfo: Removed broadcast_3_piece0 on 10.0.0.1:40000"))

    progress = read_progress(lines)

    assert progress.signature == NO_TASK_FINISHED
    assert progress.minutes == pytest.approx(20.0)
    assert progress.since == T0 + timedelta(seconds=4)
    assert (progress.stage, progress.tasks) == (0, (4, 4))
    assert progress.summary == "no task finished for 20 min (the last: stage 0.0, 4/4 tasks)"
    assert read_progress(lines, now=T0).signature == NO_TASK_FINISHED  # a "now" before the log's end is ignored
    assert read_progress(lines[:-1], now=T0 + timedelta(minutes=14)).signature is None


def test_no_task_finished_since_the_first_started() -> None:
    lines = _stage_of(3, "0.0", finished=0)

    progress = read_progress(lines, now=T0 + timedelta(minutes=16))

    assert progress.signature == NO_TASK_FINISHED
    assert progress.minutes == pytest.approx(16.0)
    assert progress.since == T0
    assert progress.summary == "no task finished for 16 min (none has finished since the first started)"


def test_no_task_started_is_not_no_task_finished() -> None:
    lines = [
        _at(
            0,
            "INFO DAGScheduler: Submitting ResultStage 0 (MapPartitionsRDD[3] at sum at job.py:3), "
            "which has no missing parents",
        )
    ]

    progress = read_progress(lines, now=T0 + timedelta(hours=2))

    assert progress.signature is None
    assert progress.summary.startswith("last progress at 2024-06-01 10:00:00 UTC, 120 min before now: INFO DAG")


def test_a_straggler_after_ten_minutes() -> None:
    lines = _stage_of(10, "2.0", finished=9)  # the ninth finished at 9 s

    progress = read_progress(lines, now=T0 + timedelta(minutes=12, seconds=9))

    assert progress.signature == STRAGGLER
    assert (progress.stage, progress.tasks, progress.minutes) == (2, (9, 10), pytest.approx(12.0))
    assert progress.since == T0 + timedelta(seconds=9)
    assert progress.summary == "stage 2 straggling: 9/10 tasks finished, none for 12 min"
    assert read_progress(lines, now=T0 + timedelta(minutes=9)).signature is None


def test_a_straggler_outranks_no_task_finished() -> None:
    progress = read_progress(_stage_of(10, "2.0", finished=9), now=T0 + timedelta(minutes=30))

    assert progress.signature == STRAGGLER
    assert progress.minutes == pytest.approx(30.0 - 9 / 60)


def test_most_tasks_still_running_is_no_straggler() -> None:
    lines = _stage_of(10, "2.0", finished=8)

    assert read_progress(lines, now=T0 + timedelta(minutes=12)).signature is None
    assert read_progress(lines, now=T0 + timedelta(minutes=16)).signature == NO_TASK_FINISHED


def test_a_stage_that_finished_or_failed_is_no_straggler() -> None:
    lines = [
        *_stage_of(10, "2.0", finished=9),
        _at(20, "INFO DAGScheduler: ResultStage 2 (collect at job.py:9) failed in 19.1 s due to Job aborted"),
    ]

    progress = read_progress(lines, now=T0 + timedelta(minutes=12))

    assert progress.signature is None


def test_a_stage_retried_twice() -> None:
    lines = [
        _started(0, 0, "3.0", 1),
        _at(
            5,
            "INFO DAGScheduler: Resubmitting ShuffleMapStage 3 (map at job.py:4) and ResultStage 4 "
            "(collect at job.py:5) due to fetch failure",
        ),
        _at(6, "INFO DAGScheduler: Resubmitting failed stages"),
        _started(6, 0, "3.1", 2),
        _started(9, 0, "3.2", 3),
        _finished(10, 0, "3.2", 3, 1, 2),
    ]

    progress = read_progress(lines)

    assert progress.signature == STAGE_RETRIED
    assert (progress.stage, progress.retries) == (3, 2)
    assert progress.summary == "stage 3 retried 2 times"
    assert progress.last_progress is not None and "(1/2)" in progress.last_progress


def test_a_resubmission_alone_counts_as_a_retry() -> None:
    line = _at(
        0,
        "INFO DAGScheduler: Resubmitting ShuffleMapStage 7 (parquet at job.py:12) "
        "because some of its tasks had failed: 0, 3",
    )

    progress = read_progress([line])

    assert (progress.signature, progress.stage, progress.retries) == (STAGE_RETRIED, 7, 1)


def test_a_stage_named_with_its_retry() -> None:
    progress = read_progress(["Stage 5 (retry 3) is still running: 12/40 tasks\n"])

    assert (progress.signature, progress.stage, progress.retries) == (STAGE_RETRIED, 5, 3)


def test_a_new_attempt_starts_its_stage_counters_afresh() -> None:
    # Given: attempt 0 got to 9/10, then attempt 1 of the same stage started its 4 tasks
    lines = [*_stage_of(10, "2.0", finished=9), *_stage_of(4, "2.1", finished=0, start=30)]

    # When: 12 minutes later
    progress = read_progress(lines, now=T0 + timedelta(minutes=12))

    # Then: attempt 1 has finished nothing: no straggler, the retry is what shows
    assert (progress.signature, progress.stage, progress.retries) == (STAGE_RETRIED, 2, 1)


def test_a_signature_outranks_the_retry() -> None:
    lines = [_started(0, 0, "3.1", 1), _finished(5, 0, "3.1", 1, 1, 1)]

    progress = read_progress(lines, now=T0 + timedelta(minutes=15, seconds=5))

    assert progress.signature == NO_TASK_FINISHED


def test_yarn_cluster_mode_client_output_shows_its_last_report() -> None:
    lines = [
        _at(i * 30, f"INFO Client: Application report for application_1717236000000_0042 (state: {state})")
        for i, state in enumerate(["ACCEPTED", "RUNNING", "RUNNING"])
    ]
    lines.insert(2, _at(31, "INFO Client: \n\t client token: N/A\n\t diagnostics: N/A"))

    progress = read_progress(lines)

    assert progress.signature is None
    assert (
        progress.last_progress == "INFO Client: Application report for application_1717236000000_0042 (state: RUNNING)"
    )
    assert progress.last_progress_time == T0 + timedelta(minutes=1)


# ---------------------------------------------------------------------------------------------------------
# Times
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stamp", "expected"),
    [
        ("24/06/01 10:00:00", datetime(2024, 6, 1, 10, 0, 0, tzinfo=UTC)),
        ("24/06/01 10:00:00.250", datetime(2024, 6, 1, 10, 0, 0, 250000, tzinfo=UTC)),
        ("24/06/01 10:00:00,250", datetime(2024, 6, 1, 10, 0, 0, 250000, tzinfo=UTC)),
        ("2024-06-01 10:00:00,250", datetime(2024, 6, 1, 10, 0, 0, 250000, tzinfo=UTC)),
        ("2024-06-01T10:00:00", datetime(2024, 6, 1, 10, 0, 0, tzinfo=UTC)),
        ("[2024-06-01 10:00:00.5]", datetime(2024, 6, 1, 10, 0, 0, 500000, tzinfo=UTC)),
    ],
)
def test_log4j_and_iso_timestamps_are_read_as_utc(stamp: str, expected: datetime) -> None:
    progress = read_progress([f"{stamp} INFO SparkContext: Running Spark version 3.5.1\n"])

    assert progress.last_time == expected


@pytest.mark.parametrize(
    "line", ["24/13/45 10:00:00 INFO x", "10:00:00 INFO x", "x 24/06/01 10:00:00", "２４/06/01 10:00:00 x"]
)
def test_what_only_looks_like_a_timestamp_is_none(line: str) -> None:
    assert read_progress([line]).last_time is None


def test_a_naive_now_is_taken_as_utc() -> None:
    lines = [_at(15, WARNING)]

    progress = read_progress(lines, now=datetime(2024, 6, 1, 10, 10, 15))

    assert progress.signature == NO_EXECUTORS
    assert progress.minutes == pytest.approx(10.0)


def test_a_log_without_timestamps_gives_no_time_signature_but_its_progress() -> None:
    lines = [
        "INFO TaskSetManager: Starting task 0.0 in stage 0.0 (TID 0) (h, executor 1, partition 0, ANY, 1 bytes)\n",
        "Initial job has not accepted any resources; check your cluster UI\n",
        "INFO TaskSetManager: Finished task 0.0 in stage 0.0 (TID 0) in 5 ms on h (executor 1) (1/2)\n",
    ]

    progress = read_progress(lines, now=T0 + timedelta(hours=3))

    assert progress.signature is None
    assert progress.last_time is None and progress.last_progress_time is None
    assert progress.last_progress == lines[2].strip()
    assert progress.summary == f"last progress: {lines[2].strip()}"


def test_a_log_without_timestamps_still_shows_a_retry() -> None:
    progress = read_progress(["INFO TaskSetManager: Lost task 1.0 in stage 4.1 (TID 9) (h executor 2): boom\n"])

    assert (progress.signature, progress.stage, progress.retries) == (STAGE_RETRIED, 4, 1)


# ---------------------------------------------------------------------------------------------------------
# Hostile and odd input
# ---------------------------------------------------------------------------------------------------------


def test_empty_input() -> None:
    assert read_progress([]) == Progress(None, "empty log")
    assert read_progress(["\n", ""]).summary == "no Spark progress line in the log"


def test_a_giant_line_is_read_only_up_to_its_limit() -> None:
    # Given: a 5 MB line whose progress message starts past the limit, then one whose secret does
    hidden = _at(0, "INFO Plan: " + "x" * (MAX_LINE_CHARS + 10) + " Starting task 0.0 in stage 0.0 (TID 0) (h)")
    big = _finished(1, 0, "0.0", 0, 1, 2).rstrip("\n") + " " + "y " * 1200 + "password=" + "z" * 5_000_000

    # When
    progress = read_progress([hidden, big])

    # Then: the first is no progress line, the second is shown short, its cut secret dropped
    assert progress.last_progress is not None
    assert progress.last_progress.startswith("INFO TaskSetManager: Finished task 0.0 in stage 0.0 (TID 0)")
    assert len(progress.last_progress) <= MAX_PROGRESS_CHARS
    assert "zzz" not in progress.last_progress and "zzz" not in progress.summary
    assert progress.last_progress_time == T0 + timedelta(seconds=1)


def test_a_cut_line_drops_its_last_word() -> None:
    line = _finished(1, 0, "0.0", 0, 1, 2).rstrip("\n") + " " + "w" * (MAX_LINE_CHARS + 50)

    progress = read_progress([line])

    assert (
        progress.last_progress
        == "INFO TaskSetManager: Finished task 0.0 in stage 0.0 (TID 0) in 812 ms on ip-10-0-0-1.ec2.internal "
        "(executor 1) (1/2) …"
    )


def test_non_ascii_text_and_digits() -> None:
    # Given: Arabic-Indic digits where Spark writes ASCII ones, and a job name in Japanese
    lines = [
        _at(0, "INFO TaskSetManager: Finished task 0.0 in stage ٣.٠ (TID 0) in 5 ms on h (executor 1) (٩/١٠)"),
        _at(1, "INFO DAGScheduler: Submitting ResultStage 1 (集計ジョブ at 売上.py:12), which has no missing parents"),
    ]

    # When
    progress = read_progress(lines, now=T0 + timedelta(hours=1))

    # Then: no stage or count read from them, the text kept as it is
    assert progress.signature is None
    assert (
        progress.last_progress
        == "INFO DAGScheduler: Submitting ResultStage 1 (集計ジョブ at 売上.py:12), which has no missing parents"
    )


def test_a_secret_in_the_last_progress_line_is_redacted() -> None:
    line = _finished(0, 1, "0.0", 1, 1, 4).rstrip("\n") + " password=hunter2secret"

    progress = read_progress([line])

    assert progress.last_progress is not None and "Finished task 1.0 in stage 0.0 (TID 1)" in progress.last_progress
    assert "hunter2secret" not in progress.last_progress
    assert "hunter2secret" not in progress.summary
    assert "[REDACTED" in progress.last_progress


def test_an_executor_finished_line_is_a_finish_but_not_the_progress_line() -> None:
    lines = [
        _started(0, 0, "0.0", 0),
        _at(60, "INFO Executor: Finished task 0.0 in stage 0.0 (TID 0). 1893 bytes result sent to driver"),
    ]

    progress = read_progress(lines, now=T0 + timedelta(minutes=16))

    assert progress.signature == NO_TASK_FINISHED
    assert progress.since == T0 + timedelta(minutes=1)
    assert progress.summary == "no task finished for 15 min"
    assert progress.last_progress is not None and "Starting task 0.0" in progress.last_progress


def test_stage_counters_stay_bounded_and_the_most_retried_stage_is_kept() -> None:
    # Given: stage 1 retried, then 5,000 stages of one task each
    tracker = ProgressTracker(max_stages=64)
    tracker.feed(_started(0, 0, "1.2", 0))
    for stage in range(2, 5_002):
        tracker.feed(_finished(1, 0, f"{stage}.0", stage, 1, 1))

    # When
    progress = tracker.result()

    # Then
    assert len(tracker._stages) == 64
    assert (progress.signature, progress.stage, progress.retries) == (STAGE_RETRIED, 1, 2)


def test_the_default_tracker_keeps_at_most_max_stages() -> None:
    tracker = ProgressTracker()
    for stage in range(3 * MAX_STAGES):
        tracker.feed(_started(0, 0, f"{stage}.0", stage))

    assert len(tracker._stages) == MAX_STAGES


def test_thresholds_are_the_trackers_to_set() -> None:
    tracker = ProgressTracker(no_executors_minutes=1.0)
    for i in range(1, 6):
        tracker.feed(_at(15 * i, WARNING))

    assert tracker.result().signature == NO_EXECUTORS
    assert read_progress([_at(15 * i, WARNING) for i in range(1, 6)]).signature is None


def test_lines_stamped_after_until_are_not_read() -> None:
    # Given a driver that waited for executors, then was killed at 10:40
    lines = [
        f"26/11/26 10:{m:02d}:00 WARN YarnScheduler: Initial job has not accepted any resources" for m in range(40)
    ]
    lines.append("26/11/26 10:40:00 ERROR YarnClientSchedulerBackend: YARN application has exited")
    until = datetime(2026, 11, 26, 10, 20, tzinfo=UTC)
    # When read as of 10:20, only what was written by then counts
    progress = read_progress(lines, now=until, until=until)
    assert progress.signature == "no_executors" and progress.minutes == 20
    assert progress.last_time == until

"""How far a still-running Spark application has got, and whether its driver log shows it stuck.

A step or job run that has been RUNNING far longer than usual gets an alert that says what its log shows:
no executor ever accepted, no task finished for a long time, one stage straggling on its last tasks, a
stage retried, or else the newest line that shows progress. This module reads the driver's log (driver
stderr in client mode, the spark-submit / YARN client output in cluster mode) one line at a time, keeps a
few counters whatever the log's size, and says it in a :class:`Progress`.

Times come from the log's own timestamps, taken as UTC (EMR writes them in UTC). A hung driver often stops
writing, so how long a condition has lasted is measured up to the log's newest timestamp or, when the
caller gives one, up to ``now``: the time the log was read.

Every pattern quotes the message of Spark 3.5 it reads, with the file of ``apache/spark`` that prints it
(checked against the strings compiled into ``spark-core_2.12-3.5.9.jar`` and ``spark-yarn_2.12-3.5.9.jar``,
and against the logs in ``tests/fixtures/progress``).
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

NO_EXECUTORS = "no_executors"
NO_TASK_FINISHED = "no_task_finished"
STRAGGLER = "straggler"
STAGE_RETRIED = "stage_retried"
SIGNATURES = (NO_EXECUTORS, STRAGGLER, NO_TASK_FINISHED, STAGE_RETRIED)  # the order they win in

# Spark warns every 15 s (spark.starvation.timeout) while no task can be placed; an application waits a
# minute or two for executors on a busy cluster, five minutes of it is a cluster that cannot serve it.
NO_EXECUTORS_MINUTES = 5.0
# A stage's tasks may each run for minutes; a quarter of an hour with none finished is a stall.
NO_TASK_FINISHED_MINUTES = 15.0
# When nine tenths of a stage are done in short order, the rest should follow soon after.
STRAGGLER_MINUTES = 10.0
STRAGGLER_SHARE = 0.9

MAX_LINE_CHARS = 2_000  # a line is read up to here: a 50 MB line of a dumped plan costs no more
MAX_PROGRESS_CHARS = 300  # the last progress line as shown
MAX_STAGES = 256  # the stages whose counters are kept; the least recently mentioned ones are dropped

# yy/MM/dd HH:mm:ss (log4j's pattern in Spark's and EMR's log4j2.properties) and ISO 8601
# (yyyy-MM-dd HH:mm:ss or yyyy-MM-ddTHH:mm:ss), with or without .SSS / ,SSS, at the start of a line.
_TIME = re.compile(
    r"\[?(?:(?P<yy>\d\d)/(?P<m1>\d\d)/(?P<d1>\d\d) |(?P<yyyy>\d{4})-(?P<m2>\d\d)-(?P<d2>\d\d)[ T])"
    r"(?P<h>\d\d):(?P<mi>\d\d):(?P<s>\d\d)(?:[.,](?P<f>\d{1,9}))?\]?",
    re.ASCII,
)

# One search per line finds which message (if any) the line is; the precise pattern then reads it. The
# lookahead names the messages' first letters, which lets the search skip most positions without trying
# each message (three times faster on a busy driver log).
_KEYS = re.compile(
    r"(?=[IFSLARJs])(?:Initial job has not accepted any resources|Finished task|Starting task|Lost task"
    r"|Adding task set|Resubmitting|Submitting|Application report for|[Ss]tage \d+ \(|Job \d+ finished: )",
    re.ASCII,
)

# core/src/main/scala/org/apache/spark/scheduler/TaskSchedulerImpl.scala (submitTasks, starvation timer):
# "Initial job has not accepted any resources; check your cluster UI to ensure that workers are
# registered and have sufficient resources", every spark.starvation.timeout until a task is launched.
_NO_RESOURCES = "Initial job has not accepted any resources"
# core/src/main/scala/org/apache/spark/scheduler/TaskSetManager.scala (handleSuccessfulTask):
# s"Finished task ${info.id} in stage ${taskSet.id} (TID ${info.taskId}) in ${info.duration} ms on
# ${info.host} (executor ${info.executorId}) ($tasksSuccessful/$numTasks)". An executor's own
# "Finished task 0.0 in stage 0.0 (TID 0). 1893 bytes result sent to driver" (executor/Executor.scala,
# in a local-mode driver's log) has no counts.
_FINISHED = re.compile(
    r"Finished task \d+\.\d+ in stage (\d+)\.(\d+) \(TID \d+\)(?: in \d+ ms on .*\((\d+)/(\d+)\))?", re.ASCII
)
# TaskSetManager.scala (prepareLaunchingTask): s"Starting task ${info.id} in stage ${taskSet.id}
# (TID $taskId) ($host, executor ${info.executorId}, partition ${task.partitionId}, ...)".
_STARTING = re.compile(r"Starting task \d+\.\d+ in stage (\d+)\.(\d+) \(TID \d+\)", re.ASCII)
# TaskSetManager.scala (handleFailedTask): s"Lost task ${info.id} in stage ${taskSet.id} (TID $tid) ...".
_LOST = re.compile(r"Lost task \d+\.\d+ in stage (\d+)\.(\d+) \(TID \d+\)", re.ASCII)
# TaskSchedulerImpl.scala (submitTasks): s"Adding task set ${taskSet.id} with $numTasks tasks resource
# profile ...": a stage attempt's task count before any of them finishes.
_TASK_SET = re.compile(r"Adding task set (\d+)\.(\d+) with (\d+) tasks", re.ASCII)
# core/src/main/scala/org/apache/spark/scheduler/DAGScheduler.scala: s"Resubmitting $mapStage
# (${mapStage.name}) and $failedStage (${failedStage.name}) due to fetch failure", s"Resubmitting
# $shuffleStage (${shuffleStage.name}) because some of its tasks had failed: ...", then
# "Resubmitting failed stages" (no stage named; the new attempts, "stage 1.1", name them).
_STAGE_NAMED = re.compile(r"\b(?:ShuffleMapStage|ResultStage) (\d+) \(", re.ASCII)
# DAGScheduler.scala (markStageAsFinished): "%s (%s) finished in %s s" and s"$stage (${stage.name})
# failed in $serviceTime s due to ...": the stage's attempt is over either way.
_STAGE_OVER = re.compile(r"\b(?:ShuffleMapStage|ResultStage) (\d+) \(.*?\) (finished|failed) in \d", re.ASCII)
# DAGScheduler.scala (submitMissingTasks, submitStage): "Submitting " + tasks.size + " missing tasks from
# " + stage + " (" + stage.rdd + ")", and s"Submitting $stage (${stage.rdd}), which has no missing parents".
_SUBMITTING = re.compile(r"Submitting (?:\d+ missing tasks from )?(?:ShuffleMapStage|ResultStage) \d+ \(", re.ASCII)
# DAGScheduler.scala (handleJobCompletion via JobWaiter / runJob): s"Job ${job.jobId} finished: ...".
_JOB_FINISHED = re.compile(r"Job \d+ finished: ", re.ASCII)
# resource-managers/yarn/src/main/scala/org/apache/spark/deploy/yarn/Client.scala (monitorApplication):
# s"Application report for $appId (state: $state)": what spark-submit prints in cluster mode.
_APP_REPORT = re.compile(r"Application report for application_\d+_\d+ \(state: [A-Z_]+\)", re.ASCII)
# core/src/main/scala/org/apache/spark/ui/jobs/StagePagedTable.scala: the UI's stage table names a
# stage's later attempts "3 (retry 1)"; pasted into notes and job output as "Stage 3 (retry 1)".
_RETRY_NAME = re.compile(r"\b[Ss]tage (\d+) \(retry (\d+)\)", re.ASCII)


@dataclass(frozen=True, slots=True)
class Progress:
    """What a running application's driver log shows.

    ``signature`` is one of :data:`SIGNATURES` or None; ``summary`` says it in one line for a person.
    ``minutes`` is how long the signature's condition has lasted, from ``since`` to the log's newest time
    (or the ``now`` given, when later); ``last_seen`` is the newest "Initial job has not accepted" warning
    (no_executors). ``stage``, ``retries`` and ``tasks`` (finished, total) describe the stage concerned.
    ``last_progress`` is the newest progress line, redacted and shortened, and ``last_progress_time`` its
    time. All times are UTC.
    """

    signature: str | None
    summary: str
    last_time: datetime | None = None
    minutes: float | None = None
    since: datetime | None = None
    last_seen: datetime | None = None
    stage: int | None = None
    retries: int | None = None
    tasks: tuple[int, int] | None = None
    last_progress: str | None = None
    last_progress_time: datetime | None = None


@dataclass(slots=True)
class _Stage:
    """One stage's newest attempt, as far as its log lines tell."""

    attempt: int = 0
    resubmitted: int = 0
    finished: int = 0
    total: int = 0
    last_finish: datetime | None = None
    over: bool = False  # the attempt finished or failed as a whole

    @property
    def retries(self) -> int:
        return max(self.attempt, self.resubmitted)


class ProgressTracker:
    """Reads a driver log line by line (:meth:`feed`) and says what it shows (:meth:`result`).

    Memory stays bounded whatever the log: a few counters, at most ``MAX_STAGES`` stages, and one line of
    at most ``MAX_LINE_CHARS`` characters. The thresholds default to the module's constants.
    """

    def __init__(
        self,
        *,
        no_executors_minutes: float = NO_EXECUTORS_MINUTES,
        no_task_finished_minutes: float = NO_TASK_FINISHED_MINUTES,
        straggler_minutes: float = STRAGGLER_MINUTES,
        straggler_share: float = STRAGGLER_SHARE,
        max_stages: int = MAX_STAGES,
        until: datetime | None = None,
    ) -> None:
        # Lines stamped after ``until`` are not read (a log read at that time could not hold them: the
        # replay command's compressed time gives a check the whole log, later lines included).
        self._until = until
        self.past_until = False
        self._limits = (no_executors_minutes, no_task_finished_minutes, straggler_minutes, straggler_share)
        self._max_stages = max(1, max_stages)
        self._lines = 0
        self._stamp = ""  # the last timestamp's text, and its value: most lines share their second
        self._time: datetime | None = None  # the time of the latest line that had one
        self._last_time: datetime | None = None  # the newest time seen
        self._warn_first: datetime | None = None
        self._warn_last: datetime | None = None
        self._accepted = False  # a task started after the first warning
        self._started = 0
        self._first_start: datetime | None = None
        self._last_finish: datetime | None = None
        self._last_finish_stage: tuple[int, int, int, int] | None = None  # stage, attempt, finished, total
        self._stages: OrderedDict[int, _Stage] = OrderedDict()
        self._most_retried: tuple[int, int] | None = None  # stage, retries (kept when the stage is dropped)
        self._progress: tuple[str, bool, datetime | None] | None = None  # text, clipped, time

    def feed(self, line: str) -> None:
        """Read one line of the log (with or without its line break)."""
        self._lines += 1
        clipped = len(line) > MAX_LINE_CHARS
        text = line[:MAX_LINE_CHARS].rstrip("\r\n")
        if self.past_until:
            return
        stamp = _TIME.match(text)
        if stamp is not None and not self._read_time(stamp):
            return  # stamped after ``until``
        found = _KEYS.search(text)
        if found is None:
            return
        message = text[stamp.end() :].strip() if stamp is not None else text.strip()
        key = found.group()
        if key == _NO_RESOURCES:
            # Spark stops warning once a task is launched; a warning after that is a new SparkContext's
            # (a script that builds a second session): its own streak starts.
            if self._warn_first is None or self._accepted:
                self._warn_first, self._accepted = self._time, False
            self._warn_last = self._time
            return
        if key.startswith("Finished"):
            self._on_finished(message, clipped)
        elif key.startswith("Starting"):
            self._on_started(message, clipped)
        elif key.startswith(("Lost", "Adding")):
            self._on_task_set(message)
        elif key.startswith("Resubmitting"):
            for stage_id in dict.fromkeys(int(m.group(1)) for m in _STAGE_NAMED.finditer(message)):
                stage = self._stage(stage_id)
                stage.resubmitted += 1
                self._note_retries(stage_id, stage)
        elif key[:5].lower() == "stage":
            self._on_stage_named(message, clipped)
        elif _SUBMITTING.search(message) or _APP_REPORT.search(message) or _JOB_FINISHED.search(message):
            self._progress = (message, clipped, self._time)

    def result(self, now: datetime | None = None) -> Progress:
        """What the lines fed so far show, measured up to their newest time or ``now`` if later.

        Parameters
        ----------
        now
            When the log was read (naive datetimes are taken as UTC); None: the log's newest timestamp.

        Returns
        -------
        Progress
            The first signature that holds, in the order of :data:`SIGNATURES`, or none with the newest
            progress line.
        """
        end = self._last_time
        if now is not None:
            now = now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)
            end = now if end is None or now > end else end
        found = self._no_executors(end) or self._straggler(end) or self._no_task_finished(end) or self._retried()
        progress, when = self._progress_text()
        if found is None:
            found = Progress(None, self._progress_summary(progress, when, end))
        return replace(found, last_time=self._last_time, last_progress=progress, last_progress_time=when)

    # reading -------------------------------------------------------------------------------------------
    def _read_time(self, stamp: re.Match[str]) -> bool:
        """Note a line's time; False when it is after ``until`` (the line, and the rest, are not read)."""
        if stamp.group() == self._stamp:
            return True
        g = stamp.groupdict()
        fraction = (g["f"] or "0")[:6].ljust(6, "0")
        try:
            if g["yy"] is not None:
                year, month, day = 2000 + int(g["yy"]), int(g["m1"]), int(g["d1"])
            else:
                year, month, day = int(g["yyyy"]), int(g["m2"]), int(g["d2"])
            when = datetime(year, month, day, int(g["h"]), int(g["mi"]), int(g["s"]), int(fraction), tzinfo=UTC)
        except ValueError:  # 26/13/45 is no date: a line that only starts like one
            return True
        if self._until is not None and when > self._until:
            self.past_until = True
            return False
        self._stamp, self._time = stamp.group(), when
        if self._last_time is None or when > self._last_time:
            self._last_time = when
        return True

    def _stage(self, stage_id: int) -> _Stage:
        stage = self._stages.get(stage_id)
        if stage is None:
            stage = self._stages[stage_id] = _Stage()
            if len(self._stages) > self._max_stages:
                self._stages.popitem(last=False)
        else:
            self._stages.move_to_end(stage_id)
        return stage

    def _attempt(self, stage_id: int, attempt: int) -> _Stage | None:
        """The stage's record if ``attempt`` is its newest one (a new attempt starts its counters afresh)."""
        stage = self._stage(stage_id)
        if attempt > stage.attempt:
            stage.attempt, stage.finished, stage.total, stage.last_finish, stage.over = attempt, 0, 0, None, False
            self._note_retries(stage_id, stage)
        return stage if attempt == stage.attempt else None

    def _note_retries(self, stage_id: int, stage: _Stage) -> None:
        if stage.retries and (self._most_retried is None or stage.retries >= self._most_retried[1]):
            self._most_retried = (stage_id, stage.retries)

    def _on_finished(self, message: str, clipped: bool) -> None:
        match = _FINISHED.search(message)
        if match is None:
            return
        self._last_finish = self._time or self._last_finish
        stage_id, attempt = int(match.group(1)), int(match.group(2))
        stage = self._attempt(stage_id, attempt)
        if match.group(3) is not None:
            finished, total = int(match.group(3)), int(match.group(4))
            self._last_finish_stage = (stage_id, attempt, finished, total)
            if stage is not None:
                stage.finished, stage.total, stage.last_finish = finished, total, self._time
            self._progress = (message, clipped, self._time)

    def _on_started(self, message: str, clipped: bool) -> None:
        match = _STARTING.search(message)
        if match is None:
            return
        self._started += 1
        self._first_start = self._first_start or self._time
        self._accepted = self._accepted or self._warn_first is not None
        self._attempt(int(match.group(1)), int(match.group(2)))
        self._progress = (message, clipped, self._time)

    def _on_task_set(self, message: str) -> None:
        match = _TASK_SET.search(message) or _LOST.search(message)
        if match is None:
            return
        stage = self._attempt(int(match.group(1)), int(match.group(2)))
        if stage is not None and match.re is _TASK_SET:
            stage.total = int(match.group(3))

    def _on_stage_named(self, message: str, clipped: bool) -> None:
        retry = _RETRY_NAME.search(message)
        if retry is not None:
            self._attempt(int(retry.group(1)), int(retry.group(2)))
            return
        over = _STAGE_OVER.search(message)
        if over is not None:
            stage = self._stages.get(int(over.group(1)))
            if stage is not None:
                stage.over = True
            if over.group(2) == "finished":
                self._progress = (message, clipped, self._time)

    # judging -------------------------------------------------------------------------------------------
    def _no_executors(self, end: datetime | None) -> Progress | None:
        if self._warn_first is None or self._accepted or end is None:
            return None
        minutes = _minutes(self._warn_first, end)
        if minutes < self._limits[0]:
            return None
        summary = f'no executors accepted for {_whole(minutes)} min (Spark: "{_NO_RESOURCES}")'
        return Progress(NO_EXECUTORS, summary, minutes=minutes, since=self._warn_first, last_seen=self._warn_last)

    def _straggler(self, end: datetime | None) -> Progress | None:
        if end is None:
            return None
        worst: tuple[float, int, _Stage, datetime] | None = None
        for stage_id, stage in self._stages.items():
            last = stage.last_finish
            if stage.over or last is None or not self._limits[3] * stage.total <= stage.finished < stage.total:
                continue
            minutes = _minutes(last, end)
            if minutes >= self._limits[2] and (worst is None or minutes > worst[0]):
                worst = (minutes, stage_id, stage, last)
        if worst is None:
            return None
        minutes, stage_id, stage, last = worst
        summary = f"stage {stage_id} straggling: {stage.finished}/{stage.total} tasks finished, none for "
        return Progress(
            STRAGGLER,
            summary + f"{_whole(minutes)} min",
            minutes=minutes,
            since=last,
            stage=stage_id,
            retries=stage.retries,
            tasks=(stage.finished, stage.total),
        )

    def _no_task_finished(self, end: datetime | None) -> Progress | None:
        since = self._last_finish or self._first_start
        if not self._started or since is None or end is None:
            return None
        minutes = _minutes(since, end)
        if minutes < self._limits[1]:
            return None
        summary = f"no task finished for {_whole(minutes)} min"
        if self._last_finish is None:
            summary += " (none has finished since the first started)"
        if self._last_finish is None or self._last_finish_stage is None:
            return Progress(NO_TASK_FINISHED, summary, minutes=minutes, since=since)
        stage_id, attempt, finished, total = self._last_finish_stage
        summary += f" (the last: stage {stage_id}.{attempt}, {finished}/{total} tasks)"
        return Progress(
            NO_TASK_FINISHED, summary, minutes=minutes, since=since, stage=stage_id, tasks=(finished, total)
        )

    def _retried(self) -> Progress | None:
        if self._most_retried is None:
            return None
        stage_id, retries = self._most_retried
        summary = f"stage {stage_id} retried {retries} time{'s' if retries != 1 else ''}"
        return Progress(STAGE_RETRIED, summary, stage=stage_id, retries=retries)

    def _progress_summary(self, progress: str | None, when: datetime | None, end: datetime | None) -> str:
        if progress is None:
            return "no Spark progress line in the log" if self._lines else "empty log"
        if when is None:
            return f"last progress: {_shorten(progress, 200)}"
        ago = _minutes(when, end) if end is not None else 0.0
        mark = "the log's end" if end == self._last_time else "now"
        before = f", {_whole(ago)} min before {mark}" if ago >= 1 else ""
        return f"last progress at {when:%Y-%m-%d %H:%M:%S} UTC{before}: {_shorten(progress, 200)}"

    def _progress_text(self) -> tuple[str | None, datetime | None]:
        if self._progress is None:
            return None, None
        from emr_triage.analysis.redact import redact  # here: only a result needs it, not each line

        message, clipped, when = self._progress
        text = redact(message)
        if clipped:  # the line went on past what was read: its last word may be half a secret
            text = text.rsplit(None, 1)[0] + " …" if " " in text.strip() else "…"
        return _shorten(text, MAX_PROGRESS_CHARS), when


def read_progress(lines: Iterable[str], now: datetime | None = None, until: datetime | None = None) -> Progress:
    """What a running Spark application's driver log shows: a stuck signature, or its newest progress.

    Parameters
    ----------
    lines
        The log's lines, oldest first (line breaks may be kept).
    now
        When the log was read; conditions are measured up to it when it is later than the log's newest
        timestamp (a hung driver stops writing). Naive datetimes are taken as UTC.
    until
        Stop at the first line stamped after this time (aware datetime).

    Returns
    -------
    Progress
        See :class:`Progress`.
    """
    tracker = ProgressTracker(until=until)
    for line in lines:
        tracker.feed(line)
        if tracker.past_until:
            break
    return tracker.result(now)


def _minutes(start: datetime, end: datetime) -> float:
    return max((end - start) / timedelta(minutes=1), 0.0)


def _whole(minutes: float) -> str:
    return str(int(minutes)) if minutes >= 1 else "<1"


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 2].rstrip() + " …"

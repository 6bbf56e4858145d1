"""The figures of a digest: what failed in a period against the period before, what keeps coming back,
which jobs are flaky, how fast the team recovers and acknowledges, which runs were slow. Pure: runs and
incidents in, figures out (the weekly digest and ``emr-triage incidents stats`` print the same)."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from statistics import median
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from emr_triage.models.incident import Incident
    from emr_triage.models.runs import FinishedRun

UNDIAGNOSED = "undiagnosed"
TOP = 5


@dataclass(frozen=True)
class Signature:
    fingerprint: str
    title: str  # the verdict's title (redacted, as stored)
    category: str
    count: int
    jobs: tuple[str, ...]


@dataclass(frozen=True)
class FlakyJob:
    job_key: str
    runs: int
    failures: int

    @property
    def rate(self) -> float:
        return self.failures / self.runs if self.runs else 0.0


@dataclass
class Figures:
    """One digest's figures over ``[since, until)``, against ``[previous_since, since)``."""

    since: datetime
    until: datetime
    previous_since: datetime
    failures: Counter[str] = field(default_factory=Counter)  # by category, this period
    previous_failures: Counter[str] = field(default_factory=Counter)
    per_day: dict[date, Counter[str]] = field(default_factory=dict)  # this period's failures by day, category
    signatures: list[Signature] = field(default_factory=list)  # the most frequent first (this period)
    flaky: list[FlakyJob] = field(default_factory=list)  # jobs that failed and succeeded, highest rate first
    runs: int = 0  # runs that ended this period
    recover_seconds: list[int] = field(default_factory=list)  # failure to the job's next success
    unrecovered: int = 0  # failures of this period not followed by a success (yet)
    acknowledge_seconds: list[int] = field(default_factory=list)
    slow_runs: Counter[str] = field(default_factory=Counter)  # by job, this period

    @property
    def total(self) -> int:
        return sum(self.failures.values())

    @property
    def previous_total(self) -> int:
        return sum(self.previous_failures.values())

    @property
    def days(self) -> list[date]:
        return sorted(self.per_day)

    @staticmethod
    def typical(values: list[int]) -> int | None:
        return int(median(values)) if values else None


def _category(incident: Incident | None) -> str:
    diagnosis = incident.diagnosis if incident is not None else None
    return diagnosis.category if diagnosis is not None else UNDIAGNOSED


def compute(
    runs: Iterable[FinishedRun],
    incidents: Mapping[str, Incident],
    *,
    since: datetime,
    until: datetime,
    later: Iterable[FinishedRun] = (),
) -> Figures:
    """The figures of ``[since, until)`` from the runs that ended in it and in the period of the same
    length before (``runs``), their failures' incidents (by id), and runs that ended after ``until``
    (``later``: a failure late in the period may have recovered since).

    A failure counts in the period its run ended in; its category is its incident's verdict (the
    incident's latest, after every log was read), ``undiagnosed`` without one."""
    length = until - since
    figures = Figures(since=since, until=until, previous_since=since - length)
    days = max(1, round(length / timedelta(days=1)))
    for offset in range(days):
        figures.per_day[(since + timedelta(days=offset)).date()] = Counter()
    by_job: dict[str, list[FinishedRun]] = defaultdict(list)
    signatures: dict[str, list[tuple[str, Incident]]] = defaultdict(list)
    every = sorted([*runs, *later], key=lambda r: (r.ended_at, r.run_id))
    for run in every:
        by_job[run.job_key].append(run)
        if not since <= run.ended_at < until:
            if run.outcome == "FAILED" and figures.previous_since <= run.ended_at < since:
                figures.previous_failures[_category(incidents.get(run.incident_id or ""))] += 1
            continue
        figures.runs += 1
        if run.slow:
            figures.slow_runs[run.job_key] += 1
        if run.outcome != "FAILED":
            continue
        incident = incidents.get(run.incident_id or "")
        category = _category(incident)
        figures.failures[category] += 1
        figures.per_day.setdefault(run.ended_at.date(), Counter())[category] += 1
        if incident is not None and incident.diagnosis is not None and incident.diagnosis.fingerprint:
            signatures[incident.diagnosis.fingerprint].append((run.job_key, incident))
        if incident is not None and incident.acknowledged_at is not None:
            figures.acknowledge_seconds.append(
                max(0, int((incident.acknowledged_at - incident.opened_at).total_seconds()))
            )
    figures.signatures = _signatures(signatures)
    figures.flaky = _flaky(by_job, since, until)
    figures.recover_seconds, figures.unrecovered = _recoveries(by_job, since, until)
    return figures


def _signatures(found: dict[str, list[tuple[str, Incident]]]) -> list[Signature]:
    listed = []
    for fingerprint, seen in found.items():
        diagnosis = seen[-1][1].diagnosis
        assert diagnosis is not None
        jobs = tuple(sorted({job for job, _ in seen}))
        listed.append(Signature(fingerprint, diagnosis.title, diagnosis.category, len(seen), jobs))
    listed.sort(key=lambda s: (-s.count, s.category, s.fingerprint))
    return listed[:TOP]


def _flaky(by_job: dict[str, list[FinishedRun]], since: datetime, until: datetime) -> list[FlakyJob]:
    """Jobs with both failures and successes in the period: the flaky ones, not the broken ones."""
    flaky = []
    for job, runs in by_job.items():
        inside = [r for r in runs if since <= r.ended_at < until]
        failures = sum(1 for r in inside if r.outcome == "FAILED")
        if failures and failures < len(inside):
            flaky.append(FlakyJob(job, len(inside), failures))
    flaky.sort(key=lambda j: (-j.rate, -j.failures, j.job_key))
    return flaky[:TOP]


def _recoveries(by_job: dict[str, list[FinishedRun]], since: datetime, until: datetime) -> tuple[list[int], int]:
    """Per failure of the period, the time to its job's next success (the first failure of a streak
    counts; the streak's later failures recover with it); and how many streaks have not recovered."""
    recovered: list[int] = []
    open_streaks = 0
    for runs in by_job.values():
        streak: datetime | None = None
        for run in runs:  # in time order
            if run.outcome == "FAILED":
                if streak is None and since <= run.ended_at < until:
                    streak = run.ended_at
            elif streak is not None:
                recovered.append(int((run.ended_at - streak).total_seconds()))
                streak = None
        if streak is not None:
            open_streaks += 1
    return recovered, open_streaks

"""A generated month of job history (runs, failures with verdicts, acknowledgements, slow runs), the
same every time for a seed: what the digest scenario replays its schedule over, and what the digest's
test checks the figures against. The runs and incidents are written through the real stores."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from emr_triage.incidents.history import job_key
from emr_triage.models.analysis import Diagnosis
from emr_triage.models.incident import Incident
from emr_triage.models.runs import FinishedRun

# (cluster name, step name, channel tag, hour it runs at, usual minutes, share of runs failing, causes)
JOBS = (
    ("orders-etl", "load-orders", "#orders-alerts", 2, 40, 0.25, ("oom_heap", "shuffle_fetch_failed")),
    ("orders-etl", "publish-orders", "#orders-alerts", 3, 12, 0.05, ("s3_access_denied",)),
    ("sales-etl", "daily-sales-aggregation", "#data-platform-alerts", 1, 55, 0.15, ("yarn_memory_kill",)),
    ("sales-etl", "refresh-dashboards", "#data-platform-alerts", 4, 8, 0.0, ()),
    ("features", "build-features", "#data-platform-alerts", 5, 70, 0.35, ("executor_lost", "oom_heap")),
)
TITLES = {
    "oom_heap": "A JVM ran out of heap memory (OutOfMemoryError)",
    "shuffle_fetch_failed": "Shuffle fetch failed (lost executor or shuffle service)",
    "s3_access_denied": "S3 access denied (403)",
    "yarn_memory_kill": "YARN killed a container for exceeding its memory limit",
    "executor_lost": "Executors were lost",
}


@dataclass(frozen=True)
class History:
    runs: list[FinishedRun]
    incidents: list[Incident]


def generate(*, until: datetime, days: int = 30, seed: int = 8) -> History:
    """Every job's daily run for ``days`` days before ``until``: durations around its usual time (one
    run in 12 slow and alerted), failures at its rate with one of its causes, two in three failures
    acknowledged some minutes after the alert."""
    rng = random.Random(seed)  # noqa: S311 - a reproducible history, not a secret
    runs: list[FinishedRun] = []
    incidents: list[Incident] = []
    start = (until - timedelta(days=days - 1)).replace(hour=0, minute=0, second=0, microsecond=0)  # to until's day
    for day in range(days):
        for number, (cluster, step, channel, hour, usual, failing, causes) in enumerate(JOBS):
            cluster_id = f"j-GEN{day:03d}{number}{'X' * 8}"
            step_id = f"s-GEN{day:03d}{number}{'Y' * 8}"
            began = start + timedelta(days=day, hours=hour, minutes=rng.randrange(0, 10))
            slow = rng.random() < 1 / 12
            took = int(usual * 60 * (rng.uniform(2.1, 2.6) if slow else rng.uniform(0.85, 1.2)))
            ended = began + timedelta(seconds=took)
            if ended >= until:
                continue
            key = job_key(cluster_name=f"{cluster}-{20261100 + day}", step_name=step)
            assert key is not None
            failed = bool(causes) and rng.random() < failing
            run_id = f"{cluster_id}.{step_id}"
            if not failed:
                runs.append(
                    FinishedRun(
                        run_id=run_id,
                        job_key=key,
                        outcome="SUCCEEDED",
                        ended_at=ended,
                        duration_seconds=took,
                        slow=slow,
                    )
                )
                continue
            category = rng.choice(causes)
            acknowledged = ended + timedelta(minutes=rng.randrange(3, 90)) if rng.random() < 2 / 3 else None
            incidents.append(
                Incident(
                    incident_id=run_id,
                    kind="step",
                    state="FAILED",
                    severity="high",
                    region="us-east-1",
                    account="123456789012",
                    cluster_id=cluster_id,
                    cluster_name=f"{cluster}-{20261100 + day}",
                    tags={"emr-triage:slack-channel": channel},
                    step_id=step_id,
                    step_name=step,
                    started_at=began,
                    ended_at=ended,
                    failed_at=ended,
                    diagnosis=Diagnosis(
                        category=category,
                        title=TITLES[category],
                        severity="high",
                        summary=TITLES[category],
                        fingerprint=f"{category}:{step}",
                        from_logs=True,
                    ),
                    opened_at=ended,
                    updated_at=ended,
                    acknowledged_at=acknowledged,
                    acknowledged_by="U0DANA00001" if acknowledged else None,
                    expires_at=int((until + timedelta(days=90)).timestamp()),
                )
            )
            runs.append(
                FinishedRun(
                    run_id=run_id,
                    job_key=key,
                    outcome="FAILED",
                    ended_at=ended,
                    duration_seconds=took,
                    slow=slow,
                    incident_id=run_id,
                )
            )
    return History(runs=runs, incidents=incidents)


def seed_history(client: Any, table: str, until: datetime, days: int, seed: int) -> History:
    """Write a generated history into the table through the real stores (the embedded replay's)."""
    from emr_triage.aws.incident_store import DynamoIncidentRepository
    from emr_triage.aws.run_store import DynamoRunStore

    history = generate(until=until, days=days, seed=seed)
    incidents, runs = DynamoIncidentRepository(table, client), DynamoRunStore(table, client)
    expires = int((until + timedelta(days=90)).timestamp())
    for incident in history.incidents:
        incidents.create(incident)
    for run in history.runs:
        runs.record_finished(run, expires)
    return history

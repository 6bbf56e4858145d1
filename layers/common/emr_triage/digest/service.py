"""The weekly digest: per channel, the week's figures against the week before, posted once, with the
chart of failures per day by category in its thread.

A channel's digest covers the jobs whose failures were routed to it (a job's channel is its latest
failure's); the default channel's covers the rest, and is posted even in a week with nothing to report
("no failures" is news too). Each (channel, week) is claimed before posting, so a schedule delivered
twice, or an invocation retried, posts it once.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta

from emr_triage.alerts.routing import RoutingError, cached_routes, destination
from emr_triage.analysis.redact import redact
from emr_triage.digest.figures import Figures, compute
from emr_triage.digest.message import digest_message
from emr_triage.exceptions import SlackConfigurationError, TransientError
from emr_triage.incidents.pacing import wait_for_slot
from emr_triage.models.incident import Incident, Outcome
from emr_triage.models.runs import FinishedRun
from emr_triage.observability import MetricName, count, logger
from emr_triage.ports import Dependencies, IncidentRepository, RunStore

WEEK = timedelta(days=7)
CLAIM_DAYS = 30  # how long a posted digest's claim is kept


def gather(
    store: RunStore, repository: IncidentRepository, since: datetime, until: datetime
) -> tuple[list[FinishedRun], dict[str, Incident]]:
    """The runs that ended in ``[since, until)`` and the incidents of their failures (one read each)."""
    runs = store.finished_between(since, until)
    incidents: dict[str, Incident] = {}
    for run in runs:
        if run.outcome == "FAILED" and run.incident_id and run.incident_id not in incidents:
            incident = repository.get(run.incident_id)
            if incident is not None:
                incidents[run.incident_id] = incident
    return runs, incidents


def job_channels(runs: list[FinishedRun], incidents: dict[str, Incident], deps: Dependencies) -> dict[str, str]:
    """Each job's channel: where its latest failure's alert was routed (jobs that never failed: none)."""
    try:
        routes = cached_routes(deps.settings.routing_file)
    except RoutingError:
        routes = ()
    channels: dict[str, str] = {}
    for run in sorted(runs, key=lambda r: r.ended_at):
        incident = incidents.get(run.incident_id or "")
        if incident is not None:
            routed = incident.slack.routed_to if incident.slack and incident.slack.routed_to else None
            channels[run.job_key] = routed or destination(incident, deps.settings.slack_channel, routes).channel
    return channels


def figures_by_channel(deps: Dependencies, until: datetime, length: timedelta = WEEK) -> dict[str, Figures]:
    """The digest's figures of each channel for ``[until - length, until)`` against the period before."""
    since = until - length
    assert deps.runs is not None
    runs, incidents = gather(deps.runs, deps.repository, since - length, until)
    channels = job_channels(runs, incidents, deps)
    default = deps.settings.slack_channel
    split: dict[str, list[FinishedRun]] = defaultdict(list)
    for run in runs:
        split[channels.get(run.job_key, default)].append(run)
    split.setdefault(default, [])
    return {channel: compute(listed, incidents, since=since, until=until) for channel, listed in split.items()}


def handle_digest(at: datetime, deps: Dependencies) -> Outcome:
    """Post each channel's digest of the seven whole days (UTC) before the schedule's day, once."""
    if deps.runs is None:
        return Outcome(action="ignored", detail="digest: runs are not recorded by this deployment")
    until = at.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    posted = []
    for channel, figures in sorted(figures_by_channel(deps, until).items()):
        if figures.total == 0 and figures.runs == 0 and channel != deps.settings.slack_channel:
            continue
        key = f"DIGEST#{until.date().isoformat()}#{channel}"
        expires = int((deps.clock() + timedelta(days=CLAIM_DAYS)).timestamp())
        if not deps.runs.first_time(key, expires):
            continue
        try:
            _post(channel, figures, deps)
        except SlackConfigurationError as exc:
            # This channel cannot be posted to (not found, bot not invited): say what to fix, and post the
            # others rather than fail them all into retries that cannot help.
            deps.runs.forget(key)
            logger.error("could not post the digest", channel=channel, problem=redact(str(exc)))
            count(MetricName.SLACK_DELIVERY_FAILURES)
            continue
        except Exception:
            deps.runs.forget(key)  # handed back: the retry posts it
            raise
        posted.append(channel)
        count(MetricName.DIGESTS_POSTED)
    if not posted:
        return Outcome(action="duplicate", detail=f"digest of the week to {until:%Y-%m-%d %H:%M UTC}: already posted")
    return Outcome(
        action="digest_posted",
        detail=f"digest of the week to {until:%Y-%m-%d %H:%M UTC} posted to " + ", ".join(posted),
        slack="posted",
    )


def _post(channel: str, figures: Figures, deps: Dependencies) -> None:
    chart = _chart(figures) if deps.notifier.threads and figures.total else None
    if not wait_for_slot(channel, deps):
        raise TransientError(f"Slack channel {channel} is backed up; the digest is retried")
    ref = deps.notifier.post(channel, digest_message(figures, channel, chart is not None))
    if chart is None:
        return
    if not wait_for_slot(ref.pace_key, deps):
        logger.warning("digest posted without its chart: the channel is backed up", channel=channel)
        return
    try:
        deps.notifier.upload(
            ref,
            filename=f"emr-failures-{figures.since:%Y-%m-%d}.png",
            content=chart,
            title="Failures per day by category",
        )
    except SlackConfigurationError as exc:  # the digest itself is out: say what to fix
        logger.error("could not upload the digest's chart", channel=channel, problem=redact(str(exc)))


def _chart(figures: Figures) -> bytes | None:
    """The PNG, or None when the charts layer is missing (the digest goes out without it)."""
    from emr_triage.digest.chart import ChartUnavailableError, render_failure_chart

    days = figures.days
    title = f"Failures per day by category, {days[0]:%d %b} - {days[-1]:%d %b %Y}"
    try:
        return render_failure_chart(days, {d: dict(figures.per_day[d]) for d in days}, title=title)
    except ChartUnavailableError as exc:
        logger.error("digest chart unavailable", problem=str(exc))
        return None


def stats_text(store: RunStore, repository: IncidentRepository, *, since: datetime | None, until: datetime) -> str:
    """``emr-triage incidents stats``: the digest's figures for ``[since, until)`` (default: 30 days),
    against the period of the same length before, every channel."""
    from emr_triage.digest.message import digest_text

    since = since or until - timedelta(days=30)
    runs, incidents = gather(store, repository, since - (until - since), until)
    return digest_text(compute(runs, incidents, since=since, until=until), "EMR runs and failures")

"""The checks of a watched run: at its slow limit, confirm it still runs, read what its logs say so far,
and alert it as slow, once; when it finishes after that, edit the alert ("finished late").

The checks ride the follow-up delay queue. SQS delays stop at 15 minutes, so a check due later re-sends
itself with the time left (a run with a 2-hour limit costs about 8 messages), and one delivered again
after the alert does nothing (the alert is claimed on the run's item first).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from emr_triage.alerts.routing import Destination, RoutingError, cached_routes, destination
from emr_triage.alerts.slow import build_finished_late_message, build_slow_message
from emr_triage.analysis.redact import redact
from emr_triage.exceptions import LogReadError, SlackMessageGoneError, TransientError
from emr_triage.incidents.pacing import wait_for_slot
from emr_triage.incidents.runs import due_at, running_for
from emr_triage.logs.locations import parse_s3_uri
from emr_triage.models.events import FollowUp
from emr_triage.models.incident import Outcome, SlackRef
from emr_triage.models.runs import ActiveRun, SlowAlert
from emr_triage.observability import MetricName, count, logger
from emr_triage.ports import Dependencies

RUNNING_STATES = frozenset({"RUNNING"})
MAX_DELAY_SECONDS = 900  # SQS's limit for DelaySeconds
CLAIM_SECONDS = 120  # an invocation posting the slow alert holds the run this long
# The driver's log read for progress: the step's stderr (client mode: the driver itself; cluster mode:
# the YARN client's reports), or an EMR Serverless job run's driver stderr. Read to this many bytes.
_PROGRESS_LOGS = ("stderr.gz", "stderr")
MAX_PROGRESS_BYTES = 64 << 20


def _check_time(due: datetime, deps: Dependencies) -> datetime:
    """The time a check runs at: now, except under the replay command, where time is compressed and every
    check runs at the moment it was due (as it would on AWS)."""
    return due if deps.settings.follow_up_interval_seconds == 0 else deps.clock()


def schedule_check(run: ActiveRun, deps: Dependencies, at: datetime | None = None) -> None:
    """Put the run's next check on the delay queue: at its slow limit, or 15 minutes on (the most SQS
    delays) when the limit is further away. Refused by SQS: raised, and the event retried."""
    due = due_at(run)
    if deps.follow_ups is None or due is None:
        return
    now = at or deps.clock()
    delay = max(0, min(MAX_DELAY_SECONDS, int((due - now).total_seconds()) + 1))
    if deps.settings.follow_up_interval_seconds == 0:
        delay = 0  # the replay command: time compressed, due at once
    deps.follow_ups.schedule(FollowUp(incident_id=run.run_id, check=1, checks=1, purpose="run"), delay)


def _state_now(run: ActiveRun, deps: Dependencies) -> str | None:
    """The run's state as EMR says it now (None: EMR could not say; then the alert is not sent)."""
    if run.kind == "step" and run.cluster_id and run.step_id:
        step = deps.emr.describe_step(run.cluster_id, run.step_id)
        return step.state if step.found else None
    if run.kind == "eks_job_run" and run.virtual_cluster_id and run.job_run_id:
        described = deps.emr.describe_eks_job_run(run.virtual_cluster_id, run.job_run_id)
        return described.state if described.found else None
    if run.application_id and run.job_run_id:
        return deps.emr.job_run_state(run.application_id, run.job_run_id)
    return None


def read_progress(run: ActiveRun, at: datetime, deps: Dependencies) -> str | None:
    """What the run's driver log in S3 says so far: a stuck signature, else its last progress line
    (redacted); None when there is no log yet or it shows nothing."""
    from emr_triage.analysis.progress import read_progress as progress_of
    from emr_triage.logs.reader import ReadStats, iter_text_blocks

    if not run.log_location:
        return None
    try:
        bucket, prefix = parse_s3_uri(run.log_location)
        objects = {o.key.rsplit("/", 1)[-1]: o for o in deps.logs.list_objects(bucket, prefix, limit=50)}
        found = next((objects[name] for name in _PROGRESS_LOGS if name in objects), None)
        if found is None:
            return None
        stream = deps.logs.open_object(bucket, found.key)
        blocks = iter_text_blocks(stream.chunks, max_bytes=MAX_PROGRESS_BYTES, stats=ReadStats())
        lines = (line for block in blocks for line in block.decode("utf-8", "replace").splitlines())
        progress = progress_of(lines, now=at, until=at)
    except (LogReadError, ValueError) as exc:
        logger.warning("the running job's log could not be read", run_id=run.run_id, problem=redact(str(exc)))
        return None
    if progress.signature is None and progress.last_progress is None:
        return None
    return str(progress.summary)


def _route(run: ActiveRun, deps: Dependencies) -> Destination:
    try:
        routes = cached_routes(deps.settings.routing_file)
    except RoutingError as exc:
        logger.error("routing file rejected; using the default channel", problem=str(exc))
        routes = ()
    return destination(run, deps.settings.slack_channel, routes)


def handle_run_check(follow_up: FollowUp, deps: Dependencies) -> Outcome:
    """A check of a watched run (see the module docstring)."""
    store = deps.runs
    run = store.get(follow_up.incident_id) if store is not None else None
    if store is None or run is None:
        return Outcome(action="no_incident", detail=f"run check: run {follow_up.incident_id} is not watched")
    due = due_at(run)
    if run.ended_state is not None or run.slow_alert is not None or due is None:
        what = f"ended {run.ended_state}" if run.ended_state else "already alerted as slow"
        return Outcome(action="duplicate", incident_id=run.run_id, detail=f"run check: {run.label} {what}")
    at = _check_time(due, deps)
    if at < due:
        schedule_check(run, deps, at)
        return Outcome(
            action="run_checked",
            incident_id=run.run_id,
            detail=f"run check: {run.label} is not due until {due.strftime('%H:%M UTC')}; checked again then",
        )
    state = _state_now(run, deps)
    if state not in RUNNING_STATES:
        return Outcome(
            action="run_checked",
            incident_id=run.run_id,
            detail=f"run check: {run.label} is {state or 'unknown to EMR'} now, not running: no slow alert",
        )
    return _alert_slow(run, at, deps)


def _alert_slow(run: ActiveRun, at: datetime, deps: Dependencies) -> Outcome:
    """Post the slow alert once: claimed on the run's item first, the claim handed back if Slack fails."""
    store = deps.runs
    assert store is not None
    now = deps.clock()
    lease = now + timedelta(seconds=CLAIM_SECONDS)

    def claim(current: ActiveRun) -> ActiveRun | None:
        if current.slow_alert is not None or current.ended_state is not None:
            return None
        if current.slow_claim_until is not None and current.slow_claim_until > now:
            return None
        current.slow_claim_until = lease
        return current

    claimed = store.update(run.run_id, claim)
    if claimed is None or claimed.slow_claim_until != lease or claimed.slow_alert is not None:
        return Outcome(action="duplicate", incident_id=run.run_id, detail=f"run check: {run.label} is being alerted")
    running = running_for(claimed, at)
    summary = read_progress(claimed, at, deps)
    route = _route(claimed, deps)
    message = build_slow_message(claimed, running, summary, at)
    try:
        if not wait_for_slot(route.channel, deps):
            raise TransientError(f"Slack channel {route.channel} is backed up; the slow-run alert is retried")
        ref = deps.notifier.post(route.channel, message)
    except Exception:
        count(MetricName.SLACK_DELIVERY_FAILURES)
        store.update(run.run_id, _release)
        raise
    alert = SlowAlert(
        slack=ref.model_copy(update={"routed_to": route.channel}), at=at, running_seconds=running, summary=summary
    )

    def record(current: ActiveRun) -> ActiveRun:
        current.slow_alert, current.slow_claim_until = alert, None
        return current

    stored = store.update(run.run_id, record)
    count(MetricName.SLOW_RUNS)
    count(MetricName.SLACK_MESSAGES_POSTED)
    # Ended while the alert went out: say so at once.
    if stored is not None and stored.ended_state == "SUCCEEDED" and stored.ended_at is not None:
        finished_late(stored, deps)
    return Outcome(
        action="run_slow",
        incident_id=run.run_id,
        detail=f"{run.label} still running after {running // 60} min: alerted as slow"
        + (f" ({summary})" if summary else ""),
        slack="posted",
    )


def _release(current: ActiveRun) -> ActiveRun | None:
    if current.slow_alert is not None:
        return None
    current.slow_claim_until = None
    return current


def finished_late(run: ActiveRun, deps: Dependencies) -> bool:
    """Edit a slow run's alert once it succeeded: "finished late after 2 h 34 min". False: nothing to
    edit (no alert, an incoming webhook's message, or the message is gone)."""
    alert = run.slow_alert
    if alert is None or run.ended_at is None or alert.slack.via_webhook or not deps.notifier.threads:
        return False
    message = build_finished_late_message(run, running_for(run, run.ended_at), alert)
    ref: SlackRef = alert.slack
    try:
        deps.notifier.update(ref, message)
    except SlackMessageGoneError:
        return False
    count(MetricName.SLACK_MESSAGES_UPDATED)
    return True

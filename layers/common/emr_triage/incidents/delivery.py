"""Slack delivery: :func:`deliver_alert` is the one way into Slack.

It makes Slack say what the incident says now: the root message (claimed, posted once, then edited in
place), then, once the logs name a cause, the evidence reply and the redacted extract in its thread. In
incoming-webhook mode it posts one message per incident, once it is final enough.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import partial

from emr_triage.alerts.message import SlackMessage, build_incident_message, build_single_message, build_thread_reply
from emr_triage.alerts.routing import Destination, RoutingError, cached_routes, destination
from emr_triage.analysis.redact import redact
from emr_triage.analysis.verdict import attachment_text
from emr_triage.exceptions import (
    DeliveryError,
    SlackConfigurationError,
    SlackMessageGoneError,
    SlackPostUnansweredError,
    TransientError,
)
from emr_triage.incidents.claims import SLACK_CLAIM_SECONDS, claim_post, mark_unanswered, release_claim, write
from emr_triage.incidents.history import RECURRENCE_DAYS, alert_context, incident_job_key
from emr_triage.incidents.muting import can_mute, matching_mute, reply_under_mute
from emr_triage.incidents.pacing import fold_into_storm, pacing_call, wait_for_slot
from emr_triage.models.analysis import Diagnosis
from emr_triage.models.incident import AlertContext, Incident, SlackAction, SlackRef
from emr_triage.observability import MetricName, count, logger
from emr_triage.ports import Dependencies

MAX_REDELIVERIES = 3


# Verdicts an incoming webhook waits past (until the deadline) for a better one, as it cannot edit: no
# finding, or only symptoms (YARN's words that the application failed, an error no rule knows).
def _provisional(diagnosis: Diagnosis) -> bool:
    if diagnosis.root_kind is None:  # stored before root_kind was recorded
        return diagnosis.category in {"other", "no_failure"}
    return diagnosis.root_kind != "cause"


def deliver_alert(incident_id: str, deps: Dependencies, known: Incident | None = None) -> SlackAction:
    """Make Slack say what the incident says now: the root message (posted once, then edited in place),
    and, once the logs are diagnosed, the evidence and the redacted extract file in its thread.

    ``known``: the incident as the caller's own write just stored it (not read again); the post and every
    record of it are conditional writes, so a change made since is seen before anything is decided twice.

    An incident folded into a storm's alert gets no message of its own: that alert's message, which now
    lists it, is edited instead (it has a message already, so it cannot fold in turn)."""
    if not deps.notifier.threads:
        return _deliver_single(incident_id, deps)
    action, storm, known = _deliver_root(incident_id, deps, known)
    if action not in ("none", "folded", "muted"):
        _deliver_thread(incident_id, deps, known)
    if storm is not None:
        _, _, known = _deliver_root(storm, deps)
        _deliver_thread(storm, deps, known)
    return action


def ready_for_single_message(incident: Incident, follow_ups: bool) -> bool:
    """Whether an incident is final enough for the one message an incoming webhook allows: a cause found
    in the logs, or nothing more to wait for (no logs to read, no follow-up to wait for, the deadline)."""
    if incident.kind == "cluster" or not incident.log_location or not follow_ups or incident.logs_deadline_passed:
        return True
    diagnosis = incident.diagnosis
    return diagnosis is not None and diagnosis.from_logs and not _provisional(diagnosis)


def _deliver_single(incident_id: str, deps: Dependencies) -> SlackAction:
    """Incoming-webhook mode: one message per incident, posted once it is final enough (see
    :func:`ready_for_single_message`), with the diagnosis and a truncated extract inline."""
    incident = deps.repository.get(incident_id)
    if incident is None or incident.held_for_parent or incident.folded_into:
        return "none"
    if incident.slack is not None:
        return "unchanged"
    if not ready_for_single_message(incident, deps.follow_ups is not None):
        return "none"
    route = _destination(incident, deps)
    message = build_single_message(incident, route.mention, _alert_context(incident, deps))
    return _post_once(incident_id, route.channel, message, deps)[0]  # (a webhook cannot fold: no storm)


def _post_once(
    incident_id: str, channel: str, message: SlackMessage, deps: Dependencies
) -> tuple[SlackAction, str | None]:
    """Post the incident's root message if this invocation wins the claim, and record where it went.

    The post waits for the channel's next slot (one post per channel per interval). When a storm has
    backed the channel up beyond ``SLACK_STORM_AFTER_SECONDS``, the incident is folded into the channel's
    latest alert instead ("folded", with that alert's incident id). "unchanged": another invocation posted
    it. A failed post hands the claim back and raises (Lambda retries).

    A root message is posted once even when Slack's answer is lost: an unanswered post is looked for in
    the channel (by the metadata naming the incident) and adopted if there; if not (yet), the event fails
    and the incident remembers it, so the retry looks again before posting (as does an invocation taking
    over the claim of one that died)."""
    claimed = claim_post(incident_id, deps)
    if claimed is None:
        return "unchanged", None
    unanswered = claimed.slack_post_unanswered_at
    try:
        # An earlier post that Slack did not answer may be in the channel: then it is the root message.
        ref = deps.notifier.find_root(_lookup_id(channel, deps), incident_id, unanswered) if unanswered else None
        adopted = ref is not None
        if ref is None:
            if not wait_for_slot(channel, deps, max_wait=deps.settings.slack_storm_after_seconds):
                if (storm := fold_into_storm(incident_id, channel, deps)) is not None:
                    return "folded", storm
                if not wait_for_slot(channel, deps):
                    raise TransientError(
                        f"incident {incident_id}: Slack channel {channel} is backed up beyond this invocation's "
                        "time and has no recent alert to fold it into; retrying the event"
                    )
            ref, adopted = _post_root(incident_id, channel, message, deps)
    except Exception:
        count(MetricName.SLACK_DELIVERY_FAILURES)
        deps.repository.update(incident_id, release_claim)
        raise
    deps.repository.update(incident_id, lambda inc: _record_slack(inc, ref.digest, ref.channel, ref.ts, channel))
    count(MetricName.SLACK_MESSAGES_POSTED)
    if adopted:
        logger.info("adopted the root message Slack posted without answering", incident_id=incident_id, ts=ref.ts)
        count(MetricName.SLACK_POSTS_ADOPTED)
    if deps.notifier.threads:
        now = deps.clock().timestamp()
        pacing_call(lambda pacer: pacer.record_root(channel, incident_id, now, ref.channel), None, deps)
    return "posted", None


def _lookup_id(channel: str, deps: Dependencies) -> str:
    """The channel to look for an unanswered post in: Slack's history takes an id, and a channel routed by
    name has one once any post to it was answered (the pacer keeps it, across invocations)."""
    if not channel.startswith("#"):
        return channel
    return pacing_call(lambda pacer: pacer.channel_id(channel), None, deps) or channel


def _post_root(incident_id: str, channel: str, message: SlackMessage, deps: Dependencies) -> tuple[SlackRef, bool]:
    """Post the root message: its reference, and whether it was adopted (posted by Slack, the answer lost,
    then found in the channel's history: its content is what was just sent).

    Raises
    ------
    DeliveryError
        Not posted, or not answered and not found in the channel: then the incident remembers the post,
        and the retry looks for it again before posting.
    """
    sent_at = deps.clock()
    try:
        return deps.notifier.post(channel, message), False
    except SlackPostUnansweredError as exc:
        found = deps.notifier.find_root(_lookup_id(channel, deps), incident_id, sent_at)
        if found is None:
            deps.repository.update(incident_id, partial(mark_unanswered, at=sent_at))
            raise DeliveryError(
                f"incident {incident_id}: {exc}, and it is not in the channel's history (yet): the retry looks "
                "for it again before posting"
            ) from exc
    return found.model_copy(update={"digest": message.digest()}), True


def _destination(incident: Incident, deps: Dependencies) -> Destination:
    """Where the alert goes (tags, then routes, then the default channel). A bad routing file is logged
    and counted, and alerts go to the default channel rather than nowhere."""
    try:
        routes = cached_routes(deps.settings.routing_file)
    except RoutingError as exc:
        logger.error("routing file rejected; using the default channel", problem=str(exc))
        count(MetricName.SLACK_DELIVERY_FAILURES)
        routes = ()
    return destination(incident, deps.settings.slack_channel, routes)


def thread_due(incident: Incident, now: datetime) -> str | None:
    """The fingerprint of the verdict whose evidence thread is still to be posted, if any (posted, or being
    posted under a live lease: none)."""
    diagnosis = incident.diagnosis
    if incident.slack is None or diagnosis is None or not diagnosis.from_logs or diagnosis.category == "no_failure":
        return None
    if not diagnosis.fingerprint or incident.slack.via_webhook:
        return None
    if incident.slack.thread_fingerprint == diagnosis.fingerprint:
        lease = incident.slack.thread_claim_until
        if lease is None or lease > now:
            return None
    if _provisional(diagnosis) and not incident.logs_deadline_passed:
        return None  # no cause identified yet: the evidence waits for a better log, or the deadline
    return diagnosis.fingerprint


# What the store says around an incident (its history line), kept for one delivery: the passes of one
# delivery (an edit, then the check that nothing changed meanwhile) read it once.
Contexts = dict[tuple[str, str | None, str], "AlertContext | None"]


def _alert_context(incident: Incident, deps: Dependencies, contexts: Contexts | None = None) -> AlertContext | None:
    """Recurrence of the incident's signature and the job's last success, from the store (read once per
    delivery, ``contexts``). History is a nicety: if it cannot be read, the alert goes out without it."""
    diagnosis = incident.diagnosis
    memo = (incident.incident_id, diagnosis.fingerprint if diagnosis else None, incident.status)
    if contexts is not None and memo in contexts:
        return contexts[memo]
    found = _read_alert_context(incident, deps)
    if contexts is not None:
        contexts[memo] = found
    return found


def _read_alert_context(incident: Incident, deps: Dependencies) -> AlertContext | None:
    diagnosis = incident.diagnosis
    key = incident_job_key(incident)
    try:
        seen = None
        if diagnosis is not None and diagnosis.fingerprint and diagnosis.category != "no_failure":
            fingerprint, at, own = diagnosis.fingerprint, incident.failed_at, incident.incident_id
            times = deps.repository.signature_times(
                fingerprint, since=at - timedelta(days=RECURRENCE_DAYS), until=at, exclude=own
            )
            seen = (times, deps.repository.signature_first_seen(fingerprint, until=at, exclude=own))
        success = deps.repository.last_run(key, "SUCCEEDED") if key else None
    except Exception as exc:
        logger.warning("incident history unavailable; alerting without it", problem=redact(str(exc)))
        return None
    return alert_context(incident, seen, success, deps.settings.incident_ttl_days)


def _root_message(
    incident: Incident, deps: Dependencies, contexts: Contexts | None = None
) -> tuple[Destination, SlackMessage]:
    route = _destination(incident, deps)
    buttons = deps.settings.slack_interactive and deps.notifier.threads
    message = build_incident_message(
        incident,
        route.mention,
        _alert_context(incident, deps, contexts),
        buttons=buttons,
        can_mute=can_mute(incident),
        now=deps.clock(),
    )
    return route, message


def _deliver_thread(incident_id: str, deps: Dependencies, known: Incident | None = None) -> bool:
    """Post the evidence as a reply in the root message's thread and upload the full redacted extract
    there, once per verdict (a better verdict from a later log posts its own). The verdict is claimed on
    the incident first (a conditional write), so concurrent invocations post it once; a failure hands the
    claim back for the retry."""
    # (``known``: the incident as the root message's delivery just left it stored, not read again)
    incident = known if known is not None and known.incident_id == incident_id else deps.repository.get(incident_id)
    now = deps.clock()
    fingerprint = thread_due(incident, now) if incident is not None else None
    if incident is None or incident.slack is None or incident.diagnosis is None or fingerprint is None:
        return False
    diagnosis = incident.diagnosis
    root = incident.slack

    def claim(inc: Incident) -> Incident | None:
        if inc.slack is None or inc.slack.ts != root.ts or thread_due(inc, now) != fingerprint:
            return None
        inc.slack.thread_fingerprint = fingerprint
        inc.slack.thread_claim_until = now + timedelta(seconds=SLACK_CLAIM_SECONDS)
        return inc

    def release(inc: Incident) -> Incident | None:
        if inc.slack is None or inc.slack.thread_fingerprint != fingerprint:
            return None
        inc.slack.thread_fingerprint = None
        inc.slack.thread_claim_until = None
        return inc

    def done(inc: Incident) -> Incident | None:
        if inc.slack is None or inc.slack.thread_fingerprint != fingerprint:
            return None
        inc.slack.thread_claim_until = None
        return inc

    def replied(inc: Incident) -> Incident | None:
        if inc.slack is None or inc.slack.ts != root.ts:
            return None
        inc.slack.reply_fingerprint = fingerprint
        return inc

    claimed, taken = write(deps.repository, incident_id, claim)
    if claimed is None or claimed.slack is None or not taken:
        return False
    reply_done = claimed.slack.reply_fingerprint == fingerprint

    def paced() -> bool:
        """The channel's next slot, or (backed up beyond this invocation) the claim handed back: the next
        delivery posts the thread."""
        if wait_for_slot(root.pace_key, deps):
            return True
        deps.repository.update(incident_id, release)
        return False

    try:
        if not reply_done:
            if not paced():
                return False
            deps.notifier.reply(root, build_thread_reply(incident))
            deps.repository.update(incident_id, replied)
        if not paced():
            return False
        deps.notifier.upload(
            root,
            filename=f"{incident.incident_id.replace(':', '-')}-extract.txt",  # no ":" in a file name
            content=redact(attachment_text(diagnosis, incident.findings)),
            title=f"Redacted log extract: {diagnosis.title}",
        )
    except SlackMessageGoneError:
        deps.repository.update(incident_id, release)
        return False  # the root message is gone: the next delivery posts a new one, then its thread
    except SlackConfigurationError as exc:
        # The alert itself is out; a missing files:write scope must not make every event fail and be
        # retried. Say what to fix, count it, and try again with the next event.
        deps.repository.update(incident_id, release)
        logger.error("could not post the evidence thread", incident_id=incident_id, problem=str(exc))
        count(MetricName.SLACK_DELIVERY_FAILURES)
        return False
    except Exception:
        deps.repository.update(incident_id, release)
        count(MetricName.SLACK_DELIVERY_FAILURES)
        raise
    deps.repository.update(incident_id, done)
    count(MetricName.SLACK_THREAD_REPLIES)
    return True


def _deliver_root(
    incident_id: str, deps: Dependencies, known: Incident | None = None
) -> tuple[SlackAction, str | None, Incident | None]:
    """Make the incident's Slack root message say what the incident says now.

    Posts it once: a time-limited claim on the incident stops concurrent invocations from both posting,
    and an invocation that finds the claim taken waits for the other to finish, then fails (so Lambda
    retries it) rather than succeed without an alert. Channel and ts are recorded after the post; later
    changes edit the message in place. The incident is stored before Slack is called, so a Slack outage
    loses nothing: the error propagates, Lambda retries the event, and the retry finishes the delivery.

    After a post or an edit, the incident is looked at again: if it changed meanwhile (a log arrived, a
    concurrent edit won the race with older content), the message is edited again, at most
    MAX_REDELIVERIES times. A message deleted in Slack is forgotten and posted anew. Returns the first
    pass's action (a repost's, after a deleted message), when folded the storm alert's incident, and the
    incident as the last pass saw it stored (for the thread's delivery).
    """
    first: SlackAction | None = None
    storm: str | None = None
    known = known if known is not None and known.incident_id == incident_id else None
    contexts: Contexts = {}
    for _ in range(MAX_REDELIVERIES + 1):
        action, folded_into, known, again = _root_pass(incident_id, deps, known, contexts)
        first = first or action
        storm = storm or folded_into
        if not again:
            break
    return first or "none", storm, known


def _root_pass(
    incident_id: str, deps: Dependencies, known: Incident | None, contexts: Contexts
) -> tuple[SlackAction | None, str | None, Incident | None, bool]:
    """One post or edit of the root message: its action (None: the message was deleted and forgotten),
    the storm alert it was folded into, the incident as this pass left it stored, and whether to look
    again (it may have moved on). The next pass looks at that incident without reading it again: the
    edit's record is a write conditional on the version read, so what it returns has any change made
    meanwhile. ``known``: that incident, or None to read it."""
    incident = known if known is not None else deps.repository.get(incident_id)
    if incident is None or (incident.held_for_parent and incident.slack is None) or incident.folded_into:
        return "none", None, incident, False
    if incident.slack is not None and incident.slack.via_webhook:
        return "unchanged", None, incident, False  # alerted through an incoming webhook (before a bot)
    route, message = _root_message(incident, deps, contexts)
    if incident.slack is None and incident.muted_under:
        return "muted", None, incident, False  # alerted in a muted failure's thread: it stays there
    if incident.slack is None:
        mute, wait = matching_mute(incident, deps)
        if wait:
            return "none", None, incident, False  # its job has a mute: alerted once its logs say if the same
        if mute is not None and reply_under_mute(incident, mute, deps):
            return "muted", None, incident, False
        action, storm = _post_once(incident_id, route.channel, message, deps)
        # (posted: read again, for the post's record and anything written while it went out)
        return action, storm, None, action == "posted"
    if incident.slack.digest == message.digest():
        return "unchanged", None, incident, False
    try:
        ref = deps.notifier.update(incident.slack, message)
    except SlackMessageGoneError:
        logger.warning("the alert's Slack message was deleted; posting a new one", incident_id=incident_id)
        return None, None, deps.repository.update(incident_id, _forget_slack_message), True
    except Exception:
        count(MetricName.SLACK_DELIVERY_FAILURES)
        raise
    stored = deps.repository.update(incident_id, lambda inc: _record_slack(inc, ref.digest, ref.channel, ref.ts))
    count(MetricName.SLACK_MESSAGES_UPDATED)
    return "updated", None, stored, True


def _forget_slack_message(incident: Incident) -> Incident:
    incident.slack = None
    incident.slack_claim_until = None
    return incident


def _record_slack(incident: Incident, digest: str, channel: str, ts: str, routed_to: str | None = None) -> Incident:
    same = incident.slack is not None and incident.slack.ts == ts
    previous = incident.slack if same else None
    incident.slack = SlackRef(
        channel=channel,
        ts=ts,
        digest=digest,
        routed_to=routed_to or (previous.routed_to if previous else None),
        thread_fingerprint=previous.thread_fingerprint if previous else None,
        reply_fingerprint=previous.reply_fingerprint if previous else None,
        thread_claim_until=previous.thread_claim_until if previous else None,
    )
    incident.slack_claim_until = None
    incident.slack_post_unanswered_at = None
    return incident

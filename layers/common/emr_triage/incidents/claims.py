"""Doing a thing once across concurrent invocations: claims written on the incident, some with a lease.

Every claim is a change the repository writes conditionally (re-read and re-applied on conflict), so of
concurrent invocations exactly one sees its change written: :func:`write` says which.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial

from emr_triage.exceptions import TransientError
from emr_triage.models.incident import Incident
from emr_triage.ports import Dependencies, IncidentRepository, Mutation

SLACK_CLAIM_SECONDS = 120
# How long to wait for another invocation that holds the claim to finish posting, before retrying.
SLACK_CLAIM_WAIT_SECONDS = 20


def write(repository: IncidentRepository, incident_id: str, mutate: Mutation) -> tuple[Incident | None, bool]:
    """Apply ``mutate`` through the repository: the incident as stored after it, and whether this call's
    change was written (False: ``mutate`` declined on the attempt that counted, or there is no incident)."""
    written: list[bool] = [False]

    def tracked(incident: Incident) -> Incident | None:
        changed = mutate(incident)
        written[0] = changed is not None  # a conflict re-reads and re-applies: the last attempt counts
        return changed

    stored = repository.update(incident_id, tracked)
    return stored, written[0] and stored is not None


def claim_post(incident_id: str, deps: Dependencies) -> Incident | None:
    """Take the right to post the root message: the incident as claimed. None: another invocation posted
    it meanwhile.

    Raises
    ------
    TransientError
        Another invocation holds the claim and has not finished within the wait: retry the event later
        (by then it has posted, or its claim has expired because it died).
    """
    waited = 0.0
    while True:
        current, claimed = write(deps.repository, incident_id, partial(_claim_root, now=deps.clock()))
        if claimed and current is not None:
            return current
        if current is not None and current.slack is not None:
            return None
        left = deps.seconds_left()
        if waited >= SLACK_CLAIM_WAIT_SECONDS or (left is not None and left < 1):
            raise TransientError(
                f"incident {incident_id}: another invocation is posting its Slack message and did not finish "
                f"within {waited:.0f} s; retrying the event (it will have posted, or its claim will have expired)"
            )
        deps.sleep(1.0)
        waited += 1.0


def _claim_root(incident: Incident, now: datetime) -> Incident | None:
    """The root-message claim: taken unless the message is out or another invocation's lease is live.

    A lease still there once expired was never handed back: its holder died (a timeout, a crash), maybe
    after Slack had posted its message, so the post is remembered as unanswered from when that lease was
    taken, and the taker looks for it in the channel before posting (see ``delivery._post_once``)."""
    if incident.slack is not None or (incident.slack_claim_until is not None and incident.slack_claim_until > now):
        return None
    if incident.slack_claim_until is not None:
        taken = incident.slack_claim_until - timedelta(seconds=SLACK_CLAIM_SECONDS)
        mark_unanswered(incident, taken)
    incident.slack_claim_until = now + timedelta(seconds=SLACK_CLAIM_SECONDS)
    return incident


def release_claim(incident: Incident) -> Incident | None:
    if incident.slack_claim_until is None:
        return None
    incident.slack_claim_until = None
    return incident


def mark_unanswered(incident: Incident, at: datetime) -> Incident | None:
    """Remember that a root post sent at ``at`` may be in the channel (Slack did not answer it): the next
    post looks for it first. The earliest such post is kept (the lookup reads the history from there)."""
    if incident.slack is not None:
        return None
    if incident.slack_post_unanswered_at is not None and incident.slack_post_unanswered_at <= at:
        return None
    incident.slack_post_unanswered_at = at
    return incident


def once(
    incident_id: str,
    claim: Callable[[Incident], bool],
    release: Callable[[Incident], bool],
    action: Callable[[], object],
    deps: Dependencies,
) -> None:
    """Do ``action`` once however many invocations try: ``claim`` marks it taken on the incident (a
    versioned write; False: already taken, nothing to do); if ``action`` fails, ``release`` hands the mark
    back (False: nothing to hand back) and the error propagates, so the retry takes it again."""
    _, claimed = write(deps.repository, incident_id, lambda inc: inc if claim(inc) else None)
    if not claimed:
        return
    try:
        action()
    except Exception:
        deps.repository.update(incident_id, lambda inc: inc if release(inc) else None)
        raise

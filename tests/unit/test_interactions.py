"""People acting from the alert (issue 16), on the in-memory adapters: what each button changes, who may
press it, mutes at delivery, the buttons and status lines on the message, and /emr-triage's answers."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from tests.fakes.memory import MemorySlackState, make_dependencies
from tests.unit.test_block_kit import message_problems
from tests.unit.test_message import FAILED_AT, MENTIONS, _diagnosis, _incident

from emr_triage.alerts.message import build_incident_message
from emr_triage.incidents.delivery import deliver_alert
from emr_triage.incidents.interactions import Press, act
from emr_triage.incidents.muting import matching_mute
from emr_triage.interactive.commands import Asker, answer
from emr_triage.models.incident import Incident, MuteRef, SlackRef
from emr_triage.ports import Dependencies

INCIDENT = "j-3ANP7YJ2WQ0LC.s-3H8ZKQW0EXAMP"
CHANNEL = "C0DATAPLT"
DANA = "U0DANAONC"
NOBODY = frozenset[str]()


def _no_group(group: str) -> frozenset[str]:
    return NOBODY


def _world(**environment: str) -> tuple[Dependencies, Any, Any, MemorySlackState]:
    deps, repository, _, _, notifier = make_dependencies(
        now=FAILED_AT + timedelta(minutes=7), environment={"SLACK_INTERACTIVE": "true", **environment}
    )
    mutes = MemorySlackState()
    deps = replace(deps, mutes=mutes)
    alerted = _incident(slack=SlackRef(channel=CHANNEL, ts="1763604826.000100"))
    repository.create(alerted)
    return deps, repository, notifier, mutes


def _press(action: str, user: str = DANA, **fields: Any) -> Press:
    return Press(action=action, incident_id=INCIDENT, user=user, channel=CHANNEL, **fields)


# ---------------------------------------------------------------------------------------------------
# What each press changes
# ---------------------------------------------------------------------------------------------------
def test_acknowledge_records_who_and_when_once() -> None:
    deps, repository, _, _ = _world()
    # When Dana acknowledges the alert
    first = act(_press("acknowledge"), deps, _no_group)
    # Then the incident records her and the time, and says so on its timeline
    stored = repository.get(INCIDENT)
    assert first.changed and stored.acknowledged_by == DANA and stored.acknowledged_at == deps.clock()
    assert stored.timeline[-1].what == f"acknowledged by {DANA} from Slack"
    # And a second press (hers or someone else's) changes nothing and says who was first
    again = act(_press("acknowledge", user="U0SOMEONE"), deps, _no_group)
    assert not again.changed and again.note is not None and f"<@{DANA}>" in again.note
    assert repository.get(INCIDENT).version == stored.version


def test_resolve_then_reopen() -> None:
    deps, repository, _, _ = _world()
    assert act(_press("resolve"), deps, _no_group).changed
    resolved = repository.get(INCIDENT)
    assert (resolved.status, resolved.resolved_by_user) == ("RESOLVED", DANA)
    assert not act(_press("resolve"), deps, _no_group).changed  # already resolved: nothing written
    assert act(_press("reopen"), deps, _no_group).changed
    reopened = repository.get(INCIDENT)
    assert (reopened.status, reopened.resolved_at, reopened.resolved_by_user) == ("OPEN", None, None)


def test_mute_stores_the_mute_and_unmute_forgets_it() -> None:
    deps, repository, _, mutes = _world()
    # When Dana mutes the failure for 24 hours
    assert act(_press("mute", choice="24h", user_name="dana.oncall"), deps, _no_group).changed
    # Then the incident shows the mute, and the mute is stored for the job and the signature
    mute = repository.get(INCIDENT).mute
    assert mute is not None and mute.until == deps.clock() + timedelta(hours=24) and mute.by_name == "dana.oncall"
    (stored,) = mutes.all()
    assert (stored.job_key, stored.fingerprint, stored.incident_id) == (mute.job_key, "21fbf49dfa868d8a", INCIDENT)
    # And unmuting removes both
    assert act(_press("unmute"), deps, _no_group).changed
    assert repository.get(INCIDENT).mute is None and mutes.all() == []


def test_a_failure_without_a_signature_cannot_be_muted() -> None:
    deps, repository, _, mutes = _world()
    repository.update(INCIDENT, lambda inc: inc.model_copy(update={"diagnosis": None}))
    result = act(_press("mute", choice="1h"), deps, _no_group)
    assert not result.changed and "cannot be muted" in (result.note or "") and mutes.all() == []


@pytest.mark.parametrize(
    "press",
    [
        Press(action="delete_everything", incident_id=INCIDENT, user=DANA),
        Press(action="mute", incident_id=INCIDENT, user=DANA, choice="forever"),
        Press(action="acknowledge", incident_id=INCIDENT, user="<!channel>"),
    ],
    ids=["unknown-action", "unknown-duration", "not-a-user-id"],
)
def test_what_the_buttons_never_send_is_refused(press: Press) -> None:
    deps, repository, _, _ = _world()
    with pytest.raises(ValueError, match="unknown"):
        act(press, deps, _no_group)
    assert repository.get(INCIDENT).version == 0


def test_a_press_on_an_expired_incident_says_so() -> None:
    deps, _, _, _ = _world()
    result = act(replace(_press("acknowledge"), incident_id="j-GONE.s-GONE"), deps, _no_group)
    assert not result.changed and "no longer on record" in (result.note or "")


# ---------------------------------------------------------------------------------------------------
# Who may press what
# ---------------------------------------------------------------------------------------------------
def test_only_deciders_may_mute_or_resolve_but_anyone_in_the_channel_may_acknowledge() -> None:
    deps, repository, _, _ = _world(SLACK_DECIDERS="U0BOSS0001,S0ONCALL")
    # Given Dana, neither a decider nor in the on-call group
    refused = act(_press("resolve"), deps, _no_group)
    assert not refused.changed and "not allowed to resolve" in (refused.note or "")
    assert repository.get(INCIDENT).status == "OPEN"
    # Then she may still acknowledge
    assert act(_press("acknowledge"), deps, _no_group).changed
    # And once in the user group, she may resolve
    assert act(_press("resolve"), deps, lambda group: frozenset({DANA}) if group == "S0ONCALL" else NOBODY).changed


def test_a_press_from_another_channel_changes_nothing() -> None:
    deps, repository, _, _ = _world()
    result = act(replace(_press("acknowledge"), channel="C0ELSEWHERE"), deps, _no_group)
    assert not result.changed and "another channel" in (result.note or "")
    assert repository.get(INCIDENT).acknowledged_by is None


# ---------------------------------------------------------------------------------------------------
# Mutes at delivery
# ---------------------------------------------------------------------------------------------------
def _next_failure(**changes: Any) -> Incident:
    fields: dict[str, Any] = {
        "incident_id": "j-2NEXTNIGHT00.s-2NEXTNIGHT00",
        "cluster_id": "j-2NEXTNIGHT00",
        "step_id": "s-2NEXTNIGHT00",
        "opened_at": FAILED_AT + timedelta(days=1),
        "failed_at": FAILED_AT + timedelta(days=1),
    }
    fields.update(changes)
    return _incident(**fields)


def test_the_same_failure_of_a_muted_job_replies_in_the_muting_alerts_thread_and_mentions_no_one() -> None:
    deps, repository, notifier, _ = _world(SLACK_CHANNEL="#alerts")
    act(_press("mute", choice="7d", user_name="dana.oncall"), deps, _no_group)
    # When the job fails the same way again (the same signature, diagnosed from its logs)
    repository.create(_next_failure())
    action = deliver_alert("j-2NEXTNIGHT00.s-2NEXTNIGHT00", deps)
    # Then no root message is posted: one reply goes into the muting alert's thread, naming no one
    assert action == "muted" and notifier.posts == []
    ((ref, reply),) = notifier.replies
    assert ref.ts == "1763604826.000100" and "Failed again" in reply.text and "dana.oncall" in reply.text
    assert "<@" not in json.dumps(reply.blocks) and "<!here" not in reply.text and "<!channel" not in reply.text
    # And delivering it again (a redelivered event, a log check) posts nothing more
    assert deliver_alert("j-2NEXTNIGHT00.s-2NEXTNIGHT00", deps) == "muted"
    assert len(notifier.replies) == 1 and notifier.posts == []
    assert repository.get("j-2NEXTNIGHT00.s-2NEXTNIGHT00").muted_under == INCIDENT


def test_a_muted_jobs_new_failure_waits_for_its_signature_and_a_different_one_pages() -> None:
    deps, _, notifier, _ = _world()
    deps = replace(deps, follow_ups=object())  # type: ignore[arg-type]  # logs may still come
    act(_press("mute", choice="1h"), deps, _no_group)
    # Given the next failure of the job, not diagnosed from its logs yet
    undiagnosed = _next_failure(diagnosis=_diagnosis(from_logs=False, fingerprint=None))
    # Then it waits for them (it may be the muted failure)
    assert matching_mute(undiagnosed, deps) == (None, True)
    # And once its logs show another failure, it is alerted as usual
    other = _next_failure(diagnosis=_diagnosis(fingerprint="0123456789abcdef"))
    assert matching_mute(other, deps) == (None, False)
    # And when nothing more is coming (the logs' deadline), it is alerted too
    assert matching_mute(undiagnosed.model_copy(update={"logs_deadline_passed": True}), deps) == (None, False)
    assert notifier.posts == []


def test_an_expired_mute_no_longer_holds() -> None:
    deps, _, _, _ = _world()
    act(_press("mute", choice="1h"), deps, _no_group)
    later = replace(deps, clock=lambda: FAILED_AT + timedelta(hours=3))
    assert matching_mute(_next_failure(), later) == (None, False)
    assert matching_mute(_next_failure(), deps)[0] is not None


# ---------------------------------------------------------------------------------------------------
# The message: buttons and what people did
# ---------------------------------------------------------------------------------------------------
NOW = datetime(2026, 11, 20, 3, 0, tzinfo=UTC)


def _actions(incident: Incident, can_mute: bool = True) -> list[str]:
    message = build_incident_message(incident, buttons=True, can_mute=can_mute, now=NOW)
    (block,) = [b for b in message.blocks if b["type"] == "actions"]
    assert block["block_id"] == f"emr-triage/{incident.incident_id}"
    assert message_problems({"blocks": message.blocks}) == []
    return [e["action_id"] for e in block["elements"]]


def test_the_buttons_offer_what_can_be_done_now() -> None:
    assert _actions(_incident()) == ["acknowledge", "mute", "resolve"]
    assert _actions(_incident(), can_mute=False) == ["acknowledge", "resolve"]
    acknowledged = _incident(acknowledged_by=DANA, acknowledged_at=NOW)
    assert _actions(acknowledged) == ["mute", "resolve"]
    muted = acknowledged.model_copy(
        update={"mute": MuteRef(fingerprint="f", job_key="k", by=DANA, until=NOW + timedelta(hours=1))}
    )
    assert _actions(muted) == ["unmute", "resolve"]
    # (a resolved failure can still be muted: its next occurrences are what a mute is for)
    assert _actions(_incident(status="RESOLVED", resolved_by_user=DANA)) == ["mute", "reopen"]
    # And without the interactive function there are none
    assert all(b["type"] != "actions" for b in build_incident_message(_incident()).blocks)


def test_the_message_says_who_acknowledged_muted_and_resolved() -> None:
    incident = _incident(
        acknowledged_by=DANA,
        acknowledged_at=FAILED_AT + timedelta(minutes=7),
        opened_at=FAILED_AT,
        status="RESOLVED",
        resolved_by_user=DANA,
        resolved_at=FAILED_AT + timedelta(hours=1),
    )
    text = json.dumps(build_incident_message(incident, buttons=True, now=NOW).blocks)
    assert f"Acknowledged* by <@{DANA}>" in text and "(7 min after the alert)" in text
    assert f"Resolved* by <@{DANA}>" in text and "Resolved:*" not in text
    assert "<!date^" in text and "|2026-11-20 02:20 UTC>" in text  # each reader's time zone, UTC as fallback


# ---------------------------------------------------------------------------------------------------
# /emr-triage
# ---------------------------------------------------------------------------------------------------
def test_the_slash_command_answers_open_show_mutes_and_help() -> None:
    deps, repository, _, _ = _world()
    repository.update(INCIDENT, lambda inc: inc.model_copy(update={"diagnosis": _diagnosis(title=f"Evil {MENTIONS}")}))
    here = Asker(user=DANA, channel=CHANNEL)
    listed = answer("open", here, deps, _no_group)
    assert "*1 open incident* in this channel" in listed and INCIDENT in listed
    # (text from the logs is escaped: it cannot mention anyone)
    assert "<!channel>" not in listed and "<@U123ABC>" not in listed and "&lt;!channel&gt;" in listed
    assert answer("open", Asker(user=DANA, channel="C0ELSEWHERE"), deps, _no_group).startswith("No open incident")
    assert f"`{INCIDENT}`" in answer(f"show {INCIDENT}", here, deps, _no_group)
    assert "another channel" in answer(
        f"show {INCIDENT}",
        Asker(DANA, "C0ELSEWHERE"),
        replace(deps, settings=deps.settings.model_copy(update={"slack_deciders": "U0BOSS0001"})),
        _no_group,
    )
    assert answer("mutes", here, deps, _no_group) == "No failure is muted."
    act(_press("mute", choice="24h"), deps, _no_group)
    assert "*1 muted failure*" in answer("mutes", here, deps, _no_group)
    assert answer("help", here, deps, _no_group).startswith("*/emr-triage*")
    unknown = answer("drop table <!here>", here, deps, _no_group)
    assert unknown.startswith("I do not know") and "<!here>" not in unknown

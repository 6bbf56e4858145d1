"""One root message even when Slack's answer to the post is lost (incidents/delivery.py, claims.py), with the
in-memory fakes: the unanswered post is looked for by its incident and adopted; not found, the event fails and
the retry looks again before posting; a claim taken over from a dead invocation is looked for first too."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from tests.fakes.memory import FakeNotifier, make_dependencies

from emr_triage.exceptions import DeliveryError
from emr_triage.incidents import delivery
from emr_triage.incidents.emr_events import handle_step_event
from emr_triage.incidents.service import deliver_alert, step_incident_id
from emr_triage.models.emr import ClusterInfo, StepInfo
from emr_triage.models.events import EmrStepStatusChange, parse_event
from emr_triage.ports import Dependencies

EVENTS = Path(__file__).resolve().parents[2] / "events"
CLUSTER, STEP = "j-123456789ABCD", "s-ZYXWVUTSRQPON"
INCIDENT = step_incident_id(CLUSTER, STEP)


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    names: list[str] = []
    monkeypatch.setattr(delivery, "count", lambda name, value=1, **dimensions: names.append(name))
    return names


def _failed_step() -> tuple[Dependencies, FakeNotifier, EmrStepStatusChange]:
    deps, _, emr, _, notifier = make_dependencies()
    emr.clusters[CLUSTER] = ClusterInfo(cluster_id=CLUSTER, name="dev", release_label="emr-7.5.0")
    emr.steps[STEP] = StepInfo(step_id=STEP, name="CustomJAR", state="FAILED", action_on_failure="CONTINUE")
    raw = json.loads((EVENTS / "step-failed.json").read_text())
    event = parse_event(raw)
    assert isinstance(event, EmrStepStatusChange)
    return deps, notifier, event


def test_a_post_slack_made_without_answering_is_adopted_at_once(counted: list[str]) -> None:
    # Given Slack posts the root message but its answer is lost
    deps, notifier, event = _failed_step()
    notifier.unanswered_posts = 1
    # When the failure is delivered
    outcome = handle_step_event(event, deps)
    # Then the message is found by its incident and recorded, not posted again
    assert outcome.slack == "posted" and len(notifier.posts) == 1
    ((channel, incident_id, _),) = notifier.lookups
    assert (channel, incident_id) == ("#alerts", INCIDENT)
    incident = deps.repository.get(INCIDENT)
    assert incident is not None and incident.slack is not None and incident.slack.ts == "17000.0001"
    assert incident.slack.digest == notifier.posts[0][1].digest()  # it says what was just sent
    assert incident.slack_post_unanswered_at is None and incident.slack_claim_until is None
    assert counted.count("SlackPostsAdopted") == 1 and counted.count("SlackMessagesPosted") == 1
    assert notifier.updates == []


def test_a_post_not_found_fails_the_event_and_the_retry_looks_again_before_posting(counted: list[str]) -> None:
    # Given Slack's answer is lost and the message is not in the channel (not posted, or not yet)
    deps, notifier, event = _failed_step()
    notifier.lost_posts = 1
    sent_at = deps.clock()
    # When the failure is delivered
    with pytest.raises(DeliveryError, match="the retry looks for it again before posting"):
        handle_step_event(event, deps)
    # Then the claim is handed back and the incident remembers the unanswered post
    incident = deps.repository.get(INCIDENT)
    assert incident is not None and incident.slack is None and incident.slack_claim_until is None
    assert incident.slack_post_unanswered_at == sent_at
    # When Lambda retries it a minute later
    deps.sleep(60)
    assert deliver_alert(INCIDENT, deps) == "posted"
    # Then it looked first (from the first post's time), found nothing, and posted once
    assert [since for _, _, since in notifier.lookups] == [sent_at, sent_at]
    assert len(notifier.posts) == 1 and "SlackPostsAdopted" not in counted
    incident = deps.repository.get(INCIDENT)
    assert incident is not None and incident.slack is not None and incident.slack_post_unanswered_at is None


def test_the_retry_adopts_a_post_that_landed_after_the_first_attempt_gave_up(counted: list[str]) -> None:
    # Given the first attempt's post was not found at once (Slack posted it later)
    deps, notifier, event = _failed_step()
    notifier.unanswered_posts, notifier.history = 1, False
    with pytest.raises(DeliveryError):
        handle_step_event(event, deps)
    notifier.history = True
    # When the event is retried
    assert deliver_alert(INCIDENT, deps) == "posted"
    # Then the message is adopted, not posted again, and edited once to what the incident says now
    # (what the adopted message said is not known)
    assert len(notifier.posts) == 1 and len(notifier.updates) == 1
    incident = deps.repository.get(INCIDENT)
    assert incident is not None and incident.slack is not None and incident.slack.ts == "17000.0001"
    assert incident.slack.digest == notifier.updates[0][1].digest()
    assert counted.count("SlackPostsAdopted") == 1 and counted.count("SlackMessagesPosted") == 1


def test_a_claim_taken_over_from_a_dead_invocation_looks_for_its_post_first() -> None:
    # Given an invocation claimed the post, posted, and died before recording it (its claim never handed back)
    deps, notifier, event = _failed_step()
    notifier.fail_with = DeliveryError("down")
    with pytest.raises(DeliveryError):
        handle_step_event(event, deps)
    notifier.fail_with = None
    claimed_at = deps.clock()
    until = claimed_at + timedelta(seconds=120)
    deps.repository.update(INCIDENT, lambda i: i.model_copy(update={"slack_claim_until": until}))
    incident = deps.repository.get(INCIDENT)
    assert incident is not None
    notifier.posts.append(("#alerts", delivery._root_message(incident, deps)[1]))  # what it posted
    # When the next delivery comes after the claim expired
    deps.sleep(121)
    assert deliver_alert(INCIDENT, deps) == "posted"
    # Then it looked in the channel from when the dead invocation claimed the post, and adopted its message
    assert [since for _, _, since in notifier.lookups] == [claimed_at]
    assert len(notifier.posts) == 1
    incident = deps.repository.get(INCIDENT)
    assert incident is not None and incident.slack is not None and incident.slack.ts == "17000.0001"


def test_a_channel_routed_by_name_is_looked_up_by_the_id_an_earlier_post_was_answered_with() -> None:
    # Given alerts routed to #alerts, whose id an earlier post (from any invocation) told the pacer
    from dataclasses import replace

    from tests.fakes.memory import MemoryPacer

    deps, notifier, event = _failed_step()
    deps = replace(deps, pacer=MemoryPacer(interval=0.0, ids={"#alerts": "C0ALERTS1"}))
    notifier.unanswered_posts = 1
    # When Slack posts the root message but its answer is lost
    handle_step_event(event, deps)
    # Then the history is searched in the channel's id (conversations.history takes no name)
    ((channel, incident_id, _),) = notifier.lookups
    assert (channel, incident_id) == ("C0ALERTS1", INCIDENT)

"""SlackInteractionsFunction behind a function URL on 127.0.0.1, driven with real signed HTTP requests
through the real slack-bolt and slack-sdk, the embedded AWS (moto) and the fake Slack Web API.

Every request Slack could not have sent, or did send already, is refused (400/401), counted, and changes
nothing: no incident write, no Slack call. A press Slack retries acts once."""

from __future__ import annotations

import io
import json
import time
import urllib.request
from collections.abc import Iterator
from contextlib import redirect_stdout
from dataclasses import dataclass, field
from typing import Any
from urllib.error import HTTPError

import pytest
from tests.fakes.slack_api import FakeSlack
from tests.integration.conftest import EVENTS, ROOT, replay, slack_env

from emr_triage.local.function_url import FunctionUrl
from emr_triage.local.interactions import LOCAL_SIGNING_SECRET, aimed, body_of, sign
from emr_triage.local.replay import LocalStack
from emr_triage.local.scenario import load_scenario
from emr_triage.models.incident import Incident

FOLDER = EVENTS / "scenarios" / "acknowledge-mute-then-unmute"
INCIDENT = "j-1ORDERSETL020.s-2LOADORDERS00"
NEXT_NIGHT = "j-3ORDERSNEXT21.s-3LOADORDERS21"
DANA = "U0DANAONC"


@dataclass
class World:
    stack: LocalStack
    slack: FakeSlack
    url: str
    outputs: list[str] = field(default_factory=list)

    def incident(self, incident_id: str = INCIDENT) -> Incident:
        found = self.stack.incident(incident_id)
        assert found is not None
        return found

    def saved(self, name: str, **changes: Any) -> dict[str, Any]:
        """A saved interaction of the scenario, aimed at the replayed alert."""
        slack = self.incident().slack
        assert slack is not None
        payload = aimed(json.loads((FOLDER / name).read_text()), slack.channel, slack.ts)
        payload.update(changes)
        return payload

    def post(self, body: str, headers: dict[str, str], method: str = "POST") -> tuple[int, str]:
        request = urllib.request.Request(self.url, data=body.encode(), headers=headers, method=method)  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310 - 127.0.0.1
                return response.status, response.read().decode()
        except HTTPError as exc:
            return exc.code, exc.read().decode()

    def send(self, payload: dict[str, Any], **headers: str) -> tuple[int, str]:
        body = body_of(payload)
        return self.post(body, {**sign(body, LOCAL_SIGNING_SECRET), **headers})


@pytest.fixture
def world(slack: FakeSlack) -> Iterator[World]:
    environment = {**slack_env(slack), "SLACK_TEAM_ID": "T0ACMEDATA", "SLACK_APP_ID": "A0EMRTRIAGE"}
    with LocalStack(ROOT, scenario=load_scenario(FOLDER), folder=FOLDER, extra_environment=environment) as stack:
        replay(stack, FOLDER, "01-step-failed.json")
        replay(stack, FOLDER, "02-step-stderr-log-created.json")
        spec = next(s for s in stack.specs if s.logical_id == "SlackInteractionsFunction")
        world = World(stack, slack, "")

        def invoke(event: dict[str, Any]) -> dict[str, Any]:
            out = io.StringIO()
            with redirect_stdout(out):
                answer = stack.invoke(spec, event)
            world.outputs.append(out.getvalue())
            return answer

        with FunctionUrl(invoke) as url:
            world.url = url
            yield world


def _edits(slack: FakeSlack) -> int:
    return len(slack.calls_to("chat.update"))


def test_a_signed_press_acknowledges_the_incident_and_edits_the_alert(world: World) -> None:
    # Given the alert of a failed step, and its Acknowledge button pressed by Dana
    before = _edits(world.slack)
    status, body = world.send(world.saved("03-acknowledge.json"))
    # Then Slack gets its acknowledgement, the incident records who and when, and the alert is edited:
    # it says who acknowledged, and the Acknowledge button is gone
    assert (status, body) == (200, "")
    incident = world.incident()
    assert incident.acknowledged_by == DANA and incident.acknowledged_at is not None
    assert _edits(world.slack) == before + 1
    (root,) = world.slack.root_messages()
    text = json.dumps(root.blocks)
    assert f"Acknowledged* by <@{DANA}>" in text and '"action_id": "acknowledge"' not in text
    assert '"action_id": "mute"' in text and '"action_id": "resolve"' in text
    # And time to acknowledge is a metric
    assert any('"TimeToAcknowledge"' in out for out in world.outputs)


def _press(world: World) -> dict[str, Any]:
    return world.saved("03-acknowledge.json")


def _unsigned(world: World) -> tuple[str, dict[str, str]]:
    body = body_of(_press(world))
    return body, {"content-type": "application/x-www-form-urlencoded"}


def _wrong_signature(world: World) -> tuple[str, dict[str, str]]:
    body = body_of(_press(world))
    return body, sign(body, "not-the-signing-secret-of-this-app")


def _stale(world: World) -> tuple[str, dict[str, str]]:
    body = body_of(_press(world))
    return body, sign(body, LOCAL_SIGNING_SECRET, int(time.time()) - 6 * 60)


def _tampered(world: World) -> tuple[str, dict[str, str]]:
    body = body_of(_press(world))
    headers = sign(body, LOCAL_SIGNING_SECRET)
    return body.replace("acknowledge", "resolve"), headers


def _signed(payload: dict[str, Any]) -> tuple[str, dict[str, str]]:
    body = body_of(payload)
    return body, sign(body, LOCAL_SIGNING_SECRET)


def _unknown_action(world: World) -> tuple[str, dict[str, str]]:
    payload = _press(world)
    payload["actions"][0]["action_id"] = "delete_incident"
    return _signed(payload)


def _other_block(world: World) -> tuple[str, dict[str, str]]:
    payload = _press(world)
    payload["actions"][0]["block_id"] = "someone-elses-app/123"
    return _signed(payload)


def _oversized(world: World) -> tuple[str, dict[str, str]]:
    payload = _press(world)
    payload["padding"] = "x" * 70_000
    return _signed(payload)


def _malformed(world: World) -> tuple[str, dict[str, str]]:
    body = "payload=%7Bnot-json"
    return body, sign(body, LOCAL_SIGNING_SECRET)


def _not_ours(world: World) -> tuple[str, dict[str, str]]:
    body = "token=x&command=%2Fdeploy&text=prod&trigger_id=1.2.3"
    return body, sign(body, LOCAL_SIGNING_SECRET)


def _forged_lazy(world: World) -> tuple[str, dict[str, str]]:
    body, headers = _signed(_press(world))
    return body, {**headers, "x-slack-bolt-lazy-only": "1", "x-slack-bolt-lazy-function-name": "_lazy"}


def _wrong_team(world: World) -> tuple[str, dict[str, str]]:
    return _signed({**_press(world), "team": {"id": "T0EVILCORP", "domain": "evil"}})


def _wrong_app(world: World) -> tuple[str, dict[str, str]]:
    return _signed({**_press(world), "api_app_id": "A0OTHERAPP"})


REFUSED = [
    (_unsigned, 401, "unsigned"),
    (_wrong_signature, 401, "bad_signature"),
    (_stale, 401, "stale"),
    (_tampered, 401, "bad_signature"),
    (_wrong_team, 401, "wrong_team"),
    (_wrong_app, 401, "wrong_app"),
    (_unknown_action, 400, "unknown_action"),
    (_other_block, 400, "unknown_action"),
    (_not_ours, 400, "unknown_action"),
    (_oversized, 400, "too_large"),
    (_malformed, 400, "malformed"),
    (_forged_lazy, 400, "forged"),
]


@pytest.mark.parametrize(
    ("request_of", "status", "reason"), REFUSED, ids=[f.__name__.strip("_") for f, _, _ in REFUSED]
)
def test_a_request_slack_did_not_send_is_refused_counted_and_changes_nothing(
    world: World, request_of: Any, status: int, reason: str
) -> None:
    # Given the incident and Slack as they are
    version, calls = world.incident().version, len(world.slack.calls)
    # When a request Slack could not have sent reaches the URL
    body, headers = request_of(world)
    answered, text = world.post(body, headers)
    # Then it is refused with the right status and a reason, counted with that reason, and nothing changed
    assert answered == status, text
    assert text and "Traceback" not in text
    assert any(
        '"InteractionsRejected"' in out and f'"reason":"{reason}"' in out.replace(": ", ":") for out in world.outputs
    ), (
        reason,
        world.outputs,
    )
    assert world.incident().version == version
    assert len(world.slack.calls) == calls


def test_a_get_is_refused(world: World) -> None:
    status, _ = world.post("", {}, method="GET")
    assert status == 400


def test_a_replayed_request_is_refused_and_slacks_retry_of_a_press_acts_once(world: World) -> None:
    # Given a press acted on
    payload = world.saved("04-mute-for-24-hours.json")
    body = body_of(payload)
    headers = sign(body, LOCAL_SIGNING_SECRET)
    assert world.post(body, headers)[0] == 200
    muted = world.incident()
    assert muted.mute is not None
    edits = _edits(world.slack)
    # When the very same request arrives again (a replay, within the signature's five minutes)
    status, text = world.post(body, headers)
    # Then it is refused, and changes nothing
    assert status == 401 and "already received" in text
    # And when Slack retries it (a new signature, X-Slack-Retry-Num), it is acknowledged and not acted on
    assert world.send(payload, **{"x-slack-retry-num": "1", "x-slack-retry-reason": "http_timeout"})[0] == 200
    assert world.incident().version == muted.version and _edits(world.slack) == edits


def test_a_person_not_allowed_to_resolve_is_told_so_alone_and_nothing_changes(world: World) -> None:
    # Given only the on-call lead may resolve, and Dana (not her) presses Resolve
    world.stack.extra_environment["SLACK_DECIDERS"] = "U0LEAD0001"

    def resolve() -> dict[str, Any]:
        press = world.saved("03-acknowledge.json")
        press["actions"][0].update(action_id="resolve", text={"type": "plain_text", "text": "Resolve"})
        return press

    assert world.send(resolve())[0] == 200
    # Then the incident stays open, and only she is told why (chat.postEphemeral to her, in the channel)
    assert world.incident().status == "OPEN"
    (note,) = world.slack.ephemerals
    assert note["user"] == DANA and "not allowed to resolve" in note["text"] and note["channel"] == "C0DATAPLT"
    # And once the on-call user group (whose members Slack lists) may, her press resolves it
    world.stack.extra_environment["SLACK_DECIDERS"] = "S0ONCALL"
    world.slack.usergroups["S0ONCALL"] = {DANA, "U0LEAD0001"}
    assert world.send(resolve())[0] == 200
    resolved = world.incident()
    assert (resolved.status, resolved.resolved_by_user) == ("RESOLVED", DANA)
    assert "Resolved* by <@U0DANAONC>" in json.dumps(world.slack.root_messages()[0].blocks)


def test_the_slash_command_answers_only_the_asker_within_the_acknowledgement(world: World) -> None:
    command = json.loads((FOLDER / "09-slash-command-open.json").read_text())
    slack = world.incident().slack
    assert slack is not None
    status, body = world.send(aimed(command, slack.channel, None))
    assert status == 200
    answer = json.loads(body)
    assert answer["response_type"] == "ephemeral" and INCIDENT in answer["text"]
    assert "<!channel>" not in answer["text"]  # the verdict's text from the log is escaped
    status, body = world.send(aimed({**command, "text": "show nonsense <!here>"}, slack.channel, None))
    assert status == 200 and "<!here>" not in json.loads(body)["text"]


def test_the_same_failure_after_a_mute_is_threaded_not_paged_and_unmute_restores_the_button(world: World) -> None:
    # Given the failure muted for 24 hours from its alert
    assert world.send(world.saved("04-mute-for-24-hours.json"))[0] == 200
    # When the job fails the same way the next night
    replay(world.stack, FOLDER, "05-next-night-step-failed.json")
    replay(world.stack, FOLDER, "06-next-night-step-stderr-log-created.json")
    # Then it is recorded, with no message of its own: one reply in the first alert's thread, paging no one
    assert world.incident(NEXT_NIGHT).muted_under == INCIDENT
    assert len(world.slack.root_messages()) == 1
    (reply,) = [c for c in world.slack.thread_replies() if "Failed again" in c.raw]
    assert reply.payload["thread_ts"] == world.incident().slack.ts  # type: ignore[union-attr]
    assert "<@" not in reply.raw and "<!" not in reply.raw.replace("<!date^", "")
    # And unmuting brings the mute menu back
    assert world.send(world.saved("08-unmute.json"))[0] == 200
    assert world.incident().mute is None
    assert '"action_id": "mute"' in json.dumps(world.slack.root_messages()[0].blocks)


def test_the_incidents_command_shows_acknowledgements_and_mutes(world: World) -> None:
    from emr_triage.cli import _slack_where
    from emr_triage.local.output import print_incident

    assert world.send(world.saved("03-acknowledge.json"))[0] == 200
    assert world.send(world.saved("04-mute-for-24-hours.json"))[0] == 200
    out = io.StringIO()
    print_incident(world.incident(), world.stack.table_name, out, show_json=False)
    shown = out.getvalue()
    assert f"acknowledged  by {DANA} at" in shown and f"muted         by {DANA} until" in shown
    assert _slack_where(world.incident()).endswith(" acked muting")

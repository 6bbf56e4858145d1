"""Saved Slack interactions, replayed: a button press (the ``payload`` Slack posts for ``block_actions``)
or a ``/emr-triage`` command (its form fields, as JSON), signed with the replay's signing secret and sent
to SlackInteractionsFunction as its function URL would send it.

A saved payload comes from another workspace and another run: the replay points it at the replayed alert
(its channel and message, from the incident the button names) and gives it a fresh ``action_ts`` or
``trigger_id`` (every press is a new one), then signs it now.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import time
import uuid
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from emr_triage.local.function_url import url_event

if TYPE_CHECKING:
    from emr_triage.local.items import EventReport, ReplayItem
    from emr_triage.local.replay import LocalStack

# The embedded stack's signing secret (stored in its Secrets Manager, named by SlackSigningSecretArn).
LOCAL_SIGNING_SECRET = "emr-triage-local-signing-secret-0123456789"  # noqa: S105 - the embedded stack's, not a real one
SIGNING_SECRET_NAME = "emr-triage-signing-secret"  # noqa: S105 - a name


def is_interaction(event: Any) -> bool:
    """A saved button press or slash command (not an EventBridge event)."""
    if not isinstance(event, dict) or "detail-type" in event:
        return False
    return event.get("type") == "block_actions" or str(event.get("command", "")).startswith("/")


def sign(body: str, secret: str, timestamp: int | None = None) -> dict[str, str]:
    """The headers Slack sends with a request body: its timestamp and its v0 signature."""
    at = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), f"v0:{at}:{body}".encode(), hashlib.sha256).hexdigest()
    return {
        "content-type": "application/x-www-form-urlencoded",
        "x-slack-request-timestamp": at,
        "x-slack-signature": f"v0={digest}",
        "user-agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
    }


def body_of(saved: dict[str, Any]) -> str:
    """The form-encoded body Slack posts: ``payload=<json>`` for a press, the fields for a command."""
    if saved.get("type") == "block_actions":
        return urlencode({"payload": json.dumps(saved, separators=(",", ":"))})
    return urlencode({k: str(v) for k, v in saved.items()})


def aimed(saved: dict[str, Any], channel: str | None, message_ts: str | None) -> dict[str, Any]:
    """The saved interaction pointed at the replayed alert (its channel and message), with a fresh id."""
    payload = copy.deepcopy(saved)
    if payload.get("type") == "block_actions":
        if channel:
            payload.setdefault("channel", {})["id"] = channel
            payload.setdefault("container", {})["channel_id"] = channel
        if message_ts:
            payload.setdefault("container", {})["message_ts"] = message_ts
        for action in payload.get("actions") or []:
            action["action_ts"] = f"{time.time():.6f}"
        return payload
    if channel:
        payload["channel_id"] = channel
    payload["trigger_id"] = f"replay.{uuid.uuid4().hex}"
    return payload


def incident_named(saved: dict[str, Any]) -> str | None:
    """The incident a saved press acts on (its block id, ``emr-triage/<incident id>``)."""
    from emr_triage.alerts.actions import BLOCK_PREFIX

    actions = saved.get("actions") or []
    block = str(actions[0].get("block_id", "")) if actions and isinstance(actions[0], dict) else ""
    return block.removeprefix(BLOCK_PREFIX) if block.startswith(BLOCK_PREFIX) else None


def request_event(saved: dict[str, Any], secret: str) -> dict[str, Any]:
    """The function URL event of a signed request carrying ``saved``."""
    body = body_of(saved)
    return url_event("POST", "/", {"host": "localhost", **sign(body, secret)}, body.encode("utf-8"))


INTERACTIVE_FUNCTION = "SlackInteractionsFunction"


def replay_interaction(stack: LocalStack, item: ReplayItem) -> EventReport:
    """Send a saved interaction to SlackInteractionsFunction, signed now, aimed at the replayed alert."""
    from emr_triage.local.items import EventReport, Invocation
    from emr_triage.runtime import console_notifier

    saved = item.event
    kind = "button press" if saved.get("type") == "block_actions" else f"slash command {saved.get('command')}"
    report = EventReport(item=item, label=f"Slack {kind}")
    spec = next((s for s in stack.specs if s.logical_id == INTERACTIVE_FUNCTION), None)
    if spec is None:
        report.not_delivered = (
            "SlackInteractionsFunction is not deployed: set SlackSigningSecretArn (scenario: interactive: true)"
        )
        return report
    incident_id = incident_named(saved)
    incident = stack.incident(incident_id) if incident_id else stack.latest_alerted()
    slack = incident.slack if incident is not None else None
    payload = aimed(saved, slack.channel if slack else None, slack.ts if slack else None)
    before = len(console_notifier().sent)
    invocation = Invocation(function=INTERACTIVE_FUNCTION, rule="function URL")
    stack.invoke_captured(spec, request_event(payload, LOCAL_SIGNING_SECRET), invocation)
    response = invocation.outcome or {}
    status = int(response.get("statusCode", 0)) if response else 0
    body = str(response.get("body") or "")
    try:
        answer = json.loads(body).get("text", body) if body.startswith("{") else body
    except json.JSONDecodeError:
        answer = body
    invocation.outcome = {
        "action": "interaction_handled" if status == 200 else "interaction_refused",
        "detail": f"HTTP {status}" + (f": {answer}" if answer else ""),
        "incident_id": incident_id,
    }
    report.invocations.append(invocation)
    report.slack = console_notifier().sent[before:]
    stack.check_expectation(report)
    return report

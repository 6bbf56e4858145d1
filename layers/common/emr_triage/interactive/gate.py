"""What a request to the interactive function must be before anything reads it, and why it is refused.

Every request arrives through the function URL (payload format 2.0) from anyone on the internet. Before
slack-bolt sees it, it must be: a POST of at most :data:`MAX_BODY_BYTES`; signed by Slack with the
signing secret (``X-Slack-Signature`` over ``v0:<timestamp>:<body>``) at most five minutes ago (Slack's
rule: https://api.slack.com/authentication/verifying-requests-from-slack); from the configured workspace
and app; a button of ours or ``/emr-triage``; and not a request already acted on. A replay of the same
request is refused; Slack's own retry of it (``X-Slack-Retry-Num``) is answered 200 and acts no more.
Headers only slack-bolt's lazy self-invocation may carry are refused from the internet.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from emr_triage.alerts.actions import ACTIONS, BLOCK_PREFIX
from emr_triage.ports import InteractionLedger
from emr_triage.settings import Settings

MAX_BODY_BYTES = 64 * 1024
MAX_AGE_SECONDS = 5 * 60
COMMAND = "/emr-triage"
# What the ledger remembers: longer than a signature stays fresh, so a replay is always recognised.
LEDGER_SECONDS = 2 * MAX_AGE_SECONDS
_LAZY_HEADERS = ("x-slack-bolt-lazy-only", "x-slack-bolt-lazy-function-name")


@dataclass(frozen=True)
class Refusal:
    status: int  # 400 malformed, 401 not from Slack (or not from ours)
    reason: str  # the metric dimension: a short snake_case word
    message: str  # said to the caller and logged


@dataclass(frozen=True)
class Admitted:
    """A request that passed: its identity in the ledger, and whether Slack retried one already acted on."""

    kind: str  # "action" | "command"
    repeat: bool = False


def _headers(event: dict[str, Any]) -> dict[str, str]:
    headers = event.get("headers") or {}
    return {str(k).lower(): str(v) for k, v in headers.items()} if isinstance(headers, dict) else {}


def body_of(event: dict[str, Any]) -> str | Refusal:
    """The request body as text (function URLs base64-encode bodies they do not take for text)."""
    raw = event.get("body") or ""
    if not isinstance(raw, str):
        return Refusal(400, "malformed", "the request has no text body")
    if len(raw) > MAX_BODY_BYTES * 4 // 3 + 4:
        return Refusal(400, "too_large", f"the request body is over {MAX_BODY_BYTES // 1024} KB")
    if event.get("isBase64Encoded"):
        try:
            raw = base64.b64decode(raw, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return Refusal(400, "malformed", "the request body is not base64-encoded UTF-8 text")
    if len(raw.encode("utf-8")) > MAX_BODY_BYTES:
        return Refusal(400, "too_large", f"the request body is over {MAX_BODY_BYTES // 1024} KB")
    return raw


def _signed(body: str, headers: dict[str, str], secret: str, now: float) -> Refusal | None:
    from slack_sdk.signature import Clock, SignatureVerifier

    class _At(Clock):
        def now(self) -> float:
            return now

    timestamp, signature = headers.get("x-slack-request-timestamp", ""), headers.get("x-slack-signature", "")
    if not timestamp or not signature:
        return Refusal(401, "unsigned", "the request is not signed (no X-Slack-Signature or timestamp)")
    if not timestamp.isdigit() or abs(now - int(timestamp)) > MAX_AGE_SECONDS:
        return Refusal(401, "stale", "the request's signature is older than five minutes (or from the future)")
    verifier = SignatureVerifier(secret, clock=_At())
    if not verifier.is_valid(body=body, timestamp=timestamp, signature=signature):
        return Refusal(401, "bad_signature", "the request's signature does not match the signing secret")
    return None


def parse(body: str) -> tuple[str, dict[str, Any]] | Refusal:
    """The request's kind and its fields: ("action", the interaction payload) or ("command", the form)."""
    form = {k: v[0] for k, v in parse_qs(body, keep_blank_values=True).items()}
    if "payload" in form:
        try:
            payload = json.loads(form["payload"])
        except json.JSONDecodeError:
            return Refusal(400, "malformed", "the interaction payload is not JSON")
        if not isinstance(payload, dict) or payload.get("type") != "block_actions":
            return Refusal(400, "unknown_action", "only button presses on emr-triage alerts are handled")
        actions = payload.get("actions")
        if not isinstance(actions, list) or len(actions) != 1 or not isinstance(actions[0], dict):
            return Refusal(400, "malformed", "a button press carries exactly one action")
        action = actions[0]
        if action.get("action_id") not in ACTIONS or not str(action.get("block_id", "")).startswith(BLOCK_PREFIX):
            return Refusal(400, "unknown_action", "this action is not an emr-triage button")
        return "action", payload
    if form.get("command") == COMMAND:
        return "command", form
    if "command" in form:
        return Refusal(400, "unknown_action", f"only {COMMAND} is handled here")
    return Refusal(400, "malformed", "the request is neither a button press nor a slash command")


def _origin(kind: str, fields: dict[str, Any], settings: Settings) -> Refusal | None:
    if kind == "action":
        team = fields.get("team") if isinstance(fields.get("team"), dict) else {}
        team_id, app_id = str((team or {}).get("id", "")), str(fields.get("api_app_id", ""))
    else:
        team_id, app_id = str(fields.get("team_id", "")), str(fields.get("api_app_id", ""))
    if settings.slack_team_id and team_id != settings.slack_team_id:
        return Refusal(401, "wrong_team", "the request comes from another Slack workspace")
    if settings.slack_app_id and app_id != settings.slack_app_id:
        return Refusal(401, "wrong_app", "the request was sent for another Slack app")
    return None


def identity(kind: str, fields: dict[str, Any]) -> str | None:
    """What makes this interaction one: a press's action_ts and presser, a command's trigger_id."""
    if kind == "action":
        user = fields.get("user") if isinstance(fields.get("user"), dict) else {}
        action_ts = str(fields["actions"][0].get("action_ts", ""))
        return f"action:{(user or {}).get('id', '')}:{action_ts}" if action_ts else None
    trigger = str(fields.get("trigger_id", ""))
    return f"command:{trigger}" if trigger else None


def admit(
    event: dict[str, Any], secret: str, settings: Settings, ledger: InteractionLedger, now: float | None = None
) -> Admitted | Refusal:
    """Check a function-URL request from the internet (see the module's docstring)."""
    now = time.time() if now is None else now
    method = ((event.get("requestContext") or {}).get("http") or {}).get("method")
    if method != "POST":
        return Refusal(400, "malformed", "only POST requests are handled")
    headers = _headers(event)
    if any(name in headers for name in _LAZY_HEADERS):
        return Refusal(400, "forged", "the request carries headers only this function's own invocations may carry")
    body = body_of(event)
    if isinstance(body, Refusal):
        return body
    refused = _signed(body, headers, secret, now)
    if refused:
        return refused
    parsed = parse(body)
    if isinstance(parsed, Refusal):
        return parsed
    kind, fields = parsed
    refused = _origin(kind, fields, settings)
    if refused:
        return refused
    key = identity(kind, fields)
    if key is None:
        return Refusal(400, "malformed", "the request has no action_ts or trigger_id")
    if ledger.first_time(key, int(now) + LEDGER_SECONDS):
        return Admitted(kind)
    if "x-slack-retry-num" in headers:
        return Admitted(kind, repeat=True)
    return Refusal(401, "replayed", "this request was already received: a replay is not acted on")
